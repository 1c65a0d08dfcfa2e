package appnamespace

// What the AppNamespace controller does on the hub (it runs in `strata
// serve hub`), for the strata-hub ClusterRole (config/rbac/hub, generated
// by `make generate`): its finalizer and status on AppNamespaces, the
// Clusters and Pools it routes by, and events. The namespaces, quotas and
// RoleBindings it writes on the workload clusters are in
// internal/cluster/remote/rbac.go.

// +kubebuilder:rbac:groups=apps.strata.dev,resources=appnamespaces,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=apps.strata.dev,resources=appnamespaces/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps.strata.dev,resources=appnamespaces/finalizers,verbs=update
// +kubebuilder:rbac:groups=fleet.strata.dev,resources=clusters;pools,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
