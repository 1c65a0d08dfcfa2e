package broker_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/testutil"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// env is a broker serving real gRPC on loopback over an inventory of 400
// machines in 20 MZs.
type env struct {
	client  brokerv1.BrokerServiceClient
	conn    *grpc.ClientConn
	broker  *broker.Broker
	store   inventory.Store
	metrics string
	stop    func(t *testing.T)
}

// eachEngine runs a test on a SQLite and on a PostgreSQL inventory.
func eachEngine(t *testing.T, fn func(t *testing.T, dsn string)) {
	for _, db := range testutil.Databases(t) {
		t.Run(db.Name, func(t *testing.T) { fn(t, db.NewDSN(t)) })
	}
}

func start(t *testing.T, dsn string, opts broker.ServerOptions) *env {
	t.Helper()
	return startWith(t, dsn, opts, broker.Options{})
}

// startWith starts a broker with bo (its store is opened here); with a
// provisioner it also runs the broker's loops, as `strata serve broker` does.
// The inventory is seeded unless dsn holds it already, so a second broker
// can serve the same database.
func startWith(t *testing.T, dsn string, opts broker.ServerOptions, bo broker.Options) *env {
	t.Helper()
	return startWrapped(t, dsn, opts, bo, nil)
}

// startWrapped is startWith with the broker's store wrapped by wrap (nil:
// not wrapped); env.store is the store itself.
func startWrapped(t *testing.T, dsn string, opts broker.ServerOptions, bo broker.Options, wrap func(inventory.Store) inventory.Store) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store, err := inventory.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inventory.Seed(ctx, store, inventory.GenerateOptions{Seed: 7, Machines: 400}); err != nil {
		t.Fatal(err)
	}
	bo.Store, bo.Logger = store, logr.Discard()
	if wrap != nil {
		bo.Store = wrap(store)
	}
	b, err := broker.New(bo)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Address == "" {
		opts.Address = "127.0.0.1:0"
	}
	srv, err := broker.NewServer(b, opts, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ctx) }()
	loops := 1
	if bo.Provisioner != nil {
		loops++
		go func() { done <- b.Run(ctx) }()
	}
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func(t *testing.T) {
		once.Do(func() {
			_ = conn.Close()
			cancel()
			for range loops {
				if err := <-done; err != nil {
					t.Errorf("serve: %v", err)
				}
			}
			_ = store.Close()
		})
	}
	t.Cleanup(func() { stop(t) })
	return &env{client: brokerv1.NewBrokerServiceClient(conn), conn: conn, broker: b, store: store, metrics: srv.MetricsAddr(), stop: stop}
}

func (e *env) profile(t *testing.T, p *brokerv1.NodeProfile) {
	t.Helper()
	if _, err := e.client.CreateNodeProfile(t.Context(), &brokerv1.CreateNodeProfileRequest{Profile: p}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) pool(t *testing.T, name, profile string, capacity int32) *brokerv1.Pool {
	t.Helper()
	resp, err := e.client.CreatePool(t.Context(), &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
		Name: name, Datacenter: "dc1", NodeProfile: profile, Capacity: capacity,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetPool()
}

var general = &brokerv1.NodeProfile{Name: "general", MinCpuCores: 32, MinMemoryGib: 128, NodeConfig: "kubelet-1.37"}

func zones(p *brokerv1.Pool) map[int32]int32 {
	out := map[int32]int32{}
	for _, z := range p.GetStatus().GetZones() {
		out[z.GetMaintenanceZone()] = z.GetMachines()
	}
	return out
}

func uniform(n int32) map[int32]int32 {
	out := map[int32]int32{}
	for z := int32(1); z <= 20; z++ {
		out[z] = n
	}
	return out
}

func condition(p *brokerv1.Pool) *brokerv1.Condition {
	return p.GetStatus().GetConditions()[0]
}

func wantCode(t *testing.T, err error, code codes.Code, contains string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), contains) {
		t.Errorf("error = %v, want %s containing %q", err, code, contains)
	}
}

