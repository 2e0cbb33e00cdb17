package cloudflare

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certbridge/certbridge/test/sim/simkit"
)

// BasePath is where the API lives on the simulator, as on api.cloudflare.com.
const BasePath = "/client/v4"

// Fault is an injected failure for the next matching calls.
type Fault struct {
	// Route selects calls by their counter name (see Calls), e.g.
	// "POST /zones/{zone_id}/dns_records"; empty matches every call.
	Route string
	// Times is how many calls the fault hits; 0 means 1.
	Times int
	// Delay is slept before answering (or dropping).
	Delay time.Duration
	// Drop closes the connection without an answer, before the call is
	// handled: nothing changes.
	Drop bool
	// LoseAnswer handles the call (a change it asks for is made) and then
	// closes the connection without the answer, as when a connection breaks
	// after the API committed: the client cannot tell whether it happened.
	LoseAnswer bool
	// Status, when set, answers with this HTTP status and an error envelope
	// holding Code and Message.
	Status  int
	Code    int
	Message string
	// Header is added to the faulty answer (e.g. Retry-After).
	Header http.Header
}

// RateLimit is the per-user request quota: Limit calls per Window, for all
// the user's clients together. Exceeding it blocks every call for Window,
// as Cloudflare does (429, code 971).
type RateLimit struct {
	Limit  int
	Window time.Duration
}

// CloudflareRateLimit is the documented budget: 1200 requests per 5 minutes.
var CloudflareRateLimit = RateLimit{Limit: 1200, Window: 5 * time.Minute}

// Server is a running simulator.
type Server struct {
	*state
	http   *httptest.Server
	origin originCA

	mu         sync.Mutex
	calls      simkit.Counter
	faults     simkit.Queue[Fault]
	limit      RateLimit
	windowEnd  time.Time
	count      int
	blockedTil time.Time
	rejected   int
	rejectedBy map[string]int // by API token
	countedBy  map[string]int // calls counted against the quota, by API token
	batches    int
	now        func() time.Time
	latency    simkit.Latency
}

// Start runs a simulator on 127.0.0.1 until Close. It answers with
// simkit.DefaultLatency.
func Start() *Server {
	s := &Server{state: newState(), now: time.Now, latency: simkit.DefaultLatency}
	s.http = httptest.NewServer(s)
	return s
}

// Close stops the simulator.
func (s *Server) Close() { s.http.Close() }

// URL is the API base URL to give a client: http://127.0.0.1:PORT/client/v4.
func (s *Server) URL() string { return s.http.URL + BasePath }

// AddZone adds an active zone to DefaultAccount and returns it.
func (s *Server) AddZone(name string) Zone { return *s.addZone(name, ZoneActive, DefaultAccount) }

// ZoneSpec is a zone to add: its status ("active" when empty) and account
// (DefaultAccount when empty).
type ZoneSpec struct {
	Name, Status, Account string
}

// AddZoneSpec adds a zone as spec says and returns it.
func (s *Server) AddZoneSpec(spec ZoneSpec) Zone {
	if spec.Status == "" {
		spec.Status = ZoneActive
	}
	return *s.addZone(spec.Name, spec.Status, spec.Account)
}

// SetZoneStatus changes a zone's status (a pending zone activated, an
// active one moved).
func (s *Server) SetZoneStatus(id, status string) {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	if z := s.zoneByID(id); z != nil {
		z.Status = status
	}
}

// AllZones returns copies of every zone, ordered by name.
func (s *Server) AllZones() []Zone {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	var out []Zone
	for _, z := range s.zones {
		out = append(out, *z)
	}
	return out
}

// RecordsIn returns a copy of the records of one zone.
func (s *Server) RecordsIn(zoneID string) []Record {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	var out []Record
	for _, r := range s.records[zoneID] {
		out = append(out, *r)
	}
	return out
}

// DeleteZone removes a zone and its records, as deleting it in the dashboard does.
func (s *Server) DeleteZone(id string) {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	for i, z := range s.zones {
		if z.ID == id {
			s.zones = append(s.zones[:i:i], s.zones[i+1:]...)
			break
		}
	}
	delete(s.records, id)
}

// AddToken makes an API token known.
func (s *Server) AddToken(t Token) {
	if t.Status == "" {
		t.Status = TokenActive
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	s.tokens[t.Value] = &t
}

// AddGlobalKey makes a Global API key + email pair known.
func (s *Server) AddGlobalKey(email, key string) {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	s.keys = append(s.keys, globalKey{email: strings.ToLower(email), key: key})
}

// SetLatency sets how long answers take after the call arrived (and was
// counted); simkit.Instant answers at once.
func (s *Server) SetLatency(l simkit.Latency) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = l
}

