package cloudflare_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/dns"
	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/cloudflare/cloudflare-go/v7/user"
	"github.com/cloudflare/cloudflare-go/v7/zones"
	mdns "github.com/miekg/dns"

	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/sim/dnsserver"
)

const (
	token     = "simTokenWithZoneReadAndDnsEdit0000000000"
	globalKey = "0123456789abcdef0123456789abcdef01234"
	email     = "ops@example.com"
)

func start(t *testing.T) *cfsim.Server {
	t.Helper()
	s := cfsim.Start()
	t.Cleanup(s.Close)
	s.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	s.AddGlobalKey(email, globalKey)
	return s
}

func opts(s *cfsim.Server, auth ...option.RequestOption) []option.RequestOption {
	return append([]option.RequestOption{option.WithBaseURL(s.URL()), option.WithMaxRetries(0)}, auth...)
}

func withToken(s *cfsim.Server, tok string) []option.RequestOption {
	return opts(s, option.WithAPIToken(tok))
}

// apiError unwraps the SDK's error into status and codes.
func apiError(t *testing.T, err error) (int, []int64) {
	t.Helper()
	var e *dns.Error
	if !errors.As(err, &e) {
		t.Fatalf("want an API error, got %v", err)
	}
	var codes []int64
	for _, item := range e.Errors {
		codes = append(codes, item.Code)
	}
	return e.StatusCode, codes
}

func txtParams(zoneID, name, content string, ttl float64) dns.RecordNewParams {
	var body dns.TXTRecordParam
	body.Name.Value, body.Name.Present = name, true
	body.Type.Value, body.Type.Present = dns.TXTRecordTypeTXT, true
	body.Content.Value, body.Content.Present = content, true
	body.TTL.Value, body.TTL.Present = dns.TTL(ttl), true
	var p dns.RecordNewParams
	p.ZoneID.Value, p.ZoneID.Present = zoneID, true
	p.Body = body
	return p
}

func listParams(zoneID string, set func(*dns.RecordListParams)) dns.RecordListParams {
	var p dns.RecordListParams
	p.ZoneID.Value, p.ZoneID.Present = zoneID, true
	if set != nil {
		set(&p)
	}
	return p
}

func TestAuthentication(t *testing.T) {
	s := start(t)
	cases := []struct {
		name       string
		auth       []option.RequestOption
		wantStatus int
		wantCodes  []int64
		wantChain  string
	}{
		{"no credential", nil, 400, []int64{9106}, ""},
		{"Global API Key sent as a token", []option.RequestOption{option.WithAPIToken(globalKey)}, 400, []int64{6003}, `"code":6111`},
		{"unknown token", []option.RequestOption{option.WithAPIToken(strings.Repeat("x", 40))}, 403, []int64{9109}, ""},
		{"wrong Global API Key", []option.RequestOption{option.WithAPIKey(strings.Repeat("a", 37)), option.WithAPIEmail(email)}, 403, []int64{9103}, ""},
		{"token sent as a Global API Key", []option.RequestOption{option.WithAPIKey(token), option.WithAPIEmail(email)}, 400, []int64{6003}, `"code":6103`},
		{"malformed email", []option.RequestOption{option.WithAPIKey(globalKey), option.WithAPIEmail("ops")}, 400, []int64{6003}, `"code":6102`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := zones.NewZoneService(opts(s, tc.auth...)...).List(context.Background(), zones.ZoneListParams{})
			status, codes := apiError(t, err)
			if status != tc.wantStatus || fmt.Sprint(codes) != fmt.Sprint(tc.wantCodes) {
				t.Errorf("got %d %v, want %d %v", status, codes, tc.wantStatus, tc.wantCodes)
			}
			if tc.wantChain != "" && !strings.Contains(err.Error(), tc.wantChain) {
				t.Errorf("want error_chain %s in %v", tc.wantChain, err)
			}
		})
	}
	t.Run("valid credentials", func(t *testing.T) {
		for _, auth := range [][]option.RequestOption{
			{option.WithAPIToken(token)},
			{option.WithAPIKey(globalKey), option.WithAPIEmail(email)},
		} {
			if _, err := zones.NewZoneService(opts(s, auth...)...).List(context.Background(), zones.ZoneListParams{}); err != nil {
				t.Error(err)
			}
		}
	})
}

