package alibaba_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/certbridge/certbridge/internal/alibaba"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
)

// Three replicas of one account, each pacing itself, hold Alibaba Cloud
// DNS's per-account quota together (AddDomainRecord: 60 per second, counted
// across every client): no write fails for throttling, and throttled
// answers stay a small share of the calls.
func TestReplicasHoldTheAccountsQuotaTogether(t *testing.T) {
	sim := alisim.Start()
	t.Cleanup(sim.Close)
	sim.AddDomain("example.com", alisim.FreeEdition)
	const id, secret = "LTAI5tReplicaQuota000001", "replicaQuotaAccessKeySecret000"
	sim.AddAccessKey(alisim.AccessKey{ID: id, Secret: secret, Policy: alisim.AllowAll})
	var replicas []*alibaba.DNSClient
	for range 3 {
		c, err := alibaba.NewDNSClient(alibaba.Options{DNS: alibaba.Endpoint{Scheme: "HTTP", Host: sim.Endpoint()}},
			alibaba.Credential{AccessKeyID: id, AccessKeySecret: secret}, "")
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, c)
	}
	const n = 360 // two seconds of the quota, asked for at once
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := replicas[i%3].AddTXT(ctx, "example.com", fmt.Sprintf("_acme-challenge.h%d", i), "v", 600)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			t.Log(err)
		}
	}
	calls := sim.Calls()["AddDomainRecord"]
	t.Logf("%d writes from 3 replicas: %d calls, %d throttled answers, %d failed", n, calls, sim.Throttled(), failed)
	if failed != 0 || len(sim.AllRecords()) != n {
		t.Errorf("%d writes failed, %d records stored of %d", failed, len(sim.AllRecords()), n)
	}
	if sim.Throttled() > n/2 {
		t.Errorf("%d throttled answers for %d writes: the replicas do not back off", sim.Throttled(), n)
	}
}
