package guardrails

import (
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Paths of the webhook's checks, below the base URL that NewHandler's
// handler is served at.
const (
	NamespaceDeletePath = "/validate-namespace-delete"
	CRDDeletePath       = "/validate-crd-delete"
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
// deletes and CRD deletes, checked at baseURL + NamespaceDeletePath and
// baseURL + CRDDeletePath.
func WorkloadWebhooks(baseURL string, caBundle []byte) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return webhookConfiguration(WorkloadWebhookConfiguration, namespaceDelete(baseURL, caBundle), crdDelete(baseURL, caBundle))
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
	hook := webhook("namespace-delete.guardrails.strata.dev", strings.TrimSuffix(baseURL, "/")+NamespaceDeletePath, caBundle, "", "v1", "namespaces")
	hook.MatchConditions = []admissionregistrationv1.MatchCondition{notKube, notDeleting, notOverridden}
	return hook
}

func crdDelete(baseURL string, caBundle []byte) admissionregistrationv1.ValidatingWebhook {
	hook := webhook("crd-delete.guardrails.strata.dev", strings.TrimSuffix(baseURL, "/")+CRDDeletePath, caBundle, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
	hook.MatchConditions = []admissionregistrationv1.MatchCondition{notDeleting, notOverridden}
	return hook
}

// webhook calls url on DELETE of a cluster-scoped resource, failing closed.
func webhook(name, url string, caBundle []byte, group, version, resource string) admissionregistrationv1.ValidatingWebhook {
	return admissionregistrationv1.ValidatingWebhook{
		Name:         name,
		ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To(url), CABundle: caBundle},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{group}, APIVersions: []string{version}, Resources: []string{resource},
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
