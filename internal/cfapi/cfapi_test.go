package cfapi

import "testing"

func TestCredentialFormats(t *testing.T) {
	cases := []struct {
		value      string
		key, token bool
	}{
		{"0123456789abcdef0123456789abcdef01234", true, false},    // 37 hex: a Global API Key
		{"cfk_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", true, false}, // new-format key
		{"AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-xy", false, true}, // 40 characters: a token
		{"cfut_ABCDEFGHIJKLMNOPQRSTUV", false, true},
		{"not a credential", false, false},
	}
	for _, tc := range cases {
		if LooksLikeGlobalAPIKey(tc.value) != tc.key || LooksLikeAPIToken(tc.value) != tc.token {
			t.Errorf("%q: key %v token %v, want %v %v", tc.value, LooksLikeGlobalAPIKey(tc.value), LooksLikeAPIToken(tc.value), tc.key, tc.token)
		}
	}
}
