// Package roots holds Cloudflare's Origin CA roots, which an Origin CA
// certificate chains to and which the issuer reports as status.ca.
package roots

import _ "embed"

// OriginRSA is Cloudflare's Origin CA RSA root ("CloudFlare Origin SSL
// Certificate Authority", valid until 2029-08-15), as published at
// developers.cloudflare.com/ssl/static/origin_ca_rsa_root.pem.
//
//go:embed origin_ca_rsa_root.pem
var OriginRSA []byte

// OriginECC is Cloudflare's Origin CA ECC root ("CloudFlare Origin SSL ECC
// Certificate Authority", re-signed 2019-08-23, valid until 2029-08-15), as
// published at developers.cloudflare.com/ssl/static/origin_ca_ecc_root.pem.
// Its 2016 predecessor has the same subject, serial and key but expired in
// 2021; only the fingerprint tells them apart (see the test).
//
//go:embed origin_ca_ecc_root.pem
var OriginECC []byte
