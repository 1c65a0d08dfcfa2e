// Package guardrails is Strata's admission control: the rules that stop a
// user from doing by accident what cannot be undone or what would hurt an
// app at once. Rules that need only the request (and the AppPlatform's
// bounds) are ValidatingAdmissionPolicies written in CEL, which the API
// server evaluates itself; rules that need to look at other objects (is the
// namespace empty, does the CRD still have objects, is the pod to evict a
// StatefulApp's and did its shard manager approve, is the Deployment whose
// Scale changes a StatelessApp's) are a webhook served by
// Strata (NewHandler), with its own certificates (Certificates).
//
// Every denial starts with "strata-guardrail: <rule>:" and says how to
// proceed. docs/guardrails.md describes each rule.
package guardrails

import (
	"fmt"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// Rules, as they are named in every denial ("strata-guardrail: <rule>: ...").
const (
	// DeleteProtectionRule: user-facing Strata objects are deleted only with
	// the AllowDeleteAnnotation set to "true".
	DeleteProtectionRule = "delete-protection"
	// ScaleDownRule: a StatelessApp loses at most the AppPlatform's
	// maxScaleDownPercent of its replicas in one change (at least one).
	ScaleDownRule = "scale-down"
	// MaxSurgeRule: a StatelessApp's maxSurgePercent stays within the
	// AppPlatform's bound.
	MaxSurgeRule = "max-surge"
	// MaxCanaryRule: a StatelessApp's canary.percent stays within the
	// AppPlatform's bound.
	MaxCanaryRule = "max-canary"
	// NamespaceNotEmptyRule: a namespace that holds workloads is deleted only
	// with the AllowDeleteAnnotation set to "true".
	NamespaceNotEmptyRule = "namespace-not-empty"
	// CRDInUseRule: a CRD is deleted only when no object of it is left (or
	// with the AllowDeleteAnnotation set to "true").
	CRDInUseRule = "crd-in-use"
	// ManagedObjectRule: the Deployments (and their ReplicaSets), Services
	// and PodDisruptionBudgets a StatelessApp expands into change only
	// through the StatelessApp; their replicas only by Strata.
	ManagedObjectRule = "managed-object"
	// StatefulEvictionRule: a pod of a StatefulApp is evicted only with its
	// shard manager's approval (the pod's StopApprovedAnnotation, unexpired).
	StatefulEvictionRule = "stateful-eviction"
	// StatefulNamespaceRule: a StatefulApp is created only in the namespace
	// of an AppNamespace of tenant stateful, the only namespaces whose
	// evictions the stateful-eviction webhook sees.
	StatefulNamespaceRule = "stateful-namespace"
	// QueuedJobRule: a Job created on the hub in a queue is MultiKueue's
	// (spec.managedBy), so that Kueue sends it to a workload cluster.
	QueuedJobRule = "queued-job"
)

// Prefix starts every denial of a guardrail.
const Prefix = "strata-guardrail: "

// Fallbacks of the AppPlatform's guardrails, used by the policies when the
// AppPlatform leaves a bound out (its CRD defaults it, so only an object
// stored before the default existed lacks it). They equal the CRD defaults.
const (
	defaultMaxScaleDownPercent = 50
	defaultMaxSurgePercent     = 50
	defaultMaxCanaryPercent    = 50
)

// Policy is a ValidatingAdmissionPolicy and the binding that puts it in
// force (validationActions Deny). They share the policy's name.
type Policy struct {
	Policy  *admissionregistrationv1.ValidatingAdmissionPolicy
	Binding *admissionregistrationv1.ValidatingAdmissionPolicyBinding
}

// Names of the policies (and of their bindings).
const (
	HubDeleteProtectionPolicy      = "strata-hub-delete-protection"
	WorkloadDeleteProtectionPolicy = "strata-workload-delete-protection"
	ScaleDownPolicy                = "strata-scale-down"
	RolloutBoundsPolicy            = "strata-rollout-bounds"
	ManagedObjectsPolicy           = "strata-managed-objects"
	StatefulNamespacePolicy        = "strata-stateful-namespace"
	HubQueuedJobsPolicy            = "strata-hub-queued-jobs"
)

// HubPolicies are the policies of the hub: delete protection of
// AppNamespaces, the StatelessApps declared there (deleting one deletes it
// from every cluster), Pools and Clusters, and queued Jobs sent on by
// MultiKueue.
func HubPolicies() []Policy {
	return []Policy{
		deleteProtection(HubDeleteProtectionPolicy,
			resources(appsv1alpha1.GroupVersion.Group, "appnamespaces", "statelessapps"),
			resources(fleetv1alpha1.GroupVersion.Group, "pools", "clusters"),
		),
		queuedJobs(),
	}
}

// WorkloadPolicies are the policies of a workload cluster: delete protection
// of StatelessApps, StatefulApps and of the AppPlatform, the scale-down
// bound (through the scale subresource too), the bounds on surge and canary
// share, and where StatefulApps may be created.
func WorkloadPolicies() []Policy {
	return []Policy{
		deleteProtection(WorkloadDeleteProtectionPolicy,
			resources(appsv1alpha1.GroupVersion.Group, "statelessapps", "statefulapps", "appplatforms"),
		),
		scaleDown(),
		rolloutBounds(),
		managedObjects(),
		statefulNamespace(),
	}
}

// Who writes what a StatelessApp expands into, as the managed-object rule
// tells them apart by the request's username and groups. The policy's CEL
// (managedObjects) and the webhook's Go (scaleUpdate) read these same
// names: there is one notion of who Strata is.
const (
	// strataNamespace is Strata's own namespace.
	strataNamespace = "strata-system"
	// StrataControllers prefixes the usernames of Strata's controllers:
	// service accounts of strata-system. Only they change the replicas of
	// a managed object; the local datacenter runs its app controllers as
	// one of them.
	StrataControllers = "system:serviceaccount:" + strataNamespace + ":"
	// kubernetesControllers prefixes the usernames of Kubernetes' own
	// controllers (garbage collector, namespace, deployment and
	// replica-set controllers): service accounts of kube-system.
	kubernetesControllers = "system:serviceaccount:kube-system:"
	// clusterAdmins is the group of cluster admins; kwok's
	// kube-controller-manager runs in it too (it uses the admin
	// kubeconfig), so it is not refused labels, spec or deletes.
	clusterAdmins = "system:masters"
)

// CEL forms of the same: whether the request is Strata's, and whether it is
// Kubernetes' controllers' or a cluster admin's.
const (
	byStrata       = `request.userInfo.username.startsWith('` + StrataControllers + `')`
	byKubeOrAdmins = `request.userInfo.username.startsWith('` + kubernetesControllers + `') || ` +
		`'` + clusterAdmins + `' in request.userInfo.groups`
)

// isStrata is byStrata for the webhook.
func isStrata(username string) bool { return strings.HasPrefix(username, StrataControllers) }

// managedReplicasMessage is the denial of a change of a managed object's
// replicas, in the webhook's Go; managedObjects words the same in CEL.
func managedReplicasMessage(kind, name, namespace, app string, from, to int32) string {
	return fmt.Sprintf("%s%s: %s %s is expanded from StatelessApp %s and its replicas change only through it (this asked %d -> %d); "+
		"scale the StatelessApp instead: `kubectl scale statelessapp %s -n %s --replicas=N` (N counts all of its replicas; "+
		"one step removes at most the AppPlatform's maxScaleDownPercent).",
		Prefix, ManagedObjectRule, kind, name, app, from, to, app, namespace)
}

// managedObjects denies changing or deleting what a StatelessApp expands
// into (the guardrails on the app would mean nothing if `kubectl delete
// deployment` or `kubectl edit pdb` went around them):
//
//   - the replicas of its Deployments change only by Strata (an admin's
//     `kubectl patch deployment` too: the pods would go before the
//     controller puts the Deployment back); the scale subresource carries
//     no labels to match on, so the webhook judges it (scaleUpdate);
//   - people (not Kubernetes' controllers, not cluster admins) change
//     neither the spec nor the labels of its Deployments, their
//     ReplicaSets, its Service or PodDisruptionBudget, nor delete them.
//
// Strata's own requests are not matched at all.
func managedObjects() Policy {
	rules := withOperations([]admissionregistrationv1.NamedRuleWithOperations{
		resources("apps", "deployments", "replicasets"),
		resources("", "services"),
		resources("policy", "poddisruptionbudgets"),
	}, admissionregistrationv1.Update, admissionregistrationv1.Delete)
	managed := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: appsv1alpha1.StatelessAppLabel, Operator: metav1.LabelSelectorOpExists,
	}}}
	// Deployments always have spec.replicas (the API server defaults it to 1).
	deploymentReplicas := func(obj string) string {
		return `has(` + obj + `.spec.replicas) ? ` + obj + `.spec.replicas : 1`
	}
	spec := admissionregistrationv1.ValidatingAdmissionPolicySpec{
		FailurePolicy:    ptr.To(admissionregistrationv1.Fail),
		MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: rules, ObjectSelector: managed},
		MatchConditions:  []admissionregistrationv1.MatchCondition{{Name: "not-strata", Expression: `!(` + byStrata + `)`}},
		Variables: []admissionregistrationv1.Variable{
			{Name: "obj", Expression: `request.operation == 'DELETE' ? oldObject : object`},
			{Name: "app", Expression: `variables.obj.metadata.labels['` + appsv1alpha1.StatelessAppLabel + `']`},
			{Name: "deploymentUpdate", Expression: `request.resource.resource == 'deployments' && request.operation == 'UPDATE'`},
			{Name: "oldReplicas", Expression: deploymentReplicas("oldObject")},
			{Name: "newReplicas", Expression: deploymentReplicas("object")},
		},
		Validations: []admissionregistrationv1.Validation{
			{
				// First: its message says how to scale, also to an owner
				// whose change the next rule refuses as well.
				Expression: `!variables.deploymentUpdate || variables.newReplicas == variables.oldReplicas`,
				MessageExpression: `'` + Prefix + ManagedObjectRule + `: ' + request.kind.kind + ' ' + object.metadata.name + ` +
					`' is expanded from StatelessApp ' + variables.app + ' and its replicas change only through it (this asked ' + ` +
					`string(variables.oldReplicas) + ' -> ' + string(variables.newReplicas) + '); scale the StatelessApp instead: ` +
					"`kubectl scale statelessapp ' + variables.app + ' -n ' + object.metadata.namespace + ' --replicas=N`" +
					` (N counts all of its replicas; one step removes at most the AppPlatform\'s maxScaleDownPercent).'`,
				Message: Prefix + ManagedObjectRule + ": the replicas of a Deployment expanded from a StatelessApp change only through it; " +
					"scale the StatelessApp instead.",
				Reason: ptr.To(metav1.StatusReasonForbidden),
			},
			{
				// An update that touches neither spec nor labels (e.g. an
				// annotation) passes; so does the namespace being emptied.
				Expression: byKubeOrAdmins + ` || (request.operation == 'UPDATE' && has(object.spec) == has(oldObject.spec) && ` +
					`(!has(object.spec) || object.spec == oldObject.spec) && object.metadata.labels == oldObject.metadata.labels)`,
				MessageExpression: `'` + Prefix + ManagedObjectRule + `: ' + request.kind.kind + ' ' + variables.obj.metadata.name + ` +
					`' is expanded from StatelessApp ' + variables.app + ' and changes only through it: ' + ` +
					`'edit the StatelessApp (kubectl edit statelessapp ' + variables.app + ' -n ' + variables.obj.metadata.namespace + ` +
					`', or kubectl scale statelessapp ...); deleting the StatelessApp deletes it.'`,
				Message: Prefix + ManagedObjectRule + ": this object is expanded from a StatelessApp and changes only through it; edit the StatelessApp.",
				Reason:  ptr.To(metav1.StatusReasonForbidden),
			},
		},
	}
	return policy(ManagedObjectsPolicy, spec, false)
}

