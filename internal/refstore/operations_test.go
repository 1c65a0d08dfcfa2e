package refstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// Three pods, six shards of three replicas: every shard on every pod;
// kv-0 leads shards 0 and 3, kv-1 shards 1 and 4, kv-2 shards 2 and 5.
const allShards = "shards 0, 1, 2, 3, 4, 5"

var (
	approvedKV1      = approved("every shard on kv-1 (6 shards) keeps 2 or more in-sync replicas on other pods, and kv-1 leads none")
	approvedMovedKV1 = approved("moved the leaders of shards 1, 4 off kv-1; every shard on kv-1 (6 shards) keeps 2 or more in-sync replicas on other pods, and kv-1 leads none")
)

func TestRequestOperation(t *testing.T) {
	type ask struct {
		op   func(f *fixture) *shardmanagerv1.Operation
		want Decision
	}
	kv1 := func(f *fixture) *shardmanagerv1.Operation { return f.op("kv-1", restart) }
	cases := []struct {
		name string
		opts []fixtureOption
		// unseen: the store is not told the pods.
		unseen bool
		setup  func(f *fixture)
		asks   []ask
	}{
		{
			name: "leaders move off the pod, and the same answer approves",
			asks: []ask{
				{op: kv1, want: approvedMovedKV1},
				{op: kv1, want: approved("approved until 2030-01-02T10:05:00Z")},
			},
		},
		{
			name: "a leader handoff that takes time: asked again when it is over",
			opts: []fixtureOption{func(o *Options) { o.LeaderHandoff = 1500 * time.Millisecond }},
			asks: []ask{
				{op: kv1, want: retryAfter("moving the leaders of shards 1, 4 off kv-1: handed over at 2030-01-02T10:00:01.5Z", 1500*time.Millisecond)},
				{op: func(f *fixture) *shardmanagerv1.Operation { f.clock.Step(time.Second); return kv1(f) },
					want: retryAfter("the leaders of shards 1, 4 moved off kv-1, handed over at 2030-01-02T10:00:01.5Z", 500*time.Millisecond)},
				{op: func(f *fixture) *shardmanagerv1.Operation { f.clock.Step(500 * time.Millisecond); return kv1(f) },
					want: approvedKV1},
			},
		},
		{
			name:  "a pod elsewhere is down",
			setup: func(f *fixture) { f.down("kv-2", "Pending") },
			asks:  []ask{{op: kv1, want: denied(allShards+" have 1 in-sync replica besides kv-1 (kv-2 Pending); 2 needed", 10*time.Second)}},
		},
		{
			name: "a replica elsewhere is catching up",
			setup: func(f *fixture) {
				f.down("kv-2", "terminating")
				mustPut(f.t, f.s, "k", "v")
				f.up("kv-2")
			},
			asks: []ask{{op: kv1, want: retryAfter(allShards+" have 1 in-sync replica besides kv-1 (kv-2 catching up); 2 needed", 200*time.Millisecond)}},
		},
		{
			name: "a replica elsewhere is catching up and another pod is under an operation",
			setup: func(f *fixture) {
				f.approve(f.op("kv-0", evict))
				f.down("kv-2", "terminating")
				mustPut(f.t, f.s, "k", "v")
				f.up("kv-2")
			},
			asks: []ask{{op: kv1, want: denied(allShards+" have 0 in-sync replicas besides kv-1 (kv-0 under operation shop/kv/kv-0/EVICT, kv-2 catching up); 2 needed", 2*time.Second)}},
		},
		{
			name:  "a pod elsewhere is under an approved operation",
			setup: func(f *fixture) { f.approve(f.op("kv-2", evict)) },
			asks:  []ask{{op: kv1, want: denied(allShards+" have 1 in-sync replica besides kv-1 (kv-2 under operation shop/kv/kv-2/EVICT); 2 needed", 10*time.Second)}},
		},
		{
			name: "an approval counts until its deadline and the grace",
			setup: func(f *fixture) {
				op := f.op("kv-2", evict)
				op.Deadline = timestamppb.New(t0.Add(time.Minute))
				f.approve(op)
				f.clock.Step(time.Minute + 5*time.Second)
			},
			asks: []ask{{op: kv1, want: denied(allShards+" have 1 in-sync replica besides kv-1 (kv-2 under operation shop/kv/kv-2/EVICT); 2 needed", 10*time.Second)}},
		},
		{
			name: "an approval lapses after its deadline and the grace",
			setup: func(f *fixture) {
				op := f.op("kv-2", evict)
				op.Deadline = timestamppb.New(t0.Add(time.Minute))
				f.approve(op)
				f.clock.Step(time.Minute + 11*time.Second)
			},
			asks: []ask{{op: kv1, want: approvedMovedKV1}},
		},
		{
			name:  "the pod is down already",
			setup: func(f *fixture) { f.down("kv-1", "terminating") },
			asks:  []ask{{op: kv1, want: approved("kv-1 is terminating already: its replicas are out of their in-sync sets")}},
		},
		{
			name: "moving a pod that holds the last in-sync replicas",
			setup: func(f *fixture) {
				f.down("kv-0", "Pending")
				f.down("kv-2", "Pending")
				f.down("kv-1", "Pending")
			},
			asks: []ask{
				{op: func(f *fixture) *shardmanagerv1.Operation { return f.op("kv-1", move) },
					want: denied("the only in-sync replica of "+allShards+" is on kv-1, which is down: a MOVE would lose its acknowledged writes; bring kv-1 back first", 10*time.Second)},
				{op: func(f *fixture) *shardmanagerv1.Operation { return f.op("kv-1", remove) },
					want: denied("the only in-sync replica of "+allShards+" is on kv-1, which is down: a REMOVE would lose its acknowledged writes; bring kv-1 back first", 10*time.Second)},
				{op: func(f *fixture) *shardmanagerv1.Operation { return f.op("kv-1", evict) },
					want: denied("the only in-sync replica of "+allShards+" is on kv-1, which is down: an EVICT would strand its acknowledged writes on a pod that waits for its Node; bring kv-1 back first", 10*time.Second)},
				{op: kv1, want: approved("kv-1 is Pending already: its replicas are out of their in-sync sets")},
				{op: func(f *fixture) *shardmanagerv1.Operation { return f.op("kv-0", evict) },
					want: approved("kv-0 is Pending already: its replicas are out of their in-sync sets")},
				{op: func(f *fixture) *shardmanagerv1.Operation { return f.op("kv-0", move) },
					want: approved("kv-0 is Pending already: its replicas are out of their in-sync sets")},
			},
		},
		{
			name: "the deadline has passed",
			asks: []ask{{op: func(f *fixture) *shardmanagerv1.Operation {
				op := kv1(f)
				op.Deadline = timestamppb.New(t0.Add(-time.Second))
				return op
			}, want: denied("the deadline 2030-01-02T09:59:59Z has passed: ask with a later one", 0)}},
		},
		{
			name: "a pod with no replica",
			asks: []ask{{op: func(f *fixture) *shardmanagerv1.Operation { return f.op("kv-7", remove) }, want: approved("kv-7 holds no replica")}},
		},
		{
			name: "completing lets the next pod go once its replicas caught up",
			setup: func(f *fixture) {
				f.approve(f.op("kv-2", restart))
				f.down("kv-2", "terminating")
				mustPut(f.t, f.s, "k", "v")
				f.up("kv-2")
				if err := f.s.CompleteOperation("shop/kv/kv-2/RESTART"); err != nil {
					f.t.Fatal(err)
				}
			},
			asks: []ask{
				{op: kv1, want: retryAfter(allShards+" have 1 in-sync replica besides kv-1 (kv-2 catching up); 2 needed", 200*time.Millisecond)},
				{op: func(f *fixture) *shardmanagerv1.Operation { f.settle(); return kv1(f) }, want: approvedMovedKV1},
			},
		},
		{
			name: "cancelling withdraws an approval",
			setup: func(f *fixture) {
				f.approve(f.op("kv-2", evict))
				if err := f.s.CancelOperation("shop/kv/kv-2/EVICT"); err != nil {
					f.t.Fatal(err)
				}
				f.settle() // leaders go back to kv-2
			},
			asks: []ask{{op: kv1, want: approvedMovedKV1}},
		},
		{
			name:   "a shard manager that has not seen the pods yet",
			unseen: true,
			asks:   []ask{{op: kv1, want: retryAfter("the shard manager is still learning the pods of kv", 5*time.Second)}},
		},
		{
			name:  "a restarted shard manager holds new stops of running pods",
			opts:  []fixtureOption{func(o *Options) { o.RestartHold = 30 * time.Second }},
			setup: func(f *fixture) { f.down("kv-2", "terminating"); f.settle() },
			asks: []ask{
				{op: kv1, want: retryAfter("the shard manager restarted; until 2030-01-02T10:00:30Z it approves no new stop of a running pod, in case one approved before the restart is still under way", 30*time.Second)},
				{op: func(f *fixture) *shardmanagerv1.Operation { return f.op("kv-2", restart) },
					want: approved("kv-2 is terminating already: its replicas are out of their in-sync sets")},
				{op: func(f *fixture) *shardmanagerv1.Operation {
					f.up("kv-2")
					f.settle()
					f.clock.Step(31 * time.Second)
					return f.op("kv-0", restart)
				}, want: denied(allShards+" have 1 in-sync replica besides kv-0 (kv-2 under operation shop/kv/kv-2/RESTART); 2 needed", 10*time.Second)},
			},
		},
		{
			name: "a restarted shard manager learns approvals recorded on the pods",
			opts: []fixtureOption{func(o *Options) { o.RestartHold = 30 * time.Second }},
			setup: func(f *fixture) {
				p := f.pods["kv-1"]
				p.StopApproved = &StopApproval{OperationID: "shop/kv/kv-1/EVICT", Deadline: t0.Add(2 * time.Minute)}
				f.pods["kv-1"] = p
				f.observe()
				f.settle()
				f.clock.Step(31 * time.Second)
			},
			asks: []ask{
				{op: func(f *fixture) *shardmanagerv1.Operation { return f.op("kv-1", evict) },
					want: approved("approved until 2030-01-02T10:05:31Z")},
				{op: func(f *fixture) *shardmanagerv1.Operation { return f.op("kv-2", evict) },
					want: denied(allShards+" have 1 in-sync replica besides kv-2 (kv-1 under operation shop/kv/kv-1/EVICT); 2 needed", 10*time.Second)},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opts...)
			if !tc.unseen {
				f.start()
			}
			if tc.setup != nil {
				tc.setup(f)
			}
			for i, a := range tc.asks {
				op := a.op(f)
				got := f.request(op)
				if diff := cmp.Diff(a.want, got); diff != "" {
					t.Fatalf("ask %d (%s): decision (-want +got):\n%s", i, op.GetOperationId(), diff)
				}
			}
		})
	}
}

