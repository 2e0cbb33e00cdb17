package alibaba

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/certbridge/certbridge/test/sim/simkit"
)

const (
	alidnsVersion = "2015-01-09"
	alidnsHost    = "alidns.aliyuncs.com"
	casHost       = "cas.aliyuncs.com"
)

type dnsAction func(s *Server, c caller, p url.Values) (map[string]any, *apiError)

var dnsActions = map[string]dnsAction{
	"DescribeDomains":          (*Server).describeDomains,
	"DescribeDomainInfo":       (*Server).describeDomainInfo,
	"DescribeDomainRecords":    (*Server).describeDomainRecords,
	"DescribeSubDomainRecords": (*Server).describeSubDomainRecords,
	"AddDomainRecord":          (*Server).addDomainRecord,
	"DeleteDomainRecord":       (*Server).deleteDomainRecord,
	"DeleteSubDomainRecords":   (*Server).deleteSubDomainRecords,
}

// serveRPC is the signed RPC endpoint. It serves alidns (2015-01-09) and
// Private CA (cas 2020-06-30), routed on Version then Action.
func (s *Server) serveRPC(w http.ResponseWriter, r *http.Request) {
	p, err := params(r)
	if err != nil {
		apiError{400, "InvalidParameter", "The request body is malformed."}.write(w, alidnsHost)
		return
	}
	action, version := p.Get("Action"), p.Get("Version")
	host := alidnsHost
	if version == casVersion {
		host = casHost
	}
	s.calls.Add(action)
	serve := func(w http.ResponseWriter) {
		if version != alidnsVersion && version != casVersion {
			version = alidnsVersion // reported as InvalidVersion by authenticate
		}
		c, aerr := s.authenticate(r, p, version)
		if aerr != nil {
			aerr.write(w, host)
			return
		}
		if !s.admit(action) {
			apiError{400, "Throttling.User", faultMessages["Throttling.User"]}.write(w, host)
			return
		}
		var body map[string]any
		if version == casVersion {
			body, aerr = s.serveCAS(c, action, p)
		} else {
			body, aerr = s.serveAliDNS(c, action, p)
		}
		if aerr != nil {
			aerr.write(w, host)
			return
		}
		writeOK(w, body)
	}
	if f, ok := s.faults.Take(action); ok {
		simkit.Apply(w, f, faultAnswer(f, host), serve)
		return
	}
	serve(w)
}

