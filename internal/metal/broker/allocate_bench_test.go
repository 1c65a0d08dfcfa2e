package broker_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"

	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/inventory"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// BenchmarkAllocate5000Of100000 measures what `strata bench broker` times
// first, without gRPC and seeding: a CreatePool of 5,000 machines from an
// inventory of 100,000 on SQLite, then a resize of it by 10% each way; each
// iteration deletes the pool again (untimed). Profile it with
//
//	go test -run '^$' -bench Allocate5000 -benchtime 5x -cpuprofile cpu.prof ./internal/metal/broker/
func BenchmarkAllocate5000Of100000(b *testing.B) {
	ctx := context.Background()
	bk := seededBroker(b, 1, 100000)
	for b.Loop() {
		if _, err := bk.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
			Name: "big", Datacenter: "dc1", NodeProfile: "general", Capacity: 5000,
		}}); err != nil {
			b.Fatal(err)
		}
		for _, capacity := range []int32{5500, 4500} {
			if _, err := bk.UpdatePool(ctx, &brokerv1.UpdatePoolRequest{Name: "big", Capacity: capacity}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if _, err := bk.DeletePool(ctx, &brokerv1.DeletePoolRequest{Name: "big"}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// seededBroker is a broker over a SQLite file seeded with machines, with
// the general node profile.
func seededBroker(b *testing.B, seed int64, machines int) *broker.Broker {
	ctx := context.Background()
	store, err := inventory.Open(ctx, filepath.Join(b.TempDir(), "broker.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	if _, err := inventory.Seed(ctx, store, inventory.GenerateOptions{Seed: seed, Machines: machines}); err != nil {
		b.Fatal(err)
	}
	bk, err := broker.New(broker.Options{Store: store, Logger: logr.Discard()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bk.CreateNodeProfile(ctx, &brokerv1.CreateNodeProfileRequest{Profile: general}); err != nil {
		b.Fatal(err)
	}
	return bk
}
