package solver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/certbridge/certbridge/internal/input"
)

// SecretKeySelector names one key of a Secret in the namespace the challenge's
// Secrets are read from. It has no namespace field on purpose: an Issuer's
// config can never point the webhook at another namespace's Secrets.
type SecretKeySelector struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

func (s *SecretKeySelector) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), "the name of the Secret holding the credential"))
	} else if msgs := validation.IsDNS1123Subdomain(s.Name); len(msgs) > 0 {
		errs = append(errs, invalid(path.Child("name"), s.Name, strings.Join(msgs, "; ")))
	}
	if s.Key == "" {
		errs = append(errs, field.Required(path.Child("key"), "the key inside the Secret that holds the credential"))
	} else if msgs := validation.IsConfigMapKey(s.Key); len(msgs) > 0 {
		errs = append(errs, invalid(path.Child("key"), s.Key, strings.Join(msgs, "; ")))
	}
	return errs
}

// invalid is field.Invalid with the user's value cut to a quotable length.
func invalid(path *field.Path, value, detail string) *field.Error {
	return field.Invalid(path, input.Truncate(value), detail)
}

// decodeStrict decodes a solver's webhook.config into out. Every field that
// out does not declare — matched case-sensitively, unlike encoding/json — is
// reported by its path together with the valid names, so a typo such as
// apiTokenSecretref is never silently ignored.
func decodeStrict(cfg *apiextensionsv1.JSON, out any) error {
	if cfg == nil || len(bytes.TrimSpace(cfg.Raw)) == 0 || string(bytes.TrimSpace(cfg.Raw)) == "null" {
		return errors.New("the solver's config is empty: set webhook.config in the Issuer")
	}
	if err := unknownFields(cfg.Raw, reflect.TypeOf(out).Elem(), ""); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(cfg.Raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		var typeErr *json.UnmarshalTypeError
		// encoding/json puts a number's whole literal in Value ("number 1e999…").
		if errors.As(err, &typeErr) && typeErr.Field == "" {
			return fmt.Errorf("config must be a JSON object, not a JSON %s", input.Truncate(typeErr.Value))
		}
		if errors.As(err, &typeErr) {
			return fmt.Errorf("config field %s must be a %s, not a JSON %s", typeErr.Field, typeName(typeErr.Type), input.Truncate(typeErr.Value))
		}
		return fmt.Errorf("config is not valid JSON: %w", err)
	}
	return nil
}

func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint32:
		return "whole number"
	default:
		return t.Kind().String()
	}
}

// jsonFields maps a struct type's JSON names to their field types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// maxUnknownListed bounds the unknown fields a message names.
const maxUnknownListed = 10

func unknownFields(raw []byte, t reflect.Type, prefix string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil // not an object: the typed decode reports it with its type
	}
	fields := jsonFields(t)
	valid := make([]string, 0, len(fields))
	for name := range fields {
		valid = append(valid, name)
	}
	sort.Strings(valid)
	var unknown []string
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		ft, ok := fields[k]
		if !ok {
			hint := ""
			for _, v := range valid {
				if strings.EqualFold(v, k) {
					hint = fmt.Sprintf(" (did you mean %q?)", prefix+v)
				}
			}
			unknown = append(unknown, input.Quote(prefix+k)+hint)
			continue
		}
		if err := unknownFields(obj[k], ft, prefix+k+"."); err != nil {
			errs = append(errs, err)
		}
	}
	if len(unknown) > maxUnknownListed {
		unknown = append(unknown[:maxUnknownListed], fmt.Sprintf("and %d more", len(unknown)-maxUnknownListed))
	}
	if len(unknown) > 0 {
		noun := "field"
		if len(unknown) > 1 {
			noun = "fields"
		}
		where := "config"
		if prefix != "" {
			where = strings.TrimSuffix(prefix, ".")
		}
		errs = append([]error{fmt.Errorf("unknown %s %s in %s; valid fields are: %s",
			noun, strings.Join(unknown, ", "), where, strings.Join(valid, ", "))}, errs...)
	}
	return errors.Join(errs...)
}
