package crd

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/yaml"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// The columns of `kubectl get mro` show something for every rollout: a
// column on spec.paused showed nothing for a running one (false is omitted).
func TestMaintenanceRolloutColumns(t *testing.T) {
	rollout := func(paused bool, reason string) *fleetv1alpha1.MaintenanceRollout {
		status := metav1.ConditionFalse
		if paused {
			status = metav1.ConditionTrue
		}
		return &fleetv1alpha1.MaintenanceRollout{
			Spec: fleetv1alpha1.MaintenanceRolloutSpec{Pools: []string{"web"}, NodeConfig: "general-v2", Paused: paused},
			Status: fleetv1alpha1.MaintenanceRolloutStatus{Conditions: []metav1.Condition{
				{Type: fleetv1alpha1.RolloutProgressingCondition, Status: metav1.ConditionTrue, Reason: fleetv1alpha1.RolloutMaintainingReason},
				{Type: fleetv1alpha1.RolloutPausedCondition, Status: status, Reason: reason},
			}},
		}
	}
	tests := []struct {
		name    string
		rollout *fleetv1alpha1.MaintenanceRollout
		want    map[string]string
	}{
		{"running", rollout(false, fleetv1alpha1.RolloutNotPausedReason),
			map[string]string{"Node Config": "general-v2", "Paused": "False", "Status": "Maintaining"}},
		{"paused by a person", rollout(true, fleetv1alpha1.RolloutPausedByUserReason),
			map[string]string{"Node Config": "general-v2", "Paused": "True", "Status": "Maintaining"}},
	}
	columns := printerColumns(t, "fleet.strata.dev_maintenancerollouts.yaml")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := cells(t, columns, tc.rollout)
			for name := range got {
				if _, ok := tc.want[name]; !ok {
					delete(got, name) // the counts and age are not what this test is about
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("columns (-want +got):\n%s", diff)
			}
		})
	}
}

// printerColumns reads the additional printer columns of a generated CRD's
// only version.
func printerColumns(t *testing.T, file string) []apiextensionsv1.CustomResourceColumnDefinition {
	t.Helper()
	raw, err := FS.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(raw, crd); err != nil {
		t.Fatalf("reading %s: %v", file, err)
	}
	if len(crd.Spec.Versions) != 1 {
		t.Fatalf("%s has %d versions, want 1", file, len(crd.Spec.Versions))
	}
	return crd.Spec.Versions[0].AdditionalPrinterColumns
}

// cells is what the API server shows in each column for obj: the JSONPath
// evaluated as its table convertor does (nothing found is an empty cell).
func cells(t *testing.T, columns []apiextensionsv1.CustomResourceColumnDefinition, obj runtime.Object) map[string]string {
	t.Helper()
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, col := range columns {
		path := jsonpath.New(col.Name).AllowMissingKeys(true)
		if err := path.Parse(fmt.Sprintf("{%s}", col.JSONPath)); err != nil {
			t.Fatalf("column %s: parsing %s: %v", col.Name, col.JSONPath, err)
		}
		var buf bytes.Buffer
		if err := path.Execute(&buf, content); err != nil {
			t.Fatalf("column %s: %v", col.Name, err)
		}
		out[col.Name] = buf.String()
	}
	return out
}
