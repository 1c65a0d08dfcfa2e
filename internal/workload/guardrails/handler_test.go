package guardrails

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// listing is what the fake API server answers to a list of one item.
type listing struct {
	names     []string // the first is returned
	remaining *int64   // RemainingItemCount
	more      bool     // Continue set
	err       error
}

// fakeMetadata answers List from listings keyed by resource and namespace,
// and Get from objects keyed by resource, namespace and name; it fails the
// test on a list that asks for more than one item.
type fakeMetadata struct {
	t        *testing.T
	listings map[string]listing                       // "resource/namespace"
	objects  map[string]*metav1.PartialObjectMetadata // "resource/namespace/name"
	getErr   error                                    // of every Get
	getErrs  map[string]error                         // of the Get of "resource/namespace/name"
}

type fakeResource struct {
	metadata.ResourceInterface // only List and Get are implemented
	f                          *fakeMetadata
	key                        string
}

func (r fakeResource) Get(_ context.Context, name string, _ metav1.GetOptions, _ ...string) (*metav1.PartialObjectMetadata, error) {
	if r.f.getErr != nil {
		return nil, r.f.getErr
	}
	if err := r.f.getErrs[r.key+"/"+name]; err != nil {
		return nil, err
	}
	obj, ok := r.f.objects[r.key+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: strings.Split(r.key, "/")[0]}, name)
	}
	return obj.DeepCopy(), nil
}

func (f *fakeMetadata) Resource(gvr schema.GroupVersionResource) metadata.Getter {
	return fakeResource{f: f, key: gvr.Resource + "/"}
}

func (r fakeResource) Namespace(ns string) metadata.ResourceInterface {
	return fakeResource{f: r.f, key: r.key + ns}
}

func (r fakeResource) List(_ context.Context, opts metav1.ListOptions) (*metav1.PartialObjectMetadataList, error) {
	if opts.Limit != 1 {
		r.f.t.Errorf("listing %s with limit %d, want 1", r.key, opts.Limit)
	}
	l, ok := r.f.listings[r.key]
	if !ok {
		return &metav1.PartialObjectMetadataList{}, nil
	}
	if l.err != nil {
		return nil, l.err
	}
	list := &metav1.PartialObjectMetadataList{}
	if len(l.names) > 0 {
		namespace, name, found := strings.Cut(l.names[0], "/")
		if !found {
			namespace, name = "", namespace
		}
		list.Items = []metav1.PartialObjectMetadata{{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}}
	}
	list.RemainingItemCount = l.remaining
	if l.more {
		list.Continue = "next"
	}
	return list, nil
}

// review posts an AdmissionReview for DELETE of old to path and returns the
// response.
func review(t *testing.T, h http.Handler, path string, op admissionv1.Operation, old runtime.Object) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "1", Operation: op, OldObject: runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, rec.Code, rec.Body)
	}
	out := &admissionv1.AdmissionReview{}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		t.Fatal(err)
	}
	return out.Response
}

func namespace(name string, annotations map[string]string, deleting bool) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
	if deleting {
		ns.DeletionTimestamp = ptr.To(metav1.Now())
	}
	return ns
}

var override = map[string]string{appsv1alpha1.AllowDeleteAnnotation: "true"}

