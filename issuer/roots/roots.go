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