// who is the actor of a record as people read it: the identity, and the
// detail it added.
func who(r interface {
	GetActor() string
	GetOnBehalfOf() string
}) string {
	if r.GetOnBehalfOf() == "" {
		return r.GetActor()
	}
	return r.GetActor() + " (for " + r.GetOnBehalfOf() + ")"
}

func TestPoolLifecycle(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		ctx := t.Context()
		e.profile(t, general)

		p := e.pool(t, "web", "general", 100)
		if diff := cmp.Diff(uniform(5), zones(p)); diff != "" {
			t.Errorf("per-MZ after create (-want +got):\n%s", diff)
		}
		if c := condition(p); c.GetStatus() != "True" {
			t.Errorf("condition after create = %v", c)
		}

		resp, err := e.client.UpdatePool(ctx, &brokerv1.UpdatePoolRequest{Name: "web", Capacity: 60})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(uniform(3), zones(resp.GetPool())); diff != "" {
			t.Errorf("per-MZ after shrink (-want +got):\n%s", diff)
		}
		members, err := e.client.ListMachines(ctx, &brokerv1.ListMachinesRequest{Pool: "web", PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(members.GetMachines()); n != 60 {
			t.Errorf("%d machines in pool web, want 60", n)
		}
		for _, m := range members.GetMachines() {
			if m.GetSku().GetCpuCores() < 32 || m.GetSku().GetMemoryGib() < 128 || m.GetState() != brokerv1.MachineState_MACHINE_STATE_ALLOCATED {
				t.Errorf("machine %s does not fit the pool: %v", m.GetId(), m)
			}
		}

		if _, err := e.client.DeletePool(ctx, &brokerv1.DeletePoolRequest{Name: "web"}); err != nil {
			t.Fatal(err)
		}
		_, err = e.client.GetPool(ctx, &brokerv1.GetPoolRequest{Name: "web"})
		wantCode(t, err, codes.NotFound, `pool "web" does not exist`)
		allocated, err := e.client.ListMachines(ctx, &brokerv1.ListMachinesRequest{State: brokerv1.MachineState_MACHINE_STATE_ALLOCATED})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(allocated.GetMachines()); n != 0 {
			t.Errorf("%d machines still allocated after the pool was deleted", n)
		}
	})
}

func TestPoolPrefersSmallestAdequateSKU(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		e.pool(t, "small", "general", 40)
		members, err := e.client.ListMachines(t.Context(), &brokerv1.ListMachinesRequest{Pool: "small", PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members.GetMachines() {
			if m.GetSku().GetName() != "general-32" {
				t.Errorf("machine %s is a %s; the smallest adequate SKU is general-32", m.GetId(), m.GetSku().GetName())
			}
		}
	})
}

func TestPoolReportsInsufficientInventory(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, &brokerv1.NodeProfile{Name: "gpu", MinGpus: 8, GpuModel: "nvidia-h100", NodeConfig: "kubelet-1.37-gpu"})
		gpus, err := e.client.ListMachines(t.Context(), &brokerv1.ListMachinesRequest{Sku: "gpu-h100", PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		have := int32(len(gpus.GetMachines()))
		p := e.pool(t, "train", "gpu", have+50)
		c := condition(p)
		if p.GetStatus().GetAllocated() != have || c.GetStatus() != "False" || c.GetReason() != broker.ReasonInsufficientInventory ||
			!strings.Contains(c.GetMessage(), fmt.Sprintf("%d of %d machines allocated", have, have+50)) {
			t.Errorf("pool = allocated %d, condition %v; want all %d GPU machines and InsufficientInventory", p.GetStatus().GetAllocated(), c, have)
		}
	})
}

