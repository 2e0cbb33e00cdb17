package cloudflare

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/certbridge/certbridge/internal/dnstxt"
)

var zoneIDFormat = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (s *Server) verifyToken(w http.ResponseWriter, _ *http.Request, p principal, _ []string) {
	t := p.token
	result := map[string]any{"id": tokenID(t.Value), "status": string(t.Status)}
	if !t.ExpiresOn.IsZero() {
		result["expires_on"] = t.ExpiresOn.UTC().Format(time.RFC3339)
	}
	var msgs []any
	if t.Status == TokenActive {
		msgs = []any{map[string]any{"code": 10000, "message": "This API Token is valid and active", "type": nil}}
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Result: result, Messages: msgs})
}

// tokenID derives a stable, non-secret id for a token.
func tokenID(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:16])
}

func (s *state) zoneJSON(z *Zone) map[string]any {
	return map[string]any{
		"id": z.ID, "name": z.Name, "status": z.Status, "paused": false, "type": "full",
		"account":      map[string]any{"id": z.AccountID, "name": s.accounts[z.AccountID]},
		"name_servers": []string{"ada.ns.cloudflare.com", "bob.ns.cloudflare.com"},
		"created_on":   "2024-01-17T20:37:05.368097Z", "modified_on": "2024-01-17T20:37:05.368097Z",
	}
}

// matchOperator applies the zone list's operator forms ("contains:x", …),
// case-insensitively; a bare value is an exact match.
func matchOperator(filter, value string) bool {
	op, arg, found := strings.Cut(filter, ":")
	if !found {
		return strings.EqualFold(filter, value)
	}
	v, a := strings.ToLower(value), strings.ToLower(arg)
	switch op {
	case "equal":
		return v == a
	case "not_equal":
		return v != a
	case "contains":
		return strings.Contains(v, a)
	case "starts_with":
		return strings.HasPrefix(v, a)
	case "ends_with":
		return strings.HasSuffix(v, a)
	default:
		return strings.EqualFold(filter, value)
	}
}

func (s *Server) listZones(w http.ResponseWriter, r *http.Request, p principal, _ []string) {
	q := r.URL.Query()
	s.state.mu.Lock()
	var out []map[string]any
	for _, z := range s.zones {
		if !p.can(ZoneRead, z) {
			continue
		}
		if n := q.Get("name"); n != "" && !matchOperator(canonicalName(n), z.Name) {
			continue
		}
		if st := q.Get("status"); st != "" && st != z.Status {
			continue
		}
		if a := q.Get("account.id"); a != "" && a != z.AccountID {
			continue
		}
		out = append(out, s.zoneJSON(z))
	}
	s.state.mu.Unlock()
	page, info, ok := paginate(w, r, out, 20, 5, 50)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Result: page, ResultInfo: info})
}

// zoneForRequest resolves the zone in the path and checks the permission on it.
// It answers the error itself and returns nil when the call cannot proceed.
func (s *Server) zoneForRequest(w http.ResponseWriter, p principal, id string, perm Permission) *Zone {
	s.state.mu.Lock()
	z := s.zoneByID(id)
	s.state.mu.Unlock()
	if !zoneIDFormat.MatchString(id) || z == nil {
		writeError(w, http.StatusBadRequest,
			errItem(7003, "Could not route to /zones/"+id+"/dns_records, perhaps your object identifier is invalid?"),
			errItem(7000, "No route for that URI"))
		return nil
	}
	if !p.can(perm, z) {
		writeError(w, http.StatusForbidden, errItem(10000, "Authentication error"))
		return nil
	}
	return z
}

func recordJSON(r *Record) map[string]any {
	var comment any
	if r.Comment != "" {
		comment = r.Comment
	}
	return map[string]any{
		"id": r.ID, "name": r.Name, "type": r.Type, "content": r.Content,
		"proxiable": false, "proxied": false, "ttl": r.TTL,
		"settings": map[string]any{}, "meta": map[string]any{}, "comment": comment, "tags": []string{},
		"created_on": r.CreatedOn.UTC().Format(time.RFC3339Nano), "modified_on": r.ModifiedOn.UTC().Format(time.RFC3339Nano),
	}
}

