package jobgang

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1alpha3 "k8s.io/api/scheduling/v1alpha3"
	"k8s.io/utils/ptr"
)

func gangJob(parallelism, completions int32, minCount *int32, succeeded int32) *batchv1.Job {
	return &batchv1.Job{
		Spec: batchv1.JobSpec{
			Parallelism: ptr.To(parallelism), Completions: ptr.To(completions),
			Scheduling: &batchv1.JobSchedulingConfiguration{SchedulingPolicy: &schedulingv1alpha3.WorkloadPodGroupSchedulingPolicy{
				Gang: &schedulingv1alpha3.WorkloadPodGroupGangSchedulingPolicy{MinCount: minCount},
			}},
		},
		Status: batchv1.JobStatus{Succeeded: succeeded},
	}
}

func TestGangSize(t *testing.T) {
	complete := gangJob(8, 8, nil, 8)
	complete.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	basic := gangJob(8, 8, nil, 6)
	basic.Spec.Scheduling.SchedulingPolicy = &schedulingv1alpha3.WorkloadPodGroupSchedulingPolicy{Basic: &schedulingv1alpha3.WorkloadPodGroupBasicSchedulingPolicy{}}
	noCompletions := gangJob(8, 8, nil, 6)
	noCompletions.Spec.Completions = nil
	for name, tc := range map[string]struct {
		job           *batchv1.Job
		current, want int32
		ok            bool
	}{
		"a new gang of 8":                     {job: gangJob(8, 8, nil, 0), current: 8, want: 8, ok: true},
		"6 of 8 succeeded: 2 left":            {job: gangJob(8, 8, nil, 6), current: 8, want: 2, ok: true},
		"already lowered to 2":                {job: gangJob(8, 8, ptr.To[int32](2), 6), current: 2, want: 2, ok: true},
		"its author's smaller gang is kept":   {job: gangJob(8, 8, ptr.To[int32](4), 1), current: 4, want: 7, ok: true},
		"waves: at most the parallelism":      {job: gangJob(4, 16, nil, 4), current: 4, want: 4, ok: true},
		"waves, the last one smaller":         {job: gangJob(4, 16, nil, 14), current: 4, want: 2, ok: true},
		"finished":                            {job: complete},
		"not a gang":                          {job: basic},
		"no scheduling":                       {job: &batchv1.Job{Spec: batchv1.JobSpec{Completions: ptr.To[int32](8)}}},
		"no completions: a work queue, as is": {job: noCompletions},
		"all succeeded, not yet Complete":     {job: gangJob(8, 8, nil, 8)},
	} {
		t.Run(name, func(t *testing.T) {
			current, want, ok := GangSize(tc.job)
			if current != tc.current || want != tc.want || ok != tc.ok {
				t.Errorf("GangSize: %d, %d, %t; want %d, %d, %t", current, want, ok, tc.current, tc.want, tc.ok)
			}
		})
	}
}
