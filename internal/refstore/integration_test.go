package refstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	refstorev1 "github.com/strata-dev/strata/proto/strata/refstore/v1"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// podSource plays the app's pods for the stores attached to it, as the
// watcher would from the cluster.
type podSource struct {
	mu     sync.Mutex
	pods   map[string]Pod
	claims map[string]int
	store  *Store
}

func newPodSource(n int) *podSource {
	p := &podSource{pods: map[string]Pod{}, claims: map[string]int{}}
	for i := range n {
		name := fmt.Sprintf("kv-%d", i)
		p.pods[name] = Pod{Name: name, Ordinal: i, Node: fmt.Sprintf("node-%d", i), Up: true, Volume: "claim/data-" + name + "/0"}
	}
	return p
}

// attach makes the store the one told about the pods (a new incarnation
// after a restart), and tells it.
func (p *podSource) attach(s *Store) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.store = s
	p.observe()
}

func (p *podSource) observe() {
	var snap Snapshot
	for _, pod := range p.pods {
		snap.Pods = append(snap.Pods, pod)
	}
	slices.SortFunc(snap.Pods, func(a, b Pod) int { return a.Ordinal - b.Ordinal })
	p.store.Observe(snap)
}

func (p *podSource) update(name string, fn func(pod *Pod)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pod := p.pods[name]
	fn(&pod)
	p.pods[name] = pod
	p.observe()
}

func (p *podSource) down(name string) {
	p.update(name, func(pod *Pod) { pod.Up, pod.Why, pod.Volume, pod.StopApproved = false, "terminating", "", nil })
}

// up brings the pod back, on a new claim when newClaim.
func (p *podSource) up(name string, newClaim bool) {
	p.update(name, func(pod *Pod) {
		if newClaim {
			p.claims[name]++
		}
		pod.Up, pod.Why, pod.Volume = true, "", fmt.Sprintf("claim/data-%s/%d", name, p.claims[name])
	})
}

// running is a store served over gRPC.
type running struct {
	store  *Store
	addr   string
	sm     shardmanagerv1.ShardManagerServiceClient
	kv     refstorev1.RefStoreServiceClient
	cancel context.CancelFunc
	done   chan struct{}
}

