package cloudflare

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/dns"
	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/cloudflare/cloudflare-go/v7/origin_ca_certificates"
	"github.com/cloudflare/cloudflare-go/v7/shared"
	"github.com/cloudflare/cloudflare-go/v7/ssl"
	"github.com/cloudflare/cloudflare-go/v7/user"
	"github.com/cloudflare/cloudflare-go/v7/zones"

	"github.com/certbridge/certbridge/internal/metrics"
	"github.com/certbridge/certbridge/internal/ratelimit"
)

// ProductionURL is the v4 API's base URL.
const ProductionURL = "https://api.cloudflare.com/client/v4/"

// DocumentedLimit is Cloudflare's request quota per user: 1200 requests
// per 5 minutes, across every client of the user; exceeding it blocks all
// of the user's calls for 5 minutes.
var DocumentedLimit = ratelimit.Limit{Limit: 1200, Window: 5 * time.Minute}

// DefaultMaxRetries bounds the SDK's retries of one call (429, 5xx,
// transport errors). cloudflare-go v7's own default is 2; webhook calls run
// under a deadline below a minute, so a few quick retries is what fits.
const DefaultMaxRetries = 3

// Options are the operator's settings: process flags, never an Issuer's.
type Options struct {
	// BaseURL of the API; ProductionURL by default.
	BaseURL string
	// HTTPClient for API calls; one with a 30 s timeout by default.
	HTTPClient *http.Client
	// MaxRetries of one call; 0 means DefaultMaxRetries, negative none.
	MaxRetries int
	// Limit is the client-side budget per credential; zero means
	// DocumentedLimit, a negative Limit.Limit disables it.
	Limit ratelimit.Limit
	// Batch tunes how record changes share calls.
	Batch BatchOptions
}

func (o Options) withDefaults() Options {
	if o.BaseURL == "" {
		o.BaseURL = ProductionURL
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.Limit.Limit == 0 {
		o.Limit = DocumentedLimit
	}
	return o
}

// Credential is an API token, or a Global API Key with its account's email.
type Credential struct {
	Token string
	Key   string
	Email string
	// Source names where the value came from (a Secret and key, a
	// variable) for messages; it never holds the value.
	Source string
}

// IsToken reports an API token (rather than a Global API Key).
func (c Credential) IsToken() bool { return c.Key == "" }

// Hash identifies the credential in caches without keeping its value as a key.
func (c Credential) Hash() string {
	sum := sha256.Sum256([]byte(c.Token + "\x00" + c.Key + "\x00" + strings.ToLower(c.Email)))
	return hex.EncodeToString(sum[:])
}

// Label names the credential in metrics: the first 12 characters of its
// hash, enough to tell a user's credentials apart and nothing to recover
// the value from.
func (c Credential) Label() string { return c.Hash()[:12] }

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

// Client makes the calls certbridge needs, for one credential, within the
// credential's budget. Its per-service SDK clients read no CLOUDFLARE_*
// environment variables (cloudflare.NewClient would), so nothing but the
// given credential authenticates a call. Every error it returns is an *Error.
type Client struct {
	zones   *zones.ZoneService
	records *dns.RecordService
	tokens  *user.TokenService
	certs   *origin_ca_certificates.OriginCACertificateService
}

// NewClient builds the client for one credential.
func NewClient(o Options, c Credential) *Client {
	o = o.withDefaults()
	var budget *ratelimit.Budget
	if o.Limit.Limit > 0 {
		budget = ratelimit.NewCounted(o.Limit.Limit, o.Limit.Window)
	}
	opts := []option.RequestOption{
		option.WithBaseURL(o.BaseURL),
		option.WithHTTPClient(o.HTTPClient),
		option.WithMaxRetries(o.MaxRetries),
		option.WithMiddleware(throttle(budget, c.Label())),
	}
	if c.IsToken() {
		opts = append(opts, option.WithAPIToken(c.Token))
	} else {
		opts = append(opts, option.WithAPIKey(c.Key), option.WithAPIEmail(c.Email))
	}
	return &Client{
		zones:   zones.NewZoneService(opts...),
		records: dns.NewRecordService(opts...),
		tokens:  user.NewTokenService(opts...),
		certs:   origin_ca_certificates.NewOriginCACertificateService(opts...),
	}
}

// throttle spends the credential's budget on every attempt (retries count
// against Cloudflare's quota too), brings the budget in line with the count
// each answer carries, and records each attempt's metrics under the
// credential's label. On a 429 it holds the budget back until Retry-After,
// and stops the SDK from retrying when that is past the call's deadline.
func throttle(b *ratelimit.Budget, credential string) option.Middleware {
	return func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		waitStart := time.Now()
		ticket, err := b.Acquire(req.Context())
		metrics.RateLimitWait.WithLabelValues("cloudflare").Add(time.Since(waitStart).Seconds())
		if ticket.Waited() {
			metrics.BudgetWaits.WithLabelValues("cloudflare", credential).Inc()
		}
		if err != nil {
			return nil, err
		}
		start := time.Now()
		res, err := next(req)
		var counts ratelimit.Counts
		if err == nil {
			counts = countsOf(res.Header)
			counts.Refused = res.StatusCode == http.StatusTooManyRequests
		}
		ticket.Done(counts)
		for _, r := range counts.Remaining {
			metrics.QuotaRemaining.WithLabelValues("cloudflare", r.Policy, credential).Set(float64(r.Remaining))
		}
		observe(req, res, err, time.Since(start))
		if err != nil || res.StatusCode != http.StatusTooManyRequests {
			return res, err
		}
		wait, ok := retryAfter(res.Header)
		if !ok {
			return res, nil
		}
		until := time.Now().Add(wait)
		b.BlockUntil(until)
		if deadline, has := req.Context().Deadline(); has && until.After(deadline) {
			res.Header.Set("X-Should-Retry", "false")
		} else {
			metrics.RateLimitWait.WithLabelValues("cloudflare").Add(wait.Seconds())
		}
		return res, nil
	}
}

