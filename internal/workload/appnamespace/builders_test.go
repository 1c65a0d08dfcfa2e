package appnamespace

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/testutil"
)

// appNamespaceWrapper builds an AppNamespace.
type appNamespaceWrapper struct{ appsv1alpha1.AppNamespace }

// makeAppNamespace starts a stateless AppNamespace of profile general with
// the default quota (cpu 4, memory 16Gi).
func makeAppNamespace(name, app string) *appNamespaceWrapper {
	return &appNamespaceWrapper{appsv1alpha1.AppNamespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec: appsv1alpha1.AppNamespaceSpec{
			App: app, Tenant: appsv1alpha1.StatelessTenant, NodeProfile: "general",
			Quota: resources("4", "16Gi"),
		},
	}}
}

func (w *appNamespaceWrapper) Profile(p string) *appNamespaceWrapper {
	w.Spec.NodeProfile = p
	return w
}

// Batch makes it a batch AppNamespace of the BatchQueue queue: no quota.
func (w *appNamespaceWrapper) Batch(queue string) *appNamespaceWrapper {
	w.Spec.Tenant = appsv1alpha1.BatchTenant
	w.Spec.BatchQueue = queue
	w.Spec.Quota = nil
	return w
}

// Clusters places it on n clusters.
func (w *appNamespaceWrapper) Clusters(n int32) *appNamespaceWrapper {
	w.Spec.Placement = &appsv1alpha1.Placement{Clusters: &n}
	return w
}

func (w *appNamespaceWrapper) Quota(cpu, memory string) *appNamespaceWrapper {
	w.Spec.Quota = resources(cpu, memory)
	return w
}

func (w *appNamespaceWrapper) Owner(kind appsv1alpha1.SubjectKind, name string, role appsv1alpha1.OwnerRole) *appNamespaceWrapper {
	w.Spec.Owners = append(w.Spec.Owners, appsv1alpha1.Owner{Kind: kind, Name: name, Role: role})
	return w
}

func (w *appNamespaceWrapper) Obj() *appsv1alpha1.AppNamespace {
	return &w.AppNamespace
}

// readyCluster is a Ready Cluster whose Ready Nodes of each profile have
// the allocatable given as profile -> {cpu, memory}.
func readyCluster(name string, profiles map[string][2]string) fleetv1alpha1.Cluster {
	c := testutil.MakeCluster(name, "strata-system").
		Condition(metav1.Condition{Type: fleetv1alpha1.ClusterReadyCondition, Status: metav1.ConditionTrue, Reason: fleetv1alpha1.ClusterReachableReason}).
		Obj()
	for profile, r := range profiles {
		c.Status.Profiles = append(c.Status.Profiles, fleetv1alpha1.ProfileNodes{Name: profile, ReadyNodes: 1, Allocatable: resources(r[0], r[1])})
	}
	return *c
}

// readyPool is a Pool of the profile in the cluster with ready Ready Nodes.
func readyPool(name, cluster, profile string, ready int32) fleetv1alpha1.Pool {
	p := testutil.MakePool(name, cluster, ready).Profile(profile).Obj()
	p.Status.Ready = ready
	return *p
}

func resources(cpu, memory string) corev1.ResourceList {
	l := corev1.ResourceList{}
	if cpu != "" {
		l[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if memory != "" {
		l[corev1.ResourceMemory] = resource.MustParse(memory)
	}
	return l
}
