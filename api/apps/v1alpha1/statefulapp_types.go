package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of a StatefulApp.
const (
	// StatefulAppReadyCondition is True when every pod runs the wanted
	// version and is Ready, and no operation is pending.
	StatefulAppReadyCondition = "Ready"
	// StatefulAppProgressingCondition is True while operations (updates,
	// evictions for disruptions) are under way or waiting.
	StatefulAppProgressingCondition = "Progressing"
	// ShardManagerReachableCondition is False when the shard manager did not
	// answer: every operation on the app waits (nothing is stopped).
	ShardManagerReachableCondition = "ShardManagerReachable"
)

// Condition reasons of a StatefulApp.
const (
	// ShardManagerAnsweredReason: the last call to the shard manager answered.
	ShardManagerAnsweredReason = "Answered"
	// ShardManagerUnreachableReason: the shard manager did not answer; the
	// message has the error. Operations wait.
	ShardManagerUnreachableReason = "ShardManagerUnreachable"
	// WaitingForShardManagerReason: operations wait for the shard manager's
	// approval (denied or retry-after); the message says which and why.
	WaitingForShardManagerReason = "WaitingForShardManager"
	// OperationsInProgressReason: approved operations are under way.
	OperationsInProgressReason = "OperationsInProgress"
	// PodsNotReadyReason: pods are not Ready (starting, Pending).
	PodsNotReadyReason = "PodsNotReady"
	// ShardManagerNotAskedReason: no operation has needed the shard
	// manager since the controller started (ShardManagerReachable Unknown).
	ShardManagerNotAskedReason = "NotAsked"
	// ShardManagerCAUnavailableReason: the CA that spec.shardManager.tls
	// names cannot be read: the Secret or its key is missing, or it holds
	// no PEM certificate. The message names the Secret and key. Nothing is
	// dialled (never in plaintext instead); operations wait.
	ShardManagerCAUnavailableReason = "CAUnavailable"
	// ShardManagerTLSHandshakeFailedReason: the shard manager was reached
	// but the TLS handshake failed (its certificate does not chain to the
	// CA, names another server, or it does not speak TLS). Operations wait.
	ShardManagerTLSHandshakeFailedReason = "TLSHandshakeFailed"
	// ShardManagerTransportInvalidReason: the spec names no transport (an
	// app stored before spec.shardManager.transport existed), or TLS
	// without a CA, or Plaintext with one: nothing is dialled until it
	// says TLS or Plaintext, consistently.
	ShardManagerTransportInvalidReason = "TransportInvalid"
)

// Well-known annotations of a StatefulApp's pods.
const (
	// StatefulAppLabel is the StatefulApp a pod or PVC belongs to.
	StatefulAppLabel = "apps.strata.dev/stateful-app"
	// OperationAnnotation is the operation pending on a pod, kept on the
	// pod's PersistentVolumeClaim (which outlives the pod's incarnations) as
	// JSON: id, kind, reason, deadline, state, message, since, podUID, node.
	// A restarted Strata finds it there and asks again by the same id.
	OperationAnnotation = "apps.strata.dev/operation"
	// StopApprovedAnnotation names the operation whose approval lets the
	// pod be evicted ("<id>@<deadline>"): the eviction guardrail admits an
	// eviction of a StatefulApp pod only while it is set, not past its
	// deadline, and matching the approved Evict recorded on the pod's PVC.
	StopApprovedAnnotation = "apps.strata.dev/stop-approved"
	// StopRequestedAnnotation, set on a pod by a person (any value: the
	// reason), asks Strata to request an EVICT operation for it from the
	// shard manager, as a disruption does; the eviction is admitted once it
	// is approved.
	StopRequestedAnnotation = "apps.strata.dev/stop-requested"
)

// OperationState is where an operation on a pod is.
// +kubebuilder:validation:Enum=Requested;Approved;Denied;RetryAfter;Stopping;WaitingForPod;Completing
type OperationState string

