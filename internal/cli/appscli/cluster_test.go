package appscli

import (
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// makeCluster is a Cluster of datacenter dc1 with nodes Nodes, all Ready,
// whose Ready condition is status (none when "").
func makeCluster(name, region string, nodes int32, status metav1.ConditionStatus, reason, message string) *fleetv1alpha1.Cluster {
	cl := &fleetv1alpha1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: fleetv1alpha1.ClusterSpec{
			KubeconfigSecretRef: fleetv1alpha1.SecretKeyReference{Namespace: "strata-system", Name: name + "-kubeconfig"},
			Datacenter:          "dc1", Region: region,
		},
		Status: fleetv1alpha1.ClusterStatus{Nodes: nodes, ReadyNodes: nodes},
	}
	if status != "" {
		cl.Status.Conditions = []metav1.Condition{{Type: fleetv1alpha1.ClusterReadyCondition, Status: status, Reason: reason, Message: message}}
	}
	return cl
}

func TestClusterRows(t *testing.T) {
	cordoned := makeCluster("workload-2", "eu", 8, isTrue, fleetv1alpha1.ClusterReachableReason, "")
	cordoned.Spec.Cordoned = true
	down := makeCluster("workload-3", "", 4, isFalse, fleetv1alpha1.APIServerUnreachableReason, "dial tcp 10.0.0.3:6443: connection refused")
	down.Status.ReadyNodes = 0
	rows := []ClusterRow{
		clusterRow(makeCluster("workload-1", "eu", 12, isTrue, fleetv1alpha1.ClusterReachableReason, ""), 3),
		clusterRow(cordoned, 1),
		clusterRow(down, 0),
		clusterRow(makeCluster("workload-4", "us", 0, "", "", ""), 0),
	}
	want := []ClusterRow{
		{Cluster: "workload-1", Datacenter: "dc1", Region: "eu", Ready: "True", Nodes: 12, ReadyNodes: 12, AppNamespaces: 3},
		{Cluster: "workload-2", Datacenter: "dc1", Region: "eu", Ready: "True", Cordoned: true, Nodes: 8, ReadyNodes: 8, AppNamespaces: 1},
		{Cluster: "workload-3", Datacenter: "dc1", Ready: "False", Nodes: 4,
			Message: "APIServerUnreachable — dial tcp 10.0.0.3:6443: connection refused"},
		{Cluster: "workload-4", Datacenter: "dc1", Region: "us", Ready: "Unknown", Message: "not observed yet (is the hub's cluster controller running?)"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Fatalf("clusterRow (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		wide bool
		want string
	}{
		{false, `NAME        DATACENTER  REGION  READY    CORDONED  NODES  APPNAMESPACES
workload-1  dc1         eu      True     no        12/12  3
workload-2  dc1         eu      True     yes       8/8    1
workload-3  dc1         -       False    no        0/4    0
workload-4  dc1         us      Unknown  no        0/0    0
`},
		{true, `NAME        DATACENTER  REGION  READY    CORDONED  NODES  APPNAMESPACES  MESSAGE
workload-1  dc1         eu      True     no        12/12  3              -
workload-2  dc1         eu      True     yes       8/8    1              -
workload-3  dc1         -       False    no        0/4    0              APIServerUnreachable — dial tcp 10.0.0.3:6443: connection refused
workload-4  dc1         us      Unknown  no        0/0    0              not observed yet (is the hub's cluster controller running?)
`},
	} {
		var got strings.Builder
		tw := tabwriter.NewWriter(&got, 0, 4, 2, ' ', 0)
		clusterListTable(tw, rows, tc.wide)
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got.String()); diff != "" {
			t.Errorf("clusterListTable(wide=%t) (-want +got):\n%s", tc.wide, diff)
		}
	}
}
