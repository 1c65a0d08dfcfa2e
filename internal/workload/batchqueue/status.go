package batchqueue

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// clusterQueueStatus is the part of a Kueue ClusterQueue's status the
// BatchQueue's status is made from (Kueue's v1beta2 field names).
type clusterQueueStatus struct {
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
	FlavorsReservation []struct {
		Name      string `json:"name"`
		Resources []struct {
			Name     corev1.ResourceName `json:"name"`
			Total    resource.Quantity   `json:"total"`
			Borrowed resource.Quantity   `json:"borrowed"`
		} `json:"resources"`
	} `json:"flavorsReservation,omitempty"`
	PendingWorkloads   int32 `json:"pendingWorkloads"`
	ReservingWorkloads int32 `json:"reservingWorkloads"`
	AdmittedWorkloads  int32 `json:"admittedWorkloads"`
}

func parseClusterQueueStatus(u *unstructured.Unstructured) (*clusterQueueStatus, error) {
	s := &clusterQueueStatus{}
	raw, ok := u.Object["status"]
	if !ok {
		return s, nil
	}
	b, err := json.Marshal(raw)
	if err == nil {
		err = json.Unmarshal(b, s)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the status of ClusterQueue %s: %w", u.GetName(), err)
	}
	return s, nil
}

// usage is what a ClusterQueue's workloads hold of one resource of one
// flavor.
func (s *clusterQueueStatus) usage(profile string, name corev1.ResourceName) (total, borrowed resource.Quantity) {
	for _, f := range s.FlavorsReservation {
		if f.Name != profile {
			continue
		}
		for _, r := range f.Resources {
			if r.Name == name {
				return r.Total, r.Borrowed
			}
		}
	}
	return resource.Quantity{}, resource.Quantity{}
}

// desiredStatus is a queue's status: quotas and usage per profile from the
// hub's ClusterQueues (its own, or for a parent its descendants'), the
// workload counts, Ready from the analysis and Kueue's word, ClustersSynced
// from the last sync. Transition times are kept while a condition's status
// stays.
func desiredStatus(q *appsv1alpha1.BatchQueue, queues []appsv1alpha1.BatchQueue, p plan, cqs map[string]*clusterQueueStatus,
	last failures, now time.Time) appsv1alpha1.BatchQueueStatus {
	v := p.Verdicts[q.Name]
	byName := map[string]*appsv1alpha1.BatchQueue{}
	for i := range queues {
		byName[queues[i].Name] = &queues[i]
	}
	members := append([]string{q.Name}, descendants(q.Name, p.Verdicts)...)

	status := appsv1alpha1.BatchQueueStatus{ObservedGeneration: q.Generation, Conditions: slices.Clone(q.Status.Conditions)}
	profiles := map[string]*appsv1alpha1.ProfileStatus{}
	for _, m := range members {
		mv := p.Verdicts[m]
		for _, quota := range byName[m].Spec.Quotas {
			if !slices.Contains(mv.Profiles, quota.NodeProfile) {
				continue
			}
			ps := profiles[quota.NodeProfile]
			if ps == nil {
				ps = &appsv1alpha1.ProfileStatus{NodeProfile: quota.NodeProfile}
				profiles[quota.NodeProfile] = ps
			}
			nominal := amounts(quota.BatchResources)
			for name, rs := range resourceStatuses(ps) {
				if n := nominal[name]; n != nil {
					rs.Quota.Add(*n)
				}
			}
		}
		if mv.IsParent() {
			continue
		}
		cq := cqs[m]
		if cq == nil {
			continue
		}
		status.PendingWorkloads += cq.PendingWorkloads
		status.AdmittedWorkloads += cq.AdmittedWorkloads
		status.DispatchingWorkloads += max(0, cq.ReservingWorkloads-cq.AdmittedWorkloads)
		for profile, ps := range profiles {
			for name, rs := range resourceStatuses(ps) {
				total, borrowed := cq.usage(profile, name)
				rs.Usage.Add(total)
				if !v.IsParent() {
					rs.Borrowed.Add(borrowed)
				}
			}
		}
	}
	for _, profile := range sortedKeys(boolKeys(profiles)) {
		ps := profiles[profile]
		if v.IsParent() {
			// A parent borrows what its tree uses beyond the tree's quota.
			for _, rs := range resourceStatuses(ps) {
				if rs.Usage.Cmp(rs.Quota) > 0 {
					rs.Borrowed = rs.Usage.DeepCopy()
					rs.Borrowed.Sub(rs.Quota)
				}
			}
		}
		status.Profiles = append(status.Profiles, *ps)
	}

	ready := readyCondition(q, v, cqs[q.Name], last)
	synced := syncedCondition(q, p.Regions[q.Name], last)
	for _, c := range []metav1.Condition{ready, synced} {
		c.ObservedGeneration = q.Generation
		c.LastTransitionTime = metav1.NewTime(now)
		meta.SetStatusCondition(&status.Conditions, c)
	}
	return status
}

