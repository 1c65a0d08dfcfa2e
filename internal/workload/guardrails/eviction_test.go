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
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/workload/statefulapp"
)

var t0 = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)

// podMeta builds the metadata of a pod, as the webhook reads it.
type podMeta struct{ metav1.PartialObjectMetadata }

// makePod starts pod kv-0 of namespace shop.
func makePod() *podMeta {
	return &podMeta{metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Namespace: "shop", Name: "kv-0", UID: "uid-0", Labels: map[string]string{}, Annotations: map[string]string{},
	}}}
}

// kvUID is the UID of StatefulApp kv of namespace shop.
const kvUID = "kv-uid"

// makeApp is StatefulApp kv of namespace shop, as the webhook reads it.
func makeApp(uid types.UID) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "kv", UID: uid}}
}

// ofKV makes it a pod of StatefulApp kv of the application owner: labelled
// as its controller labels its pods, and controlled by it.
func (p *podMeta) ofKV(owner string) *podMeta {
	return p.labelledKV(owner).owned("kv", kvUID, true)
}

// labelledKV labels it as a pod of StatefulApp kv of the application
// owner, which anyone who may create a pod can do.
func (p *podMeta) labelledKV(owner string) *podMeta {
	p.Labels[appsv1alpha1.StatefulAppLabel] = "kv"
	if owner != "" {
		p.Labels[appsv1alpha1.AppLabel] = owner
	}
	return p
}

// owned adds an owner reference to StatefulApp app of UID uid.
func (p *podMeta) owned(app string, uid types.UID, controller bool) *podMeta {
	p.OwnerReferences = append(p.OwnerReferences, metav1.OwnerReference{
		APIVersion: appsv1alpha1.GroupVersion.String(), Kind: "StatefulApp", Name: app, UID: uid, Controller: ptr.To(controller),
	})
	return p
}

func (p *podMeta) named(name string) *podMeta {
	p.Name = name
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

// claimMeta builds the metadata of the PVC data-kv-0, as the webhook
// reads it.
func claimMeta(annotations map[string]string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "data-kv-0", Annotations: annotations}}
}

