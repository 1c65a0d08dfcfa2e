package statefulapp

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// conds is the status and reason of Ready, Progressing and ShardManagerReachable.
type conds [3]string

func condsOf(st appsv1alpha1.StatefulAppStatus) conds {
	var c conds
	for i, t := range []string{appsv1alpha1.StatefulAppReadyCondition, appsv1alpha1.StatefulAppProgressingCondition, appsv1alpha1.ShardManagerReachableCondition} {
		if x := meta.FindStatusCondition(st.Conditions, t); x != nil {
			c[i] = string(x.Status) + " " + x.Reason
		}
	}
	return c
}

func TestStatus(t *testing.T) {
	v1 := makeApp(3).obj()
	v11 := makeApp(3).version("1.1").obj()
	unreachable := metav1.Condition{Type: appsv1alpha1.ShardManagerReachableCondition, Status: metav1.ConditionFalse,
		Reason: appsv1alpha1.ShardManagerUnreachableReason, Message: "before", LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))}
	notAsked := metav1.Condition{Type: appsv1alpha1.ShardManagerReachableCondition, Status: metav1.ConditionUnknown,
		Reason: appsv1alpha1.ShardManagerNotAskedReason, Message: "no operation has needed the shard manager yet", LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))}
	cases := []struct {
		name  string
		app   *appsv1alpha1.StatefulApp
		world func(app *appsv1alpha1.StatefulApp) World
		reach Reachability
		want  conds
		// counts are replicas, ready and updated.
		counts [3]int32
		// messages holds what the Progressing message must say.
		messages []string
		// ops are the pods' operations: pod -> state.
		ops map[string]appsv1alpha1.OperationState
	}{
		{
			name: "running as wanted: Ready, nothing in progress, the shard manager not asked yet",
			app:  v1,
			world: func(app *appsv1alpha1.StatefulApp) World {
				pods, claims := running(v1)
				return makeWorld(app).pods(pods...).claims(claims...).World
			},
			want:   conds{"True Available", "False RolledOut", "Unknown NotAsked"},
			counts: [3]int32{3, 3, 3},
		},
		{
			name: "new pods starting: not Ready yet, nothing to ask",
			app:  v1,
			world: func(app *appsv1alpha1.StatefulApp) World {
				pods, claims := running(v1)
				pods[0] = makePod(v1, 0, "n1").notReady().obj()
				return makeWorld(app).pods(pods...).claims(claims...).World
			},
			want:   conds{"False PodsNotReady", "False RolledOut", "Unknown NotAsked"},
			counts: [3]int32{3, 2, 3},
		},
		{
			name: "an update waiting for the shard manager: which pod waits on what, who is next",
			app:  v11,
			world: func(app *appsv1alpha1.StatefulApp) World {
				pods, claims := running(v1)
				r := makeRecord(KindRestart, 2, appsv1alpha1.OperationRetryAfter).obj()
				r.Message = "retry after 10s: moving the leaders of 4 shards"
				claims[2] = makeClaim(2).record(r).obj()
				return makeWorld(app).pods(pods...).claims(claims...).World
			},
			reach:  Reachability{Endpoint: "127.0.0.1:9000", Answered: true},
			want:   conds{"False WaitingForShardManager", "True WaitingForShardManager", "True Answered"},
			counts: [3]int32{3, 3, 0},
			messages: []string{"kv-2 Restart (because): retry after 10s: moving the leaders of 4 shards [RetryAfter]",
				"waiting for their turn (maxConcurrentOperations 1): kv-1 (rolling update to version 1.1 (from 1.0)); kv-0"},
			ops: map[string]appsv1alpha1.OperationState{"kv-2": appsv1alpha1.OperationRetryAfter},
		},
		{
			name: "an approved operation under way",
			app:  v11,
			world: func(app *appsv1alpha1.StatefulApp) World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationStopping).obj()).obj()
				return makeWorld(app).pods(pods[:2]...).claims(claims...).World
			},
			// Its approval was an answer, whatever the status said before.
			want:     conds{"False OperationsInProgress", "True OperationsInProgress", "True Answered"},
			counts:   [3]int32{2, 2, 0},
			messages: []string{"under way: kv-2 Restart (because): making the pod again on its data [WaitingForPod]"},
			ops:      map[string]appsv1alpha1.OperationState{"kv-2": appsv1alpha1.OperationWaitingForPod},
		},
		{
			name: "the shard manager unreachable: said so",
			app:  v11,
			world: func(app *appsv1alpha1.StatefulApp) World {
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationRequested).obj()).obj()
				return makeWorld(app).pods(pods...).claims(claims...).World
			},
			reach:  Reachability{Endpoint: "127.0.0.1:9000", Err: errors.New("Unavailable: connection refused")},
			want:   conds{"False WaitingForShardManager", "True WaitingForShardManager", "False ShardManagerUnreachable"},
			counts: [3]int32{3, 3, 0},
			ops:    map[string]appsv1alpha1.OperationState{"kv-2": appsv1alpha1.OperationRequested},
		},
		{
			name: "no call this pass: the last answer stands",
			app:  makeApp(3).version("1.1").obj(),
			world: func(app *appsv1alpha1.StatefulApp) World {
				app.Status.Conditions = []metav1.Condition{unreachable}
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationRequested).obj()).obj()
				return makeWorld(app).pods(pods...).claims(claims...).World
			},
			want:   conds{"False WaitingForShardManager", "True WaitingForShardManager", "False ShardManagerUnreachable"},
			counts: [3]int32{3, 3, 0},
			ops:    map[string]appsv1alpha1.OperationState{"kv-2": appsv1alpha1.OperationRequested},
		},
		{
			name: "an approval recorded, the status read from before it (a cache behind): Answered, not NotAsked",
			app:  v11,
			world: func(app *appsv1alpha1.StatefulApp) World {
				app.Status.Conditions = []metav1.Condition{notAsked}
				pods, claims := running(v1)
				claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationApproved).obj()).obj()
				return makeWorld(app).pods(pods...).claims(claims...).World
			},
			want:   conds{"False OperationsInProgress", "True OperationsInProgress", "True Answered"},
			counts: [3]int32{3, 3, 0},
			ops:    map[string]appsv1alpha1.OperationState{"kv-2": appsv1alpha1.OperationApproved},
		},
		{
			name: "unreachable, then an answer recorded after it: Answered",
			app:  v11,
			world: func(app *appsv1alpha1.StatefulApp) World {
				app.Status.Conditions = []metav1.Condition{unreachable}
				pods, claims := running(v1)
				r := makeRecord(KindRestart, 2, appsv1alpha1.OperationRetryAfter).obj()
				r.Since = unreachable.LastTransitionTime.Add(time.Second)
				claims[2] = makeClaim(2).record(r).obj()
				return makeWorld(app).pods(pods...).claims(claims...).World
			},
			want:   conds{"False WaitingForShardManager", "True WaitingForShardManager", "True Answered"},
			counts: [3]int32{3, 3, 0},
			ops:    map[string]appsv1alpha1.OperationState{"kv-2": appsv1alpha1.OperationRetryAfter},
		},
		{
			// Both times are whole seconds: an answer in the second the
			// condition turned False (a CA rotated at once) is an answer
			// since, or the condition would stay False with nothing left
			// to ask.
			name: "unreachable, then an answer recorded in the same second: Answered",
			app:  v11,
			world: func(app *appsv1alpha1.StatefulApp) World {
				app.Status.Conditions = []metav1.Condition{unreachable}
				pods, claims := running(v1)
				r := makeRecord(KindRestart, 2, appsv1alpha1.OperationApproved).obj()
				r.Since = unreachable.LastTransitionTime.Time
				claims[2] = makeClaim(2).record(r).obj()
				return makeWorld(app).pods(pods...).claims(claims...).World
			},
			want:   conds{"False OperationsInProgress", "True OperationsInProgress", "True Answered"},
			counts: [3]int32{3, 3, 0},
			ops:    map[string]appsv1alpha1.OperationState{"kv-2": appsv1alpha1.OperationApproved},
		},
		{
			name: "an answer recorded before the shard manager became unreachable: still unreachable",
			app:  v11,
			world: func(app *appsv1alpha1.StatefulApp) World {
				app.Status.Conditions = []metav1.Condition{unreachable}
				pods, claims := running(v1)
				r := makeRecord(KindRestart, 2, appsv1alpha1.OperationDenied).obj()
				r.Since = unreachable.LastTransitionTime.Add(-time.Second)
				claims[2] = makeClaim(2).record(r).obj()
				return makeWorld(app).pods(pods...).claims(claims...).World
			},
			want:   conds{"False WaitingForShardManager", "True WaitingForShardManager", "False ShardManagerUnreachable"},
			counts: [3]int32{3, 3, 0},
			ops:    map[string]appsv1alpha1.OperationState{"kv-2": appsv1alpha1.OperationDenied},
		},
		{
			name: "no AppPlatform: no pod can be made",
			app:  v1,
			world: func(app *appsv1alpha1.StatefulApp) World {
				return makeWorld(app).noPlatform().World
			},
			want: conds{"False PlatformNotFound", "False PlatformNotFound", "Unknown NotAsked"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := tc.app.DeepCopy()
			plan := MakePlan(tc.world(app))
			// What the pass did is what the plan said: Mark actions change the records.
			for _, pp := range plan.Pods {
				for _, a := range pp.Actions {
					if a.Type == Mark {
						pp.Record = a.Record
					}
				}
			}
			st := Status(app, plan, tc.reach, now)
			if diff := cmp.Diff(tc.want, condsOf(st)); diff != "" {
				t.Errorf("conditions (-want +got):\n%s\n%+v", diff, st.Conditions)
			}
			if got := [3]int32{st.Replicas, st.ReadyReplicas, st.UpdatedReplicas}; got != tc.counts {
				t.Errorf("replicas, ready, updated %v, want %v", got, tc.counts)
			}
			progressing := meta.FindStatusCondition(st.Conditions, appsv1alpha1.StatefulAppProgressingCondition)
			for _, m := range tc.messages {
				if !strings.Contains(progressing.Message, m) {
					t.Errorf("Progressing message %q does not say %q", progressing.Message, m)
				}
			}
			ops := map[string]appsv1alpha1.OperationState{}
			for _, p := range st.Pods {
				if p.Operation != nil {
					ops[p.Name] = p.Operation.State
				}
			}
			if tc.ops == nil {
				tc.ops = map[string]appsv1alpha1.OperationState{}
			}
			if diff := cmp.Diff(tc.ops, ops); diff != "" {
				t.Errorf("operations (-want +got):\n%s", diff)
			}
			for _, c := range st.Conditions {
				if c.ObservedGeneration != app.Generation {
					t.Errorf("condition %s of generation %d, want %d", c.Type, c.ObservedGeneration, app.Generation)
				}
			}
			if st.ObservedGeneration != app.Generation || st.Selector != appsv1alpha1.StatefulAppLabel+"=kv" {
				t.Errorf("observedGeneration %d, selector %q", st.ObservedGeneration, st.Selector)
			}
		})
	}
}

