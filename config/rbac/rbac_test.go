package rbac

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestObjects: each identity's folder holds its ServiceAccount and
// ClusterRole, and no kustomization.
func TestObjects(t *testing.T) {
	objs, err := Objects(append(Hub, Workload...)...)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "Kustomization" {
			t.Errorf("a Kustomization was read as an object")
		}
		got[o.GetKind()+"/"+o.GetName()] = true
	}
	for _, want := range []string{
		"ServiceAccount/strata-hub", "ClusterRole/strata-hub", "ClusterRoleBinding/strata-hub", "Role/strata-hub-leader-election",
		"ServiceAccount/strata-apps", "ClusterRole/strata-apps", "Role/strata-apps-leader-election",
		"ServiceAccount/strata-webhook", "ClusterRole/strata-webhook", "ClusterRole/strata-hub-remote",
		"ServiceAccount/strata-aggregator", "ClusterRole/strata-aggregator", "Role/strata-aggregator-leader-election",
		"ClusterRole/strata-aggregator-remote", "ServiceAccount/strata-console", "ClusterRole/strata-console",
	} {
		if !got[want] {
			t.Errorf("%s is missing from %v", want, got)
		}
	}
	if _, err := Objects("nothing"); err == nil {
		t.Error("Objects of a folder that does not exist: no error")
	}
	if diff := cmp.Diff([]string{"hub", "webhook", "aggregator", "console"}, Hub); diff != "" {
		t.Errorf("Hub (-want +got):\n%s", diff)
	}
}