// countsOf reads Cloudflare's own count of the user's quota from an
// answer: every client of the user spends it, other replicas, clusters and
// tools. Fields that do not parse are ignored: the local window still
// holds.
func countsOf(h http.Header) ratelimit.Counts {
	remaining, err := ratelimit.ParseRatelimit(strings.Join(h.Values("Ratelimit"), ", "))
	if err != nil || len(remaining) == 0 {
		return ratelimit.Counts{}
	}
	policies, _ := ratelimit.ParsePolicy(strings.Join(h.Values("Ratelimit-Policy"), ", "))
	return ratelimit.Counts{Remaining: remaining, Policies: policies}
}

// observe records an attempt: the operation as a route ("POST
// /zones/{zone_id}/dns_records"), the HTTP status, and Cloudflare's error code.
func observe(req *http.Request, res *http.Response, err error, took time.Duration) {
	outcome, code := "error", ""
	if err == nil {
		outcome = strconv.Itoa(res.StatusCode)
		if res.StatusCode >= 400 {
			body, readErr := io.ReadAll(res.Body)
			_ = res.Body.Close()
			res.Body = io.NopCloser(bytes.NewReader(body))
			var env struct {
				Errors []struct {
					Code int `json:"code"`
				} `json:"errors"`
			}
			if readErr == nil && json.Unmarshal(body, &env) == nil && len(env.Errors) > 0 {
				code = strconv.Itoa(env.Errors[0].Code)
			}
		}
	}
	metrics.ObserveCall("cloudflare", Route(req.Method, req.URL.Path), outcome, code, took)
}

// Route names a request by its route, IDs replaced: "DELETE
// /zones/{zone_id}/dns_records/{id}".
func Route(method, path string) string {
	_, rest, found := strings.Cut(path, "/client/v4/")
	if !found {
		rest = strings.TrimPrefix(path, "/")
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	for i := 1; i < len(parts); i++ {
		switch parts[i-1] {
		case "zones":
			parts[i] = "{zone_id}"
		case "dns_records", "certificates":
			if parts[i] != "batch" {
				parts[i] = "{id}"
			}
		}
	}
	return method + " /" + strings.Join(parts, "/")
}

func retryAfter(h http.Header) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t), true
	}
	return 0, false
}

// Zone is a zone as the API lists it.
type Zone struct {
	ID, Name, Status       string
	AccountID, AccountName string
}

// Active reports a zone Cloudflare serves: only those may be written into.
func (z Zone) Active() bool { return z.Status == string(zones.ZoneStatusActive) }

// ZonePage is one page of a zone listing.
type ZonePage struct {
	Zones      []Zone
	TotalPages int
	TotalCount int
}

// MaxZonesPerPage is the zone listing's largest page.
const MaxZonesPerPage = 50

