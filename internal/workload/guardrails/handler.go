package guardrails

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// Options configure the webhook of one cluster.
type Options struct {
	// Metadata reads the cluster the webhook guards. The checks list
	// metadata only, one item per list, straight from the API server.
	// Required.
	Metadata metadata.Interface
	// Cluster names the cluster in denials and logs; optional.
	Cluster string
	// Clock tells whether a stop approval has expired; the real clock by
	// default.
	Clock clock.PassiveClock
}

// NewHandler returns the webhook of one cluster: an http.Handler serving
// NamespaceDeletePath, CRDDeletePath, EvictionPath and ScalePath
// (AdmissionReview v1).
// Serve it over TLS (see Certificates) below the base URL that install
// registers.
func NewHandler(opts Options) (http.Handler, error) {
	if opts.Metadata == nil {
		return nil, errors.New("guardrails: Options.Metadata is required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	h := &handler{md: opts.Metadata, cluster: opts.Cluster, clock: opts.Clock}
	mux := http.NewServeMux()
	mux.Handle(NamespaceDeletePath, &admission.Webhook{Handler: withRequest(h.namespaceDelete)})
	mux.Handle(CRDDeletePath, &admission.Webhook{Handler: withRequest(h.crdDelete)})
	mux.Handle(EvictionPath, &admission.Webhook{Handler: withRequest(h.evictionCreate)})
	mux.Handle(ScalePath, &admission.Webhook{Handler: withRequest(h.scaleUpdate)})
	return mux, nil
}

// withRequest refuses a review that carries no request (the library decodes
// an empty body, or a review without one, to an empty request), rather than
// let a check allow it for not being the operation it judges: the API
// server always sends a request with a uid.
func withRequest(check admission.HandlerFunc) admission.Handler {
	return admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		if req.UID == "" {
			return admission.Errored(http.StatusBadRequest, errors.New("the AdmissionReview has no request with a uid: nothing to judge"))
		}
		return check(ctx, req)
	})
}

type handler struct {
	md      metadata.Interface
	cluster string
	clock   clock.PassiveClock
}

// workloadResources are what makes a namespace non-empty: the objects whose
// loss would hurt an app.
var workloadResources = []schema.GroupVersionResource{
	{Version: "v1", Resource: "pods"},
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "apps", Version: "v1", Resource: "statefulsets"},
	{Group: "apps", Version: "v1", Resource: "daemonsets"},
	{Group: "batch", Version: "v1", Resource: "jobs"},
	{Group: "batch", Version: "v1", Resource: "cronjobs"},
	{Version: "v1", Resource: "services"},
	{Version: "v1", Resource: "persistentvolumeclaims"},
	appsv1alpha1.GroupVersion.WithResource("statelessapps"),
	appsv1alpha1.GroupVersion.WithResource("statefulapps"),
}

// held counts the objects of one resource that a namespace (or a CRD) holds.
type held struct {
	resource string // plural, as kubectl names it
	count    int64  // at least 1
	more     bool   // count is a lower bound: the API server did not count the rest
	example  string // one of them
}

// overridden reports whether the object carries the delete override.
func overridden(meta *metav1.ObjectMeta) bool {
	return meta.Annotations[appsv1alpha1.AllowDeleteAnnotation] == "true"
}

func (h *handler) namespaceDelete(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Delete {
		return admission.Allowed("")
	}
	ns := &corev1.Namespace{}
	if err := decodeOld(req, ns); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if why := namespaceExempt(ns); why != "" {
		return admission.Allowed(why)
	}
	var holds []held
	for _, gvr := range workloadResources {
		got, err := h.count(ctx, gvr, ns.Name)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, fmt.Errorf("%s%s: checking what namespace %s holds: %w; try again",
				Prefix, NamespaceNotEmptyRule, ns.Name, err))
		}
		if got != nil {
			holds = append(holds, *got)
		}
	}
	if len(holds) == 0 {
		return admission.Allowed("")
	}
	log.FromContext(ctx).Info("Denied deleting a namespace that holds workloads", "namespace", ns.Name, "holds", summary(holds))
	return admission.Denied(namespaceMessage(ns.Name, h.cluster, holds))
}

// namespaceExempt says why a namespace may go without a look inside, or "".
func namespaceExempt(ns *corev1.Namespace) string {
	switch {
	case strings.HasPrefix(ns.Name, "kube-"):
		return "kube-* namespaces are Kubernetes' own"
	case ns.DeletionTimestamp != nil:
		return "the namespace is already being deleted"
	case overridden(&ns.ObjectMeta):
		return "the namespace carries " + appsv1alpha1.AllowDeleteAnnotation + "=true"
	}
	return ""
}

