package fleetapp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

func TestDivide(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas int32
		clusters []string
		weights  map[string]int32
		want     map[string]int32
		err      string
	}{
		{name: "even, the remainder to the first names", replicas: 10, clusters: []string{"c", "a", "b"}, want: map[string]int32{"a": 4, "b": 3, "c": 3}},
		{name: "by weight", replicas: 8, clusters: []string{"a", "b", "c"}, weights: map[string]int32{"a": 2}, want: map[string]int32{"a": 4, "b": 2, "c": 2}},
		{name: "a cluster with a weight gets one at least", replicas: 3, clusters: []string{"a", "b", "c"}, weights: map[string]int32{"a": 100}, want: map[string]int32{"a": 1, "b": 1, "c": 1}},
		{name: "fewer replicas than clusters", replicas: 2, clusters: []string{"a", "b", "c"}, want: map[string]int32{"a": 1, "b": 1, "c": 0}},
		{name: "weight 0 is told to have none", replicas: 6, clusters: []string{"a", "b", "c"}, weights: map[string]int32{"c": 0}, want: map[string]int32{"a": 3, "b": 3, "c": 0}},
		{name: "no clusters", replicas: 6, want: map[string]int32{}},
		{name: "weights summing to zero", replicas: 6, clusters: []string{"a", "b"}, weights: map[string]int32{"a": 0, "b": 0}, err: "a weight of 0 in all"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := divide(tc.replicas, tc.clusters, tc.weights)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("shares (-want +got):\n%s", diff)
			}
			var sum int32
			for _, n := range got {
				sum += n
			}
			if len(tc.clusters) > 0 && sum != tc.replicas {
				t.Errorf("shares sum to %d, want %d", sum, tc.replicas)
			}
		})
	}
}

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// hubApp is a hub app of replicas at appVersion, released everywhere at
// released (nil: never seen).
func hubApp(replicas int32, appVersion string, rel *appsv1alpha1.ReleaseStatus) *appsv1alpha1.StatelessApp {
	return &appsv1alpha1.StatelessApp{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Generation: 2},
		Spec: appsv1alpha1.StatelessAppSpec{
			Application: "web", AppVersion: appVersion, Replicas: replicas,
			Resources: appsv1alpha1.Resources{CPU: resource.MustParse("100m"), Memory: resource.MustParse("128Mi")},
			Fleet:     &appsv1alpha1.Fleet{Release: appsv1alpha1.Release{ClustersPerWave: 1, SoakSeconds: 60}},
		},
		Status: appsv1alpha1.StatelessAppStatus{Release: rel},
	}
}

func released(v string, clusters ...string) *appsv1alpha1.ReleaseStatus {
	return &appsv1alpha1.ReleaseStatus{AppVersion: v, PreviousAppVersion: v, Phase: PhaseReleased, Released: clusters}
}

// cluster is a cluster whose app (from hub, at v) has replicas, ready of them.
func cluster(name, state string, hub *appsv1alpha1.StatelessApp, v string, replicas, ready int32) clusterView {
	c := clusterView{Name: name, State: state}
	if replicas < 0 {
		return c
	}
	a := &appsv1alpha1.StatelessApp{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Generation: 1},
		Spec:       clusterSpec(hub, replicas, version{app: v}),
		Status: appsv1alpha1.StatelessAppStatus{
			ObservedGeneration: 1, Replicas: replicas, ReadyReplicas: ready,
			Stable: appsv1alpha1.TrackStatus{AppVersion: v, Replicas: replicas, UpdatedReplicas: replicas, ReadyReplicas: ready},
		},
	}
	status := metav1.ConditionFalse
	if ready >= replicas {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{Type: appsv1alpha1.StatelessAppReadyCondition, Status: status, Reason: "x"})
	c.App = a
	return c
}

func failing(c clusterView, category appsv1alpha1.FailureCategory, reason string) clusterView {
	c.App.Status.Failure = &appsv1alpha1.Failure{Category: category, Reason: reason, Message: reason + " in 3 pods"}
	return c
}

func writes(p plan) map[string]string {
	out := map[string]string{}
	for c, w := range p.Writes {
		out[c] = fmt.Sprintf("%sx%02d", w.Version.app, w.Replicas)
	}
	return out
}

func condition(p plan, t string) *metav1.Condition {
	return meta.FindStatusCondition(p.Status.Conditions, t)
}

