package testutil

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// LeakIndex finds a leak exactly when FindLeak does, in every form.
func TestLeakIndexAgreesWithFindLeak(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_ \n"
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	var values []string
	for range 200 {
		values = append(values, word(3+rng.IntN(40)))
	}
	values = append(values, "", " padded\n")
	x := NewLeakIndex(values)
	for i := range 2000 {
		text := word(rng.IntN(200))
		if i%2 == 0 {
			v := values[rng.IntN(len(values))]
			forms := LeakForms(v)
			if len(forms) > 0 {
				text += forms[rng.IntN(len(forms))] + word(rng.IntN(20))
			}
		}
		_, _, want := FindLeak(values, text)
		v, f, got := x.Find(text)
		if got != want {
			t.Fatalf("Find(%q) found %v (%q as %q), FindLeak %v", text, got, v, f, want)
		}
		if got && !strings.Contains(text, f) {
			t.Fatalf("Find(%q) reports form %q, which the text does not hold", text, f)
		}
	}
	if _, _, found := NewLeakIndex(nil).Find("anything"); found {
		t.Error("an empty index found a leak")
	}
	secret := "s3cr3t-value-of-a-token"
	for _, text := range []string{
		"the value " + secret, "its start s3cr3t-v…", base64.StdEncoding.EncodeToString([]byte(secret)),
		"data: " + base64.RawURLEncoding.EncodeToString([]byte(secret))[:8],
	} {
		if _, _, found := NewLeakIndex([]string{secret}).Find(text); !found {
			t.Errorf("no leak found in %q", text)
		}
	}
}