// SetRateLimit enforces a budget; the zero value disables it.
func (s *Server) SetRateLimit(l RateLimit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit, s.windowEnd, s.count, s.blockedTil = l, time.Time{}, 0, time.Time{}
}

// SpendQuota spends what is left of the user's quota, as another client of
// the user would: the next call exceeds it and blocks the user for a whole
// window (429 with Retry-After), as Cloudflare does.
func (s *Server) SpendQuota() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !now.Before(s.windowEnd) {
		s.windowEnd = now.Add(s.limit.Window)
	}
	s.count = s.limit.Limit
}

// InjectFault queues a fault; faults apply in the order injected.
func (s *Server) InjectFault(f Fault) { s.faults.Add(f, f.Times) }

// Matches implements simkit.Injected.
func (f Fault) Matches(route string) bool { return f.Route == "" || f.Route == route }

// Disruption implements simkit.Injected.
func (f Fault) Disruption() (time.Duration, bool, bool) { return f.Delay, f.Drop, f.LoseAnswer }

// PendingFaults is how many uses the injected faults have left.
func (s *Server) PendingFaults() int { return s.faults.Pending() }

// Calls returns how many calls reached each route, keyed like
// "GET /zones" or "DELETE /zones/{zone_id}/dns_records/{id}".
func (s *Server) Calls() map[string]int { return s.calls.Snapshot() }

// TotalCalls is the sum of Calls.
func (s *Server) TotalCalls() int {
	n := 0
	for _, v := range s.Calls() {
		n += v
	}
	return n
}

// RejectedFor counts the 429s one API token was answered.
func (s *Server) RejectedFor(token string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejectedBy[token]
}

// CountedFor counts the calls of one API token that the rate limit
// counted (not refused).
func (s *Server) CountedFor(token string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.countedBy[token]
}

// Batches counts the batch calls that were applied or refused whole.
func (s *Server) Batches() int {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	return s.batches
}

// Rejected counts the calls answered 429 by the rate limit.
func (s *Server) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

// ResetCalls zeroes the call counters.
func (s *Server) ResetCalls() { s.calls.Reset() }

// Records returns a copy of the records stored at name (any type).
func (s *Server) Records(name string) []Record {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	name = canonicalName(name)
	var out []Record
	for _, rs := range s.records {
		for _, r := range rs {
			if r.Name == name {
				out = append(out, *r)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedOn.Before(out[j].CreatedOn) })
	return out
}

// AllRecords returns every stored record.
func (s *Server) AllRecords() []Record {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	var out []Record
	for _, rs := range s.records {
		for _, r := range rs {
			out = append(out, *r)
		}
	}
	return out
}

type route struct {
	method  string
	pattern *regexp.Regexp
	name    string
	handle  func(s *Server, w http.ResponseWriter, r *http.Request, p principal, args []string)
}

var routes = []route{
	{http.MethodGet, regexp.MustCompile(`^/user/tokens/verify$`), "GET /user/tokens/verify", (*Server).verifyToken},
	{http.MethodGet, regexp.MustCompile(`^/zones$`), "GET /zones", (*Server).listZones},
	{http.MethodGet, regexp.MustCompile(`^/zones/([^/]+)/dns_records$`), "GET /zones/{zone_id}/dns_records", (*Server).listRecords},
	{http.MethodPost, regexp.MustCompile(`^/zones/([^/]+)/dns_records$`), "POST /zones/{zone_id}/dns_records", (*Server).createRecord},
	{http.MethodPost, regexp.MustCompile(`^/zones/([^/]+)/dns_records/batch$`), "POST /zones/{zone_id}/dns_records/batch", (*Server).batchRecords},
	{http.MethodGet, regexp.MustCompile(`^/zones/([^/]+)/dns_records/([^/]+)$`), "GET /zones/{zone_id}/dns_records/{id}", (*Server).getRecord},
	{http.MethodDelete, regexp.MustCompile(`^/zones/([^/]+)/dns_records/([^/]+)$`), "DELETE /zones/{zone_id}/dns_records/{id}", (*Server).deleteRecord},
	{http.MethodPost, regexp.MustCompile(`^/certificates$`), "POST /certificates", (*Server).createOriginCert},
	{http.MethodGet, regexp.MustCompile(`^/certificates$`), "GET /certificates", (*Server).listOriginCerts},
	{http.MethodGet, regexp.MustCompile(`^/certificates/([^/]+)$`), "GET /certificates/{id}", (*Server).getOriginCert},
	{http.MethodDelete, regexp.MustCompile(`^/certificates/([^/]+)$`), "DELETE /certificates/{id}", (*Server).revokeOriginCert},
}

// ServeHTTP answers a request after the simulator's latency; it is
// counted, and takes effect, when it arrives.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	latency.Serve(w, r, func(w http.ResponseWriter) { s.route(w, r) })
}