// ListZones lists the zones the credential sees: those named name (every
// status, every account), or all of them when name is empty.
func (c *Client) ListZones(ctx context.Context, name string, page int) (ZonePage, error) {
	var p zones.ZoneListParams
	if name != "" {
		p.Name.Value, p.Name.Present = name, true
	}
	p.Page.Value, p.Page.Present = float64(page), true
	p.PerPage.Value, p.PerPage.Present = MaxZonesPerPage, true
	res, err := c.zones.List(ctx, p)
	if err != nil {
		return ZonePage{}, classify(ListZones, err)
	}
	out := ZonePage{}
	for _, z := range res.Result {
		out.Zones = append(out.Zones, Zone{ID: z.ID, Name: strings.ToLower(z.Name), Status: string(z.Status),
			AccountID: z.Account.ID, AccountName: z.Account.Name})
	}
	out.TotalPages, _ = resultInfoInt(res.ResultInfo.JSON.ExtraFields, "total_pages")
	if n, ok := resultInfoInt(res.ResultInfo.JSON.ExtraFields, "total_count"); ok {
		out.TotalCount = n
	} else {
		out.TotalCount = len(out.Zones)
	}
	if out.TotalPages == 0 && len(out.Zones) > 0 {
		out.TotalPages = 1
	}
	return out, nil
}

// TokenStatus is what token verification reports.
type TokenStatus struct {
	// Status is active, disabled or expired.
	Status    string
	ExpiresOn time.Time
}

// VerifyToken asks Cloudflare about the API token.
func (c *Client) VerifyToken(ctx context.Context) (TokenStatus, error) {
	res, err := c.tokens.Verify(ctx)
	if err != nil {
		return TokenStatus{}, classify(VerifyToken, err)
	}
	return TokenStatus{Status: string(res.Status), ExpiresOn: res.ExpiresOn}, nil
}

// Record is a DNS record as stored: Content verbatim.
type Record struct {
	ID, Name, Content string
}

// recordFields is what certbridge reads of a record in an answer: the record
// calls decode into it (option.WithResponseBodyInto) instead of the SDK's
// types. The SDK decodes each record of an answer into every one of its
// twenty-odd record types in turn, through maps of the whole object: about
// 200 kB and 1500 allocations per record, a 50-record listing 10 MB of
// garbage for the webhook's collector (BenchmarkRecordCalls: 10 to 45 times
// less with these).
type recordFields struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Content string `json:"content"`
}

// listRecordsPerPage is large enough that a name's TXT records fit one page.
const listRecordsPerPage = 100

// ListTXT returns every TXT record named exactly name in the zone.
func (c *Client) ListTXT(ctx context.Context, zoneID, name string) ([]Record, error) {
	return c.listTXT(ctx, zoneID, listRecordsPerPage, func(p *dns.RecordListParams) {
		p.Name.Value.Exact.Value, p.Name.Value.Exact.Present = name, true
	})
}

// CreateTXT creates a TXT record holding content (already quoted as the
// API asks) and returns it.
func (c *Client) CreateTXT(ctx context.Context, zoneID, name, content string, ttl int, comment string) (Record, error) {
	var p dns.RecordNewParams
	p.ZoneID.Value, p.ZoneID.Present = zoneID, true
	p.Body = TXTRecord{Name: name, Content: content, TTL: ttl, Comment: comment}.param()
	var env struct {
		Result recordFields `json:"result"`
	}
	if _, err := c.records.New(ctx, p, option.WithResponseBodyInto(&env)); err != nil {
		return Record{}, classify(CreateRecord, err)
	}
	return Record(env.Result), nil
}

// DeleteRecord deletes a record by ID.
func (c *Client) DeleteRecord(ctx context.Context, zoneID, id string) error {
	var p dns.RecordDeleteParams
	p.ZoneID.Value, p.ZoneID.Present = zoneID, true
	_, err := c.records.Delete(ctx, id, p)
	return classify(DeleteRecord, err)
}

// TXTRecord is a TXT record to create: content already quoted as the API
// asks.
type TXTRecord struct {
	Name, Content string
	TTL           int
	Comment       string
}

func (r TXTRecord) param() dns.TXTRecordParam {
	var body dns.TXTRecordParam
	body.Name.Value, body.Name.Present = r.Name, true
	body.Type.Value, body.Type.Present = dns.TXTRecordTypeTXT, true
	body.Content.Value, body.Content.Present = r.Content, true
	body.TTL.Value, body.TTL.Present = dns.TTL(r.TTL), true
	if r.Comment != "" {
		body.Comment.Value, body.Comment.Present = r.Comment, true
	}
	return body
}

