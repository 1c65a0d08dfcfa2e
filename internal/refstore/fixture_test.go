package refstore

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"google.golang.org/protobuf/types/known/timestamppb"
	testingclock "k8s.io/utils/clock/testing"

	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// t0 is the fake clock's start.
var t0 = time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)

// fixture is a store of app kv in namespace shop on three pods, whose pods the test
// plays, with a fake clock; its replicas catch up when the test says
// (settle), not in goroutines.
type fixture struct {
	t     *testing.T
	s     *Store
	clock *testingclock.FakeClock
	pods  map[string]Pod
	// volumes counts the volumes made per pod, for new claims.
	volumes  map[string]int
	replicas *int32
}

type fixtureOption func(*Options)

func newFixture(t *testing.T, opts ...fixtureOption) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: testingclock.NewFakeClock(t0), pods: map[string]Pod{}, volumes: map[string]int{}}
	o := Options{Namespace: "shop", App: "kv", Shards: 6, Replication: 3, MinInSync: 2, ApprovalGrace: 10 * time.Second,
		Clock: f.clock, Logger: testr.New(t)}
	for _, opt := range opts {
		opt(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	for i := range 3 {
		f.setPod(Pod{Name: s.PodName(i), Ordinal: i, Node: fmt.Sprintf("node-%d", i), Up: true})
	}
	return f
}

func (f *fixture) setPod(p Pod) {
	if p.Up && p.Volume == "" {
		p.Volume = f.volumeKey(p.Name)
	}
	f.pods[p.Name] = p
}

func (f *fixture) volumeKey(pod string) string {
	return fmt.Sprintf("claim/data-%s/uid-%d", pod, f.volumes[pod])
}

// observe tells the store the pods.
func (f *fixture) observe() {
	snap := Snapshot{Replicas: f.replicas}
	for _, p := range f.pods {
		snap.Pods = append(snap.Pods, p)
	}
	slices.SortFunc(snap.Pods, func(a, b Pod) int { return a.Ordinal - b.Ordinal })
	f.s.Observe(snap)
}

// down takes a pod down (why: "Pending", "terminating", ...).
func (f *fixture) down(pod, why string) {
	p := f.pods[pod]
	p.Up, p.Why, p.Volume = false, why, ""
	f.pods[pod] = p
	f.observe()
}

// up brings a pod back on its claim.
func (f *fixture) up(pod string) {
	p := f.pods[pod]
	p.Up, p.Why, p.Volume = true, "", f.volumeKey(pod)
	f.pods[pod] = p
	f.observe()
}

// upOnNewClaim brings a pod back on a new, empty claim.
func (f *fixture) upOnNewClaim(pod string) {
	f.volumes[pod]++
	f.up(pod)
}

// settle lets every up replica catch up and the store reconcile, as Run
// would.
func (f *fixture) settle() {
	f.t.Helper()
	for range 1000 {
		more := false
		for name, p := range f.pods {
			if p.Up && f.s.catchUpPod(name) {
				more = true
			}
		}
		f.s.mu.Lock()
		f.s.reconcile(f.clock.Now())
		f.s.mu.Unlock()
		if !more {
			return
		}
	}
	f.t.Fatal("replicas did not catch up")
}

// catchUpOnce lets a pod's replicas copy one batch.
func (f *fixture) catchUpOnce(pod string) { f.s.catchUpPod(pod) }

// start: the pods, observed and settled.
func (f *fixture) start() *fixture {
	f.observe()
	f.settle()
	return f
}

// op is an operation on a pod, id <pod>/<kind>, deadline in five minutes.
func (f *fixture) op(pod string, kind shardmanagerv1.OperationKind) *shardmanagerv1.Operation {
	return &shardmanagerv1.Operation{
		OperationId: "shop/kv/" + pod + "/" + kindName(kind), Namespace: "shop", App: "kv", Pod: pod,
		Kind: kind, Reason: "test", Deadline: timestamppb.New(f.clock.Now().Add(5 * time.Minute)),
	}
}

func (f *fixture) request(op *shardmanagerv1.Operation) Decision {
	f.t.Helper()
	d, err := f.s.RequestOperation(op)
	if err != nil {
		f.t.Fatalf("RequestOperation(%s): %v", op.GetOperationId(), err)
	}
	return d
}

// approve asks until approved (leaders move on the first ask).
func (f *fixture) approve(op *shardmanagerv1.Operation) {
	f.t.Helper()
	for range 3 {
		if d := f.request(op); d.Decision == shardmanagerv1.Decision_DECISION_APPROVED {
			return
		}
	}
	f.t.Fatalf("operation %s not approved", op.GetOperationId())
}

// inSync returns the pods of the shard's in-sync replicas that are up,
// and its leader.
func (f *fixture) inSync(shard int) (pods []string, leader string) {
	sh := f.s.shards[shard]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, m := range sortedMembers(sh) {
		if m.serving() {
			pods = append(pods, m.pod)
		}
	}
	return pods, sh.leader
}

// leads lists the shards the pod leads.
func (f *fixture) leads(pod string) []int {
	var out []int
	for i := range f.s.shards {
		if _, l := f.inSync(i); l == pod {
			out = append(out, i)
		}
	}
	return out
}

var (
	restart = shardmanagerv1.OperationKind_OPERATION_KIND_RESTART
	evict   = shardmanagerv1.OperationKind_OPERATION_KIND_EVICT
	move    = shardmanagerv1.OperationKind_OPERATION_KIND_MOVE
	remove  = shardmanagerv1.OperationKind_OPERATION_KIND_REMOVE
)
