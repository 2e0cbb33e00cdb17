package alibaba_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/alidns"
	mdns "github.com/miekg/dns"

	"github.com/certbridge/certbridge/test/sim/alibaba"
	"github.com/certbridge/certbridge/test/sim/dnsserver"
)

const (
	akID     = "LTAI5tSimulatedKeyId0001"
	akSecret = "simulatedSecretOfTheAccessKey0"
)

func TestMain(m *testing.M) {
	// The SDK's STS calls are hard-wired to https through a clone of
	// http.DefaultTransport: trust the simulator's certificate there.
	sim := alibaba.Start()
	http.DefaultTransport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: sim.STSCertPool()}
	sim.Close()
	os.Exit(m.Run())
}

func start(t *testing.T) *alibaba.Server {
	t.Helper()
	s := alibaba.Start()
	t.Cleanup(s.Close)
	s.AddAccessKey(alibaba.AccessKey{ID: akID, Secret: akSecret, Policy: alibaba.AllowAll})
	s.AddDomain("example.com", alibaba.FreeEdition)
	return s
}

func client(t *testing.T, s *alibaba.Server, p credentials.CredentialsProvider) *alidns.Client {
	t.Helper()
	c, err := alidns.NewClientWithOptions("cn-hangzhou", sdk.NewConfig().WithScheme("HTTP"), p)
	if err != nil {
		t.Fatal(err)
	}
	c.Domain = s.Endpoint()
	return c
}

func akClient(t *testing.T, s *alibaba.Server) *alidns.Client {
	return client(t, s, credentials.NewStaticAKCredentialsProvider(akID, akSecret))
}

func errCode(t *testing.T, err error) (int, string, *sdkerrors.ServerError) {
	t.Helper()
	var se *sdkerrors.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("want a server error, got %v", err)
	}
	return se.HttpStatus(), se.ErrorCode(), se
}

func add(t *testing.T, c *alidns.Client, rr, value string, ttl int) (*alidns.AddDomainRecordResponse, error) {
	t.Helper()
	req := alidns.CreateAddDomainRecordRequest()
	req.DomainName, req.RR, req.Type, req.Value = "example.com", rr, "TXT", value
	req.TTL = requests.NewInteger(ttl)
	return c.AddDomainRecord(req)
}

func describeDomains(c *alidns.Client) error {
	_, err := c.DescribeDomains(alidns.CreateDescribeDomainsRequest())
	return err
}

func TestSignature(t *testing.T) {
	s := start(t)
	if err := describeDomains(akClient(t, s)); err != nil {
		t.Fatalf("a correctly signed request: %v", err)
	}

	t.Run("wrong AccessKey secret", func(t *testing.T) {
		err := describeDomains(client(t, s, credentials.NewStaticAKCredentialsProvider(akID, akSecret+"x")))
		status, code, se := errCode(t, err)
		if status != 400 || code != "SignatureDoesNotMatch" {
			t.Fatalf("got %d %s", status, code)
		}
		// The server's string to sign equals the SDK's, so the SDK itself
		// concludes the secret is wrong.
		if !strings.Contains(se.Recommend(), "InvalidAccessKeySecret") {
			t.Errorf("the SDK's diagnosis should blame the secret, got Recommend %q", se.Recommend())
		}
	})

	t.Run("unknown AccessKey id", func(t *testing.T) {
		err := describeDomains(client(t, s, credentials.NewStaticAKCredentialsProvider("LTAI5tUnknown", akSecret)))
		if status, code, _ := errCode(t, err); status != 404 || code != "InvalidAccessKeyId.NotFound" {
			t.Fatalf("got %d %s", status, code)
		}
	})

	// A one-byte change of any signed parameter, made after the SDK signed.
	params := []string{"Action", "DomainName", "Format", "RegionId", "SignatureMethod", "SignatureNonce",
		"SignatureType", "SignatureVersion", "Timestamp", "Version", "PageSize"}
	for _, param := range params {
		t.Run("one byte changed in "+param, func(t *testing.T) {
			c := akClient(t, s)
			c.SetTransport(tamper(param))
			req := alidns.CreateDescribeDomainRecordsRequest()
			req.DomainName = "example.com"
			req.PageSize = requests.NewInteger(20)
			_, err := c.DescribeDomainRecords(req)
			if _, code, _ := errCode(t, err); code != "SignatureDoesNotMatch" {
				t.Fatalf("a tampered %s must fail the signature check, got %s", param, code)
			}
		})
	}

	t.Run("clock skew over 15 minutes", func(t *testing.T) {
		s.SetClock(func() time.Time { return time.Now().Add(16 * time.Minute) })
		defer s.SetClock(time.Now)
		if _, code, _ := errCode(t, describeDomains(akClient(t, s))); code != "InvalidTimeStamp.Expired" {
			t.Fatalf("got %s", code)
		}
	})

	t.Run("replayed nonce", func(t *testing.T) {
		c := akClient(t, s)
		rec := &recorder{}
		c.SetTransport(rec)
		if err := describeDomains(c); err != nil {
			t.Fatal(err)
		}
		res, err := http.Post(rec.last, "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 400 {
			t.Fatalf("a replayed request must be refused, got %d", res.StatusCode)
		}
	})
}

