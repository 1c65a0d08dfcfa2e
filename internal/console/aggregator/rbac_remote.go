package aggregator

// What the aggregator reads in every WORKLOAD CLUSTER, through the
// kubeconfig of its Cluster's Secret: a ClusterRole to install in the
// workload clusters (not the hub's). Not generated into the hub's role.
//
//	nodes, pods, events (core):                    get, list, watch
//	statelessapps, statefulapps (apps.strata.dev): get, list, watch
//
// The same, as markers for a controller-gen run over this file alone:
//
//	+kubebuilder:rbac:groups="",resources=nodes;pods;events,verbs=get;list;watch
//	+kubebuilder:rbac:groups=apps.strata.dev,resources=statelessapps;statefulapps,verbs=get;list;watch
