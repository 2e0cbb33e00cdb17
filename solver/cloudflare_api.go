package solver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/user"
	"github.com/cloudflare/cloudflare-go/v6/zones"

	"github.com/certbridge/certbridge/internal/metrics"
)

// cloudflareAPI is the subset of Cloudflare's API the solver uses.
type cloudflareAPI interface {
	// zoneByName finds the zone with exactly this name among those the
	// credential can see.
	zoneByName(ctx context.Context, name string) (id string, found bool, err error)
	// countZones counts the zones the credential can see (diagnostics only).
	countZones(ctx context.Context) (int, error)
	// verifyToken returns an API token's status: active, disabled or expired.
	verifyToken(ctx context.Context) (string, error)
	listTXT(ctx context.Context, zoneID, name string) ([]cloudflareRecord, error)
	createTXT(ctx context.Context, zoneID, name, content string, ttl int) (id string, err error)
	deleteRecord(ctx context.Context, zoneID, id string) error
}

type cloudflareRecord struct {
	id, content string
}

// sdkCloudflare implements cloudflareAPI with cloudflare-go v6's per-service
// clients. Unlike cloudflare.NewClient they read no CLOUDFLARE_* environment
// variables, so nothing but the Issuer's Secret authenticates a call.
type sdkCloudflare struct {
	zones   *zones.ZoneService
	records *dns.RecordService
	tokens  *user.TokenService
}

var _ cloudflareAPI = (*sdkCloudflare)(nil)

func newCloudflareAPI(o CloudflareOptions, cred cloudflareCredential, b *budget) *sdkCloudflare {
	opts := []option.RequestOption{
		option.WithBaseURL(o.BaseURL),
		option.WithHTTPClient(o.HTTPClient),
		option.WithMaxRetries(o.MaxRetries),
		option.WithMiddleware(throttle(b)),
	}
	if cred.isToken() {
		opts = append(opts, option.WithAPIToken(cred.secret.Value))
	} else {
		opts = append(opts, option.WithAPIKey(cred.secret.Value), option.WithAPIEmail(cred.email))
	}
	return &sdkCloudflare{
		zones:   zones.NewZoneService(opts...),
		records: dns.NewRecordService(opts...),
		tokens:  user.NewTokenService(opts...),
	}
}

// throttle spends the credential's budget on every attempt (retries count
// against Cloudflare's limit too) and records each attempt's metrics. On a
// 429 it holds the budget back until Retry-After, and stops the SDK from
// retrying when that is past the deadline.
func throttle(b *budget) option.Middleware {
	return func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		waitStart := time.Now()
		release, err := b.acquire(req.Context())
		metrics.RateLimitWait.WithLabelValues("cloudflare").Add(time.Since(waitStart).Seconds())
		if err != nil {
			return nil, err
		}
		start := time.Now()
		res, err := next(req)
		release()
		observeCloudflare(req, res, err, time.Since(start))
		if err != nil || res.StatusCode != http.StatusTooManyRequests {
			return res, err
		}
		wait, ok := retryAfter(res.Header)
		if !ok {
			return res, nil
		}
		until := time.Now().Add(wait)
		b.blockUntil(until)
		if deadline, has := req.Context().Deadline(); has && until.After(deadline) {
			res.Header.Set("X-Should-Retry", "false")
		} else {
			metrics.RateLimitWait.WithLabelValues("cloudflare").Add(wait.Seconds())
		}
		return res, nil
	}
}

// observeCloudflare records an attempt: the operation as a route ("POST
// /zones/{zone_id}/dns_records"), the HTTP status, and Cloudflare's error code.
func observeCloudflare(req *http.Request, res *http.Response, err error, took time.Duration) {
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
	metrics.ObserveCall("cloudflare", cloudflareOperation(req.Method, req.URL.Path), outcome, code, took)
}

// cloudflareOperation names a request by its route, IDs replaced.
func cloudflareOperation(method, path string) string {
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
			parts[i] = "{id}"
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

func (c *sdkCloudflare) zoneByName(ctx context.Context, name string) (string, bool, error) {
	var p zones.ZoneListParams
	p.Name.Value, p.Name.Present = name, true
	p.PerPage.Value, p.PerPage.Present = 50, true
	page, err := c.zones.List(ctx, p)
	if err != nil {
		return "", false, err
	}
	for _, z := range page.Result {
		if strings.EqualFold(z.Name, name) {
			return z.ID, true, nil
		}
	}
	return "", false, nil
}

func (c *sdkCloudflare) countZones(ctx context.Context) (int, error) {
	var p zones.ZoneListParams
	p.PerPage.Value, p.PerPage.Present = 5, true
	page, err := c.zones.List(ctx, p)
	if err != nil {
		return 0, err
	}
	if n, ok := resultInfoInt(page.ResultInfo.JSON.ExtraFields, "total_count"); ok {
		return n, nil
	}
	return len(page.Result), nil
}

func (c *sdkCloudflare) verifyToken(ctx context.Context) (string, error) {
	res, err := c.tokens.Verify(ctx)
	if err != nil {
		return "", err
	}
	return string(res.Status), nil
}

// listRecordsPerPage is large enough that a name's TXT records fit one page.
const listRecordsPerPage = 100

func (c *sdkCloudflare) listTXT(ctx context.Context, zoneID, name string) ([]cloudflareRecord, error) {
	var out []cloudflareRecord
	// Pages are fetched by hand: the SDK's auto-pager asks for one more page
	// than result_info announces, an API call wasted on every CleanUp.
	for page := 1; ; page++ {
		var p dns.RecordListParams
		p.ZoneID.Value, p.ZoneID.Present = zoneID, true
		p.Type.Value, p.Type.Present = dns.RecordListParamsTypeTXT, true
		p.Name.Present = true
		p.Name.Value.Exact.Value, p.Name.Value.Exact.Present = name, true
		p.Page.Value, p.Page.Present = float64(page), true
		p.PerPage.Value, p.PerPage.Present = listRecordsPerPage, true
		res, err := c.records.List(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, r := range res.Result {
			out = append(out, cloudflareRecord{id: r.ID, content: r.Content})
		}
		total, known := resultInfoInt(res.ResultInfo.JSON.ExtraFields, "total_pages")
		if len(res.Result) < listRecordsPerPage || (known && page >= total) {
			return out, nil
		}
	}
}

func (c *sdkCloudflare) createTXT(ctx context.Context, zoneID, name, content string, ttl int) (string, error) {
	var body dns.TXTRecordParam
	body.Name.Value, body.Name.Present = name, true
	body.Type.Value, body.Type.Present = dns.TXTRecordTypeTXT, true
	body.Content.Value, body.Content.Present = content, true
	body.TTL.Value, body.TTL.Present = dns.TTL(ttl), true
	body.Comment.Value, body.Comment.Present = "cert-manager ACME challenge (certbridge)", true
	var p dns.RecordNewParams
	p.ZoneID.Value, p.ZoneID.Present = zoneID, true
	p.Body = body
	res, err := c.records.New(ctx, p)
	if err != nil {
		return "", err
	}
	return res.ID, nil
}

func (c *sdkCloudflare) deleteRecord(ctx context.Context, zoneID, id string) error {
	var p dns.RecordDeleteParams
	p.ZoneID.Value, p.ZoneID.Present = zoneID, true
	_, err := c.records.Delete(ctx, id, p)
	return err
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
