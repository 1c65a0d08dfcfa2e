package statefulapp

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// Kinds of operations, as the API's PodOperation.kind names them.
const (
	KindRestart = "Restart"
	KindEvict   = "Evict"
	KindMove    = "Move"
	KindRemove  = "Remove"
)

// OperationCountAnnotation, on a pod's PVC, counts the operations Strata
// started on the pod's data: the next operation's id ends with the count.
const OperationCountAnnotation = "apps.strata.dev/operation-count"

// Record is the operation pending on a pod, kept on the pod's
// PersistentVolumeClaim (appsv1alpha1.OperationAnnotation, JSON): the claim
// outlives the pod's incarnations and the controller, so a restarted
// controller finds the operation and asks for it again by the same id.
type Record struct {
	// ID is the operation's id in the shard-manager protocol.
	ID string `json:"id"`
	// Kind is Restart, Evict, Move or Remove.
	Kind string `json:"kind"`
	// Reason in words.
	Reason string `json:"reason"`
	// Deadline is the one Strata sent with its last request: an approval
	// lets Strata stop the pod only before it. It is written before the
	// request that carries it.
	Deadline time.Time `json:"deadline"`
	// State is where the operation is.
	State appsv1alpha1.OperationState `json:"state"`
	// Message is the shard manager's last answer or what Strata waits for.
	Message string `json:"message,omitempty"`
	// Since is when the operation entered its state.
	Since time.Time `json:"since"`
	// PodUID is the pod incarnation the operation stops (empty when there
	// was no pod): a pod of the same name with another UID is the one
	// Strata made afterwards.
	PodUID types.UID `json:"podUID,omitempty"`
	// Node the pod ran on when Strata asked.
	Node string `json:"node,omitempty"`
}

// approved: the shard manager approved the operation (and Strata may have
// acted on it).
func (r *Record) approved() bool {
	switch r.State {
	case appsv1alpha1.OperationApproved, appsv1alpha1.OperationStopping, appsv1alpha1.OperationWaitingForPod, appsv1alpha1.OperationCompleting:
		return true
	}
	return false
}

// approval is the value of the pod's stop-approved annotation that lets the
// eviction of an approved EVICT through: <id>@<deadline RFC 3339>.
func (r *Record) approval() string {
	return r.ID + "@" + r.Deadline.UTC().Format(time.RFC3339)
}

// withState returns the record in another state, since now when the state
// changes.
func (r Record) withState(state appsv1alpha1.OperationState, message string, now time.Time) *Record {
	if r.State != state {
		r.Since = now
	}
	r.State, r.Message = state, message
	return &r
}

// readRecord reads the operation recorded on a PVC, nil when there is none.
func readRecord(pvc *corev1.PersistentVolumeClaim) (*Record, error) {
	if pvc == nil {
		return nil, nil
	}
	raw, ok := pvc.Annotations[appsv1alpha1.OperationAnnotation]
	if !ok {
		return nil, nil
	}
	r := &Record{}
	if err := json.Unmarshal([]byte(raw), r); err != nil {
		return nil, fmt.Errorf("annotation %s of PVC %s is not an operation record: %w", appsv1alpha1.OperationAnnotation, pvc.Name, err)
	}
	if r.ID == "" || kindProto(r.Kind) == shardmanagerv1.OperationKind_OPERATION_KIND_UNSPECIFIED {
		return nil, fmt.Errorf("annotation %s of PVC %s has no operation id or an unknown kind %q", appsv1alpha1.OperationAnnotation, pvc.Name, r.Kind)
	}
	return r, nil
}

// encode is the record as the annotation holds it.
func (r *Record) encode() string {
	b, err := json.Marshal(r)
	if err != nil {
		// A Record has only strings and times.
		panic(err)
	}
	return string(b)
}

// operationCount is how many operations were started on the PVC's data.
func operationCount(pvc *corev1.PersistentVolumeClaim) int {
	n, err := strconv.Atoi(pvc.Annotations[OperationCountAnnotation])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// operationID names the count-th operation on a pod's data:
// <namespace>/<app>/<pod>/<kind>/<claim>-<count>, where claim is the first
// eight characters of the PVC's UID, so that an operation on data that a
// MOVE replaced (a new PVC, counting from one again) or on an app made
// again under the same name never reuses an id.
func operationID(namespace, app, pod, kind string, pvc types.UID, count int) string {
	claim := strings.ReplaceAll(string(pvc), "-", "")
	if len(claim) > 8 {
		claim = claim[:8]
	}
	return fmt.Sprintf("%s/%s/%s/%s/%s-%d", namespace, app, pod, kind, claim, count)
}

// kindProto is the protocol's name of an operation kind.
func kindProto(kind string) shardmanagerv1.OperationKind {
	switch kind {
	case KindRestart:
		return shardmanagerv1.OperationKind_OPERATION_KIND_RESTART
	case KindEvict:
		return shardmanagerv1.OperationKind_OPERATION_KIND_EVICT
	case KindMove:
		return shardmanagerv1.OperationKind_OPERATION_KIND_MOVE
	case KindRemove:
		return shardmanagerv1.OperationKind_OPERATION_KIND_REMOVE
	}
	return shardmanagerv1.OperationKind_OPERATION_KIND_UNSPECIFIED
}