func TestVerifyToken(t *testing.T) {
	s := start(t)
	expires := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	disabled := strings.Repeat("d", 40)
	s.AddToken(cfsim.Token{Value: disabled, Status: cfsim.TokenDisabled, ExpiresOn: expires})

	res, err := user.NewTokenService(withToken(s, token)...).Verify(context.Background())
	if err != nil || res.Status != "active" || len(res.ID) != 32 {
		t.Fatalf("active token: %+v, %v", res, err)
	}
	res, err = user.NewTokenService(withToken(s, disabled)...).Verify(context.Background())
	if err != nil || res.Status != "disabled" || !res.ExpiresOn.Equal(expires) {
		t.Fatalf("disabled token: %+v, %v", res, err)
	}
	_, err = user.NewTokenService(withToken(s, strings.Repeat("u", 40))...).Verify(context.Background())
	if status, codes := apiError(t, err); status != 401 || codes[0] != 1000 {
		t.Fatalf("unknown token: want 401/1000, got %d %v", status, codes)
	}
	_, err = user.NewTokenService(opts(s, option.WithAPIKey(globalKey), option.WithAPIEmail(email))...).Verify(context.Background())
	if status, codes := apiError(t, err); status != 400 || codes[0] != 1001 {
		t.Fatalf("Global API Key: want 400/1001, got %d %v", status, codes)
	}
}

func TestZonePagination(t *testing.T) {
	s := start(t)
	for i := range 12 {
		s.AddZone(fmt.Sprintf("zone%02d.example", i))
	}
	svc := zones.NewZoneService(withToken(s, token)...)
	var p zones.ZoneListParams
	p.PerPage.Value, p.PerPage.Present = 5, true
	pager := svc.ListAutoPaging(context.Background(), p)
	var names []string
	for pager.Next() {
		names = append(names, pager.Current().Name)
	}
	if err := pager.Err(); err != nil {
		t.Fatal(err)
	}
	if len(names) != 12 || names[0] != "zone00.example" || names[11] != "zone11.example" {
		t.Fatalf("auto-paging saw %v", names)
	}
	// 3 pages plus the empty page that ends auto-paging.
	if n := s.Calls()["GET /zones"]; n != 4 {
		t.Errorf("want 4 page requests, got %d", n)
	}

	// result_info is consistent on every page, and a page past the end is empty.
	for page, want := range map[int]string{
		3: `"page":3,"per_page":5,"count":2,"total_count":12,"total_pages":3`,
		4: `"page":4,"per_page":5,"count":0,"total_count":12,"total_pages":3`,
	} {
		body := get(t, s, fmt.Sprintf("/zones?per_page=5&page=%d", page))
		if !strings.Contains(body, want) {
			t.Errorf("page %d: want result_info %s in %s", page, want, body)
		}
	}
	if body := get(t, s, "/zones?per_page=5&page=4"); !strings.Contains(body, `"result":[]`) {
		t.Errorf("a page past the end must hold an empty result: %s", body)
	}

	var byName zones.ZoneListParams
	byName.Name.Value, byName.Name.Present = "ZONE03.example", true
	page, err := svc.List(context.Background(), byName)
	if err != nil || len(page.Result) != 1 || page.Result[0].Name != "zone03.example" {
		t.Fatalf("name filter: %+v, %v", page, err)
	}
}