// tamper changes one byte of a query parameter after signing.
type tamper string

func (p tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	q := r.URL.Query()
	v := q.Get(string(p))
	if v == "" {
		v = "x"
	} else {
		b := []byte(v)
		b[len(b)-1] ^= 1
		v = string(b)
	}
	q.Set(string(p), v)
	r.URL.RawQuery = q.Encode()
	return http.DefaultTransport.RoundTrip(r)
}

// recorder keeps the last URL sent.
type recorder struct{ last string }

func (rec *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	rec.last = r.URL.String()
	return http.DefaultTransport.RoundTrip(r)
}

func TestSTSCredentials(t *testing.T) {
	s := start(t)
	id, secret, token := s.IssueSTS(alibaba.AllowAll, time.Hour)
	if err := describeDomains(client(t, s, credentials.NewStaticSTSCredentialsProvider(id, secret, token))); err != nil {
		t.Fatalf("STS credentials: %v", err)
	}
	cases := []struct {
		name, id, secret, token, code string
	}{
		{"wrong token", id, secret, token + "x", "InvalidSecurityToken.MismatchWithAccessKey"},
		{"wrong secret", id, secret + "x", token, "SignatureDoesNotMatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := describeDomains(client(t, s, credentials.NewStaticSTSCredentialsProvider(tc.id, tc.secret, tc.token)))
			if _, code, _ := errCode(t, err); code != tc.code {
				t.Fatalf("got %s, want %s", code, tc.code)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		id, secret, token := s.IssueSTS(alibaba.AllowAll, -time.Minute)
		err := describeDomains(client(t, s, credentials.NewStaticSTSCredentialsProvider(id, secret, token)))
		if _, code, _ := errCode(t, err); code != "InvalidSecurityToken.Expired" {
			t.Fatalf("got %s", code)
		}
	})
}

func TestAssumeRole(t *testing.T) {
	s := start(t)
	const arn = "acs:ram::1234567890:role/certbridge"
	const provider = "acs:ram::1234567890:oidc-provider/ack-rrsa-c1"
	issuer := alibaba.NewOIDCIssuer("https://oidc-ack.example/c1")
	s.AddOIDCProvider(issuer.Provider(provider, "sts.aliyuncs.com"))
	s.AddRole(alibaba.Role{ARN: arn, Policy: alibaba.AllowAll, TrustedAccessKeys: []string{akID}, TrustedOIDCProvider: provider})

	p, err := credentials.NewRAMRoleARNCredentialsProviderBuilder().
		WithCredentialsProvider(credentials.NewStaticAKCredentialsProvider(akID, akSecret)).
		WithRoleArn(arn).WithRoleSessionName("test").WithStsEndpoint(s.STSEndpoint()).Build()
	if err != nil {
		t.Fatal(err)
	}
	if err := describeDomains(client(t, s, p)); err != nil {
		t.Fatalf("through AssumeRole: %v", err)
	}

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(issuer.Token("system:serviceaccount:certbridge:certbridge-webhook", []string{"sts.aliyuncs.com"}, time.Hour)), 0o600); err != nil {
		t.Fatal(err)
	}
	oidc, err := credentials.NewOIDCCredentialsProviderBuilder().WithRoleArn(arn).
		WithOIDCProviderARN(provider).WithOIDCTokenFilePath(tokenFile).
		WithRoleSessionName("test").WithSTSEndpoint(s.STSEndpoint()).Build()
	if err != nil {
		t.Fatal(err)
	}
	if err := describeDomains(client(t, s, oidc)); err != nil {
		t.Fatalf("through AssumeRoleWithOIDC: %v", err)
	}
	if calls := s.Calls(); calls["AssumeRole"] != 1 || calls["AssumeRoleWithOIDC"] != 1 {
		t.Errorf("STS calls %v", calls)
	}

	t.Run("untrusted caller", func(t *testing.T) {
		s.AddAccessKey(alibaba.AccessKey{ID: "LTAI5tOther", Secret: akSecret, Policy: alibaba.AllowAll})
		p, _ := credentials.NewRAMRoleARNCredentialsProviderBuilder().
			WithCredentialsProvider(credentials.NewStaticAKCredentialsProvider("LTAI5tOther", akSecret)).
			WithRoleArn(arn).WithRoleSessionName("test").WithStsEndpoint(s.STSEndpoint()).Build()
		err := describeDomains(client(t, s, p))
		if _, code, _ := errCode(t, err); code != "NoPermission" {
			t.Fatalf("got %s", code)
		}
	})
}

