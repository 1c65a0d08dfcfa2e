package guardrails

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/metadata"
	clocktesting "k8s.io/utils/clock/testing"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// webhookPaths are the paths the handler serves, in the order a fuzz
// input's path byte picks them.
var webhookPaths = []string{NamespaceDeletePath, CRDDeletePath, EvictionPath, ScalePath}

// fuzzCluster is a cluster where everything the webhook looks for exists:
// every list finds an object, every object it reads is labelled as an app's,
// and pods and PVCs carry the fuzzed annotations. So nothing is allowed for
// want of something to protect.
type fuzzCluster struct {
	podAnnotations, claimAnnotations map[string]string
}

type fuzzResource struct {
	metadata.ResourceInterface // only Get and List are implemented
	c                          fuzzCluster
	gvr                        schema.GroupVersionResource
	namespace                  string
}

func (c fuzzCluster) Resource(gvr schema.GroupVersionResource) metadata.Getter {
	return fuzzResource{c: c, gvr: gvr}
}

func (r fuzzResource) Namespace(ns string) metadata.ResourceInterface {
	r.namespace = ns
	return r
}

func (r fuzzResource) Get(_ context.Context, name string, _ metav1.GetOptions, _ ...string) (*metav1.PartialObjectMetadata, error) {
	obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: r.namespace, Name: name, Labels: map[string]string{
		appsv1alpha1.StatefulAppLabel: "kv", appsv1alpha1.StatelessAppLabel: "web",
	}}}
	switch r.gvr.Resource {
	case "pods":
		obj.Annotations = r.c.podAnnotations
	case "persistentvolumeclaims":
		obj.Annotations = r.c.claimAnnotations
	}
	return obj, nil
}

func (r fuzzResource) List(context.Context, metav1.ListOptions) (*metav1.PartialObjectMetadataList, error) {
	return &metav1.PartialObjectMetadataList{Items: []metav1.PartialObjectMetadata{{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "x"}}}}, nil
}

// admissionBody is an AdmissionReview as the API server sends it.
func admissionBody(f *testing.F, req admissionv1.AdmissionRequest) []byte {
	raw, err := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: &req,
	})
	if err != nil {
		f.Fatal(err)
	}
	return raw
}

func rawJSON(f *testing.F, obj any) runtime.RawExtension {
	raw, err := json.Marshal(obj)
	if err != nil {
		f.Fatal(err)
	}
	return runtime.RawExtension{Raw: raw}
}