// get sends a raw request with the token and returns the body.
func get(t *testing.T, s *cfsim.Server, path string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL()+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestRecords(t *testing.T) {
	s := start(t)
	z := s.AddZone("example.com")
	svc := dns.NewRecordService(withToken(s, token)...)
	ctx := context.Background()

	created, err := svc.New(ctx, txtParams(z.ID, "_acme-challenge.example.com", `"AbC"`, 60))
	if err != nil {
		t.Fatal(err)
	}
	if created.Content != `"AbC"` || created.TTL != 60 || len(created.ID) != 32 {
		t.Fatalf("created %+v", created)
	}
	if _, err := svc.New(ctx, txtParams(z.ID, "_acme-challenge.example.com", "AbC", 60)); err != nil {
		t.Fatalf("unquoted content is accepted and kept apart from quoted: %v", err)
	}

	t.Run("content is stored and returned verbatim", func(t *testing.T) {
		var p dns.RecordGetParams
		p.ZoneID.Value, p.ZoneID.Present = z.ID, true
		got, err := svc.Get(ctx, created.ID, p)
		if err != nil || got.Content != `"AbC"` || got.Name != "_acme-challenge.example.com" {
			t.Fatalf("got %+v, %v", got, err)
		}
	})

	cases := []struct {
		name string
		set  func(*dns.RecordListParams)
		want int
	}{
		{"dotted name filter", func(p *dns.RecordListParams) {
			p.Name.Present = true
			p.Name.Value.Exact.Value, p.Name.Value.Exact.Present = "_ACME-challenge.example.com", true
		}, 2},
		{"content.exact matches the stored string, case-insensitively", func(p *dns.RecordListParams) {
			p.Content.Present = true
			p.Content.Value.Exact.Value, p.Content.Value.Exact.Present = `"abc"`, true
		}, 1},
		{"legacy name filter", func(p *dns.RecordListParams) {}, 2},
		{"type filter", func(p *dns.RecordListParams) {
			p.Type.Value, p.Type.Present = dns.RecordListParamsTypeA, true
		}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var extra []option.RequestOption
			if tc.name == "legacy name filter" {
				extra = append(extra, option.WithQuery("name", "_acme-challenge.example.com"))
			}
			page, err := svc.List(ctx, listParams(z.ID, tc.set), extra...)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Result) != tc.want {
				t.Fatalf("want %d records, got %d", tc.want, len(page.Result))
			}
		})
	}

	t.Run("an identical record is refused with 81058", func(t *testing.T) {
		_, err := svc.New(ctx, txtParams(z.ID, "_acme-challenge.example.com.", `"AbC"`, 60))
		if status, codes := apiError(t, err); status != 400 || codes[0] != 81058 {
			t.Fatalf("got %d %v", status, codes)
		}
	})
	t.Run("TTL outside 60-86400 is refused with 9021", func(t *testing.T) {
		_, err := svc.New(ctx, txtParams(z.ID, "x.example.com", `"v"`, 30))
		if status, codes := apiError(t, err); status != 400 || codes[0] != 9021 {
			t.Fatalf("got %d %v", status, codes)
		}
	})
	t.Run("inconsistent quotes are refused", func(t *testing.T) {
		_, err := svc.New(ctx, txtParams(z.ID, "x.example.com", `"this`, 60))
		if status, codes := apiError(t, err); status != 400 || codes[0] != 1004 {
			t.Fatalf("got %d %v", status, codes)
		}
	})
	t.Run("unknown record is 404/81044", func(t *testing.T) {
		var p dns.RecordDeleteParams
		p.ZoneID.Value, p.ZoneID.Present = z.ID, true
		_, err := svc.Delete(ctx, strings.Repeat("0", 32), p)
		if status, codes := apiError(t, err); status != 404 || codes[0] != 81044 {
			t.Fatalf("got %d %v", status, codes)
		}
	})
	t.Run("unknown zone is 400/7003", func(t *testing.T) {
		_, err := svc.List(ctx, listParams(strings.Repeat("f", 32), nil))
		if status, codes := apiError(t, err); status != 400 || codes[0] != 7003 {
			t.Fatalf("got %d %v", status, codes)
		}
	})
	t.Run("delete", func(t *testing.T) {
		var p dns.RecordDeleteParams
		p.ZoneID.Value, p.ZoneID.Present = z.ID, true
		res, err := svc.Delete(ctx, created.ID, p)
		if err != nil || res.ID != created.ID {
			t.Fatalf("%+v %v", res, err)
		}
		if left := s.Records("_acme-challenge.example.com"); len(left) != 1 || left[0].Content != "AbC" {
			t.Fatalf("left %+v", left)
		}
	})
}

func TestRecordPagination(t *testing.T) {
	s := start(t)
	z := s.AddZone("example.com")
	svc := dns.NewRecordService(withToken(s, token)...)
	for i := range 7 {
		if _, err := svc.New(context.Background(), txtParams(z.ID, "many.example.com", fmt.Sprintf(`"v%d"`, i), 60)); err != nil {
			t.Fatal(err)
		}
	}
	pager := svc.ListAutoPaging(context.Background(), listParams(z.ID, func(p *dns.RecordListParams) {
		p.PerPage.Value, p.PerPage.Present = 3, true
	}))
	n := 0
	for pager.Next() {
		n++
	}
	if pager.Err() != nil || n != 7 {
		t.Fatalf("auto-paging saw %d records, %v", n, pager.Err())
	}
}

