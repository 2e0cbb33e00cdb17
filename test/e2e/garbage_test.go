//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/certbridge/certbridge/test/localcluster"
	"github.com/certbridge/certbridge/test/testutil"
)

// The garbage run's bounds: how many requests are in flight at once, and
// how much more resident memory than idle the webhook may take meanwhile.
const (
	garbageWorkers     = 8
	garbageRSSHeadroom = 200 << 20
	// garbageMaxAnswer bounds every answer's size: an answer that grows
	// with what was sent is memory the webhook spends per request.
	garbageMaxAnswer = 64 << 10
)

// garbage: thousands of malformed, oversized and hostile ChallengePayloads,
// wrong content types and methods, sent to the webhook through the
// aggregated API (kube-apiserver → APIService → `certbridge webhook`), as
// cert-manager's ServiceAccount (the identity that really sends them, with
// the chart's RBAC, so both kube-apiserver's RBAC and the webhook's
// delegated authorization run on each) and, for the methods that RBAC
// refuses before the webhook sees them, as the cluster admin. Every garbage
// answer is a 4xx. Beside the garbage, a few hundred probes (see probe) are
// well-formed requests naming canary credentials, which the simulated
// providers refuse: each is a 201 whose response says so (cert-manager's
// webhook API answers a provider's refusal that way), or, for a CleanUp
// that could never have written a record, a 201 success (by design, see
// solver/cleanup.go). The webhook keeps its PID and stays ready, its
// RSS stays within garbageRSSHeadroom of idle, and neither its log, kube-
// apiserver's log, the answers nor any Event holds a canary (a request's
// key, a credential in a Secret) in any of testutil.LeakForms. A real
// Present and CleanUp through both solvers work afterwards.
func (e *env) scenarioGarbage(t *testing.T) {
	began := time.Now()
	const ns, validNS = "scenario-garbage", "scenario-garbage-valid"
	e.namespace(t, ns, false)
	e.namespace(t, validNS, true)
	creds := e.canarySecrets(t, ns)

	clients := e.garbageClients(t)
	cases := garbageCases()
	var jobs []garbageJob
	for ci := range cases {
		for i := range cases[ci].n {
			jobs = append(jobs, garbageJob{c: &cases[ci], r: &garbageRequest{i: i, key: acmeKey(), ns: ns}})
		}
	}
	// The valid requests after the run get keys of their own; they too must
	// not be logged.
	validKeys := map[string]string{"cloudflare": acmeKey(), "alidns": acmeKey()}
	canaries := append([]string{}, creds...)
	for _, j := range jobs {
		canaries = append(canaries, j.r.key)
	}
	for _, k := range validKeys {
		canaries = append(canaries, k)
	}
	canaries = append(canaries, e.c.Secrets()...)
	canaries = append(canaries, e.c.AliAccessKeyID)
	leaks := testutil.NewLeakIndex(canaries)

	pid := e.c.WebhookPID()
	idle, err := vmRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	rss := sampleRSS(pid)

	sent := time.Now()
	results := make([]garbageResult, len(jobs))
	work := make(chan int)
	var wg sync.WaitGroup
	for range garbageWorkers {
		wg.Go(func() {
			for i := range work {
				start := time.Now()
				results[i] = e.sendGarbage(clients, jobs[i], leaks)
				results[i].took = time.Since(start)
			}
		})
	}
	for i := range jobs {
		work <- i
	}
	close(work)
	wg.Wait()
	took := time.Since(sent)
	peak, samples, gone := rss.stop()
	after, _ := vmRSS(pid)

	// 1. Every answer is the one its case expects: every garbage answer a
	// 4xx (sendGarbage checks each case's own code and message).
	byCode, probeCodes := map[string]int{}, map[string]int{}
	sentByKind := map[string]int{}
	notFourXX := map[string]map[string]int{}
	garbage, probes, not4xxCount := 0, 0, 0
	type caseStats struct {
		codes             map[string]int
		maxAnswer         int
		took, slowest     time.Duration
		sample            string
		failures, leakHit int
	}
	stats := map[string]*caseStats{}
	failures := 0
	for i, res := range results {
		c := jobs[i].c
		st := stats[c.name]
		if st == nil {
			st = &caseStats{codes: map[string]int{}}
			stats[c.name] = st
		}
		st.codes[res.outcome]++
		if c.probe() {
			probes++
			probeCodes[res.outcome]++
			sentByKind["probe: "+c.kind]++
		} else {
			garbage++
			byCode[res.outcome]++
			sentByKind[c.kind]++
			if code, err := strconv.Atoi(res.outcome); err != nil || code < 400 || code > 499 {
				if notFourXX[c.name] == nil {
					notFourXX[c.name] = map[string]int{}
				}
				notFourXX[c.name][res.outcome]++
				not4xxCount++
			}
		}
		st.maxAnswer = max(st.maxAnswer, res.size)
		st.took += res.took
		st.slowest = max(st.slowest, res.took)
		if st.sample == "" {
			st.sample = res.message
		}
		if res.leak != "" {
			st.leakHit++
			t.Errorf("%s #%d: the answer holds a canary: %s", c.name, jobs[i].r.i, res.leak)
		}
		if res.problem != "" {
			st.failures++
			failures++
			if st.failures <= 3 {
				t.Errorf("%s #%d: %s", c.name, jobs[i].r.i, res.problem)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-38s %4s  %-18s %8s %8s %8s  %s\n", "case", "sent", "answers", "largest", "mean", "slowest", "first message")
	for _, c := range cases {
		st := stats[c.name]
		fmt.Fprintf(&b, "%-38s %4d  %-18s %7dB %8s %8s  %s\n", c.name, c.n, codeList(st.codes), st.maxAnswer,
			(st.took / time.Duration(c.n)).Round(time.Millisecond), st.slowest.Round(time.Millisecond), cut(st.sample, 110))
	}
	t.Logf("garbage: answers by case\n%s", b.String())
	var not4xx []string
	for name, codes := range notFourXX {
		not4xx = append(not4xx, name+" ("+codeList(codes)+")")
	}
	sort.Strings(not4xx)
	if len(not4xx) > 0 {
		t.Errorf("garbage answered with other than a 4xx, by case: %s", strings.Join(not4xx, "; "))
	}

	// 2. The same process, still running and ready, still serving.
	if got := e.c.WebhookPID(); got != pid {
		t.Errorf("the webhook's PID changed from %d to %d", pid, got)
	}
	if err := e.c.WebhookExited(); err != nil {
		t.Errorf("the webhook exited during the garbage run: %v", err)
	}
	if gone != nil {
		t.Errorf("the webhook's /proc entry went away during the run: %v", gone)
	}
	if err := e.c.WebhookReady(e.ctx); err != nil {
		t.Errorf("the webhook is not ready after the garbage run: %v", err)
	}
	for _, solver := range []string{"cloudflare", "alidns"} {
		e.validChallenge(t, clients["cert-manager"], solver, validNS, validKeys[solver])
	}

	// 3. Memory stayed bounded.
	if peak > idle+garbageRSSHeadroom {
		t.Errorf("the webhook's RSS peaked at %s, more than %s above its idle %s", mib(peak), mib(garbageRSSHeadroom), mib(idle))
	}

	// 4. No canary in the webhook's or kube-apiserver's log, nor in any
	// Event (the answers were scanned as they came).
	logHits, logLines, logBytes, longest := 0, 0, 0, 0
	for _, component := range []string{"certbridge-webhook", "kube-apiserver"} {
		hits, lines, size, long := scanLog(t, e.c.LogFile(component), leaks)
		logHits += hits
		logLines += lines
		logBytes += size
		longest = max(longest, long)
	}
	events, err := e.c.Kube.CoreV1().Events(metav1.NamespaceAll).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventHits := 0
	for _, ev := range events.Items {
		raw, _ := json.Marshal(ev)
		if v, f, found := leaks.Find(string(raw)); found {
			eventHits++
			t.Errorf("Event %s/%s holds a canary (%s as %q)", ev.Namespace, ev.Name, cut(v, 20), cut(f, 20))
		}
	}
	answerHits := 0
	for _, st := range stats {
		answerHits += st.leakHit
	}

	t.Logf("garbage: %d requests in %d cases, %d at a time, answered in %s (scenario %s); %d not as expected",
		len(jobs), len(cases), garbageWorkers, took.Round(100*time.Millisecond), time.Since(began).Round(100*time.Millisecond), failures)
	t.Logf("garbage: sent by kind: %s", codeList(sentByKind))
	t.Logf("garbage: %d garbage requests answered %s; %d not a 4xx", garbage, codeList(byCode), not4xxCount)
	t.Logf("garbage: %d probes (well-formed, canary credentials) answered %s", probes, codeList(probeCodes))
	t.Logf("garbage: webhook PID %d throughout; RSS idle %s, peak %s (%d samples every 50 ms; ceiling %s), after %s",
		pid, mib(idle), mib(peak), samples, mib(idle+garbageRSSHeadroom), mib(after))
	t.Logf("garbage: canary scan over %d values (each request's key, %d credentials in Secrets, the environment's own): %d hits in %d answers, %d in %d log lines (%d bytes) of the webhook and kube-apiserver (longest %d bytes), %d in %d Events",
		len(canaries), len(creds), answerHits, len(jobs), logHits, logLines, logBytes, longest, eventHits, len(events.Items))
}

// garbageCase is one kind of garbage, sent n times with fresh canaries.
type garbageCase struct {
	name string
	// kind groups the cases in the figures: what about the request is wrong.
	kind string
	n    int
	// client is "cert-manager" (default), "admin", "anonymous" or
	// "bad-token"; method POST by default.
	client, method string
	// path follows /apis/<group>/v1alpha1/ (default "cloudflare"); one
	// starting with "/" is the whole path.
	path, query string
	// contentType is application/json by default; noContentType sends none.
	contentType string
	body        func(r *garbageRequest) []byte
	// stream, instead of body, is sent as it is read, without a
	// Content-Length.
	stream func(r *garbageRequest) io.Reader

	// code is the status every answer must have: a 4xx, unless the case is
	// a probe (see probe). A 201 must be a refusal
	// (response.success false, its message containing refusal), or with
	// skipped a CleanUp answered as done; a 4xx's Status message contains
	// message.
	code             int
	refusal, message string
	skipped          bool
}

const noContentType = "none"

// probe says the case is no garbage but a well-formed request, in an
// encoding the generic API server accepts, naming the canary credentials:
// the provider refuses it, and cert-manager's protocol answers a provider's
// refusal with 201 and success false. Probes check that no answer or log
// line repeats a credential or key that the solver really read and sent.
func (c *garbageCase) probe() bool { return c.code == http.StatusCreated }

type garbageRequest struct {
	i   int
	key string // a canary ACME key, this request's own
	ns  string // the namespace of the canary credentials
}

// request is a ChallengeRequest as cert-manager sends it, for the canary
// credentials of solver; change edits it.
func (r *garbageRequest) request(action, solver string, change func(map[string]any)) map[string]any {
	name, zone, config := "g.example.com", "example.com.", map[string]any{"apiTokenSecretRef": map[string]any{"name": "canary-cloudflare", "key": "api-token"}}
	if solver == "alidns" {
		name, zone, config = "g.example.net", "example.net.", map[string]any{
			"accessKeyIdSecretRef":     map[string]any{"name": "canary-alidns", "key": "access-key-id"},
			"accessKeySecretSecretRef": map[string]any{"name": "canary-alidns", "key": "access-key-secret"},
		}
	}
	req := map[string]any{"uid": "", "action": action, "type": "dns-01", "dnsName": name, "key": r.key,
		"resourceNamespace": r.ns, "resolvedFQDN": "_acme-challenge." + name + ".", "resolvedZone": zone,
		"allowAmbientCredentials": false, "config": config}
	if change != nil {
		change(req)
	}
	return req
}

// payload is a ChallengePayload around request, its fields in the order
// cert-manager's client writes them (apiVersion first).
func payload(request any) []byte {
	b, err := json.Marshal(map[string]any{"apiVersion": whapi.SchemeGroupVersion.String(), "kind": "ChallengePayload", "request": request})
	if err != nil {
		panic(err)
	}
	return b
}

func present(solver string, change func(map[string]any)) func(*garbageRequest) []byte {
	return func(r *garbageRequest) []byte { return payload(r.request("Present", solver, change)) }
}

func raw(s string) func(*garbageRequest) []byte {
	return func(*garbageRequest) []byte { return []byte(s) }
}

func set(field string, v any) func(map[string]any) { return func(m map[string]any) { m[field] = v } }

// garbageCases is the table of garbage. The refusals name the solver's
// message (solver/, internal/) or, for a 4xx, the generic API server's.
func garbageCases() []garbageCase {
	const tm = `"apiVersion":"webhook.acme.cert-manager.io/v1alpha1","kind":"ChallengePayload"`
	mib := strings.Repeat("a", 1<<20)
	canaryCF := func(ref string) func(map[string]any) {
		return set("config", map[string]any{"apiTokenSecretRef": map[string]any{"name": ref, "key": "api-token"}})
	}
	return []garbageCase{
		// Bodies that are not JSON, or not a ChallengePayload.
		{name: "json_truncated_anywhere", kind: "body", n: 200, body: func(r *garbageRequest) []byte {
			b := present("cloudflare", nil)(r)
			return b[:1+r.i*(len(b)-2)/200]
		}, code: 400},
		{name: "json_invalid_tokens", kind: "body", n: 80, body: func(r *garbageRequest) []byte {
			return []byte(`{` + tm + `,"request":{"action":"Present","key":"` + r.key + `",,}}`)
		}, code: 400, message: "invalid character"},
		{name: "json_not_an_object", kind: "body", n: 80, body: func(r *garbageRequest) []byte {
			return []byte([]string{`[]`, `"Present"`, `42`, `null`, `true`, ``, ` `, `{}`}[r.i%8])
		}, code: 400},
		{name: "kind_wrong", kind: "body", n: 60, body: raw(`{"apiVersion":"webhook.acme.cert-manager.io/v1alpha1","kind":"Secret","request":{}}`),
			code: 400, message: `no kind "Secret" is registered`},
		{name: "apiVersion_wrong", kind: "body", n: 60, body: raw(`{"apiVersion":"acme.cert-manager.io/v1","kind":"ChallengePayload","request":{}}`),
			code: 400, message: "is registered for version"},
		{name: "request_missing", kind: "body", n: 80, body: raw(`{` + tm + `}`), code: 400, message: "the ChallengePayload has no request"},
		{name: "request_null", kind: "body", n: 40, body: raw(`{` + tm + `,"request":null}`), code: 400, message: "the ChallengePayload has no request"},
		{name: "request_not_an_object", kind: "body", n: 40, body: raw(`{` + tm + `,"request":"Present"}`), code: 400, message: "cannot unmarshal"},
		{name: "action_unknown", kind: "body", n: 60, body: present("cloudflare", set("action", "Delete")),
			code: 400, message: `request.action "Delete" is not one of Present, CleanUp`},
		{name: "action_of_a_megabyte", kind: "body", n: 10, body: present("cloudflare", set("action", mib)), code: 400, message: "(1048576 characters)"},
		{name: "request_empty", kind: "body", n: 60, body: raw(`{` + tm + `,"request":{"action":"Present"}}`),
			code: 400, message: "malformed challenge request: resolvedFQDN, key, resourceNamespace missing"},
		{name: "cleanup_request_empty", kind: "body", n: 40, body: raw(`{` + tm + `,"request":{"action":"CleanUp"}}`),
			code: 400, message: "malformed challenge request: resolvedFQDN, key, resourceNamespace missing"},
		{name: "key_with_surrounding_whitespace", kind: "body", n: 40, body: func(r *garbageRequest) []byte {
			return present("cloudflare", set("key", " "+r.key+"\n"))(r)
		}, code: 400, message: "malformed challenge request: the key has surrounding whitespace"},
		{name: "type_meta_missing", kind: "body", n: 10, body: func(r *garbageRequest) []byte {
			b, _ := json.Marshal(map[string]any{"request": r.request("Present", "cloudflare", nil)})
			return b
		}, code: 201, refusal: "Cloudflare"},
		{name: "fields_unknown_warned", kind: "body", n: 10, body: func(r *garbageRequest) []byte {
			return bytes.Replace(present("cloudflare", set("surplus", r.key))(r), []byte(`{`), []byte(`{"spec":{},`), 1)
		}, code: 201, refusal: "Cloudflare"},
		{name: "fields_unknown_strict", kind: "body", n: 40, query: "?fieldValidation=Strict", body: func(r *garbageRequest) []byte {
			return bytes.Replace(present("cloudflare", nil)(r), []byte(`{`), []byte(`{"spec":{},`), 1)
		}, code: 400, message: `strict decoding error: unknown field "spec"`},
		{name: "fields_duplicate_strict", kind: "body", n: 40, query: "?fieldValidation=Strict", body: raw(`{` + tm + `,"kind":"ChallengePayload","request":{"action":"Present"}}`),
			code: 400, message: `duplicate field "kind"`},

		// Sizes and depths.
		{name: "body_4MiB", kind: "size", n: 20, body: present("cloudflare", func(m map[string]any) { m["key"] = m["key"].(string) + strings.Repeat(mib, 4) }),
			code: 413, message: "limit is 3145728"},
		{name: "body_64MiB_streamed", kind: "size", n: 4, stream: func(r *garbageRequest) io.Reader {
			start := present("cloudflare", set("key", r.key+"KEY-CONTINUES"))(r)
			start = start[:bytes.Index(start, []byte("KEY-CONTINUES"))]
			return io.MultiReader(bytes.NewReader(start), io.LimitReader(repeatReader('a'), 64<<20), strings.NewReader(`"}}`))
		}, code: 413, message: "limit is 3145728"},
		{name: "key_1MiB", kind: "size", n: 20, body: present("cloudflare", func(m map[string]any) { m["key"] = m["key"].(string) + mib }), code: 400,
			message: "malformed challenge request: the key is 1048619 bytes long; a TXT record's string holds 255"},
		{name: "resolvedFQDN_1MiB", kind: "size", n: 20, body: present("cloudflare", set("resolvedFQDN", "_acme-challenge."+mib+".example.com.")),
			code: 400, message: "malformed challenge request: resolvedFQDN"},
		{name: "dnsName_1MiB", kind: "size", n: 10, body: present("cloudflare", set("dnsName", mib)), code: 201, refusal: "Cloudflare"},
		{name: "secret_name_1MiB", kind: "size", n: 20, body: present("cloudflare", canaryCF(mib)), code: 400, message: "apiTokenSecretRef.name"},
		{name: "namespace_1MiB", kind: "size", n: 20, body: present("cloudflare", set("resourceNamespace", mib)), code: 400, message: "malformed challenge request: resourceNamespace"},
		{name: "json_nested_100000_deep", kind: "size", n: 20, body: func(*garbageRequest) []byte {
			return []byte(`{` + tm + `,"request":{"action":"Present","config":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}}`)
		}, code: 400, message: "exceeded max depth"},
		{name: "config_nested_9990_deep_pretty", kind: "size", n: 20, query: "?pretty=true", body: present("cloudflare", set("config", json.RawMessage(strings.Repeat("[", 9990)+strings.Repeat("]", 9990)))),
			code: 400, message: "config must be a JSON object"},

		// Content types.
		{name: "content_type_text_plain", kind: "content type", n: 60, contentType: "text/plain", body: present("cloudflare", nil), code: 415, message: "unknown format"},
		{name: "content_type_garbage", kind: "content type", n: 60, contentType: ";;;/=", body: present("cloudflare", nil), code: 415, message: "unknown format"},
		{name: "content_type_json_patch", kind: "content type", n: 40, contentType: "application/json-patch+json", body: raw(`[{"op":"add","path":"/request","value":{}}]`),
			code: 415, message: "unknown format"},
		{name: "content_type_cbor", kind: "content type", n: 40, contentType: "application/cbor", body: raw("\xd9\xd9\xf7\xa0"), code: 415, message: "unknown format"},
		{name: "content_type_none_json_body", kind: "content type", n: 10, contentType: noContentType, body: present("cloudflare", nil), code: 201, refusal: "Cloudflare"},
		{name: "content_type_none_garbage", kind: "content type", n: 40, contentType: noContentType, body: raw("\x00\x01garbage"), code: 400},
		{name: "json_with_charset_utf16", kind: "content type", n: 10, contentType: "application/json; charset=utf-16", body: present("cloudflare", nil), code: 201, refusal: "Cloudflare"},
		{name: "yaml_garbage", kind: "content type", n: 60, contentType: "application/yaml", body: raw("request: [\n  key: : -\n\t- {"), code: 400},
		{name: "yaml_alias_bomb", kind: "content type", n: 20, contentType: "application/yaml", body: raw(yamlBomb), code: 400, message: "excessive aliasing"},
		{name: "yaml_canary_payload", kind: "content type", n: 8, path: "alidns", contentType: "application/yaml", body: present("alidns", nil), code: 201, refusal: "Alibaba Cloud"},
		{name: "protobuf_garbage", kind: "content type", n: 40, contentType: "application/vnd.kubernetes.protobuf", body: raw("\x0a\x02zz\xff\xfe"), code: 400, message: "protobuf"},
		{name: "protobuf_envelope_garbage", kind: "content type", n: 40, contentType: "application/vnd.kubernetes.protobuf", body: protobufGarbage, code: 400},

		// Encodings and fields the solver refuses.
		{name: "utf8_invalid_in_strings", kind: "field", n: 10, body: func(r *garbageRequest) []byte {
			b := present("cloudflare", set("resolvedFQDN", "_acme-challenge.g\xff.example.com."))(r)
			// json.Marshal writes invalid bytes as U+FFFD; the raw bytes go
			// in here, in the key.
			return bytes.Replace(b, []byte(r.key), []byte(r.key[:20]+"\xff\xfe"+r.key[20:]), 1)
		}, code: 201, refusal: "cloudflare: "},
		{name: "utf8_invalid_outside_strings", kind: "field", n: 40, body: raw(`{` + tm + `,"request":{"action":"Present"}` + "\xff}"), code: 400, message: "invalid character"},
		{name: "config_unknown_field", kind: "field", n: 60, body: present("cloudflare", set("config", map[string]any{"apiTokenSecretref": map[string]any{"name": "canary-cloudflare", "key": "api-token"}})),
			code: 400, message: `unknown field "apiTokenSecretref"`},
		{name: "config_not_an_object", kind: "field", n: 40, body: present("alidns", set("config", []any{1, "two"})), code: 400, message: "config must be a JSON object"},
		{name: "config_missing", kind: "field", n: 40, body: present("cloudflare", func(m map[string]any) { delete(m, "config") }), code: 400, message: "the solver's config is empty"},
		{name: "namespace_does_not_exist", kind: "field", n: 10, body: func(r *garbageRequest) []byte {
			return present("cloudflare", set("resourceNamespace", fmt.Sprintf("scenario-garbage-absent-%d", r.i)))(r)
		}, code: 201, refusal: "not found in namespace"},
		{name: "namespace_path_traversal", kind: "field", n: 40, body: present("cloudflare", set("resourceNamespace", "../kube-system")), code: 400,
			message: `resourceNamespace "../kube-system" is not a namespace name`},
		{name: "cleanup_config_invalid_skipped", kind: "field", n: 40, body: func(r *garbageRequest) []byte {
			return payload(r.request("CleanUp", "cloudflare", set("config", map[string]any{"ttl": "soon"})))
		}, code: 201, skipped: true},

		// Valid-looking requests with canary credentials: each is refused
		// by the simulated provider, and no message repeats the credential.
		{name: "canary_cloudflare_token_present", kind: "credential", n: 20, body: present("cloudflare", nil), code: 201, refusal: "Cloudflare"},
		{name: "canary_cloudflare_token_cleanup", kind: "credential", n: 10, body: func(r *garbageRequest) []byte { return payload(r.request("CleanUp", "cloudflare", nil)) },
			code: 201, refusal: "Cloudflare"},
		{name: "canary_cloudflare_token_malformed", kind: "credential", n: 10, body: present("cloudflare", canaryCF("canary-cloudflare-malformed")), code: 201, refusal: "malformed"},
		{name: "canary_cloudflare_token_padded", kind: "credential", n: 10, body: present("cloudflare", canaryCF("canary-cloudflare-padded")), code: 201, refusal: "Cloudflare"},
		{name: "canary_cloudflare_global_key", kind: "credential", n: 10, body: present("cloudflare", set("config", map[string]any{
			"apiKeySecretRef": map[string]any{"name": "canary-cloudflare", "key": "api-key"}, "email": "garbage@example.com"})), code: 201, refusal: "Cloudflare"},
		{name: "canary_alidns_access_key_present", kind: "credential", n: 16, path: "alidns", body: present("alidns", nil), code: 201, refusal: "Alibaba Cloud"},
		{name: "canary_alidns_access_key_cleanup", kind: "credential", n: 8, path: "alidns", body: func(r *garbageRequest) []byte { return payload(r.request("CleanUp", "alidns", nil)) },
			code: 201, refusal: "Alibaba Cloud"},
		{name: "canary_alidns_sts_token", kind: "credential", n: 8, path: "alidns", body: present("alidns", set("config", map[string]any{
			"accessKeyIdSecretRef":     map[string]any{"name": "canary-alidns", "key": "access-key-id"},
			"accessKeySecretSecretRef": map[string]any{"name": "canary-alidns", "key": "access-key-secret"},
			"securityTokenSecretRef":   map[string]any{"name": "canary-alidns", "key": "security-token"}})), code: 201, refusal: "Alibaba Cloud"},
		{name: "canary_cloudflare_config_to_alidns", kind: "field", n: 40, path: "alidns", body: present("cloudflare", nil), code: 400, message: `unknown field "apiTokenSecretRef"`},

		// Paths, methods and identities.
		{name: "path_unknown_solver", kind: "path/method/identity", n: 40, path: "route53", body: present("cloudflare", nil), code: 404},
		{name: "path_namespaced", kind: "path/method/identity", n: 40, path: "namespaces/scenario-garbage/cloudflare", body: present("cloudflare", nil), code: 404},
		{name: "path_named", kind: "path/method/identity", n: 40, path: "cloudflare/challenge", body: present("cloudflare", nil), code: 404},
		{name: "path_unknown_group", kind: "path/method/identity", n: 40, path: "/apis/acme.example.org/v1alpha1/cloudflare", body: present("cloudflare", nil), code: 403, message: "cannot create resource"},
		{name: "method_get_as_admin", kind: "path/method/identity", n: 40, client: "admin", method: http.MethodGet, code: 405},
		{name: "method_put_as_admin", kind: "path/method/identity", n: 40, client: "admin", method: http.MethodPut, body: present("cloudflare", nil), code: 405},
		{name: "method_patch_as_admin", kind: "path/method/identity", n: 40, client: "admin", method: http.MethodPatch, contentType: "application/merge-patch+json", body: raw(`{"request":null}`), code: 405},
		{name: "method_delete_as_admin", kind: "path/method/identity", n: 40, client: "admin", method: http.MethodDelete, code: 405},
		{name: "method_get_as_cert_manager", kind: "path/method/identity", n: 40, method: http.MethodGet, code: 403, message: "cannot list resource"},
		{name: "method_delete_as_cert_manager", kind: "path/method/identity", n: 40, method: http.MethodDelete, code: 403, message: "cannot deletecollection resource"},
		{name: "identity_anonymous", kind: "path/method/identity", n: 40, client: "anonymous", body: present("cloudflare", nil), code: 403, message: `User "system:anonymous" cannot create`},
		{name: "identity_bad_token", kind: "path/method/identity", n: 40, client: "bad-token", body: present("cloudflare", nil), code: 401},
	}
}

// repeatReader reads as an endless run of one byte.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// yamlBomb is the billion laughs: nine levels of nine aliases.
var yamlBomb = func() string {
	b := "apiVersion: webhook.acme.cert-manager.io/v1alpha1\nkind: ChallengePayload\na0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	for i := 1; i < 10; i++ {
		alias := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 9), ",")
		b += fmt.Sprintf("a%d: &a%d [%s]\n", i, i, alias)
	}
	return b
}()