// route handles a request: count, fault, authenticate, rate-limit, handle.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, BasePath)
	if !ok {
		writeError(w, http.StatusNotFound, errItem(7000, "No route for that URI"))
		return
	}
	path = strings.TrimSuffix(path, "/")
	var rt *route
	var args []string
	for i := range routes {
		if m := routes[i].pattern.FindStringSubmatch(path); m != nil && routes[i].method == r.Method {
			rt, args = &routes[i], m[1:]
			break
		}
	}
	if rt == nil {
		writeError(w, http.StatusBadRequest, errItem(7003, "Could not route to "+path+", perhaps your object identifier is invalid?"), errItem(7000, "No route for that URI"))
		return
	}
	s.calls.Add(rt.name)
	serve := func(w http.ResponseWriter) {
		authenticate := s.authenticate
		if strings.Contains(rt.name, " /certificates") {
			authenticate = s.authenticateOriginCA
		}
		p, ok := authenticate(w, r, rt.name)
		if !ok {
			return
		}
		if !s.admit(w, p) {
			return
		}
		rt.handle(s, w, r, p, args)
	}
	if f, ok := s.faults.Take(rt.name); ok {
		simkit.Apply(w, f, f.answer, serve)
		return
	}
	serve(w)
}

// answer writes the fault's error answer; false for a fault without one.
func (f Fault) answer(w http.ResponseWriter) bool {
	if f.Status == 0 {
		return false // latency only
	}
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	writeError(w, f.Status, errItem(f.Code, f.Message))
	return true
}

// admit counts the call against the user's quota, shared by every client
// of the user: a fixed window of Limit calls per Window from the first
// call; the call that exceeds it blocks the user for a whole Window (429,
// code 971), as Cloudflare does. Every answer carries Ratelimit and
// Ratelimit-Policy with the count, in the structured-field form Cloudflare
// sends (the reference does not say whether Cloudflare's window is fixed
// or sliding; a fixed one is what its "seconds to the reset" describes).
func (s *Server) admit(w http.ResponseWriter, p principal) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit.Limit == 0 {
		return true
	}
	now := s.now()
	if !now.Before(s.windowEnd) {
		s.windowEnd, s.count = now.Add(s.limit.Window), 0
	}
	secs := func(d time.Duration) int { return int(math.Ceil(d.Seconds())) }
	w.Header().Set("Ratelimit-Policy", fmt.Sprintf(`"default";q=%d;w=%d`, s.limit.Limit, secs(s.limit.Window)))
	if now.Before(s.blockedTil) || s.count >= s.limit.Limit {
		if !now.Before(s.blockedTil) {
			s.blockedTil = now.Add(s.limit.Window)
			s.windowEnd = s.blockedTil // the next window starts after the block
		}
		s.rejected++
		if p.token != nil {
			if s.rejectedBy == nil {
				s.rejectedBy = map[string]int{}
			}
			s.rejectedBy[p.token.Value]++
		}
		wait := secs(s.blockedTil.Sub(now))
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		w.Header().Set("Ratelimit", fmt.Sprintf(`"default";r=0;t=%d`, wait))
		writeError(w, http.StatusTooManyRequests, errItem(971, "Please wait and consider throttling your request speed"))
		return false
	}
	s.count++
	if p.token != nil {
		if s.countedBy == nil {
			s.countedBy = map[string]int{}
		}
		s.countedBy[p.token.Value]++
	}
	w.Header().Set("Ratelimit", fmt.Sprintf(`"default";r=%d;t=%d`, s.limit.Limit-s.count, secs(s.windowEnd.Sub(now))))
	return true
}

var (
	// Pre-2026 tokens are 40 URL-safe characters; new ones carry a cfut_/cfat_ prefix.
	tokenFormat = regexp.MustCompile(`^([A-Za-z0-9_-]{40}|cf(ut|at)_[A-Za-z0-9_-]{20,})$`)
	// Pre-2026 Global API keys are 37–45 lowercase hex characters; new ones start cfk_.
	keyFormat   = regexp.MustCompile(`^([0-9a-f]{37,45}|cfk_[A-Za-z0-9_-]{20,})$`)
	emailFormat = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
)

