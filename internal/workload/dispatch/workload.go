package dispatch

import (
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Kueue's Workload, as far as the dispatcher reads it (kueue.x-k8s.io/v1beta2;
// Kueue's Go types are not imported, see internal/workload/kueue).
type workload struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Active *bool `json:"active,omitempty"`
	} `json:"spec"`
	Status workloadStatus `json:"status"`
}

type workloadStatus struct {
	Conditions            []metav1.Condition    `json:"conditions,omitempty"`
	Admission             *admission            `json:"admission,omitempty"`
	AdmissionChecks       []admissionCheckState `json:"admissionChecks,omitempty"`
	ClusterName           *string               `json:"clusterName,omitempty"`
	NominatedClusterNames []string              `json:"nominatedClusterNames,omitempty"`
}

type admission struct {
	ClusterQueue      string             `json:"clusterQueue"`
	PodSetAssignments []podSetAssignment `json:"podSetAssignments"`
}

type podSetAssignment struct {
	Name          string                         `json:"name"`
	Flavors       map[corev1.ResourceName]string `json:"flavors,omitempty"`
	ResourceUsage corev1.ResourceList            `json:"resourceUsage,omitempty"`
	Count         *int32                         `json:"count,omitempty"`
}

type admissionCheckState struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// Kueue's condition types and check states the dispatcher reads.
const (
	quotaReservedCondition = "QuotaReserved"
	finishedCondition      = "Finished"
	checkStatePending      = "Pending"
)

func parseWorkload(u *unstructured.Unstructured) (*workload, error) {
	wl := &workload{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, wl); err != nil {
		return nil, fmt.Errorf("reading Workload %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return wl, nil
}

func (wl *workload) finished() bool {
	return meta.IsStatusConditionTrue(wl.Status.Conditions, finishedCondition)
}

func (wl *workload) quotaReserved() bool {
	return meta.IsStatusConditionTrue(wl.Status.Conditions, quotaReservedCondition)
}

// quotaReservedAt is when the hub's Kueue reserved quota: the dispatch
// latency is measured from it.
func (wl *workload) quotaReservedAt() time.Time {
	if c := meta.FindStatusCondition(wl.Status.Conditions, quotaReservedCondition); c != nil {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

func (wl *workload) active() bool { return wl.Spec.Active == nil || *wl.Spec.Active }

// cluster is the workload cluster the workload was sent to: the one Kueue
// assigned, else the one nominated ("" when none or several).
func (wl *workload) cluster() string {
	if wl.Status.ClusterName != nil {
		return *wl.Status.ClusterName
	}
	if len(wl.Status.NominatedClusterNames) == 1 {
		return wl.Status.NominatedClusterNames[0]
	}
	return ""
}

// occupies says whether the workload holds room in a workload cluster (or
// is about to): sent there, with quota, not finished.
func (wl *workload) occupies() bool {
	return wl.cluster() != "" && wl.quotaReserved() && !wl.finished() && wl.DeletionTimestamp.IsZero()
}

// checkState is the state of an admission check of the workload, "" when
// it has none of that name.
func (wl *workload) checkState(name string) string {
	if i := slices.IndexFunc(wl.Status.AdmissionChecks, func(s admissionCheckState) bool { return s.Name == name }); i >= 0 {
		return wl.Status.AdmissionChecks[i].State
	}
	return ""
}

// errNotAdmitted: the workload has no admission to read pod sets from.
var errNotAdmitted = errors.New("the workload has no admission")

// podSets are the workload's pod sets as admitted, each with the flavor of
// its resources (one flavor per pod set: Strata's flavors are node
// profiles, and a pod runs on one Node) and the requests of one pod.
func (wl *workload) podSets() ([]podSet, []string, error) {
	if wl.Status.Admission == nil {
		return nil, nil, errNotAdmitted
	}
	sets := make([]podSet, 0, len(wl.Status.Admission.PodSetAssignments))
	flavors := make([]string, 0, len(wl.Status.Admission.PodSetAssignments))
	for _, a := range wl.Status.Admission.PodSetAssignments {
		count := int32(1)
		if a.Count != nil {
			count = *a.Count
		}
		if count <= 0 {
			continue
		}
		flavor := ""
		for _, f := range a.Flavors {
			if flavor != "" && f != flavor {
				return nil, nil, fmt.Errorf("pod set %s was given flavors %s and %s: a pod runs on one Node, of one profile", a.Name, flavor, f)
			}
			flavor = f
		}
		perPod := corev1.ResourceList{}
		for r, q := range a.ResourceUsage {
			// Kueue's usage is per pod times count.
			perPod[r] = *divide(q, count)
		}
		sets = append(sets, podSet{Name: a.Name, Count: count, PerPod: perPod})
		flavors = append(flavors, flavor)
	}
	return sets, flavors, nil
}

// divide is q/n.
func divide(q resource.Quantity, n int32) *resource.Quantity {
	return resource.NewMilliQuantity(q.MilliValue()/int64(n), q.Format)
}
