package batchqueue

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// The conditions say what is wrong, the analysis first, then the hub,
// then Kueue; ClustersSynced names the clusters of the region that could
// not be written.
func TestConditions(t *testing.T) {
	eu := makeQueue("team", "acme").Region("eu").Quota("general", "1", "", "").Obj()
	fleet := makeQueue("team", "acme").Quota("general", "1", "", "").Obj()
	leaf := &verdict{Cohort: "org.acme", Profiles: []string{"general"}}
	inactive := &clusterQueueStatus{Conditions: []metav1.Condition{{Type: "Active", Status: metav1.ConditionFalse, Reason: "FlavorNotFound", Message: "Can't admit new workloads: references missing ResourceFlavor(s): general"}}}
	hubFailed := failures{"": {"team": {"applying LocalQueue ml/team in the hub: namespaces \"ml\" not found"}}}
	tests := []struct {
		name       string
		queue      *appsv1alpha1.BatchQueue
		verdict    *verdict
		cq         *clusterQueueStatus
		last       failures
		clusters   []string
		wantReady  metav1.Condition
		wantSynced metav1.Condition
	}{{
		name: "ready, Kueue has not reported yet", queue: fleet, verdict: leaf, last: failures{}, clusters: []string{"w1", "w2"},
		wantReady: metav1.Condition{Status: metav1.ConditionTrue, Reason: appsv1alpha1.QueueReadyReason,
			Message: "ClusterQueue team in organisation acme's Cohort org.acme with quotas on node profiles general"},
		wantSynced: metav1.Condition{Status: metav1.ConditionTrue, Reason: appsv1alpha1.ClustersSyncedReason, Message: "on workload clusters w1, w2"},
	}, {
		name: "the analysis's problem comes before Kueue's", queue: fleet, cq: inactive, last: failures{}, clusters: []string{"w1"},
		verdict:    &verdict{Cohort: "org.acme", Reason: appsv1alpha1.ParentNotFoundReason, Message: "parent x is no BatchQueue"},
		wantReady:  metav1.Condition{Status: metav1.ConditionFalse, Reason: appsv1alpha1.ParentNotFoundReason, Message: "parent x is no BatchQueue"},
		wantSynced: metav1.Condition{Status: metav1.ConditionTrue, Reason: appsv1alpha1.ClustersSyncedReason, Message: "on workload clusters w1"},
	}, {
		name: "a failed write on the hub", queue: fleet, verdict: leaf, cq: inactive, last: hubFailed, clusters: []string{"w1"},
		wantReady: metav1.Condition{Status: metav1.ConditionFalse, Reason: appsv1alpha1.KueueWriteFailedReason,
			Message: "applying LocalQueue ml/team in the hub: namespaces \"ml\" not found"},
		wantSynced: metav1.Condition{Status: metav1.ConditionTrue, Reason: appsv1alpha1.ClustersSyncedReason, Message: "on workload clusters w1"},
	}, {
		name: "Kueue's word", queue: fleet, verdict: leaf, cq: inactive, last: failures{}, clusters: []string{"w1"},
		wantReady: metav1.Condition{Status: metav1.ConditionFalse, Reason: appsv1alpha1.KueueInactiveReason,
			Message: "the hub's Kueue reports ClusterQueue team inactive (FlavorNotFound): Can't admit new workloads: references missing ResourceFlavor(s): general"},
		wantSynced: metav1.Condition{Status: metav1.ConditionTrue, Reason: appsv1alpha1.ClustersSyncedReason, Message: "on workload clusters w1"},
	}, {
		name: "no cluster in the region", queue: eu, verdict: leaf, last: failures{},
		wantReady: metav1.Condition{Status: metav1.ConditionTrue, Reason: appsv1alpha1.QueueReadyReason,
			Message: "ClusterQueue team in organisation acme's Cohort org.acme with quotas on node profiles general"},
		wantSynced: metav1.Condition{Status: metav1.ConditionFalse, Reason: appsv1alpha1.NoClusterInRegionReason,
			Message: "no workload cluster is registered in region eu: the queue's jobs have nowhere to run"},
	}, {
		name: "a cluster's failures, the whole cluster's and the queue's, not another queue's", queue: fleet, verdict: leaf, clusters: []string{"w1", "w2", "w3"},
		last: failures{
			"w2": {"": {"cluster w2 is unreachable"}},
			"w3": {"team": {"applying LocalQueue ml/team in cluster w3: namespaces \"ml\" not found"}},
			"w1": {"other": {"applying ClusterQueue other in cluster w1: boom"}},
		},
		wantReady: metav1.Condition{Status: metav1.ConditionTrue, Reason: appsv1alpha1.QueueReadyReason,
			Message: "ClusterQueue team in organisation acme's Cohort org.acme with quotas on node profiles general"},
		wantSynced: metav1.Condition{Status: metav1.ConditionFalse, Reason: appsv1alpha1.ClusterUnreachableReason,
			Message: "applying LocalQueue ml/team in cluster w3: namespaces \"ml\" not found; cluster w2 is unreachable; retried; written on w1"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.wantReady.Type, tc.wantSynced.Type = appsv1alpha1.BatchQueueReadyCondition, appsv1alpha1.BatchQueueClustersSyncedCondition
			if diff := cmp.Diff(tc.wantReady, readyCondition(tc.queue, tc.verdict, tc.cq, tc.last)); diff != "" {
				t.Errorf("Ready (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantSynced, syncedCondition(tc.queue, tc.clusters, tc.last)); diff != "" {
				t.Errorf("ClustersSynced (-want +got):\n%s", diff)
			}
		})
	}
}
