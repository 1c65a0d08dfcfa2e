// Package remoterbac holds, for controller-gen, what the fleet aggregator
// reads in every WORKLOAD CLUSTER through the kubeconfig of its Cluster's
// Secret: a ClusterRole for the workload clusters, not the hub (the hub's is
// in package aggregator's rbac.go). A package of its own so that a
// controller-gen run over the aggregator does not grant these on the hub:
//
//	controller-gen rbac:roleName=strata-aggregator-reader paths=./internal/console/aggregator/remoterbac/...
package remoterbac

// +kubebuilder:rbac:groups="",resources=nodes;pods;events,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps.strata.dev,resources=statelessapps;statefulapps,verbs=get;list;watch
