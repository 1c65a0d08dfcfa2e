// Package install puts into a cluster what Strata needs there: its CRDs,
// the guardrails (admission policies and the webhook's registration) and,
// in a workload cluster, the AppPlatform and the RBAC roles of the apps'
// API. Hub and Workload are idempotent: `strata up` runs them at every
// start, and they bring a cluster from any earlier install to this one.
package install

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/config/crd"
	"github.com/strata-dev/strata/internal/workload/guardrails"
)

// FieldOwner is the server-side apply field manager of everything install
// applies.
const FieldOwner = "strata-install"

// SetLabel marks the objects install made for a set ("hub" or "workload"),
// so that a later install removes those the set no longer has.
const SetLabel = "strata.dev/install"

// Sets of objects, the values of SetLabel.
const (
	hubSet      = "hub"
	workloadSet = "workload"
)

// establishTimeout bounds the wait for a CRD to be served.
const establishTimeout = time.Minute

// Webhook is where the cluster's API server reaches Strata's guardrail
// webhook (guardrails.NewHandler).
type Webhook struct {
	// URL is the base the handler is served at, e.g.
	// https://127.0.0.1:PORT/clusters/workload-1; the checks' paths
	// (guardrails.NamespaceDeletePath, guardrails.CRDDeletePath) are
	// appended. Empty: no webhook is registered (and one an earlier install
	// registered is removed), so only the policies guard the cluster.
	URL string
	// CABundle is the PEM CA that signed the webhook server's certificate
	// (guardrails.Certificates).
	CABundle []byte
}

// Hub installs into the hub: the hub's CRDs (waiting until they are
// served), the delete protection of AppNamespaces, StatelessApps, Pools and
// Clusters, ClusterRoles that give the Kubernetes view, edit and admin roles
// the StatelessApps declared on the hub, and the webhook that refuses
// deleting a CRD that still has objects.
// c may use any scheme: install sends typed objects as apply configurations
// and reads CRDs as unstructured.
func Hub(ctx context.Context, c client.Client, wh Webhook) error {
	if err := installCRDs(ctx, c, crd.Hub); err != nil {
		return err
	}
	var hooks client.Object
	if wh.URL != "" {
		hooks = guardrails.HubWebhooks(wh.URL, wh.CABundle)
	}
	return applySet(ctx, c, hubSet, guardrails.HubPolicies(), hooks, hubClusterRoles()...)
}

// Workload installs into a workload cluster: the workload CRDs (waiting
// until they are served), the AppPlatform "default" if there is none (it is
// the platform team's to edit afterwards, and install never overwrites it),
// ClusterRoles that give the Kubernetes view, edit and admin roles their
// share of the apps' API, the StatelessApp and StatefulApp guardrails, the
// webhook that refuses deleting a namespace that holds workloads or a CRD
// that still has objects, evicting a StatefulApp pod without its shard
// manager's approval and scaling a StatelessApp's Deployment around it,
// the StorageClass of local volumes (LocalSSD), and the policy that makes a
// queued Job a gang (JobGangPolicy).
func Workload(ctx context.Context, c client.Client, wh Webhook) error {
	if err := installCRDs(ctx, c, crd.Workload); err != nil {
		return err
	}
	if err := createPlatform(ctx, c); err != nil {
		return err
	}
	var hooks client.Object
	if wh.URL != "" {
		hooks = guardrails.WorkloadWebhooks(wh.URL, wh.CABundle)
	}
	return applySet(ctx, c, workloadSet, guardrails.WorkloadPolicies(), hooks, slices.Concat(clusterRoles(), []client.Object{LocalSSD()}, jobGangPolicy())...)
}

// applySet applies the policies, the webhook configuration (if any) and the
// other objects of a set, then deletes what an earlier install of the set
// left that it no longer has (such as the webhook configuration once there
// is no URL).
func applySet(ctx context.Context, c client.Client, set string, policies []guardrails.Policy, hooks client.Object, others ...client.Object) error {
	objs := slices.Clone(others)
	for _, p := range policies {
		objs = append(objs, p.Policy, p.Binding)
	}
	if hooks != nil {
		objs = append(objs, hooks)
	}
	for _, obj := range objs {
		if err := apply(ctx, c, set, obj); err != nil {
			return err
		}
	}
	return prune(ctx, c, set, objs)
}

