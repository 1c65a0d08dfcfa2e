package pool

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/testutil"
)

func TestOverClusterLimit(t *testing.T) {
	limited := testutil.MakeCluster("wl", "ns").Obj()
	limited.Spec.MaxNodes = 100
	deleting := testutil.MakePool("old", "wl", 60).Obj()
	deleting.DeletionTimestamp = ptr.To(metav1.Now())
	pools := []fleetv1alpha1.Pool{
		*testutil.MakePool("a", "wl", 30).Obj(),
		*testutil.MakePool("elsewhere", "other", 1000).Obj(),
		*deleting,
		*testutil.MakePool("b", "wl", 20).Obj(),
	}
	for _, tc := range []struct {
		name     string
		cluster  *fleetv1alpha1.Cluster
		pool     string
		capacity int32
		want     string
	}{
		{"up to the limit", limited, "b", 70, ""},
		{"one over", limited, "b", 71, "capacity 71 would give cluster wl 101 Nodes, over its limit of 100 (spec.maxNodes of Cluster wl): its other Pools take 30, so this Pool may have at most 70"},
		{"a new Pool", limited, "c", 51, "its other Pools take 50, so this Pool may have at most 50"},
		{"default limit", testutil.MakeCluster("wl", "ns").Obj(), "b", 4970, ""},
		{"default limit, over", testutil.MakeCluster("wl", "ns").Obj(), "b", 4971, "over its limit of 5000"},
		{"the largest capacity", limited, "b", 1<<31 - 1, "at most 70"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := OverClusterLimit(tc.cluster, pools, tc.pool, tc.capacity)
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("OverClusterLimit = %q, want %q", got, tc.want)
			}
		})
	}
}
