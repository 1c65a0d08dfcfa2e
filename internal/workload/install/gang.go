package install

import (
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/workload/kueue"
)

// JobGangPolicy names the MutatingAdmissionPolicy (and its binding) that
// makes a queued Job of a workload cluster a gang.
const JobGangPolicy = "strata-job-gang"

// jobGangPolicy makes every queued Job (Kueue's queue-name label) that
// starts all its pods at once (parallelism == completions > 1) and says
// nothing of its scheduling a gang: spec.scheduling.schedulingPolicy.gang,
// whose minCount the Job controller sets to the parallelism, so that the
// scheduler binds all its pods or none (Kubernetes 1.37, WorkloadWithJob).
//
// Why a policy: MultiKueue copies a Job to a workload cluster with Kueue's
// Go types (k8s.io/api v0.35), which have no spec.scheduling, so a gang
// asked for on the hub arrives as a plain Job; the policy puts it back.
// A Job whose completions exceed its parallelism is left alone: its last
// wave would be smaller than the gang and wait forever. On a cluster
// without the WorkloadWithJob gate the API server drops the field, and the
// Job schedules pod by pod.
func jobGangPolicy() []client.Object {
	typeMeta := func(kind string) metav1.TypeMeta {
		return metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: kind}
	}
	gang := `Object.spec.scheduling{schedulingPolicy: Object.spec.scheduling.schedulingPolicy{gang: Object.spec.scheduling.schedulingPolicy.gang{}}}`
	return []client.Object{
		&admissionregistrationv1.MutatingAdmissionPolicy{
			TypeMeta:   typeMeta("MutatingAdmissionPolicy"),
			ObjectMeta: metav1.ObjectMeta{Name: JobGangPolicy},
			Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
				MatchConstraints: &admissionregistrationv1.MatchResources{
					ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule: admissionregistrationv1.Rule{
							APIGroups: []string{"batch"}, APIVersions: []string{"v1"}, Resources: []string{"jobs"},
						},
					}}},
				},
				MatchConditions: []admissionregistrationv1.MatchCondition{
					{Name: "queued", Expression: fmt.Sprintf("has(object.metadata.labels) && %q in object.metadata.labels", kueue.QueueNameLabel)},
					{Name: "scheduling-unset", Expression: "!has(object.spec.scheduling)"},
					{Name: "all-pods-at-once", Expression: "has(object.spec.parallelism) && has(object.spec.completions) && " +
						"object.spec.parallelism > 1 && object.spec.completions == object.spec.parallelism"},
				},
				Mutations: []admissionregistrationv1.Mutation{{
					PatchType: admissionregistrationv1.PatchTypeJSONPatch,
					JSONPatch: &admissionregistrationv1.JSONPatch{
						Expression: `[JSONPatch{op: "add", path: "/spec/scheduling", value: ` + gang + `}]`,
					},
				}},
				// Fail: a queued Job the policy could not look at is
				// refused (MultiKueue tries again) rather than run pod by
				// pod, partly placed.
				FailurePolicy:      ptr.To(admissionregistrationv1.Fail),
				ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
			},
		},
		&admissionregistrationv1.MutatingAdmissionPolicyBinding{
			TypeMeta:   typeMeta("MutatingAdmissionPolicyBinding"),
			ObjectMeta: metav1.ObjectMeta{Name: JobGangPolicy},
			Spec:       admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: JobGangPolicy},
		},
	}
}
