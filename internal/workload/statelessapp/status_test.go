package statelessapp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// conds is the status and reason of Ready, Progressing and Degraded.
type conds [3]string

func condsOf(st appsv1alpha1.StatelessAppStatus) conds {
	var c conds
	for i, t := range []string{appsv1alpha1.StatelessAppReadyCondition, appsv1alpha1.StatelessAppProgressingCondition, appsv1alpha1.StatelessAppDegradedCondition} {
		if x := meta.FindStatusCondition(st.Conditions, t); x != nil {
			c[i] = string(x.Status) + " " + x.Reason
		}
	}
	return c
}

var (
	settled     = conds{"True Available", "False RolledOut", "False NoFailure"}
	rollingOut  = conds{"False ReplicasUnavailable", "True RollingOut", "False NoFailure"}
	appFailing  = conds{"False ReplicasUnavailable", "False RolledOut", "True App"}
	infraRising = conds{"False ReplicasUnavailable", "True RollingOut", "True Infra"}
)

// pods makes n Ready pods web-<prefix>-<i> on Nodes n1..n3, changed by f.
func pods(prefix string, n int, f func(*podWrapper) *podWrapper) []corev1.Pod {
	out := make([]corev1.Pod, 0, n)
	for i := range n {
		p := makePod(fmt.Sprintf("web-%s-%02d", prefix, i), fmt.Sprintf("n%d", i%3+1))
		if f != nil {
			p = f(p)
		}
		out = append(out, p.obj())
	}
	return out
}

func podNames(prefix string, n int) []string {
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, fmt.Sprintf("web-%s-%02d", prefix, i))
	}
	return out
}