func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, routeName string) (principal, bool) {
	bearer, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	email, key := r.Header.Get("X-Auth-Email"), r.Header.Get("X-Auth-Key")
	verify := routeName == "GET /user/tokens/verify"
	switch {
	case r.Header.Get("Authorization") != "" && hasBearer:
		if !tokenFormat.MatchString(bearer) {
			writeError(w, http.StatusBadRequest, apiError{Code: 6003, Message: "Invalid request headers",
				Chain: []apiError{{Code: 6111, Message: "Invalid format for Authorization header"}}})
			return principal{}, false
		}
		s.state.mu.Lock()
		t := s.tokens[bearer]
		s.state.mu.Unlock()
		if verify {
			if t == nil || strings.HasPrefix(bearer, "cfat_") {
				writeError(w, http.StatusUnauthorized, errItem(1000, "Invalid API Token"))
				return principal{}, false
			}
			return principal{token: t}, true
		}
		if t == nil || t.Status != TokenActive {
			writeError(w, http.StatusForbidden, errItem(9109, "Invalid access token"))
			return principal{}, false
		}
		return principal{token: t}, true
	case r.Header.Get("Authorization") != "":
		writeError(w, http.StatusBadRequest, apiError{Code: 6003, Message: "Invalid request headers",
			Chain: []apiError{{Code: 6111, Message: "Invalid format for Authorization header"}}})
		return principal{}, false
	case email != "" || key != "":
		if verify {
			writeError(w, http.StatusBadRequest, errItem(1001, `Missing "Authorization" header`))
			return principal{}, false
		}
		if !emailFormat.MatchString(email) {
			writeError(w, http.StatusBadRequest, apiError{Code: 6003, Message: "Invalid request headers",
				Chain: []apiError{{Code: 6102, Message: "Invalid format for X-Auth-Email header"}}})
			return principal{}, false
		}
		if !keyFormat.MatchString(key) {
			writeError(w, http.StatusBadRequest, apiError{Code: 6003, Message: "Invalid request headers",
				Chain: []apiError{{Code: 6103, Message: "Invalid format for X-Auth-Key header"}}})
			return principal{}, false
		}
		s.state.mu.Lock()
		defer s.state.mu.Unlock()
		for _, k := range s.keys {
			if k.email == strings.ToLower(email) && k.key == key {
				return principal{}, true
			}
		}
		writeError(w, http.StatusForbidden, errItem(9103, "Unknown X-Auth-Key or X-Auth-Email"))
		return principal{}, false
	default:
		if verify {
			writeError(w, http.StatusBadRequest, errItem(1001, `Missing "Authorization" header`))
			return principal{}, false
		}
		writeError(w, http.StatusBadRequest, errItem(9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers"))
		return principal{}, false
	}
}

// apiError is one item of an envelope's errors.
type apiError struct {
	Code    int        `json:"code"`
	Message string     `json:"message"`
	Chain   []apiError `json:"error_chain,omitempty"`
}

type resultInfo struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	Count      int `json:"count"`
	TotalCount int `json:"total_count"`
	TotalPages int `json:"total_pages"`
}

type envelope struct {
	Success    bool        `json:"success"`
	Errors     []apiError  `json:"errors"`
	Messages   []any       `json:"messages"`
	Result     any         `json:"result"`
	ResultInfo *resultInfo `json:"result_info,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, e envelope) {
	if e.Errors == nil {
		e.Errors = []apiError{}
	}
	if e.Messages == nil {
		e.Messages = []any{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

func writeError(w http.ResponseWriter, status int, errs ...apiError) {
	writeJSON(w, status, envelope{Success: false, Errors: errs})
}

func writeResult(w http.ResponseWriter, result any) {
	writeJSON(w, http.StatusOK, envelope{Success: true, Result: result})
}

// paginate applies page/per_page the way the v4 API does: a consistent
// result_info, and an empty result past the last page. A page number
// beyond 32 bits is refused as invalid ([INF]: the reference gives no
// maximum).
func paginate[T any](w http.ResponseWriter, r *http.Request, items []T, defPer, minPer, maxPer int) ([]T, *resultInfo, bool) {
	q := r.URL.Query()
	page, per := 1, defPer
	if v := q.Get("page"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < 1 || n > math.MaxInt32 || n != math.Trunc(n) {
			writeError(w, http.StatusBadRequest, errItem(1001, "Invalid page number"))
			return nil, nil, false
		}
		page = int(n)
	}
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < float64(minPer) || n > float64(maxPer) || n != math.Trunc(n) {
			writeError(w, http.StatusBadRequest, errItem(1001, "Invalid per_page value"))
			return nil, nil, false
		}
		per = int(n)
	}
	total := len(items)
	pages := (total + per - 1) / per
	start := min((page-1)*per, total)
	end := min(start+per, total)
	out := items[start:end]
	if out == nil {
		out = []T{}
	}
	return out, &resultInfo{Page: page, PerPage: per, Count: len(out), TotalCount: total, TotalPages: pages}, true
}

func errItem(code int, message string) apiError { return apiError{Code: code, Message: message} }