// resources matches every version of the resources of a group.
func resources(group string, names ...string) admissionregistrationv1.NamedRuleWithOperations {
	return admissionregistrationv1.NamedRuleWithOperations{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
		Rule: admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"*"}, Resources: names},
	}}
}

func withOperations(rules []admissionregistrationv1.NamedRuleWithOperations, ops ...admissionregistrationv1.OperationType) []admissionregistrationv1.NamedRuleWithOperations {
	for i := range rules {
		rules[i].Operations = ops
	}
	return rules
}

// allowDelete is the CEL test of the override annotation on oldObject.
const allowDelete = `has(oldObject.metadata.annotations) && '` + appsv1alpha1.AllowDeleteAnnotation + `' in oldObject.metadata.annotations && ` +
	`oldObject.metadata.annotations['` + appsv1alpha1.AllowDeleteAnnotation + `'] == 'true'`

// deleteProtection denies DELETE of the resources unless the object carries
// the override annotation. Deleting an object that is already being deleted
// changes nothing and is allowed; so is the namespace controller emptying a
// terminating namespace (which the namespace guardrail let go).
func deleteProtection(name string, rules ...admissionregistrationv1.NamedRuleWithOperations) Policy {
	spec := admissionregistrationv1.ValidatingAdmissionPolicySpec{
		FailurePolicy:    ptr.To(admissionregistrationv1.Fail),
		MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: withOperations(rules, admissionregistrationv1.Delete)},
		Variables: []admissionregistrationv1.Variable{
			{Name: "overridden", Expression: allowDelete},
			{Name: "deleting", Expression: `has(oldObject.metadata.deletionTimestamp)`},
			{Name: "namespaceDeleting", Expression: `namespaceObject != null && has(namespaceObject.metadata.deletionTimestamp)`},
			// kubectl's name of the object: resource.group name [-n namespace].
			{Name: "ref", Expression: `request.resource.resource + '.' + request.resource.group + ' ' + oldObject.metadata.name + ` +
				`(has(oldObject.metadata.namespace) && oldObject.metadata.namespace != '' ? ' -n ' + oldObject.metadata.namespace : '')`},
		},
		Validations: []admissionregistrationv1.Validation{{
			Expression: `variables.overridden || variables.deleting || variables.namespaceDeleting`,
			MessageExpression: `'` + Prefix + DeleteProtectionRule + `: ' + request.kind.kind + ' ' + oldObject.metadata.name + ` +
				`' is protected against deletion. To delete it on purpose, run ` +
				"`kubectl annotate ' + variables.ref + ' " + appsv1alpha1.AllowDeleteAnnotation + "=true`" +
				` and delete it again.'`,
			Message: Prefix + DeleteProtectionRule + ": the object is protected against deletion. To delete it on purpose, annotate it " +
				appsv1alpha1.AllowDeleteAnnotation + "=true and delete it again.",
			Reason: ptr.To(metav1.StatusReasonForbidden),
		}},
	}
	return policy(name, spec, false)
}

