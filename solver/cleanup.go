package solver

import (
	"errors"
	"fmt"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/internal/secretref"
)

// CleanUp never blocks on what Present could not have written.
//
// cert-manager keeps a Challenge whose CleanUp fails, retrying it with
// backoff, and schedules no other Challenge for the same DNS name meanwhile.
// Fixing a typo in an Issuer makes cert-manager replace the Challenge, and
// the old one carries the old, broken config: answering its CleanUp with the
// same error would keep the fixed Issuer from ever reaching Ready.
//
// So a CleanUp succeeds, without any DNS call, when its request could never
// have created a record: the config does not decode or validate, the Secret
// or key it names does not exist or is empty, the ServiceAccount its
// serviceAccountRef names does not exist, or no zone of the account holds
// the name. It is logged and counted in
// certbridge_cleanups_skipped_total{solver,reason}.
//
// Everything else is retried, as cert-manager does for any CleanUp error:
// a rejected credential, RBAC refusing the Secret, a missing permission on
// the zone, or a provider that is down. Present may have written a record
// then, and the fix (a new token, a Role, a grant) takes effect at
// cert-manager's next retry, so the record is not left behind.

// configError is a webhook.config that does not decode or validate.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// noZoneError says that no zone of the account holds the name.
type noZoneError struct {
	msg   string
	cause error
}

func (e *noZoneError) Error() string { return e.msg }
func (e *noZoneError) Unwrap() error { return e.cause }

// explained is the message a provider's error is worded into, keeping the
// classified error (internal/cloudflare, internal/alibaba) as its cause, so
// tests and callers can ask for the reason without reading the text.
type explained struct {
	msg   string
	cause error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.cause }

func explainf(cause error, format string, args ...any) error {
	return &explained{msg: fmt.Sprintf(format, args...), cause: cause}
}

// cleanUpSkipReason says why a failed CleanUp had nothing to remove, as the
// metric's reason label.
func cleanUpSkipReason(err error) (string, bool) {
	var ce *configError
	if errors.As(err, &ce) {
		return "config_invalid", true
	}
	var se *secretref.Error
	if errors.As(err, &se) {
		switch se.Problem {
		case secretref.SecretNotFound:
			return "secret_not_found", true
		case secretref.KeyMissing:
			return "secret_key_missing", true
		case secretref.ValueEmpty:
			return "secret_value_empty", true
		}
	}
	var nz *noZoneError
	if errors.As(err, &nz) {
		return "zone_not_found", true
	}
	if alibaba.Is(err, alibaba.ServiceAccountNotFound) {
		return "service_account_not_found", true
	}
	return "", false
}