// apply server-side applies a typed object, labelled with its set.
func apply(ctx context.Context, c client.Client, set string, obj client.Object) error {
	u, err := toUnstructured(obj)
	if err != nil {
		return err
	}
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[SetLabel] = set
	u.SetLabels(labels)
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// toUnstructured turns a typed object (with its TypeMeta set) into what
// server-side apply should own: no status, no empty creationTimestamp.
func toUnstructured(obj client.Object) (*unstructured.Unstructured, error) {
	if obj.GetObjectKind().GroupVersionKind().Kind == "" {
		return nil, fmt.Errorf("%T %s has no apiVersion and kind", obj, obj.GetName())
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %T %s: %w", obj, obj.GetName(), err)
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return u, nil
}

// prunable are the kinds whose objects install removes when their set no
// longer has them.
var prunable = []schema.GroupVersionKind{
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingAdmissionPolicy"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingAdmissionPolicyBinding"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingAdmissionPolicy"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingAdmissionPolicyBinding"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"},
	{Group: "storage.k8s.io", Version: "v1", Kind: "StorageClass"},
}

// prune deletes the objects labelled with the set that objs does not hold.
func prune(ctx context.Context, c client.Client, set string, objs []client.Object) error {
	keep := map[schema.GroupVersionKind][]string{}
	for _, o := range objs {
		gvk := o.GetObjectKind().GroupVersionKind()
		keep[gvk] = append(keep[gvk], o.GetName())
	}
	for _, gvk := range prunable {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, list, client.MatchingLabels{SetLabel: set}); err != nil {
			return fmt.Errorf("listing %ss installed earlier: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			item := &list.Items[i]
			if slices.Contains(keep[gvk], item.Name) {
				continue
			}
			stale := &unstructured.Unstructured{}
			stale.SetGroupVersionKind(gvk)
			stale.SetName(item.Name)
			if err := c.Delete(ctx, stale); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("removing %s %s, which this install no longer has: %w", gvk.Kind, item.Name, err)
			}
		}
	}
	return nil
}

// installCRDs applies the named CRDs of Strata (crd.Hub, crd.Workload), then
// waits until each is served.
func installCRDs(ctx context.Context, c client.Client, names []string) error {
	crds := make([]string, 0, len(names))
	for _, name := range names {
		raw, err := fs.ReadFile(crd.FS, name)
		if err != nil {
			return fmt.Errorf("reading CRD %s: %w", name, err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(raw, &u.Object); err != nil {
			return fmt.Errorf("parsing CRD %s: %w", name, err)
		}
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("installing CRD %s: %w", u.GetName(), err)
		}
		crds = append(crds, u.GetName())
	}
	for _, name := range crds {
		if err := WaitEstablished(ctx, c, name); err != nil {
			return err
		}
	}
	return nil
}

// crdGVK is read as unstructured, so that c's scheme need not know it.
var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// WaitEstablished waits until the CRD name is served (its Established
// condition), for at most a minute.
func WaitEstablished(ctx context.Context, c client.Client, name string) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, establishTimeout, true, func(ctx context.Context) (bool, error) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(crdGVK)
		if err := c.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, cond := range conditions {
			if m, ok := cond.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for CRD %s to be established: %w", name, err)
	}
	return nil
}

// createPlatform creates the AppPlatform "default" unless one exists.
func createPlatform(ctx context.Context, c client.Client) error {
	u, err := toUnstructured(DefaultPlatform())
	if err != nil {
		return err
	}
	err = c.Create(ctx, u, client.FieldOwner(FieldOwner))
	switch {
	case err == nil, apierrors.IsAlreadyExists(err):
		return nil
	default:
		return fmt.Errorf("creating the AppPlatform %s: %w", u.GetName(), err)
	}
}
