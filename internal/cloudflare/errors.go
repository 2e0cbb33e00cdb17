package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/cloudflare/cloudflare-go/v7/dns"

	"github.com/certbridge/certbridge/internal/ratelimit"
)

// Operation is one kind of call, named for messages and holding the token
// permission it needs.
type Operation int

// The operations certbridge makes.
const (
	VerifyToken Operation = iota + 1
	ListZones
	ListRecords
	CreateRecord
	DeleteRecord
	BatchRecords
	CreateOriginCertificate
)

func (o Operation) String() string {
	switch o {
	case VerifyToken:
		return "verifying the API token"
	case ListZones:
		return "looking up zones"
	case ListRecords:
		return "listing TXT records"
	case CreateRecord:
		return "creating a TXT record"
	case DeleteRecord:
		return "deleting a TXT record"
	case BatchRecords:
		return "writing a batch of TXT records"
	case CreateOriginCertificate:
		return "requesting an Origin CA certificate"
	}
	return "calling the Cloudflare API"
}

// Permission is the API token permission the operation needs.
func (o Operation) Permission() string {
	switch o {
	case ListZones:
		return "Zone → Zone → Read"
	case ListRecords, CreateRecord, DeleteRecord, BatchRecords:
		return "Zone → DNS → Edit"
	case CreateOriginCertificate:
		return "Zone → SSL and Certificates → Edit"
	}
	return ""
}

// Reason is what an error means for the caller: what the user must change,
// or that trying again will do.
type Reason int

// The reasons a call fails.
const (
	// Unreachable: no answer from the API (transport error or deadline).
	Unreachable Reason = iota + 1
	// Transient: Cloudflare answered with a server error; try again.
	Transient
	// RateLimited: the account's quota is spent (HTTP 429), or the local
	// budget cannot admit the call before its deadline.
	RateLimited
	// CredentialRejected: the credential is revoked, expired, restricted
	// to other IP addresses, unknown or mistyped.
	CredentialRejected
	// CredentialMalformed: the credential's header has the wrong format
	// for its kind; Error.Header names the header.
	CredentialMalformed
	// PermissionMissing: the credential is valid but lacks the
	// operation's permission (Operation.Permission) on the zone.
	PermissionMissing
	// ZoneNotFound: the zone ID routes nowhere (deleted, or not the
	// credential's).
	ZoneNotFound
	// RecordNotFound: the record is gone.
	RecordNotFound
	// Duplicate: an identical record exists already.
	Duplicate
	// HostnameNotInAccount: an Origin CA hostname is in no zone the
	// credential reaches (or its zone is pending); Error.Hostname names it.
	HostnameNotInAccount
	// InvalidTTL: the TTL is outside what the zone's plan allows.
	InvalidTTL
	// InvalidRequest: any other refusal of the request as sent.
	InvalidRequest
)

func (r Reason) String() string {
	return [...]string{"unknown", "unreachable", "transient", "rate_limited", "credential_rejected", "credential_malformed",
		"permission_missing", "zone_not_found", "record_not_found", "duplicate", "hostname_not_in_account",
		"invalid_ttl", "invalid_request"}[max(0, min(int(r), int(InvalidRequest)))]
}

// Item is one entry of the API's errors, with its error_chain.
type Item struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Chain   []Item `json:"error_chain"`
}

// Error is a failed call, classified once. Callers word their message from
// Reason and Op and quote Cloudflare with Quote; they never look at codes.
type Error struct {
	Op     Operation
	Reason Reason
	// Status is the HTTP status; 0 when no answer came.
	Status int
	Items  []Item
	// Header is the malformed header for CredentialMalformed:
	// "Authorization", "X-Auth-Key" or "X-Auth-Email".
	Header string
	// Hostname is the refused hostname for HostnameNotInAccount.
	Hostname string
	cause    error
}

func (e *Error) Error() string { return e.Op.String() + ": " + e.Quote() }

func (e *Error) Unwrap() error { return e.cause }

// TimedOut reports an error that is the request's deadline running out.
func (e *Error) TimedOut() bool {
	return errors.Is(e.cause, context.DeadlineExceeded) || errors.Is(e.cause, context.Canceled)
}