func TestBadInputIsNamed(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		ctx := t.Context()
		e.profile(t, general)
		cases := map[string]struct {
			call func() error
			code codes.Code
			msg  string
		}{
			"pool name not a DNS label": {func() error {
				_, err := e.client.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{Name: "Web_1", Datacenter: "dc1", NodeProfile: "general"}})
				return err
			}, codes.InvalidArgument, `pool.name "Web_1" is not a DNS label`},
			"unknown profile": {func() error {
				_, err := e.client.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{Name: "web", Datacenter: "dc1", NodeProfile: "nope"}})
				return err
			}, codes.InvalidArgument, `pool.node_profile "nope" does not exist`},
			"unknown datacenter": {func() error {
				_, err := e.client.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{Name: "web", Datacenter: "dc9", NodeProfile: "general"}})
				return err
			}, codes.InvalidArgument, `pool.datacenter "dc9" does not exist (datacenters: dc1)`},
			"negative capacity": {func() error {
				_, err := e.client.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{Name: "web", Datacenter: "dc1", NodeProfile: "general", Capacity: -1}})
				return err
			}, codes.InvalidArgument, "capacity must be within 0..100000, not -1"},
			"profile without node config": {func() error {
				_, err := e.client.CreateNodeProfile(ctx, &brokerv1.CreateNodeProfileRequest{Profile: &brokerv1.NodeProfile{Name: "x"}})
				return err
			}, codes.InvalidArgument, "profile.node_config is required"},
			"duplicate profile": {func() error {
				_, err := e.client.CreateNodeProfile(ctx, &brokerv1.CreateNodeProfileRequest{Profile: general})
				return err
			}, codes.AlreadyExists, `node profile "general" already exists`},
			"unknown machine": {func() error {
				_, err := e.client.GetMachine(ctx, &brokerv1.GetMachineRequest{Id: "nope"})
				return err
			}, codes.NotFound, `machine "nope" does not exist`},
			"page size too large": {func() error {
				_, err := e.client.ListMachines(ctx, &brokerv1.ListMachinesRequest{PageSize: 5000})
				return err
			}, codes.InvalidArgument, "page_size must be within 0..1000"},
			"maintenance zone past the last": {func() error {
				_, err := e.client.ListMachines(ctx, &brokerv1.ListMachinesRequest{Datacenter: "dc1", MaintenanceZone: 21})
				return err
			}, codes.InvalidArgument, "maintenance_zone 21 is not one of datacenter dc1's: 1..20"},
			"negative maintenance zone": {func() error {
				_, err := e.client.ListMachines(ctx, &brokerv1.ListMachinesRequest{MaintenanceZone: -1})
				return err
			}, codes.InvalidArgument, "maintenance_zone -1 is not one of any datacenter's: 1..20"},
			"maintenance zone of an unknown datacenter": {func() error {
				_, err := e.client.ListMachines(ctx, &brokerv1.ListMachinesRequest{Datacenter: "dc9", MaintenanceZone: 1})
				return err
			}, codes.NotFound, `datacenter "dc9" does not exist`},
			"disruption without reason": {func() error {
				_, err := e.client.CreateDisruption(ctx, &brokerv1.CreateDisruptionRequest{Machine: "dc1-r001-u01", OnBehalfOf: "me"})
				return err
			}, codes.InvalidArgument, "reason is required"},
		}
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) { wantCode(t, tc.call(), tc.code, tc.msg) })
		}
	})
}

func TestMachinePaging(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		seen := map[string]bool{}
		req := &brokerv1.ListMachinesRequest{PageSize: 150}
		for pages := 0; ; pages++ {
			resp, err := e.client.ListMachines(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range resp.GetMachines() {
				if seen[m.GetId()] {
					t.Fatalf("machine %s on two pages", m.GetId())
				}
				seen[m.GetId()] = true
			}
			if resp.GetNextPageToken() == "" {
				break
			}
			req.PageToken = resp.GetNextPageToken()
		}
		if len(seen) != 400 {
			t.Errorf("paged through %d machines, want 400", len(seen))
		}
	})
}