// Operation states.
const (
	OperationRequested     OperationState = "Requested"
	OperationApproved      OperationState = "Approved"
	OperationDenied        OperationState = "Denied"
	OperationRetryAfter    OperationState = "RetryAfter"
	OperationStopping      OperationState = "Stopping"
	OperationWaitingForPod OperationState = "WaitingForPod"
	OperationCompleting    OperationState = "Completing"
)

// PodOperation is an operation Strata runs on a pod, and where it is.
type PodOperation struct {
	// id is the operation's id in the shard-manager protocol.
	ID string `json:"id"`
	// kind: Restart, Evict, Move or Remove.
	// +kubebuilder:validation:Enum=Restart;Evict;Move;Remove
	Kind string `json:"kind"`
	// reason in words.
	// +optional
	Reason string `json:"reason,omitempty"`
	// state of the operation.
	State OperationState `json:"state"`
	// message is the shard manager's last answer or what Strata waits for.
	// +optional
	Message string `json:"message,omitempty"`
	// since is when the operation entered its state.
	// +optional
	Since metav1.Time `json:"since,omitempty"`
}

// ShardManagerTransport is how Strata's calls reach the shard manager.
// +kubebuilder:validation:Enum=TLS;Plaintext
type ShardManagerTransport string

// Transports of the shard-manager protocol.
const (
	// TransportTLS: Strata dials the shard manager over TLS and verifies its
	// certificate against the CA that spec.shardManager.tls names.
	TransportTLS ShardManagerTransport = "TLS"
	// TransportPlaintext: Strata dials the shard manager without TLS; anyone
	// on the path reads and may forge its answers (approvals included).
	TransportPlaintext ShardManagerTransport = "Plaintext"
)

// DefaultCAKey is the key of the CA in the Secret that
// spec.shardManager.tls.caSecretRef names, unless it says another (the key
// cert-manager writes the issuing CA under).
const DefaultCAKey = "ca.crt"