// FuzzWebhook posts arbitrary bodies to every path of the guardrails'
// webhook, in a cluster where everything it protects exists. Properties:
// every answer is HTTP 200 with a well-formed AdmissionReview carrying the
// request's UID; nothing panics (the webhook library recovers a panic into
// an error answer, which is looked for here); a request that does not decode
// is never allowed; and where the rule is the webhook's alone, an allowed
// request is one the rule lets through: a namespace or CRD is deleted only
// when exempt, a managed Deployment or ReplicaSet is scaled only by Strata
// or without a change of replicas.
func FuzzWebhook(f *testing.F) {
	podsGVR := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	deployments := metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	scale := func(n int32) runtime.RawExtension {
		return rawJSON(f, &autoscalingv1.Scale{TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"}, Spec: autoscalingv1.ScaleSpec{Replicas: n}})
	}
	deadline := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	approved := map[string]string{appsv1alpha1.StopApprovedAnnotation: "ns/kv/kv-0/Evict/0a1b2c3d-1@" + deadline.Format(time.RFC3339)}
	for _, seed := range []struct {
		path  int
		req   admissionv1.AdmissionRequest
		claim string
	}{
		{0, admissionv1.AdmissionRequest{UID: "1", Operation: admissionv1.Delete, Name: "ns",
			OldObject: rawJSON(f, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}})}, ""},
		{0, admissionv1.AdmissionRequest{UID: "2", Operation: admissionv1.Delete, Name: "ns",
			OldObject: rawJSON(f, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Annotations: map[string]string{appsv1alpha1.AllowDeleteAnnotation: "true"}}})}, ""},
		{0, admissionv1.AdmissionRequest{UID: "3", Operation: admissionv1.Delete, OldObject: runtime.RawExtension{Raw: []byte(`{"metadata":7}`)}}, ""},
		{1, admissionv1.AdmissionRequest{UID: "4", Operation: admissionv1.Delete, OldObject: rawJSON(f, &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: "statefulapps.apps.strata.dev"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "apps.strata.dev", Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "statefulapps"},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1alpha1", Served: true, Storage: true}}},
		})}, ""},
		{2, admissionv1.AdmissionRequest{UID: "5", Operation: admissionv1.Create, Namespace: "ns", Name: "kv-0", SubResource: "eviction", Resource: podsGVR,
			Object: rawJSON(f, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "kv-0"}})}, ""},
		{2, admissionv1.AdmissionRequest{UID: "6", Operation: admissionv1.Create, Namespace: "ns", Name: "kv-0", SubResource: "eviction", Resource: podsGVR},
			`{"id":"ns/kv/kv-0/Evict/0a1b2c3d-1","kind":"Evict","deadline":"2026-12-07T03:00:00Z","state":"Approved"}`},
		{3, admissionv1.AdmissionRequest{UID: "7", Operation: admissionv1.Update, Namespace: "ns", Name: "web", SubResource: "scale", Resource: deployments,
			OldObject: scale(3), Object: scale(5), UserInfo: authenticationv1.UserInfo{Username: "alice"}}, ""},
		{3, admissionv1.AdmissionRequest{UID: "8", Operation: admissionv1.Update, Namespace: "ns", Name: "web", SubResource: "scale", Resource: deployments,
			OldObject: scale(3), Object: runtime.RawExtension{Raw: []byte(`{"spec":{"replicas":"5"}}`)}}, ""},
	} {
		f.Add(uint8(seed.path), admissionBody(f, seed.req), approved[appsv1alpha1.StopApprovedAnnotation], seed.claim)
	}
	f.Add(uint8(2), []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), "", "")
	f.Add(uint8(0), []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`), "", "")
	f.Add(uint8(1), []byte(`not json`), "", "")
	f.Add(uint8(3), []byte{}, "", "")
	now := deadline.Add(-time.Minute)

	f.Fuzz(func(t *testing.T, path uint8, body []byte, stopApproved, record string) {
		cluster := fuzzCluster{
			podAnnotations:   map[string]string{appsv1alpha1.StopApprovedAnnotation: stopApproved},
			claimAnnotations: map[string]string{appsv1alpha1.OperationAnnotation: record},
		}
		h, err := NewHandler(Options{Metadata: cluster, Cluster: "workload-1", Clock: clocktesting.NewFakePassiveClock(now)})
		if err != nil {
			t.Fatal(err)
		}
		at := webhookPaths[int(path)%len(webhookPaths)]
		httpReq := httptest.NewRequest(http.MethodPost, at, bytes.NewReader(body))
		httpReq.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httpReq)
		if rec.Code != http.StatusOK {
			t.Fatalf("POST %s: HTTP %d, want 200 with an AdmissionReview", at, rec.Code)
		}
		review := &admissionv1.AdmissionReview{}
		if err := json.Unmarshal(rec.Body.Bytes(), review); err != nil || review.Response == nil {
			t.Fatalf("POST %s: the answer is not an AdmissionReview with a response (%v): %s", at, err, rec.Body)
		}
		resp := review.Response
		if resp.Result != nil && strings.HasPrefix(resp.Result.Message, "panic:") {
			t.Fatalf("POST %s: the handler panicked: %s", at, resp.Result.Message)
		}
		// The review as the webhook library reads it: keys are case
		// sensitive (encoding/json's are not).
		sent := &admissionv1.AdmissionReview{}
		if utiljson.Unmarshal(body, sent) != nil || sent.Request == nil {
			if resp.Allowed {
				t.Fatalf("POST %s: allowed a request that is not an AdmissionReview: %q: %s", at, body, rec.Body)
			}
			return
		}
		req := sent.Request
		if resp.UID != req.UID {
			t.Fatalf("POST %s: answered UID %q, the request's is %q", at, resp.UID, req.UID)
		}
		if !resp.Allowed {
			return
		}
		switch at {
		case NamespaceDeletePath:
			if req.Operation != admissionv1.Delete {
				return
			}
			ns := &corev1.Namespace{}
			if json.Unmarshal(req.OldObject.Raw, ns) != nil || namespaceExempt(ns) == "" {
				t.Fatalf("allowed deleting namespace %q that holds workloads, not exempt: %s", ns.Name, req.OldObject.Raw)
			}
		case CRDDeletePath:
			if req.Operation != admissionv1.Delete {
				return
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if json.Unmarshal(req.OldObject.Raw, crd) != nil ||
				(crd.DeletionTimestamp == nil && !overridden(&crd.ObjectMeta) && servedVersion(crd) != "") {
				t.Fatalf("allowed deleting CRD %q that has objects: %s", crd.Name, req.OldObject.Raw)
			}
		case ScalePath:
			if _, ok := scaled[req.Resource.Resource]; !ok || req.SubResource != "scale" || req.Operation != admissionv1.Update || isStrata(req.UserInfo.Username) {
				return
			}
			var from, to autoscalingv1.Scale
			if json.Unmarshal(req.OldObject.Raw, &from) != nil || json.Unmarshal(req.Object.Raw, &to) != nil || from.Spec.Replicas != to.Spec.Replicas {
				t.Fatalf("allowed %s scaling %s/%s managed by a StatelessApp: %s -> %s", req.UserInfo.Username, req.Namespace, req.Name, req.OldObject.Raw, req.Object.Raw)
			}
		}
	})
}