func (h *handler) crdDelete(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Delete {
		return admission.Allowed("")
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := decodeOld(req, crd); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	switch {
	case crd.DeletionTimestamp != nil:
		return admission.Allowed("the CRD is already being deleted")
	case overridden(&crd.ObjectMeta):
		return admission.Allowed("the CRD carries " + appsv1alpha1.AllowDeleteAnnotation + "=true")
	}
	version := servedVersion(crd)
	if version == "" {
		return admission.Allowed("the CRD serves no version")
	}
	got, err := h.count(ctx, schema.GroupVersionResource{Group: crd.Spec.Group, Version: version, Resource: crd.Spec.Names.Plural}, metav1.NamespaceAll)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("%s%s: checking whether objects of CRD %s exist: %w; try again",
			Prefix, CRDInUseRule, crd.Name, err))
	}
	if got == nil {
		return admission.Allowed("")
	}
	log.FromContext(ctx).Info("Denied deleting a CRD that has objects", "crd", crd.Name, "holds", summary([]held{*got}))
	return admission.Denied(crdMessage(crd.Name, h.cluster, *got))
}

// servedVersion is the version to list a CRD's objects with: the storage
// version if it is served, else the first served one.
func servedVersion(crd *apiextensionsv1.CustomResourceDefinition) string {
	first := ""
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		if v.Storage {
			return v.Name
		}
		if first == "" {
			first = v.Name
		}
	}
	return first
}

// count lists one object of the resource in the namespace (all namespaces
// for ""): nil when there is none or the resource is not served here.
func (h *handler) count(ctx context.Context, gvr schema.GroupVersionResource, namespace string) (*held, error) {
	list, err := h.md.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{Limit: 1})
	if apierrors.IsNotFound(err) {
		return nil, nil // e.g. StatelessApps in a cluster without the CRD
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", gvr.GroupResource(), err)
	}
	if len(list.Items) == 0 {
		return nil, nil
	}
	got := &held{resource: gvr.Resource, count: int64(len(list.Items)), example: list.Items[0].Name}
	if namespace == metav1.NamespaceAll && list.Items[0].Namespace != "" {
		got.example = list.Items[0].Namespace + "/" + got.example
	}
	switch {
	case list.RemainingItemCount != nil:
		got.count += *list.RemainingItemCount
	case list.Continue != "":
		got.more = true
	}
	return got, nil
}

func decodeOld(req admission.Request, into any) error {
	if len(req.OldObject.Raw) == 0 {
		return fmt.Errorf("the admission request for %s %q has no oldObject", req.Resource.Resource, req.Name)
	}
	if err := json.Unmarshal(req.OldObject.Raw, into); err != nil {
		return fmt.Errorf("decoding %s %q: %w", req.Resource.Resource, req.Name, err)
	}
	return nil
}

// namespaceMessage is the denial of a non-empty namespace's delete.
func namespaceMessage(namespace, cluster string, holds []held) string {
	return fmt.Sprintf("%s%s: namespace %s%s still holds %s; deleting it would delete them all. "+
		"Delete them first (a StatelessApp needs `kubectl annotate statelessapp NAME -n %s %s=true` before its delete), "+
		"or, to delete the namespace with everything in it on purpose, run `kubectl annotate namespace %s %s=true` and delete it again.",
		Prefix, NamespaceNotEmptyRule, namespace, inCluster(cluster), summary(holds),
		namespace, appsv1alpha1.AllowDeleteAnnotation, namespace, appsv1alpha1.AllowDeleteAnnotation)
}

// crdMessage is the denial of a CRD's delete while objects of it exist.
func crdMessage(crd, cluster string, objects held) string {
	return fmt.Sprintf("%s%s: CRD %s%s still has %s; deleting it would delete them all. "+
		"Delete them first (`kubectl get %s -A` lists them), "+
		"or, to delete the CRD with all its objects on purpose, run `kubectl annotate crd %s %s=true` and delete it again.",
		Prefix, CRDInUseRule, crd, inCluster(cluster), summary([]held{objects}),
		crd, crd, appsv1alpha1.AllowDeleteAnnotation)
}

func inCluster(cluster string) string {
	if cluster == "" {
		return ""
	}
	return " of cluster " + cluster
}

// summary reads "30 pods (e.g. web-1), 1 statelessapp (web) and 2 or more
// services (e.g. web)".
func summary(holds []held) string {
	parts := make([]string, len(holds))
	for i, h := range holds {
		name := h.resource
		if h.count == 1 && !h.more {
			name = strings.TrimSuffix(name, "s")
		}
		n := fmt.Sprint(h.count)
		if h.more {
			n += " or more"
		}
		example := "(" + h.example + ")"
		if h.count > 1 || h.more {
			example = "(e.g. " + h.example + ")"
		}
		parts[i] = n + " " + name + " " + example
	}
	if len(parts) <= 1 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}
