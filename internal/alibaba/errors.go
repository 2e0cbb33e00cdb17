package alibaba

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"

	"github.com/certbridge/certbridge/internal/ratelimit"
)

// Reason is what an error means for the caller.
type Reason int

// The reasons a call fails.
const (
	// Unreachable: no answer (DNS, TLS, refused, deadline); the error's
	// cause says which, and Endpoint where.
	Unreachable Reason = iota + 1
	// Transient: a server error; try again.
	Transient
	// Busy: a concurrent write to the domain has not finished; try again.
	Busy
	// Throttled: the account's per-action quota is spent, or the local
	// budget cannot admit the call before its deadline.
	Throttled
	// AccessKeyUnknown: Alibaba Cloud knows no such AccessKey id.
	AccessKeyUnknown
	// AccessKeyDisabled: the AccessKey is disabled.
	AccessKeyDisabled
	// SecretMismatch: the signature does not match: the secret is not the
	// AccessKey's.
	SecretMismatch
	// TokenRejected: the STS security token is expired, malformed, or not
	// the AccessKey's.
	TokenRejected
	// ClockSkew: the request's timestamp is more than 15 minutes off.
	ClockSkew
	// CredentialsUnavailable: getting credentials (STS for a role, RRSA,
	// the instance metadata service) failed before any API call.
	CredentialsUnavailable
	// PermissionMissing: the RAM policy does not allow the action.
	PermissionMissing
	// DomainNotFound: the domain is not in the account (or in another).
	DomainNotFound
	// RecordNotFound: the record does not exist (any more).
	RecordNotFound
	// Duplicate: an identical record exists already.
	Duplicate
	// InvalidTTL: the TTL is below the domain edition's minimum;
	// Error.MinTTL holds the minimum when the answer names it.
	InvalidTTL
	// CANotFound: no CA of that identifier.
	CANotFound
	// CAUnusable: the CA is revoked, expired or has no certificates left.
	CAUnusable
	// TokenForbidden: RBAC does not let certbridge's own identity
	// (Error.Requester) request the ServiceAccount's tokens; TokenGrant is
	// the fix.
	TokenForbidden
	// ServiceAccountNotFound: no such ServiceAccount in the namespace.
	ServiceAccountNotFound
	// TokenRequestFailed: the TokenRequest failed otherwise.
	TokenRequestFailed
	// OIDCProviderUnset: the process was given no RRSA OIDC provider ARN.
	OIDCProviderUnset
	// OIDCProviderUnknown: STS knows no OIDC provider of that ARN.
	OIDCProviderUnknown
	// OIDCTokenRejected: STS refused the token itself (expired, another
	// audience or issuer, a signature the provider's keys do not verify).
	OIDCTokenRejected
	// RoleNotTrusted: the role's trust policy does not admit the caller
	// (for AssumeRoleWithOIDC, the token's provider or subject).
	RoleNotTrusted
	// RoleNotFound: no RAM role of that ARN.
	RoleNotFound
	// InvalidRequest: any other refusal.
	InvalidRequest
)

func (r Reason) String() string {
	return [...]string{"unknown", "unreachable", "transient", "busy", "throttled", "access_key_unknown", "access_key_disabled",
		"secret_mismatch", "token_rejected", "clock_skew", "credentials_unavailable", "permission_missing",
		"domain_not_found", "record_not_found", "duplicate", "invalid_ttl", "ca_not_found", "ca_unusable",
		"token_forbidden", "service_account_not_found", "token_request_failed", "oidc_provider_unset",
		"oidc_provider_unknown", "oidc_token_rejected", "role_not_trusted", "role_not_found",
		"invalid_request"}[max(0, min(int(r), int(InvalidRequest)))]
}

// Error is a failed call, classified once. Callers word their message from
// Reason and Action, and quote Alibaba Cloud with Quote.
type Error struct {
	// Action is the API action ("AddDomainRecord").
	Action string
	Reason Reason
	// Status is the HTTP status; 0 without an answer.
	Status        int
	Code, Message string
	// MinTTL is the edition's minimum TTL, for InvalidTTL.
	MinTTL int
	// Endpoint is where the call went.
	Endpoint Endpoint
	// Requester is the Kubernetes user a TokenRequest was refused to.
	Requester string
	// cause is the transport or credentials error, made safe to print.
	cause error
}

func (e *Error) Error() string { return e.Action + ": " + e.Quote() }

func (e *Error) Unwrap() error { return e.cause }

// Retryable is throttling, a concurrent write, or a server error.
func (e *Error) Retryable() bool {
	return e.Reason == Throttled || e.Reason == Busy || e.Reason == Transient
}

// TimedOut reports the request's deadline running out.
func (e *Error) TimedOut() bool {
	return errors.Is(e.cause, context.DeadlineExceeded) || errors.Is(e.cause, context.Canceled)
}