// SecretKeyRef names a key of a Secret in the StatefulApp's namespace.
type SecretKeyRef struct {
	// name of the Secret, in the StatefulApp's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// key of the PEM-encoded CA certificate(s) in the Secret's data.
	// +optional
	// +kubebuilder:default=ca.crt
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// ShardManagerTLS is how Strata verifies the shard manager's certificate.
type ShardManagerTLS struct {
	// caSecretRef names the Secret (in the app's namespace) and key holding
	// the PEM CA certificate(s) the shard manager's certificate must chain
	// to. Strata watches it: a rotated CA is used from the next call on.
	// +required
	CASecretRef SecretKeyRef `json:"caSecretRef"`
	// serverName the shard manager's certificate must be valid for; empty:
	// the endpoint's host.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServerName string `json:"serverName,omitempty"`
}

// ShardManager is how Strata reaches the app's shard manager.
//
// +kubebuilder:validation:XValidation:rule="!has(self.transport) || self.transport != 'TLS' || has(self.tls)",message="spec.shardManager.tls (caSecretRef) is required when spec.shardManager.transport is TLS",fieldPath=".tls"
// +kubebuilder:validation:XValidation:rule="!has(self.transport) || self.transport != 'Plaintext' || !has(self.tls)",message="spec.shardManager.tls must not be set when spec.shardManager.transport is Plaintext: choose one",fieldPath=".tls"
type ShardManager struct {
	// endpoint is the shard manager's gRPC address (host:port), serving
	// strata.shardmanager.v1.ShardManagerService.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Endpoint string `json:"endpoint"`

	// transport is how Strata dials the endpoint, stated explicitly: TLS
	// (with tls.caSecretRef, the CA that verifies the shard manager) or
	// Plaintext (no TLS: anyone on the network path can read and forge the
	// shard manager's answers, approvals included). There is no default.
	// +required
	Transport ShardManagerTransport `json:"transport"`

	// tls says how the shard manager's certificate is verified; required
	// with transport TLS, refused with Plaintext.
	// +optional
	TLS *ShardManagerTLS `json:"tls,omitempty"`

	// callTimeoutSeconds bounds each call; a call that times out is no
	// answer (the operation waits), never an approval.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=60
	CallTimeoutSeconds int32 `json:"callTimeoutSeconds,omitempty"`

	// approvalSeconds is how long an approval lets Strata stop the pod (the
	// operation's deadline); after it Strata asks again.
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=10
	ApprovalSeconds int32 `json:"approvalSeconds,omitempty"`
}

// Storage is each pod's local data volume.
type Storage struct {
	// size of each pod's PersistentVolumeClaim.
	// +required
	Size resource.Quantity `json:"size"`
	// storageClassName of the claims: local volumes bind the pod to its Node.
	// +optional
	// +kubebuilder:default=local-ssd
	StorageClassName string `json:"storageClassName,omitempty"`
}

// StatefulCanary runs the highest-numbered pods on another version.
type StatefulCanary struct {
	// version the canary pods run.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	Version string `json:"version"`
	// replicas that run the canary (the highest ordinals).
	// +required
	// +kubebuilder:validation:Minimum=1
	Replicas int32 `json:"replicas"`
}

// StatefulAppSpec is a stateful app: pods with stable identity and local
// data, which Strata stops only with its shard manager's approval.
type StatefulAppSpec struct {
	// application is the app's name in the artifact repository (the image
	// is the AppPlatform's imageRepository/application:version).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Application string `json:"application"`

	// version the pods run.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	Version string `json:"version"`

	// replicas: pods <name>-0 .. <name>-(replicas-1).
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Replicas int32 `json:"replicas"`

	// resources of each pod's app container.
	// +required
	Resources Resources `json:"resources"`

	// storage of each pod.
	// +required
	Storage Storage `json:"storage"`

	// port the app serves on.
	// +optional
	// +kubebuilder:default=8080
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// shardManager is asked before any pod is stopped.
	// +required
	ShardManager ShardManager `json:"shardManager"`

	// maxConcurrentOperations caps the operations Strata asks for at once
	// for updates (the shard manager may approve fewer). Disruptions of
	// Nodes are asked for as they come.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxConcurrentOperations int32 `json:"maxConcurrentOperations,omitempty"`

	// canary, when set, runs the highest-numbered pods on another version.
	// +optional
	Canary *StatefulCanary `json:"canary,omitempty"`
}

// StatefulPodStatus is one pod of a StatefulApp.
type StatefulPodStatus struct {
	// name of the pod.
	Name string `json:"name"`
	// node it runs on (its data lives there).
	// +optional
	Node string `json:"node,omitempty"`
	// version it runs.
	// +optional
	Version string `json:"version,omitempty"`
	// ready: the pod is Ready.
	Ready bool `json:"ready"`
	// operation pending on the pod, if any.
	// +optional
	Operation *PodOperation `json:"operation,omitempty"`
}

// StatefulAppStatus says how the app runs and what waits on whom.
type StatefulAppStatus struct {
	// observedGeneration is the generation of the spec that this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// replicas is the number of pods.
	// +optional
	Replicas int32 `json:"replicas"`
	// readyReplicas counts Ready pods.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`
	// updatedReplicas counts pods on their wanted version.
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas"`
	// selector of the pods, for the scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`
	// pods, by ordinal.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=1000
	Pods []StatefulPodStatus `json:"pods,omitempty"`
	// shardManagerTransport is how Strata dials the shard manager: TLS or
	// Plaintext (as spec.shardManager.transport says; empty while the spec
	// names none).
	// +optional
	ShardManagerTransport ShardManagerTransport `json:"shardManagerTransport,omitempty"`
	// conditions: Ready, Progressing, ShardManagerReachable.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// StatefulApp is a stateful app whose pods hold different shards: no pod is
// stopped, evicted or moved without the app's shard manager agreeing,
// through the shard-manager protocol (strata.shardmanager.v1).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=strata,shortName=stapp
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:printcolumn:name="App",type=string,JSONPath=`.spec.application`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Transport",type=string,JSONPath=`.status.shardManagerTransport`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type StatefulApp struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the app.
	// +required
	Spec StatefulAppSpec `json:"spec"`

	// status is how it runs.
	// +optional
	Status StatefulAppStatus `json:"status,omitempty"`
}

// StatefulAppList is a list of StatefulApps.
//
// +kubebuilder:object:root=true
type StatefulAppList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StatefulApp `json:"items"`
}
