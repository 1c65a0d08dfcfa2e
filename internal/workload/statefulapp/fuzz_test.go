package statefulapp

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// answerGrowth bounds how much an answer may add to a record: the record
// lives in a PVC annotation, and all of an object's annotations must fit in
// 256 KiB, so the shard manager's reason is kept to maxMessage.
const answerGrowth = maxMessage + 1024

func claimWith(record string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data-kv-0",
		Annotations: map[string]string{appsv1alpha1.OperationAnnotation: record}}}
}

// FuzzShardManagerAnswer feeds the controller a recorded operation (a PVC's
// annotation, which anyone who may edit the PVC writes) and a shard
// manager's answer (which the app's owner writes). Properties: the answer
// moves the operation to the state its decision names and changes nothing
// else about it; it adds at most answerGrowth bytes to the record, which
// reads back the same; Strata asks again after now and within its longest backoff,
// whatever the shard manager hints.
func FuzzShardManagerAnswer(f *testing.F) {
	deadline := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	rec := (&Record{ID: "ns/kv/kv-0/Evict/0a1b2c3d-1", Kind: KindEvict, Reason: "drain", Deadline: deadline,
		State: appsv1alpha1.OperationRequested, Since: deadline.Add(-time.Minute), PodUID: "u1", Node: "n1"}).encode()
	answer := func(d shardmanagerv1.Decision, reason string, retry time.Duration) []byte {
		raw, err := proto.Marshal(&shardmanagerv1.RequestOperationResponse{Decision: d, Reason: reason, RetryAfter: durationpb.New(retry)})
		if err != nil {
			f.Fatal(err)
		}
		return raw
	}
	f.Add(rec, answer(shardmanagerv1.Decision_DECISION_APPROVED, "moved the leader", 0), false)
	f.Add(rec, answer(shardmanagerv1.Decision_DECISION_RETRY_AFTER, "rebalancing", -time.Hour), false)
	f.Add(rec, answer(shardmanagerv1.Decision_DECISION_DENIED, "quorum", 100*365*24*time.Hour), false)
	f.Add(rec, answer(shardmanagerv1.Decision_DECISION_DENIED, strings.Repeat("why ", 100<<10), 0), false)
	f.Add(rec, answer(shardmanagerv1.Decision(77), "", 0), false)
	f.Add(rec, []byte{}, true)
	f.Add(`{"id":"x","kind":"Explode"}`, []byte{}, false)
	f.Add(`{"id":"x","kind":"Restart","deadline":"9999-12-31T23:59:59+23:59"}`, answer(shardmanagerv1.Decision_DECISION_APPROVED, "", 0), false)
	f.Add(`not json`, []byte{}, false)
	now := deadline.Add(-30 * time.Second)
	f.Fuzz(func(t *testing.T, annotation string, raw []byte, unreachable bool) {
		rec, err := readRecord(claimWith(annotation))
		if err != nil || rec == nil {
			return
		}
		resp := &shardmanagerv1.RequestOperationResponse{}
		if proto.Unmarshal(raw, resp) != nil {
			return // gRPC refuses the answer before the controller sees it
		}
		var callErr error
		if unreachable {
			callErr = status.Error(codes.Unavailable, "connection refused")
		}
		r := &Reconciler{retries: map[string]retry{}, heard: map[string]bool{}}
		p := &pass{now: now}
		next := r.answer(p, rec, resp, callErr)

		want := *rec
		want.State, want.Message, want.Since = next.State, next.Message, next.Since
		if diff := cmp.Diff(&want, next); diff != "" {
			t.Fatalf("the answer changed more than the state (-want +got):\n%s", diff)
		}
		wantState, longest := appsv1alpha1.OperationDenied, deniedBackoffMax
		switch {
		case unreachable:
			wantState, longest = appsv1alpha1.OperationRequested, unreachableBackoffMax
		case resp.GetDecision() == shardmanagerv1.Decision_DECISION_APPROVED:
			wantState = appsv1alpha1.OperationApproved
		case resp.GetDecision() == shardmanagerv1.Decision_DECISION_RETRY_AFTER:
			wantState = appsv1alpha1.OperationRetryAfter
		}
		if next.State != wantState {
			t.Fatalf("decision %v (unreachable %t) gave state %s, want %s", resp.GetDecision(), unreachable, next.State, wantState)
		}
		if next.State != rec.State && !next.Since.Equal(stamp(now)) {
			t.Fatalf("state changed but since is %v, want %v", next.Since, stamp(now))
		}
		if wantState == appsv1alpha1.OperationApproved {
			if !r.wasHeard(rec.ID) {
				t.Fatal("an approval was not remembered")
			}
		} else if at, due := r.due(rec.ID, now); due || at.After(now.Add(longest)) {
			t.Fatalf("Strata asks again at %v (due now: %t), want after now and within %v", at, due, longest)
		}
		encoded := next.encode()
		if len(encoded) > len(rec.encode())+answerGrowth {
			t.Fatalf("the answer grew the record from %d to %d bytes, more than %d", len(rec.encode()), len(encoded), answerGrowth)
		}
		back, err := readRecord(claimWith(encoded))
		if err != nil {
			t.Fatalf("the record written does not read back: %v", err)
		}
		if diff := cmp.Diff(next, back); diff != "" {
			t.Fatalf("the record read back differs (-written +read):\n%s", diff)
		}
	})
}
