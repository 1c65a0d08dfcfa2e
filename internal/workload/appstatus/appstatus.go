// Package appstatus writes the status of the workload layer's apps.
package appstatus

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// Apply writes status as the whole status of the app (kind, e.g.
// "StatelessApp", named like app) with server-side apply, as owner: the
// status is the controller's alone, so what it no longer sets goes.
func Apply(ctx context.Context, c client.Client, app client.Object, kind string, status any, owner client.FieldOwner) error {
	st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(status)
	if err != nil {
		return fmt.Errorf("converting the status: %w", err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": appsv1alpha1.GroupVersion.String(),
		"kind":       kind,
		"metadata":   map[string]any{"name": app.GetName(), "namespace": app.GetNamespace()},
		"status":     st,
	}}
	if err := c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), owner, client.ForceOwnership); err != nil {
		return fmt.Errorf("writing the status: %w", err)
	}
	return nil
}
