// Package v1alpha1 holds the configuration kinds of Strata's components: the
// file each `strata serve <component> --config FILE` reads. They are not
// served by any API server (no CRDs); they are decoded strictly from a file,
// defaulted by Default and checked by Validate.
//
// +kubebuilder:object:generate=true
// +kubebuilder:skip
// +groupName=config.strata.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of the configuration kinds.
var GroupVersion = schema.GroupVersion{Group: "config.strata.dev", Version: "v1alpha1"}

var schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

// AddToScheme adds the configuration kinds to a scheme.
var AddToScheme = schemeBuilder.AddToScheme

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&HubConfiguration{}, &AppsConfiguration{}, &WebhookConfiguration{}, &BrokerConfiguration{}, &BrokerPolicy{},
		&AggregatorConfiguration{}, &ConsoleConfiguration{},
	)
	return nil
}
