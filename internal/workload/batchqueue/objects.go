package batchqueue

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// FieldOwner is the server-side apply field manager of every Kueue object
// the controller writes; only objects it manages are deleted when no
// longer wanted.
const FieldOwner = "strata-batchqueue"

// maxMultiKueueClusters is how many clusters Kueue v0.17's MultiKueueConfig
// may list.
const maxMultiKueueClusters = 20

// coveredResources are the resources of a queue's quotas, in the order of
// every flavor's resources (Kueue requires one order per group).
var coveredResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, appsv1alpha1.GPUResourceName}

// world is what the desired Kueue objects are made from: the hub's objects.
type world struct {
	Queues     []appsv1alpha1.BatchQueue
	Pools      []fleetv1alpha1.Pool
	Clusters   []fleetv1alpha1.Cluster
	Namespaces []appsv1alpha1.AppNamespace
}

// plan is every Kueue object wanted on the hub and on each workload
// cluster, in the order they are applied (referenced objects first), with
// the analysis of the queues they were made from.
type plan struct {
	Hub      []*unstructured.Unstructured
	Workers  map[string][]*unstructured.Unstructured
	Verdicts map[string]*verdict
	// Regions are the workload clusters of each queue's region.
	Regions map[string][]string
}

// desired is the plan for a world. Once there is a BatchQueue: on the hub
// and on every workload cluster, a ResourceFlavor per node profile that a
// Pool has; on the hub and on the clusters of each queue's region, the
// organisations' root Cohorts, the queue's ClusterQueue (or Cohort, for a
// parent) and its LocalQueues in the batch namespaces that name it; on the
// hub only, the MultiKueue AdmissionCheck, config and clusters.
func desired(w world) plan {
	profiles := map[string]bool{}
	for i := range w.Pools {
		if w.Pools[i].DeletionTimestamp.IsZero() {
			profiles[w.Pools[i].Spec.NodeProfile] = true
		}
	}
	queues := slices.Clone(w.Queues)
	slices.SortFunc(queues, func(a, b appsv1alpha1.BatchQueue) int { return strings.Compare(a.Name, b.Name) })
	verdicts := analyse(queues, profiles)
	namespaces := namespacesByQueue(w.Namespaces)

	var clusters []string
	regionOf := map[string]string{}
	for i := range w.Clusters {
		if c := &w.Clusters[i]; c.DeletionTimestamp.IsZero() {
			clusters = append(clusters, c.Name)
			regionOf[c.Name] = c.Spec.Region
		}
	}
	slices.Sort(clusters)

	p := plan{Workers: map[string][]*unstructured.Unstructured{}, Verdicts: verdicts, Regions: map[string][]string{}}
	if len(queues) == 0 {
		// Nothing at all without a queue: a hub without the jobs platform
		// (or Kueue) is left alone, and the last queue's objects go.
		for _, c := range clusters {
			p.Workers[c] = nil
		}
		return p
	}
	flavors := make([]*unstructured.Unstructured, 0, len(profiles))
	for _, profile := range sortedKeys(profiles) {
		flavors = append(flavors, resourceFlavor(profile))
	}
	// build builds the queue objects of one place: the hub or a cluster.
	build := func(hub bool, inPlace func(*appsv1alpha1.BatchQueue) bool) []*unstructured.Unstructured {
		objs := slices.Clone(flavors)
		var orgs []string
		var queueObjs, localQueues []*unstructured.Unstructured
		for i := range queues {
			q := &queues[i]
			if !inPlace(q) {
				continue
			}
			if !slices.Contains(orgs, q.Spec.Organization) {
				orgs = append(orgs, q.Spec.Organization)
			}
			v := verdicts[q.Name]
			if v.IsParent() {
				queueObjs = append(queueObjs, cohort(q, v))
			} else {
				queueObjs = append(queueObjs, clusterQueue(q, v, namespaces[q.Name], hub))
			}
			for _, ns := range namespaces[q.Name] {
				localQueues = append(localQueues, localQueue(q.Name, ns))
			}
		}
		slices.Sort(orgs)
		for _, org := range orgs {
			objs = append(objs, organizationCohort(org))
		}
		return append(append(objs, queueObjs...), localQueues...)
	}

	if len(clusters) > 0 {
		listed := clusters[:min(len(clusters), maxMultiKueueClusters)]
		for _, c := range listed {
			p.Hub = append(p.Hub, multiKueueCluster(c))
		}
		p.Hub = append(p.Hub, multiKueueConfig(listed))
	}
	p.Hub = append(p.Hub, admissionCheck())
	p.Hub = append(p.Hub, build(true, func(*appsv1alpha1.BatchQueue) bool { return true })...)
	for _, c := range clusters {
		p.Workers[c] = build(false, func(q *appsv1alpha1.BatchQueue) bool { return inRegion(q, regionOf[c]) })
	}
	for i := range queues {
		q := &queues[i]
		for _, c := range clusters {
			if inRegion(q, regionOf[c]) {
				p.Regions[q.Name] = append(p.Regions[q.Name], c)
			}
		}
	}
	return p
}

