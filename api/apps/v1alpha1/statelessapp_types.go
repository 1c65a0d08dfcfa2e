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

// Condition types and reasons of a StatelessApp declared on the hub.
const (
	// StatelessAppReleasedCondition is True when every cluster of the app
	// runs its version; False while a release goes wave by wave, and why it
	// waits or stopped.
	StatelessAppReleasedCondition = "Released"

	// NoClustersReason (Ready): the app's AppNamespace is on no cluster
	// that can run it (none placed, all unreachable or cordoned).
	NoClustersReason = "NoClusters"
	// InvalidWeightsReason (Ready): spec.fleet.weights give the app's
	// clusters no replicas (they sum to zero); nothing is changed.
	InvalidWeightsReason = "InvalidWeights"
	// MovingReason (Ready): replicas move between clusters (a cluster
	// cordoned, lost or back); the ones leaving stay until those replacing
	// them are Ready.
	MovingReason = "Moving"

	// ReleasedReason: the release is complete.
	ReleasedReason = "Released"
	// ReleasingReason: a wave rolls out or soaks.
	ReleasingReason = "Releasing"
	// ReleasePausedReason: the release stopped on an App failure in a
	// cluster, or the owner paused it; the message names the cluster and
	// the failure, and how to go on.
	ReleasePausedReason = "ReleasePaused"
	// ReleaseWaitingReason: a wave waits on an Infra failure (no capacity,
	// Nodes lost) or an unreachable cluster; it goes on by itself.
	ReleaseWaitingReason = "ReleaseWaiting"
	// ReleaseBlockedReason: a new version was asked for while a release is
	// paused; nothing of it is rolled out until the paused release is
	// rolled back or resumed.
	ReleaseBlockedReason = "ReleaseBlocked"
)

// HubAppLabel, on a StatelessApp in a workload cluster, names the hub's
// StatelessApp it was written from (namespace/name are the same): the hub
// writes and deletes only the apps that carry it.
const HubAppLabel = "apps.strata.dev/hub-app"

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

	// fleet, on the hub only, says how the app is divided over its
	// AppNamespace's clusters and how a new version is released to them.
	// It is not written to the workload clusters.
	// +optional
	Fleet *Fleet `json:"fleet,omitempty"`

	// progressDeadlineSeconds: a rollout that makes no progress for this
	// long is marked failed (Progressing False, ProgressDeadlineExceeded).
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=10
	ProgressDeadlineSeconds int32 `json:"progressDeadlineSeconds,omitempty"`
}

// Fleet is how a StatelessApp declared on the hub runs over its clusters.
type Fleet struct {
	// weights divide the replicas over the clusters by name; a cluster not
	// named weighs 1. A cluster with a weight above zero gets at least one
	// replica while there are as many replicas as clusters; a weight of 0
	// gives it none (it keeps the app, scaled to zero).
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k] >= 0 && self[k] <= 1000)",message="weights are from 0 to 1000"
	Weights map[string]int32 `json:"weights,omitempty"`

	// release says how a new version reaches the clusters.
	// +optional
	Release Release `json:"release,omitempty"`
}

// Release is how a new version (appVersion, configVersion) of a StatelessApp
// declared on the hub reaches its clusters: the canary cluster first, then
// waves of clustersPerWave, each once the previous wave's apps have been
// Ready for soakSeconds. An App failure in a released cluster pauses it; an
// Infra failure makes it wait. Setting the version back to the one before
// the release rolls back every cluster at once.
type Release struct {
	// canaryCluster is released first; the first of the app's clusters by
	// name when empty or not one of them.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	CanaryCluster string `json:"canaryCluster,omitempty"`

	// clustersPerWave after the canary cluster.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	ClustersPerWave int32 `json:"clustersPerWave,omitempty"`

	// soakSeconds a wave's apps stay Ready before the next wave starts.
	// +optional
	// +kubebuilder:default=60
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	SoakSeconds int32 `json:"soakSeconds,omitempty"`

	// paused stops the release before its next wave.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// resumeVersion, set to the appVersion of a release that an App failure
	// paused, goes on with it regardless of that failure.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	ResumeVersion string `json:"resumeVersion,omitempty"`
}

// ClusterAppStatus is how a StatelessApp declared on the hub runs in one of
// its clusters.
type ClusterAppStatus struct {
	// cluster is the workload cluster's name.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Cluster string `json:"cluster"`

	// state: Active (has its share), Cordoned, Unreachable (nothing is
	// changed there until it is back) or Conflict (a StatelessApp of the
	// same name that the hub did not write is there, and is left alone).
	// +optional
	State string `json:"state,omitempty"`

	// replicas the hub asks of the cluster now (moves go up elsewhere
	// first), and the share it is meant to have.
	// +optional
	Replicas int32 `json:"replicas"`
	// +optional
	Share int32 `json:"share"`

	// readyReplicas the cluster's app reports.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`

	// appVersion and configVersion the cluster's app runs.
	// +optional
	AppVersion string `json:"appVersion,omitempty"`
	// +optional
	ConfigVersion string `json:"configVersion,omitempty"`

	// ready says whether the cluster's app is Ready at its version.
	// +optional
	Ready bool `json:"ready"`

	// failure is the cluster's app's failure, if any.
	// +optional
	Failure *Failure `json:"failure,omitempty"`

	// message says what the hub sees of the cluster, in words.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// ReleaseStatus is the last release of a StatelessApp declared on the hub.
type ReleaseStatus struct {
	// appVersion and configVersion released.
	// +optional
	AppVersion string `json:"appVersion,omitempty"`
	// +optional
	ConfigVersion string `json:"configVersion,omitempty"`

	// previousAppVersion and previousConfigVersion every cluster ran before
	// this release: setting the app's version back to them rolls back.
	// +optional
	PreviousAppVersion string `json:"previousAppVersion,omitempty"`
	// +optional
	PreviousConfigVersion string `json:"previousConfigVersion,omitempty"`

	// phase: Releasing, Paused, Waiting, Blocked or Released.
	// +optional
	Phase string `json:"phase,omitempty"`

	// wave is the wave rolling out or soaking, from 1 (the canary cluster).
	// +optional
	Wave int32 `json:"wave,omitempty"`

	// failedCluster is the cluster whose App failure paused the release:
	// the pause holds until the owner resumes it (spec.fleet.release.
	// resumeVersion) or rolls it back.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	FailedCluster string `json:"failedCluster,omitempty"`

	// released are the clusters given the release's version, in order.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Released []string `json:"released,omitempty"`

	// waveReadySince is when the current wave's apps were all Ready; the
	// next wave starts soakSeconds after it.
	// +optional
	WaveReadySince *metav1.Time `json:"waveReadySince,omitempty"`

	// startTime and completionTime of the release.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// message says what the release waits for, or why it stopped.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Message string `json:"message,omitempty"`
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

	// clusters, on the hub, is how the app runs in each of its clusters.
	// +optional
	// +listType=map
	// +listMapKey=cluster
	// +kubebuilder:validation:MaxItems=64
	Clusters []ClusterAppStatus `json:"clusters,omitempty"`

	// release, on the hub, is the last release and where it is.
	// +optional
	Release *ReleaseStatus `json:"release,omitempty"`
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
