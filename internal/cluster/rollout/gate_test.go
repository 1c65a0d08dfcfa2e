package rollout

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

func makePDB(generation, observed int64, healthy, desired, expected int32) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: generation},
		Status: policyv1.PodDisruptionBudgetStatus{
			ObservedGeneration: observed, CurrentHealthy: healthy, DesiredHealthy: desired, ExpectedPods: expected,
		},
	}
}

func TestPDBProblem(t *testing.T) {
	cases := map[string]struct {
		pdb  *policyv1.PodDisruptionBudget
		want string
	}{
		"a crashing canary holds it below its budget": {
			pdb:  makePDB(1, 1, 4, 5, 6),
			want: "PodDisruptionBudget shop/web in cluster workload-1: 4 of 6 pods healthy, 5 required, so 1 more must become healthy",
		},
		"nothing healthy": {
			pdb:  makePDB(2, 2, 0, 3, 3),
			want: "PodDisruptionBudget shop/web in cluster workload-1: 0 of 3 pods healthy, 3 required, so 3 more must become healthy",
		},
		"exactly at its budget":                       {pdb: makePDB(1, 1, 5, 5, 6)},
		"above its budget":                            {pdb: makePDB(1, 1, 6, 5, 6)},
		"status of an older generation is not judged": {pdb: makePDB(2, 1, 0, 5, 6)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, pdbProblem("workload-1", tc.pdb)); diff != "" {
				t.Errorf("pdbProblem (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeProblems(t *testing.T) {
	cases := map[string]struct {
		nodes              int
		notReady, cordoned []string
		want               []string
	}{
		"all healthy": {nodes: 40},
		"not Ready, named in order": {
			nodes: 40, notReady: []string{"n2", "n1"},
			want: []string{"pool web in cluster workload-1: 2 of 40 Nodes not Ready (n1, n2), which must become Ready or their machines be left to remediation"},
		},
		"many names are cut short": {
			nodes: 10, cordoned: []string{"n5", "n4", "n3", "n2", "n1"},
			want: []string{"pool web in cluster workload-1: 5 of 10 Nodes still cordoned for the rollout's maintenance (n1, n2, n3 and 2 more), which the cluster manager must uncordon"},
		},
		"both": {
			nodes: 3, notReady: []string{"a"}, cordoned: []string{"b"},
			want: []string{
				"pool web in cluster workload-1: 1 of 3 Nodes not Ready (a), which must become Ready or their machines be left to remediation",
				"pool web in cluster workload-1: 1 of 3 Nodes still cordoned for the rollout's maintenance (b), which the cluster manager must uncordon",
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, nodeProblems("workload-1", "web", tc.nodes, tc.notReady, tc.cordoned)); diff != "" {
				t.Errorf("nodeProblems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGateWaitMessage checks the Progressing message of a rollout held at
// its health gate: which zone, what the gate waits on in numbers, and when
// it says HealthGateFailed; past that, that it keeps waiting.
func TestGateWaitMessage(t *testing.T) {
	finding := pdbProblem("workload-1", makePDB(1, 1, 4, 5, 6))
	cases := map[string]struct {
		since   time.Time
		timeout *metav1.Duration
		want    string
	}{
		"the gate began failing now": {
			since: t0,
			want: "MZ 2 waits for its health gate: PodDisruptionBudget shop/web in cluster workload-1: 4 of 6 pods healthy, 5 required, so 1 more must become healthy. " +
				"MZ 2 starts once all of that clears; if the gate still fails at 2026-11-22T10:10:00Z (healthGateTimeout 10m0s after it began to fail), the status says HealthGateFailed and the rollout keeps waiting",
		},
		"an earlier start and a timeout of its own": {
			since: t0.Add(-3 * time.Minute), timeout: &metav1.Duration{Duration: 30 * time.Minute},
			want: "MZ 2 waits for its health gate: PodDisruptionBudget shop/web in cluster workload-1: 4 of 6 pods healthy, 5 required, so 1 more must become healthy. " +
				"MZ 2 starts once all of that clears; if the gate still fails at 2026-11-22T10:27:00Z (healthGateTimeout 30m0s after it began to fail), the status says HealthGateFailed and the rollout keeps waiting",
		},
		"past its timeout": {
			since: t0.Add(-10 * time.Minute),
			want: "the health gate before MZ 2 has failed since 2026-11-22T09:50:00Z, longer than healthGateTimeout 10m0s: " +
				"PodDisruptionBudget shop/web in cluster workload-1: 4 of 6 pods healthy, 5 required, so 1 more must become healthy. " +
				"The rollout keeps waiting and starts MZ 2 by itself once all of that clears",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ro := makeRollout("r1")
			ro.Spec.HealthGateTimeout = tc.timeout
			if !tc.since.Equal(t0) {
				since := metav1.NewTime(tc.since)
				ro.Status.HealthGateFailingSince = &since
			}
			ms := []*brokerv1.Machine{makeMachine("a", 1, "v2").obj(), makeMachine("c", 2, "v1").obj()}
			s := desiredStatus(ro, newPlan(ro, ms, nil), outcome{gate: finding}, metav1.NewTime(t0))
			c := meta.FindStatusCondition(s.Conditions, "Progressing")
			if c == nil {
				t.Fatal("no Progressing condition")
			}
			if diff := cmp.Diff(tc.want, c.Message); diff != "" {
				t.Errorf("Progressing message (-want +got):\n%s", diff)
			}
		})
	}
}