func startStore(t *testing.T, opts Options) *running {
	t.Helper()
	opts.Namespace, opts.App, opts.Logger = "shop", "kv", testr.New(t)
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(s, ServerOptions{Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{store: s, addr: srv.Addr(), sm: shardmanagerv1.NewShardManagerServiceClient(conn),
		kv: refstorev1.NewRefStoreServiceClient(conn), cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	go func() { wg.Wait(); close(r.done) }()
	t.Cleanup(func() { r.stop(); _ = conn.Close() })
	return r
}

func (r *running) holdPassed() bool {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	return time.Now().After(r.store.holdUntil)
}

// stop stops the store and its server, as a killed process would.
func (r *running) stop() {
	r.cancel()
	<-r.done
}

// eventually polls cond until it holds, or fails after a while.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// allInSync: every shard has three in-sync replicas.
func (r *running) allInSync(t *testing.T) bool {
	resp, err := r.kv.Sample(context.Background(), &refstorev1.SampleRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range resp.GetShards() {
		if s.GetInSync() != 3 {
			return false
		}
	}
	return true
}

func newOp(id, pod string, kind shardmanagerv1.OperationKind) *shardmanagerv1.Operation {
	return &shardmanagerv1.Operation{OperationId: id, Namespace: "shop", App: "kv", Pod: pod, Kind: kind,
		Reason: "test", Deadline: timestamppb.New(time.Now().Add(time.Minute))}
}

func (r *running) ask(t *testing.T, op *shardmanagerv1.Operation) *shardmanagerv1.RequestOperationResponse {
	t.Helper()
	resp, err := r.sm.RequestOperation(context.Background(), &shardmanagerv1.RequestOperationRequest{Operation: op})
	if err != nil {
		t.Fatalf("RequestOperation(%s): %v", op.GetOperationId(), err)
	}
	return resp
}

// askUntilApproved asks as Strata does, again after every answer that is
// not an approval (sooner than retry_after, to keep the test short).
func (r *running) askUntilApproved(t *testing.T, op *shardmanagerv1.Operation) {
	t.Helper()
	var last *shardmanagerv1.RequestOperationResponse
	eventually(t, "approval of "+op.GetOperationId(), func() bool {
		last = r.ask(t, op)
		return last.GetDecision() == shardmanagerv1.Decision_DECISION_APPROVED
	})
}

func (r *running) complete(t *testing.T, id string) {
	t.Helper()
	if _, err := r.sm.CompleteOperation(context.Background(), &shardmanagerv1.CompleteOperationRequest{OperationId: id}); err != nil {
		t.Fatalf("CompleteOperation(%s): %v", id, err)
	}
}

// client writes and reads throughout, and keeps what was acknowledged.
type client struct {
	kv refstorev1.RefStoreServiceClient
	// acked[w][key] is the last value acknowledged by writer w.
	mu                      sync.Mutex
	acked                   []map[string]int
	writes, failedWrites    atomic.Int64
	reads, failedReads      atomic.Int64
	staleReads              atomic.Int64
	samples, belowMinInSync atomic.Int64
	errs                    chan error
}

func (c *client) run(ctx context.Context, writers int, minInSync int32) *sync.WaitGroup {
	var wg sync.WaitGroup
	c.acked = make([]map[string]int, writers)
	c.errs = make(chan error, 100)
	report := func(err error) {
		select {
		case c.errs <- err:
		default:
		}
	}
	for w := range writers {
		c.acked[w] = map[string]int{}
		wg.Add(2)
		go func() { // writer w: keys w-0 .. w-49, values increasing
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("%d-%d", w, i%50)
				_, err := c.kv.Put(context.Background(), &refstorev1.PutRequest{Key: key, Value: []byte(strconv.Itoa(i))})
				c.writes.Add(1)
				if err != nil {
					c.failedWrites.Add(1)
					report(fmt.Errorf("put %s: %w", key, err))
					continue
				}
				c.mu.Lock()
				c.acked[w][key] = i
				c.mu.Unlock()
			}
		}()
		go func() { // reader of writer w's keys: never older than acknowledged
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("%d-%d", w, i%50)
				c.mu.Lock()
				before, written := c.acked[w][key]
				c.mu.Unlock()
				resp, err := c.kv.Get(context.Background(), &refstorev1.GetRequest{Key: key})
				c.reads.Add(1)
				if err != nil {
					c.failedReads.Add(1)
					report(fmt.Errorf("get %s: %w", key, err))
					continue
				}
				got, _ := strconv.Atoi(string(resp.GetValue()))
				if written && (!resp.GetFound() || got < before) {
					c.staleReads.Add(1)
					report(fmt.Errorf("get %s = %q (found %t), acknowledged %d before", key, resp.GetValue(), resp.GetFound(), before))
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // sampler
		defer wg.Done()
		for ctx.Err() == nil {
			resp, err := c.kv.Sample(context.Background(), &refstorev1.SampleRequest{})
			if err != nil {
				report(fmt.Errorf("sample: %w", err))
				continue
			}
			c.samples.Add(1)
			for _, s := range resp.GetShards() {
				if s.GetInSync() < minInSync {
					c.belowMinInSync.Add(1)
					report(fmt.Errorf("shard %d has %d in-sync replicas (%v)", s.GetShard(), s.GetInSync(), s.GetInSyncPods()))
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return &wg
}

// TestMaintenanceWithClient stops the pods of the app one at a time as
// Strata does (RequestOperation, stop, start, CompleteOperation) while a
// client writes, reads and samples: no write fails, no acknowledged write
// is lost, no shard is ever seen with fewer than min-in-sync in-sync
// replicas.
func TestMaintenanceWithClient(t *testing.T) {
	const pods = 4
	r := startStore(t, Options{Shards: 30, Replication: 3, MinInSync: 2, CatchUpBatch: 16, CatchUpDelay: time.Millisecond})
	src := newPodSource(pods)
	src.attach(r.store)
	eventually(t, "every shard in sync", func() bool { return r.allInSync(t) })

	ctx, stop := context.WithCancel(context.Background())
	c := &client{kv: r.kv}
	wg := c.run(ctx, 4, 2)

	plan := []struct {
		pod      string
		kind     shardmanagerv1.OperationKind
		newClaim bool
	}{
		{pod: "kv-0", kind: restart},
		{pod: "kv-1", kind: evict},
		{pod: "kv-2", kind: move, newClaim: true},
		{pod: "kv-3", kind: restart},
		{pod: "kv-1", kind: move, newClaim: true},
	}
	for i, step := range plan {
		id := fmt.Sprintf("shop/kv/%s/%s/%d", step.pod, kindName(step.kind), i)
		r.askUntilApproved(t, newOp(id, step.pod, step.kind))
		src.down(step.pod)
		// The app keeps writing while the pod is away.
		from := c.writes.Load()
		eventually(t, "writes while "+step.pod+" is down", func() bool { return c.writes.Load() > from+200 })
		src.up(step.pod, step.newClaim)
		r.complete(t, id)
	}
	eventually(t, "every shard back in sync", func() bool { return r.allInSync(t) })
	stop()
	wg.Wait()

	// Every acknowledged write is there.
	lost := 0
	for w, keys := range c.acked {
		for key, want := range keys {
			resp, err := r.kv.Get(context.Background(), &refstorev1.GetRequest{Key: key})
			if err != nil || !resp.GetFound() || string(resp.GetValue()) != strconv.Itoa(want) {
				lost++
				t.Errorf("writer %d: get %s = %q, %v; want %d", w, key, resp.GetValue(), err, want)
			}
		}
	}
	close(c.errs)
	for err := range c.errs {
		t.Error(err)
	}
	t.Logf("%d writes (%d failed), %d reads (%d failed, %d stale), %d samples (%d shards below min-in-sync), %d lost",
		c.writes.Load(), c.failedWrites.Load(), c.reads.Load(), c.failedReads.Load(), c.staleReads.Load(),
		c.samples.Load(), c.belowMinInSync.Load(), lost)
	if c.failedWrites.Load() != 0 || c.failedReads.Load() != 0 || c.staleReads.Load() != 0 || c.belowMinInSync.Load() != 0 || lost != 0 {
		t.Fatal("the app saw the maintenance")
	}
	if c.samples.Load() == 0 || c.writes.Load() < int64(200*len(plan)) {
		t.Fatalf("too little traffic to tell: %d writes, %d samples", c.writes.Load(), c.samples.Load())
	}
}

// TestConcurrentOperationsOnSharedShards asks for two pods that share
// shards at once, over and over: never are both approved.
func TestConcurrentOperationsOnSharedShards(t *testing.T) {
	r := startStore(t, Options{Shards: 30, Replication: 3, MinInSync: 2})
	src := newPodSource(4)
	src.attach(r.store)
	eventually(t, "every shard in sync", func() bool { return r.allInSync(t) })
	pairs := [][2]string{{"kv-1", "kv-2"}, {"kv-0", "kv-3"}, {"kv-2", "kv-0"}, {"kv-3", "kv-1"}}
	for round, pair := range pairs {
		ids := [2]string{}
		var approvals [2]atomic.Int64
		var wg sync.WaitGroup
		for i, pod := range pair {
			ids[i] = fmt.Sprintf("shop/kv/%s/EVICT/%d", pod, round)
			wg.Add(1)
			go func() {
				defer wg.Done()
				op := newOp(ids[i], pod, evict)
				for range 50 {
					if r.ask(t, op).GetDecision() == shardmanagerv1.Decision_DECISION_APPROVED {
						approvals[i].Add(1)
					}
				}
			}()
		}
		wg.Wait()
		a, b := approvals[0].Load() > 0, approvals[1].Load() > 0
		if a == b {
			t.Fatalf("round %d: %s approved %t, %s approved %t; want exactly one", round, pair[0], a, pair[1], b)
		}
		for _, id := range ids {
			r.complete(t, id)
		}
	}
}

// TestOperationAcrossShardManagerRestart: an operation stays one
// operation, with the same answer, when the shard manager restarts (it
// re-learns from the pods) and when Strata asks again after its own
// restart.
func TestOperationAcrossShardManagerRestart(t *testing.T) {
	opts := Options{Shards: 30, Replication: 3, MinInSync: 2, RestartHold: 200 * time.Millisecond}
	r := startStore(t, opts)
	src := newPodSource(3)
	src.attach(r.store)
	eventually(t, "every shard in sync", func() bool { return r.allInSync(t) })
	if got := r.ask(t, newOp("a", "kv-1", evict)).GetDecision(); got != shardmanagerv1.Decision_DECISION_RETRY_AFTER {
		// A pod found running at the first start is held too: nothing
		// tells a first start from a restart.
		t.Fatalf("first ask within the restart hold = %s, want RETRY_AFTER", got)
	}

	// Strata gets an EVICT of kv-1 approved and records it on the pod.
	evictA := newOp("shop/kv/kv-1/EVICT/1", "kv-1", evict)
	r.askUntilApproved(t, evictA)
	src.update("kv-1", func(p *Pod) {
		p.StopApproved = &StopApproval{OperationID: evictA.GetOperationId(), Deadline: evictA.GetDeadline().AsTime()}
	})

	// The shard manager restarts before the pod is evicted.
	r.stop()
	r = startStore(t, opts)
	src.attach(r.store)
	if got := r.ask(t, evictA); got.GetDecision() != shardmanagerv1.Decision_DECISION_APPROVED {
		t.Fatalf("asking again after the restart = %s (%s), want APPROVED", got.GetDecision(), got.GetReason())
	}
	restartB := newOp("shop/kv/kv-2/RESTART/1", "kv-2", restart)
	eventually(t, "the restart hold to pass", r.holdPassed)
	if got := r.ask(t, restartB); got.GetDecision() != shardmanagerv1.Decision_DECISION_DENIED {
		t.Fatalf("another pod's operation while kv-1's holds = %s (%s), want DENIED", got.GetDecision(), got.GetReason())
	}
	wantOps(t, r, evictA.GetOperationId())

	// kv-1 is evicted and comes back; Strata completes; kv-2's turn.
	src.down("kv-1")
	src.up("kv-1", false)
	r.complete(t, evictA.GetOperationId())
	r.askUntilApproved(t, restartB)
	// Strata restarts and asks again with the same id: the same operation.
	if got := r.ask(t, restartB); got.GetDecision() != shardmanagerv1.Decision_DECISION_APPROVED {
		t.Fatalf("asking again = %s (%s), want APPROVED", got.GetDecision(), got.GetReason())
	}
	wantOps(t, r, restartB.GetOperationId())

	// Strata deletes kv-2; the shard manager restarts while it is gone: the
	// approved operation whose pod is gone counts as out.
	src.down("kv-2")
	r.stop()
	r = startStore(t, opts)
	src.attach(r.store)
	if got := r.ask(t, restartB); got.GetDecision() != shardmanagerv1.Decision_DECISION_APPROVED {
		t.Fatalf("asking again for the gone pod = %s (%s), want APPROVED", got.GetDecision(), got.GetReason())
	}
	eventually(t, "the restart hold to pass", r.holdPassed)
	if got := r.ask(t, newOp("c", "kv-0", restart)); got.GetDecision() != shardmanagerv1.Decision_DECISION_DENIED {
		t.Fatalf("kv-0's operation while kv-2 is out = %s (%s), want DENIED", got.GetDecision(), got.GetReason())
	}
	src.up("kv-2", false)
	r.complete(t, restartB.GetOperationId())
	r.complete(t, restartB.GetOperationId()) // idempotent
	wantOps(t, r)
}

func wantOps(t *testing.T, r *running, ids ...string) {
	t.Helper()
	resp, err := r.sm.DescribeShards(context.Background(), &shardmanagerv1.DescribeShardsRequest{Namespace: "shop", App: "kv"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, op := range resp.GetOperations() {
		got = append(got, op.GetOperationId())
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("operations held = %v, want %v", got, ids)
	}
}
