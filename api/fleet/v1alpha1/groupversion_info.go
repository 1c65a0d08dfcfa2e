// Package v1alpha1 holds the hub's fleet API: the workload clusters registered
// to the hub and, later, their pools and maintenance rollouts.
//
// +kubebuilder:object:generate=true
// +groupName=fleet.strata.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of the fleet API.
	GroupVersion = schema.GroupVersion{Group: "fleet.strata.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the fleet types with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the fleet types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
