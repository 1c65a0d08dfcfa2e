package appnamespace

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

const (
	// FieldOwner is the server-side apply field manager of what the
	// controller writes in workload clusters.
	FieldOwner = "strata-appnamespace"
	// Finalizer keeps an AppNamespace until its namespace is gone.
	Finalizer = "apps.strata.dev/app-namespace"
	// QuotaName is the namespace's ResourceQuota.
	QuotaName = "strata-quota"
	// ownerBindingPrefix starts the names of the owners' RoleBindings.
	ownerBindingPrefix = "strata-owner-"
)

// podSecurityLabel enforces a Pod Security level in the namespace.
const podSecurityLabel = "pod-security.kubernetes.io/enforce"

// namespaceLabels are the labels of the namespace made for an AppNamespace:
// the workload controllers read the app and node profile from them. Pod
// Security's baseline level keeps owners with edit from running privileged,
// host-network or hostPath pods, which would own the Node.
func namespaceLabels(an *appsv1alpha1.AppNamespace) map[string]string {
	return map[string]string{
		appsv1alpha1.AppLabel:          an.Spec.App,
		appsv1alpha1.TenantLabel:       string(an.Spec.Tenant),
		appsv1alpha1.AppNamespaceLabel: an.Name,
		fleetv1alpha1.NodeProfileLabel: an.Spec.NodeProfile,
		podSecurityLabel:               "baseline",
	}
}

// ownedLabels label the RoleBindings and ResourceQuota of an AppNamespace.
func ownedLabels(an *appsv1alpha1.AppNamespace) map[string]string {
	return map[string]string{
		appsv1alpha1.AppLabel:          an.Spec.App,
		appsv1alpha1.AppNamespaceLabel: an.Name,
	}
}

// desiredNamespace is the namespace of an AppNamespace; its name is the
// AppNamespace's.
func desiredNamespace(an *appsv1alpha1.AppNamespace) *corev1ac.NamespaceApplyConfiguration {
	return corev1ac.Namespace(an.Name).WithLabels(namespaceLabels(an))
}

// desiredQuota is the namespace's ResourceQuota: what its pods may request
// in all.
func desiredQuota(an *appsv1alpha1.AppNamespace) *corev1ac.ResourceQuotaApplyConfiguration {
	return corev1ac.ResourceQuota(QuotaName, an.Name).
		WithLabels(ownedLabels(an)).
		WithSpec(corev1ac.ResourceQuotaSpec().WithHard(quotaHard(an.Spec.Quota)))
}

// desiredHubQuota is the ResourceQuota of the namespace on the hub: no
// pods. The apps are declared there and run in the clusters, where the
// quota is enforced; nothing runs on the hub.
func desiredHubQuota(an *appsv1alpha1.AppNamespace) *corev1ac.ResourceQuotaApplyConfiguration {
	return corev1ac.ResourceQuota(QuotaName, an.Name).
		WithLabels(ownedLabels(an)).
		WithSpec(corev1ac.ResourceQuotaSpec().WithHard(corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}))
}

// quotaHard turns the AppNamespace's quota into ResourceQuota limits on
// requests: cpu -> requests.cpu, memory -> requests.memory, likewise
// ephemeral-storage and extended resources (example.com/gpu ->
// requests.example.com/gpu); names that are already quota names (pods,
// requests.cpu, limits.memory, count/services...) are kept.
func quotaHard(quota corev1.ResourceList) corev1.ResourceList {
	hard := corev1.ResourceList{}
	for name, q := range quota {
		switch {
		case name == corev1.ResourceCPU, name == corev1.ResourceMemory, name == corev1.ResourceEphemeralStorage, extended(name):
			hard["requests."+name] = q.DeepCopy()
		default:
			hard[name] = q.DeepCopy()
		}
	}
	return hard
}

// extended says whether a name is an extended resource (example.com/gpu)
// rather than a quota name (requests.example.com/gpu, count/pods).
func extended(name corev1.ResourceName) bool {
	n := string(name)
	return strings.Contains(n, "/") && !strings.HasPrefix(n, "requests.") && !strings.HasPrefix(n, "limits.") && !strings.HasPrefix(n, "count/")
}

// roleBindingName names an owner's RoleBinding: role and kind, and a hash of
// the subject's name, which may hold characters a name may not (e-mail
// addresses, "system:" groups). The role is in the name because a
// RoleBinding's roleRef cannot change: a new role is a new binding.
func roleBindingName(o appsv1alpha1.Owner) string {
	sum := sha256.Sum256([]byte(o.Name))
	return ownerBindingPrefix + string(o.Role) + "-" + strings.ToLower(string(o.Kind)) + "-" + hex.EncodeToString(sum[:])[:10]
}

// desiredRoleBindings are one RoleBinding per owner, to the ClusterRole of
// its role (view, edit or admin), in owner order.
func desiredRoleBindings(an *appsv1alpha1.AppNamespace) []*rbacv1ac.RoleBindingApplyConfiguration {
	bindings := make([]*rbacv1ac.RoleBindingApplyConfiguration, 0, len(an.Spec.Owners))
	for _, o := range an.Spec.Owners {
		bindings = append(bindings, rbacv1ac.RoleBinding(roleBindingName(o), an.Name).
			WithLabels(ownedLabels(an)).
			WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(string(o.Role))).
			WithSubjects(rbacv1ac.Subject().WithAPIGroup(rbacv1.GroupName).WithKind(string(o.Kind)).WithName(o.Name)))
	}
	return bindings
}