func (s *Server) serveAliDNS(c caller, action string, p url.Values) (map[string]any, *apiError) {
	handle, ok := dnsActions[action]
	if !ok {
		return nil, &apiError{404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."}
	}
	domain := asciiName(p.Get("DomainName"))
	if action == "DeleteDomainRecord" {
		domain = s.domainOfRecord(p.Get("RecordId"))
	}
	if !c.policy.allows("alidns", action, domain) {
		return nil, &apiError{400, "Forbidden.RAM", "User not authorized to operate on the specified resource, or this API doesn't support RAM."}
	}
	return handle(s, c, p)
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := strings.ToUpper(hex.EncodeToString(b))
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randomString(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func (s *Server) domainOfRecord(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for d, rs := range s.records {
		for _, r := range rs {
			if r.ID == id {
				return d
			}
		}
	}
	return ""
}

// domain finds a domain of the account, or the error alidns answers; name
// may be written in Unicode or in punycode.
func (s *Server) domain(name string) (*Domain, *apiError) {
	name = asciiName(name)
	if name == "" {
		return nil, &apiError{400, "MissingParameter", `The input parameter "DomainName" that is mandatory for processing this request is not supplied.`}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.domains {
		if d.Name == name {
			return d, nil
		}
	}
	if s.foreign[name] {
		return nil, &apiError{400, "IncorrectDomainUser", "The domain name does not belong to this user."}
	}
	return nil, &apiError{400, "InvalidDomainName.NoExist", "The specified domain name does not exist. Refresh the page and try again."}
}

// page reads PageNumber/PageSize with the action's default and maximum.
func page(p url.Values, def, max int) (number, size int, err *apiError) {
	number, size = 1, def
	if v := p.Get("PageNumber"); v != "" {
		n, e := strconv.Atoi(v)
		if e != nil || n < 1 {
			return 0, 0, &apiError{400, "InvalidParameter", "Specified parameter PageNumber is not valid."}
		}
		number = n
	}
	if v := p.Get("PageSize"); v != "" {
		n, e := strconv.Atoi(v)
		if e != nil || n < 1 || n > max {
			return 0, 0, &apiError{400, "InvalidParameter", "Specified parameter PageSize is not valid."}
		}
		size = n
	}
	return number, size, nil
}

func slice[T any](items []T, number, size int) []T {
	if number-1 > len(items)/size {
		return items[len(items):] // past the last page, where (number-1)*size may overflow
	}
	start := min((number-1)*size, len(items))
	return items[start:min(start+size, len(items))]
}

func domainJSON(d *Domain, records int) map[string]any {
	return map[string]any{
		"DomainId": d.ID, "DomainName": d.DomainName, "PunyCode": d.Name, "AliDomain": true, "RecordCount": records,
		"VersionCode": d.Edition.Code, "VersionName": "Alibaba Cloud DNS", "CreateTime": "2019-01-30T05:25Z",
		"CreateTimestamp": 1548825900000, "DnsServers": map[string]any{"DnsServer": []string{"dns1.hichina.com", "dns2.hichina.com"}},
		"GroupId": "", "GroupName": "", "InstanceId": "", "Remark": "", "Starmark": false, "Tags": map[string]any{"Tag": []any{}},
	}
}

func (s *Server) describeDomains(_ caller, p url.Values) (map[string]any, *apiError) {
	number, size, aerr := page(p, 20, 100)
	if aerr != nil {
		return nil, aerr
	}
	kw := strings.ToLower(p.Get("KeyWord"))
	exact := strings.EqualFold(p.Get("SearchMode"), "EXACT")
	s.mu.Lock()
	var list []map[string]any
	for _, d := range s.domains {
		// The keyword matches the domain as shown or as punycode.
		if kw != "" && ((exact && d.Name != asciiName(kw) && d.DomainName != kw) ||
			(!exact && !strings.Contains(d.Name, kw) && !strings.Contains(d.DomainName, kw))) {
			continue
		}
		list = append(list, domainJSON(d, len(s.records[d.Name])))
	}
	s.mu.Unlock()
	return map[string]any{"TotalCount": len(list), "PageNumber": number, "PageSize": size,
		"Domains": map[string]any{"Domain": nonNil(slice(list, number, size))}}, nil
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func (s *Server) describeDomainInfo(_ caller, p url.Values) (map[string]any, *apiError) {
	d, aerr := s.domain(p.Get("DomainName"))
	if aerr != nil {
		return nil, aerr
	}
	body := domainJSON(d, 0)
	body["MinTtl"] = d.Edition.MinTTL
	body["AvailableTtls"] = map[string]any{"AvailableTtl": []string{strconv.Itoa(d.Edition.MinTTL), "3600", "86400"}}
	return body, nil
}

// recordJSON is a record as the API returns it: its domain and an
// internationalised RR in Unicode.
func recordJSON(r *Record) map[string]any {
	return map[string]any{
		"DomainName": unicodeName(r.Domain), "RecordId": r.ID, "RR": unicodeName(r.RR), "Type": r.Type, "Value": r.Value, "TTL": r.TTL,
		"Line": "default", "Status": "ENABLE", "Locked": false, "Weight": 1, "Priority": 0, "Remark": "",
	}
}

// records returns a domain's records, newest first (the API's default order).
func (s *Server) sortedRecords(domain string) []*Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]*Record(nil), s.records[domain]...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].created > out[j].created })
	return out
}

func recordsBody(list []map[string]any, number, size int) map[string]any {
	return map[string]any{"TotalCount": len(list), "PageNumber": number, "PageSize": size,
		"DomainRecords": map[string]any{"Record": nonNil(slice(list, number, size))}}
}

func (s *Server) describeDomainRecords(_ caller, p url.Values) (map[string]any, *apiError) {
	d, aerr := s.domain(p.Get("DomainName"))
	if aerr != nil {
		return nil, aerr
	}
	number, size, aerr := page(p, 20, 500)
	if aerr != nil {
		return nil, aerr
	}
	contains := func(have, want string) bool { return strings.Contains(strings.ToLower(have), strings.ToLower(want)) }
	var list []map[string]any
	for _, r := range s.sortedRecords(d.Name) {
		if kw := p.Get("KeyWord"); kw != "" {
			// LIKE (the default with KeyWord) or EXACT, on RR and Value.
			exact := strings.EqualFold(p.Get("SearchMode"), "EXACT")
			match := contains(r.RR, kw) || contains(r.Value, kw)
			if exact {
				match = strings.EqualFold(r.RR, kw) || strings.EqualFold(r.Value, kw)
			}
			if !match {
				continue
			}
		} else {
			if v := p.Get("RRKeyWord"); v != "" && !contains(r.RR, v) {
				continue
			}
			if v := p.Get("ValueKeyWord"); v != "" && !contains(r.Value, v) {
				continue
			}
			if v := p.Get("TypeKeyWord"); v != "" && !strings.EqualFold(r.Type, v) {
				continue
			}
		}
		if v := p.Get("Type"); v != "" && !strings.EqualFold(r.Type, v) {
			continue
		}
		list = append(list, recordJSON(r))
	}
	return recordsBody(list, number, size), nil
}