func TestRAMPolicy(t *testing.T) {
	s := start(t)
	s.AddDomain("example.org", alibaba.FreeEdition)
	s.AddAccessKey(alibaba.AccessKey{ID: "LTAI5tReadOnly", Secret: akSecret, Policy: alibaba.Policy{
		Actions: []string{"alidns:DescribeSubDomainRecords"}}})
	s.AddAccessKey(alibaba.AccessKey{ID: "LTAI5tScoped", Secret: akSecret, Policy: alibaba.Policy{
		Actions: []string{"alidns:*"}, Resources: []string{"example.org"}}})
	for id, rr := range map[string]string{"LTAI5tReadOnly": "a", "LTAI5tScoped": "b"} {
		_, err := add(t, client(t, s, credentials.NewStaticAKCredentialsProvider(id, akSecret)), rr, "v", 600)
		if status, code, _ := errCode(t, err); status != 400 || code != "Forbidden.RAM" {
			t.Errorf("%s: got %d %s, want 400 Forbidden.RAM", id, status, code)
		}
	}
}

func TestRecords(t *testing.T) {
	s := start(t)
	c := akClient(t, s)
	for _, v := range []string{"first", "second"} {
		if _, err := add(t, c, "_acme-challenge", v, 600); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name       string
		ttl        int
		value      string
		wantStatus int
		wantCode   string
	}{
		{"duplicate", 600, "first", 400, "DomainRecordDuplicate"},
		{"TTL below the free edition's minimum", 60, "third", 400, "QuotaExceeded.TTL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := add(t, c, "_acme-challenge", tc.value, tc.ttl)
			status, code, se := errCode(t, err)
			if status != tc.wantStatus || code != tc.wantCode {
				t.Fatalf("got %d %s", status, code)
			}
			if code == "QuotaExceeded.TTL" && !strings.Contains(se.Message(), "range of 600 to 86400") {
				t.Errorf("the message names the edition's range: %s", se.Message())
			}
		})
	}

	t.Run("DescribeSubDomainRecords pages", func(t *testing.T) {
		for i := range 5 {
			if _, err := add(t, c, "many", fmt.Sprint(i), 600); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for page := 1; page <= 3; page++ {
			req := alidns.CreateDescribeSubDomainRecordsRequest()
			req.SubDomain, req.Type = "many.example.com", "TXT"
			req.PageNumber, req.PageSize = requests.NewInteger(page), requests.NewInteger(2)
			res, err := c.DescribeSubDomainRecords(req)
			if err != nil {
				t.Fatal(err)
			}
			if res.TotalCount != 5 {
				t.Fatalf("TotalCount %d", res.TotalCount)
			}
			for _, r := range res.DomainRecords.Record {
				got = append(got, r.Value)
			}
		}
		sort.Strings(got)
		if strings.Join(got, ",") != "0,1,2,3,4" {
			t.Fatalf("pages held %v", got)
		}
	})

	t.Run("DescribeDomainRecords keyword filters", func(t *testing.T) {
		req := alidns.CreateDescribeDomainRecordsRequest()
		req.DomainName, req.RRKeyWord, req.TypeKeyWord = "example.com", "ACME", "txt"
		res, err := c.DescribeDomainRecords(req)
		if err != nil || res.TotalCount != 2 {
			t.Fatalf("RRKeyWord is a case-insensitive substring: %+v %v", res, err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		req := alidns.CreateDeleteDomainRecordRequest()
		req.RecordId = "1"
		_, err := c.DeleteDomainRecord(req)
		if status, code, _ := errCode(t, err); status != 400 || code != "DomainRecordNotBelongToUser" {
			t.Fatalf("unknown record: %d %s", status, code)
		}
		del := alidns.CreateDeleteSubDomainRecordsRequest()
		del.DomainName, del.RR = "example.com", "many"
		res, err := c.DeleteSubDomainRecords(del)
		if err != nil || res.TotalCount != "5" {
			t.Fatalf("DeleteSubDomainRecords: %+v %v", res, err)
		}
	})

	t.Run("domain not in the account", func(t *testing.T) {
		s.AddForeignDomain("taken.example")
		for domain, want := range map[string]string{"nowhere.example": "InvalidDomainName.NoExist", "taken.example": "IncorrectDomainUser"} {
			req := alidns.CreateDescribeDomainInfoRequest()
			req.DomainName = domain
			_, err := c.DescribeDomainInfo(req)
			if _, code, _ := errCode(t, err); code != want {
				t.Errorf("%s: got %s, want %s", domain, code, want)
			}
		}
	})
}

func TestThrottling(t *testing.T) {
	s := start(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	throttled := 0
	for i := range 70 { // AddDomainRecord's quota is 60 per second
		c := akClient(t, s) // the SDK's client is not safe for concurrent use
		wg.Go(func() {
			_, err := add(t, c, "burst", fmt.Sprint(i), 600)
			var se *sdkerrors.ServerError
			if errors.As(err, &se) && se.ErrorCode() == "Throttling.User" {
				mu.Lock()
				throttled++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if throttled == 0 || throttled != s.Throttled() {
		t.Fatalf("a burst past the quota must be throttled: %d refused, simulator counted %d", throttled, s.Throttled())
	}
}

func TestFaults(t *testing.T) {
	s := start(t)
	c := akClient(t, s)
	s.InjectFault(alibaba.Fault{Action: "AddDomainRecord", Status: 400, Code: "LastOperationNotFinished"})
	_, err := add(t, c, "x", "v", 600)
	if _, code, _ := errCode(t, err); code != "LastOperationNotFinished" {
		t.Fatalf("got %s", code)
	}
	if _, err := add(t, c, "x", "v", 600); err != nil {
		t.Fatalf("the fault hits once: %v", err)
	}
	s.InjectFault(alibaba.Fault{Action: "AddDomainRecord", Drop: true})
	fresh := akClient(t, s)
	fresh.SetTransport(&http.Transport{})
	if _, err := add(t, fresh, "y", "v", 600); err == nil {
		t.Fatal("a dropped connection must fail the call")
	}
	if got := s.Records("y.example.com"); len(got) != 0 {
		t.Fatalf("a call dropped before it is handled changes nothing: %+v", got)
	}

	s.InjectFault(alibaba.Fault{Action: "AddDomainRecord", LoseAnswer: true})
	fresh = akClient(t, s)
	fresh.SetTransport(&http.Transport{})
	if _, err := add(t, fresh, "z", "v", 600); err == nil {
		t.Fatal("a lost answer must fail the call")
	}
	if got := s.Records("z.example.com"); len(got) != 1 || got[0].Value != "v" {
		t.Fatalf("the record must be added although the answer is lost: %+v", got)
	}
	_, err = add(t, c, "z", "v", 600)
	if _, code, _ := errCode(t, err); code != "DomainRecordDuplicate" {
		t.Fatalf("the retry meets the record added: %s", code)
	}
	if s.PendingFaults() != 0 {
		t.Fatalf("pending faults %d, want 0", s.PendingFaults())
	}
}

func TestDNSServer(t *testing.T) {
	s := start(t)
	if _, err := add(t, akClient(t, s), "_acme-challenge", "token-value", 600); err != nil {
		t.Fatal(err)
	}
	// A CNAME added with AddDomainRecord is served, and followed.
	req := alidns.CreateAddDomainRecordRequest()
	req.DomainName, req.RR, req.Type, req.Value = "example.com", "_acme-challenge.app", "CNAME", "_acme-challenge.example.com"
	if _, err := akClient(t, s).AddDomainRecord(req); err != nil {
		t.Fatal(err)
	}
	if apex, ok := s.Zone("_acme-challenge.app.example.com"); !ok || apex != "example.com" {
		t.Errorf("zone of the CNAME's name: %q %v", apex, ok)
	}
	srv, err := dnsserver.Start(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	for _, proto := range []string{"udp", "tcp"} {
		for _, name := range []string{"_acme-challenge.example.com.", "_acme-challenge.app.example.com."} {
			m := new(mdns.Msg)
			m.SetQuestion(name, mdns.TypeTXT)
			r, _, err := (&mdns.Client{Net: proto, Timeout: 2 * time.Second}).Exchange(m, srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			last := len(r.Answer) - 1
			if last < 0 || r.Answer[last].(*mdns.TXT).Txt[0] != "token-value" || (name != "_acme-challenge.example.com." && last != 1) {
				t.Fatalf("%s %s: answer %v", proto, name, r.Answer)
			}
		}
	}
}

// Alibaba Cloud DNS names an internationalised domain in Unicode and
// gives the ASCII form beside it (PunyCode), and returns a record's
// DomainName and an internationalised RR in Unicode; requests may name the
// domain either way. A simulator that answered in punycode only would let
// a client comparing DomainName with DNS's names pass every test.
func TestInternationalisedNamesAsTheAPIShowsThem(t *testing.T) {
	s := start(t)
	s.AddDomain("例子.中国", alibaba.FreeEdition)
	s.AddDomain("XN--CZRS0T.example.org", alibaba.FreeEdition) // 商店.example.org, written in punycode, upper case
	c := akClient(t, s)
	res, err := c.DescribeDomains(alidns.CreateDescribeDomainsRequest())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range res.Domains.Domain {
		got[d.PunyCode] = d.DomainName
	}
	want := map[string]string{"example.com": "example.com", "xn--fsqu00a.xn--fiqs8s": "例子.中国", "xn--czrs0t.example.org": "商店.example.org"}
	for puny, name := range want {
		if got[puny] != name {
			t.Errorf("DescribeDomains: PunyCode %q has DomainName %q, want %q (all: %v)", puny, got[puny], name, got)
		}
	}
	for _, asked := range []string{"例子.中国", "xn--fsqu00a.xn--fiqs8s", "XN--FSQU00A.XN--FIQS8S"} {
		req := alidns.CreateDescribeDomainInfoRequest()
		req.DomainName = asked
		info, err := c.DescribeDomainInfo(req)
		if err != nil {
			t.Fatalf("DescribeDomainInfo %q: %v", asked, err)
		}
		if info.DomainName != "例子.中国" || info.PunyCode != "xn--fsqu00a.xn--fiqs8s" {
			t.Errorf("DescribeDomainInfo %q: DomainName %q PunyCode %q", asked, info.DomainName, info.PunyCode)
		}
	}
	add := alidns.CreateAddDomainRecordRequest()
	add.DomainName, add.RR, add.Type, add.Value = "xn--fsqu00a.xn--fiqs8s", "_acme-challenge.xn--czrs0t", "TXT", "v"
	if _, err := c.AddDomainRecord(add); err != nil {
		t.Fatal(err)
	}
	list := alidns.CreateDescribeSubDomainRecordsRequest()
	list.SubDomain = "_acme-challenge.商店.例子.中国"
	recs, err := c.DescribeSubDomainRecords(list)
	if err != nil {
		t.Fatal(err)
	}
	if rs := recs.DomainRecords.Record; len(rs) != 1 || rs[0].DomainName != "例子.中国" || rs[0].RR != "_acme-challenge.商店" {
		t.Errorf("DescribeSubDomainRecords: want one record of 例子.中国 with RR _acme-challenge.商店, got %+v", rs)
	}
	if rs := s.Records("_acme-challenge.xn--czrs0t.xn--fsqu00a.xn--fiqs8s"); len(rs) != 1 {
		t.Errorf("the record is stored under its ASCII name: %+v", s.AllRecords())
	}
}

// AssumeRoleWithOIDC verifies the token as STS does: signed by a key of
// the registered OIDC provider, from its issuer, not expired, for one of
// its client IDs, and a subject the role's trust policy admits. Each case
// goes through the SDK's OIDC credentials provider, as RRSA does.
func TestAssumeRoleWithOIDC(t *testing.T) {
	s := start(t)
	const (
		provider = "acs:ram::1234567890:oidc-provider/ack-rrsa-c1"
		arn      = "acs:ram::1234567890:role/tenant-a-dns"
		subject  = "system:serviceaccount:tenant-a:dns"
		aud      = "sts.aliyuncs.com"
	)
	issuer := alibaba.NewOIDCIssuer("https://oidc-ack.example/c1")
	s.AddOIDCProvider(issuer.Provider(provider, aud))
	s.AddRole(alibaba.Role{ARN: arn, Policy: alibaba.AllowAll, TrustedOIDCProvider: provider, OIDCSubjects: []string{subject}})
	impostor := alibaba.NewOIDCIssuer("https://oidc-ack.example/c1") // same URL, another key
	elsewhere := alibaba.NewOIDCIssuer("https://oidc-ack.example/other")
	hs256 := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	cases := []struct {
		name, token, provider, role string
		status                      int
		code                        string
	}{
		{"admitted", issuer.Token(subject, []string{aud}, 10*time.Minute), provider, arn, 200, ""},
		{"subject the trust policy does not admit", issuer.Token("system:serviceaccount:tenant-b:dns", []string{aud}, 10*time.Minute), provider, arn, 401, "AuthenticationFail.NoPermission"},
		{"expired", issuer.Token(subject, []string{aud}, -time.Minute), provider, arn, 401, "AuthenticationFail.OIDCToken.Expired"},
		{"another audience", issuer.Token(subject, []string{"https://kubernetes.default.svc"}, 10*time.Minute), provider, arn, 401, "AuthenticationFail.OIDCToken.AudienceNotMatch"},
		{"signed by another key", impostor.Token(subject, []string{aud}, 10*time.Minute), provider, arn, 401, "AuthenticationFail.OIDCToken.InvalidSignature"},
		{"another issuer", elsewhere.Token(subject, []string{aud}, 10*time.Minute), provider, arn, 401, "AuthenticationFail.OIDCToken.InvalidSignature"},
		{"symmetric algorithm", hs256, provider, arn, 401, "AuthenticationFail.OIDCToken.Invalid"},
		{"not a JWT", "eyJ.simulated", provider, arn, 401, "AuthenticationFail.OIDCToken.Invalid"},
		{"unregistered provider", issuer.Token(subject, []string{aud}, 10*time.Minute), "acs:ram::1234567890:oidc-provider/none", arn, 401, "AuthenticationFail.NoPermission"},
		{"unknown role", issuer.Token(subject, []string{aud}, 10*time.Minute), provider, "acs:ram::1234567890:role/none", 404, "EntityNotExist.Role"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tokenFile := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(tokenFile, []byte(tc.token), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := credentials.NewOIDCCredentialsProviderBuilder().WithRoleArn(tc.role).WithOIDCProviderARN(tc.provider).
				WithOIDCTokenFilePath(tokenFile).WithRoleSessionName("test").WithSTSEndpoint(s.STSEndpoint()).Build()
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.GetCredentials()
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := s.OIDCSessions(); len(got) == 0 || got[len(got)-1] != (alibaba.OIDCSession{Role: arn, Subject: subject}) {
					t.Errorf("sessions %+v", got)
				}
				return
			}
			if status, code, _ := errCode(t, err); status != tc.status || code != tc.code {
				t.Errorf("got %d %s, want %d %s", status, code, tc.status, tc.code)
			}
		})
	}
}
