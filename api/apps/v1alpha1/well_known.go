package v1alpha1

// Well-known labels and annotations of the workload layer.
const (
	// AppLabel is the app a namespace or pod belongs to (AppNamespace
	// spec.app on namespaces; StatelessApp spec.application on pods).
	AppLabel = "apps.strata.dev/app"
	// TenantLabel is the tenant kind of an app namespace.
	TenantLabel = "apps.strata.dev/tenant"
	// AppNamespaceLabel names the hub's AppNamespace that a workload
	// cluster's Namespace (or RoleBinding, ResourceQuota) was made for.
	AppNamespaceLabel = "apps.strata.dev/app-namespace"
	// StatelessAppLabel is the StatelessApp a Deployment, pod, Service or
	// PodDisruptionBudget was expanded from.
	StatelessAppLabel = "apps.strata.dev/stateless-app"
	// TrackLabel tells a StatelessApp's stable pods from its canary pods.
	TrackLabel = "apps.strata.dev/track"
	// AppVersionLabel and ConfigVersionLabel are the versions a pod runs.
	AppVersionLabel    = "apps.strata.dev/app-version"
	ConfigVersionLabel = "apps.strata.dev/config-version"

	// BatchSchedulableLabel, "true" on a Pool Node, says it takes new
	// batch pods: the hub keeps it on every Pool Node but those in a zone a
	// MaintenanceRollout is maintaining or maintains next, and the
	// ResourceFlavors of the jobs platform select it, so that a job's pods
	// never start on a machine about to be disrupted.
	BatchSchedulableLabel = "apps.strata.dev/batch-schedulable"

	// AllowDeleteAnnotation, set to "true", is the explicit override that
	// lets a user-facing Strata object (AppNamespace, StatelessApp, Pool,
	// Cluster) or a non-empty namespace be deleted; the guardrails deny the
	// delete without it.
	AllowDeleteAnnotation = "strata.dev/allow-delete"
)

// Tracks of a StatelessApp's pods.
const (
	StableTrack = "stable"
	CanaryTrack = "canary"
)

// PlatformName is the name of the one AppPlatform of a workload cluster.
const PlatformName = "default"

// LocalSSDStorageClass is the StorageClass of local volumes that Strata
// installs in every workload cluster (no provisioner, bound when the pod is
// scheduled): the default of a StatefulApp's spec.storage.storageClassName.
const LocalSSDStorageClass = "local-ssd"
