package testutil

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/strata-dev/strata/internal/cluster/index"
	"github.com/strata-dev/strata/internal/workload/appcache"
)

// StartManager runs a controller manager with the hub's indexes against cfg,
// after setup registered its controllers, and stops it when the test ends.
func StartManager(t testing.TB, cfg *rest.Config, scheme *runtime.Scheme, setup func(ctrl.Manager) error) {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := index.Setup(t.Context(), mgr.GetFieldIndexer()); err != nil {
		t.Fatal(err)
	}
	if err := setup(mgr); err != nil {
		t.Fatal(err)
	}
	RunManager(t, mgr)
}

// MustCreate creates obj or fails the test.
func MustCreate(t testing.TB, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(t.Context(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// RunManager starts mgr and stops it when the test ends, failing the test if
// it stopped with an error.
func RunManager(t testing.TB, mgr ctrl.Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

// NewAppsManager is a manager built as a workload cluster's app controllers
// run (internal/workload/apps): appcache's cache, no metrics server. The
// test adds its controllers and starts it (RunManager).
func NewAppsManager(t testing.TB, cfg *rest.Config, scheme *runtime.Scheme) ctrl.Manager {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, Cache: appcache.Options()})
	if err != nil {
		t.Fatal(err)
	}
	return mgr
}