func TestTokenScope(t *testing.T) {
	s := start(t)
	a, b := s.AddZone("a.example"), s.AddZone("b.example")
	scoped := strings.Repeat("s", 40)
	s.AddToken(cfsim.Token{Value: scoped, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}, Zones: []string{"a.example"}})
	readOnly := strings.Repeat("r", 40)
	s.AddToken(cfsim.Token{Value: readOnly, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSRead}})

	page, err := zones.NewZoneService(withToken(s, scoped)...).List(context.Background(), zones.ZoneListParams{})
	if err != nil || len(page.Result) != 1 || page.Result[0].ID != a.ID {
		t.Fatalf("a scoped token sees only its zone: %+v %v", page, err)
	}
	_, err = dns.NewRecordService(withToken(s, scoped)...).New(context.Background(), txtParams(b.ID, "x.b.example", `"v"`, 60))
	if status, codes := apiError(t, err); status != 403 || codes[0] != 10000 {
		t.Fatalf("write outside the scope: got %d %v", status, codes)
	}
	_, err = dns.NewRecordService(withToken(s, readOnly)...).New(context.Background(), txtParams(a.ID, "x.a.example", `"v"`, 60))
	if status, codes := apiError(t, err); status != 403 || codes[0] != 10000 {
		t.Fatalf("write without DNS Edit: got %d %v", status, codes)
	}
	if _, err := dns.NewRecordService(withToken(s, readOnly)...).List(context.Background(), listParams(a.ID, nil)); err != nil {
		t.Fatalf("DNS Read may list: %v", err)
	}
}

func TestRateLimit(t *testing.T) {
	s := start(t)
	s.SetRateLimit(cfsim.RateLimit{Limit: 3, Window: time.Minute})
	svc := zones.NewZoneService(withToken(s, token)...)
	for i := range 3 {
		if _, err := svc.List(context.Background(), zones.ZoneListParams{}); err != nil {
			t.Fatalf("call %d within the budget: %v", i, err)
		}
	}
	var res *http.Response
	_, err := svc.List(context.Background(), zones.ZoneListParams{}, option.WithResponseInto(&res))
	if status, codes := apiError(t, err); status != 429 || codes[0] != 971 {
		t.Fatalf("over the budget: got %d %v", status, codes)
	}
	ra, convErr := strconv.Atoi(res.Header.Get("Retry-After"))
	if convErr != nil || ra < 59 || ra > 60 {
		t.Errorf("Retry-After %q, want the rest of the 60 s block", res.Header.Get("Retry-After"))
	}
	if s.Rejected() != 1 {
		t.Errorf("Rejected() = %d", s.Rejected())
	}
}