// replicas reads spec.replicas of a StatelessApp or of its Scale (where 0 is
// left out).
func replicas(obj string) string {
	return `has(` + obj + `.spec.replicas) ? ` + obj + `.spec.replicas : 0`
}

// bound reads a guardrail of the AppPlatform (params), with a fallback.
func bound(field string, fallback int) string {
	return `has(params.spec.guardrails) && has(params.spec.guardrails.` + field + `) ? params.spec.guardrails.` + field + ` : ` + strconv.Itoa(fallback)
}

// scaleDown bounds how many replicas one UPDATE of a StatelessApp may
// remove: max(1, floor(old * maxScaleDownPercent / 100)), where old is the
// larger of the replicas asked for and those that run (status), so quick
// successive steps count as one. It matches the
// scale subresource too, whose object is an autoscaling/v1 Scale that has
// spec.replicas just like the StatelessApp (kubectl scale, autoscalers).
// CREATE has nothing to compare with and is not matched.
func scaleDown() Policy {
	spec := admissionregistrationv1.ValidatingAdmissionPolicySpec{
		FailurePolicy: ptr.To(admissionregistrationv1.Fail),
		ParamKind:     platformParam(),
		MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: withOperations([]admissionregistrationv1.NamedRuleWithOperations{
			resources(appsv1alpha1.GroupVersion.Group, "statelessapps", "statelessapps/scale"),
		}, admissionregistrationv1.Update)},
		Variables: []admissionregistrationv1.Variable{
			{Name: "oldSpec", Expression: replicas("oldObject")},
			// The share is of what runs now too: scaling 30 -> 15 -> 8 -> 4 in
			// quick steps, before the pods went, is one large scale-down.
			{Name: "oldStatus", Expression: `has(oldObject.status) && has(oldObject.status.replicas) ? oldObject.status.replicas : 0`},
			{Name: "oldReplicas", Expression: `variables.oldSpec > variables.oldStatus ? variables.oldSpec : variables.oldStatus`},
			{Name: "newReplicas", Expression: replicas("object")},
			{Name: "percent", Expression: bound("maxScaleDownPercent", defaultMaxScaleDownPercent)},
			{Name: "share", Expression: `variables.oldReplicas * variables.percent / 100`},
			{Name: "fewest", Expression: `variables.oldReplicas - (variables.share > 1 ? variables.share : 1)`},
			{Name: "ref", Expression: `object.metadata.name + ' -n ' + object.metadata.namespace`},
		},
		Validations: []admissionregistrationv1.Validation{{
			Expression: `variables.newReplicas >= variables.oldSpec || variables.newReplicas >= variables.fewest`,
			MessageExpression: `'` + Prefix + ScaleDownRule + `: StatelessApp ' + object.metadata.name + ` +
				`' may scale from ' + string(variables.oldReplicas) + ' to no fewer than ' + string(variables.fewest) + ` +
				`' now, not to ' + string(variables.newReplicas) + ` +
				`' (one change removes at most ' + string(variables.percent) + '% of the replicas, the AppPlatform default\'s spec.guardrails.maxScaleDownPercent); ' + ` +
				`'scale down in steps, e.g. ` + "`kubectl scale statelessapp ' + variables.ref + ' --replicas=' + string(variables.fewest) + '`" +
				`, and again once it is done.'`,
			Message: Prefix + ScaleDownRule + ": one change may remove at most the AppPlatform's spec.guardrails.maxScaleDownPercent of the replicas (at least one); scale down in steps.",
			Reason:  ptr.To(metav1.StatusReasonForbidden),
		}},
	}
	return policy(ScaleDownPolicy, spec, true)
}

