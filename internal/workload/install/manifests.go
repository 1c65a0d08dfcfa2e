package install

import (
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/workload/guardrails"
)

// HubObjects are what Hub applies besides the CRDs, with the webhook
// configuration of wh (none when wh.URL is empty); the release manifests
// are generated from them (hack/manifests), so that `strata up` and a
// production install put the same guardrails in place.
func HubObjects(wh Webhook) []client.Object {
	var hooks client.Object
	if wh.URL != "" {
		hooks = guardrails.HubWebhooks(wh.URL, wh.CABundle)
	}
	return setObjects(guardrails.HubPolicies(), hooks, hubClusterRoles()...)
}

// WorkloadObjects are what Workload applies besides the CRDs, as
// HubObjects are for Hub, and the AppPlatform "default" it creates when
// there is none.
func WorkloadObjects(wh Webhook) []client.Object {
	var hooks client.Object
	if wh.URL != "" {
		hooks = guardrails.WorkloadWebhooks(wh.URL, wh.CABundle)
	}
	return append(setObjects(guardrails.WorkloadPolicies(), hooks, slices.Concat(clusterRoles(), []client.Object{LocalSSD()}, jobGangPolicy())...), DefaultPlatform())
}

// setObjects are the objects applySet applies for a set.
func setObjects(policies []guardrails.Policy, hooks client.Object, others ...client.Object) []client.Object {
	objs := append([]client.Object(nil), others...)
	for _, p := range policies {
		objs = append(objs, p.Policy, p.Binding)
	}
	if hooks != nil {
		objs = append(objs, hooks)
	}
	return objs
}
