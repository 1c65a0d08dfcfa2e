package statefulapp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// render is a plan as lines per pod: its actions, and "queued" when its
// update waits for its turn.
func render(plan Plan) map[string][]string {
	out := map[string][]string{}
	for _, pp := range plan.Pods {
		var lines []string
		for _, a := range pp.Actions {
			lines = append(lines, renderAction(a))
		}
		if pp.Queued {
			lines = append(lines, "queued: "+pp.Want.Reason)
		}
		if pp.Note != "" {
			lines = append(lines, "note: "+pp.Note)
		}
		if len(lines) > 0 {
			out[pp.Name] = lines
		}
	}
	return out
}

func renderAction(a Action) string {
	switch a.Type {
	case CreateClaim:
		return "CreateClaim " + a.Object.GetName()
	case CreatePod:
		return "CreatePod " + a.Object.GetLabels()[appsv1alpha1.AppVersionLabel]
	case Request:
		s := fmt.Sprintf("Request %s %s %q deadline +%s", a.Record.ID, a.Record.State, a.Record.Reason, a.Record.Deadline.Sub(now))
		if a.Count > 0 {
			s += fmt.Sprintf(" count %d", a.Count)
		}
		return s
	case StopPod:
		return "StopPod " + a.Record.ID
	case ApproveEviction:
		return "ApproveEviction " + a.Record.approval()
	case ClearApproval:
		return "ClearApproval"
	case Mark:
		return fmt.Sprintf("Mark %s: %s", a.Record.State, a.Record.Message)
	case Complete:
		s := "Complete " + a.Record.ID + ": " + a.Why
		if a.DeleteClaim {
			s += "; delete the PVC"
		}
		return s
	case Cancel:
		return "Cancel " + a.Record.ID + ": " + a.Why
	}
	return string(a.Type)
}

const (
	restart2 = "team-a/kv/kv-2/Restart/c2uid-1"
	evict0   = "team-a/kv/kv-0/Evict/c0uid-1"
)

