// Package conflicts turns the routine optimistic-concurrency conflicts of a
// reconcile ("the object has been modified") into a quiet retry, so that an
// error line in a controller's log means something is wrong. Every
// controller of Strata is registered through Requeue.
package conflicts

import (
	"context"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Requeue returns r, except that a reconcile which fails only with
// optimistic-concurrency conflicts is requeued with the queue's backoff and
// logged at V(1), instead of being returned as an error (which
// controller-runtime logs as "Reconciler error"). Any other error is
// returned as it is.
func Requeue(r reconcile.Reconciler) reconcile.Reconciler {
	return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		res, err := r.Reconcile(ctx, req)
		return Result(ctx, res, err)
	})
}

// Result is Requeue for one reconcile's result.
func Result(ctx context.Context, res reconcile.Result, err error) (reconcile.Result, error) {
	if err == nil || !IsOptimistic(err) {
		return res, err
	}
	log.FromContext(ctx).V(1).Info("Requeueing after a conflict: the object changed since it was read", "conflict", err.Error())
	// A rate-limited requeue, not RequeueAfter: two writers that keep
	// conflicting back off as they would on an error.
	return reconcile.Result{Requeue: true}, nil //nolint:staticcheck // the queue's backoff is the point (see above)
}

// IsOptimistic says whether err is made only of optimistic-concurrency
// conflicts, through any wrapping and errors.Join. A server-side apply
// conflict over field ownership is not routine (another manager owns the
// field), and neither is a conflict joined with any other error.
func IsOptimistic(err error) bool {
	if err == nil {
		return false
	}
	switch e := err.(type) { //nolint:errorlint // walks the wrapping itself, to see every joined error
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		for _, inner := range errs {
			if inner != nil && !IsOptimistic(inner) {
				return false
			}
		}
		return len(errs) > 0
	case apierrors.APIStatus:
		return isOptimisticConflict(e.Status())
	}
	if inner := errors.Unwrap(err); inner != nil {
		return IsOptimistic(inner)
	}
	return false
}

func isOptimisticConflict(s metav1.Status) bool {
	if s.Reason != metav1.StatusReasonConflict {
		return false
	}
	if s.Details != nil {
		for _, c := range s.Details.Causes {
			if c.Type == metav1.CauseTypeFieldManagerConflict {
				return false
			}
		}
	}
	return true
}
