// Package jobgang keeps the gang of a queued Job the size of what it still
// has to run. Kubernetes 1.37's scheduler binds a gang's pod only together
// with minCount of the gang's pods, and counts only the pods that have not
// ended: once some of a gang's pods have succeeded, a pod that a drain
// evicted, and whose replacement did not find room while the others ran,
// would wait for ever. The controller lowers the Job's
// spec.scheduling.schedulingPolicy.gang.minCount (the one field of it that
// may change) to the pods left to run; the Job controller passes it on to
// the gang's Workload and PodGroup, and the scheduler places the rest
// together, all or none.
package jobgang

import (
	"context"
	"errors"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/strata-dev/strata/internal/conflicts"
)

// ShrunkReason is the reason of the event that says a gang was made
// smaller.
const ShrunkReason = "GangShrunk"

// Options are what the controller is built from.
type Options struct {
	// Client reads and patches the workload cluster's Jobs; a cached one
	// needs only the queued Jobs (appcache).
	Client   client.Client
	Recorder events.EventRecorder
	// Cluster names the workload cluster when one process runs a
	// controller for each of several (controller names must be unique in
	// a process). Empty: the controller is named jobgang.
	Cluster string
}

// Reconciler is the gang controller of one workload cluster.
type Reconciler struct {
	client   client.Client
	recorder events.EventRecorder
	name     string
}

// New checks the options and builds the controller.
func New(o Options) (*Reconciler, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("jobgang controller: a client is required")
	case o.Recorder == nil:
		return nil, errors.New("jobgang controller: an event recorder is required")
	}
	name := "jobgang"
	if o.Cluster != "" {
		name += "-" + o.Cluster
	}
	return &Reconciler{client: o.Client, recorder: o.Recorder, name: name}, nil
}

// SetupWithManager watches the Jobs: a Job's status (how many succeeded)
// is what changes the gang's size.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&batchv1.Job{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Named(r.name).
		Complete(conflicts.Requeue(r))
}

// Reconcile lowers the gang's minCount of one Job to the pods it still has
// to run, when that is fewer.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	job := &batchv1.Job{}
	if err := r.client.Get(ctx, req.NamespacedName, job); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	current, want, ok := GangSize(job)
	if !ok || want >= current {
		return reconcile.Result{}, nil
	}
	before := job.DeepCopy()
	job.Spec.Scheduling.SchedulingPolicy.Gang.MinCount = ptr.To(want)
	// Optimistic lock: the count is judged on this version of the Job.
	if err := r.client.Patch(ctx, job, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("lowering the gang of Job %s to %d pods: %w", req, want, err)
	}
	log.FromContext(ctx).Info("Lowered the gang's minCount to the pods left to run", "from", current, "to", want)
	r.recorder.Eventf(job, nil, corev1.EventTypeNormal, ShrunkReason, "Shrink",
		"%d of %d pods succeeded: the gang is now the %d left to run (minCount %d, was %d), placed together, all or none",
		job.Status.Succeeded, ptr.Deref(job.Spec.Completions, 0), want, want, current)
	return reconcile.Result{}, nil
}

// GangSize says, for a Job scheduled as a gang that runs to a number of
// completions and has not finished, its gang's minCount now (the
// parallelism when unset) and the number of pods it still has to run at
// once: its completions less those succeeded, at most its parallelism.
// ok is false for any other Job.
func GangSize(job *batchv1.Job) (current, want int32, ok bool) {
	s := job.Spec.Scheduling
	if s == nil || s.SchedulingPolicy == nil || s.SchedulingPolicy.Gang == nil || job.Spec.Completions == nil || finished(job) {
		return 0, 0, false
	}
	parallelism := ptr.Deref(job.Spec.Parallelism, 1)
	current = ptr.Deref(s.SchedulingPolicy.Gang.MinCount, parallelism)
	left := *job.Spec.Completions - job.Status.Succeeded
	if left < 1 {
		return 0, 0, false
	}
	return current, min(parallelism, left), true
}

func finished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