func TestNamespaceDelete(t *testing.T) {
	busy := map[string]listing{
		"pods/shop":          {names: []string{"web-1"}, remaining: ptr.To[int64](29)},
		"services/shop":      {names: []string{"web"}, more: true},
		"statelessapps/shop": {names: []string{"web"}, remaining: ptr.To[int64](0)},
	}
	cases := []struct {
		name     string
		ns       *corev1.Namespace
		op       admissionv1.Operation
		listings map[string]listing
		allowed  bool
		code     int32
		message  string
	}{
		{name: "empty", ns: namespace("shop", nil, false), op: admissionv1.Delete, allowed: true},
		{
			name: "holds workloads", ns: namespace("shop", nil, false), op: admissionv1.Delete, listings: busy,
			code: http.StatusForbidden,
			message: "strata-guardrail: namespace-not-empty: namespace shop of cluster workload-1 still holds " +
				"30 pods (e.g. web-1), 1 or more services (e.g. web) and 1 statelessapp (web); deleting it would delete them all. " +
				"Delete them first (a StatelessApp needs `kubectl annotate statelessapp NAME -n shop strata.dev/allow-delete=true` before its delete), " +
				"or, to delete the namespace with everything in it on purpose, run `kubectl annotate namespace shop strata.dev/allow-delete=true` and delete it again.",
		},
		{name: "with the override", ns: namespace("shop", override, false), op: admissionv1.Delete, listings: busy, allowed: true},
		{name: "override not true", ns: namespace("shop", map[string]string{appsv1alpha1.AllowDeleteAnnotation: "yes"}, false), op: admissionv1.Delete, listings: busy, code: http.StatusForbidden},
		{name: "already terminating", ns: namespace("shop", nil, true), op: admissionv1.Delete, listings: busy, allowed: true},
		{
			name: "kube-* namespaces are out of scope", ns: namespace("kube-lab", nil, false), op: admissionv1.Delete, allowed: true,
			listings: map[string]listing{"pods/kube-lab": {names: []string{"x"}}},
		},
		{name: "not a delete", ns: namespace("shop", nil, false), op: admissionv1.Update, listings: busy, allowed: true},
		{
			name: "StatelessApps not served here", ns: namespace("shop", nil, false), op: admissionv1.Delete, allowed: true,
			listings: map[string]listing{"statelessapps/shop": {err: apierrors.NewNotFound(schema.GroupResource{Resource: "statelessapps"}, "")}},
		},
		{
			name: "a failed lookup refuses", ns: namespace("shop", nil, false), op: admissionv1.Delete,
			listings: map[string]listing{"deployments/shop": {err: errors.New("etcd is down")}},
			code:     http.StatusInternalServerError,
			message:  "strata-guardrail: namespace-not-empty: checking what namespace shop holds: listing deployments.apps: etcd is down; try again",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewHandler(Options{Metadata: &fakeMetadata{t: t, listings: tc.listings}, Cluster: "workload-1"})
			if err != nil {
				t.Fatal(err)
			}
			resp := review(t, h, NamespaceDeletePath, tc.op, tc.ns)
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (%v)", resp.Allowed, tc.allowed, resp.Result)
			}
			if tc.allowed {
				return
			}
			if resp.Result.Code != tc.code {
				t.Errorf("code = %d, want %d", resp.Result.Code, tc.code)
			}
			if tc.message != "" {
				if diff := cmp.Diff(tc.message, resp.Result.Message); diff != "" {
					t.Errorf("message (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func crd(annotations map[string]string, versions ...apiextensionsv1.CustomResourceDefinitionVersion) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "pools.fleet.strata.dev", Annotations: annotations},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group:    "fleet.strata.dev",
			Names:    apiextensionsv1.CustomResourceDefinitionNames{Plural: "pools", Kind: "Pool"},
			Versions: versions,
		},
	}
}

func TestCRDDelete(t *testing.T) {
	served := apiextensionsv1.CustomResourceDefinitionVersion{Name: "v1alpha1", Served: true, Storage: true}
	pools := map[string]listing{"pools/": {names: []string{"web"}, remaining: ptr.To[int64](2)}}
	cases := []struct {
		name     string
		crd      *apiextensionsv1.CustomResourceDefinition
		listings map[string]listing
		allowed  bool
		message  string
	}{
		{name: "no objects", crd: crd(nil, served), allowed: true},
		{
			name: "objects left", crd: crd(nil, served), listings: pools,
			message: "strata-guardrail: crd-in-use: CRD pools.fleet.strata.dev of cluster hub still has 3 pools (e.g. web); deleting it would delete them all. " +
				"Delete them first (`kubectl get pools.fleet.strata.dev -A` lists them), or, to delete the CRD with all its objects on purpose, " +
				"run `kubectl annotate crd pools.fleet.strata.dev strata.dev/allow-delete=true` and delete it again.",
		},
		{name: "with the override", crd: crd(override, served), listings: pools, allowed: true},
		{name: "no version served", crd: crd(nil, apiextensionsv1.CustomResourceDefinitionVersion{Name: "v1", Storage: true}), listings: pools, allowed: true},
		{
			name: "namespaced objects are named with their namespace", crd: crd(nil, served),
			listings: map[string]listing{"pools/": {names: []string{"shop/web"}, remaining: ptr.To[int64](0)}},
			message:  "strata-guardrail: crd-in-use: CRD pools.fleet.strata.dev of cluster hub still has 1 pool (shop/web);",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewHandler(Options{Metadata: &fakeMetadata{t: t, listings: tc.listings}, Cluster: "hub"})
			if err != nil {
				t.Fatal(err)
			}
			resp := review(t, h, CRDDeletePath, admissionv1.Delete, tc.crd)
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (%v)", resp.Allowed, tc.allowed, resp.Result)
			}
			if !tc.allowed && !strings.HasPrefix(resp.Result.Message, tc.message) {
				t.Errorf("message = %q, want it to start with %q", resp.Result.Message, tc.message)
			}
		})
	}
}

