// Package v1alpha1 holds the hub's fleet API: the workload clusters registered
// to the hub, their pools and, later, their maintenance rollouts.
//
// +kubebuilder:object:generate=true
// +groupName=fleet.strata.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of the fleet API.
var GroupVersion = schema.GroupVersion{Group: "fleet.strata.dev", Version: "v1alpha1"}

var schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

// AddToScheme adds the fleet types to a scheme.
var AddToScheme = schemeBuilder.AddToScheme

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&Cluster{}, &ClusterList{},
		&Pool{}, &PoolList{},
		&MaintenanceRollout{}, &MaintenanceRolloutList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