// rolloutBounds keeps spec.maxSurgePercent and spec.canary.percent within
// the AppPlatform's bounds on CREATE and UPDATE. An UPDATE that leaves a
// value as it was passes even if the bound was lowered since (ratcheting):
// the app stays editable, e.g. scalable, until its owner lowers the value.
func rolloutBounds() Policy {
	spec := admissionregistrationv1.ValidatingAdmissionPolicySpec{
		FailurePolicy: ptr.To(admissionregistrationv1.Fail),
		ParamKind:     platformParam(),
		MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: withOperations([]admissionregistrationv1.NamedRuleWithOperations{
			resources(appsv1alpha1.GroupVersion.Group, "statelessapps"),
		}, admissionregistrationv1.Create, admissionregistrationv1.Update)},
		Variables: []admissionregistrationv1.Variable{
			{Name: "maxSurge", Expression: bound("maxSurgePercent", defaultMaxSurgePercent)},
			{Name: "maxCanary", Expression: bound("maxCanaryPercent", defaultMaxCanaryPercent)},
			{Name: "surge", Expression: `has(object.spec.maxSurgePercent) ? object.spec.maxSurgePercent : 0`},
			{Name: "oldSurge", Expression: `oldObject != null && has(oldObject.spec.maxSurgePercent) ? oldObject.spec.maxSurgePercent : -1`},
			{Name: "canary", Expression: `has(object.spec.canary) ? object.spec.canary.percent : 0`},
			{Name: "oldCanary", Expression: `oldObject != null && has(oldObject.spec.canary) ? oldObject.spec.canary.percent : -1`},
		},
		Validations: []admissionregistrationv1.Validation{
			{
				Expression: `variables.surge <= variables.maxSurge || variables.surge == variables.oldSurge`,
				MessageExpression: `'` + Prefix + MaxSurgeRule + `: StatelessApp ' + object.metadata.name + ` +
					`' asks spec.maxSurgePercent ' + string(variables.surge) + ', above the bound of ' + string(variables.maxSurge) + ` +
					`' (the AppPlatform default\'s spec.guardrails.maxSurgePercent); set spec.maxSurgePercent to at most ' + string(variables.maxSurge) + '.'`,
				Message: Prefix + MaxSurgeRule + ": spec.maxSurgePercent is above the AppPlatform's spec.guardrails.maxSurgePercent; lower it.",
				Reason:  ptr.To(metav1.StatusReasonForbidden),
			},
			{
				Expression: `variables.canary <= variables.maxCanary || variables.canary == variables.oldCanary`,
				MessageExpression: `'` + Prefix + MaxCanaryRule + `: StatelessApp ' + object.metadata.name + ` +
					`' asks spec.canary.percent ' + string(variables.canary) + ', above the bound of ' + string(variables.maxCanary) + ` +
					`' (the AppPlatform default\'s spec.guardrails.maxCanaryPercent); set spec.canary.percent to at most ' + string(variables.maxCanary) + ` +
					`' and, once the canary proves itself, promote it by setting spec.appVersion to the canary version.'`,
				Message: Prefix + MaxCanaryRule + ": spec.canary.percent is above the AppPlatform's spec.guardrails.maxCanaryPercent; lower it.",
				Reason:  ptr.To(metav1.StatusReasonForbidden),
			},
		},
	}
	return policy(RolloutBoundsPolicy, spec, true)
}

