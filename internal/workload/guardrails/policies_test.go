package guardrails

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// matched lists "operation resource.group" for each rule of a policy.
func matched(p Policy) []string {
	var out []string
	for _, r := range p.Policy.Spec.MatchConstraints.ResourceRules {
		for _, op := range r.Operations {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					out = append(out, string(op)+" "+res+"."+g)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestPoliciesMatch(t *testing.T) {
	byName := map[string]Policy{}
	for _, p := range append(HubPolicies(), WorkloadPolicies()...) {
		byName[p.Policy.Name] = p
	}
	want := map[string][]string{
		HubDeleteProtectionPolicy: {"DELETE appnamespaces.apps.strata.dev", "DELETE clusters.fleet.strata.dev", "DELETE pools.fleet.strata.dev", "DELETE statelessapps.apps.strata.dev"},
		WorkloadDeleteProtectionPolicy: {
			"DELETE appplatforms.apps.strata.dev", "DELETE statefulapps.apps.strata.dev", "DELETE statelessapps.apps.strata.dev",
		},
		// UPDATE only: a CREATE has no replicas to lose; the scale
		// subresource is where kubectl scale and autoscalers write.
		ScaleDownPolicy:     {"UPDATE statelessapps.apps.strata.dev", "UPDATE statelessapps/scale.apps.strata.dev"},
		RolloutBoundsPolicy: {"CREATE statelessapps.apps.strata.dev", "UPDATE statelessapps.apps.strata.dev"},
		// Their scale subresource is the webhook's (the Scale has no labels).
		ManagedObjectsPolicy: {
			"DELETE deployments.apps", "DELETE poddisruptionbudgets.policy", "DELETE replicasets.apps", "DELETE services.",
			"UPDATE deployments.apps", "UPDATE poddisruptionbudgets.policy", "UPDATE replicasets.apps", "UPDATE services.",
		},
		// CREATE only: spec.managedBy cannot change.
		HubQueuedJobsPolicy: {"CREATE jobs.batch"},
		// CREATE only: a StatefulApp cannot change namespace.
		StatefulNamespacePolicy: {"CREATE statefulapps.apps.strata.dev"},
	}
	if len(byName) != len(want) {
		t.Errorf("policies %v, want %d", slices.Sorted(maps.Keys(byName)), len(want))
	}
	for name, w := range want {
		p, ok := byName[name]
		if !ok {
			t.Errorf("no policy %s", name)
			continue
		}
		if diff := cmp.Diff(w, matched(p)); diff != "" {
			t.Errorf("%s matches (-want +got):\n%s", name, diff)
		}
	}
}

func TestPoliciesAreBoundToDeny(t *testing.T) {
	for _, p := range append(HubPolicies(), WorkloadPolicies()...) {
		name := p.Policy.Name
		b := p.Binding.Spec
		if p.Binding.Name != name || b.PolicyName != name {
			t.Errorf("%s: binding %s binds %s", name, p.Binding.Name, b.PolicyName)
		}
		if diff := cmp.Diff([]admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}, b.ValidationActions); diff != "" {
			t.Errorf("%s: validationActions (-want +got):\n%s", name, diff)
		}
		if fp := p.Policy.Spec.FailurePolicy; fp == nil || *fp != admissionregistrationv1.Fail {
			t.Errorf("%s: failurePolicy %v, want Fail", name, fp)
		}
		switch params := p.Policy.Spec.ParamKind != nil; {
		case params && (b.ParamRef == nil || b.ParamRef.Name != "default" || b.ParamRef.ParameterNotFoundAction == nil ||
			*b.ParamRef.ParameterNotFoundAction != admissionregistrationv1.AllowAction):
			t.Errorf("%s: paramRef %+v, want the AppPlatform default, allowing when it is missing", name, b.ParamRef)
		case !params && b.ParamRef != nil:
			t.Errorf("%s: paramRef without a paramKind", name)
		}
		for _, v := range p.Policy.Spec.Validations {
			if !strings.HasPrefix(v.Message, Prefix) || !strings.Contains(v.MessageExpression, Prefix) {
				t.Errorf("%s: validation %q: message %q and messageExpression must name the guardrail", name, v.Expression, v.Message)
			}
		}
	}
}

func TestWebhooks(t *testing.T) {
	ca := []byte("CA")
	for _, base := range []string{"https://127.0.0.1:9443/clusters/w1", "https://127.0.0.1:9443/clusters/w1/"} {
		hub := HubWebhooks(base, ca)
		workload := WorkloadWebhooks(base, ca)
		got := map[string][]string{}
		for _, cfg := range []*admissionregistrationv1.ValidatingWebhookConfiguration{hub, workload} {
			for _, w := range cfg.Webhooks {
				got[cfg.Name] = append(got[cfg.Name], *w.ClientConfig.URL)
				if string(w.ClientConfig.CABundle) != "CA" {
					t.Errorf("%s: caBundle %q", w.Name, w.ClientConfig.CABundle)
				}
				wantOp := admissionregistrationv1.Delete
				switch w.Name {
				case "pod-eviction.guardrails.strata.dev":
					wantOp = admissionregistrationv1.Create
				case "scale.guardrails.strata.dev":
					wantOp = admissionregistrationv1.Update
				}
				if *w.FailurePolicy != admissionregistrationv1.Fail || *w.SideEffects != admissionregistrationv1.SideEffectClassNone ||
					*w.TimeoutSeconds != 5 || len(w.Rules[0].Operations) != 1 || w.Rules[0].Operations[0] != wantOp {
					t.Errorf("%s: failurePolicy %s, sideEffects %s, timeout %d, operations %v", w.Name,
						*w.FailurePolicy, *w.SideEffects, *w.TimeoutSeconds, w.Rules[0].Operations)
				}
			}
		}
		want := map[string][]string{
			HubWebhookConfiguration: {"https://127.0.0.1:9443/clusters/w1/validate-crd-delete"},
			WorkloadWebhookConfiguration: {
				"https://127.0.0.1:9443/clusters/w1/validate-namespace-delete",
				"https://127.0.0.1:9443/clusters/w1/validate-crd-delete",
				"https://127.0.0.1:9443/clusters/w1/validate-pod-eviction",
				"https://127.0.0.1:9443/clusters/w1/validate-scale",
			},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("base %s: webhook URLs (-want +got):\n%s", base, diff)
		}
	}
}

func TestEvictionWebhook(t *testing.T) {
	var hook *admissionregistrationv1.ValidatingWebhook
	for _, w := range WorkloadWebhooks("https://127.0.0.1:9443", nil).Webhooks {
		if w.Name == "pod-eviction.guardrails.strata.dev" {
			hook = &w
		}
	}
	if hook == nil {
		t.Fatal("the workload webhooks check no eviction")
	}
	want := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule: admissionregistrationv1.Rule{
			APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods/eviction"},
			Scope: ptr.To(admissionregistrationv1.NamespacedScope),
		},
	}}
	if diff := cmp.Diff(want, hook.Rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	// The namespaces of stateful AppNamespaces only, never Kubernetes' or
	// Strata's own, nor one Strata did not make: an outage of the webhook
	// blocks no other drain.
	wantSelector := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "apps.strata.dev/tenant", Operator: metav1.LabelSelectorOpIn, Values: []string{"stateful"}},
		{Key: "apps.strata.dev/app-namespace", Operator: metav1.LabelSelectorOpExists},
		{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn,
			Values: []string{"kube-system", "kube-public", "kube-node-lease", "strata-system"}},
	}}
	if diff := cmp.Diff(wantSelector, hook.NamespaceSelector); diff != "" {
		t.Errorf("namespaceSelector (-want +got):\n%s", diff)
	}
	if hook.ObjectSelector != nil || len(hook.MatchConditions) != 0 {
		t.Errorf("objectSelector %v, matchConditions %v: the Eviction carries none of the pod's labels", hook.ObjectSelector, hook.MatchConditions)
	}
	if *hook.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("failurePolicy %s, want Fail: no StatefulApp pod goes unchecked", *hook.FailurePolicy)
	}
}