func TestRequestOperationLeadersStayOff(t *testing.T) {
	f := newFixture(t).start()
	f.approve(f.op("kv-1", restart))
	f.settle()
	if got := f.leads("kv-1"); len(got) != 0 {
		t.Fatalf("kv-1 leads %v under an approved operation", got)
	}
	f.down("kv-1", "terminating")
	f.up("kv-1")
	f.settle()
	if got := f.leads("kv-1"); len(got) != 0 {
		t.Fatalf("kv-1 leads %v before its operation completed", got)
	}
	if err := f.s.CompleteOperation("shop/kv/kv-1/RESTART"); err != nil {
		t.Fatal(err)
	}
	f.settle()
	if diff := cmp.Diff([]int{1, 4}, f.leads("kv-1")); diff != "" {
		t.Fatalf("kv-1 leads (-want +got):\n%s", diff)
	}
}

func TestRequestOperationInvalid(t *testing.T) {
	f := newFixture(t).start()
	f.approve(f.op("kv-1", restart))
	cases := []struct {
		name     string
		op       func(op *shardmanagerv1.Operation) *shardmanagerv1.Operation
		wantCode codes.Code
		wantMsg  string
	}{
		{name: "no operation", op: func(*shardmanagerv1.Operation) *shardmanagerv1.Operation { return nil },
			wantCode: codes.InvalidArgument, wantMsg: "operation is required"},
		{name: "no id", op: func(op *shardmanagerv1.Operation) *shardmanagerv1.Operation { op.OperationId = ""; return op },
			wantCode: codes.InvalidArgument, wantMsg: "operation.operation_id is required"},
		{name: "no pod", op: func(op *shardmanagerv1.Operation) *shardmanagerv1.Operation { op.Pod = ""; return op },
			wantCode: codes.InvalidArgument, wantMsg: "operation.pod is required"},
		{name: "no kind", op: func(op *shardmanagerv1.Operation) *shardmanagerv1.Operation { op.Kind = 0; return op },
			wantCode: codes.InvalidArgument, wantMsg: "operation.kind is required"},
		{name: "unknown kind", op: func(op *shardmanagerv1.Operation) *shardmanagerv1.Operation { op.Kind = 9; return op },
			wantCode: codes.InvalidArgument, wantMsg: "operation.kind 9 is not an OperationKind"},
		{name: "no deadline", op: func(op *shardmanagerv1.Operation) *shardmanagerv1.Operation { op.Deadline = nil; return op },
			wantCode: codes.InvalidArgument, wantMsg: "operation.deadline is required"},
		{name: "pod of another app", op: func(op *shardmanagerv1.Operation) *shardmanagerv1.Operation { op.Pod = "web-1"; return op },
			wantCode: codes.InvalidArgument, wantMsg: `operation.pod "web-1" is not a pod of StatefulApp kv (kv-<ordinal>)`},
		{name: "not an ordinal", op: func(op *shardmanagerv1.Operation) *shardmanagerv1.Operation { op.Pod = "kv-01"; return op },
			wantCode: codes.InvalidArgument, wantMsg: `operation.pod "kv-01" is not a pod of StatefulApp kv (kv-<ordinal>)`},
		{name: "another namespace", op: func(op *shardmanagerv1.Operation) *shardmanagerv1.Operation { op.Namespace = "blog"; return op },
			wantCode: codes.NotFound, wantMsg: "this shard manager serves StatefulApp shop/kv, not blog/kv"},
		{name: "an id reused for another pod", op: func(op *shardmanagerv1.Operation) *shardmanagerv1.Operation {
			op.OperationId = "shop/kv/kv-1/RESTART"
			op.Pod = "kv-2"
			return op
		}, wantCode: codes.FailedPrecondition,
			wantMsg: "operation shop/kv/kv-1/RESTART is a RESTART of kv-1, not a RESTART of kv-2: operation ids are unique per operation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.s.RequestOperation(tc.op(f.op("kv-0", restart)))
			if got := status.Code(err); got != tc.wantCode || status.Convert(err).Message() != tc.wantMsg {
				t.Fatalf("RequestOperation = %v, want %s: %s", err, tc.wantCode, tc.wantMsg)
			}
		})
	}
	for _, fn := range []func(string) error{f.s.CompleteOperation, f.s.CancelOperation} {
		if err := fn(""); status.Code(err) != codes.InvalidArgument {
			t.Errorf("finishing an empty id = %v, want InvalidArgument", err)
		}
		if err := fn("never/asked"); err != nil {
			t.Errorf("finishing an unknown operation = %v, want success", err)
		}
	}
}

