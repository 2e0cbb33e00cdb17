package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/metrics"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// failedBatches measures what a failed Cloudflare batch costs: the calls
// that settle its changes, through the SDK against the simulator, when one
// change of the batch is refused (a TTL below the plan's) and when every
// try of the batch gets a 5xx (the SDK retrying it DefaultMaxRetries
// times). It returns the table's rows.
func failedBatches() []string {
	rows := []string{"| failure | changes in the batch | calls in all | extra calls (certbridge_provider_batch_recovery_calls_total) | changes that succeeded |",
		"| --- | --- | --- | --- | --- |"}
	fmt.Println("\nFailed batches")
	fmt.Println(rows[0])
	for _, f := range []struct {
		name   string
		fault  *cfsim.Fault
		refuse bool
	}{
		{"one change refused (TTL below the plan's)", nil, true},
		{fmt.Sprintf("a 5xx on every try (%d SDK retries)", cloudflare.DefaultMaxRetries),
			&cfsim.Fault{Route: "POST /zones/{zone_id}/dns_records/batch", Times: 1 << 20, Status: http.StatusBadGateway,
				Header: http.Header{"Retry-After-Ms": {"10"}}}, false},
	} {
		for _, n := range []int{10, 100, cloudflare.MaxBatch} {
			calls, extra, ok := failedBatch(n, f.fault, f.refuse)
			row := fmt.Sprintf("| %s | %d | %d | %.0f | %d |", f.name, n, calls, extra, ok)
			fmt.Println(row)
			rows = append(rows, row)
		}
	}
	return rows
}

// failedBatch sends n changes to one zone as one batch, the first of them
// refused if refuse, with fault injected, and returns the record calls
// they took, the recovery calls the counter saw and how many succeeded.
func failedBatch(n int, fault *cfsim.Fault, refuse bool) (calls int, extra float64, succeeded int) {
	sim := cfsim.Start()
	defer sim.Close()
	z := sim.AddZone("example.com")
	sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	b := cloudflare.NewBatcher(cloudflare.NewClient(cloudflare.Options{BaseURL: sim.URL()}, cloudflare.Credential{Token: token}), cloudflare.BatchOptions{})
	record := func(i int) cloudflare.TXTRecord {
		return cloudflare.TXTRecord{Name: fmt.Sprintf("_acme-challenge.h%d.example.com", i), Content: fmt.Sprintf(`"v%d"`, i), TTL: 60}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A lone change, held by the simulator, keeps the zone's lane busy
	// while the n changes queue behind it: they then go out as one batch.
	sim.InjectFault(cfsim.Fault{Route: "POST /zones/{zone_id}/dns_records", Delay: 500 * time.Millisecond})
	lone := make(chan struct{})
	go func() {
		defer close(lone)
		_, _ = b.Create(ctx, z.ID, record(n))
	}()
	for sim.Calls()["POST /zones/{zone_id}/dns_records"] == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if fault != nil {
		sim.InjectFault(*fault)
	}
	before := sim.TotalCalls()
	recovery := testutil.ToFloat64(metrics.BatchRecoveryCalls.WithLabelValues("cloudflare"))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		r := record(i)
		if refuse && i == 0 {
			r.TTL = 5
		}
		wg.Go(func() {
			if _, err := b.Create(ctx, z.ID, r); err == nil {
				mu.Lock()
				succeeded++
				mu.Unlock()
			}
		})
	}
	<-lone
	wg.Wait()
	// The lone change's call was made before.
	return sim.TotalCalls() - before, testutil.ToFloat64(metrics.BatchRecoveryCalls.WithLabelValues("cloudflare")) - recovery, succeeded
}