// TestMachinePageTokens: a page token continues only the listing that
// returned it, from any broker of the inventory; anything else is refused
// with a message that says what is wrong.
func TestMachinePageTokens(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		ctx := t.Context()
		ids := func(resp *brokerv1.ListMachinesResponse) []string {
			var out []string
			for _, m := range resp.GetMachines() {
				out = append(out, m.GetId())
			}
			return out
		}
		zone3 := &brokerv1.ListMachinesRequest{Datacenter: "dc1", MaintenanceZone: 3, PageSize: 5}
		first, err := e.client.ListMachines(ctx, zone3)
		if err != nil {
			t.Fatal(err)
		}
		token := first.GetNextPageToken()

		// The same query continues, with another page size too.
		all, err := e.client.ListMachines(ctx, &brokerv1.ListMachinesRequest{Datacenter: "dc1", MaintenanceZone: 3, PageSize: 12})
		if err != nil {
			t.Fatal(err)
		}
		next, err := e.client.ListMachines(ctx, &brokerv1.ListMachinesRequest{Datacenter: "dc1", MaintenanceZone: 3, PageSize: 7, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ids(all)[5:], ids(next)); diff != "" {
			t.Errorf("second page (-want +got):\n%s", diff)
		}

		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			t.Fatalf("a token the broker issued is not base64url: %v", err)
		}
		altered := slices.Clone(raw)
		altered[len(altered)/2] ^= 1
		other := startWith(t, dsn, broker.ServerOptions{}, broker.Options{}) // another broker on the same inventory
		othersToken, err := other.client.ListMachines(ctx, zone3)
		if err != nil {
			t.Fatal(err)
		}
		with := func(req *brokerv1.ListMachinesRequest, token string) *brokerv1.ListMachinesRequest {
			req = proto.CloneOf(req)
			req.PageToken = token
			return req
		}
		const notIssued = "page_token is not a token this broker issued"
		cases := map[string]struct {
			req  *brokerv1.ListMachinesRequest
			want string
		}{
			"another zone's listing":  {with(&brokerv1.ListMachinesRequest{Datacenter: "dc1", MaintenanceZone: 4}, token), "page_token was issued for another query"},
			"every machine's listing": {with(&brokerv1.ListMachinesRequest{}, token), "page_token was issued for another query"},
			"another state":           {with(&brokerv1.ListMachinesRequest{Datacenter: "dc1", MaintenanceZone: 3, State: brokerv1.MachineState_MACHINE_STATE_AVAILABLE}, token), "page_token was issued for another query"},
			"forged":                  {with(zone3, "AAAAAAAAAAAAAAAAAAAA"), notIssued},
			"a machine ID as cursor":  {with(zone3, base64.RawURLEncoding.EncodeToString([]byte(ids(first)[4]))), notIssued},
			"altered":                 {with(zone3, base64.RawURLEncoding.EncodeToString(altered)), notIssued},
			"truncated":               {with(zone3, token[:len(token)-3]), notIssued},
			"not base64":              {with(zone3, token+"!"), notIssued},
			"oversized":               {with(zone3, strings.Repeat("x", 1<<20)), "page_token is 1048576 characters long, and the tokens this broker issues are at most 512"},
		}
		// Replicas of one inventory share the key: another broker's token
		// continues the listing here (a failover or a restart between two
		// pages does not break it).
		t.Run("another broker's, on the same inventory", func(t *testing.T) {
			resp, err := e.client.ListMachines(ctx, with(zone3, othersToken.GetNextPageToken()))
			if err != nil {
				t.Fatalf("a page token of another broker of the same inventory: %v", err)
			}
			if diff := cmp.Diff(ids(all)[5:10], ids(resp)); diff != "" {
				t.Errorf("the page after another broker's token (-want +got):\n%s", diff)
			}
		})
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				resp, err := e.client.ListMachines(ctx, tc.req)
				wantCode(t, err, codes.InvalidArgument, tc.want)
				if len(resp.GetMachines()) > 0 {
					t.Errorf("got a page of %d machines", len(resp.GetMachines()))
				}
			})
		}
	})
}

