package localdc

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDatacenterStateNotReady(t *testing.T) {
	ready := ClusterState{Name: "hub", Ready: true}
	serving := BrokerState{Address: "127.0.0.1:1", Serving: true}
	cases := map[string]struct {
		state DatacenterState
		want  []string
	}{
		"everything ready": {state: DatacenterState{Clusters: []ClusterState{ready}, Broker: serving}},
		"a cluster and the broker": {
			state: DatacenterState{
				Clusters: []ClusterState{ready, {Name: "workload-1", Reason: "3 of 5 components running"}},
				Broker:   BrokerState{Reason: "not reachable: run `strata up`"},
			},
			want: []string{"cluster workload-1 (3 of 5 components running)", "the Compute Broker (not reachable: run `strata up`)"},
		},
		"a component process": {
			state: DatacenterState{
				Clusters: []ClusterState{ready}, Broker: serving,
				Components: []ComponentState{{Name: "hub-1", Alive: true, Ready: true}, {Name: "hub-2", Reason: "not running: run `strata up`"}},
			},
			want: []string{"process hub-2 (not running: run `strata up`)"},
		},
		"no component process runs": {
			state: DatacenterState{
				Clusters: []ClusterState{ready}, Broker: serving,
				Components: []ComponentState{{Name: "hub-1", Reason: "not running"}, {Name: "webhook-hub", Reason: "not running"}},
			},
			want: []string{"the component processes (none running: run `strata up`)"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.state.NotReady()); diff != "" {
				t.Errorf("NotReady (-want +got):\n%s", diff)
			}
		})
	}
}