func TestStatus(t *testing.T) {
	grace := Grace{Readiness: time.Minute, Creating: 3 * time.Minute}
	stable10 := func() *deployWrapper { return makeDeployment("web", "1.0", "c1", 10) }
	cases := []struct {
		name        string
		obs         Observation
		wantConds   conds
		wantFailure *appsv1alpha1.Failure
		// wantMessages are parts of the failure's (or else the Ready
		// condition's) message.
		wantMessages []string
		wantRecheck  time.Duration
		check        func(*testing.T, appsv1alpha1.StatelessAppStatus)
	}{
		{
			name: "every replica runs and is available",
			obs: Observation{App: makeApp(10).obj(), Stable: stable10().rolledOut().obj(),
				Pods: pods("a", 10, nil), NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds:    settled,
			wantMessages: []string{"10 of 10 replicas available (stable 1.0 config c1: 10 of 10)"},
			check: func(t *testing.T, st appsv1alpha1.StatelessAppStatus) {
				want := appsv1alpha1.TrackStatus{AppVersion: "1.0", ConfigVersion: "c1", Replicas: 10, UpdatedReplicas: 10, ReadyReplicas: 10}
				if diff := cmp.Diff(want, st.Stable); diff != "" {
					t.Errorf("stable (-want +got):\n%s", diff)
				}
				if st.Replicas != 10 || st.ReadyReplicas != 10 || st.Selector != "apps.strata.dev/stateless-app=web" || st.ObservedGeneration != 3 || st.Canary != nil {
					t.Errorf("status = %+v, want 10 replicas ready, the app's selector, generation 3, no canary", st)
				}
				for _, c := range st.Conditions {
					if c.ObservedGeneration != 3 || !c.LastTransitionTime.Time.Equal(now) {
						t.Errorf("condition %s observed generation %d at %v, want 3 at %v", c.Type, c.ObservedGeneration, c.LastTransitionTime, now)
					}
				}
			},
		},
		{
			name:      "no Deployment yet",
			obs:       Observation{App: makeApp(10).obj()},
			wantConds: rollingOut, wantMessages: []string{"0 of 10 replicas available"},
		},
		{
			name: "a scale-up the Deployment's controller has not seen",
			obs: Observation{App: makeApp(12).obj(), Stable: makeDeployment("web", "1.0", "c1", 12).rolledOut().unobserved().obj(),
				Pods: pods("a", 10, nil), NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds: rollingOut,
		},
		{
			name: "a cached Deployment of an older spec does not count as rolled out",
			obs: Observation{App: makeApp(10).version("1.1", "c1").obj(), Stable: stable10().rolledOut().obj(),
				Pods: pods("a", 10, nil), NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds: rollingOut,
			check: func(t *testing.T, st appsv1alpha1.StatelessAppStatus) {
				if st.Stable.UpdatedReplicas != 0 {
					t.Errorf("updated replicas = %d, want 0: none runs 1.1", st.Stable.UpdatedReplicas)
				}
			},
		},
		{
			name: "a rollout halfway, old pods still serving",
			obs: Observation{App: makeApp(10).obj(), Stable: stable10().counts(13, 5, 10, 10).progressing(corev1.ConditionTrue, "ReplicaSetUpdated", "").obj(),
				Pods: pods("a", 13, nil), NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds: rollingOut,
		},
		{
			name: "the rollout made no progress within the deadline",
			obs: Observation{App: makeApp(10).obj(),
				Stable: stable10().counts(11, 1, 10, 10).progressing(corev1.ConditionFalse, "ProgressDeadlineExceeded", `ReplicaSet "web-5d8" has timed out progressing.`).obj(),
				Pods:   pods("a", 10, nil), NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds:    conds{"False ProgressDeadlineExceeded", "False ProgressDeadlineExceeded", "False NoFailure"},
			wantMessages: []string{`deployment web made no progress for 600s: ReplicaSet "web-5d8" has timed out progressing.`},
		},
		{
			name: "three pods crash-loop after the rollout: App, naming them",
			obs: Observation{App: makeApp(10).obj(), Stable: stable10().rolledOut().counts(10, 10, 7, 7).obj(),
				Pods: append(pods("a", 7, nil), pods("b", 3, func(p *podWrapper) *podWrapper {
					return p.waiting(AppContainer, "CrashLoopBackOff", "back-off 5m0s restarting failed container=app")
				})...), NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds:    appFailing,
			wantFailure:  &appsv1alpha1.Failure{Category: "App", Reason: "CrashLoopBackOff", Pods: podNames("b", 3), FailingPods: 3},
			wantMessages: []string{"3 of 10 pods fail with CrashLoopBackOff; pod web-b-00: container app waits in CrashLoopBackOff: back-off 5m0s restarting failed container=app"},
		},
		{
			name: "twelve failing pods: ten are named, all counted",
			obs: Observation{App: makeApp(12).obj(), Stable: makeDeployment("web", "1.0", "c1", 12).rolledOut().counts(12, 12, 0, 0).obj(),
				Pods: pods("b", 12, func(p *podWrapper) *podWrapper {
					return p.waiting(AppContainer, "ImagePullBackOff", `Back-off pulling image "registry.test/apps/shop:1.0"`)
				}), NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds:   appFailing,
			wantFailure: &appsv1alpha1.Failure{Category: "App", Reason: "ImagePullBackOff", Pods: podNames("b", 10), FailingPods: 12},
		},
		{
			name: "out of memory, now in a crash loop: OOMKilled",
			obs: Observation{App: makeApp(3).obj(), Stable: makeDeployment("web", "1.0", "c1", 3).rolledOut().counts(3, 3, 2, 2).obj(),
				Pods: append(pods("a", 2, nil), pods("b", 1, func(p *podWrapper) *podWrapper {
					return p.waiting(AppContainer, "CrashLoopBackOff", "").oomKilled(AppContainer)
				})...), NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds:    appFailing,
			wantFailure:  &appsv1alpha1.Failure{Category: "App", Reason: "OOMKilled", Pods: []string{"web-b-00"}, FailingPods: 1},
			wantMessages: []string{"container app ran out of memory (OOMKilled, 5 restarts)"},
		},
		{
			name: "up again between out-of-memory kills: still OOMKilled",
			obs: Observation{App: makeApp(3).obj(), Stable: makeDeployment("web", "1.0", "c1", 3).rolledOut().counts(3, 3, 3, 3).obj(),
				Pods: append(pods("a", 2, nil), pods("b", 1, func(p *podWrapper) *podWrapper {
					return p.oomKilledAt(AppContainer, now.Add(-2*time.Minute))
				})...), NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds:   conds{"True Available", "False RolledOut", "True App"},
			wantFailure: &appsv1alpha1.Failure{Category: "App", Reason: "OOMKilled", Pods: []string{"web-b-00"}, FailingPods: 1},
		},
		{
			name: "an out-of-memory kill long ago is over",
			obs: Observation{App: makeApp(3).obj(), Stable: makeDeployment("web", "1.0", "c1", 3).rolledOut().counts(3, 3, 3, 3).obj(),
				Pods: append(pods("a", 2, nil), pods("b", 1, func(p *podWrapper) *podWrapper {
					return p.oomKilledAt(AppContainer, now.Add(-time.Hour))
				})...), NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds: conds{"True Available", "False RolledOut", "False NoFailure"},
		},
		{
			name: "an invalid image reference",
			obs: Observation{App: makeApp(1).obj(), Stable: makeDeployment("web", "1.0", "c1", 1).counts(1, 1, 0, 0).obj(),
				Pods: pods("b", 1, func(p *podWrapper) *podWrapper {
					return p.waiting(AppContainer, "InvalidImageName", "couldn't parse image name")
				}), NodeReady: readyNodes("n1")},
			wantConds:   conds{"False ReplicasUnavailable", "True RollingOut", "True App"},
			wantFailure: &appsv1alpha1.Failure{Category: "App", Reason: "InvalidImageName", Pods: []string{"web-b-00"}, FailingPods: 1},
		},
		{
			name: "not ready within the grace: not judged yet, judged again when it runs out",
			obs: Observation{App: makeApp(2).obj(), Stable: makeDeployment("web", "1.0", "c1", 2).counts(2, 2, 1, 1).obj(),
				Pods: append(pods("a", 1, nil), pods("b", 1, func(p *podWrapper) *podWrapper {
					return p.notReadySince(AppContainer, now.Add(-20*time.Second))
				})...), NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds:   rollingOut,
			wantRecheck: 40 * time.Second,
		},
		{
			name: "not ready past the grace: the readiness probe fails",
			obs: Observation{App: makeApp(2).obj(), Stable: makeDeployment("web", "1.0", "c1", 2).counts(2, 2, 1, 1).obj(),
				Pods: append(pods("a", 1, nil), pods("b", 1, func(p *podWrapper) *podWrapper {
					return p.notReadySince(AppContainer, now.Add(-90*time.Second))
				})...), NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds:    conds{"False ReplicasUnavailable", "True RollingOut", "True App"},
			wantFailure:  &appsv1alpha1.Failure{Category: "App", Reason: "ReadinessProbeFailing", Pods: []string{"web-b-00"}, FailingPods: 1},
			wantMessages: []string{"container app has been running for 1m30s without passing its readiness probe"},
		},
		{
			name: "more replicas than capacity: Infra, with the scheduler's message",
			obs: Observation{App: makeApp(12).obj(), Stable: makeDeployment("web", "1.0", "c1", 12).counts(12, 12, 10, 10).progressing(corev1.ConditionTrue, "ReplicaSetUpdated", "").obj(),
				Pods: append(pods("a", 10, nil), pods("p", 2, func(p *podWrapper) *podWrapper {
					return p.unschedulable("0/40 nodes are available: 40 Insufficient cpu.")
				})...), NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds:    infraRising,
			wantFailure:  &appsv1alpha1.Failure{Category: "Infra", Reason: "Unschedulable", Pods: podNames("p", 2), FailingPods: 2},
			wantMessages: []string{"2 of 12 pods fail with Unschedulable; pod web-p-00: 0/40 nodes are available: 40 Insufficient cpu."},
		},
		{
			name: "the most common failure wins, the others are mentioned",
			obs: Observation{App: makeApp(10).obj(), Stable: stable10().counts(10, 10, 5, 5).obj(),
				Pods: append(append(pods("a", 5, nil),
					pods("c", 2, func(p *podWrapper) *podWrapper { return p.waiting(AppContainer, "CrashLoopBackOff", "") })...),
					pods("p", 3, func(p *podWrapper) *podWrapper { return p.unschedulable("0/3 nodes are available") })...),
				NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds:    infraRising,
			wantFailure:  &appsv1alpha1.Failure{Category: "Infra", Reason: "Unschedulable", Pods: podNames("p", 3), FailingPods: 3},
			wantMessages: []string{"Also failing: 2 CrashLoopBackOff (App)"},
		},
		{
			name: "pods on a NotReady Node and on one that is gone: NodeLost",
			obs: Observation{App: makeApp(3).obj(), Stable: makeDeployment("web", "1.0", "c1", 3).rolledOut().counts(3, 3, 1, 1).obj(),
				Pods: pods("a", 3, nil), NodeReady: map[string]bool{"n1": true, "n2": false}},
			wantConds:    conds{"False ReplicasUnavailable", "False RolledOut", "True Infra"},
			wantFailure:  &appsv1alpha1.Failure{Category: "Infra", Reason: "NodeLost", Pods: []string{"web-a-01", "web-a-02"}, FailingPods: 2},
			wantMessages: []string{"pod web-a-01: its Node n2 is not Ready"},
		},
		{
			name: "Nodes not judged",
			obs: Observation{App: makeApp(3).obj(), Stable: makeDeployment("web", "1.0", "c1", 3).rolledOut().obj(),
				Pods: pods("a", 3, nil)},
			wantConds: settled,
		},
		{
			name: "the namespace's quota is used up: Infra QuotaExceeded from the Deployment",
			obs: Observation{App: makeApp(10).obj(),
				Stable: stable10().counts(6, 6, 6, 6).replicaFailure(`pods "web-5d8-x" is forbidden: exceeded quota: strata-quota, requested: requests.cpu=500m, used: requests.cpu=3, limited: requests.cpu=3`).obj(),
				Pods:   pods("a", 6, nil), NodeReady: readyNodes("n1", "n2", "n3")},
			wantConds:    infraRising,
			wantFailure:  &appsv1alpha1.Failure{Category: "Infra", Reason: "QuotaExceeded", FailingPods: 4},
			wantMessages: []string{"deployment web cannot create 4 pods: pods \"web-5d8-x\" is forbidden: exceeded quota: strata-quota"},
		},
		{
			name: "a platform sidecar cannot pull its image: Infra",
			obs: Observation{App: makeApp(1).obj(), Stable: makeDeployment("web", "1.0", "c1", 1).counts(1, 1, 0, 0).obj(),
				Pods: pods("b", 1, func(p *podWrapper) *podWrapper {
					return p.waiting("log-shipper", "ImagePullBackOff", "")
				}), NodeReady: readyNodes("n1")},
			wantConds:    infraRising,
			wantFailure:  &appsv1alpha1.Failure{Category: "Infra", Reason: "ImagePullBackOff", Pods: []string{"web-b-00"}, FailingPods: 1},
			wantMessages: []string{"platform container log-shipper waits in ImagePullBackOff"},
		},
		{
			name: "containers created for too long: volumes or network",
			obs: Observation{App: makeApp(2).obj(), Stable: makeDeployment("web", "1.0", "c1", 2).counts(2, 2, 0, 0).obj(),
				Pods: []corev1.Pod{
					makePod("web-x", "n1").creating(now.Add(-4 * time.Minute)).obj(),
					makePod("web-y", "n2").creating(now.Add(-time.Minute)).obj(),
				}, NodeReady: readyNodes("n1", "n2")},
			wantConds:    infraRising,
			wantFailure:  &appsv1alpha1.Failure{Category: "Infra", Reason: "ContainerCreatingTooLong", Pods: []string{"web-x"}, FailingPods: 1},
			wantMessages: []string{"its containers are still being created on Node n1 after 4m0s"},
			wantRecheck:  2 * time.Minute,
		},
		{
			name: "terminating pods are not judged",
			obs: Observation{App: makeApp(1).obj(), Stable: makeDeployment("web", "1.0", "c1", 1).rolledOut().counts(2, 1, 1, 1).obj(),
				Pods: append(pods("a", 1, nil), pods("b", 1, func(p *podWrapper) *podWrapper {
					return p.waiting(AppContainer, "CrashLoopBackOff", "").terminating()
				})...), NodeReady: readyNodes("n1", "n2")},
			wantConds: rollingOut,
		},
		{
			name: "no AppPlatform: nothing rolls out, pods still judged",
			obs: Observation{App: makeApp(3).obj(), Blocked: &Blocker{Reason: appsv1alpha1.PlatformNotFoundReason, Message: "no AppPlatform"},
				Pods: pods("b", 1, func(p *podWrapper) *podWrapper { return p.waiting(AppContainer, "CrashLoopBackOff", "") }), NodeReady: readyNodes("n1")},
			wantConds:   conds{"False PlatformNotFound", "False PlatformNotFound", "True App"},
			wantFailure: &appsv1alpha1.Failure{Category: "App", Reason: "CrashLoopBackOff", Pods: []string{"web-b-00"}, FailingPods: 1},
		},
		{
			name: "a canary beside the stable track, both rolled out",
			obs: Observation{App: makeApp(30).canary("1.1", "", 10).obj(),
				Stable: makeDeployment("web", "1.0", "c1", 27).rolledOut().obj(),
				Canary: makeDeployment("web-canary", "1.1", "c1", 3).rolledOut().obj()},
			wantConds:    settled,
			wantMessages: []string{"30 of 30 replicas available (stable 1.0 config c1: 27 of 27, canary 1.1 config c1: 3 of 3)"},
			check: func(t *testing.T, st appsv1alpha1.StatelessAppStatus) {
				want := &appsv1alpha1.TrackStatus{AppVersion: "1.1", ConfigVersion: "c1", Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3}
				if diff := cmp.Diff(want, st.Canary); diff != "" {
					t.Errorf("canary (-want +got):\n%s", diff)
				}
				if st.Replicas != 30 || st.ReadyReplicas != 30 {
					t.Errorf("replicas %d ready %d, want 30 and 30", st.Replicas, st.ReadyReplicas)
				}
			},
		},
		{
			name: "a canary not created yet",
			obs: Observation{App: makeApp(30).canary("1.1", "", 10).obj(),
				Stable: makeDeployment("web", "1.0", "c1", 27).rolledOut().obj()},
			wantConds: rollingOut,
		},
		{
			name: "promoted, the stable track rolled out, the canary not yet removed",
			obs: Observation{App: makeApp(30).version("1.1", "c1").canary("1.1", "", 10).obj(),
				Stable: makeDeployment("web", "1.1", "c1", 30).rolledOut().obj(),
				Canary: makeDeployment("web-canary", "1.1", "c1", 3).rolledOut().obj()},
			wantConds:    rollingOut,
			wantMessages: []string{"the promoted canary is removed once the stable track has rolled out"},
			check: func(t *testing.T, st appsv1alpha1.StatelessAppStatus) {
				if st.Canary != nil || st.Replicas != 33 {
					t.Errorf("canary track %+v, %d replicas: want none and 33 pods", st.Canary, st.Replicas)
				}
			},
		},
		{
			name: "conditions that hold keep their transition time",
			obs: Observation{App: makeApp(10).condition(metav1.Condition{
				Type: appsv1alpha1.StatelessAppReadyCondition, Status: metav1.ConditionTrue, Reason: appsv1alpha1.AvailableReason,
				ObservedGeneration: 2, LastTransitionTime: metav1.NewTime(now.Add(-time.Hour)),
			}).obj(), Stable: stable10().rolledOut().obj()},
			wantConds: settled,
			check: func(t *testing.T, st appsv1alpha1.StatelessAppStatus) {
				c := meta.FindStatusCondition(st.Conditions, appsv1alpha1.StatelessAppReadyCondition)
				if !c.LastTransitionTime.Time.Equal(now.Add(-time.Hour)) || c.ObservedGeneration != 3 {
					t.Errorf("Ready since %v observed %d, want since an hour ago, generation 3", c.LastTransitionTime, c.ObservedGeneration)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.obs.Now, tc.obs.Grace = now, grace
			st, recheck := Status(tc.obs)
			if diff := cmp.Diff(tc.wantConds, condsOf(st)); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantFailure, st.Failure, cmpopts.IgnoreFields(appsv1alpha1.Failure{}, "Message")); diff != "" {
				t.Errorf("failure (-want +got):\n%s", diff)
			}
			msg := meta.FindStatusCondition(st.Conditions, appsv1alpha1.StatelessAppReadyCondition).Message
			if st.Failure != nil {
				msg = st.Failure.Message
				if d := meta.FindStatusCondition(st.Conditions, appsv1alpha1.StatelessAppDegradedCondition); d.Message != msg {
					t.Errorf("Degraded says %q, want the failure's message %q", d.Message, msg)
				}
			}
			for _, m := range tc.wantMessages {
				if !strings.Contains(msg, m) {
					t.Errorf("message %q does not say %q", msg, m)
				}
			}
			if recheck != tc.wantRecheck {
				t.Errorf("recheck after %v, want %v", recheck, tc.wantRecheck)
			}
			if tc.check != nil {
				tc.check(t, st)
			}
		})
	}
}

func TestRequeue(t *testing.T) {
	ready := Observation{App: makeApp(1).obj(), Stable: makeDeployment("web", "1.0", "c1", 1).rolledOut().obj(), Now: now}
	rolling := Observation{App: makeApp(1).obj(), Now: now}
	cases := []struct {
		name    string
		obs     Observation
		recheck time.Duration
		want    time.Duration
	}{
		{name: "settled: only events wake it", obs: ready},
		{name: "rolling out: now and then", obs: rolling, want: unsettledInterval},
		{name: "a grace runs out soon", obs: rolling, recheck: 5 * time.Second, want: 6 * time.Second},
		{name: "a grace runs out late", obs: ready, recheck: time.Hour, want: unsettledInterval},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := Status(tc.obs)
			if got := requeue(st, tc.recheck).RequeueAfter; got != tc.want {
				t.Errorf("requeue after %v, want %v", got, tc.want)
			}
		})
	}
}