// TestConcurrentPoolsNeverShareMachines has two brokers on one database
// create eight pools at once. A broker runs its own writes one at a time, so
// the race is between brokers. On PostgreSQL their transactions interleave:
// the first allocation of each broker waits for the other's, so both have
// read the same free machines before either writes, and one of them must
// lose and run again. SQLite takes its write lock when a transaction begins,
// so there the brokers queue (and waiting would deadlock).
func TestConcurrentPoolsNeverShareMachines(t *testing.T) {
	for _, db := range testutil.Databases(t) {
		t.Run(db.Name, func(t *testing.T) {
			dsn := db.NewDSN(t)
			race := db.Name == "PostgreSQL"
			meet := newBarrier(2)
			var stores []*racingStore
			brokers := make([]*env, 2)
			for i := range brokers {
				brokers[i] = startWrapped(t, dsn, broker.ServerOptions{}, broker.Options{}, func(s inventory.Store) inventory.Store {
					rs := &racingStore{Store: s}
					if race {
						rs.meet = meet
					}
					stores = append(stores, rs)
					return rs
				})
			}
			brokers[0].profile(t, general)

			told := make([]int32, 8) // machines each client was told its pool got
			errs := make([]error, 8)
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					resp, err := brokers[i%2].client.CreatePool(t.Context(), &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
						Name: fmt.Sprintf("p%d", i), Datacenter: "dc1", NodeProfile: "general", Capacity: 40,
					}})
					told[i], errs[i] = resp.GetPool().GetStatus().GetAllocated(), err
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("creating pool p%d: %v", i, err)
				}
			}
			if race {
				var calls, runs int32
				for _, s := range stores {
					calls, runs = calls+s.calls.Load(), runs+s.runs.Load()
				}
				if runs == calls {
					t.Errorf("no transaction ran twice in %d: the brokers' allocations did not race", calls)
				}
			}

			owner := map[string]string{}
			for i := range 8 {
				pool := fmt.Sprintf("p%d", i)
				resp, err := brokers[(i+1)%2].client.ListMachines(t.Context(), &brokerv1.ListMachinesRequest{Pool: pool, PageSize: 1000})
				if err != nil {
					t.Fatal(err)
				}
				if n := int32(len(resp.GetMachines())); n != 40 || told[i] != 40 {
					t.Errorf("pool %s holds %d machines and its client was told %d, want 40", pool, n, told[i])
				}
				for _, m := range resp.GetMachines() {
					if prev, dup := owner[m.GetId()]; dup {
						t.Errorf("machine %s is in pools %s and %s", m.GetId(), prev, pool)
					}
					owner[m.GetId()] = pool
				}
			}
			if len(owner) != 320 {
				t.Errorf("%d machines allocated, want 8 pools x 40", len(owner))
			}
		})
	}
}

// racingStore is the inventory store with its transactions counted (calls of
// InTx and runs of their function: a retried transaction runs again) and,
// when meet is set, each transaction's first AllocateMachines held at meet
// until the other broker's transaction is there too.
type racingStore struct {
	inventory.Store
	meet        *barrier
	met         sync.Once
	calls, runs atomic.Int32
}

func (s *racingStore) InTx(ctx context.Context, fn func(ctx context.Context, tx inventory.Tx) error) error {
	s.calls.Add(1)
	return s.Store.InTx(ctx, func(ctx context.Context, tx inventory.Tx) error {
		s.runs.Add(1)
		return fn(ctx, &racingTx{Tx: tx, store: s})
	})
}

type racingTx struct {
	inventory.Tx
	store *racingStore
}

func (t *racingTx) AllocateMachines(ctx context.Context, ids []string, pool string) error {
	if t.store.meet != nil {
		var err error
		t.store.met.Do(func() { err = t.store.meet.arrive(ctx) })
		if err != nil {
			return err
		}
	}
	return t.Tx.AllocateMachines(ctx, ids, pool)
}

// barrier lets n goroutines through once all n have arrived.
type barrier struct {
	mu   sync.Mutex
	left int
	all  chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{left: n, all: make(chan struct{})} }

func (b *barrier) arrive(ctx context.Context) error {
	b.mu.Lock()
	if b.left--; b.left == 0 {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the other broker's allocation: %w", ctx.Err())
	}
}

func TestWatchPools(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		e.pool(t, "web", "general", 20)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		stream, err := e.client.WatchPools(ctx, &brokerv1.WatchPoolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		first, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if first.GetType() != brokerv1.EventType_EVENT_TYPE_ADDED || first.GetPool().GetName() != "web" {
			t.Fatalf("first event = %v, want web ADDED", first)
		}
		if _, err := e.client.UpdatePool(t.Context(), &brokerv1.UpdatePoolRequest{Name: "web", Capacity: 40}); err != nil {
			t.Fatal(err)
		}
		next, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if next.GetType() != brokerv1.EventType_EVENT_TYPE_MODIFIED || next.GetPool().GetStatus().GetAllocated() != 40 {
			t.Errorf("next event = %v, want web MODIFIED with 40 allocated", next)
		}
	})
}