func TestFaults(t *testing.T) {
	s := start(t)
	t.Run("5xx then success with the SDK's retry", func(t *testing.T) {
		s.InjectFault(cfsim.Fault{Route: "GET /zones", Status: 502, Code: 0, Message: "bad gateway", Header: http.Header{"Retry-After": {"0"}}})
		svc := zones.NewZoneService(withToken(s, token)...)
		if _, err := svc.List(context.Background(), zones.ZoneListParams{}, option.WithMaxRetries(1)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("dropped connection", func(t *testing.T) {
		s.InjectFault(cfsim.Fault{Route: "GET /zones", Drop: true})
		// A fresh connection: on a reused one, net/http itself retries an
		// idempotent request once, before the SDK sees anything.
		fresh := option.WithHTTPClient(&http.Client{Transport: &http.Transport{}})
		_, err := zones.NewZoneService(withToken(s, token)...).List(context.Background(), zones.ZoneListParams{}, fresh)
		var apiErr *dns.Error
		if err == nil || errors.As(err, &apiErr) {
			t.Fatalf("want a transport error, got %v", err)
		}
	})
	t.Run("answer lost after the change was made", func(t *testing.T) {
		z := s.AddZone("lost.example")
		s.InjectFault(cfsim.Fault{Route: "POST /zones/{zone_id}/dns_records", LoseAnswer: true})
		if s.PendingFaults() != 1 {
			t.Fatalf("pending faults %d, want 1", s.PendingFaults())
		}
		fresh := option.WithHTTPClient(&http.Client{Transport: &http.Transport{}})
		svc := dns.NewRecordService(withToken(s, token)...)
		_, err := svc.New(context.Background(), txtParams(z.ID, "_acme-challenge.lost.example", `"v"`, 60), fresh)
		var apiErr *dns.Error
		if err == nil || errors.As(err, &apiErr) {
			t.Fatalf("want a transport error, got %v", err)
		}
		if got := s.Records("_acme-challenge.lost.example"); len(got) != 1 || got[0].Content != `"v"` {
			t.Fatalf("the change must be made although its answer is lost: %+v", got)
		}
		_, err = svc.New(context.Background(), txtParams(z.ID, "_acme-challenge.lost.example", `"v"`, 60))
		if _, codes := apiError(t, err); len(codes) != 1 || codes[0] != 81058 {
			t.Fatalf("the retry meets the record made: %v", err)
		}
		if s.PendingFaults() != 0 {
			t.Fatalf("pending faults %d, want 0", s.PendingFaults())
		}
	})
	t.Run("latency", func(t *testing.T) {
		s.InjectFault(cfsim.Fault{Route: "GET /zones", Delay: 300 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := zones.NewZoneService(withToken(s, token)...).List(ctx, zones.ZoneListParams{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want the deadline to cut the slow call, got %v", err)
		}
	})
}

func TestDNSServer(t *testing.T) {
	s := start(t)
	z := s.AddZone("example.com")
	svc := dns.NewRecordService(withToken(s, token)...)
	long := strings.Repeat("x", 300)
	for _, content := range []string{`"quoted"`, "bare", `"` + long + `"`} {
		if _, err := svc.New(context.Background(), txtParams(z.ID, "_acme-challenge.example.com", content, 60)); err != nil {
			t.Fatal(err)
		}
	}
	// A CNAME made through the record API is stored as any record is, and
	// served: _acme-challenge.app.example.com → _acme-challenge.example.com.
	var cname dns.CNAMERecordParam
	cname.Name.Value, cname.Name.Present = "_acme-challenge.app.example.com", true
	cname.Type.Value, cname.Type.Present = dns.CNAMERecordTypeCNAME, true
	cname.Content.Value, cname.Content.Present = "_acme-challenge.example.com", true
	cname.TTL.Value, cname.TTL.Present = 1, true
	var p dns.RecordNewParams
	p.ZoneID.Value, p.ZoneID.Present = z.ID, true
	p.Body = cname
	if _, err := svc.New(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if stored := s.Records("_acme-challenge.app.example.com"); len(stored) != 1 || stored[0].Type != "CNAME" || stored[0].Content != "_acme-challenge.example.com" {
		t.Fatalf("stored: %+v", stored)
	}
	// Zone resolution is untouched by the CNAME: the name is still example.com's.
	if apex, ok := s.Zone("_acme-challenge.app.example.com"); !ok || apex != "example.com" {
		t.Errorf("zone of the CNAME's name: %q %v", apex, ok)
	}
	srv, err := dnsserver.Start(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)

	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			c := &mdns.Client{Net: proto, Timeout: 2 * time.Second}
			ask := func(name string, qtype uint16) *mdns.Msg {
				t.Helper()
				m := new(mdns.Msg)
				m.SetQuestion(mdns.Fqdn(name), qtype)
				r, _, err := c.Exchange(m, srv.Addr)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			r := ask("_ACME-challenge.example.com", mdns.TypeTXT)
			var got []string
			for _, rr := range r.Answer {
				got = append(got, strings.Join(rr.(*mdns.TXT).Txt, ""))
			}
			if r.Rcode != mdns.RcodeSuccess || !r.Authoritative || fmt.Sprint(got) != fmt.Sprint([]string{"quoted", "bare", long}) {
				t.Fatalf("TXT answer %v (rcode %d)", got, r.Rcode)
			}
			if txt := r.Answer[2].(*mdns.TXT).Txt; len(txt) != 2 || len(txt[0]) != 255 {
				t.Errorf("a long value is split into 255-byte strings, got %d strings", len(txt))
			}
			if r := ask("nothing.example.com", mdns.TypeTXT); r.Rcode != mdns.RcodeNameError || len(r.Ns) != 1 {
				t.Errorf("missing name: rcode %d, authority %v", r.Rcode, r.Ns)
			}
			if r := ask("example.com", mdns.TypeSOA); len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != mdns.TypeSOA {
				t.Errorf("SOA at the apex: %v", r.Answer)
			}
			if r := ask("example.com", mdns.TypeNS); len(r.Answer) != 2 {
				t.Errorf("NS at the apex: %v", r.Answer)
			}
			r = ask("_acme-challenge.app.example.com", mdns.TypeTXT)
			if len(r.Answer) != 4 || r.Answer[0].(*mdns.CNAME).Target != "_acme-challenge.example.com." || r.Answer[1].Header().Name != "_acme-challenge.example.com." {
				t.Errorf("TXT at the CNAME: %v", r.Answer)
			}
			if r := ask("_acme-challenge.app.example.com", mdns.TypeCNAME); len(r.Answer) != 1 {
				t.Errorf("CNAME query: %v", r.Answer)
			}
			if r := ask("example.org", mdns.TypeTXT); r.Rcode != mdns.RcodeRefused {
				t.Errorf("outside the served zones: rcode %d, want REFUSED", r.Rcode)
			}
		})
	}
}
