package broker_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/strata-dev/strata/internal/metal/broker"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// TestRestartLosesNothing stops a broker with pools, allocations and
// disruptions, starts another on the same database, and finds them as they were.
func TestRestartLosesNothing(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		e.pool(t, "web", "general", 40)
		d, err := e.disrupt(t, e.members(t, 4)[0].GetId(), planned)
		if err != nil {
			t.Fatal(err)
		}
		e.approve(t, d.GetId(), "cm")
		before := snapshot(t, e, d.GetId())
		e.stop(t)

		// The second broker opens the same database; Seed finds it seeded.
		again := start(t, dsn, broker.ServerOptions{})
		if diff := cmp.Diff(before, snapshot(t, again, d.GetId()), protocmp.Transform()); diff != "" {
			t.Errorf("after a restart (-before +after):\n%s", diff)
		}
	})
}

type state struct {
	Pool       *brokerv1.Pool
	Members    []*brokerv1.Machine
	Disruption *brokerv1.Disruption
}

func snapshot(t *testing.T, e *env, disruption string) state {
	t.Helper()
	pool, err := e.client.GetPool(t.Context(), &brokerv1.GetPoolRequest{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.client.GetDisruption(t.Context(), &brokerv1.GetDisruptionRequest{Id: disruption})
	if err != nil {
		t.Fatal(err)
	}
	return state{Pool: pool.GetPool(), Members: e.members(t, 0), Disruption: d.GetDisruption()}
}

// TestConcurrentResizesOfOnePool has many clients resize the same pool and
// others at once; every machine ends in at most one pool and every pool
// holds what its last resize asked.
func TestConcurrentResizesOfOnePool(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		e.pool(t, "web", "general", 40)
		e.pool(t, "api", "general", 40)
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				pool := []string{"web", "api"}[i%2]
				for r := range 5 {
					capacity := int32(20 + (i*7+r*13)%60)
					if _, err := e.client.UpdatePool(context.Background(), &brokerv1.UpdatePoolRequest{Name: pool, Capacity: capacity}); err != nil {
						t.Errorf("resize %s: %v", pool, err)
					}
				}
			})
		}
		wg.Wait()
		owner := map[string]string{}
		for _, pool := range []string{"web", "api"} {
			p, err := e.client.GetPool(t.Context(), &brokerv1.GetPoolRequest{Name: pool})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := e.client.ListMachines(t.Context(), &brokerv1.ListMachinesRequest{Pool: pool, PageSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := int32(len(resp.GetMachines())), p.GetPool().GetCapacity(); got != want {
				t.Errorf("pool %s holds %d machines, its capacity is %d", pool, got, want)
			}
			for _, m := range resp.GetMachines() {
				if prev, dup := owner[m.GetId()]; dup {
					t.Errorf("machine %s is in pools %s and %s", m.GetId(), prev, pool)
				}
				owner[m.GetId()] = pool
			}
			if s := spreadOf(p.GetPool()); s > 1 {
				t.Errorf("pool %s spread over MZs is %d, want <= 1", pool, s)
			}
		}
	})
}

func spreadOf(p *brokerv1.Pool) int32 {
	z := zones(p)
	lo, hi := int32(1<<30), int32(0)
	for mz := int32(1); mz <= 20; mz++ {
		lo, hi = min(lo, z[mz]), max(hi, z[mz])
	}
	return hi - lo
}
