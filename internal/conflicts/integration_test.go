package conflicts_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/strata-dev/strata/internal/conflicts"
	"github.com/strata-dev/strata/internal/testutil"
)

// TestConflictIsNoReconcilerError runs a controller whose first reconcile
// writes a stale copy of an object, as a controller does when its cache lags
// behind another writer: the API server's conflict is retried, and nothing
// is logged as an error.
func TestConflictIsNoReconcilerError(t *testing.T) {
	_, cfg := testutil.StartEnv(t)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		lines []string
	)
	logger := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 1})
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Logger: logger, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	c := mgr.GetAPIReader()
	w, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "contested", Namespace: metav1.NamespaceDefault}, Data: map[string]string{"by": "test"}}
	testutil.MustCreate(t, w, cm)

	var (
		attempts    int
		firstErr    error
		reconciled  = make(chan struct{})
		closeSignal sync.Once
	)
	r := reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		obj := &corev1.ConfigMap{}
		if err := c.Get(ctx, req.NamespacedName, obj); err != nil {
			return reconcile.Result{}, err
		}
		attempts++
		if attempts == 1 {
			// Another writer changes the object after this read.
			other := obj.DeepCopy()
			other.Data["by"] = "someone else"
			if err := w.Update(ctx, other); err != nil {
				return reconcile.Result{}, fmt.Errorf("the other writer: %w", err)
			}
		}
		obj.Data["by"] = "controller"
		err := w.Update(ctx, obj)
		if attempts == 1 {
			firstErr = err
		}
		if err != nil {
			return reconcile.Result{}, fmt.Errorf("updating configmap %s: %w", obj.Name, err)
		}
		closeSignal.Do(func() { close(reconciled) })
		return reconcile.Result{}, nil
	})
	err = ctrl.NewControllerManagedBy(mgr).
		For(&corev1.ConfigMap{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == cm.Name }))).
		Named("contested").
		Complete(conflicts.Requeue(r))
	if err != nil {
		t.Fatal(err)
	}
	testutil.RunManager(t, mgr)

	// The error line would be written as the first reconcile returns, before
	// the retry that writes the ConfigMap.
	select {
	case <-reconciled:
	case <-time.After(time.Minute):
		t.Fatal("the controller did not write the ConfigMap within a minute")
	}
	if !apierrors.IsConflict(firstErr) {
		t.Fatalf("the first write got %v, want a conflict from the API server", firstErr)
	}
	mu.Lock()
	defer mu.Unlock()
	var requeued bool
	for _, l := range lines {
		if strings.Contains(l, "Reconciler error") || strings.Contains(l, `"error"=`) {
			t.Errorf("an error was logged: %s", l)
		}
		requeued = requeued || strings.Contains(l, "Requeueing after a conflict")
	}
	if !requeued {
		t.Errorf("no V(1) line says the conflict was requeued; the log:\n%s", strings.Join(lines, "\n"))
	}
}
