package solver_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/certbridge/certbridge/internal/input"
	"github.com/certbridge/certbridge/solver"
	"github.com/certbridge/certbridge/test/fuzzseed"
)

// A config error is our own text plus the user's strings, each quoted cut
// by internal/input. So the bound is:
//
//   - ownTextBound for our own text. The longest is 1884 bytes: an alidns
//     config with every field invalid, whose three Secret names and keys
//     each get Kubernetes' DNS-1123 or ConfigMap-key explanation (the bulk),
//     and the list of regions. 2000 holds that; a new field's message that
//     does not fit means looking at what the user is shown.
//   - for every string of the config (object keys and string values, as
//     often as they occur), its quotation input.Quote, plus perString for
//     the path prefix or "did you mean" hint that may come with it. Any of
//     them may be quoted (unknown names, invalid values); cut, one costs at
//     most about 1 KB (100 runes of ten-byte \U escapes), so a config with
//     thirty long unknown field names has a 28 KB error: bounded, if long.
//
// Numbers and the JSON's structure get no allowance: a message may repeat
// them only cut, as it does strings.
const (
	ownTextBound = 2000
	perString    = 50
)

// userStrings returns every object key and string value of a JSON
// document, with repetition, as encoding/json decodes them, and the
// literals of its numbers.
func userStrings(raw []byte) (strs, numbers []string) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, nil
	}
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, e := range t {
				strs = append(strs, k)
				walk(e)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		case string:
			strs = append(strs, t)
		case json.Number:
			numbers = append(numbers, string(t))
		}
	}
	walk(v)
	return strs, numbers
}

// checkMessage asserts what internal/input promises for a config error: it
// is bounded as described above, and no string or number of the config
// longer than input.MaxQuoted characters appears in it whole, raw or quoted.
func checkMessage(t *testing.T, raw []byte, err error) {
	t.Helper()
	msg := err.Error()
	strs, numbers := userStrings(raw)
	bound := ownTextBound
	for _, s := range strs {
		bound += len(input.Quote(s)) + perString
	}
	if len(msg) > bound {
		t.Fatalf("a %d-byte error (bound %d for %d strings) for config %q:\n%s", len(msg), bound, len(strs), raw, msg)
	}
	for _, s := range append(strs, numbers...) {
		if utf8.RuneCountInString(s) <= input.MaxQuoted {
			continue
		}
		cut := []rune(s)[:input.MaxQuoted+1]
		if cut[input.MaxQuoted] == '…' {
			continue // indistinguishable from the cut mark itself
		}
		quoted := strconv.Quote(string(cut))
		if strings.Contains(msg, string(cut)) || strings.Contains(msg, quoted[:len(quoted)-1]) {
			t.Fatalf("the error repeats more than %d characters of %q:\n%s", input.MaxQuoted, s, msg)
		}
	}
}

// roundTrip re-encodes a valid config with encoding/json and parses it again.
func roundTrip[C any](t *testing.T, cfg C, parse func(*apiextensionsv1.JSON) (C, error)) {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("encoding %+v: %v", cfg, err)
	}
	again, err := parse(&apiextensionsv1.JSON{Raw: b})
	if err != nil {
		t.Fatalf("the valid config %+v, encoded as %s, no longer parses: %v", cfg, b, err)
	}
	if !reflect.DeepEqual(again, cfg) {
		t.Fatalf("decode∘encode changed the config: %+v → %s → %+v", cfg, b, again)
	}
}

func refOK(r *solver.SecretKeySelector) bool { return r != nil && r.Name != "" && r.Key != "" }

