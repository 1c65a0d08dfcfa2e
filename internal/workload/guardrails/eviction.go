package guardrails

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/workload/statefulapp"
)

// podsResource, appsResource and claimsResource are what the eviction
// check reads: the metadata of the pod to evict (its labels, annotations and
// owner), of the StatefulApp that controls it and of its PVC (the operation
// Strata records there).
var (
	podsResource   = corev1.SchemeGroupVersion.WithResource("pods")
	appsResource   = appsv1alpha1.GroupVersion.WithResource("statefulapps")
	claimsResource = corev1.SchemeGroupVersion.WithResource("persistentvolumeclaims")
)

// stopMargin: the webhook does not let a pod go in the last 2 s before the
// deadline of its approval, as the StatefulApp controller does not start to
// stop one then (its stopMargin): it absorbs the skew between the clocks of
// the webhook, the controller and the shard manager.
const stopMargin = 2 * time.Second

// evictionCreate judges an eviction (CREATE of pods/eviction): a pod of a
// StatefulApp (one that a StatefulApp controls, see controllingApp; a label
// alone does not make one) goes only with its shard manager's approval, which Strata
// records on the pod as the StopApprovedAnnotation and, authoritatively, on
// the pod's PVC as the operation record (OperationAnnotation). The pod and
// the PVC are read here: the request's object is the Eviction, which
// carries none of the pod's labels. Every denial has code 429, as a
// PodDisruptionBudget's refusal: a drain takes it as "blocked, try again
// later" and reports the message.
func (h *handler) evictionCreate(ctx context.Context, req admission.Request) admission.Response {
	if req.SubResource != "eviction" || req.Operation != admissionv1.Create {
		return admission.Allowed("")
	}
	pod, err := h.md.Resource(podsResource).Namespace(req.Namespace).Get(ctx, req.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return admission.Allowed("no such pod: the Eviction API answers NotFound itself")
	case err != nil:
		return tooManyRequests(fmt.Sprintf("%s%s: checking whether pod %s/%s%s may be evicted: reading it: %v; try again",
			Prefix, StatefulEvictionRule, req.Namespace, req.Name, inCluster(h.cluster), err))
	}
	if pod.DeletionTimestamp != nil {
		return admission.Allowed("the pod is already being deleted")
	}
	app, notOurs, err := h.controllingApp(ctx, pod)
	if err != nil {
		return tooManyRequests(fmt.Sprintf("%s%s: checking whether pod %s/%s%s may be evicted: %v; try again",
			Prefix, StatefulEvictionRule, req.Namespace, req.Name, inCluster(h.cluster), err))
	}
	if app == "" {
		if _, labelled := pod.Labels[appsv1alpha1.StatefulAppLabel]; labelled {
			// Anyone who may create pods may label one so: only a
			// StatefulApp's own pods wait for its shard manager.
			log.FromContext(ctx).Info("Allowed evicting a pod labelled as a StatefulApp's that no StatefulApp controls",
				"pod", klog.KRef(req.Namespace, req.Name), "why", notOurs)
		}
		return admission.Allowed("not a pod of a StatefulApp: " + notOurs)
	}
	now := h.clock.Now()
	a, problem := approvalProblem(&pod.ObjectMeta, app, now)
	if problem == "" {
		claim := statefulapp.ClaimName(pod.Name)
		pvc, err := h.md.Resource(claimsResource).Namespace(pod.Namespace).Get(ctx, claim, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			pvc = nil
		case err != nil:
			return tooManyRequests(fmt.Sprintf("%s%s: checking whether pod %s/%s%s may be evicted: reading its PVC %s: %v; try again",
				Prefix, StatefulEvictionRule, req.Namespace, req.Name, inCluster(h.cluster), claim, err))
		}
		problem = recordProblem(&pod.ObjectMeta, a, claim, pvc)
	}
	if problem == "" {
		return admission.Allowed("the shard manager approved stopping the pod: " + pod.Annotations[appsv1alpha1.StopApprovedAnnotation])
	}
	log.FromContext(ctx).Info("Denied evicting a StatefulApp pod without its shard manager's approval",
		"pod", klog.KRef(req.Namespace, req.Name), "statefulApp", app, "problem", problem)
	return tooManyRequests(evictionMessage(&pod.ObjectMeta, app, h.cluster, problem))
}

