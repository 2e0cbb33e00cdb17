// Package cfapi holds what certbridge's Cloudflare clients share: reading
// the v4 API's error envelope, which cloudflare-go v6 keeps mostly raw.
package cfapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/cloudflare/cloudflare-go/v6/dns"
)

// Error is an API error reduced to what decides a message: the HTTP status
// and Cloudflare's codes, with their error_chain.
type Error struct {
	Status int
	Items  []Item
}

// Item is one entry of the envelope's errors.
type Item struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Chain   []Item `json:"error_chain"`
}

// As reads err as a Cloudflare API error (every v6 service returns the same
// type, aliased in each package).
func As(err error) (Error, bool) {
	var apiErr *dns.Error
	if !errors.As(err, &apiErr) {
		return Error{}, false
	}
	e := Error{Status: apiErr.StatusCode}
	var body struct {
		Errors []json.RawMessage `json:"errors"`
	}
	if json.Unmarshal([]byte(apiErr.JSON.RawJSON()), &body) == nil {
		for _, raw := range body.Errors {
			var item Item
			if json.Unmarshal(raw, &item) != nil {
				var text string // some services send bare strings
				_ = json.Unmarshal(raw, &text)
				item.Message = text
			}
			e.Items = append(e.Items, item)
		}
	}
	return e, true
}

// Has reports whether any of codes is among the errors.
func (e Error) Has(codes ...int) bool {
	for _, item := range e.Items {
		for _, c := range codes {
			if item.Code == c {
				return true
			}
		}
	}
	return false
}

// HasChain reports whether code is in an error's error_chain.
func (e Error) HasChain(code int) bool {
	for _, item := range e.Items {
		for _, c := range item.Chain {
			if c.Code == code {
				return true
			}
		}
	}
	return false
}

// RequiresPermission spots the code-0 "requires permission …" answers.
func (e Error) RequiresPermission() bool {
	for _, item := range e.Items {
		if strings.Contains(strings.ToLower(item.Message), "requires permission") {
			return true
		}
	}
	return false
}

// Message is the text of the first error with code, if any.
func (e Error) Message(code int) string {
	for _, item := range e.Items {
		if item.Code == code {
			return item.Message
		}
	}
	return ""
}

// String quotes Cloudflare's codes and texts: "HTTP 403, code 9109: Invalid access token".
func (e Error) String() string {
	var parts []string
	for _, item := range e.Items {
		s := fmt.Sprintf("code %d: %s", item.Code, item.Message)
		for _, c := range item.Chain {
			s += fmt.Sprintf(" [%d: %s]", c.Code, c.Message)
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d, %s", e.Status, strings.Join(parts, "; "))
}

// HasCode reports whether err is an API error carrying one of codes.
func HasCode(err error, codes ...int) bool {
	e, ok := As(err)
	return ok && e.Has(codes...)
}

var (
	// Pre-2026 Global API Keys are 37–45 lower-case hex characters; new ones start cfk_.
	globalKeyFormat = regexp.MustCompile(`^([0-9a-f]{37,45}|cfk_\S+)$`)
	// Pre-2026 API tokens are 40 URL-safe characters; new ones start cfut_ or cfat_.
	tokenFormat = regexp.MustCompile(`^([A-Za-z0-9_-]{40}|cf(ut|at)_\S+)$`)
)

// LooksLikeGlobalAPIKey reports whether v has a Global API Key's format.
func LooksLikeGlobalAPIKey(v string) bool { return globalKeyFormat.MatchString(v) }

// LooksLikeAPIToken reports whether v has an API token's format. A cfk_
// prefix marks a Global API Key even when its length fits a legacy token.
func LooksLikeAPIToken(v string) bool {
	return tokenFormat.MatchString(v) && !strings.HasPrefix(v, "cfk_")
}