// splitSubDomain resolves SubDomain (+ optional DomainName) to domain and RR.
func (s *Server) splitSubDomain(sub, domainName string) (*Domain, string, *apiError) {
	sub = asciiName(sub)
	if domainName != "" {
		d, aerr := s.domain(domainName)
		if aerr != nil {
			return nil, "", aerr
		}
		if sub == d.Name {
			return d, "@", nil
		}
		rr, ok := strings.CutSuffix(sub, "."+d.Name)
		if !ok {
			return nil, "", &apiError{400, "IncorrectDomainUser", "The domain name does not belong to this user."}
		}
		return d, rr, nil
	}
	s.mu.Lock()
	var best *Domain
	for _, d := range s.domains {
		if (sub == d.Name || strings.HasSuffix(sub, "."+d.Name)) && (best == nil || len(d.Name) > len(best.Name)) {
			best = d
		}
	}
	s.mu.Unlock()
	if best == nil {
		return nil, "", &apiError{400, "IncorrectDomainUser", "The domain name does not belong to this user."}
	}
	if sub == best.Name {
		return best, "@", nil
	}
	return best, strings.TrimSuffix(sub, "."+best.Name), nil
}

func (s *Server) describeSubDomainRecords(_ caller, p url.Values) (map[string]any, *apiError) {
	d, rr, aerr := s.splitSubDomain(p.Get("SubDomain"), p.Get("DomainName"))
	if aerr != nil {
		return nil, aerr
	}
	number, size, aerr := page(p, 20, 100)
	if aerr != nil {
		return nil, aerr
	}
	var list []map[string]any
	for _, r := range s.sortedRecords(d.Name) {
		if !strings.EqualFold(r.RR, rr) {
			continue
		}
		if v := p.Get("Type"); v != "" && !strings.EqualFold(r.Type, v) {
			continue
		}
		list = append(list, recordJSON(r))
	}
	return recordsBody(list, number, size), nil
}

func (s *Server) addDomainRecord(_ caller, p url.Values) (map[string]any, *apiError) {
	d, aerr := s.domain(p.Get("DomainName"))
	if aerr != nil {
		return nil, aerr
	}
	for _, k := range []string{"RR", "Type", "Value"} {
		if p.Get(k) == "" {
			return nil, &apiError{400, "MissingParameter", fmt.Sprintf("The input parameter %q that is mandatory for processing this request is not supplied.", k)}
		}
	}
	ttl := 600
	if v := p.Get("TTL"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, &apiError{400, "InvalidParameter", "Specified parameter TTL is not valid."}
		}
		ttl = n
	}
	if ttl < d.Edition.MinTTL || ttl > 86400 {
		return nil, &apiError{400, "QuotaExceeded.TTL", fmt.Sprintf("The specified TTL is invalid. A valid TTL must be in the range of %d to 86400.", d.Edition.MinTTL)}
	}
	rr, typ, value := asciiName(p.Get("RR")), strings.ToUpper(p.Get("Type")), p.Get("Value")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records[d.Name] {
		if r.RR == rr && r.Type == typ && r.Value == value {
			return nil, &apiError{400, "DomainRecordDuplicate", "The DNS record already exists."}
		}
	}
	s.nextID++
	s.recordSeq++
	r := &Record{ID: strconv.FormatInt(s.nextID, 10), Domain: d.Name, RR: rr, Type: typ, Value: value, TTL: ttl, created: s.recordSeq}
	s.records[d.Name] = append(s.records[d.Name], r)
	return map[string]any{"RecordId": r.ID}, nil
}

func (s *Server) deleteDomainRecord(_ caller, p url.Values) (map[string]any, *apiError) {
	id := p.Get("RecordId")
	s.mu.Lock()
	defer s.mu.Unlock()
	for d, rs := range s.records {
		for i, r := range rs {
			if r.ID == id {
				s.records[d] = append(rs[:i:i], rs[i+1:]...)
				return map[string]any{"RecordId": id}, nil
			}
		}
	}
	return nil, &apiError{400, "DomainRecordNotBelongToUser", "The DNS record does not exist in your account."}
}

func (s *Server) deleteSubDomainRecords(_ caller, p url.Values) (map[string]any, *apiError) {
	d, aerr := s.domain(p.Get("DomainName"))
	if aerr != nil {
		return nil, aerr
	}
	rr := asciiName(p.Get("RR"))
	if rr == "" {
		return nil, &apiError{400, "MissingParameter", `The input parameter "RR" that is mandatory for processing this request is not supplied.`}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept, n := s.records[d.Name][:0], 0
	for _, r := range s.records[d.Name] {
		if r.RR == rr && (p.Get("Type") == "" || strings.EqualFold(r.Type, p.Get("Type"))) {
			n++
			continue
		}
		kept = append(kept, r)
	}
	s.records[d.Name] = kept
	// TotalCount is a string in this answer, as Alibaba Cloud DNS sends it.
	return map[string]any{"RR": unicodeName(rr), "TotalCount": strconv.Itoa(n)}, nil
}