// Batch deletes records by ID, then creates records, in one transaction:
// all or nothing. It returns the created records in order.
func (c *Client) Batch(ctx context.Context, zoneID string, deletes []string, posts []TXTRecord) ([]Record, error) {
	var p dns.RecordBatchParams
	p.ZoneID.Value, p.ZoneID.Present = zoneID, true
	if len(deletes) > 0 {
		var ds []dns.RecordBatchParamsDelete
		for _, id := range deletes {
			var d dns.RecordBatchParamsDelete
			d.ID.Value, d.ID.Present = id, true
			ds = append(ds, d)
		}
		p.Deletes.Value, p.Deletes.Present = ds, true
	}
	if len(posts) > 0 {
		var ps []dns.RecordBatchParamsPostUnion
		for _, r := range posts {
			ps = append(ps, r.param())
		}
		p.Posts.Value, p.Posts.Present = ps, true
	}
	var env struct {
		Result struct {
			Posts []recordFields `json:"posts"`
		} `json:"result"`
	}
	if _, err := c.records.Batch(ctx, p, option.WithResponseBodyInto(&env)); err != nil {
		return nil, classify(BatchRecords, err)
	}
	var out []Record
	for _, r := range env.Result.Posts {
		out = append(out, Record(r))
	}
	return out, nil
}

// ListTXTBelow returns every TXT record of the zone whose name starts with
// prefix (e.g. "_acme-challenge."): one listing for many names.
func (c *Client) ListTXTBelow(ctx context.Context, zoneID, prefix string) ([]Record, error) {
	return c.listTXT(ctx, zoneID, listBelowPerPage, func(p *dns.RecordListParams) {
		p.Name.Value.Startswith.Value, p.Name.Value.Startswith.Present = prefix, true
	})
}

// listTXT lists the zone's TXT records whose name matches as selectName
// sets it, perPage a page.
func (c *Client) listTXT(ctx context.Context, zoneID string, perPage int, selectName func(*dns.RecordListParams)) ([]Record, error) {
	var out []Record
	// Pages are fetched by hand: the SDK's auto-pager asks for one more page
	// than result_info announces, an API call wasted on every CleanUp.
	for page := 1; ; page++ {
		var p dns.RecordListParams
		p.ZoneID.Value, p.ZoneID.Present = zoneID, true
		p.Type.Value, p.Type.Present = dns.RecordListParamsTypeTXT, true
		p.Name.Present = true
		selectName(&p)
		p.Page.Value, p.Page.Present = float64(page), true
		p.PerPage.Value, p.PerPage.Present = float64(perPage), true
		var env struct {
			Result     []recordFields `json:"result"`
			ResultInfo struct {
				TotalPages json.Number `json:"total_pages"`
			} `json:"result_info"`
		}
		if _, err := c.records.List(ctx, p, option.WithResponseBodyInto(&env)); err != nil {
			return nil, classify(ListRecords, err)
		}
		for _, r := range env.Result {
			out = append(out, Record(r))
		}
		total, err := strconv.Atoi(env.ResultInfo.TotalPages.String())
		if len(env.Result) < perPage || (err == nil && page >= total) {
			return out, nil
		}
	}
}

// listBelowPerPage is a page of a zone's challenge records: a mass renewal's
// worth in one call.
const listBelowPerPage = 1000

// Origin CA request types, as the API names them.
const (
	OriginRSA = "origin-rsa"
	OriginECC = "origin-ecc"
)

// OriginValidityDays are the validities Cloudflare's Origin CA offers.
var OriginValidityDays = []int{7, 30, 90, 365, 730, 1095, 5475}

// CreateOriginCertificate asks the Origin CA to sign csrPEM for hostnames,
// and returns the certificate's PEM.
func (c *Client) CreateOriginCertificate(ctx context.Context, csrPEM string, hostnames []string, requestType string, validityDays int) (string, error) {
	var p origin_ca_certificates.OriginCACertificateNewParams
	p.Csr.Value, p.Csr.Present = csrPEM, true
	p.Hostnames.Value, p.Hostnames.Present = hostnames, true
	p.RequestType.Value, p.RequestType.Present = shared.CertificateRequestType(requestType), true
	p.RequestedValidity.Value, p.RequestedValidity.Present = ssl.RequestValidity(validityDays), true
	res, err := c.certs.New(ctx, p)
	if err != nil {
		return "", classify(CreateOriginCertificate, err)
	}
	return res.Certificate, nil
}

// resultInfoInt reads a result_info number the SDK's typed struct leaves out.
// The field type is internal to the SDK, hence the type parameter.
func resultInfoInt[F interface{ Raw() string }](extra map[string]F, name string) (int, bool) {
	f, ok := extra[name]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(f.Raw())
	return n, err == nil
}
