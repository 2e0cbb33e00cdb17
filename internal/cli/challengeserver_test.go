package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/rest"

	"github.com/cert-manager/cert-manager/pkg/acme/webhook"
	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	"github.com/cert-manager/cert-manager/pkg/acme/webhook/apiserver"
)

// fakeSolver succeeds for the key "ok" and refuses any other; the key
// "malformed" it refuses before serving (Refuse), as solver.Solver does a
// malformed request.
type fakeSolver struct{ name string }

func (f fakeSolver) Refuse(ch *whapi.ChallengeRequest) error {
	if ch.Key == "malformed" {
		return errors.New(f.name + ": malformed challenge request")
	}
	return nil
}

func (f fakeSolver) Name() string                                   { return f.name }
func (f fakeSolver) Initialize(*rest.Config, <-chan struct{}) error { return nil }
func (f fakeSolver) Present(ch *whapi.ChallengeRequest) error       { return f.result(ch) }
func (f fakeSolver) CleanUp(ch *whapi.ChallengeRequest) error       { return f.result(ch) }

func (f fakeSolver) result(ch *whapi.ChallengeRequest) error {
	if ch.Key == "ok" {
		return nil
	}
	return errors.New(f.name + ": refused")
}

// challengeHandler is newChallengeServer's handler, with no authentication,
// authorization or listener, serving two solvers as `certbridge webhook`
// does.
func challengeHandler(t *testing.T) http.Handler {
	t.Helper()
	cfg := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	cfg.LoopbackClientConfig = &rest.Config{}
	cfg.ExternalAddress = "127.0.0.1:6443"
	server, err := newChallengeServer(&apiserver.Config{GenericConfig: cfg, ExtraConfig: apiserver.ExtraConfig{
		SolverGroup: "acme.example.com", Solvers: []webhook.Solver{fakeSolver{"cloudflare"}, fakeSolver{"alidns"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return server.Handler
}

// What cert-manager's own storage answers with 500 Internal Server Error (a
// payload without a request, an action it does not know) is a 400, and so is
// a request the solver refuses before serving it (cert-manager: 201); the
// rest is answered as cert-manager's webhook API always has: 201 with the
// solver's outcome in response (and, here, nothing else), 4xx for what never
// reaches a solver.
func TestChallengeServerAnswersGarbageWith4xx(t *testing.T) {
	h := challengeHandler(t)
	const typeMeta = `"apiVersion":"webhook.acme.cert-manager.io/v1alpha1","kind":"ChallengePayload"`
	megabyte := strings.Repeat("A", 1<<20)
	for _, tt := range []struct {
		name, solver, query, contentType, body string
		code                                   int
		// message is in the Status of a 4xx, or in response.status of a 201.
		message string
		success bool
	}{
		{name: "no request", body: `{` + typeMeta + `}`, code: 400, message: "the ChallengePayload has no request"},
		{name: "request null", body: `{` + typeMeta + `,"request":null}`, code: 400, message: "the ChallengePayload has no request"},
		{name: "unknown action", body: `{` + typeMeta + `,"request":{"action":"Zap","key":"ok"}}`, code: 400,
			message: `request.action "Zap" is not one of Present, CleanUp`},
		{name: "no action", body: `{` + typeMeta + `,"request":{"key":"ok"}}`, code: 400, message: `request.action "" is not one of Present, CleanUp`},
		{name: "action of a megabyte, cut in the answer", body: `{` + typeMeta + `,"request":{"action":"` + megabyte + `"}}`, code: 400,
			message: `request.action "` + megabyte[:100] + `… (1048576 characters)" is not one of Present, CleanUp`},
		{name: "no request, content type with a charset", contentType: "application/json; charset=utf-16", body: `{}`, code: 400,
			message: "the ChallengePayload has no request"},
		{name: "Present", body: `{` + typeMeta + `,"request":{"action":"Present","key":"ok"}}`, code: 201, success: true},
		{name: "CleanUp through alidns", solver: "alidns", body: `{` + typeMeta + `,"request":{"action":"CleanUp","key":"ok"}}`, code: 201, success: true},
		{name: "solver refuses before serving", body: `{` + typeMeta + `,"request":{"action":"Present","key":"malformed"}}`, code: 400,
			message: "cloudflare: malformed challenge request"},
		{name: "alidns refuses a CleanUp before serving", solver: "alidns", body: `{` + typeMeta + `,"request":{"action":"CleanUp","key":"malformed"}}`, code: 400,
			message: "alidns: malformed challenge request"},
		{name: "solver refuses", body: `{` + typeMeta + `,"request":{"action":"Present","key":"x"}}`, code: 201, message: "cloudflare: refused"},
		{name: "truncated JSON", body: `{` + typeMeta + `,"request":{"act`, code: 400, message: "unexpected end of JSON input"},
		{name: "text/plain", contentType: "text/plain", body: "Present", code: 415, message: "unknown format"},
		{name: "over 3 MiB", body: `{` + typeMeta + `,"request":{"action":"Present","key":"` + strings.Repeat(megabyte, 4) + `"}}`, code: 413,
			message: "limit is 3145728"},
		{name: "config nested 9990 deep, pretty-printed", query: "?pretty=true", body: `{` + typeMeta + `,"request":{"action":"Present","key":"x","config":` +
			strings.Repeat("[", 9990) + strings.Repeat("]", 9990) + `}}`, code: 201, message: "cloudflare: refused"},
		{name: "unknown solver", solver: "route53", body: `{` + typeMeta + `,"request":{"action":"Present","key":"ok"}}`, code: 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			solver, contentType := tt.solver, tt.contentType
			if solver == "" {
				solver = "cloudflare"
			}
			if contentType == "" {
				contentType = "application/json"
			}
			req := httptest.NewRequest(http.MethodPost, "/apis/acme.example.com/v1alpha1/"+solver+tt.query, bytes.NewBufferString(tt.body))
			req.Header.Set("Content-Type", contentType)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body := rec.Body.String()
			if rec.Code != tt.code {
				t.Fatalf("answered %d, want %d: %.500s", rec.Code, tt.code, body)
			}
			var message string
			if rec.Code == http.StatusCreated {
				var p whapi.ChallengePayload
				if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Response == nil {
					t.Fatalf("not a ChallengePayload with a response (%v): %.500s", err, body)
				}
				// The answer is the outcome: the request is the caller's
				// own, and repeated (pretty-printed) a deeply nested config
				// was a thousand times the request's size.
				if p.Request != nil || len(body) > 1000 {
					t.Errorf("the answer (%d bytes) repeats the request: %.300s", len(body), body)
				}
				if p.Response.Success != tt.success {
					t.Errorf("response.success %v, want %v", p.Response.Success, tt.success)
				}
				if p.Response.Result != nil {
					message = p.Response.Result.Message
				}
			} else {
				var s metav1.Status
				if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil || s.Code != int32(tt.code) {
					t.Fatalf("not a Status with code %d (%v): %.500s", tt.code, err, body)
				}
				message = s.Message
			}
			if !strings.Contains(message, tt.message) {
				t.Errorf("message %.300q lacks %.300q", message, tt.message)
			}
			if len(message) > 2000 {
				t.Errorf("message of %d bytes: %.300s…", len(message), message)
			}
		})
	}
}
