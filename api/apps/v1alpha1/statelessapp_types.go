package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of a StatelessApp.
const (
	// StatelessAppReadyCondition is True when every replica runs the wanted
	// versions and is available.
	StatelessAppReadyCondition = "Ready"
	// StatelessAppProgressingCondition is True while a change rolls out
	// within the progress deadline; False with ProgressDeadlineExceeded when
	// the rollout failed.
	StatelessAppProgressingCondition = "Progressing"
	// StatelessAppDegradedCondition is True when pods fail; its reason is
	// the failure category (App or Infra), status.failure has the details.
	StatelessAppDegradedCondition = "Degraded"
)

// Condition reasons of a StatelessApp.
const (
	// AvailableReason: every replica is available (Ready).
	AvailableReason = "Available"
	// RollingOutReason: a change is rolling out (Progressing True).
	RollingOutReason = "RollingOut"
	// RolledOutReason: the last change rolled out (Progressing False).
	RolledOutReason = "RolledOut"
	// ProgressDeadlineExceededReason: the rollout made no progress within
	// spec.progressDeadlineSeconds: it failed.
	ProgressDeadlineExceededReason = "ProgressDeadlineExceeded"
	// ReplicasUnavailableReason: some replicas are not available yet.
	ReplicasUnavailableReason = "ReplicasUnavailable"
	// NoFailureReason: no pod is failing (Degraded False).
	NoFailureReason = "NoFailure"
	// PlatformNotFoundReason: the cluster has no AppPlatform "default" to
	// expand the app with.
	PlatformNotFoundReason = "PlatformNotFound"
	// ExpansionFailedReason: the workload could not be written; the message
	// has the API server's answer.
	ExpansionFailedReason = "ExpansionFailed"
)

// FailureCategory says whose problem a failure is.
// +kubebuilder:validation:Enum=App;Infra
type FailureCategory string

// Failure categories: App failures are the app owner's to fix (crash loop,
// failing probes, out of memory, bad image); Infra failures the platform's
// (no capacity or unschedulable, node lost, volume or network faults).
const (
	AppFailure   FailureCategory = "App"
	InfraFailure FailureCategory = "Infra"
)

// Canary runs a share of the replicas on another version.
type Canary struct {
	// appVersion the canary pods run.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_][-A-Za-z0-9_.]*$`
	AppVersion string `json:"appVersion"`

	// configVersion the canary pods run; the app's when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^([A-Za-z0-9_][-A-Za-z0-9_.]*)?$`
	ConfigVersion string `json:"configVersion,omitempty"`

	// percent of the replicas that run the canary, rounded up (at least one
	// pod). The AppPlatform's guardrails bound it.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent"`
}

// Resources are what each replica's app container requests (and is limited to).
type Resources struct {
	// cpu of each replica.
	// +required
	CPU resource.Quantity `json:"cpu"`
	// memory of each replica.
	// +required
	Memory resource.Quantity `json:"memory"`
}

// StatelessAppSpec is the app, in about ten lines. To promote a canary, set
// appVersion (and configVersion) to the canary's.
type StatelessAppSpec struct {
	// application is the app's name in the artifact repository: the image is
	// the AppPlatform's imageRepository/application:appVersion.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Application string `json:"application"`

	// appVersion is the version the stable pods run.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_][-A-Za-z0-9_.]*$`
	AppVersion string `json:"appVersion"`

	// configVersion is the version of the app's configuration, which the
	// platform's config init container fetches.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^([A-Za-z0-9_][-A-Za-z0-9_.]*)?$`
	ConfigVersion string `json:"configVersion,omitempty"`

	// replicas in all, stable and canary.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	Replicas int32 `json:"replicas"`

	// resources of each replica's app container.
	// +required
	Resources Resources `json:"resources"`

	// port the app serves on: the Service's target and the probes' port.
	// +optional
	// +kubebuilder:default=8080
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// canary, when set, runs percent of the replicas on another version.
	// +optional
	Canary *Canary `json:"canary,omitempty"`

	// maxSurgePercent is how many pods above replicas a rollout may create,
	// in percent; the AppPlatform's guardrails bound it.
	// +optional
	// +kubebuilder:default=25
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxSurgePercent int32 `json:"maxSurgePercent,omitempty"`

	// progressDeadlineSeconds: a rollout that makes no progress for this
	// long is marked failed (Progressing False, ProgressDeadlineExceeded).
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=10
	ProgressDeadlineSeconds int32 `json:"progressDeadlineSeconds,omitempty"`
}

// Failure is why pods of the app fail, and whose problem it is.
type Failure struct {
	// category: App or Infra.
	// +required
	Category FailureCategory `json:"category"`

	// reason is the most common failure, e.g. CrashLoopBackOff,
	// ImagePullBackOff, OOMKilled, ReadinessProbeFailing, Unschedulable,
	// NodeLost, QuotaExceeded.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Reason string `json:"reason"`

	// message explains it in a sentence, with what the pods report.
	// +required
	// +kubebuilder:validation:MaxLength=32768
	Message string `json:"message"`

	// pods are some of the offending pods (at most 10).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	Pods []string `json:"pods,omitempty"`

	// failingPods counts all pods failing this way.
	// +optional
	FailingPods int32 `json:"failingPods,omitempty"`
}

// TrackStatus counts the pods of one track (stable or canary).
type TrackStatus struct {
	// appVersion and configVersion the track's pods are meant to run.
	// +optional
	AppVersion string `json:"appVersion,omitempty"`
	// +optional
	ConfigVersion string `json:"configVersion,omitempty"`
	// replicas wanted on this track.
	// +optional
	Replicas int32 `json:"replicas"`
	// updatedReplicas run the wanted versions.
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas"`
	// readyReplicas are Ready.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`
}

// StatelessAppStatus says whether the app runs, and why not.
type StatelessAppStatus struct {
	// observedGeneration is the generation of the spec that this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// replicas is the number of pods (scale subresource).
	// +optional
	Replicas int32 `json:"replicas"`

	// readyReplicas counts Ready pods, both tracks.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`

	// selector of the app's pods, for the scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`

	// stable and canary count each track's pods.
	// +optional
	Stable TrackStatus `json:"stable,omitempty"`
	// +optional
	Canary *TrackStatus `json:"canary,omitempty"`

	// conditions: Ready, Progressing, Degraded.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// failure is set while pods fail: category, reason, message, pods.
	// +optional
	Failure *Failure `json:"failure,omitempty"`
}

// StatelessApp is a stateless app in about ten lines, which Strata expands
// into the full workload: a stable and a canary Deployment with the
// platform's infra containers and probes, spread across maintenance zones,
// a PodDisruptionBudget and a Service.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=strata,shortName=sapp
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:printcolumn:name="App",type=string,JSONPath=`.spec.application`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.appVersion`
// +kubebuilder:printcolumn:name="Canary",type=string,JSONPath=`.spec.canary.appVersion`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Failure",type=string,JSONPath=`.status.failure.category`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type StatelessApp struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the app.
	// +required
	Spec StatelessAppSpec `json:"spec"`

	// status is how it runs.
	// +optional
	Status StatelessAppStatus `json:"status,omitempty"`
}

// StatelessAppList is a list of StatelessApps.
//
// +kubebuilder:object:root=true
type StatelessAppList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StatelessApp `json:"items"`
}