func TestServedVersion(t *testing.T) {
	v := func(name string, served, storage bool) apiextensionsv1.CustomResourceDefinitionVersion {
		return apiextensionsv1.CustomResourceDefinitionVersion{Name: name, Served: served, Storage: storage}
	}
	cases := []struct {
		name     string
		versions []apiextensionsv1.CustomResourceDefinitionVersion
		want     string
	}{
		{name: "storage version served", versions: []apiextensionsv1.CustomResourceDefinitionVersion{v("v1", true, false), v("v2", true, true)}, want: "v2"},
		{name: "storage version not served", versions: []apiextensionsv1.CustomResourceDefinitionVersion{v("v1", false, true), v("v2", true, false)}, want: "v2"},
		{name: "nothing served", versions: []apiextensionsv1.CustomResourceDefinitionVersion{v("v1", false, true)}, want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := servedVersion(crd(nil, tc.versions...)); got != tc.want {
				t.Errorf("servedVersion = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	cases := []struct {
		holds []held
		want  string
	}{
		{holds: []held{{resource: "pods", count: 1, example: "a"}}, want: "1 pod (a)"},
		{holds: []held{{resource: "pods", count: 2, example: "a"}, {resource: "jobs", count: 1, example: "j"}}, want: "2 pods (e.g. a) and 1 job (j)"},
		{
			holds: []held{{resource: "pods", count: 2, example: "a"}, {resource: "services", count: 1, more: true, example: "s"}, {resource: "jobs", count: 1, example: "j"}},
			want:  "2 pods (e.g. a), 1 or more services (e.g. s) and 1 job (j)",
		},
	}
	for _, tc := range cases {
		if got := summary(tc.holds); got != tc.want {
			t.Errorf("summary(%v) = %q, want %q", tc.holds, got, tc.want)
		}
	}
}

func TestNewHandlerNeedsMetadata(t *testing.T) {
	if _, err := NewHandler(Options{}); err == nil {
		t.Error("NewHandler without a metadata client: no error")
	}
}

// TestReviewWithoutRequest: a review without a request, or an empty body,
// is refused on every path, not allowed for not being what the path judges
// (found by FuzzWebhook).
func TestReviewWithoutRequest(t *testing.T) {
	h, err := NewHandler(Options{Metadata: &fakeMetadata{t: t}})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{NamespaceDeletePath, CRDDeletePath, EvictionPath, ScalePath} {
		for _, body := range []string{
			`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`,
			`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`,
			`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"DELETE"}}`,
			``,
		} {
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			out := &admissionv1.AdmissionReview{}
			if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil || out.Response == nil {
				t.Fatalf("POST %s %q: not an AdmissionReview (%v): %s", path, body, err, rec.Body)
			}
			if out.Response.Allowed || out.Response.Result.Code != http.StatusBadRequest {
				t.Errorf("POST %s %q: allowed %t, code %d; want refused with 400", path, body, out.Response.Allowed, out.Response.Result.Code)
			}
		}
	}
}