func TestDescribeShards(t *testing.T) {
	f := newFixture(t).start()
	f.approve(f.op("kv-1", restart))
	f.down("kv-1", "terminating")
	got, err := f.s.DescribeShards("shop", "kv")
	if err != nil {
		t.Fatal(err)
	}
	replica := func(shard int32, role shardmanagerv1.ReplicaRole, inSync bool) *shardmanagerv1.Replica {
		return &shardmanagerv1.Replica{Shard: shard, Role: role, InSync: inSync}
	}
	const L, F = shardmanagerv1.ReplicaRole_REPLICA_ROLE_LEADER, shardmanagerv1.ReplicaRole_REPLICA_ROLE_FOLLOWER
	want := &shardmanagerv1.DescribeShardsResponse{
		Shards: 6, ReplicationFactor: 3, MinInSync: 2,
		Pods: []*shardmanagerv1.PodShards{
			{Pod: "kv-0", Available: true, Replicas: []*shardmanagerv1.Replica{
				replica(0, L, true), replica(1, F, true), replica(2, F, true), replica(3, L, true), replica(4, F, true), replica(5, F, true)}},
			{Pod: "kv-1", Replicas: []*shardmanagerv1.Replica{
				replica(0, F, false), replica(1, F, false), replica(2, F, false), replica(3, F, false), replica(4, F, false), replica(5, F, false)}},
			{Pod: "kv-2", Available: true, Replicas: []*shardmanagerv1.Replica{
				replica(0, F, true), replica(1, L, true), replica(2, L, true), replica(3, F, true), replica(4, L, true), replica(5, L, true)}},
		},
		Operations: []*shardmanagerv1.Operation{f.op("kv-1", restart)},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Fatalf("DescribeShards (-want +got):\n%s", diff)
	}
	if _, err := f.s.DescribeShards("shop", "web"); status.Code(err) != codes.NotFound {
		t.Errorf("DescribeShards of another app = %v, want NotFound", err)
	}
}