// recorded is PVC data-kv-0 recording the operation as the StatefulApp
// controller writes it; edit changes the record first.
func recorded(id string, deadline time.Time, edit ...func(*statefulapp.Record)) *metav1.PartialObjectMetadata {
	rec := &statefulapp.Record{
		ID: id, Kind: statefulapp.KindEvict, Reason: "Node n1 is cordoned", Deadline: deadline,
		State: appsv1alpha1.OperationApproved, Since: t0.Add(-time.Minute), PodUID: "uid-0", Node: "n1",
	}
	for _, e := range edit {
		e(rec)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		panic(err)
	}
	return claimMeta(map[string]string{appsv1alpha1.OperationAnnotation: string(raw)})
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
	const op = "shop/kv/kv-0/Evict/0a1b2c3d-1"
	later := t0.Add(time.Hour)
	approvedPod := func() *podMeta { return makePod().ofKV("store").approved(op, later) }
	notStratas := "and the approval on the pod is not Strata's: no approved Evict operation shop/kv/kv-0/Evict/0a1b2c3d-1 " +
		"is recorded on PVC data-kv-0 "
	cases := []struct {
		name        string
		pod         *podMeta                      // nil: no such pod
		pvc         *metav1.PartialObjectMetadata // data-kv-0; nil: no such PVC
		app         *metav1.PartialObjectMetadata // StatefulApp kv; makeApp(kvUID) when nil
		noApp       bool                          // no StatefulApp kv
		getErr      error
		appErr      error
		pvcErr      error
		op          admissionv1.Operation
		subresource string
		allowed     bool
		message     string // the whole denial, when set
		contains    string // part of the denial
	}{
		{name: "a pod of no StatefulApp", pod: makePod(), allowed: true},
		{name: "a pod of a StatelessApp", pod: makePod().label(appsv1alpha1.StatelessAppLabel, "web"), allowed: true},
		{name: "no such pod", allowed: true},
		{name: "labelled as a StatefulApp's, by nothing controlled", pod: makePod().labelledKV("store"), allowed: true},
		{name: "labelled as a StatefulApp's, its controller gone", pod: makePod().ofKV("store"), noApp: true, allowed: true},
		{name: "labelled as a StatefulApp's, controlled by another of its name", pod: makePod().ofKV("store"), app: makeApp("new-uid"), allowed: true},
		{
			name: "the StatefulApp cannot be read", pod: makePod().ofKV("store"), appErr: errors.New("etcd is down"),
			message: "strata-guardrail: stateful-eviction: checking whether pod shop/kv-0 of cluster workload-1 may be evicted: " +
				"reading StatefulApp kv, its controller: etcd is down; try again",
		},
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
		{name: "approved", pod: approvedPod(), pvc: recorded(op, later), allowed: true},
		{
			name: "approved, the record without a pod UID", pod: approvedPod(), allowed: true,
			pvc: recorded(op, later, func(r *statefulapp.Record) { r.PodUID = "" }),
		},
		{
			name: "approved with a deadline in another zone", allowed: true, pvc: recorded(op, later),
			pod: makePod().ofKV("store").annotate(appsv1alpha1.StopApprovedAnnotation, op+"@2026-11-02T11:30:00+01:00"),
		},
		{
			name: "approved, 3 s before the deadline", allowed: true,
			pod: makePod().ofKV("store").approved(op, t0.Add(3*time.Second)), pvc: recorded(op, t0.Add(3*time.Second)),
		},
		{
			name: "approved, 2 s before the deadline: within the stop margin",
			pod:  makePod().ofKV("store").approved(op, t0.Add(2*time.Second)), pvc: recorded(op, t0.Add(2*time.Second)),
			contains: "and the approval of operation shop/kv/kv-0/Evict/0a1b2c3d-1 expires at 2026-11-02T09:30:02Z, less than 2s from now, " +
				"when neither Strata nor this guardrail lets a pod go (it absorbs clock skew); Strata asks the shard manager again.",
		},
		{
			name: "approval expired", pod: makePod().ofKV("store").approved(op, t0), pvc: recorded(op, t0),
			contains: "and the approval of operation shop/kv/kv-0/Evict/0a1b2c3d-1 expired at 2026-11-02T09:30:00Z; Strata asks the shard manager again.",
		},
		{
			name: "forged: no PVC", pod: approvedPod(),
			message: "strata-guardrail: stateful-eviction: pod kv-0 of StatefulApp kv (namespace shop of cluster workload-1) holds shards " +
				"of the app's data and is stopped only with the approval of its shard manager, and the approval on the pod is not Strata's: " +
				"no approved Evict operation shop/kv/kv-0/Evict/0a1b2c3d-1 is recorded on PVC data-kv-0 (there is no such PVC). " +
				"To ask for it, cordon its Node (`kubectl cordon NODE`; kubectl drain does) or run " +
				"`kubectl annotate pod kv-0 -n shop apps.strata.dev/stop-requested=<reason>`: Strata asks the app's shard manager, " +
				"and the eviction passes once it approves (`kubectl strata status store/kv` shows where it waits).",
		},
		{name: "forged: the PVC records no operation", pod: approvedPod(), pvc: claimMeta(nil), contains: notStratas + "(it records no operation)."},
		{
			name: "forged: the PVC records another operation", pod: approvedPod(), pvc: recorded("shop/kv/kv-0/Evict/0a1b2c3d-2", later),
			contains: notStratas + "(it records operation shop/kv/kv-0/Evict/0a1b2c3d-2).",
		},
		{
			name: "forged: the operation is a Restart", pod: approvedPod(),
			pvc:      recorded(op, later, func(r *statefulapp.Record) { r.Kind = statefulapp.KindRestart }),
			contains: notStratas + "(it records the operation as a Restart).",
		},
		{
			name: "forged: the operation is not approved yet", pod: approvedPod(),
			pvc:      recorded(op, later, func(r *statefulapp.Record) { r.State = appsv1alpha1.OperationRequested }),
			contains: notStratas + "(it records the operation in state Requested).",
		},
		{
			name: "the operation is past its approval", pod: approvedPod(),
			pvc:      recorded(op, later, func(r *statefulapp.Record) { r.State = appsv1alpha1.OperationStopping }),
			contains: notStratas + "(it records the operation in state Stopping).",
		},
		{
			name: "forged: a later deadline than Strata's", pod: makePod().ofKV("store").approved(op, t0.Add(24*time.Hour)),
			pvc:      recorded(op, later),
			contains: notStratas + "(it records the operation with deadline 2026-11-02T10:30:00Z, not 2026-11-03T09:30:00Z).",
		},
		{
			name: "forged: an earlier deadline than Strata's", pod: approvedPod(), pvc: recorded(op, t0.Add(24*time.Hour)),
			contains: notStratas + "(it records the operation with deadline 2026-11-03T09:30:00Z, not 2026-11-02T10:30:00Z).",
		},
		{
			name: "the operation is for another incarnation of the pod", pod: approvedPod(),
			pvc:      recorded(op, later, func(r *statefulapp.Record) { r.PodUID = "uid-old" }),
			contains: notStratas + "(it records the operation for pod UID uid-old, not uid-0).",
		},
		{
			name: "the record is not JSON", pod: approvedPod(), pvc: claimMeta(map[string]string{appsv1alpha1.OperationAnnotation: "{"}),
			contains: notStratas + "(its apps.strata.dev/operation annotation is not an operation record: ",
		},
		{
			name: "the PVC is being deleted", pod: approvedPod(),
			pvc: func() *metav1.PartialObjectMetadata {
				pvc := recorded(op, later)
				pvc.DeletionTimestamp = ptr.To(metav1.NewTime(t0))
				return pvc
			}(),
			contains: notStratas + "(the PVC is being deleted).",
		},
		{
			name: "approval of another pod", pod: makePod().ofKV("store").approved("shop/kv/kv-1/Evict/0a1b2c3d-1", later),
			contains: `and the approved operation "shop/kv/kv-1/Evict/0a1b2c3d-1" is not one on this pod (<namespace>/<app>/<pod>/<kind>/<n>: shop/kv/kv-0/...).`,
		},
		{
			name: "approval of another app", pod: makePod().ofKV("store").approved("shop/kv2/kv-0/Evict/0a1b2c3d-1", later),
			contains: `the approved operation "shop/kv2/kv-0/Evict/0a1b2c3d-1" is not one on this pod`,
		},
		{
			name: "approval without a deadline", pod: makePod().ofKV("store").annotate(appsv1alpha1.StopApprovedAnnotation, op),
			contains: `its apps.strata.dev/stop-approved annotation "shop/kv/kv-0/Evict/0a1b2c3d-1" is not <operation-id>@<deadline>`,
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
		{
			name: "the PVC cannot be read", pod: approvedPod(), pvcErr: errors.New("etcd is down"),
			message: "strata-guardrail: stateful-eviction: checking whether pod shop/kv-0 of cluster workload-1 may be evicted: " +
				"reading its PVC data-kv-0: etcd is down; try again",
		},
		{name: "not a create", pod: makePod().ofKV("store"), op: admissionv1.Update, allowed: true},
		{name: "not an eviction", pod: makePod().ofKV("store"), subresource: "status", allowed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md := &fakeMetadata{t: t, objects: map[string]*metav1.PartialObjectMetadata{}, getErr: tc.getErr,
				getErrs: map[string]error{"persistentvolumeclaims/shop/data-kv-0": tc.pvcErr, "statefulapps/shop/kv": tc.appErr}}
			if !tc.noApp {
				app := tc.app
				if app == nil {
					app = makeApp(kvUID)
				}
				md.objects["statefulapps/shop/kv"] = app
			}
			if tc.pod != nil {
				md.objects["pods/"+tc.pod.Namespace+"/"+tc.pod.Name] = &tc.pod.PartialObjectMetadata
			}
			if tc.pvc != nil {
				md.objects["persistentvolumeclaims/shop/data-kv-0"] = tc.pvc
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

// TestOwnedBy decides which pods are a StatefulApp's: only those it
// controls and lists, whatever the labels.
func TestOwnedBy(t *testing.T) {
	cases := []struct {
		name    string
		pod     *podMeta
		app     *metav1.PartialObjectMetadata // the StatefulApp the reference names; nil: none
		wantApp string
		wantWhy string
	}{
		{
			name: "the label only", pod: makePod().labelledKV("store"), app: makeApp(kvUID),
			wantWhy: "no StatefulApp is its controller (no owner reference with controller: true to a StatefulApp)",
		},
		{
			name: "an owner reference that is not the controller", pod: makePod().labelledKV("store").owned("kv", kvUID, false), app: makeApp(kvUID),
			wantWhy: "no StatefulApp is its controller (no owner reference with controller: true to a StatefulApp)",
		},
		{
			name: "a controller reference to another kind", app: makeApp(kvUID),
			pod: func() *podMeta {
				p := makePod().labelledKV("store")
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "kv", UID: kvUID, Controller: ptr.To(true)}}
				return p
			}(),
			wantWhy: "no StatefulApp is its controller (no owner reference with controller: true to a StatefulApp)",
		},
		{
			name: "a controller reference to a StatefulApp of another group", app: makeApp(kvUID),
			pod: func() *podMeta {
				p := makePod().labelledKV("store")
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "StatefulApp", Name: "kv", UID: kvUID, Controller: ptr.To(true)}}
				return p
			}(),
			wantWhy: "no StatefulApp is its controller (no owner reference with controller: true to a StatefulApp)",
		},
		{
			name: "a controller reference to a missing StatefulApp", pod: makePod().ofKV("store"),
			wantWhy: "its controller, StatefulApp kv, does not exist",
		},
		{
			name: "a controller reference to a StatefulApp of another UID", pod: makePod().ofKV("store"), app: makeApp("new-uid"),
			wantWhy: "its controller is StatefulApp kv of UID kv-uid, not the StatefulApp kv that exists (UID new-uid)",
		},
		{
			name: "controlled, but without the StatefulApp's label", pod: makePod().owned("kv", kvUID, true), app: makeApp(kvUID),
			wantWhy: `StatefulApp kv does not select it (its apps.strata.dev/stateful-app label is "")`,
		},
		{
			name: "controlled, but not named as its pods are", pod: makePod().ofKV("store").named("kv-extra"), app: makeApp(kvUID),
			wantWhy: "StatefulApp kv does not list it: its pods are named kv-<ordinal>",
		},
		{name: "the real thing", pod: makePod().ofKV("store"), app: makeApp(kvUID), wantApp: "kv"},
		{name: "the real thing, a high ordinal", pod: makePod().ofKV("store").named("kv-12"), app: makeApp(kvUID), wantApp: "kv"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app, why := ownedBy(&tc.pod.PartialObjectMetadata, tc.app)
			if diff := cmp.Diff([]string{tc.wantApp, tc.wantWhy}, []string{app, why}); diff != "" {
				t.Errorf("ownedBy() (-want +got):\n%s", diff)
			}
		})
	}
}