func TestStatusKeepsTransitionTimes(t *testing.T) {
	app := makeApp(3).obj()
	pods, claims := running(app)
	w := makeWorld(app).pods(pods...).claims(claims...).World
	first := Status(app, MakePlan(w), Reachability{}, now)
	app.Status = first
	second := Status(app, MakePlan(w), Reachability{}, now.Add(time.Hour))
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("a second pass over the same world changed the status (-first +second):\n%s", diff)
	}
}

// Each call that gets no answer rewrites ShardManagerReachable with its
// time, keeping the time it turned False; a pass without a call keeps the
// last: the condition shows that Strata keeps asking.
func TestStatusUnreachableSaysWhenLastAsked(t *testing.T) {
	app := makeApp(3).version("1.1").obj()
	pods, claims := running(app)
	claims[2] = makeClaim(2).record(makeRecord(KindRestart, 2, appsv1alpha1.OperationRequested).obj()).obj()
	w := makeWorld(app).pods(pods...).claims(claims...).World
	refused := Reachability{Endpoint: "127.0.0.1:9000", Err: errors.New("Unavailable: connection refused")}
	type pass struct {
		reach Reachability
		at    time.Duration
	}
	type got struct {
		Status         metav1.ConditionStatus
		Message        string
		TransitionedAt time.Duration
	}
	message := func(at time.Duration) string {
		return "no answer from the shard manager at 127.0.0.1:9000 when last asked, at " + now.Add(at).UTC().Format(time.RFC3339) +
			": Unavailable: connection refused; every operation on the app waits, no pod is stopped"
	}
	cases := []struct {
		name   string
		passes []pass
		want   []got
	}{
		{
			name:   "a call without an answer, then another: the message moves on, the transition stays",
			passes: []pass{{refused, 0}, {refused, 2 * time.Second}, {refused, 6 * time.Second}},
			want: []got{
				{metav1.ConditionFalse, message(0), 0},
				{metav1.ConditionFalse, message(2 * time.Second), 0},
				{metav1.ConditionFalse, message(6 * time.Second), 0},
			},
		},
		{
			name:   "no call the next pass: the last failed call stands",
			passes: []pass{{refused, 0}, {Reachability{Endpoint: "127.0.0.1:9000"}, 30 * time.Second}},
			want: []got{
				{metav1.ConditionFalse, message(0), 0},
				{metav1.ConditionFalse, message(0), 0},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := app.DeepCopy()
			var seen []got
			for _, p := range tc.passes {
				w.App = app
				app.Status = Status(app, MakePlan(w), p.reach, now.Add(p.at))
				c := meta.FindStatusCondition(app.Status.Conditions, appsv1alpha1.ShardManagerReachableCondition)
				seen = append(seen, got{c.Status, c.Message, c.LastTransitionTime.Sub(now)})
			}
			if diff := cmp.Diff(tc.want, seen); diff != "" {
				t.Errorf("ShardManagerReachable after each pass (-want +got):\n%s", diff)
			}
		})
	}
}