// inRegion says whether a queue's objects go to a cluster of the region:
// a queue of no region goes everywhere.
func inRegion(q *appsv1alpha1.BatchQueue, region string) bool {
	return q.Spec.Region == "" || q.Spec.Region == region
}

// namespacesByQueue are the batch app namespaces (not being deleted) that
// name each queue, sorted.
func namespacesByQueue(all []appsv1alpha1.AppNamespace) map[string][]string {
	out := map[string][]string{}
	for i := range all {
		an := &all[i]
		if an.Spec.Tenant == appsv1alpha1.BatchTenant && an.Spec.BatchQueue != "" && an.DeletionTimestamp.IsZero() {
			out[an.Spec.BatchQueue] = append(out[an.Spec.BatchQueue], an.Name)
		}
	}
	for _, names := range out {
		slices.Sort(names)
	}
	return out
}

// object is a Kueue object with Strata's labels.
func object(kind, namespace, name string, labels map[string]string, spec map[string]any) *unstructured.Unstructured {
	u := kueue.New(kind, namespace, name)
	all := map[string]string{kueue.ManagedByLabel: kueue.ManagedBy}
	for k, v := range labels {
		all[k] = v
	}
	u.SetLabels(all)
	if spec != nil {
		u.Object["spec"] = spec
	}
	return u
}

// resourceFlavor is the flavor of a node profile: Kueue puts a job admitted
// on it on the Nodes of that profile that take new batch pods, those not
// in a zone under maintenance or next (see dispatch.BatchNodes).
func resourceFlavor(profile string) *unstructured.Unstructured {
	return object(kueue.ResourceFlavorKind, "", profile, nil, map[string]any{
		"nodeLabels": map[string]any{fleetv1alpha1.NodeProfileLabel: profile, appsv1alpha1.BatchSchedulableLabel: "true"},
	})
}

// organizationCohort is the root of an organisation's queues.
func organizationCohort(org string) *unstructured.Unstructured {
	return object(kueue.CohortKind, "", kueue.OrganizationCohort(org), nil, map[string]any{})
}

func queueLabels(queue string) map[string]string {
	return map[string]string{appsv1alpha1.BatchQueueLabel: queue}
}

// clusterQueue is a queue without children: its quotas, in its parent's
// Cohort (or its organisation's), open to the batch namespaces that name
// it. On the hub its workloads go through MultiKueue's AdmissionCheck.
func clusterQueue(q *appsv1alpha1.BatchQueue, v *verdict, namespaces []string, hub bool) *unstructured.Unstructured {
	spec := map[string]any{"cohortName": v.Cohort}
	if groups := resourceGroups(q, v); groups != nil {
		spec["resourceGroups"] = groups
	}
	// Only the namespaces whose AppNamespace names the queue may use it;
	// none (a nil selector) while there are none.
	if len(namespaces) > 0 {
		spec["namespaceSelector"] = map[string]any{"matchExpressions": []any{map[string]any{
			"key": appsv1alpha1.AppNamespaceLabel, "operator": "In", "values": toAny(namespaces),
		}}}
	}
	if hub {
		spec["admissionChecksStrategy"] = map[string]any{"admissionChecks": []any{
			map[string]any{"name": kueue.MultiKueueAdmissionCheck},
		}}
	}
	return object(kueue.ClusterQueueKind, "", q.Name, queueLabels(q.Name), spec)
}