// statefulNamespace denies CREATE of a StatefulApp anywhere but in the
// namespace of an AppNamespace of tenant stateful: the eviction webhook sees
// those namespaces only (statefulNamespaces), so the pods of a StatefulApp
// elsewhere could be evicted without the shard manager's approval.
func statefulNamespace() Policy {
	spec := admissionregistrationv1.ValidatingAdmissionPolicySpec{
		FailurePolicy: ptr.To(admissionregistrationv1.Fail),
		MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: withOperations([]admissionregistrationv1.NamedRuleWithOperations{
			resources(appsv1alpha1.GroupVersion.Group, "statefulapps"),
		}, admissionregistrationv1.Create)},
		Variables: []admissionregistrationv1.Variable{
			{Name: "labels", Expression: `namespaceObject != null && has(namespaceObject.metadata.labels) ? namespaceObject.metadata.labels : {}`},
			{Name: "tenant", Expression: `'` + appsv1alpha1.TenantLabel + `' in variables.labels ? variables.labels['` + appsv1alpha1.TenantLabel + `'] : ''`},
		},
		Validations: []admissionregistrationv1.Validation{{
			Expression: `variables.tenant == '` + string(appsv1alpha1.StatefulTenant) + `' && '` + appsv1alpha1.AppNamespaceLabel + `' in variables.labels && ` +
				`!(object.metadata.namespace in ['` + strings.Join(systemNamespaces, `', '`) + `'])`,
			MessageExpression: `'` + Prefix + StatefulNamespaceRule + `: StatefulApp ' + object.metadata.name + ` +
				`' cannot be created in namespace ' + object.metadata.namespace + ` +
				`(variables.tenant != '' ? ', an app namespace of tenant ' + variables.tenant + ' (` + appsv1alpha1.TenantLabel + `)' : ', which is no app namespace of tenant stateful') + ` +
				`': the evictions of pods are checked against the shard manager\'s approval only in the namespaces of AppNamespaces of tenant stateful. ' + ` +
				`'Create it in the namespace of an AppNamespace of tenant stateful (spec.tenant: stateful).'`,
			Message: Prefix + StatefulNamespaceRule + ": a StatefulApp is created only in the namespace of an AppNamespace of tenant stateful, " +
				"where the evictions of its pods are checked against its shard manager's approval.",
			Reason: ptr.To(metav1.StatusReasonForbidden),
		}},
	}
	return policy(StatefulNamespacePolicy, spec, false)
}