func TestScaleWebhook(t *testing.T) {
	var hook *admissionregistrationv1.ValidatingWebhook
	for _, w := range WorkloadWebhooks("https://127.0.0.1:9443", nil).Webhooks {
		if w.Name == "scale.guardrails.strata.dev" {
			hook = &w
		}
	}
	if hook == nil {
		t.Fatal("the workload webhooks check no scale subresource")
	}
	want := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{
			APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments/scale", "replicasets/scale"},
			Scope: ptr.To(admissionregistrationv1.NamespacedScope),
		},
	}}
	if diff := cmp.Diff(want, hook.Rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	// Kubernetes' and Strata's own namespaces never wait on the webhook.
	wantSelector := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn,
		Values: []string{"kube-system", "kube-public", "kube-node-lease", "strata-system"},
	}}}
	if diff := cmp.Diff(wantSelector, hook.NamespaceSelector); diff != "" {
		t.Errorf("namespaceSelector (-want +got):\n%s", diff)
	}
	wantConditions := []admissionregistrationv1.MatchCondition{
		{Name: "not-strata", Expression: "!(request.userInfo.username.startsWith('system:serviceaccount:strata-system:'))"},
		{Name: "replicas-change", Expression: "(has(object.spec.replicas) ? object.spec.replicas : 0) != " +
			"(has(oldObject.spec.replicas) ? oldObject.spec.replicas : 0)"},
	}
	if diff := cmp.Diff(wantConditions, hook.MatchConditions); diff != "" {
		t.Errorf("matchConditions (-want +got):\n%s", diff)
	}
	if hook.ObjectSelector != nil || *hook.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("objectSelector %v (a Scale has no labels), failurePolicy %s (want Fail)", hook.ObjectSelector, *hook.FailurePolicy)
	}
}
