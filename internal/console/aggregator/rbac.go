package aggregator

// What the aggregator reads on the HUB, for controller-gen (the lead wires
// it into the aggregator's ClusterRole; leader election's leases are added
// there too).

// +kubebuilder:rbac:groups=fleet.strata.dev,resources=clusters;pools;maintenancerollouts,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps.strata.dev,resources=appnamespaces;statelessapps,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
