package appscli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/cli/suggest"
)

// clusterTimeout bounds the reads from one workload cluster (not a followed
// log): an unreachable cluster must not hang `get apps`.
const clusterTimeout = 20 * time.Second

// appNamespaces lists the hub's AppNamespaces, sorted by name.
func appNamespaces(ctx context.Context, h hub) ([]appsv1alpha1.AppNamespace, error) {
	c, err := h.Client()
	if err != nil {
		return nil, err
	}
	list := &appsv1alpha1.AppNamespaceList{}
	if err := c.List(ctx, list); err != nil {
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("the cluster serves no AppNamespaces (apps.strata.dev): it is not a Strata hub (%s)", h.Hint())
		}
		if apierrors.IsForbidden(err) {
			user := whoami(ctx, c)
			if user == "" {
				user = "of your context"
			}
			return nil, &accessError{forbidden: true, msg: fmt.Sprintf("forbidden: user %s may not list AppNamespaces on the hub, where kubectl strata finds apps "+
				"(the platform team grants it: get and list on appnamespaces.apps.strata.dev)", user)}
		}
		return nil, fmt.Errorf("listing AppNamespaces on the hub: %w (%s)", err, h.Hint())
	}
	items := list.Items
	for i := range items {
		items[i].SetManagedFields(nil)
		items[i].SetGroupVersionKind(appsv1alpha1.GroupVersion.WithKind("AppNamespace"))
	}
	slices.SortFunc(items, func(a, b appsv1alpha1.AppNamespace) int { return strings.Compare(a.Name, b.Name) })
	return items, nil
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

// workload is a connection to a workload cluster, as the person running
// the command.
type workload struct {
	name   string
	client client.Client
	// kube reads what the controller-runtime client cannot: pods' logs.
	kube kubernetes.Interface
	// context names the kubeconfig context used, for messages.
	context string

	userOnce sync.Once
	user     string
}

// connect builds a client of a workload cluster with the caller's own
// credentials for it (hub.workloadConfig): never with the hub's, so the
// cluster shows and does only what the caller may. It does not call the
// cluster: an unreachable one fails on the first read.
func connect(h hub, name string) (*workload, error) {
	cfg, context, err := h.workloadConfig(name)
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: workloadScheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to cluster %s (context %q): %w", name, context, err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to cluster %s (context %q): %w", name, context, err)
	}
	return &workload{name: name, client: c, kube: kube, context: context}, nil
}

// workloadConfig is the REST config of cluster name from a kubeconfig: its
// context named contextName, with overrides (the impersonation asked for:
// --as...).
// A missing context is an accessError that says what to add.
func workloadConfig(raw clientcmdapi.Config, name, contextName string, overrides clientcmd.ConfigOverrides, where string) (*rest.Config, error) {
	if _, ok := raw.Contexts[contextName]; !ok {
		return nil, &accessError{msg: fmt.Sprintf("no context %q for cluster %s in %s: kubectl strata reads a workload cluster as you, "+
			"with your own credentials for it; add a context named %s that reaches it "+
			"(kubectl config set-context %s --cluster=CLUSTER --user=USER), or map one of yours with --cluster-context %s=CONTEXT",
			contextName, name, where, name, name, name)}
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(raw, contextName, &overrides, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading context %q of cluster %s from %s: %w", contextName, name, where, err)
	}
	return cfg, nil
}

// accessError is a refusal the person can act on: no context for a
// cluster, or an API server that forbids them what was asked. Its message
// is the whole story; no API error is appended.
type accessError struct {
	msg       string
	forbidden bool
}

func (e *accessError) Error() string { return e.msg }

// isAccessError tells an error the caller can act on.
func isAccessError(err error) bool {
	var ae *accessError
	return errors.As(err, &ae)
}

// isForbidden tells a refusal of the API server.
func isForbidden(err error) bool {
	var ae *accessError
	return errors.As(err, &ae) && ae.forbidden
}

// whoami is the user a cluster knows the caller as, quoted, from a
// SelfSubjectReview (`kubectl auth whoami`), which every authenticated
// user may create; "" when it cannot tell. It follows impersonation: --as
// shows.
func whoami(ctx context.Context, c client.Client) string {
	review := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, review); err != nil || review.Status.UserInfo.Username == "" {
		return ""
	}
	return strconv.Quote(review.Status.UserInfo.Username)
}

// whoami is the user the workload cluster knows the caller as, asked once.
func (w *workload) whoami(ctx context.Context) string {
	w.userOnce.Do(func() {
		if w.user = whoami(ctx, w.client); w.user == "" {
			w.user = fmt.Sprintf("of context %q", w.context)
		}
	})
	return w.user
}

// statelessApps lists the StatelessApps of a namespace, sorted by name.
func (w *workload) statelessApps(ctx context.Context, namespace string) ([]appsv1alpha1.StatelessApp, error) {
	list := &appsv1alpha1.StatelessAppList{}
	if err := w.client.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, w.readError(ctx, err, "list", "StatelessApps", namespace)
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
		return nil, w.readError(ctx, err, "list", "StatefulApps", namespace)
	}
	items := list.Items
	for i := range items {
		items[i].SetManagedFields(nil)
		items[i].SetGroupVersionKind(appsv1alpha1.GroupVersion.WithKind("StatefulApp"))
	}
	slices.SortFunc(items, func(a, b appsv1alpha1.StatefulApp) int { return strings.Compare(a.Name, b.Name) })
	return items, nil
}

// readError says what failed in which cluster. A refusal names the user,
// the namespace and the cluster, and where access comes from, instead of
// the API server's words.
func (w *workload) readError(ctx context.Context, err error, verb, resource, namespace string) error {
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("cluster %s serves no %s: the workload CRDs (apps.strata.dev) are not installed there", w.name, resource)
	}
	where := "in namespace " + namespace
	if namespace == "" {
		where = "in all namespaces"
	}
	if apierrors.IsForbidden(err) {
		return &accessError{forbidden: true, msg: fmt.Sprintf("forbidden: user %s may not %s %s %s of cluster %s "+
			"(an app's namespace is open to the owners its AppNamespace lists in spec.owners: ask one of them, or the platform team, for view access)",
			w.whoami(ctx), verb, resource, where, w.name)}
	}
	return fmt.Errorf("%sing %s %s of cluster %s: %w", verb, resource, where, w.name, err)
}
