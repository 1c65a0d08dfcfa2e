package jobgang_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	schedulingv1alpha3 "k8s.io/api/scheduling/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/workload/apps"
	"github.com/strata-dev/strata/internal/workload/jobgang"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// TestGangShrinksToThePodsLeft: a real API server validates the change of
// minCount (the one field of spec.scheduling that may change); the Job
// controller does not run in envtest, so the test writes the Job's status
// as it would.
func TestGangShrinksToThePodsLeft(t *testing.T) {
	_, cfg := testutil.StartEnvWithKueue(t)
	scheme := apps.Scheme()
	mgr := testutil.NewAppsManager(t, cfg, scheme)
	r, err := jobgang.New(jobgang.Options{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("jobgang-controller"),
		Cluster: fmt.Sprintf("envtest-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	testutil.RunManager(t, mgr)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ranking"}})

	job := func(name string, queued bool) *batchv1.Job {
		j := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ranking", Name: name},
			Spec: batchv1.JobSpec{
				Parallelism: ptr.To[int32](8), Completions: ptr.To[int32](8),
				Scheduling: &batchv1.JobSchedulingConfiguration{SchedulingPolicy: &schedulingv1alpha3.WorkloadPodGroupSchedulingPolicy{
					Gang: &schedulingv1alpha3.WorkloadPodGroupGangSchedulingPolicy{},
				}},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "train", Image: "train:1"}},
				}},
			},
		}
		if queued {
			j.Labels = map[string]string{kueue.QueueNameLabel: "ranking"}
		}
		testutil.MustCreate(t, c, j)
		// 6 of its 8 pods succeeded: the other 2 wait.
		j.Status.Succeeded = 6
		j.Status.StartTime = ptr.To(metav1.Now())
		if err := c.Status().Update(ctx, j); err != nil {
			t.Fatalf("writing the status of Job %s: %v", name, err)
		}
		return j
	}
	// Not queued: not the platform's (the controller's cache does not hold it).
	own := job("own", false)
	queued := job("train", true)

	minCount := func(j *batchv1.Job) *int32 {
		got := &batchv1.Job{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(j), got); err != nil {
			t.Fatal(err)
		}
		return got.Spec.Scheduling.SchedulingPolicy.Gang.MinCount
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return ptr.Deref(minCount(queued), 0) == 2, nil
	})
	if err != nil {
		t.Fatalf("the gang of 8 with 6 succeeded has minCount %v, want 2", minCount(queued))
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		events := &eventsv1.EventList{}
		if err := c.List(ctx, events, client.InNamespace("ranking")); err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == "train" && e.Reason == jobgang.ShrunkReason &&
				e.Note == "6 of 8 pods succeeded: the gang is now the 2 left to run (minCount 2, was 8), placed together, all or none" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("no %s event on Job train: %v", jobgang.ShrunkReason, err)
	}
	if got := minCount(own); got != nil {
		t.Errorf("a Job in no queue got minCount %d", *got)
	}
}
