package guardrails

import (
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// Paths of the webhook's checks, below the base URL that NewHandler's
// handler is served at.
const (
	NamespaceDeletePath = "/validate-namespace-delete"
	CRDDeletePath       = "/validate-crd-delete"
	EvictionPath        = "/validate-pod-eviction"
	ScalePath           = "/validate-scale"
)

// Names of the ValidatingWebhookConfigurations.
const (
	HubWebhookConfiguration      = "strata-hub-guardrails"
	WorkloadWebhookConfiguration = "strata-workload-guardrails"
)

// timeoutSeconds bounds each call of the webhook; its lookups are a few
// lists of one item.
const timeoutSeconds = 5

// HubWebhooks is the hub's webhook configuration: CRD deletes, checked at
// baseURL + CRDDeletePath.
func HubWebhooks(baseURL string, caBundle []byte) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return webhookConfiguration(HubWebhookConfiguration, crdDelete(baseURL, caBundle))
}

// WorkloadWebhooks is a workload cluster's webhook configuration: namespace
// deletes, CRD deletes, pod evictions and the scale subresource of
// Deployments and ReplicaSets, checked at baseURL + NamespaceDeletePath,
// CRDDeletePath, EvictionPath and ScalePath.
func WorkloadWebhooks(baseURL string, caBundle []byte) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return webhookConfiguration(WorkloadWebhookConfiguration,
		namespaceDelete(baseURL, caBundle), crdDelete(baseURL, caBundle), eviction(baseURL, caBundle), scale(baseURL, caBundle))
}

func webhookConfiguration(name string, hooks ...admissionregistrationv1.ValidatingWebhook) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks:   hooks,
	}
}

// The match conditions spare the webhook the requests it would allow anyway,
// so these still pass while Strata's webhook server is down (failurePolicy
// Fail refuses the rest then). The handler checks the same again.
var (
	notOverridden = admissionregistrationv1.MatchCondition{Name: "not-overridden", Expression: `!(` + allowDelete + `)`}
	notDeleting   = admissionregistrationv1.MatchCondition{Name: "not-deleting", Expression: `!has(oldObject.metadata.deletionTimestamp)`}
	notKube       = admissionregistrationv1.MatchCondition{Name: "not-kube-namespace", Expression: `!oldObject.metadata.name.startsWith('kube-')`}
)

func namespaceDelete(baseURL string, caBundle []byte) admissionregistrationv1.ValidatingWebhook {
	hook := webhook("namespace-delete.guardrails.strata.dev", strings.TrimSuffix(baseURL, "/")+NamespaceDeletePath, caBundle, "", "namespaces")
	hook.MatchConditions = []admissionregistrationv1.MatchCondition{notKube, notDeleting, notOverridden}
	return hook
}

func crdDelete(baseURL string, caBundle []byte) admissionregistrationv1.ValidatingWebhook {
	hook := webhook("crd-delete.guardrails.strata.dev", strings.TrimSuffix(baseURL, "/")+CRDDeletePath, caBundle, "apiextensions.k8s.io", "customresourcedefinitions")
	hook.MatchConditions = []admissionregistrationv1.MatchCondition{notDeleting, notOverridden}
	return hook
}

// statefulNamespaces selects the namespaces that the AppNamespace controller
// made for AppNamespaces of tenant stateful (it labels them with the tenant
// and the AppNamespace), and never Kubernetes' or Strata's own, whatever
// their labels: the only namespaces where StatefulApps live (the
// stateful-namespace policy).
var statefulNamespaces = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
	{Key: appsv1alpha1.TenantLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{string(appsv1alpha1.StatefulTenant)}},
	{Key: appsv1alpha1.AppNamespaceLabel, Operator: metav1.LabelSelectorOpExists},
	{Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: systemNamespaces},
}}

// eviction calls url on CREATE of pods/eviction in the namespaces of
// stateful tenants (statefulNamespaces). The webhook cannot select by the
// pod's labels (an objectSelector of a subresource request sees the
// Eviction, which has none), so it is called for every eviction there and
// reads the pod itself.
//
// It fails closed, in those namespaces only: while Strata's webhook server
// is down, their pods are not evicted, so no StatefulApp pod goes unchecked
// (an eviction let through then could take a shard below its quorum). The
// price is that a drain of a Node with such pods waits for the webhook to
// come back, as it waits for a PodDisruptionBudget; the drains of Nodes
// without pods of stateful tenants, kube-system's included, never call it.
func eviction(baseURL string, caBundle []byte) admissionregistrationv1.ValidatingWebhook {
	hook := webhook("pod-eviction.guardrails.strata.dev", strings.TrimSuffix(baseURL, "/")+EvictionPath, caBundle, "", "pods/eviction")
	hook.Rules[0].Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.Create}
	hook.Rules[0].Scope = ptr.To(admissionregistrationv1.NamespacedScope)
	hook.NamespaceSelector = statefulNamespaces.DeepCopy()
	return hook
}

// systemNamespaces are Kubernetes' and Strata's own namespaces, where no
// StatelessApp lives: their Deployments scale without the scale webhook,
// also while it is down.
var systemNamespaces = []string{metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease, strataNamespace}

// scale calls url on UPDATE (kubectl scale patches) of the scale
// subresource of Deployments and ReplicaSets. Its object is a Scale, which
// carries none of the labels that tell what a StatelessApp expands into, so
// the webhook reads the Deployment or ReplicaSet itself. The match
// conditions spare it what it would allow without a look: Strata's own
// requests and those that leave the replicas as they are. It fails closed
// like the others: while Strata's webhook server is down, a Deployment
// outside the system namespaces does not scale through the subresource
// (autoscalers included); Strata's controllers write the Deployment itself.
func scale(baseURL string, caBundle []byte) admissionregistrationv1.ValidatingWebhook {
	hook := webhook("scale.guardrails.strata.dev", strings.TrimSuffix(baseURL, "/")+ScalePath, caBundle, "apps", "deployments/scale")
	hook.Rules[0].Resources = append(hook.Rules[0].Resources, "replicasets/scale")
	hook.Rules[0].Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.Update}
	hook.Rules[0].Scope = ptr.To(admissionregistrationv1.NamespacedScope)
	hook.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: systemNamespaces,
	}}}
	hook.MatchConditions = []admissionregistrationv1.MatchCondition{
		{Name: "not-strata", Expression: `!(` + byStrata + `)`},
		{Name: "replicas-change", Expression: `(` + replicas("object") + `) != (` + replicas("oldObject") + `)`},
	}
	return hook
}

// webhook calls url on DELETE of a cluster-scoped resource (of version
// v1), failing closed.
func webhook(name, url string, caBundle []byte, group, resource string) admissionregistrationv1.ValidatingWebhook {
	return admissionregistrationv1.ValidatingWebhook{
		Name:         name,
		ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To(url), CABundle: caBundle},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: []string{resource},
				Scope: ptr.To(admissionregistrationv1.ClusterScope),
			},
		}},
		FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
		MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		TimeoutSeconds:          ptr.To[int32](timeoutSeconds),
		AdmissionReviewVersions: []string{"v1"},
	}
}