// stringFilter applies a name or content filter: the legacy bare parameter,
// or the dotted forms (exact, contains, startswith, endswith). All are
// case-insensitive on the stored string.
func stringFilter(q url.Values, field, value string) (applies, ok bool) {
	v := strings.ToLower(value)
	check := func(key string, f func(v, arg string) bool) {
		if !q.Has(key) {
			return
		}
		applies = true
		if !f(v, strings.ToLower(q.Get(key))) {
			ok = false
		}
	}
	ok = true
	check(field, func(v, a string) bool { return v == a })
	check(field+".exact", func(v, a string) bool { return v == a })
	check(field+".contains", strings.Contains)
	check(field+".startswith", strings.HasPrefix)
	check(field+".endswith", strings.HasSuffix)
	return applies, ok
}

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request, p principal, args []string) {
	z := s.zoneForRequest(w, p, args[0], DNSRead)
	if z == nil {
		return
	}
	q := r.URL.Query()
	// Names are compared in their canonical form, as the API stores them.
	if q.Has("name") {
		q.Set("name", canonicalName(q.Get("name")))
	}
	if q.Has("name.exact") {
		q.Set("name.exact", canonicalName(q.Get("name.exact")))
	}
	matchAny := q.Get("match") == "any"
	s.state.mu.Lock()
	var out []map[string]any
	recs := append([]*Record(nil), s.records[z.ID]...)
	s.state.mu.Unlock()
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	for _, rec := range recs {
		var results []bool
		if t := q.Get("type"); t != "" {
			results = append(results, strings.EqualFold(t, rec.Type))
		}
		if applies, ok := stringFilter(q, "name", rec.Name); applies {
			results = append(results, ok)
		}
		if applies, ok := stringFilter(q, "content", rec.Content); applies {
			results = append(results, ok)
		}
		if applies, ok := stringFilter(q, "comment", rec.Comment); applies {
			results = append(results, ok)
		}
		keep := !matchAny || len(results) == 0
		for _, ok := range results {
			if matchAny && ok {
				keep = true
			}
			if !matchAny && !ok {
				keep = false
			}
		}
		if keep {
			out = append(out, recordJSON(rec))
		}
	}
	page, info, ok := paginate(w, r, out, 100, 1, 5_000_000)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Result: page, ResultInfo: info})
}

type createBody struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Content string `json:"content"`
	TTL     *int   `json:"ttl"`
	Comment string `json:"comment"`
	Proxied bool   `json:"proxied"`
}

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request, p principal, args []string) {
	z := s.zoneForRequest(w, p, args[0], DNSEdit)
	if z == nil {
		return
	}
	var body createBody // unknown and zero-valued fields are ignored, as the API does
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, errItem(9207, "Request body is invalid."))
		return
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	rec, status, aerr := s.newRecord(z, body, s.records[z.ID])
	if aerr != nil {
		writeError(w, status, *aerr)
		return
	}
	s.records[z.ID] = append(s.records[z.ID], rec)
	writeResult(w, recordJSON(rec))
}