// cohort is a queue with children: its own quotas, lent to them first, in
// its parent's Cohort (or its organisation's).
func cohort(q *appsv1alpha1.BatchQueue, v *verdict) *unstructured.Unstructured {
	spec := map[string]any{"parentName": v.Cohort}
	if groups := resourceGroups(q, v); groups != nil {
		spec["resourceGroups"] = groups
	}
	return object(kueue.CohortKind, "", q.Name, queueLabels(q.Name), spec)
}

// localQueue is where a batch namespace's jobs are queued for the queue.
func localQueue(queue, namespace string) *unstructured.Unstructured {
	labels := queueLabels(queue)
	labels[appsv1alpha1.AppNamespaceLabel] = namespace
	return object(kueue.LocalQueueKind, namespace, queue, labels, map[string]any{"clusterQueue": queue})
}

// resourceGroups is one group of cpu, memory and GPUs with a flavor per
// known node profile of the queue's quotas; nil when it has none.
func resourceGroups(q *appsv1alpha1.BatchQueue, v *verdict) []any {
	var flavors []any
	for _, quota := range q.Spec.Quotas {
		if !slices.Contains(v.Profiles, quota.NodeProfile) {
			continue
		}
		nominal := amounts(quota.BatchResources)
		var limits map[corev1.ResourceName]*resource.Quantity
		if quota.BorrowingLimit != nil {
			limits = amounts(*quota.BorrowingLimit)
		}
		resources := make([]any, 0, len(coveredResources))
		for _, name := range coveredResources {
			r := map[string]any{"name": string(name), "nominalQuota": quantity(nominal[name])}
			if limit := limits[name]; limit != nil {
				r["borrowingLimit"] = limit.String()
			}
			resources = append(resources, r)
		}
		flavors = append(flavors, map[string]any{"name": quota.NodeProfile, "resources": resources})
	}
	if len(flavors) == 0 {
		return nil
	}
	covered := make([]any, 0, len(coveredResources))
	for _, name := range coveredResources {
		covered = append(covered, string(name))
	}
	return []any{map[string]any{"coveredResources": covered, "flavors": flavors}}
}

// amounts are a BatchResources' amounts by Kubernetes resource name; an
// amount left out is nil.
func amounts(r appsv1alpha1.BatchResources) map[corev1.ResourceName]*resource.Quantity {
	return map[corev1.ResourceName]*resource.Quantity{
		corev1.ResourceCPU: r.CPU, corev1.ResourceMemory: r.Memory, appsv1alpha1.GPUResourceName: r.GPUs,
	}
}

// quantity is an amount as Kueue's objects hold it; left out is zero.
func quantity(q *resource.Quantity) string {
	if q == nil {
		return "0"
	}
	return q.String()
}

// admissionCheck is MultiKueue's check on the hub, with its config.
func admissionCheck() *unstructured.Unstructured {
	return object(kueue.AdmissionCheckKind, "", kueue.MultiKueueAdmissionCheck, nil, map[string]any{
		"controllerName": kueue.MultiKueueControllerName,
		"parameters": map[string]any{
			"apiGroup": kueue.GroupVersion.Group, "kind": kueue.MultiKueueConfigKind, "name": kueue.MultiKueueConfigName,
		},
	})
}

// multiKueueConfig lists the workload clusters MultiKueue may send jobs to.
func multiKueueConfig(clusters []string) *unstructured.Unstructured {
	return object(kueue.MultiKueueConfigKind, "", kueue.MultiKueueConfigName, nil, map[string]any{"clusters": toAny(clusters)})
}

// multiKueueCluster is how the hub's Kueue reaches a workload cluster: the
// kubeconfig in its Secret in kueue-system.
func multiKueueCluster(cluster string) *unstructured.Unstructured {
	return object(kueue.MultiKueueClusterKind, "", cluster, nil, map[string]any{
		"clusterSource": map[string]any{"kubeConfig": map[string]any{
			"locationType": "Secret", "location": kueue.MultiKueueKubeconfigSecret(cluster),
		}},
	})
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