// protobufGarbage is Kubernetes' protobuf envelope (magic, then a
// runtime.Unknown naming ChallengePayload) around bytes that are no
// message.
func protobufGarbage(r *garbageRequest) []byte {
	u := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: whapi.SchemeGroupVersion.String(), Kind: "ChallengePayload"},
		Raw: []byte("\xff\xff\xff" + r.key), ContentType: "application/vnd.kubernetes.protobuf"}
	b, err := u.Marshal()
	if err != nil {
		panic(err)
	}
	return append([]byte("k8s\x00"), b...)
}

type garbageJob struct {
	c *garbageCase
	r *garbageRequest
}

type garbageResult struct {
	outcome string // "400", "201 refused", "201 skipped", "error"…
	message string
	size    int
	took    time.Duration
	problem string // why the answer is not the expected one
	leak    string
}

// garbageClients are HTTP clients for kube-apiserver, by identity.
func (e *env) garbageClients(t *testing.T) map[string]*garbageClient {
	t.Helper()
	kubeconfig, err := e.c.ServiceAccountKubeconfig(e.ctx, localcluster.CertManagerNamespace, localcluster.CertManagerServiceAccount)
	if err != nil {
		t.Fatal(err)
	}
	certManager, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := clientcmd.BuildConfigFromFlags("", e.c.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	anonymous := rest.AnonymousClientConfig(admin)
	badToken := rest.AnonymousClientConfig(admin)
	badToken.BearerToken = "not-a-token-of-this-cluster"
	out := map[string]*garbageClient{}
	for name, cfg := range map[string]*rest.Config{"cert-manager": certManager, "admin": admin, "anonymous": anonymous, "bad-token": badToken} {
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = &garbageClient{host: strings.TrimSuffix(cfg.Host, "/"), http: hc}
	}
	return out
}

type garbageClient struct {
	host string
	http *http.Client
}

func (e *env) sendGarbage(clients map[string]*garbageClient, j garbageJob, leaks *testutil.LeakIndex) garbageResult {
	c := j.c
	client := clients[cmp(c.client, "cert-manager")]
	path := "/apis/" + localcluster.GroupName + "/v1alpha1/" + cmp(c.path, "cloudflare")
	if strings.HasPrefix(c.path, "/") {
		path = c.path
	}
	var body io.Reader = http.NoBody
	switch {
	case c.body != nil:
		body = bytes.NewReader(c.body(j.r))
	case c.stream != nil:
		body = c.stream(j.r)
	}
	// A bound, not a measure: no answer may hang the run.
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, cmp(c.method, http.MethodPost), client.host+path+c.query, body)
	if err != nil {
		return garbageResult{outcome: "error", problem: err.Error()}
	}
	if ct := cmp(c.contentType, "application/json"); ct != noContentType {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("User-Agent", "certbridge-e2e-garbage")
	resp, err := client.http.Do(req)
	if err != nil {
		return garbageResult{outcome: "error", problem: "no answer: " + err.Error()}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, garbageMaxAnswer+1))
	res := garbageResult{outcome: strconv.Itoa(resp.StatusCode), size: len(answer)}
	if err != nil {
		res.outcome, res.problem = "error", "reading the answer: "+err.Error()
		return res
	}
	if len(answer) > garbageMaxAnswer {
		n, _ := io.Copy(io.Discard, resp.Body)
		res.size += int(n)
		res.problem = fmt.Sprintf("an answer of %d bytes, more than %d", res.size, garbageMaxAnswer)
	}
	// Headers (Warning repeats unknown field names) are part of the answer.
	scanned := string(answer) + fmt.Sprint(resp.Header)
	if v, f, found := leaks.Find(scanned); found {
		res.leak = fmt.Sprintf("%s… as %q", cut(v, 12), cut(f, 16))
	}
	problem := func(format string, args ...any) {
		if res.problem == "" {
			res.problem = fmt.Sprintf(format, args...)
		}
	}
	if resp.StatusCode != c.code {
		problem("answered %d, want %d: %s", resp.StatusCode, c.code, cut(string(answer), 400))
	}
	switch {
	case resp.StatusCode == http.StatusCreated:
		var p whapi.ChallengePayload
		if err := json.Unmarshal(answer, &p); err != nil || p.Response == nil {
			problem("a 201 that is not a ChallengePayload with a response: %v: %s", err, cut(string(answer), 400))
			return res
		}
		if p.Response.Result != nil {
			res.message = p.Response.Result.Message
		}
		switch {
		case p.Response.Success && c.skipped:
			res.outcome = "201 skipped"
		case p.Response.Success:
			res.outcome = "201 ACCEPTED"
			problem("a garbage request succeeded")
		default:
			res.outcome = "201 refused"
			if c.skipped {
				problem("a CleanUp that Present could not have served was refused: %s", res.message)
			}
			if res.message == "" || !strings.Contains(res.message, c.refusal) {
				problem("the refusal %q lacks %q", cut(res.message, 300), c.refusal)
			}
		}
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		var s metav1.Status
		if err := json.Unmarshal(answer, &s); err != nil || s.Code != int32(resp.StatusCode) {
			problem("a %d whose body is no Status of that code: %v: %s", resp.StatusCode, err, cut(string(answer), 400))
		}
		res.message = s.Message
		if !strings.Contains(s.Message, c.message) {
			problem("the message %q lacks %q", cut(s.Message, 300), c.message)
		}
	default:
		problem("answered %d: %s", resp.StatusCode, cut(string(answer), 400))
	}
	return res
}

