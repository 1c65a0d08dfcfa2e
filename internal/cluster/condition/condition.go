// Package condition writes one condition of a hub object's status with
// server-side apply, so that two controllers sharing a status (the Cluster
// controller and the cluster manager, the Pool controller and remediation)
// keep each other's conditions.
package condition

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// Apply sets want among current, the conditions the object has now, and
// when that changes them writes want alone to the status of the
// cluster-scoped fleet object kind/name, as owner. A transition time is kept
// while the status stays; an unset one on a change means now. It reports
// whether it wrote.
func Apply(ctx context.Context, c client.Client, kind, name string, current []metav1.Condition, want metav1.Condition,
	owner client.FieldOwner) (bool, error) {
	conditions := append([]metav1.Condition(nil), current...)
	if !meta.SetStatusCondition(&conditions, want) {
		return false, nil
	}
	applied := *meta.FindStatusCondition(conditions, want.Type)
	cond, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&applied)
	if err != nil {
		return false, fmt.Errorf("converting condition %s: %w", want.Type, err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": fleetv1alpha1.GroupVersion.String(),
		"kind":       kind,
		"metadata":   map[string]any{"name": name},
		"status":     map[string]any{"conditions": []any{cond}},
	}}
	if err := c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), owner, client.ForceOwnership); err != nil {
		return false, fmt.Errorf("writing condition %s of %s %s: %w", want.Type, kind, name, err)
	}
	return true, nil
}
