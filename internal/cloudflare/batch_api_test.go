package cloudflare_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/certbridge/certbridge/internal/cloudflare"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

func simClient(t testing.TB) (*cfsim.Server, *cloudflare.Client, cfsim.Zone) {
	t.Helper()
	sim := cfsim.Start()
	t.Cleanup(sim.Close)
	z := sim.AddZone("example.com")
	sim.AddToken(cfsim.Token{Value: simToken, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	return sim, cloudflare.NewClient(cloudflare.Options{BaseURL: sim.URL(), MaxRetries: -1}, cloudflare.Credential{Token: simToken}), z
}

const simToken = "batchTestTokenZoneReadDnsEdit00000000001"

func txt(i int) cloudflare.TXTRecord {
	return cloudflare.TXTRecord{Name: fmt.Sprintf("_acme-challenge.h%d.example.com", i), Content: fmt.Sprintf(`"v%d"`, i), TTL: 60}
}

// The batch endpoint as the simulator models it, through the SDK: deletes
// run before posts, and one failing change applies none.
func TestBatchIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	t.Run("deletes then posts", func(t *testing.T) {
		sim, c, z := simClient(t)
		old, err := c.CreateTXT(ctx, z.ID, txt(1).Name, txt(1).Content, 60, "")
		if err != nil {
			t.Fatal(err)
		}
		// Re-creating the deleted record in the same batch works only if
		// the delete runs first.
		created, err := c.Batch(ctx, z.ID, []string{old.ID}, []cloudflare.TXTRecord{txt(1), txt(2)})
		if err != nil {
			t.Fatal(err)
		}
		if len(created) != 2 || created[0].ID == old.ID || len(sim.AllRecords()) != 2 {
			t.Fatalf("created %+v, stored %+v", created, sim.AllRecords())
		}
	})
	t.Run("one duplicate fails the whole batch with its own code", func(t *testing.T) {
		sim, c, z := simClient(t)
		if _, err := c.CreateTXT(ctx, z.ID, txt(3).Name, txt(3).Content, 60, ""); err != nil {
			t.Fatal(err)
		}
		_, err := c.Batch(ctx, z.ID, nil, []cloudflare.TXTRecord{txt(1), txt(3), txt(2)})
		if !cloudflare.Is(err, cloudflare.Duplicate) {
			t.Fatalf("want the duplicate's own reason, got %v", err)
		}
		if n := len(sim.AllRecords()); n != 1 {
			t.Errorf("%d records stored after a failed batch, want the 1 from before", n)
		}
	})
	t.Run("an unknown id fails the whole batch", func(t *testing.T) {
		sim, c, z := simClient(t)
		_, err := c.Batch(ctx, z.ID, []string{"00000000000000000000000000000000"}, []cloudflare.TXTRecord{txt(1)})
		if !cloudflare.Is(err, cloudflare.RecordNotFound) || len(sim.AllRecords()) != 0 {
			t.Fatalf("got %v and %d records", err, len(sim.AllRecords()))
		}
	})
	t.Run("at most 200 changes", func(t *testing.T) {
		_, c, z := simClient(t)
		var posts []cloudflare.TXTRecord
		for i := range cfsim.MaxBatch + 1 {
			posts = append(posts, txt(i))
		}
		if _, err := c.Batch(ctx, z.ID, nil, posts); !cloudflare.Is(err, cloudflare.InvalidRequest) {
			t.Fatalf("201 changes: %v", err)
		}
		if created, err := c.Batch(ctx, z.ID, nil, posts[:cfsim.MaxBatch]); err != nil || len(created) != cfsim.MaxBatch {
			t.Fatalf("200 changes: %d created, %v", len(created), err)
		}
	})
}