// canarySecrets creates the credentials the garbage requests name, each a
// fresh random canary, and returns their values.
func (e *env) canarySecrets(t *testing.T, ns string) []string {
	t.Helper()
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	token, padded := randomString(40, alnum+"_-"), randomString(40, alnum)
	malformed := randomString(12, alnum) + " " + randomString(12, alnum) + "!"
	globalKey := randomString(37, "0123456789abcdef")
	aliID, aliSecret, aliToken := "LTAI"+randomString(20, alnum), randomString(30, alnum), randomString(64, alnum+"/+")
	for name, data := range map[string]map[string]string{
		"canary-cloudflare":           {"api-token": token, "api-key": globalKey},
		"canary-cloudflare-malformed": {"api-token": malformed},
		"canary-cloudflare-padded":    {"api-token": " " + padded + "\n"},
		"canary-alidns":               {"access-key-id": aliID, "access-key-secret": aliSecret, "security-token": aliToken},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}
		if _, err := e.c.Kube.CoreV1().Secrets(ns).Create(e.ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return []string{token, padded, " " + padded + "\n", malformed, globalKey, aliID, aliSecret, aliToken}
}

// validChallenge presents and cleans up a real challenge through the
// aggregated API, as cert-manager does, and checks the record in the
// simulator.
func (e *env) validChallenge(t *testing.T, client *garbageClient, solver, ns, key string) {
	t.Helper()
	fqdn := "_acme-challenge.garbage-after.example.com"
	config := map[string]any{"apiTokenSecretRef": map[string]any{"name": "cloudflare-api-token", "key": "api-token"}}
	records := func() []string {
		var out []string
		for _, r := range e.c.Cloudflare.Records(fqdn) {
			out = append(out, strings.Trim(r.Content, `"`))
		}
		return out
	}
	if solver == "alidns" {
		fqdn = "_acme-challenge.garbage-after.example.net"
		config = map[string]any{
			"accessKeyIdSecretRef":     map[string]any{"name": "alidns-access-key", "key": "access-key-id"},
			"accessKeySecretSecretRef": map[string]any{"name": "alidns-access-key", "key": "access-key-secret"},
		}
		records = func() []string {
			var out []string
			for _, r := range e.c.Alibaba.Records(fqdn) {
				out = append(out, r.Value)
			}
			return out
		}
	}
	for _, action := range []string{"Present", "CleanUp"} {
		body := payload(map[string]any{"uid": "garbage-after", "action": action, "type": "dns-01", "dnsName": strings.TrimPrefix(fqdn, "_acme-challenge."),
			"key": key, "resourceNamespace": ns, "resolvedFQDN": fqdn + ".", "resolvedZone": fqdn[strings.Index(fqdn, "example"):] + ".",
			"allowAmbientCredentials": false, "config": config})
		req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, client.host+"/apis/"+localcluster.GroupName+"/v1alpha1/"+solver, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.http.Do(req)
		if err != nil {
			t.Fatalf("%s %s after the garbage: %v", solver, action, err)
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, garbageMaxAnswer))
		resp.Body.Close()
		var p whapi.ChallengePayload
		if err := json.Unmarshal(answer, &p); resp.StatusCode != http.StatusCreated || err != nil || p.Response == nil || !p.Response.Success {
			t.Fatalf("%s %s after the garbage: %s %s", solver, action, resp.Status, cut(string(answer), 600))
		}
		if p.Response.UID != "garbage-after" || p.Request != nil {
			t.Errorf("%s %s: the answer should carry the request's UID and no request: %s", solver, action, cut(string(answer), 600))
		}
		got := records()
		if present := slices.Contains(got, key); present != (action == "Present") {
			t.Errorf("after %s through %s, the TXT records at %s are %q", action, solver, fqdn, got)
		}
	}
	t.Logf("garbage: afterwards a real Present and CleanUp through %s created and removed the TXT record at %s", solver, fqdn)
}