// staleRoleBindings are the owner RoleBindings made for the AppNamespace
// that no owner asks for any more: removed owners, changed roles.
func staleRoleBindings(an *appsv1alpha1.AppNamespace, existing []rbacv1.RoleBinding) []string {
	want := map[string]bool{}
	for _, o := range an.Spec.Owners {
		want[roleBindingName(o)] = true
	}
	var stale []string
	for i := range existing {
		rb := &existing[i]
		if rb.Labels[appsv1alpha1.AppNamespaceLabel] != an.Name || !strings.HasPrefix(rb.Name, ownerBindingPrefix) || want[rb.Name] {
			continue
		}
		stale = append(stale, rb.Name)
	}
	return stale
}

// outcome is what a reconcile found: the Ready condition to report and
// the clusters the namespace is on.
type outcome struct {
	// placements are, for tenants stateless and stateful, the clusters
	// chosen, in order; nil keeps those of the status.
	placements []appsv1alpha1.ClusterPlacement
	// clusters are, for tenant batch, the workload clusters that have the
	// namespace.
	clusters []string
	reason   string
	message  string
	// unreachable: a placed cluster could not be reached, though the
	// namespace is in place on others.
	unreachable bool
	// terminating: being deleted, its namespace is terminating somewhere.
	terminating bool
}

// clusterStep is how the namespace stands in one cluster it is placed on.
type clusterStep struct {
	cluster string
	// reason is "" when the namespace is in place there; else
	// ClusterUnavailable or DeletingNamespace, said by message.
	reason, message string
	// unreachable: the cluster is not registered, not Ready or cannot be
	// connected to (rather than answering and refusing).
	unreachable bool
}

// placedOutcome is the Ready condition of a namespace placed on clusters,
// from how it stands in each; short says, when it is on fewer clusters
// than asked, how many and why no other fits.
//
//   - A cluster that answers but refused a write, or where the namespace is
//     terminating, makes Ready False with that reason (ClusterUnavailable,
//     DeletingNamespace): the namespace is not in step there.
//   - An unreachable cluster makes Ready False, ClusterUnavailable, only
//     when the namespace is in place on no placed cluster. Otherwise Ready
//     stays True and the message names it ("unreachable, retried"): the
//     apps run on the others, and are moved off it by the hub meanwhile.
//   - On fewer clusters than asked: Ready False, TooFewClusters.
//   - Else NamespaceReady.
//
// With one cluster the message is that cluster's.
func placedOutcome(an *appsv1alpha1.AppNamespace, placed []appsv1alpha1.ClusterPlacement, steps []clusterStep, short string) outcome {
	var (
		inPlace, unreachable, failed []string
		reason                       string
	)
	for _, s := range steps {
		switch {
		case s.reason == "":
			inPlace = append(inPlace, s.cluster)
		case s.unreachable:
			unreachable = append(unreachable, s.message)
		default:
			failed = append(failed, s.message)
			if reason != appsv1alpha1.ClusterUnavailableReason {
				reason = s.reason
			}
		}
	}
	where := ""
	if len(inPlace) > 0 {
		where = fmt.Sprintf("namespace %s in %s, %s, quota %s", an.Name, clustersPhrase(inPlace), countOwners(len(an.Spec.Owners)), formatList(an.Spec.Quota))
		if len(inPlace) > 1 {
			where += " in each"
		}
	}
	out := outcome{placements: placed, unreachable: len(unreachable) > 0}
	switch {
	case len(failed) > 0:
		out.reason, out.message = reason, join(append(failed, unreachable...), where)
	case len(inPlace) == 0:
		out.reason, out.message = appsv1alpha1.ClusterUnavailableReason, join(unreachable)
	default:
		if len(unreachable) > 0 {
			where += "; unreachable, retried: " + join(unreachable)
		}
		out.reason, out.message = appsv1alpha1.NamespaceReadyReason, where
		if short != "" {
			out.reason, out.message = appsv1alpha1.TooFewClustersReason, where+"; "+short
		}
	}
	return out
}

// clustersPhrase reads "cluster w1" or "clusters w1, w2".
func clustersPhrase(names []string) string {
	if len(names) == 1 {
		return "cluster " + names[0]
	}
	return "clusters " + strings.Join(names, ", ")
}

// join joins the non-empty parts with "; ".
func join(parts []string, more ...string) string {
	return strings.Join(slices.DeleteFunc(append(slices.Clone(parts), more...), func(s string) bool { return s == "" }), "; ")
}

// desiredStatus is the AppNamespace's status for an outcome. A transition
// time is kept while the condition's status stays.
func desiredStatus(an *appsv1alpha1.AppNamespace, out outcome, now metav1.Time) appsv1alpha1.AppNamespaceStatus {
	status := *an.Status.DeepCopy()
	status.ObservedGeneration = an.Generation
	if len(out.placements) > 0 {
		// placements only grow, so placements[0] stays the first cluster.
		status.Placements = out.placements
		status.Cluster = out.placements[0].Cluster
		status.Clusters = clusterNames(out.placements)
		status.Namespace = an.Name
	}
	if an.Spec.Tenant == appsv1alpha1.BatchTenant {
		status.Clusters = out.clusters
		status.Namespace = an.Name
	}
	cond := metav1.Condition{
		Type:               appsv1alpha1.AppNamespaceReadyCondition,
		Status:             metav1.ConditionFalse,
		Reason:             out.reason,
		Message:            out.message,
		ObservedGeneration: an.Generation,
		LastTransitionTime: now,
	}
	if out.reason == appsv1alpha1.NamespaceReadyReason {
		cond.Status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&status.Conditions, cond)
	return status
}
