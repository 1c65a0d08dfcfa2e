package guardrails

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// scaled are the resources whose scale subresource the webhook judges, and
// their kinds as denials name them: a StatelessApp's Deployments and the
// ReplicaSets that Kubernetes makes of them.
var scaled = map[string]string{"deployments": "Deployment", "replicasets": "ReplicaSet"}

// scaleUpdate judges an UPDATE of the scale subresource of a Deployment or
// ReplicaSet (kubectl scale, autoscalers): the replicas of one that a
// StatelessApp expands into (labelled StatelessAppLabel) change only by
// Strata (managed-object rule; the policy judges the Deployment itself).
// The request's object is a Scale, which carries none of the Deployment's
// labels, so the webhook reads its metadata (one GET).
func (h *handler) scaleUpdate(ctx context.Context, req admission.Request) admission.Response {
	kind, ok := scaled[req.Resource.Resource]
	if req.SubResource != "scale" || req.Operation != admissionv1.Update || !ok {
		return admission.Allowed("")
	}
	if isStrata(req.UserInfo.Username) {
		return admission.Allowed("Strata's controllers scale what they expand")
	}
	from, to, err := scaleReplicas(req)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if from == to {
		return admission.Allowed("the replicas do not change")
	}
	gvr := appsv1.SchemeGroupVersion.WithResource(req.Resource.Resource)
	target, err := h.md.Resource(gvr).Namespace(req.Namespace).Get(ctx, req.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return admission.Allowed("no such " + kind + ": the API server answers NotFound itself")
	case err != nil:
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("%s%s: checking whether %s %s/%s%s is expanded from a StatelessApp: %w; try again",
			Prefix, ManagedObjectRule, kind, req.Namespace, req.Name, inCluster(h.cluster), err))
	}
	app := target.Labels[appsv1alpha1.StatelessAppLabel]
	if app == "" {
		return admission.Allowed("not expanded from a StatelessApp")
	}
	if target.DeletionTimestamp != nil {
		return admission.Allowed("the " + kind + " is already being deleted")
	}
	log.FromContext(ctx).Info("Denied scaling what a StatelessApp expands into",
		"kind", kind, "object", klog.KRef(req.Namespace, req.Name), "statelessApp", app, "user", req.UserInfo.Username, "from", from, "to", to)
	return admission.Denied(managedReplicasMessage(kind, req.Name, req.Namespace, app, from, to))
}

// scaleReplicas reads spec.replicas of the old and the new Scale.
func scaleReplicas(req admission.Request) (from, to int32, err error) {
	var scales [2]autoscalingv1.Scale
	for i, raw := range [][]byte{req.OldObject.Raw, req.Object.Raw} {
		if len(raw) == 0 {
			return 0, 0, fmt.Errorf("the admission request for %s/scale %q lacks the old or the new Scale", req.Resource.Resource, req.Name)
		}
		if err := json.Unmarshal(raw, &scales[i]); err != nil {
			return 0, 0, fmt.Errorf("decoding the Scale of %s %q: %w", req.Resource.Resource, req.Name, err)
		}
	}
	return scales[0].Spec.Replicas, scales[1].Spec.Replicas, nil
}