var configSeeds = []string{
	``, `null`, `{}`, `[]`, `"x"`, `{"ttl": 60}`,
	`{"apiTokenSecretRef": {"name": "cf-token", "key": "api-token"}}`,
	`{"apiTokenSecretRef": {"name": "cf-token", "key": "api-token"}, "zoneName": "example.com", "ttl": 1}`,
	`{"apiTokenSecretRef": {"name": "cf-token", "key": "api-token"}, "zoneID": "0123456789abcdef0123456789abcdef", "ttl": 120}`,
	`{"apiKeySecretRef": {"name": "cf-key", "key": "key"}, "email": "ops@example.com"}`,
	`{"apiKeySecretRef": {"name": "cf-key", "key": "key"}}`,
	`{"apiTokenSecretRef": {"name": "", "key": ""}}`,
	`{"apiTokenSecretref": {"name": "cf", "key": "k"}, "Email": "x"}`,
	`{"apiTokenSecretRef": {"name": "cf", "key": "k", "namespace": "kube-system"}}`,
	`{"apiTokenSecretRef": {"name": "../x", "key": "a/b"}, "ttl": "60"}`,
	`{"apiTokenSecretRef": {"name": "cf", "key": "k"}, "ttl": 1e400}`,
	`{"accessKeyIdSecretRef": {"name": "ali-key", "key": "id"}, "accessKeySecretSecretRef": {"name": "ali-key", "key": "secret"}}`,
	`{"accessKeyIdSecretRef": {"name": "a", "key": "i"}, "accessKeySecretSecretRef": {"name": "a", "key": "s"}, "securityTokenSecretRef": {"name": "a", "key": "t"}, "roleArn": "acs:ram::1234567890123456:role/dns", "regionId": "cn-hangzhou", "domainName": "example.com", "ttl": 600}`,
	`{"securityTokenSecretRef": {"name": "a", "key": "t"}, "regionId": "mars-1"}`,
	`{"roleArn": "certbridge", "domainName": "a..b", "ttl": 0}`,
	`{"regionId": "cn-hangzhou"}`,
	`{"apiTokenSecretRef": {"name": "` + strings.Repeat("x", 300) + `", "key": "k"}}`,
	`{"` + strings.Repeat("y", 300) + `": 1}`,
	`{"apiTokenSecretRef": {"name": "cf", "key": "k"}, "ttl": 99999999999999999999999999999999999999}`,
	`{"apiTokenSecretRef": {"name": "cf", "key": "k"}, "ttl": 1` + strings.Repeat("0", 150) + `}`,
}

// Every `cloudflare` webhook.config: a config that validates names exactly
// one credential with a Secret name and key; it survives decode∘encode; its
// error is bounded and cuts every long string.
func FuzzParseCloudflareConfig(f *testing.F) {
	for _, s := range configSeeds {
		fuzzseed.Add(f, []byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := solver.ParseCloudflareConfig(&apiextensionsv1.JSON{Raw: raw})
		if err != nil {
			checkMessage(t, raw, err)
			return
		}
		if (cfg.APITokenSecretRef != nil) == (cfg.APIKeySecretRef != nil) {
			t.Fatalf("valid config %q names both credentials or neither: %+v", raw, cfg)
		}
		if cfg.APITokenSecretRef != nil && !refOK(cfg.APITokenSecretRef) || cfg.APIKeySecretRef != nil && (!refOK(cfg.APIKeySecretRef) || cfg.Email == "") {
			t.Fatalf("valid config %q with an empty Secret name, key or email: %+v", raw, cfg)
		}
		roundTrip(t, cfg, solver.ParseCloudflareConfig)
	})
}

// Every `alidns` webhook.config, likewise: a valid config names an AccessKey
// id and secret together (each with a Secret name and key), or no Secret at
// all (ambient credentials).
func FuzzParseAliDNSConfig(f *testing.F) {
	for _, s := range configSeeds {
		fuzzseed.Add(f, []byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := solver.ParseAliDNSConfig(&apiextensionsv1.JSON{Raw: raw})
		if err != nil {
			checkMessage(t, raw, err)
			return
		}
		id, secret, token := cfg.AccessKeyIDSecretRef, cfg.AccessKeySecretSecretRef, cfg.SecurityTokenSecretRef
		switch {
		case (id == nil) != (secret == nil):
			t.Fatalf("valid config %q names an AccessKey id or secret alone: %+v", raw, cfg)
		case id != nil && (!refOK(id) || !refOK(secret)), token != nil && (id == nil || !refOK(token)):
			t.Fatalf("valid config %q with an empty Secret name or key: %+v", raw, cfg)
		}
		roundTrip(t, cfg, solver.ParseAliDNSConfig)
	})
}