// TestRequestOperationApprovesSeveral asks for a RESTART of every pod at
// once, round after round as a rolling update does: each round the shard
// manager approves every pod it can — no shard ever left with fewer than
// min-in-sync in-sync replicas on pods that are up and under no
// operation, and no pod refused that could have gone with the others —
// and the approved pods are restarted together.
func TestRequestOperationApprovesSeveral(t *testing.T) {
	cases := []struct {
		pods, shards, replication, minInSync int
		// maxRounds bounds the rounds a rolling update takes: the pods
		// over the most a round can take.
		maxRounds int
	}{
		{pods: 30, shards: 30, replication: 3, minInSync: 2, maxRounds: 4},
		{pods: 30, shards: 30, replication: 3, minInSync: 1, maxRounds: 3},
		{pods: 12, shards: 30, replication: 5, minInSync: 3, maxRounds: 6},
		{pods: 3, shards: 6, replication: 3, minInSync: 2, maxRounds: 3},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d pods, %d shards of %d replicas, %d in sync", tc.pods, tc.shards, tc.replication, tc.minInSync), func(t *testing.T) {
			f := newFixture(t, func(o *Options) {
				o.Shards, o.Replication, o.MinInSync = tc.shards, tc.replication, tc.minInSync
				o.Logger = logr.Discard()
			})
			for i := range tc.pods {
				f.setPod(Pod{Name: f.s.PodName(i), Ordinal: i, Node: fmt.Sprintf("node-%d", i), Up: true})
			}
			f.start()
			left := map[string]bool{}
			for i := range tc.pods {
				left[f.s.PodName(i)] = true
			}
			writes := 0
			for round := 1; len(left) > 0; round++ {
				if round > tc.maxRounds {
					t.Fatalf("%d pods not restarted after %d rounds", len(left), tc.maxRounds)
				}
				var approvedPods []string
				var waiting []string
				for i := range tc.pods {
					pod := f.s.PodName(i)
					if !left[pod] {
						continue
					}
					d := f.request(f.op(pod, restart))
					switch d.Decision {
					case shardmanagerv1.Decision_DECISION_APPROVED:
						approvedPods = append(approvedPods, pod)
					case shardmanagerv1.Decision_DECISION_DENIED:
						waiting = append(waiting, pod)
					default:
						t.Fatalf("round %d: %s answered %s (%s), want APPROVED or DENIED", round, pod, d.Decision, d.Reason)
					}
				}
				if len(approvedPods) == 0 {
					t.Fatalf("round %d: nothing approved of %v", round, waiting)
				}
				out := map[string]bool{}
				for _, p := range approvedPods {
					out[p] = true
				}
				// Every shard keeps min-in-sync replicas that are up, in
				// sync and under no operation; and every pod refused
				// would take a shard below that with the approved ones
				// gone.
				for id := range f.s.shards {
					pods, _ := f.inSync(id)
					kept := 0
					for _, p := range pods {
						if !out[p] {
							kept++
						}
					}
					if kept < tc.minInSync {
						t.Fatalf("round %d: approved %v leaves shard %d with %d in-sync replicas (%v), want %d or more",
							round, approvedPods, id, kept, pods, tc.minInSync)
					}
				}
				for _, p := range waiting {
					if !f.blockedBy(p, out, tc.minInSync) {
						t.Errorf("round %d: %s was refused though no shard on it would fall below %d with %v out", round, p, tc.minInSync, approvedPods)
					}
				}
				t.Logf("round %d: %d approved at once, %d wait", round, len(approvedPods), len(waiting))
				// The approved pods restart together while writes go on.
				for _, p := range approvedPods {
					f.down(p, "terminating")
				}
				for range 50 {
					writes++
					mustPut(t, f.s, fmt.Sprintf("k%d", writes), "v")
				}
				for _, p := range approvedPods {
					f.up(p)
				}
				f.settle()
				for _, p := range approvedPods {
					if err := f.s.CompleteOperation(f.op(p, restart).GetOperationId()); err != nil {
						t.Fatal(err)
					}
					delete(left, p)
				}
				f.settle()
			}
			for i := range writes {
				if got, err := f.s.Get(fmt.Sprintf("k%d", i+1)); err != nil || !got.Found {
					t.Fatalf("acknowledged write k%d: found %t, %v", i+1, got.Found, err)
				}
			}
		})
	}
}

// blockedBy says whether taking pod out besides the pods out would leave a
// shard on it with fewer than need in-sync replicas on the other pods.
func (f *fixture) blockedBy(pod string, out map[string]bool, need int) bool {
	for id, sh := range f.s.shards {
		sh.mu.Lock()
		on := sh.members[pod] != nil
		sh.mu.Unlock()
		if !on {
			continue
		}
		pods, _ := f.inSync(id)
		kept := 0
		for _, p := range pods {
			if p != pod && !out[p] {
				kept++
			}
		}
		if kept < need {
			return true
		}
	}
	return false
}
