package kueue

import (
	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
)

// Kueue's own MultiKueue dispatchers, as its configuration names them
// (multiKueue.dispatcherName).
const (
	AllAtOnceDispatcherName   = "kueue.x-k8s.io/multikueue-dispatcher-all-at-once"
	IncrementalDispatcherName = "kueue.x-k8s.io/multikueue-dispatcher-incremental"
)

// DispatcherNameOf is the hub Kueue's multiKueue.dispatcherName for a
// HubConfiguration's jobs.dispatcher: Strata's dispatcher runs only when
// the hub's Kueue waits for it.
func DispatcherNameOf(d configv1alpha1.JobsDispatcher) string {
	switch d {
	case configv1alpha1.KueueAllAtOnceDispatcher:
		return AllAtOnceDispatcherName
	case configv1alpha1.KueueIncrementalDispatcher:
		return IncrementalDispatcherName
	}
	return DispatcherName
}

// AdmissionFieldManager is the field manager Kueue writes a Workload's
// admission status with, its own dispatchers' status.nominatedClusterNames
// included. Strata's dispatcher writes the nominated cluster as it too:
// Kueue clears the field by leaving it out of its next apply, which removes
// it only if no other field manager owns it (the API server would then
// refuse clusterName beside it, and the workload would never start).
const AdmissionFieldManager = "kueue-admission"

// NeverFitsAnnotation is set by Strata's dispatcher on a hub Workload that
// no workload cluster could ever hold, with why; the dispatcher then
// deactivates it (spec.active=false) so that it stops holding its queue's
// quota. kubectl strata jobs shows it.
const NeverFitsAnnotation = "apps.strata.dev/never-fits"
