package install

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// Images of the default platform's infra containers and apps.
const (
	DefaultImageRepository = "registry.strata.local/apps"
	ConfigInitImage        = "registry.strata.local/platform/config-init:1.0"
	LogShipperImage        = "registry.strata.local/platform/log-shipper:1.0"
)

// DefaultPlatform is the AppPlatform "default" that Workload creates in a
// cluster that has none: apps from DefaultImageRepository, a config init
// container that fetches the app's config version, a log shipper sidecar,
// and the guardrails' bounds spelled out (they are the CRD's defaults).
func DefaultPlatform() *appsv1alpha1.AppPlatform {
	small := func(cpu, memory string) appsv1alpha1.Resources {
		return appsv1alpha1.Resources{CPU: resource.MustParse(cpu), Memory: resource.MustParse(memory)}
	}
	return &appsv1alpha1.AppPlatform{
		TypeMeta:   metav1.TypeMeta{APIVersion: appsv1alpha1.GroupVersion.String(), Kind: "AppPlatform"},
		ObjectMeta: metav1.ObjectMeta{Name: appsv1alpha1.PlatformName},
		Spec: appsv1alpha1.AppPlatformSpec{
			ImageRepository: DefaultImageRepository,
			InitContainers: []appsv1alpha1.InfraContainer{{
				Name:      "config-init",
				Image:     ConfigInitImage,
				Args:      []string{"fetch", "--app=$(STRATA_APP)", "--config-version=$(STRATA_CONFIG_VERSION)"},
				Resources: small("50m", "32Mi"),
			}},
			Sidecars: []appsv1alpha1.InfraContainer{{
				Name:      "log-shipper",
				Image:     LogShipperImage,
				Args:      []string{"--app=$(STRATA_APP)", "--app-version=$(STRATA_APP_VERSION)"},
				Resources: small("50m", "64Mi"),
			}},
			Probes:                appsv1alpha1.Probes{ReadinessPath: "/ready", LivenessPath: "/health"},
			MaxUnavailablePercent: 10,
			Guardrails: appsv1alpha1.Guardrails{
				MaxScaleDownPercent: 50,
				MaxSurgePercent:     50,
				MaxCanaryPercent:    50,
			},
		},
	}
}

// Names of the ClusterRoles that Kubernetes' view, edit and admin roles
// aggregate, in a workload cluster and on the hub (their own names, so
// that an API server that is both, as in tests, keeps both).
const (
	ViewClusterRole    = "strata-apps-view"
	EditClusterRole    = "strata-apps-edit"
	HubViewClusterRole = "strata-hub-apps-view"
	HubEditClusterRole = "strata-hub-apps-edit"
)

// Aggregation labels of the Kubernetes user-facing roles.
const (
	aggregateToView  = "rbac.authorization.k8s.io/aggregate-to-view"
	aggregateToEdit  = "rbac.authorization.k8s.io/aggregate-to-edit"
	aggregateToAdmin = "rbac.authorization.k8s.io/aggregate-to-admin"
)

// clusterRoles give the apps' API of a workload cluster to Kubernetes'
// roles: view reads StatelessApps and StatefulApps (their scale and status
// too) and the AppPlatform; edit and admin also write and scale them.
func clusterRoles() []client.Object {
	return appRoles(ViewClusterRole, EditClusterRole, []string{"statelessapps", "statefulapps"}, "appplatforms")
}

// hubClusterRoles give the apps' API of the hub to Kubernetes' roles: the
// StatelessApps declared there, which an app namespace's owners read (view)
// or write (edit, admin) as they do in a workload cluster.
func hubClusterRoles() []client.Object {
	return appRoles(HubViewClusterRole, HubEditClusterRole, []string{"statelessapps"})
}

// appRoles are the ClusterRoles that give Kubernetes' view, edit and admin
// roles the apps of kinds (their scale and status too) and, to read only,
// the readOnly resources. Each is labelled for every role that includes it,
// as Kubernetes' own aggregated roles are, so an AppNamespace owner's
// RoleBinding to view, edit or admin covers the apps.
func appRoles(view, edit string, kinds []string, readOnly ...string) []client.Object {
	group := []string{appsv1alpha1.GroupVersion.Group}
	role := func(name string, aggregateTo []string, rules ...rbacv1.PolicyRule) client.Object {
		labels := map[string]string{}
		for _, l := range aggregateTo {
			labels[l] = "true"
		}
		return &rbacv1.ClusterRole{
			TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRole"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Rules:      rules,
		}
	}
	var read, scale []string
	for _, k := range kinds {
		read = append(read, k, k+"/scale", k+"/status")
		scale = append(scale, k+"/scale")
	}
	return []client.Object{
		role(view, []string{aggregateToView, aggregateToEdit, aggregateToAdmin},
			rbacv1.PolicyRule{APIGroups: group, Resources: append(read, readOnly...), Verbs: []string{"get", "list", "watch"}},
		),
		role(edit, []string{aggregateToEdit, aggregateToAdmin},
			rbacv1.PolicyRule{APIGroups: group, Resources: kinds, Verbs: []string{"create", "update", "patch", "delete", "deletecollection"}},
			rbacv1.PolicyRule{APIGroups: group, Resources: scale, Verbs: []string{"update", "patch"}},
		),
	}
}

// LocalSSD is the StorageClass of the local volumes that StatefulApps claim
// (appsv1alpha1.LocalSSDStorageClass). Local volumes are made per Node by a
// local-volume provisioner (in the local datacenter, the sim provisioner,
// for Nodes of SKUs with large local disks), not on demand: no provisioner.
// A claim binds only when its pod is scheduled (WaitForFirstConsumer), so
// the scheduler picks a Node that fits the pod and has a free volume; from
// then on the volume's node affinity brings the pod back to that Node.
// Reclaim policy Delete: a claim is deleted only when Strata moved or
// removed its pod with the shard manager's approval, and its data is no
// longer wanted; the provisioner then cleans the volume and offers it again.
func LocalSSD() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		TypeMeta:          metav1.TypeMeta{APIVersion: storagev1.SchemeGroupVersion.String(), Kind: "StorageClass"},
		ObjectMeta:        metav1.ObjectMeta{Name: appsv1alpha1.LocalSSDStorageClass},
		Provisioner:       NoProvisioner,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
}

// NoProvisioner is the provisioner of StorageClasses whose volumes are made
// ahead, not on demand.
const NoProvisioner = "kubernetes.io/no-provisioner"
