package statefulapp

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// completingShardManagers answer every CompleteOperation.
type completingShardManagers struct {
	shardmanagerv1.ShardManagerServiceClient
	completed []string
}

func (c *completingShardManagers) Client(types.NamespacedName, Target) (shardmanagerv1.ShardManagerServiceClient, error) {
	return c, nil
}

func (c *completingShardManagers) Forget(types.NamespacedName) {}

func (c *completingShardManagers) CompleteOperation(_ context.Context, req *shardmanagerv1.CompleteOperationRequest, _ ...grpc.CallOption) (*shardmanagerv1.CompleteOperationResponse, error) {
	c.completed = append(c.completed, req.GetOperationId())
	return &shardmanagerv1.CompleteOperationResponse{}, nil
}

// TestCompletionAsksTheWaitingAgain: when an operation of an app completes,
// the app's operations that wait (denied while it was under way) are asked
// about again at once, not after their backoff; other apps' are not.
func TestCompletionAsksTheWaitingAgain(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	done := makeRecord(KindRestart, 2, appsv1alpha1.OperationWaitingForPod).obj()
	claim := makeClaim(2).record(done).obj()
	sms := &completingShardManagers{}
	r, err := New(Options{
		Client:        fake.NewClientBuilder().WithScheme(scheme).WithObjects(&claim).Build(),
		Recorder:      events.NewFakeRecorder(10),
		ShardManagers: sms,
		Clock:         testingclock.NewFakeClock(now),
	})
	if err != nil {
		t.Fatal(err)
	}
	waiting := makeRecord(KindRestart, 1, appsv1alpha1.OperationDenied).obj().ID
	other := "team-a/kv2/kv2-1/Restart/c1-uid-1"
	for _, id := range []string{waiting, other} {
		r.retries[id] = retry{next: now.Add(20 * time.Second), failures: 2, outcome: "denied"}
	}
	p := &pass{app: makeApp(3).obj(), now: now}
	pp := &PodPlan{Ordinal: 2, Name: "kv-2", Claim: &claim, Record: done}
	if err := r.finish(t.Context(), pp, Action{Type: Complete, Record: done, Why: "the pod is Running and Ready again"}, p); err != nil {
		t.Fatal(err)
	}
	if len(sms.completed) != 1 || sms.completed[0] != done.ID {
		t.Fatalf("completed %v, want [%s]", sms.completed, done.ID)
	}
	if _, due := r.due(waiting, now); !due {
		t.Errorf("the app's waiting operation %s is not asked about again at once", waiting)
	}
	if next, due := r.due(other, now); due || !next.Equal(now.Add(20*time.Second)) {
		t.Errorf("another app's operation %s is due at %v (now: %t), want its own wait", other, next, due)
	}
	if !p.retryAt.Equal(now) {
		t.Errorf("the app is looked at again at %v, want at once (%v)", p.retryAt, now)
	}
	if pp.Record != nil || pp.Claim.Annotations[appsv1alpha1.OperationAnnotation] != "" {
		t.Errorf("the completed operation is still recorded: %v", pp.Claim.Annotations)
	}
}