// rssSampler reads a process's VmRSS every 50 ms until stopped.
type rssSampler struct {
	stopCh  chan struct{}
	done    chan struct{}
	peak    int64
	samples int
	err     error
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stopCh:
				return
			case <-tick.C:
			}
			v, err := vmRSS(pid)
			if err != nil {
				s.err = err
				return
			}
			s.samples++
			s.peak = max(s.peak, v)
		}
	}()
	return s
}

func (s *rssSampler) stop() (peak int64, samples int, err error) {
	close(s.stopCh)
	<-s.done
	return s.peak, s.samples, s.err
}

// vmRSS is a process's resident set size in bytes.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// scanLog reports each line of a log holding a canary, and counts lines,
// bytes and the longest line.
func scanLog(t *testing.T, path string, leaks *testutil.LeakIndex) (hits, lines, size, longest int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for n := 1; ; n++ {
		line, err := r.ReadString('\n')
		if line != "" {
			lines++
			size += len(line)
			longest = max(longest, len(line))
			if v, form, found := leaks.Find(line); found {
				hits++
				if hits <= 5 {
					t.Errorf("%s:%d holds a canary (%s… as %q): %s", filepath.Base(path), n, cut(v, 12), cut(form, 16), cut(line, 300))
				}
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// acmeKey is a canary shaped like a DNS01 key: the base64url of 32 random
// bytes, as cert-manager sends.
func acmeKey() string { return base64.RawURLEncoding.EncodeToString(randomBytes(32)) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func randomString(n int, alphabet string) string {
	b := randomBytes(n)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func cmp(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("…(%d bytes)", len(s))
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// codeList is "400×12, 201 refused×3", most frequent first.
func codeList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