// controllingApp returns the name of the StatefulApp that controls the pod,
// or "" and why none does. It reads the StatefulApp that the pod's
// controller reference names; see ownedBy.
func (h *handler) controllingApp(ctx context.Context, pod *metav1.PartialObjectMetadata) (string, string, error) {
	ref := statefulAppRef(pod)
	if ref == nil {
		app, why := ownedBy(pod, nil)
		return app, why, nil
	}
	app, err := h.md.Resource(appsResource).Namespace(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		app = nil
	case err != nil:
		return "", "", fmt.Errorf("reading StatefulApp %s, its controller: %w", ref.Name, err)
	}
	name, why := ownedBy(pod, app)
	return name, why, nil
}

// statefulAppRef is the pod's controller reference when it names a
// StatefulApp, nil otherwise.
func statefulAppRef(pod *metav1.PartialObjectMetadata) *metav1.OwnerReference {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != "StatefulApp" {
		return nil
	}
	if gv, err := schema.ParseGroupVersion(ref.APIVersion); err != nil || gv.Group != appsv1alpha1.GroupVersion.Group {
		return nil
	}
	return ref
}

// ownedBy decides whether the pod is a StatefulApp's, given the StatefulApp
// its controller reference names (app; nil when there is none or no such
// StatefulApp exists): it returns the app's name, or "" and why not. A pod
// is a StatefulApp's only when the StatefulApp controls it (an owner
// reference with controller: true, to that StatefulApp by UID, so not to a
// deleted one of the same name) and lists it as the StatefulApp controller
// does (it selects its pods by the StatefulApp label, and knows them by
// their names, <app>-<ordinal>). Labels alone prove nothing: anyone who may
// create a pod may copy them, and such a pod must not hold a Node's drain
// hostage to a shard manager that never heard of it.
func ownedBy(pod, app *metav1.PartialObjectMetadata) (string, string) {
	ref := statefulAppRef(pod)
	switch {
	case ref == nil:
		return "", "no StatefulApp is its controller (no owner reference with controller: true to a StatefulApp)"
	case app == nil:
		return "", fmt.Sprintf("its controller, StatefulApp %s, does not exist", ref.Name)
	case app.UID != ref.UID:
		return "", fmt.Sprintf("its controller is StatefulApp %s of UID %s, not the StatefulApp %s that exists (UID %s)",
			ref.Name, ref.UID, app.Name, app.UID)
	case pod.Labels[appsv1alpha1.StatefulAppLabel] != ref.Name:
		return "", fmt.Sprintf("StatefulApp %s does not select it (its %s label is %q)",
			ref.Name, appsv1alpha1.StatefulAppLabel, pod.Labels[appsv1alpha1.StatefulAppLabel])
	case !statefulapp.IsPodName(ref.Name, pod.Name):
		return "", fmt.Sprintf("StatefulApp %s does not list it: its pods are named %s-<ordinal>", ref.Name, ref.Name)
	}
	return ref.Name, ""
}

// tooManyRequests denies with code 429, what the Eviction API answers when
// a disruption budget refuses: clients (kubectl drain, Strata's drain) wait
// and try again rather than give up.
func tooManyRequests(message string) admission.Response {
	resp := admission.Denied(message)
	resp.Result.Code = http.StatusTooManyRequests
	resp.Result.Reason = metav1.StatusReasonTooManyRequests
	return resp
}

// approval is a parsed stop-approved annotation.
type approval struct {
	id       string
	deadline time.Time
}

// approvalProblem says why the pod's stop-approved annotation does not let
// it go now, or "" when the annotation itself does (then recordProblem
// checks it against Strata's record). The annotation is
// "<operation-id>@<deadline, RFC 3339>"; the operation id is the
// shard-manager protocol's "<namespace>/<app>/<pod>/<kind>/<n>" and must
// name this pod of this StatefulApp; the deadline must be more than
// stopMargin ahead of now.
func approvalProblem(pod *metav1.ObjectMeta, app string, now time.Time) (approval, string) {
	value, ok := pod.Annotations[appsv1alpha1.StopApprovedAnnotation]
	if !ok {
		if reason, requested := pod.Annotations[appsv1alpha1.StopRequestedAnnotation]; requested {
			return approval{}, fmt.Sprintf("a stop was requested (%s=%q) and the shard manager has not approved it yet",
				appsv1alpha1.StopRequestedAnnotation, reason)
		}
		return approval{}, "no stop of it was approved"
	}
	at := strings.LastIndex(value, "@")
	if at < 0 {
		return approval{}, fmt.Sprintf("its %s annotation %q is not <operation-id>@<deadline>", appsv1alpha1.StopApprovedAnnotation, value)
	}
	id, rawDeadline := value[:at], value[at+1:]
	deadline, err := time.Parse(time.RFC3339, rawDeadline)
	if err != nil {
		return approval{}, fmt.Sprintf("its %s annotation %q has no RFC 3339 deadline after the @", appsv1alpha1.StopApprovedAnnotation, value)
	}
	parts := strings.Split(id, "/")
	if len(parts) != 5 || parts[0] != pod.Namespace || parts[1] != app || parts[2] != pod.Name {
		return approval{}, fmt.Sprintf("the approved operation %q is not one on this pod (<namespace>/<app>/<pod>/<kind>/<n>: %s/%s/%s/...)",
			id, pod.Namespace, app, pod.Name)
	}
	if !now.Before(deadline) {
		return approval{}, fmt.Sprintf("the approval of operation %s expired at %s; Strata asks the shard manager again",
			id, deadline.UTC().Format(time.RFC3339))
	}
	if !now.Before(deadline.Add(-stopMargin)) {
		return approval{}, fmt.Sprintf("the approval of operation %s expires at %s, less than %s from now, when neither Strata nor "+
			"this guardrail lets a pod go (it absorbs clock skew); Strata asks the shard manager again",
			id, deadline.UTC().Format(time.RFC3339), stopMargin)
	}
	return approval{id: id, deadline: deadline}, ""
}