func TestStepPlacement(t *testing.T) {
	for _, tc := range []struct {
		name       string
		app        *appsv1alpha1.StatelessApp
		clusters   func(*appsv1alpha1.StatelessApp) []clusterView
		want       map[string]string
		readyWhy   string
		wantStates []string
	}{{
		name: "a new app goes to every cluster at once",
		app:  hubApp(12, "v1", nil),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "", -1, 0), cluster("b", Active, a, "", -1, 0), cluster("c", Active, a, "", -1, 0)}
		},
		want: map[string]string{"a": "v1x04", "b": "v1x04", "c": "v1x04"}, readyWhy: appsv1alpha1.ReplicasUnavailableReason,
	}, {
		name: "steady: nothing to write",
		app:  hubApp(12, "v1", released("v1", "a", "b", "c")),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v1", 4, 4), cluster("b", Active, a, "v1", 4, 4), cluster("c", Active, a, "v1", 4, 4)}
		},
		want: map[string]string{}, readyWhy: appsv1alpha1.AvailableReason,
	}, {
		name: "cordoned: up elsewhere first, the cordoned one untouched",
		app:  hubApp(12, "v1", released("v1", "a", "b", "c")),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v1", 4, 4), cluster("b", Active, a, "v1", 4, 4), cluster("c", Cordoned, a, "v1", 4, 4)}
		},
		want: map[string]string{"a": "v1x06", "b": "v1x06"}, readyWhy: appsv1alpha1.MovingReason,
	}, {
		name: "cordoned: down by the surplus once the others are Ready, half at most",
		app:  hubApp(12, "v1", released("v1", "a", "b", "c")),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v1", 6, 6), cluster("b", Active, a, "v1", 6, 5), cluster("c", Cordoned, a, "v1", 4, 4)}
		},
		want: map[string]string{"c": "v1x02"}, readyWhy: appsv1alpha1.MovingReason,
	}, {
		name: "cordoned: no surplus while the others are not Ready",
		app:  hubApp(12, "v1", released("v1", "a", "b", "c")),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v1", 6, 4), cluster("b", Active, a, "v1", 6, 4), cluster("c", Cordoned, a, "v1", 4, 4)}
		},
		want: map[string]string{}, readyWhy: appsv1alpha1.MovingReason,
	}, {
		name: "cordoned: not cut again before its status shows the last cut",
		app:  hubApp(12, "v1", released("v1", "a", "b", "c")),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			c := cluster("c", Cordoned, a, "v1", 2, 4) // cut from 4 to 2; its status still counts 4
			c.App.Generation, c.App.Status.Replicas = 2, 4
			return []clusterView{cluster("a", Active, a, "v1", 6, 6), cluster("b", Active, a, "v1", 6, 6), c}
		},
		want: map[string]string{}, readyWhy: appsv1alpha1.MovingReason,
	}, {
		name: "a cluster counts no more Ready replicas than it is asked for",
		app:  hubApp(12, "v1", released("v1", "a", "b", "c")),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			c := cluster("c", Cordoned, a, "v1", 2, 4) // settled at 2, with 4 Ready still counted
			c.App.Status.Replicas = 2
			return []clusterView{cluster("a", Active, a, "v1", 6, 5), cluster("b", Active, a, "v1", 6, 5), c}
		},
		want: map[string]string{}, readyWhy: appsv1alpha1.MovingReason,
	}, {
		name: "unreachable: its share elsewhere, nothing written there",
		app:  hubApp(12, "v1", released("v1", "a", "b", "c")),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v1", 4, 4), cluster("b", Active, a, "v1", 4, 4), {Name: "c", State: Unreachable, Why: "probe failed"}}
		},
		want: map[string]string{"a": "v1x06", "b": "v1x06"}, readyWhy: appsv1alpha1.MovingReason,
	}, {
		name: "back: the others give back what its Ready replicas cover",
		app:  hubApp(12, "v1", released("v1", "a", "b", "c")),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v1", 6, 6), cluster("b", Active, a, "v1", 6, 6), cluster("c", Active, a, "v1", 4, 2)}
		},
		want: map[string]string{"a": "v1x04"}, readyWhy: appsv1alpha1.MovingReason,
	}, {
		name: "back moments ago: its replicas do not count yet",
		app:  hubApp(12, "v1", released("v1", "a", "b", "c")),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			c := cluster("c", Active, a, "v1", 4, 4)
			c.Returning = true
			return []clusterView{cluster("a", Active, a, "v1", 6, 6), cluster("b", Active, a, "v1", 6, 6), c}
		},
		want: map[string]string{}, readyWhy: appsv1alpha1.MovingReason,
	}, {
		name: "fewer replicas: down by the surplus, half of a cluster at most",
		app:  hubApp(6, "v1", released("v1", "a", "b", "c")),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v1", 4, 4), cluster("b", Active, a, "v1", 4, 4), cluster("c", Active, a, "v1", 4, 4)}
		},
		want: map[string]string{"a": "v1x02", "b": "v1x02", "c": "v1x02"}, readyWhy: appsv1alpha1.MovingReason,
	}, {
		name: "weights summing to zero change nothing",
		app: func() *appsv1alpha1.StatelessApp {
			a := hubApp(12, "v1", released("v1", "a", "b"))
			a.Spec.Fleet.Weights = map[string]int32{"a": 0, "b": 0}
			return a
		}(),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v1", 6, 6), cluster("b", Active, a, "v1", 6, 6)}
		},
		want: map[string]string{}, readyWhy: appsv1alpha1.InvalidWeightsReason,
	}, {
		name: "no cluster to run on",
		app:  hubApp(12, "v1", released("v1", "a")),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{{Name: "a", State: Unreachable, Why: "probe failed"}}
		},
		want: map[string]string{}, readyWhy: appsv1alpha1.NoClustersReason,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := step(tc.app, tc.clusters(tc.app), now)
			if diff := cmp.Diff(tc.want, writes(p)); diff != "" {
				t.Errorf("writes (-want +got):\n%s", diff)
			}
			if c := condition(p, appsv1alpha1.StatelessAppReadyCondition); c == nil || c.Reason != tc.readyWhy {
				t.Errorf("Ready = %+v, want reason %s", c, tc.readyWhy)
			}
		})
	}
}

