package appnamespace

// What the AppNamespace controller does on the hub (it runs in `strata
// serve hub`), for the strata-hub ClusterRole (config/rbac/hub, generated
// by `make generate`): its finalizer and status on AppNamespaces, the
// Clusters and Pools it routes by, and events; for tenant batch, the
// namespace on the hub and its owners' RoleBindings (to the view, edit and
// admin ClusterRoles, which needs bind on those three); for the other
// tenants, the namespace on the hub too, with its owners' RoleBindings and a
// ResourceQuota of no pods. The namespaces,
// quotas and RoleBindings it writes on the workload clusters are in
// internal/cluster/remote/rbac.go.

// +kubebuilder:rbac:groups=apps.strata.dev,resources=appnamespaces,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=apps.strata.dev,resources=appnamespaces/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps.strata.dev,resources=appnamespaces/finalizers,verbs=update
// +kubebuilder:rbac:groups=fleet.strata.dev,resources=clusters;pools,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps.strata.dev,resources=batchqueues,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;create;patch;delete
// +kubebuilder:rbac:groups="",resources=resourcequotas,verbs=create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings,verbs=list;create;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind,resourceNames=view;edit;admin