func TestHealthReflectionAndMetrics(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{MetricsAddress: "127.0.0.1:0"})
		resp, err := healthpb.NewHealthClient(e.conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: "strata.broker.v1.BrokerService"})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health = %v, %v; want SERVING", resp, err)
		}
		refl, err := reflectionpb.NewServerReflectionClient(e.conn).ServerReflectionInfo(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatal(err)
		}
		services, err := refl.Recv()
		if err != nil || !strings.Contains(services.String(), "strata.broker.v1.BrokerService") {
			t.Errorf("reflection lists %v (%v), want the broker service", services, err)
		}
		e.profile(t, general)
		e.pool(t, "web", "general", 20)
		res, err := http.Get("http://" + e.metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close() //nolint:errcheck // test
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`strata_broker_machines{datacenter="dc1",state="allocated"} 20`,
			`strata_broker_machines{datacenter="dc1",state="available"} 380`,
			`strata_broker_machines_provision{datacenter="dc1",provision="clean"} 400`,
			`strata_broker_machines_provision{datacenter="dc1",provision="wiping"} 0`,
			`strata_broker_pool_capacity{pool="web"} 20`,
			"strata_broker_leader 1", // no election: always the leader
			`grpc_server_handled_total{grpc_code="OK",grpc_method="CreatePool"`,
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

func TestTokenRequired(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := start(t, filepath.Join(t.TempDir(), "broker.db"), broker.ServerOptions{TokenFile: token})
	_, err := e.client.ListSKUs(t.Context(), &brokerv1.ListSKUsRequest{})
	wantCode(t, err, codes.Unauthenticated, "the broker requires its bearer token")
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer s3cret")
	if _, err := e.client.ListSKUs(ctx, &brokerv1.ListSKUsRequest{}); err != nil {
		t.Errorf("with the token: %v", err)
	}
	if _, err := healthpb.NewHealthClient(e.conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health needs no token, got %v", err)
	}
}

func TestServerOptionsValidate(t *testing.T) {
	cases := map[string]struct {
		opts broker.ServerOptions
		want string
	}{
		"loopback":              {broker.ServerOptions{Address: "127.0.0.1:7443"}, ""},
		"localhost":             {broker.ServerOptions{Address: "localhost:7443"}, ""},
		"anywhere, no TLS":      {broker.ServerOptions{Address: "0.0.0.0:7443"}, "is not a loopback address"},
		"anywhere, insecure":    {broker.ServerOptions{Address: "0.0.0.0:7443", Insecure: true}, ""},
		"anywhere, TLS only":    {broker.ServerOptions{Address: ":7443", TLSCertFile: "c", TLSKeyFile: "k"}, "is not a loopback address"},
		"anywhere, TLS+token":   {broker.ServerOptions{Address: ":7443", TLSCertFile: "c", TLSKeyFile: "k", TokenFile: "t"}, ""},
		"anywhere, mutual TLS":  {broker.ServerOptions{Address: ":7443", TLSCertFile: "c", TLSKeyFile: "k", ClientCAFile: "ca"}, ""},
		"client CA without TLS": {broker.ServerOptions{Address: "127.0.0.1:1", ClientCAFile: "ca"}, "--tls-client-ca needs --tls-cert"},
		"anywhere, plaintext token": {broker.ServerOptions{Address: "10.0.0.7:7443", TokenFile: "t"},
			"a bearer token sent there in plaintext can be read by anyone on the network"},
		"loopback, plaintext token": {broker.ServerOptions{Address: "127.0.0.1:7443", TokenFile: "t"}, ""},
		"cert without key":          {broker.ServerOptions{Address: "127.0.0.1:1", TLSCertFile: "c"}, "go together"},
		"address without port":      {broker.ServerOptions{Address: "127.0.0.1"}, "is not host:port"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.opts.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}
