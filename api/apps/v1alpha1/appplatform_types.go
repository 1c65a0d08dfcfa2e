package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// InfraContainer is a container the platform adds to every app pod.
type InfraContainer struct {
	// name of the container.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// image of the container.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`

	// args of the container. The variables $(STRATA_APP),
	// $(STRATA_APP_VERSION) and $(STRATA_CONFIG_VERSION) are set in every
	// container, so args can refer to them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Args []string `json:"args,omitempty"`

	// resources the container requests (and is limited to).
	// +required
	Resources Resources `json:"resources"`
}

// Probes are the platform's health endpoints, on the app's port.
type Probes struct {
	// readinessPath is probed for readiness.
	// +optional
	// +kubebuilder:default="/ready"
	// +kubebuilder:validation:Pattern=`^/`
	ReadinessPath string `json:"readinessPath,omitempty"`
	// livenessPath is probed for liveness.
	// +optional
	// +kubebuilder:default="/health"
	// +kubebuilder:validation:Pattern=`^/`
	LivenessPath string `json:"livenessPath,omitempty"`
}

// Guardrails bound what users may change at once; the admission policies
// read them from the AppPlatform.
type Guardrails struct {
	// maxScaleDownPercent is the largest share of an app's replicas that
	// one change may remove (at least one replica may always go).
	// +optional
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxScaleDownPercent int32 `json:"maxScaleDownPercent,omitempty"`
	// maxSurgePercent bounds a StatelessApp's spec.maxSurgePercent.
	// +optional
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxSurgePercent int32 `json:"maxSurgePercent,omitempty"`
	// maxCanaryPercent bounds a StatelessApp's spec.canary.percent.
	// +optional
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxCanaryPercent int32 `json:"maxCanaryPercent,omitempty"`
}

// AppPlatformSpec is what the platform team sets for every app of the cluster.
type AppPlatformSpec struct {
	// imageRepository holds the apps' images: repository/application:appVersion.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	ImageRepository string `json:"imageRepository"`

	// initContainers run before the app in every pod (e.g. config init).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=8
	InitContainers []InfraContainer `json:"initContainers,omitempty"`

	// sidecars run beside the app in every pod (e.g. a log shipper).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=8
	Sidecars []InfraContainer `json:"sidecars,omitempty"`

	// probes of the app container.
	// +optional
	// +kubebuilder:default={}
	Probes Probes `json:"probes,omitempty"`

	// maxUnavailablePercent of an app's pods that voluntary disruptions
	// (drains) may take at once: the PodDisruptionBudget.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxUnavailablePercent int32 `json:"maxUnavailablePercent,omitempty"`

	// guardrails bound scale-downs, surges and canaries.
	// +optional
	// +kubebuilder:default={}
	Guardrails Guardrails `json:"guardrails,omitempty"`
}

// AppPlatform is the platform configuration of a workload cluster that
// StatelessApps are expanded with: infra containers, probes, disruption
// budget and guardrail bounds. There is one, named "default".
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=strata
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'default'",message="there is one AppPlatform per cluster and its name is default"
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.imageRepository`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AppPlatform struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the platform configuration.
	// +required
	Spec AppPlatformSpec `json:"spec"`
}

// AppPlatformList is a list of AppPlatforms.
//
// +kubebuilder:object:root=true
type AppPlatformList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AppPlatform `json:"items"`
}