// recordProblem says why the operation that Strata records on the pod's
// PVC (claim; nil when there is none) does not back the pod's approval a,
// or "" when it does: the record must be an Evict operation with the
// approval's id, in state Approved (the only state in which Strata lets an
// eviction through: it records Stopping once the pod is being deleted),
// for this incarnation of the pod, with the approval's deadline. Anyone who
// may patch the pod can write the annotation; only Strata writes the PVC's
// record.
func recordProblem(pod *metav1.ObjectMeta, a approval, claim string, pvc *metav1.PartialObjectMetadata) string {
	notStratas := func(detail string) string {
		return fmt.Sprintf("the approval on the pod is not Strata's: no approved %s operation %s is recorded on PVC %s (%s)",
			statefulapp.KindEvict, a.id, claim, detail)
	}
	if pvc == nil {
		return notStratas("there is no such PVC")
	}
	if pvc.DeletionTimestamp != nil {
		return notStratas("the PVC is being deleted")
	}
	raw, ok := pvc.Annotations[appsv1alpha1.OperationAnnotation]
	if !ok {
		return notStratas("it records no operation")
	}
	rec := &statefulapp.Record{}
	if err := json.Unmarshal([]byte(raw), rec); err != nil {
		return notStratas(fmt.Sprintf("its %s annotation is not an operation record: %v", appsv1alpha1.OperationAnnotation, err))
	}
	switch {
	case rec.ID != a.id:
		return notStratas(fmt.Sprintf("it records operation %s", rec.ID))
	case rec.Kind != statefulapp.KindEvict:
		return notStratas(fmt.Sprintf("it records the operation as a %s", rec.Kind))
	case rec.State != appsv1alpha1.OperationApproved:
		return notStratas(fmt.Sprintf("it records the operation in state %s", rec.State))
	case rec.PodUID != "" && rec.PodUID != pod.UID:
		return notStratas(fmt.Sprintf("it records the operation for pod UID %s, not %s", rec.PodUID, pod.UID))
	case !rec.Deadline.Truncate(time.Second).Equal(a.deadline):
		return notStratas(fmt.Sprintf("it records the operation with deadline %s, not %s",
			rec.Deadline.UTC().Format(time.RFC3339), a.deadline.UTC().Format(time.RFC3339)))
	}
	return ""
}

// evictionMessage is the denial of a StatefulApp pod's eviction: what the
// rule is, why this eviction fails it, and how to ask.
func evictionMessage(pod *metav1.ObjectMeta, app, cluster, problem string) string {
	status := pod.Namespace + "/" + app
	if owner := pod.Labels[appsv1alpha1.AppLabel]; owner != "" {
		status = owner + "/" + app
	}
	return fmt.Sprintf("%s%s: pod %s of StatefulApp %s (namespace %s%s) holds shards of the app's data and is stopped only with the approval "+
		"of its shard manager, and %s. To ask for it, cordon its Node (`kubectl cordon NODE`; kubectl drain does) or run "+
		"`kubectl annotate pod %s -n %s %s=<reason>`: Strata asks the app's shard manager, and the eviction passes once it approves "+
		"(`kubectl strata status %s` shows where it waits).",
		Prefix, StatefulEvictionRule, pod.Name, app, pod.Namespace, inCluster(cluster), problem,
		pod.Name, pod.Namespace, appsv1alpha1.StopRequestedAnnotation, status)
}
