package alibaba

import (
	"context"
	"encoding/json"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"

	"github.com/certbridge/certbridge/internal/ratelimit"
)

// PCAClient calls Alibaba Cloud Private CA (cas 2020-06-30) through the v1
// SDK's common request: the v1 SDK has no typed client for that version.
// Every error it returns is an *Error.
type PCAClient struct {
	clients  *pool[*sdk.Client]
	endpoint Endpoint
	secrets  []string
	budgets  map[string]*ratelimit.Budget
	// prepare renews a ServiceAccount's session before a call; nil for
	// other credentials.
	prepare func(context.Context) error
}

// NewPCAClient builds the client for a credential; region is what requests
// are signed for (DefaultRegion when empty).
func NewPCAClient(o Options, c Credential, region string) (*PCAClient, error) {
	endpoint := o.PCA.Or(PCAHost)
	provider, prepare, err := c.provider(o)
	if err != nil {
		return nil, classify("credentials", endpoint, c.secrets(), &credentialsError{err: err})
	}
	if region == "" {
		region = DefaultRegion
	}
	p, err := newPool(func() (*sdk.Client, error) {
		return sdk.NewClientWithOptions(region, sdk.NewConfig().WithScheme(endpoint.Scheme).WithAutoRetry(false), provider)
	})
	if err != nil {
		return nil, classify("client", endpoint, c.secrets(), err)
	}
	budgets := map[string]*ratelimit.Budget{}
	for action, qps := range o.qps() {
		budgets[action] = ratelimit.New(qps, time.Second)
	}
	return &PCAClient{clients: p, endpoint: endpoint, secrets: c.secrets(), budgets: budgets, prepare: prepare}, nil
}

// call runs one action once: the issuer's controller retries transient
// failures itself, with its own backoff and --max-retry-duration.
func (p *PCAClient) call(ctx context.Context, action string, params map[string]string, out any) error {
	if p.prepare != nil {
		if err := p.prepare(ctx); err != nil {
			return err
		}
	}
	ticket, err := p.budgets[action].Acquire(ctx)
	if err != nil {
		return classify(action, p.endpoint, p.secrets, err)
	}
	defer ticket.Done(ratelimit.Counts{})
	req := requests.NewCommonRequest()
	req.Method, req.Product, req.Version, req.ApiName, req.Domain = "POST", "cas", "2020-06-30", action, p.endpoint.Host
	for k, v := range params {
		req.QueryParams[k] = v
	}
	start := time.Now()
	err = p.clients.with(ctx, req, func(c *sdk.Client) error {
		res, err := c.ProcessCommonRequest(req)
		if err != nil {
			return err
		}
		return json.Unmarshal(res.GetHttpContentBytes(), out)
	})
	err = classify(action, p.endpoint, p.secrets, err)
	observe("alibaba-pca", action, err, time.Since(start))
	return err
}

// CA is a Private CA certificate authority as DescribeCACertificate reports it.
type CA struct {
	Identifier string
	// Type is ROOT or SUB_ROOT; only a SUB_ROOT issues.
	Type string
	// Status is ISSUE or REVOKE.
	Status string
	// Algorithm is the CA key's algorithm: RSA_2048, ECC_256, SM2_256, …
	Algorithm         string
	NotAfter          time.Time
	Issued, Remaining int
	CertificatePEM    string
	ChainPEM          string
}

// DescribeCA describes the CA with identifier id.
func (p *PCAClient) DescribeCA(ctx context.Context, id string) (CA, error) {
	var out struct {
		Certificate struct {
			Identifier         string
			CertificateType    string
			Status             string
			Algorithm          string
			FullAlgorithm      string
			AfterDate          int64
			CertIssuedCount    int
			CertRemainingCount int
			X509Certificate    string
			CaCertChain        string
		}
	}
	if err := p.call(ctx, "DescribeCACertificate", map[string]string{"Identifier": id}, &out); err != nil {
		return CA{}, err
	}
	c := out.Certificate
	algorithm := c.FullAlgorithm
	if algorithm == "" {
		algorithm = c.Algorithm
	}
	ca := CA{Identifier: c.Identifier, Type: c.CertificateType, Status: c.Status, Algorithm: algorithm,
		Issued: c.CertIssuedCount, Remaining: c.CertRemainingCount, CertificatePEM: c.X509Certificate, ChainPEM: c.CaCertChain}
	if c.AfterDate > 0 {
		ca.NotAfter = time.UnixMilli(c.AfterDate)
	}
	return ca, nil
}

// CreateCustomCertificate issues a certificate with the given request
// parameters (ParentIdentifier, Csr, Validity, ApiPassthrough.…) and
// returns its PEM and the chain's.
func (p *PCAClient) CreateCustomCertificate(ctx context.Context, params map[string]string) (certPEM, chainPEM string, err error) {
	var out struct {
		Certificate      string
		CertificateChain string
	}
	if err := p.call(ctx, "CreateCustomCertificate", params, &out); err != nil {
		return "", "", err
	}
	return out.Certificate, out.CertificateChain, nil
}
