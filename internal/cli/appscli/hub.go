package appscli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cli/suggest"
	"github.com/strata-dev/strata/internal/cluster/remote"
)

// clusterTimeout bounds the reads from one workload cluster (not a followed
// log): an unreachable cluster must not hang `get apps`.
const clusterTimeout = 20 * time.Second

// appNamespaces lists the hub's AppNamespaces, sorted by name.
func appNamespaces(ctx context.Context, h hub) (client.Client, []appsv1alpha1.AppNamespace, error) {
	c, err := h.Client()
	if err != nil {
		return nil, nil, err
	}
	list := &appsv1alpha1.AppNamespaceList{}
	if err := c.List(ctx, list); err != nil {
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("the cluster serves no AppNamespaces (apps.strata.dev): it is not a Strata hub (%s)", h.Hint())
		}
		return nil, nil, fmt.Errorf("listing AppNamespaces on the hub: %w (%s)", err, h.Hint())
	}
	items := list.Items
	for i := range items {
		items[i].SetManagedFields(nil)
		items[i].SetGroupVersionKind(appsv1alpha1.GroupVersion.WithKind("AppNamespace"))
	}
	slices.SortFunc(items, func(a, b appsv1alpha1.AppNamespace) int { return strings.Compare(a.Name, b.Name) })
	return c, items, nil
}

// findApp returns the AppNamespaces of an app: those whose spec.app is app,
// else the AppNamespace named app. None is an error that names apps with
// similar names.
func findApp(all []appsv1alpha1.AppNamespace, app string) ([]appsv1alpha1.AppNamespace, error) {
	var found []appsv1alpha1.AppNamespace
	for _, an := range all {
		if an.Spec.App == app {
			found = append(found, an)
		}
	}
	if len(found) == 0 {
		for _, an := range all {
			if an.Name == app {
				found = append(found, an)
			}
		}
	}
	if len(found) > 0 {
		return found, nil
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no app %q: the hub has no AppNamespaces yet (an app is onboarded by applying an AppNamespace to the hub)", app)
	}
	names := make([]string, 0, len(all))
	for _, an := range all {
		names = append(names, an.Spec.App)
	}
	msg := fmt.Sprintf("no app %q on the hub: no AppNamespace has spec.app %q or that name", app, app)
	if similar := similarNames(app, names); len(similar) > 0 {
		msg += "; did you mean " + strings.Join(similar, ", ") + "?"
	}
	return nil, errors.New(msg + " (`kubectl strata get apps` lists them all)")
}

// similarNames returns up to five of names close to name: one contains the
// other, or they are a few edits apart. Closest first.
func similarNames(name string, names []string) []string {
	type scored struct {
		name string
		d    int
	}
	var out []scored
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] || n == name {
			continue
		}
		seen[n] = true
		d := suggest.Distance(name, n)
		if strings.Contains(n, name) || strings.Contains(name, n) || d <= max(2, len(name)/3) {
			out = append(out, scored{n, d})
		}
	}
	slices.SortFunc(out, func(a, b scored) int {
		if a.d != b.d {
			return a.d - b.d
		}
		return strings.Compare(a.name, b.name)
	})
	res := make([]string, 0, min(5, len(out)))
	for _, s := range out[:min(5, len(out))] {
		res = append(res, s.name)
	}
	return res
}

// workloadScheme knows what is read from a workload cluster.
var workloadScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s) // static types: cannot fail
	_ = appsv1alpha1.AddToScheme(s)
	return s
}()

// workload is a connection to a workload cluster.
type workload struct {
	name   string
	client client.Client
	// kube reads what the controller-runtime client cannot: pods' logs.
	kube kubernetes.Interface
}

// connect builds a client of a workload cluster from its kubeconfig Secret
// on the hub. It does not call the cluster: an unreachable one fails on
// the first read.
func connect(ctx context.Context, hubClient client.Client, name string) (*workload, error) {
	cl := &fleetv1alpha1.Cluster{}
	if err := hubClient.Get(ctx, client.ObjectKey{Name: name}, cl); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("cluster %s is not registered on the hub", name)
		}
		return nil, fmt.Errorf("reading cluster %s on the hub: %w", name, err)
	}
	kubeconfig, err := remote.Kubeconfig(ctx, hubClient, cl)
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig of cluster %s: %w (reading it needs access to Secrets of the hub)", name, err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("the kubeconfig of cluster %s is invalid: %w", name, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: workloadScheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to cluster %s: %w", name, err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to cluster %s: %w", name, err)
	}
	return &workload{name: name, client: c, kube: kube}, nil
}

// statelessApps lists the StatelessApps of a namespace, sorted by name.
func (w *workload) statelessApps(ctx context.Context, namespace string) ([]appsv1alpha1.StatelessApp, error) {
	list := &appsv1alpha1.StatelessAppList{}
	if err := w.client.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, w.readError(err, "listing StatelessApps in namespace "+namespace)
	}
	items := list.Items
	for i := range items {
		items[i].SetManagedFields(nil)
		items[i].SetGroupVersionKind(appsv1alpha1.GroupVersion.WithKind("StatelessApp"))
	}
	slices.SortFunc(items, func(a, b appsv1alpha1.StatelessApp) int { return strings.Compare(a.Name, b.Name) })
	return items, nil
}

// statefulApps lists the StatefulApps of a namespace, sorted by name. A
// cluster that does not serve StatefulApps (installed before they existed)
// has none.
func (w *workload) statefulApps(ctx context.Context, namespace string) ([]appsv1alpha1.StatefulApp, error) {
	list := &appsv1alpha1.StatefulAppList{}
	if err := w.client.List(ctx, list, client.InNamespace(namespace)); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, w.readError(err, "listing StatefulApps in namespace "+namespace)
	}
	items := list.Items
	for i := range items {
		items[i].SetManagedFields(nil)
		items[i].SetGroupVersionKind(appsv1alpha1.GroupVersion.WithKind("StatefulApp"))
	}
	slices.SortFunc(items, func(a, b appsv1alpha1.StatefulApp) int { return strings.Compare(a.Name, b.Name) })
	return items, nil
}

// readError says what failed in which cluster.
func (w *workload) readError(err error, doing string) error {
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("cluster %s serves no StatelessApps: the workload CRDs (apps.strata.dev) are not installed there", w.name)
	}
	return fmt.Errorf("%s of cluster %s: %w", doing, w.name, err)
}