// resourceStatuses are a profile status's resources by name.
func resourceStatuses(ps *appsv1alpha1.ProfileStatus) map[corev1.ResourceName]*appsv1alpha1.ResourceStatus {
	return map[corev1.ResourceName]*appsv1alpha1.ResourceStatus{
		corev1.ResourceCPU: &ps.CPU, corev1.ResourceMemory: &ps.Memory, appsv1alpha1.GPUResourceName: &ps.GPUs,
	}
}

func boolKeys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// readyCondition: the analysis's problem first, then a failed write on the
// hub, then Kueue's word on the hub's ClusterQueue.
func readyCondition(q *appsv1alpha1.BatchQueue, v *verdict, cq *clusterQueueStatus, last failures) metav1.Condition {
	c := metav1.Condition{Type: appsv1alpha1.BatchQueueReadyCondition, Status: metav1.ConditionFalse}
	if v.Reason != "" {
		c.Reason, c.Message = v.Reason, v.Message
		return c
	}
	if failed := last.of("", q.Name); len(failed) > 0 {
		c.Reason, c.Message = appsv1alpha1.KueueWriteFailedReason, joinSorted(failed)
		return c
	}
	if v.IsParent() {
		c.Status, c.Reason = metav1.ConditionTrue, appsv1alpha1.QueueReadyReason
		c.Message = fmt.Sprintf("Cohort %s in %s lends its quotas (%s) to its children %s first; jobs are submitted to their queues",
			q.Name, v.Cohort, profilesOrNone(v.Profiles), strings.Join(v.Children, ", "))
		return c
	}
	if cq != nil {
		if active := meta.FindStatusCondition(cq.Conditions, "Active"); active != nil && active.Status != metav1.ConditionTrue {
			c.Reason = appsv1alpha1.KueueInactiveReason
			c.Message = fmt.Sprintf("the hub's Kueue reports ClusterQueue %s inactive (%s): %s", q.Name, active.Reason, active.Message)
			return c
		}
	}
	c.Status, c.Reason = metav1.ConditionTrue, appsv1alpha1.QueueReadyReason
	c.Message = fmt.Sprintf("ClusterQueue %s in %s with quotas on %s", q.Name, v.Cohort, profilesOrNone(v.Profiles))
	if v.Cohort == kueue.OrganizationCohort(q.Spec.Organization) {
		c.Message = fmt.Sprintf("ClusterQueue %s in organisation %s's Cohort %s with quotas on %s", q.Name, q.Spec.Organization, v.Cohort, profilesOrNone(v.Profiles))
	}
	return c
}

func profilesOrNone(profiles []string) string {
	if len(profiles) == 0 {
		return "no node profile"
	}
	return "node profiles " + strings.Join(profiles, ", ")
}

// syncedCondition: whether the workload clusters of the queue's region
// have its objects, as the last sync found.
func syncedCondition(q *appsv1alpha1.BatchQueue, clusters []string, last failures) metav1.Condition {
	c := metav1.Condition{Type: appsv1alpha1.BatchQueueClustersSyncedCondition, Status: metav1.ConditionFalse}
	if len(clusters) == 0 {
		c.Reason = appsv1alpha1.NoClusterInRegionReason
		c.Message = "no workload cluster is registered on the hub: the queue's jobs have nowhere to run"
		if q.Spec.Region != "" {
			c.Message = fmt.Sprintf("no workload cluster is registered in region %s: the queue's jobs have nowhere to run", q.Spec.Region)
		}
		return c
	}
	var failed, written []string
	for _, name := range clusters {
		if msgs := last.of(name, q.Name); len(msgs) > 0 {
			failed = append(failed, msgs...)
		} else {
			written = append(written, name)
		}
	}
	if len(failed) > 0 {
		c.Reason = appsv1alpha1.ClusterUnreachableReason
		c.Message = joinSorted(failed) + "; retried"
		if len(written) > 0 {
			c.Message += "; written on " + strings.Join(written, ", ")
		}
		return c
	}
	c.Status, c.Reason = metav1.ConditionTrue, appsv1alpha1.ClustersSyncedReason
	c.Message = "on workload clusters " + strings.Join(written, ", ")
	return c
}