// Quote is what Cloudflare said — "HTTP 403, code 9109: Invalid access
// token" — or, without an answer, the transport error.
func (e *Error) Quote() string {
	if e.Status == 0 {
		if e.cause == nil {
			return "no answer"
		}
		return e.cause.Error()
	}
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

// As returns err's *Error, if it is one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Is reports whether err is an *Error for one of reasons.
func Is(err error, reasons ...Reason) bool {
	e, ok := As(err)
	if !ok {
		return false
	}
	for _, r := range reasons {
		if e.Reason == r {
			return true
		}
	}
	return false
}

var hostnameInMessage = regexp.MustCompile(`requested hostname (\S+?):`)

// classify turns what the SDK returned into an *Error; every call of the
// Client goes through it, so the codes below are the only ones certbridge
// reads.
func classify(op Operation, err error) error {
	if err == nil {
		return nil
	}
	if _, done := As(err); done {
		return err
	}
	e := &Error{Op: op, cause: err}
	var budget *ratelimit.ExhaustedError
	var apiErr *dns.Error // every service's error is this type, aliased
	switch {
	case errors.As(err, &budget):
		e.Reason = RateLimited
		return e
	case !errors.As(err, &apiErr):
		e.Reason = Unreachable
		return e
	}
	e.Status = apiErr.StatusCode
	e.Items = items(apiErr.JSON.RawJSON())
	switch {
	case e.has(6003) && e.chain(6111):
		e.Reason, e.Header = CredentialMalformed, "Authorization"
	case e.has(6003) && e.chain(6103):
		e.Reason, e.Header = CredentialMalformed, "X-Auth-Key"
	case e.has(6003) && e.chain(6102):
		e.Reason, e.Header = CredentialMalformed, "X-Auth-Email"
	case e.has(9109, 1000, 9103, 9106, 1001, 6003, 10001):
		e.Reason = CredentialRejected
	case e.Status == http.StatusTooManyRequests || e.has(971):
		e.Reason = RateLimited
	case e.has(1010):
		e.Reason = HostnameNotInAccount
		if m := hostnameInMessage.FindStringSubmatch(e.message(1010)); m != nil {
			e.Hostname = m[1]
		}
	case e.has(10000, 1016) || e.requiresPermission():
		e.Reason = PermissionMissing
	case e.has(7003, 7000):
		e.Reason = ZoneNotFound
	case e.has(81044) || (e.Status == http.StatusNotFound && (op == DeleteRecord || op == ListRecords)):
		e.Reason = RecordNotFound
	case e.has(81057, 81058):
		e.Reason = Duplicate
	case e.has(9021):
		e.Reason = InvalidTTL
	case e.Status >= 500 || e.has(1100, 1201):
		e.Reason = Transient
	default:
		e.Reason = InvalidRequest
	}
	return e
}

func items(raw string) []Item {
	var body struct {
		Errors []json.RawMessage `json:"errors"`
	}
	if json.Unmarshal([]byte(raw), &body) != nil {
		return nil
	}
	var out []Item
	for _, r := range body.Errors {
		var item Item
		if json.Unmarshal(r, &item) != nil {
			var text string // some services send bare strings
			_ = json.Unmarshal(r, &text)
			item.Message = text
		}
		out = append(out, item)
	}
	return out
}

func (e *Error) has(codes ...int) bool {
	for _, item := range e.Items {
		for _, c := range codes {
			if item.Code == c {
				return true
			}
		}
	}
	return false
}

func (e *Error) chain(code int) bool {
	for _, item := range e.Items {
		for _, c := range item.Chain {
			if c.Code == code {
				return true
			}
		}
	}
	return false
}

func (e *Error) message(code int) string {
	for _, item := range e.Items {
		if item.Code == code {
			return item.Message
		}
	}
	return ""
}

// requiresPermission spots the code-0 "requires permission …" answers.
func (e *Error) requiresPermission() bool {
	for _, item := range e.Items {
		if strings.Contains(strings.ToLower(item.Message), "requires permission") {
			return true
		}
	}
	return false
}

// ReasonOf names why err happened, in the words of Reason.String and, for
// a failed zone resolution, "no_zone", "zone_not_active" or
// "zone_ambiguous"; "" for an error of neither kind. The solver and
// `certbridge check` report the same reason for the same cause.
func ReasonOf(err error) string {
	var zerr *ZoneError
	if errors.As(err, &zerr) {
		return zerr.Problem.String()
	}
	if e, ok := As(err); ok {
		return e.Reason.String()
	}
	return ""
}