// newRecord validates a record to create in z beside existing, as the API
// does, and builds it; the caller holds the state's lock.
func (s *Server) newRecord(z *Zone, body createBody, existing []*Record) (*Record, int, *apiError) {
	bad := func(code int, msg string) (*Record, int, *apiError) {
		e := errItem(code, msg)
		return nil, http.StatusBadRequest, &e
	}
	name := canonicalName(body.Name)
	switch {
	case name == "" || name == "@":
		name = z.Name
	case name != z.Name && !strings.HasSuffix(name, "."+z.Name):
		name = name + "." + z.Name // relative names are completed with the zone
	}
	typ := strings.ToUpper(body.Type)
	if typ == "" {
		return bad(9000, "DNS record type is invalid.")
	}
	ttl := 1
	if body.TTL != nil {
		ttl = *body.TTL
	}
	if ttl != 1 && (ttl < 60 || ttl > 86400) {
		return bad(9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.")
	}
	if strings.ContainsAny(body.Comment, "\r\n") || len(body.Comment) > 100 {
		return bad(9101, "DNS record comment is invalid.")
	}
	if typ == "TXT" {
		if _, ok := dnstxt.Split(body.Content); !ok || body.Content == "" || len(body.Content) > 2048 {
			return bad(1004, "DNS Validation Error")
		}
	}
	total := 0
	for _, rec := range existing {
		if rec.Name != name {
			continue
		}
		if rec.Type == typ && rec.Content == body.Content {
			return bad(81058, "An identical record already exists.")
		}
		if rec.Type == "TXT" {
			total += len(rec.Content)
		}
	}
	if typ == "TXT" && total+len(body.Content) > 8192 {
		return bad(1004, "DNS Validation Error")
	}
	now := time.Now()
	return &Record{ID: newID(), ZoneID: z.ID, Name: name, Type: typ, Content: body.Content, TTL: ttl,
		Comment: body.Comment, CreatedOn: now, ModifiedOn: now}, 0, nil
}

// MaxBatch is how many record changes one batch may hold on a Free zone
// (Pro and above: 3,500).
const MaxBatch = 200

type batchBody struct {
	Deletes []struct {
		ID string `json:"id"`
	} `json:"deletes"`
	Patches []json.RawMessage `json:"patches"`
	Puts    []json.RawMessage `json:"puts"`
	Posts   []createBody      `json:"posts"`
}

// batchRecords applies deletes then posts in one transaction: every
// operation is checked against the state the earlier ones leave, and if
// any fails none is applied and the first failure's error is the answer.
func (s *Server) batchRecords(w http.ResponseWriter, r *http.Request, p principal, args []string) {
	z := s.zoneForRequest(w, p, args[0], DNSEdit)
	if z == nil {
		return
	}
	var body batchBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, errItem(9207, "Request body is invalid."))
		return
	}
	if len(body.Patches)+len(body.Puts) > 0 {
		// The simulator models what certbridge sends: deletes and posts.
		writeError(w, http.StatusBadRequest, errItem(9207, "patches and puts are not modelled by the simulator"))
		return
	}
	n := len(body.Deletes) + len(body.Posts)
	switch {
	case n == 0:
		writeError(w, http.StatusBadRequest, errItem(9207, "Request body is invalid."))
		return
	case n > MaxBatch:
		// The reference gives no code for an oversized batch; 1004 with the
		// limit in the text is the simulator's choice.
		writeError(w, http.StatusBadRequest, errItem(1004, fmt.Sprintf("A batch may hold at most %d record changes on this zone's plan", MaxBatch)))
		return
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	s.batches++
	recs := append([]*Record(nil), s.records[z.ID]...)
	var deleted []map[string]any
	for _, d := range body.Deletes {
		i := slices.IndexFunc(recs, func(r *Record) bool { return r.ID == d.ID })
		if i < 0 {
			writeError(w, http.StatusNotFound, errItem(81044, "Record does not exist."))
			return
		}
		deleted = append(deleted, recordJSON(recs[i]))
		recs = append(recs[:i:i], recs[i+1:]...)
	}
	var posted []map[string]any
	for _, b := range body.Posts {
		rec, status, aerr := s.newRecord(z, b, recs)
		if aerr != nil {
			writeError(w, status, *aerr)
			return
		}
		recs = append(recs, rec)
		posted = append(posted, recordJSON(rec))
	}
	s.records[z.ID] = recs
	writeResult(w, map[string]any{"deletes": nonNilList(deleted), "patches": []any{}, "puts": []any{}, "posts": nonNilList(posted)})
}

func nonNilList(v []map[string]any) []map[string]any {
	if v == nil {
		return []map[string]any{}
	}
	return v
}

func (s *Server) findRecord(w http.ResponseWriter, zoneID, id string) (int, bool) {
	for i, rec := range s.records[zoneID] {
		if rec.ID == id {
			return i, true
		}
	}
	writeError(w, http.StatusNotFound, errItem(81044, "Record does not exist."))
	return 0, false
}

func (s *Server) getRecord(w http.ResponseWriter, _ *http.Request, p principal, args []string) {
	z := s.zoneForRequest(w, p, args[0], DNSRead)
	if z == nil {
		return
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	if i, ok := s.findRecord(w, z.ID, args[1]); ok {
		writeResult(w, recordJSON(s.records[z.ID][i]))
	}
}

func (s *Server) deleteRecord(w http.ResponseWriter, _ *http.Request, p principal, args []string) {
	z := s.zoneForRequest(w, p, args[0], DNSEdit)
	if z == nil {
		return
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	if i, ok := s.findRecord(w, z.ID, args[1]); ok {
		recs := s.records[z.ID]
		s.records[z.ID] = append(recs[:i:i], recs[i+1:]...)
		writeResult(w, map[string]any{"id": args[1]})
	}
}
