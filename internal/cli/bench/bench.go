// Package bench holds `strata bench`: measurements of Strata's components
// that print one JSON line of figures.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/inventory"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// NewCommand returns `strata bench`.
func NewCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure Strata's components; each prints one JSON line"}
	cmd.AddCommand(newBroker())
	return cmd
}

// brokerOptions size the broker benchmark.
type brokerOptions struct {
	Machines int
	Capacity int32
	Clients  int
	Resizes  int
	DB       string
	// CPUProfile, when set, is where a CPU profile of the broker's work
	// (after seeding) is written.
	CPUProfile string
}

// brokerResult is the JSON line of `strata bench broker`.
type brokerResult struct {
	Machines int    `json:"machines"`
	Capacity int32  `json:"capacity"`
	Store    string `json:"store"`
	SeedMS   int64  `json:"seed_ms"`
	// AllocateMS is the time of CreatePool for the whole capacity, through gRPC.
	AllocateMS int64 `json:"allocate_ms"`
	// ZoneSpread is max minus min machines per MZ after the allocation.
	ZoneSpread int32 `json:"zone_spread"`
	Clients    int   `json:"clients"`
	Resizes    int   `json:"resizes"`
	ResizeP50  int64 `json:"resize_p50_ms"`
	ResizeP99  int64 `json:"resize_p99_ms"`
	// DoubleAllocations counts machines found in more than one pool, plus
	// any pool whose reported count differs from its machines.
	DoubleAllocations int `json:"double_allocations"`
}

