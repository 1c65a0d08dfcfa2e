package guardrails

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// scaleReview is an UPDATE of the scale subresource of shop/<name>, as the
// API server sends it.
type scaleReview struct {
	resource, subresource, name, user string
	op                                admissionv1.Operation
	from, to                          int32
}

func (r scaleReview) post(t *testing.T, h http.Handler) *admissionv1.AdmissionResponse {
	t.Helper()
	scale := func(replicas int32) runtime.RawExtension {
		raw, err := json.Marshal(&autoscalingv1.Scale{
			TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: r.name},
			Spec:       autoscalingv1.ScaleSpec{Replicas: replicas},
		})
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: raw}
	}
	body, err := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "1", Operation: r.op, Namespace: "shop", Name: r.name, SubResource: r.subresource,
			Resource: metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: r.resource},
			UserInfo: authenticationv1.UserInfo{Username: r.user},
			Object:   scale(r.to), OldObject: scale(r.from),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, ScalePath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST %s: %d %s", ScalePath, rec.Code, rec.Body)
	}
	out := &admissionv1.AdmissionReview{}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		t.Fatal(err)
	}
	return out.Response
}

func TestScale(t *testing.T) {
	managed := func(name string, deleting bool) *metav1.PartialObjectMetadata {
		m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name,
			Labels: map[string]string{appsv1alpha1.StatelessAppLabel: "web"}}}
		if deleting {
			m.DeletionTimestamp = ptr.To(metav1.NewTime(t0))
		}
		return m
	}
	objects := map[string]*metav1.PartialObjectMetadata{
		"deployments/shop/web":             managed("web", false),
		"deployments/shop/web-canary":      managed("web-canary", false),
		"deployments/shop/going":           managed("going", true),
		"deployments/shop/plain":           {ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "plain", Labels: map[string]string{"app": "plain"}}},
		"replicasets/shop/web-7d9f":        managed("web-7d9f", false),
		"deployments/shop/unreadable-name": managed("unreadable-name", false),
	}
	const admin, owner = "kubernetes-admin", "bob"
	scaleDeployment := func(name, user string, from, to int32) scaleReview {
		return scaleReview{resource: "deployments", subresource: "scale", name: name, user: user, op: admissionv1.Update, from: from, to: to}
	}
	cases := []struct {
		name    string
		review  scaleReview
		allowed bool
		code    int32
		message string
	}{
		{
			name: "an admin scales an app's Deployment", review: scaleDeployment("web", admin, 20, 0), code: http.StatusForbidden,
			message: "strata-guardrail: managed-object: Deployment web is expanded from StatelessApp web and its replicas change only through it " +
				"(this asked 20 -> 0); scale the StatelessApp instead: `kubectl scale statelessapp web -n shop --replicas=N` " +
				"(N counts all of its replicas; one step removes at most the AppPlatform's maxScaleDownPercent).",
		},
		{
			name: "an owner scales up the canary", review: scaleDeployment("web-canary", owner, 2, 5), code: http.StatusForbidden,
			message: "strata-guardrail: managed-object: Deployment web-canary is expanded from StatelessApp web and its replicas change only through it " +
				"(this asked 2 -> 5); scale the StatelessApp instead: `kubectl scale statelessapp web -n shop --replicas=N` " +
				"(N counts all of its replicas; one step removes at most the AppPlatform's maxScaleDownPercent).",
		},
		{
			name: "a Kubernetes controller (an autoscaler) scales an app's Deployment", code: http.StatusForbidden,
			review: scaleDeployment("web", "system:serviceaccount:kube-system:horizontal-pod-autoscaler", 20, 25),
		},
		{
			name: "an admin scales a ReplicaSet of an app's Deployment", code: http.StatusForbidden,
			review: scaleReview{resource: "replicasets", subresource: "scale", name: "web-7d9f", user: admin, op: admissionv1.Update, from: 20, to: 0},
			message: "strata-guardrail: managed-object: ReplicaSet web-7d9f is expanded from StatelessApp web and its replicas change only through it " +
				"(this asked 20 -> 0); scale the StatelessApp instead: `kubectl scale statelessapp web -n shop --replicas=N` " +
				"(N counts all of its replicas; one step removes at most the AppPlatform's maxScaleDownPercent).",
		},
		{name: "Strata scales its Deployment", review: scaleDeployment("web", StrataControllers+"strata-apps", 20, 0), allowed: true},
		{name: "the replicas stay as they are", review: scaleDeployment("web", admin, 20, 20), allowed: true},
		{name: "a Deployment of no StatelessApp", review: scaleDeployment("plain", admin, 3, 0), allowed: true},
		{name: "a Deployment being deleted", review: scaleDeployment("going", admin, 3, 0), allowed: true},
		{name: "no such Deployment", review: scaleDeployment("gone", admin, 3, 0), allowed: true},
		{
			name: "a failed lookup refuses", review: scaleDeployment("unreadable-name", admin, 3, 0), code: http.StatusInternalServerError,
			message: "strata-guardrail: managed-object: checking whether Deployment shop/unreadable-name of cluster workload-1 is expanded " +
				"from a StatelessApp: etcd is down; try again",
		},
		{
			name:    "not the scale subresource",
			review:  scaleReview{resource: "deployments", subresource: "status", name: "web", user: admin, op: admissionv1.Update, from: 20, to: 0},
			allowed: true,
		},
		{
			name:    "not a Deployment or ReplicaSet",
			review:  scaleReview{resource: "statelessapps", subresource: "scale", name: "web", user: admin, op: admissionv1.Update, from: 20, to: 0},
			allowed: true,
		},
		{
			name:    "not an update",
			review:  scaleReview{resource: "deployments", subresource: "scale", name: "web", user: admin, op: admissionv1.Create, from: 20, to: 0},
			allowed: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md := &fakeMetadata{t: t, objects: objects, getErrs: map[string]error{"deployments/shop/unreadable-name": errors.New("etcd is down")}}
			h, err := NewHandler(Options{Metadata: md, Cluster: "workload-1"})
			if err != nil {
				t.Fatal(err)
			}
			resp := tc.review.post(t, h)
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
