package refstore

import (
	"testing"
	"time"

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

var approvedKV1 = approved("every shard on kv-1 (6 shards) keeps 2 or more in-sync replicas on other pods, and kv-1 leads none")

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
			name: "leaders move off the pod first, then it is approved",
			asks: []ask{
				{op: kv1, want: retryAfter("moving leaders of shards 1, 4 off kv-1", time.Second)},
				{op: kv1, want: approvedKV1},
				{op: kv1, want: approved("approved until 2030-01-02T10:05:00Z")},
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
			asks: []ask{{op: kv1, want: denied(allShards+" have 1 in-sync replica besides kv-1 (kv-2 catching up); 2 needed", 2*time.Second)}},
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
			asks: []ask{
				{op: kv1, want: retryAfter("moving leaders of shards 1, 4 off kv-1", time.Second)},
				{op: kv1, want: approvedKV1},
			},
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
				{op: kv1, want: denied(allShards+" have 1 in-sync replica besides kv-1 (kv-2 catching up); 2 needed", 2*time.Second)},
				{op: func(f *fixture) *shardmanagerv1.Operation { f.settle(); return kv1(f) },
					want: retryAfter("moving leaders of shards 1, 4 off kv-1", time.Second)},
				{op: kv1, want: approvedKV1},
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
			asks: []ask{
				{op: kv1, want: retryAfter("moving leaders of shards 1, 4 off kv-1", time.Second)},
				{op: kv1, want: approvedKV1},
			},
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