func newBroker() *cobra.Command {
	o := brokerOptions{}
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Allocate a large pool from a large inventory, then resize pools under concurrent clients",
		Long: `Builds an inventory (SQLite in a temporary directory unless --db), serves the
broker on loopback, allocates one pool of --capacity machines balanced over 20
MZs, then has --clients clients resize it and a pool of their own at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := benchBroker(cmd.Context(), o)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.Machines, "machines", 100000, "machines in the inventory")
	fs.Int32Var(&o.Capacity, "capacity", 5000, "capacity of the large pool")
	fs.IntVar(&o.Clients, "clients", 16, "concurrent clients resizing pools")
	fs.IntVar(&o.Resizes, "resizes", 10, "resizes per client")
	fs.StringVar(&o.DB, "db", "", "inventory database (default: SQLite in a temporary directory); it must be empty")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the allocation and the resizes (not the seeding) to this file")
	return cmd
}

func benchBroker(ctx context.Context, o brokerOptions) (brokerResult, error) {
	res := brokerResult{Machines: o.Machines, Capacity: o.Capacity, Clients: o.Clients, Store: "postgres"}
	if o.DB == "" {
		dir, err := os.MkdirTemp("", "strata-bench-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(dir) //nolint:errcheck // scratch
		o.DB, res.Store = filepath.Join(dir, "broker.db"), "sqlite"
	}
	store, err := inventory.Open(ctx, o.DB)
	if err != nil {
		return res, err
	}
	defer store.Close() //nolint:errcheck // closed at exit
	began := time.Now()
	if _, err := inventory.Seed(ctx, store, inventory.GenerateOptions{Seed: 1, Machines: o.Machines}); err != nil {
		return res, err
	}
	res.SeedMS = time.Since(began).Milliseconds()
	if o.CPUProfile != "" {
		stopProfile, err := startCPUProfile(o.CPUProfile)
		if err != nil {
			return res, err
		}
		defer stopProfile()
	}

	c, stop, err := serve(ctx, store)
	if err != nil {
		return res, err
	}
	defer func() { _ = stop() }()
	if _, err := c.CreateNodeProfile(ctx, &brokerv1.CreateNodeProfileRequest{Profile: &brokerv1.NodeProfile{
		Name: "general", MinCpuCores: 32, MinMemoryGib: 128, NodeConfig: "kubelet-1.37-general",
	}}); err != nil {
		return res, err
	}
	began = time.Now()
	big, err := c.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{Name: "big", Datacenter: "dc1", NodeProfile: "general", Capacity: o.Capacity}})
	if err != nil {
		return res, err
	}
	res.AllocateMS = time.Since(began).Milliseconds()
	res.ZoneSpread = spread(big.GetPool())

	latencies, err := resizeConcurrently(ctx, c, o)
	if err != nil {
		return res, err
	}
	res.Resizes = len(latencies)
	slices.Sort(latencies)
	res.ResizeP50 = latencies[len(latencies)/2].Milliseconds()
	res.ResizeP99 = latencies[min(len(latencies)-1, len(latencies)*99/100)].Milliseconds()
	res.DoubleAllocations, err = doubleAllocations(ctx, c)
	return res, err
}

// serve runs a broker over the store on a loopback port and returns a client.
func serve(ctx context.Context, store inventory.Store) (brokerv1.BrokerServiceClient, func() error, error) {
	b, err := broker.New(broker.Options{Store: store, Logger: logr.Discard()})
	if err != nil {
		return nil, nil, err
	}
	srv, err := broker.NewServer(b, broker.ServerOptions{Address: "127.0.0.1:0"}, prometheus.NewRegistry())
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return brokerv1.NewBrokerServiceClient(conn), func() error { _ = conn.Close(); cancel(); return <-done }, nil
}

// resizeConcurrently has each client resize the big pool and a pool of its
// own, alternately, and returns every resize's latency.
func resizeConcurrently(ctx context.Context, c brokerv1.BrokerServiceClient, o brokerOptions) ([]time.Duration, error) {
	var mu sync.Mutex
	var latencies []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	for i := range o.Clients {
		wg.Go(func() {
			own := fmt.Sprintf("client-%d", i)
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			_, err := c.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{Name: own, Datacenter: "dc1", NodeProfile: "general", Capacity: 100}})
			for r := 0; err == nil && r < o.Resizes; r++ {
				req := &brokerv1.UpdatePoolRequest{Name: own, Capacity: 50 + rng.Int32N(200)}
				if r%2 == 0 {
					req = &brokerv1.UpdatePoolRequest{Name: "big", Capacity: o.Capacity - o.Capacity/10 + rng.Int32N(o.Capacity/5+1)}
				}
				began := time.Now()
				_, err = c.UpdatePool(ctx, req)
				mu.Lock()
				latencies = append(latencies, time.Since(began))
				mu.Unlock()
			}
			if err != nil {
				mu.Lock()
				firstErr = cmp(firstErr, fmt.Errorf("client %d: %w", i, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return latencies, firstErr
}

// startCPUProfile writes a CPU profile to path until the returned function
// is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("starting the CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// doubleAllocations lists every pool's machines and counts machines in two
// pools and pools whose status disagrees with their machines.
func doubleAllocations(ctx context.Context, c brokerv1.BrokerServiceClient) (int, error) {
	pools, err := c.ListPools(ctx, &brokerv1.ListPoolsRequest{})
	if err != nil {
		return 0, err
	}
	owner := map[string]string{}
	doubles := 0
	for _, p := range pools.GetPools() {
		n := 0
		req := &brokerv1.ListMachinesRequest{Pool: p.GetName(), PageSize: 1000}
		for {
			page, err := c.ListMachines(ctx, req)
			if err != nil {
				return 0, err
			}
			for _, m := range page.GetMachines() {
				n++
				if _, dup := owner[m.GetId()]; dup {
					doubles++
				}
				owner[m.GetId()] = p.GetName()
			}
			if req.PageToken = page.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		if int32(n) != p.GetStatus().GetAllocated() {
			doubles++
		}
	}
	return doubles, nil
}

func spread(p *brokerv1.Pool) int32 {
	zones := p.GetStatus().GetZones()
	if len(zones) == 0 {
		return 0
	}
	lo, hi := zones[0].GetMachines(), zones[0].GetMachines()
	for _, z := range zones {
		lo, hi = min(lo, z.GetMachines()), max(hi, z.GetMachines())
	}
	return hi - lo
}