// Quote is what Alibaba Cloud said ("Forbidden.RAM: User not authorized
// …"), or the cause of no answer, with the endpoint it went to.
func (e *Error) Quote() string {
	switch {
	case e.Code != "":
		return e.Code + ": " + e.Message
	case e.Reason == Unreachable && e.cause != nil:
		return "no answer from " + e.Endpoint.String() + ": " + e.cause.Error()
	case e.cause != nil:
		return e.cause.Error()
	}
	return "HTTP " + strconv.Itoa(e.Status)
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

var (
	minTTLMessage = regexp.MustCompile(`range of (\d+) to`)
	// queryInMessage is a URL's query: the SDK's request URLs carry the
	// AccessKey id, the signature and, for STS, the security token.
	queryInMessage = regexp.MustCompile(`\?[^\s"']*`)
)

// classify turns what the SDK returned into an *Error. Every call of the
// clients goes through it, so the codes below are the only ones certbridge
// reads; secrets is what the cause must not show.
func classify(action string, endpoint Endpoint, secrets []string, err error) error {
	if err == nil {
		return nil
	}
	if _, done := As(err); done {
		return err
	}
	e := &Error{Action: action, Endpoint: endpoint}
	var se *sdkerrors.ServerError
	var ce *credentialsError
	var budget *ratelimit.ExhaustedError
	switch {
	case errors.As(err, &budget):
		e.Reason, e.cause = Throttled, err
		return e
	case errors.As(err, &ce):
		e.Reason, e.cause = CredentialsUnavailable, safe(ce.err, secrets)
		return e
	case !errors.As(err, &se):
		e.Reason, e.cause = Unreachable, transportCause(err, secrets)
		return e
	}
	e.Status, e.Code, e.Message = se.HttpStatus(), se.ErrorCode(), se.Message()
	c := e.Code
	oidc := action == ActionAssumeRoleWithOIDC
	switch {
	case oidc && c == "AuthenticationFail.NoPermission" && strings.Contains(e.Message, "OIDC Provider"):
		e.Reason = OIDCProviderUnknown
	case oidc && (c == "AuthenticationFail.NoPermission" || c == "NoPermission"):
		e.Reason = RoleNotTrusted
	case strings.HasPrefix(c, "AuthenticationFail.OIDCToken"):
		e.Reason = OIDCTokenRejected
	case c == "EntityNotExist.Role":
		e.Reason = RoleNotFound
	case c == "InvalidAccessKeyId.NotFound":
		e.Reason = AccessKeyUnknown
	case c == "InvalidAccessKeyId.Inactive":
		e.Reason = AccessKeyDisabled
	case c == "SignatureDoesNotMatch" || c == "IncompleteSignature":
		e.Reason = SecretMismatch
		// The message quotes the server's string to sign: nothing secret,
		// but long; the code says enough.
		e.Message = "the signature does not match"
	case strings.HasPrefix(c, "InvalidSecurityToken"):
		e.Reason = TokenRejected
	case c == "InvalidTimeStamp.Expired":
		e.Reason = ClockSkew
	case c == "Forbidden.RAM" || c == "Forbidden" || c == "NoPermission":
		e.Reason = PermissionMissing
	case c == "InvalidDomainName.NoExist" || c == "IncorrectDomainUser":
		e.Reason = DomainNotFound
	case c == "DomainRecordNotBelongToUser":
		e.Reason = RecordNotFound
	case c == "DomainRecordDuplicate":
		e.Reason = Duplicate
	case c == "QuotaExceeded.TTL":
		e.Reason = InvalidTTL
		if m := minTTLMessage.FindStringSubmatch(e.Message); m != nil {
			e.MinTTL, _ = strconv.Atoi(m[1])
		}
	case strings.HasPrefix(c, "Throttling"):
		e.Reason = Throttled
	case c == "LastOperationNotFinished":
		e.Reason = Busy
	case c == "CA.Revoked" || c == "CA.Expired" || c == "QuotaExceeded.Certificate":
		e.Reason = CAUnusable
	case strings.HasPrefix(c, "NotFound"):
		e.Reason = CANotFound
	case strings.HasPrefix(c, "AuthenticationFail"):
		e.Reason = CredentialsUnavailable
	case c == "ServiceUnavailable" || c == "InternalError" || e.Status >= http.StatusInternalServerError:
		e.Reason = Transient
	default:
		e.Reason = InvalidRequest
	}
	return e
}

// transportCause is why no answer came, without the request URL (and so
// without the AccessKey id, signature or token it carries).
func transportCause(err error, secrets []string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ce *sdkerrors.ClientError
	if errors.As(err, &ce) && ce.OriginError() != nil {
		err = ce.OriginError()
		if errors.As(err, &ue) {
			err = ue.Err
		}
	}
	return safe(err, secrets)
}

// safe renders err without any of secrets and without URL queries, keeping
// context errors recognisable.
func safe(err error, secrets []string) error {
	s := queryInMessage.ReplaceAllString(err.Error(), "")
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return &safeError{msg: s, ctx: contextErr(err)}
}

type safeError struct {
	msg string
	ctx error
}

func (e *safeError) Error() string { return e.msg }
func (e *safeError) Unwrap() error { return e.ctx }

func contextErr(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return context.Canceled
	}
	var netErr interface{ Timeout() bool }
	if errors.As(err, &netErr) && netErr.Timeout() {
		return context.DeadlineExceeded
	}
	return nil
}

// ReasonOf names why err happened, in the words of Reason.String and
// "no_domain" for a failed domain resolution; "" for neither. The solver
// and `certbridge check` report the same reason for the same cause.
func ReasonOf(err error) string {
	var nd *NoDomainError
	if errors.As(err, &nd) {
		return "no_domain"
	}
	if e, ok := As(err); ok {
		return e.Reason.String()
	}
	return ""
}