func TestStepRelease(t *testing.T) {
	soaked := metav1.NewTime(now.Add(-61 * time.Second))
	soaking := metav1.NewTime(now.Add(-10 * time.Second))
	soakedToTheSecond := metav1.NewTime(now.Add(-60 * time.Second))
	for _, tc := range []struct {
		name      string
		app       *appsv1alpha1.StatelessApp
		clusters  func(*appsv1alpha1.StatelessApp) []clusterView
		want      map[string]string
		phase     string
		message   string
		released  []string
		requeueLE time.Duration
	}{{
		name: "a new version goes to the canary cluster first",
		app:  hubApp(12, "v2", released("v1", "a", "b", "c")),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v1", 4, 4), cluster("b", Active, a, "v1", 4, 4), cluster("c", Active, a, "v1", 4, 4)}
		},
		want: map[string]string{"a": "v2x04"}, phase: PhaseReleasing, message: "wave 1: v2 rolls out to a", released: []string{"a"},
	}, {
		name: "a version back after a complete release is a release like any other, in waves",
		app:  hubApp(12, "v1", released("v2", "a", "b", "c")),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v2", 4, 4), cluster("b", Active, a, "v2", 4, 4), cluster("c", Active, a, "v2", 4, 4)}
		},
		want: map[string]string{"a": "v1x04"}, phase: PhaseReleasing, message: "wave 1: v1 rolls out to a", released: []string{"a"},
	}, {
		name: "the canary cluster named",
		app: func() *appsv1alpha1.StatelessApp {
			a := hubApp(12, "v2", released("v1", "a", "b", "c"))
			a.Spec.Fleet.Release.CanaryCluster = "b"
			return a
		}(),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v1", 4, 4), cluster("b", Active, a, "v1", 4, 4), cluster("c", Active, a, "v1", 4, 4)}
		},
		want: map[string]string{"b": "v2x04"}, phase: PhaseReleasing, released: []string{"b"},
	}, {
		name: "a wave soaks before the next",
		app: hubApp(12, "v2", &appsv1alpha1.ReleaseStatus{AppVersion: "v2", PreviousAppVersion: "v1", Phase: PhaseReleasing, Wave: 1,
			Released: []string{"a"}, WaveReadySince: &soaking}),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v2", 4, 4), cluster("b", Active, a, "v1", 4, 4), cluster("c", Active, a, "v1", 4, 4)}
		},
		want: map[string]string{}, phase: PhaseReleasing, message: "wave 1 soaks", released: []string{"a"}, requeueLE: 51 * time.Second,
	}, {
		name: "Ready for its soak by the second-cut timestamp: a second more, never less",
		app: hubApp(12, "v2", &appsv1alpha1.ReleaseStatus{AppVersion: "v2", PreviousAppVersion: "v1", Phase: PhaseReleasing, Wave: 1,
			Released: []string{"a"}, WaveReadySince: &soakedToTheSecond}),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v2", 4, 4), cluster("b", Active, a, "v1", 4, 4), cluster("c", Active, a, "v1", 4, 4)}
		},
		want: map[string]string{}, phase: PhaseReleasing, message: "wave 1 soaks", released: []string{"a"}, requeueLE: 2 * time.Second,
	}, {
		name: "soaked: the next wave",
		app: hubApp(12, "v2", &appsv1alpha1.ReleaseStatus{AppVersion: "v2", PreviousAppVersion: "v1", Phase: PhaseReleasing, Wave: 1,
			Released: []string{"a"}, WaveReadySince: &soaked}),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v2", 4, 4), cluster("b", Active, a, "v1", 4, 4), cluster("c", Active, a, "v1", 4, 4)}
		},
		want: map[string]string{"b": "v2x04"}, phase: PhaseReleasing, message: "wave 2", released: []string{"a", "b"},
	}, {
		name: "a cluster that left is skipped, the release goes on",
		app: hubApp(12, "v2", &appsv1alpha1.ReleaseStatus{AppVersion: "v2", PreviousAppVersion: "v1", Phase: PhaseReleasing, Wave: 1,
			Released: []string{"a"}, WaveReadySince: &soaked}),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v2", 6, 6), {Name: "b", State: Unreachable, Why: "gone"}, cluster("c", Active, a, "v1", 6, 6)}
		},
		want: map[string]string{"c": "v2x06"}, phase: PhaseReleasing, released: []string{"a", "c"},
	}, {
		name: "the last wave soaked: released",
		app: hubApp(12, "v2", &appsv1alpha1.ReleaseStatus{AppVersion: "v2", PreviousAppVersion: "v1", Phase: PhaseReleasing, Wave: 3,
			Released: []string{"a", "b", "c"}, WaveReadySince: &soaked}),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v2", 4, 4), cluster("b", Active, a, "v2", 4, 4), cluster("c", Active, a, "v2", 4, 4)}
		},
		want: map[string]string{}, phase: PhaseReleased, message: "v2 released to a, b, c in 3 waves", released: []string{"a", "b", "c"},
	}, {
		name: "an App failure in a released cluster pauses, naming it",
		app: hubApp(12, "v2", &appsv1alpha1.ReleaseStatus{AppVersion: "v2", PreviousAppVersion: "v1", Phase: PhaseReleasing, Wave: 1,
			Released: []string{"a"}}),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{failing(cluster("a", Active, a, "v2", 4, 1), appsv1alpha1.AppFailure, "CrashLoopBackOff"),
				cluster("b", Active, a, "v1", 4, 4), cluster("c", Active, a, "v1", 4, 4)}
		},
		want: map[string]string{}, phase: PhasePaused, message: "App failure in cluster a: CrashLoopBackOff", released: []string{"a"},
	}, {
		name: "paused on an App failure stays paused though the failure is gone",
		app: hubApp(12, "v2", &appsv1alpha1.ReleaseStatus{AppVersion: "v2", PreviousAppVersion: "v1", Phase: PhasePaused, Wave: 1,
			Released: []string{"a"}, FailedCluster: "a", Message: "paused at wave 1: App failure in cluster a: CrashLoopBackOff"}),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v2", 4, 4), cluster("b", Active, a, "v1", 4, 4), cluster("c", Active, a, "v1", 4, 4)}
		},
		want: map[string]string{}, phase: PhasePaused, released: []string{"a"},
	}, {
		name: "resumed past the failure",
		app: func() *appsv1alpha1.StatelessApp {
			a := hubApp(12, "v2", &appsv1alpha1.ReleaseStatus{AppVersion: "v2", PreviousAppVersion: "v1", Phase: PhasePaused, Wave: 1,
				Released: []string{"a"}, FailedCluster: "a", Message: "paused at wave 1: App failure in cluster a: CrashLoopBackOff"})
			a.Spec.Fleet.Release.ResumeVersion = "v2"
			a.Spec.Fleet.Release.SoakSeconds = 0
			return a
		}(),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{failing(cluster("a", Active, a, "v2", 4, 1), appsv1alpha1.AppFailure, "CrashLoopBackOff"),
				cluster("b", Active, a, "v1", 4, 4), cluster("c", Active, a, "v1", 4, 4)}
		},
		want: map[string]string{}, phase: PhaseReleasing, message: "wave 1: v2 rolls out to a", released: []string{"a"},
	}, {
		name: "a new version while paused is blocked",
		app: hubApp(12, "v3", &appsv1alpha1.ReleaseStatus{AppVersion: "v2", PreviousAppVersion: "v1", Phase: PhasePaused, Wave: 1,
			Released: []string{"a"}, FailedCluster: "a", Message: "paused at wave 1: App failure in cluster a: CrashLoopBackOff"}),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v2", 4, 1), cluster("b", Active, a, "v1", 4, 4), cluster("c", Active, a, "v1", 4, 4)}
		},
		want: map[string]string{}, phase: PhaseBlocked, message: "v3 is not released: the release of v2 is paused (App failure in cluster a", released: []string{"a"},
	}, {
		name: "a rollback of a paused release goes everywhere at once",
		app: hubApp(12, "v1", &appsv1alpha1.ReleaseStatus{AppVersion: "v2", PreviousAppVersion: "v1", Phase: PhasePaused, Wave: 1,
			Released: []string{"a"}, FailedCluster: "a"}),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v2", 4, 1), cluster("b", Active, a, "v1", 4, 4), cluster("c", Active, a, "v1", 4, 4)}
		},
		want: map[string]string{"a": "v1x04"}, phase: PhaseReleased, message: "rolled back from v2 to v1", released: []string{"a", "b", "c"},
	}, {
		name: "an Infra failure waits",
		app: hubApp(12, "v2", &appsv1alpha1.ReleaseStatus{AppVersion: "v2", PreviousAppVersion: "v1", Phase: PhaseReleasing, Wave: 1,
			Released: []string{"a"}}),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{failing(cluster("a", Active, a, "v2", 4, 2), appsv1alpha1.InfraFailure, "Unschedulable"),
				cluster("b", Active, a, "v1", 4, 4), cluster("c", Active, a, "v1", 4, 4)}
		},
		want: map[string]string{}, phase: PhaseWaiting, message: "Infra failure in cluster a: Unschedulable", released: []string{"a"},
	}, {
		name: "paused by the owner before the next wave",
		app: func() *appsv1alpha1.StatelessApp {
			a := hubApp(12, "v2", &appsv1alpha1.ReleaseStatus{AppVersion: "v2", PreviousAppVersion: "v1", Phase: PhaseReleasing, Wave: 1,
				Released: []string{"a"}, WaveReadySince: &soaked})
			a.Spec.Fleet.Release.Paused = true
			return a
		}(),
		clusters: func(a *appsv1alpha1.StatelessApp) []clusterView {
			return []clusterView{cluster("a", Active, a, "v2", 4, 4), cluster("b", Active, a, "v1", 4, 4), cluster("c", Active, a, "v1", 4, 4)}
		},
		want: map[string]string{}, phase: PhasePaused, message: "paused by spec.fleet.release.paused before wave 2", released: []string{"a"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := step(tc.app, tc.clusters(tc.app), now)
			if diff := cmp.Diff(tc.want, writes(p)); diff != "" {
				t.Errorf("writes (-want +got):\n%s", diff)
			}
			rel := p.Status.Release
			if rel.Phase != tc.phase || !strings.Contains(rel.Message, tc.message) {
				t.Errorf("release phase %s message %q, want %s containing %q", rel.Phase, rel.Message, tc.phase, tc.message)
			}
			if diff := cmp.Diff(tc.released, rel.Released); diff != "" {
				t.Errorf("released (-want +got):\n%s", diff)
			}
			if tc.requeueLE > 0 && p.Requeue > tc.requeueLE {
				t.Errorf("requeue after %s, want at most %s", p.Requeue, tc.requeueLE)
			}
			c := condition(p, appsv1alpha1.StatelessAppReleasedCondition)
			if c == nil || (c.Status == metav1.ConditionTrue) != (tc.phase == PhaseReleased) {
				t.Errorf("Released condition %+v for phase %s", c, tc.phase)
			}
		})
	}
}

func TestReturning(t *testing.T) {
	fake := clocktesting.NewFakePassiveClock(now)
	r := &Reconciler{clock: fake, unreachable: map[string]time.Time{}, started: now}
	if !r.returning("a", false) {
		t.Error("a cluster is not returning right after the process started, when nothing is known of it")
	}
	fake.SetTime(now.Add(returnSettle))
	if r.returning("a", false) {
		t.Error("a cluster never seen unreachable is returning once the process has run returnSettle")
	}
	r.returning("a", true)
	fake.SetTime(now.Add(returnSettle + 5*time.Second))
	if !r.returning("a", false) {
		t.Error("a cluster back 5 s after it was unreachable is not returning")
	}
	fake.SetTime(now.Add(2 * returnSettle))
	if r.returning("a", false) {
		t.Error("a cluster back returnSettle after it was unreachable is still returning")
	}
}