// queuedJobs denies CREATE, in the hub's namespace of an AppNamespace of
// tenant batch, of a Job that names a queue (kueue.QueueNameLabel) but is
// not managed by MultiKueue. Kueue's webhook sets spec.managedBy when it
// knows the queue to be a MultiKueue one; it does not when the queue does
// not exist, or when the hub's Kueue has just started and has not read its
// queues yet. Such a Job would be admitted,
// then rejected by MultiKueue and deactivated, and never run: the hub has
// no Nodes. Refused, its author is told why and can simply create it
// again.
func queuedJobs() Policy {
	spec := admissionregistrationv1.ValidatingAdmissionPolicySpec{
		FailurePolicy: ptr.To(admissionregistrationv1.Fail),
		MatchConstraints: &admissionregistrationv1.MatchResources{
			ResourceRules: withOperations([]admissionregistrationv1.NamedRuleWithOperations{
				resources(batchv1.GroupName, "jobs"),
			}, admissionregistrationv1.Create),
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{appsv1alpha1.TenantLabel: string(appsv1alpha1.BatchTenant)}},
		},
		MatchConditions: []admissionregistrationv1.MatchCondition{{
			Name:       "queued",
			Expression: `has(object.metadata.labels) && '` + kueue.QueueNameLabel + `' in object.metadata.labels`,
		}},
		Variables: []admissionregistrationv1.Variable{
			{Name: "managedBy", Expression: `has(object.spec.managedBy) ? object.spec.managedBy : ''`},
		},
		Validations: []admissionregistrationv1.Validation{{
			Expression: `variables.managedBy == '` + kueue.MultiKueueControllerName + `'`,
			MessageExpression: `'` + Prefix + QueuedJobRule + `: Job ' + object.metadata.name + ' names the queue ' + ` +
				`object.metadata.labels['` + kueue.QueueNameLabel + `'] + ' (` + kueue.QueueNameLabel + `) of namespace ' + object.metadata.namespace + ` +
				`', but ' + (variables.managedBy == '' ? 'the hub\'s Kueue did not make it MultiKueue\'s: the queue does not exist there, ' + ` +
				`'or Kueue has just started and not read it yet; check kubectl get localqueues -n ' + object.metadata.namespace + ' and create the Job again' : ` +
				`'spec.managedBy is ' + variables.managedBy + '; leave it unset or set it to ` + kueue.MultiKueueControllerName + `') + ` +
				`'. The hub runs no pods: only MultiKueue sends a Job on to a workload cluster.'`,
			Message: Prefix + QueuedJobRule + ": a Job created on the hub in a queue is managed by MultiKueue (spec.managedBy " +
				kueue.MultiKueueControllerName + "): the hub runs no pods.",
			Reason: ptr.To(metav1.StatusReasonInvalid),
		}},
	}
	return policy(HubQueuedJobsPolicy, spec, false)
}

func platformParam() *admissionregistrationv1.ParamKind {
	return &admissionregistrationv1.ParamKind{APIVersion: appsv1alpha1.GroupVersion.String(), Kind: "AppPlatform"}
}

// policy pairs the policy with its Deny binding. A binding with params reads
// the AppPlatform "default"; without one the policy is not evaluated at all
// (parameterNotFoundAction Allow): the alternative, Deny, would refuse every
// change to every StatelessApp (finalizer removal included) with the API
// server's generic "no params found" instead of a message that helps.
// Install creates the AppPlatform and the delete protection guards it.
func policy(name string, spec admissionregistrationv1.ValidatingAdmissionPolicySpec, params bool) Policy {
	binding := admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
		PolicyName:        name,
		ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
	}
	if params {
		binding.ParamRef = &admissionregistrationv1.ParamRef{
			Name:                    appsv1alpha1.PlatformName,
			ParameterNotFoundAction: ptr.To(admissionregistrationv1.AllowAction),
		}
	}
	return Policy{
		Policy: &admissionregistrationv1.ValidatingAdmissionPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicy"},
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       spec,
		},
		Binding: &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicyBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       binding,
		},
	}
}
