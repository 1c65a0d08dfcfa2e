// Package v1alpha1 holds Strata's workload API: app namespaces on the hub,
// and in each workload cluster the apps that run there and the platform
// configuration they are expanded with.
//
// +kubebuilder:object:generate=true
// +groupName=apps.strata.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of the workload API.
var GroupVersion = schema.GroupVersion{Group: "apps.strata.dev", Version: "v1alpha1"}

var schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

// AddToScheme adds the workload types to a scheme.
var AddToScheme = schemeBuilder.AddToScheme

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&AppNamespace{}, &AppNamespaceList{},
		&StatelessApp{}, &StatelessAppList{},
		&AppPlatform{}, &AppPlatformList{},
		&StatefulApp{}, &StatefulAppList{},
		&BatchQueue{}, &BatchQueueList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