func TestMakePlan(t *testing.T) {
	v1 := makeApp(3).obj()
	cases := []struct {
		name    string
		world   func() World
		want    map[string][]string
		recheck time.Duration
	}{
		{
			name:  "a new app: each pod gets its PVC, then the pod",
			world: func() World { return makeWorld(v1).World },
			want: map[string][]string{
				"kv-0": {"CreateClaim data-kv-0", "CreatePod 1.0"},
				"kv-1": {"CreateClaim data-kv-1", "CreatePod 1.0"},
				"kv-2": {"CreateClaim data-kv-2", "CreatePod 1.0"},
			},
		},
		{
			name: "running as wanted: nothing to do",
			world: func() World {
				pods, claims := running(v1)
				return makeWorld(v1).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{},
		},
		{
			name: "without an AppPlatform no pod is made, the PVC is",
			world: func() World {
				return makeWorld(v1).noPlatform().World
			},
			want: map[string][]string{
				"kv-0": {"CreateClaim data-kv-0"}, "kv-1": {"CreateClaim data-kv-1"}, "kv-2": {"CreateClaim data-kv-2"},
			},
		},
		{
			name: "a new version: RESTART the highest ordinal first, one at a time",
			world: func() World {
				pods, claims := running(v1)
				return makeWorld(makeApp(3).version("1.1").obj()).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {`Request team-a/kv/kv-2/Restart/c2uid-1 Requested "rolling update to version 1.1 (from 1.0)" deadline +5m0s count 1`},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "two operations at a time: the two highest ordinals",
			world: func() World {
				pods, claims := running(v1)
				return makeWorld(makeApp(3).version("1.1").maxOps(2).obj()).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {`Request team-a/kv/kv-2/Restart/c2uid-1 Requested "rolling update to version 1.1 (from 1.0)" deadline +5m0s count 1`},
				"kv-1": {`Request team-a/kv/kv-1/Restart/c1uid-1 Requested "rolling update to version 1.1 (from 1.0)" deadline +5m0s count 1`},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "the operation id counts the operations on the PVC",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).annotate(OperationCountAnnotation, "4").obj()
				return makeWorld(makeApp(3).version("1.1").obj()).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {`Request team-a/kv/kv-2/Restart/c2uid-5 Requested "rolling update to version 1.1 (from 1.0)" deadline +5m0s count 5`},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "a recorded operation is asked again by its id and deadline; it holds the one slot",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationRetryAfter).obj()).obj()
				return makeWorld(makeApp(3).version("1.1").obj()).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {`Request ` + restart2 + ` RetryAfter "because" deadline +4m0s`},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "a denied operation past its deadline is asked again with a new deadline",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationDenied).deadline(-time.Second).obj()).obj()
				return makeWorld(makeApp(3).version("1.1").obj()).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {`Request ` + restart2 + ` Denied "because" deadline +5m0s`},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "an approved RESTART stops its pod",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationApproved).obj()).obj()
				return makeWorld(makeApp(3).version("1.1").obj()).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {"StopPod " + restart2},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "an approval about to expire stops nothing; Strata looks again at its deadline",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationApproved).deadline(time.Second).obj()).obj()
				return makeWorld(makeApp(3).version("1.1").obj()).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
			recheck: time.Second,
		},
		{
			name: "an expired approval is asked for again, with a new deadline",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationApproved).deadline(-time.Minute).obj()).obj()
				return makeWorld(makeApp(3).version("1.1").obj()).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {`Request ` + restart2 + ` Requested "because" deadline +5m0s`},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "the restarted pod is gone: it is made again on its data, at the new version",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationStopping).obj()).obj()
				return makeWorld(makeApp(3).version("1.1").obj()).pods(pods[:2]...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {"CreatePod 1.1", "Mark WaitingForPod: making the pod again on its data"},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "the old pod still terminating: wait for it",
			world: func() World {
				pods, claims := running(v1)
				pods[2] = makePod(v1, 2, "n3").terminating().obj()
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationStopping).obj()).obj()
				return makeWorld(makeApp(3).version("1.1").obj()).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {"Mark Stopping: waiting for the pod to stop"},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "a recorded stop is trusted over a cache that still shows the old pod running",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationStopping).deadline(-time.Minute).obj()).obj()
				return makeWorld(makeApp(3).version("1.1").obj()).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {"Mark Stopping: waiting for the pod to stop"},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "the new pod starting: wait until it is Ready",
			world: func() World {
				v11 := makeApp(3).version("1.1").obj()
				pods, claims := running(v1)
				pods[2] = makePod(v11, 2, "n3").incarnation(2).notReady().obj()
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationWaitingForPod).obj()).obj()
				return makeWorld(v11).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {"Mark WaitingForPod: waiting for the pod to be Running and Ready on Node n3"},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "the new pod Ready: complete; the next pod's turn comes once the record is gone",
			world: func() World {
				v11 := makeApp(3).version("1.1").obj()
				pods, claims := running(v1)
				pods[2] = makePod(v11, 2, "n3").incarnation(2).obj()
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationWaitingForPod).obj()).obj()
				return makeWorld(v11).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {"Complete " + restart2 + ": the pod is Running and Ready again"},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "the update reverted before approval: cancel",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationDenied).obj()).obj()
				return makeWorld(v1).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{"kv-2": {"Cancel " + restart2 + ": its reason is gone"}},
		},
		{
			name: "the pod went by itself before approval: cancel, then make it again",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationRequested).obj()).obj()
				return makeWorld(makeApp(3).version("1.1").obj()).pods(pods[:2]...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {"Cancel " + restart2 + ": the pod is gone"},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "a canary: the highest ordinal runs the canary version",
			world: func() World {
				pods, claims := running(v1)
				return makeWorld(makeApp(3).canary("1.1", 1).obj()).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {`Request team-a/kv/kv-2/Restart/c2uid-1 Requested "canary to version 1.1 (from 1.0)" deadline +5m0s count 1`},
			},
		},
		{
			name: "a changed pod template (resources) restarts pods like a version",
			world: func() World {
				pods, claims := running(v1)
				bigger := makeApp(3).obj()
				bigger.Spec.Resources.Memory.Set(2 << 30)
				return makeWorld(bigger).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {`Request team-a/kv/kv-2/Restart/c2uid-1 Requested "pod template changed (resources, port, node profile or the platform's containers)" deadline +5m0s count 1`},
				"kv-1": {"queued: pod template changed (resources, port, node profile or the platform's containers)"},
				"kv-0": {"queued: pod template changed (resources, port, node profile or the platform's containers)"},
			},
		},
		{
			name: "a Node cordoned by Strata for a disruption: EVICT at once, not waiting for a slot",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationRetryAfter).obj()).obj()
				return makeWorld(makeApp(3).version("1.1").obj()).pods(pods...).claims(claims...).node(cordoned(makeNode("n1"), "d1")).World
			},
			want: map[string][]string{
				"kv-0": {`Request ` + evict0 + ` Requested "Node n1 is cordoned by Strata for disruption d1" deadline +5m0s count 1`},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-2": {`Request ` + restart2 + ` RetryAfter "because" deadline +4m0s`},
			},
		},
		{
			name: "a Node cordoned by a person: EVICT, saying so",
			world: func() World {
				pods, claims := running(v1)
				return makeWorld(v1).pods(pods...).claims(claims...).node(cordoned(makeNode("n1"), "")).World
			},
			want: map[string][]string{
				"kv-0": {`Request ` + evict0 + ` Requested "Node n1 is cordoned (not by Strata: kubectl cordon or drain)" deadline +5m0s count 1`},
			},
		},
		{
			name: "stop requested on a pod: EVICT with the person's reason",
			world: func() World {
				pods, claims := running(v1)
				pods[0] = makePod(v1, 0, "n1").annotate(appsv1alpha1.StopRequestedAnnotation, "replace its disk").obj()
				return makeWorld(v1).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-0": {`Request ` + evict0 + ` Requested "stop requested on the pod: replace its disk" deadline +5m0s count 1`},
			},
		},
		{
			name: "a RESTART waiting for approval gives way to an EVICT",
			world: func() World {
				pods, claims := running(v1)
				claims[0] = makeClaim(0).record(makeRecord(KindRestart, 0, appsv1alpha1.OperationDenied).obj()).obj()
				return makeWorld(makeApp(3).version("1.1").obj()).pods(pods...).claims(claims...).node(cordoned(makeNode("n1"), "d1")).World
			},
			want: map[string][]string{
				"kv-0": {"Cancel team-a/kv/kv-0/Restart/c0uid-1: the pod now needs Evict instead (Node n1 is cordoned by Strata for disruption d1)"},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-2": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "an approved EVICT: annotate the pod for the drain, never delete it; look again at the deadline",
			world: func() World {
				pods, claims := running(v1)
				claims[0] = makeClaim(0).record(makeRecord(KindEvict, 0, appsv1alpha1.OperationApproved).obj()).obj()
				return makeWorld(v1).pods(pods...).claims(claims...).node(cordoned(makeNode("n1"), "d1")).World
			},
			want:    map[string][]string{"kv-0": {"ApproveEviction " + evict0 + "@2026-05-01T12:04:00Z"}},
			recheck: 4 * time.Minute,
		},
		{
			name: "an approved EVICT already annotated: wait for the drain",
			world: func() World {
				pods, claims := running(v1)
				pods[0] = makePod(v1, 0, "n1").annotate(appsv1alpha1.StopApprovedAnnotation, evict0+"@2026-05-01T12:04:00Z").obj()
				claims[0] = makeClaim(0).record(makeRecord(KindEvict, 0, appsv1alpha1.OperationApproved).obj()).obj()
				return makeWorld(v1).pods(pods...).claims(claims...).node(cordoned(makeNode("n1"), "d1")).World
			},
			want:    map[string][]string{},
			recheck: 4 * time.Minute,
		},
		{
			name: "an EVICT approval that expired before the drain came: clear it, ask again",
			world: func() World {
				pods, claims := running(v1)
				pods[0] = makePod(v1, 0, "n1").annotate(appsv1alpha1.StopApprovedAnnotation, evict0+"@2026-05-01T11:59:00Z").obj()
				claims[0] = makeClaim(0).record(makeRecord(KindEvict, 0, appsv1alpha1.OperationApproved).deadline(-time.Minute).obj()).obj()
				return makeWorld(v1).pods(pods...).claims(claims...).node(cordoned(makeNode("n1"), "d1")).World
			},
			want: map[string][]string{"kv-0": {"ClearApproval", `Request ` + evict0 + ` Requested "because" deadline +5m0s`}},
		},
		{
			name: "the Node uncordoned before the eviction: take the approval back and cancel",
			world: func() World {
				pods, claims := running(v1)
				pods[0] = makePod(v1, 0, "n1").annotate(appsv1alpha1.StopApprovedAnnotation, evict0+"@2026-05-01T12:04:00Z").obj()
				claims[0] = makeClaim(0).record(makeRecord(KindEvict, 0, appsv1alpha1.OperationApproved).obj()).obj()
				return makeWorld(v1).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{"kv-0": {"ClearApproval", "Cancel " + evict0 + ": its reason is gone"}},
		},
		{
			name: "the evicted pod is made again; it waits for its cordoned Node",
			world: func() World {
				pods, claims := running(v1)
				claims[0] = makeClaim(0).record(makeRecord(KindEvict, 0, appsv1alpha1.OperationApproved).obj()).obj()
				return makeWorld(v1).pods(pods[1:]...).claims(claims...).node(cordoned(makeNode("n1"), "d1")).World
			},
			want: map[string][]string{"kv-0": {"CreatePod 1.0", "Mark WaitingForPod: making the pod again on its data"}},
		},
		{
			name: "the pod back but Pending on its cordoned Node: wait, say why",
			world: func() World {
				pods, claims := running(v1)
				pods[0] = makePod(v1, 0, "n1").incarnation(2).pending().obj()
				claims[0] = makeClaim(0).record(makeRecord(KindEvict, 0, appsv1alpha1.OperationWaitingForPod).obj()).obj()
				return makeWorld(v1).pods(pods...).claims(claims...).node(cordoned(makeNode("n1"), "d1")).World
			},
			want: map[string][]string{"kv-0": {"Mark WaitingForPod: waiting for the pod to be scheduled: its data is on Node n1, which is cordoned"}},
		},
		{
			name: "the Node of the pod's data is gone: MOVE, and no pod is made meanwhile",
			world: func() World {
				pods, claims := running(v1)
				return makeWorld(v1).pods(pods[1:]...).claims(claims...).noNode("n1").World
			},
			want: map[string][]string{
				"kv-0": {`Request team-a/kv/kv-0/Move/c0uid-1 Requested "Node n1, which holds the pod's data (volume pv-0), is gone" deadline +5m0s count 1`},
			},
		},
		{
			name: "the pod's volume is gone: MOVE",
			world: func() World {
				pods, claims := running(v1)
				w := makeWorld(v1).pods(pods...).claims(claims...)
				delete(w.Volumes, "pv-1")
				return w.World
			},
			want: map[string][]string{
				"kv-1": {`Request team-a/kv/kv-1/Move/c1uid-1 Requested "the pod's volume pv-1 is gone" deadline +5m0s count 1`},
			},
		},
		{
			name: "the pod's volume being deleted (its Node wiped): MOVE",
			world: func() World {
				pods, claims := running(v1)
				w := makeWorld(v1).pods(pods...).claims(claims...)
				w.Volumes["pv-2"].DeletionTimestamp = &metav1.Time{Time: now}
				return w.World
			},
			want: map[string][]string{
				"kv-2": {`Request team-a/kv/kv-2/Move/c2uid-1 Requested "the pod's volume pv-2 is being deleted" deadline +5m0s count 1`},
			},
		},
		{
			name: "an approved MOVE with the pod still there: stop it",
			world: func() World {
				pods, claims := running(v1)
				claims[1] = makeClaim(1).record(makeRecord(KindMove, 1, appsv1alpha1.OperationApproved).obj()).obj()
				return makeWorld(v1).pods(pods...).claims(claims...).noNode("n2").World
			},
			want: map[string][]string{"kv-1": {"StopPod team-a/kv/kv-1/Move/c1uid-1"}},
		},
		{
			name: "an approved MOVE with the pod gone: complete, and the data goes",
			world: func() World {
				pods, claims := running(v1)
				claims[0] = makeClaim(0).record(makeRecord(KindMove, 0, appsv1alpha1.OperationApproved).noPod().obj()).obj()
				return makeWorld(v1).pods(pods[1:]...).claims(claims...).noNode("n1").World
			},
			want: map[string][]string{"kv-0": {"Complete team-a/kv/kv-0/Move/c0uid-1: the pod is gone; its data goes; delete the PVC"}},
		},
		{
			name: "the old PVC being deleted: wait; then a new PVC and pod",
			world: func() World {
				pods, claims := running(v1)
				claims[0] = makeClaim(0).terminating().obj()
				return makeWorld(v1).pods(pods[1:]...).claims(claims...).noNode("n1").World
			},
			want: map[string][]string{"kv-0": {"note: waiting for the PVC data-kv-0 to be deleted"}},
		},
		{
			name: "a scale-down: REMOVE the highest ordinal",
			world: func() World {
				pods, claims := running(v1)
				return makeWorld(makeApp(1).obj()).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {`Request team-a/kv/kv-2/Remove/c2uid-1 Requested "scale-down to 1 replicas" deadline +5m0s count 1`},
				"kv-1": {"queued: scale-down to 1 replicas"},
			},
		},
		{
			name: "an approved REMOVE whose pod is gone: complete, delete the PVC",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRemove, 2, appsv1alpha1.OperationStopping).obj()).obj()
				return makeWorld(makeApp(2).obj()).pods(pods[:2]...).claims(claims...).World
			},
			want: map[string][]string{"kv-2": {"Complete team-a/kv/kv-2/Remove/c2uid-1: the pod is gone; its data goes; delete the PVC"}},
		},
		{
			name: "scaled back up before approval: cancel the REMOVE",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRemove, 2, appsv1alpha1.OperationRetryAfter).obj()).obj()
				return makeWorld(v1).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{"kv-2": {"Cancel team-a/kv/kv-2/Remove/c2uid-1: its reason is gone"}},
		},
		{
			name: "a restarted pod that will not come back (scaled down): complete its RESTART",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationWaitingForPod).obj()).obj()
				return makeWorld(makeApp(2).obj()).pods(pods[:2]...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {"Complete " + restart2 + ": the pod will not come back on its data: it needs Remove (scale-down to 2 replicas)"},
			},
		},
		{
			name: "an unreadable record: nothing is done to the pod",
			world: func() World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).annotate(appsv1alpha1.OperationAnnotation, "{not json").obj()
				return makeWorld(makeApp(3).version("1.1").obj()).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{
				"kv-2": {"note: annotation apps.strata.dev/operation of PVC data-kv-2 is not an operation record: invalid character 'n' looking for beginning of object key string; nothing is done to the pod until the annotation is repaired or removed"},
				"kv-1": {"queued: rolling update to version 1.1 (from 1.0)"},
				"kv-0": {"queued: rolling update to version 1.1 (from 1.0)"},
			},
		},
		{
			name: "a stop-approved annotation without an operation is taken back",
			world: func() World {
				pods, claims := running(v1)
				pods[1] = makePod(v1, 1, "n2").annotate(appsv1alpha1.StopApprovedAnnotation, "x@2026-05-01T12:04:00Z").obj()
				return makeWorld(v1).pods(pods...).claims(claims...).World
			},
			want: map[string][]string{"kv-1": {"ClearApproval"}},
		},
		{
			name: "an unbound PVC (the pod never scheduled) needs no MOVE",
			world: func() World {
				claims := []corev1.PersistentVolumeClaim{makeClaim(0).unbound().obj()}
				return makeWorld(makeApp(1).obj()).claims(claims...).noNode("n1").World
			},
			want: map[string][]string{"kv-0": {"CreatePod 1.0"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := MakePlan(tc.world())
			if diff := cmp.Diff(tc.want, render(plan)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if plan.Recheck != tc.recheck {
				t.Errorf("recheck %v, want %v", plan.Recheck, tc.recheck)
			}
		})
	}
}

// TestMakePlanNeverStopsWithoutApproval: whatever the record's state short
// of an unexpired approval, no plan deletes a pod or lets it be evicted.
func TestMakePlanNeverStopsWithoutApproval(t *testing.T) {
	v1 := makeApp(3).obj()
	states := []appsv1alpha1.OperationState{appsv1alpha1.OperationRequested, appsv1alpha1.OperationDenied, appsv1alpha1.OperationRetryAfter}
	for _, kind := range []string{KindRestart, KindEvict, KindMove, KindRemove} {
		for _, state := range states {
			for _, deadline := range []time.Duration{time.Minute, -time.Minute} {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(kind, 2, state).deadline(deadline).obj()).obj()
				w := makeWorld(makeApp(2).version("1.1").obj()).pods(pods...).claims(claims...).node(cordoned(makeNode("n3"), "d1"))
				plan := MakePlan(w.World)
				for _, lines := range render(plan) {
					for _, l := range lines {
						if strings.HasPrefix(l, "StopPod") || strings.HasPrefix(l, "ApproveEviction") {
							t.Errorf("%s %s deadline %v: %s", kind, state, deadline, l)
						}
					}
				}
			}
		}
	}
}
