package guardrails

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

var t0 = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)

// podMeta builds the metadata of a pod, as the webhook reads it.
type podMeta struct{ metav1.PartialObjectMetadata }

// makePod starts pod kv-0 of namespace shop.
func makePod() *podMeta {
	return &podMeta{metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Namespace: "shop", Name: "kv-0", Labels: map[string]string{}, Annotations: map[string]string{},
	}}}
}

// ofKV makes it a pod of StatefulApp kv of the application owner.
func (p *podMeta) ofKV(owner string) *podMeta {
	p.Labels[appsv1alpha1.StatefulAppLabel] = "kv"
	if owner != "" {
		p.Labels[appsv1alpha1.AppLabel] = owner
	}
	return p
}

func (p *podMeta) label(key, value string) *podMeta {
	p.Labels[key] = value
	return p
}

func (p *podMeta) annotate(key, value string) *podMeta {
	p.Annotations[key] = value
	return p
}

func (p *podMeta) approved(operation string, deadline time.Time) *podMeta {
	return p.annotate(appsv1alpha1.StopApprovedAnnotation, operation+"@"+deadline.Format(time.RFC3339))
}

func (p *podMeta) deleting() *podMeta {
	p.DeletionTimestamp = ptr.To(metav1.NewTime(t0))
	return p
}

// reviewEviction posts the AdmissionReview of an eviction of pod
// namespace/name, as the API server sends it, and returns the response.
func reviewEviction(t *testing.T, h http.Handler, op admissionv1.Operation, subresource, namespace, name string) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, err := json.Marshal(&policyv1.Eviction{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "Eviction"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "1", Operation: op, Namespace: namespace, Name: name, SubResource: subresource,
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Object:   runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, EvictionPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST %s: %d %s", EvictionPath, rec.Code, rec.Body)
	}
	out := &admissionv1.AdmissionReview{}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		t.Fatal(err)
	}
	return out.Response
}

func TestEviction(t *testing.T) {
	const op = "shop/kv/kv-0/EVICT/1"
	cases := []struct {
		name        string
		pod         *podMeta // nil: no such pod
		getErr      error
		op          admissionv1.Operation
		subresource string
		allowed     bool
		message     string // the whole denial, when set
		contains    string // part of the denial
	}{
		{name: "a pod of no StatefulApp", pod: makePod(), allowed: true},
		{name: "a pod of a StatelessApp", pod: makePod().label(appsv1alpha1.StatelessAppLabel, "web"), allowed: true},
		{name: "no such pod", allowed: true},
		{
			name: "no approval", pod: makePod().ofKV("store"),
			message: "strata-guardrail: stateful-eviction: pod kv-0 of StatefulApp kv (namespace shop of cluster workload-1) holds shards " +
				"of the app's data and is stopped only with the approval of its shard manager, and no stop of it was approved. " +
				"To ask for it, cordon its Node (`kubectl cordon NODE`; kubectl drain does) or run " +
				"`kubectl annotate pod kv-0 -n shop apps.strata.dev/stop-requested=<reason>`: Strata asks the app's shard manager, " +
				"and the eviction passes once it approves (`kubectl strata status store/kv` shows where it waits).",
		},
		{
			name: "without the app label, status names the namespace", pod: makePod().ofKV(""),
			contains: "(`kubectl strata status shop/kv` shows where it waits)",
		},
		{
			name: "stop requested, not approved yet", pod: makePod().ofKV("store").annotate(appsv1alpha1.StopRequestedAnnotation, "disk check"),
			contains: `and a stop was requested (apps.strata.dev/stop-requested="disk check") and the shard manager has not approved it yet.`,
		},
		{name: "approved", pod: makePod().ofKV("store").approved(op, t0.Add(time.Second)), allowed: true},
		{
			name: "approved with a deadline in another zone", allowed: true,
			pod: makePod().ofKV("store").annotate(appsv1alpha1.StopApprovedAnnotation, op+"@2026-11-02T10:30:01+01:00"),
		},
		{
			name: "approval expired", pod: makePod().ofKV("store").approved(op, t0),
			contains: "and the approval of operation shop/kv/kv-0/EVICT/1 expired at 2026-11-02T09:30:00Z; Strata asks the shard manager again.",
		},
		{
			name: "approval of another pod", pod: makePod().ofKV("store").approved("shop/kv/kv-1/EVICT/1", t0.Add(time.Hour)),
			contains: `and the approved operation "shop/kv/kv-1/EVICT/1" is not one on this pod (<namespace>/<app>/<pod>/<kind>/<n>: shop/kv/kv-0/...).`,
		},
		{
			name: "approval of another app", pod: makePod().ofKV("store").approved("shop/kv2/kv-0/EVICT/1", t0.Add(time.Hour)),
			contains: `the approved operation "shop/kv2/kv-0/EVICT/1" is not one on this pod`,
		},
		{
			name: "approval without a deadline", pod: makePod().ofKV("store").annotate(appsv1alpha1.StopApprovedAnnotation, op),
			contains: `its apps.strata.dev/stop-approved annotation "shop/kv/kv-0/EVICT/1" is not <operation-id>@<deadline>`,
		},
		{
			name: "approval with a bad deadline", pod: makePod().ofKV("store").annotate(appsv1alpha1.StopApprovedAnnotation, op+"@tomorrow"),
			contains: "has no RFC 3339 deadline after the @",
		},
		{name: "already terminating", pod: makePod().ofKV("store").deleting(), allowed: true},
		{
			name: "the pod cannot be read", getErr: errors.New("etcd is down"),
			message: "strata-guardrail: stateful-eviction: checking whether pod shop/kv-0 of cluster workload-1 may be evicted: reading it: etcd is down; try again",
		},
		{name: "not a create", pod: makePod().ofKV("store"), op: admissionv1.Update, allowed: true},
		{name: "not an eviction", pod: makePod().ofKV("store"), subresource: "status", allowed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md := &fakeMetadata{t: t, objects: map[string]*metav1.PartialObjectMetadata{}, getErr: tc.getErr}
			if tc.pod != nil {
				md.objects["pods/"+tc.pod.Namespace+"/"+tc.pod.Name] = &tc.pod.PartialObjectMetadata
			}
			h, err := NewHandler(Options{Metadata: md, Cluster: "workload-1", Clock: clocktesting.NewFakePassiveClock(t0)})
			if err != nil {
				t.Fatal(err)
			}
			op, subresource := admissionv1.Create, "eviction"
			if tc.op != "" {
				op = tc.op
			}
			if tc.subresource != "" {
				subresource = tc.subresource
			}
			resp := reviewEviction(t, h, op, subresource, "shop", "kv-0")
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (%v)", resp.Allowed, tc.allowed, resp.Result)
			}
			if tc.allowed {
				return
			}
			if resp.Result.Code != http.StatusTooManyRequests || resp.Result.Reason != metav1.StatusReasonTooManyRequests {
				t.Errorf("code %d, reason %s; want 429 TooManyRequests, as a disruption budget's refusal", resp.Result.Code, resp.Result.Reason)
			}
			if tc.message != "" {
				if diff := cmp.Diff(tc.message, resp.Result.Message); diff != "" {
					t.Errorf("message (-want +got):\n%s", diff)
				}
			}
			if !strings.Contains(resp.Result.Message, tc.contains) {
				t.Errorf("message %q does not contain %q", resp.Result.Message, tc.contains)
			}
		})
	}
}
