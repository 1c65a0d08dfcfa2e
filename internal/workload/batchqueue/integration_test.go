package batchqueue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	clusterhub "github.com/strata-dev/strata/internal/cluster/hub"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/workload/appnamespace"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

const systemNamespace = "strata-system"

// place is an API server of the test: the hub or a workload cluster.
type place struct {
	name string
	c    client.Client
	// kubeconfig is a workload cluster's admin kubeconfig.
	kubeconfig []byte
}

// TestBatchQueueController runs the BatchQueue controller, with the
// AppNamespace controller that makes the batch namespaces, on a hub with
// two workload clusters, each an API server of its own with Kueue's CRDs.
// Kueue does not run: the test writes a ClusterQueue's status as the hub's
// Kueue would.
func TestBatchQueueController(t *testing.T) {
	_, hubCfg := testutil.StartEnvWithKueue(t)
	s := scheme(t)
	hubClient, err := client.New(hubCfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	hub := place{name: "the hub", c: hubClient}
	testutil.MustCreate(t, hub.c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}})
	w1, w2 := startWorkload(t, hub.c, "w1"), startWorkload(t, hub.c, "w2")
	all := []place{hub, w1, w2}
	testutil.MustCreate(t, hub.c, testutil.MakePool("w1-general", "w1", 4).Obj())
	testutil.MustCreate(t, hub.c, testutil.MakePool("w2-gpu", "w2", 4).Profile("gpu").Obj())

	// The hub's own scheme, as `strata serve hub` runs the controllers.
	testutil.StartManager(t, hubCfg, clusterhub.Scheme(), func(mgr ctrl.Manager) error {
		clusters, err := remote.NewWithOptions(mgr.GetClient(), remote.Options{ConnectTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second})
		if err != nil {
			return err
		}
		if err := mgr.Add(clusters); err != nil {
			return err
		}
		if err := appnamespace.SetupOnHub(mgr, clusters); err != nil {
			return err
		}
		r, err := New(Options{Hub: mgr.GetClient(), HubReader: mgr.GetAPIReader(), Clusters: clusters, StatusInterval: 200 * time.Millisecond})
		if err != nil {
			return err
		}
		return r.SetupWithManager(mgr)
	})

	t.Run("a team's queue under its organisation's: Kueue's objects on the hub and every cluster", func(t *testing.T) {
		testutil.MustCreate(t, hub.c, makeQueue("acme", "acme").Quota("general", "100", "400Gi", "").Obj())
		testutil.MustCreate(t, hub.c, makeQueue("acme-ml", "acme").Parent("acme").Quota("general", "10", "40Gi", "").Quota("gpu", "", "", "8").Obj())
		testutil.MustCreate(t, hub.c, batchNamespace("ml", "acme-ml"))

		for _, p := range all {
			cq := waitObject(t, p, kueue.ClusterQueueKind, "", "acme-ml", func(u *unstructured.Unstructured) bool {
				return field(u, "spec", "cohortName") == "acme"
			})
			_, hasChecks := cq.Object["spec"].(map[string]any)["admissionChecksStrategy"]
			if hasChecks != (p.name == "the hub") {
				t.Errorf("ClusterQueue acme-ml in %s: admission checks %v, want them only on the hub", p.name, hasChecks)
			}
			waitObject(t, p, kueue.CohortKind, "", "acme", func(u *unstructured.Unstructured) bool {
				return field(u, "spec", "parentName") == "org.acme"
			})
			waitObject(t, p, kueue.CohortKind, "", "org.acme", nil)
			for _, profile := range []string{"general", "gpu"} {
				waitObject(t, p, kueue.ResourceFlavorKind, "", profile, func(u *unstructured.Unstructured) bool {
					return field(u, "spec", "nodeLabels", fleetv1alpha1.NodeProfileLabel) == profile
				})
			}
			waitObject(t, p, kueue.LocalQueueKind, "ml", "acme-ml", func(u *unstructured.Unstructured) bool {
				return field(u, "spec", "clusterQueue") == "acme-ml"
			})
		}
		waitObject(t, hub, kueue.MultiKueueConfigKind, "", kueue.MultiKueueConfigName, func(u *unstructured.Unstructured) bool {
			return fmt.Sprint(u.Object["spec"].(map[string]any)["clusters"]) == "[w1 w2]"
		})
		waitObject(t, hub, kueue.MultiKueueClusterKind, "", "w2", func(u *unstructured.Unstructured) bool {
			return field(u, "spec", "clusterSource", "kubeConfig", "location") == "multikueue-w2"
		})
		waitObject(t, hub, kueue.AdmissionCheckKind, "", kueue.MultiKueueAdmissionCheck, nil)
		if err := w1.c.Get(t.Context(), client.ObjectKey{Name: kueue.MultiKueueConfigName}, kueue.New(kueue.MultiKueueConfigKind, "", kueue.MultiKueueConfigName)); !apierrors.IsNotFound(err) {
			t.Errorf("MultiKueueConfig on w1: %v, want it only on the hub", err)
		}

		q := waitCondition(t, hub.c, "acme-ml", appsv1alpha1.BatchQueueReadyCondition, appsv1alpha1.QueueReadyReason)
		want := "ClusterQueue acme-ml in acme with quotas on node profiles general, gpu"
		if got := meta.FindStatusCondition(q.Status.Conditions, appsv1alpha1.BatchQueueReadyCondition).Message; got != want {
			t.Errorf("Ready message = %q, want %q", got, want)
		}
		q = waitCondition(t, hub.c, "acme-ml", appsv1alpha1.BatchQueueClustersSyncedCondition, appsv1alpha1.ClustersSyncedReason)
		if got := meta.FindStatusCondition(q.Status.Conditions, appsv1alpha1.BatchQueueClustersSyncedCondition).Message; got != "on workload clusters w1, w2" {
			t.Errorf("ClustersSynced message = %q", got)
		}
	})

	t.Run("status: usage, borrowed and counts from the hub's ClusterQueue; a parent sums its tree", func(t *testing.T) {
		setClusterQueueStatus(t, hub.c, "acme-ml", map[string]any{
			"conditions": []any{map[string]any{"type": "Active", "status": "True", "reason": "Ready", "message": "Can admit new workloads",
				"lastTransitionTime": "2026-01-01T00:00:00Z"}},
			"flavorsReservation": []any{
				map[string]any{"name": "general", "resources": []any{
					map[string]any{"name": "cpu", "total": "14", "borrowed": "4"},
					map[string]any{"name": "memory", "total": "20Gi", "borrowed": "0"},
					map[string]any{"name": "nvidia.com/gpu", "total": "0", "borrowed": "0"}}},
				map[string]any{"name": "gpu", "resources": []any{
					map[string]any{"name": "cpu", "total": "0", "borrowed": "0"},
					map[string]any{"name": "memory", "total": "0", "borrowed": "0"},
					map[string]any{"name": "nvidia.com/gpu", "total": "2", "borrowed": "0"}}},
			},
			"pendingWorkloads": int64(3), "reservingWorkloads": int64(5), "admittedWorkloads": int64(4),
		})
		leaf := waitStatus(t, hub.c, "acme-ml", func(s appsv1alpha1.BatchQueueStatus) bool { return s.PendingWorkloads == 3 })
		wantLeaf := appsv1alpha1.BatchQueueStatus{
			PendingWorkloads: 3, DispatchingWorkloads: 1, AdmittedWorkloads: 4,
			Profiles: []appsv1alpha1.ProfileStatus{
				{NodeProfile: "general", CPU: rs("10", "14", "4"), Memory: rs("40Gi", "20Gi", "0"), GPUs: rs("0", "0", "0")},
				{NodeProfile: "gpu", CPU: rs("0", "0", "0"), Memory: rs("0", "0", "0"), GPUs: rs("8", "2", "0")},
			},
		}
		if diff := cmp.Diff(wantLeaf, countsAndProfiles(leaf.Status)); diff != "" {
			t.Errorf("acme-ml status (-want +got):\n%s", diff)
		}
		parent := waitStatus(t, hub.c, "acme", func(s appsv1alpha1.BatchQueueStatus) bool { return s.PendingWorkloads == 3 })
		wantParent := appsv1alpha1.BatchQueueStatus{
			PendingWorkloads: 3, DispatchingWorkloads: 1, AdmittedWorkloads: 4,
			Profiles: []appsv1alpha1.ProfileStatus{
				{NodeProfile: "general", CPU: rs("110", "14", "0"), Memory: rs("440Gi", "20Gi", "0"), GPUs: rs("0", "0", "0")},
				{NodeProfile: "gpu", CPU: rs("0", "0", "0"), Memory: rs("0", "0", "0"), GPUs: rs("8", "2", "0")},
			},
		}
		if diff := cmp.Diff(wantParent, countsAndProfiles(parent.Status)); diff != "" {
			t.Errorf("acme status (-want +got):\n%s", diff)
		}
		if c := meta.FindStatusCondition(parent.Status.Conditions, appsv1alpha1.BatchQueueReadyCondition); c == nil ||
			c.Message != "Cohort acme in org.acme lends its quotas (node profiles general) to its children acme-ml first; jobs are submitted to their queues" {
			t.Errorf("acme Ready = %+v", c)
		}

		setClusterQueueStatus(t, hub.c, "acme-ml", map[string]any{
			"conditions": []any{map[string]any{"type": "Active", "status": "False", "reason": "AdmissionCheckInactive",
				"message": "Can't admit new workloads: references inactive AdmissionCheck(s): strata-multikueue", "lastTransitionTime": "2026-01-01T00:00:00Z"}},
		})
		q := waitCondition(t, hub.c, "acme-ml", appsv1alpha1.BatchQueueReadyCondition, appsv1alpha1.KueueInactiveReason)
		want := "the hub's Kueue reports ClusterQueue acme-ml inactive (AdmissionCheckInactive): Can't admit new workloads: references inactive AdmissionCheck(s): strata-multikueue"
		if got := meta.FindStatusCondition(q.Status.Conditions, appsv1alpha1.BatchQueueReadyCondition).Message; got != want {
			t.Errorf("Ready message = %q, want %q", got, want)
		}
	})

	t.Run("bad input: cycles, another organisation's parent, unknown profiles are conditions that name them", func(t *testing.T) {
		testutil.MustCreate(t, hub.c, makeQueue("cyc-a", "acme").Parent("cyc-b").Quota("general", "1", "", "").Obj())
		testutil.MustCreate(t, hub.c, makeQueue("cyc-b", "acme").Parent("cyc-a").Quota("general", "1", "", "").Obj())
		testutil.MustCreate(t, hub.c, makeQueue("spy", "globex").Parent("acme").Quota("general", "1", "", "").Obj())
		testutil.MustCreate(t, hub.c, makeQueue("tpu-team", "acme").Parent("acme").Quota("tpu", "1", "", "").Quota("general", "1", "", "").Obj())

		for name, want := range map[string]string{
			"cyc-a":    "parents make a cycle, cyc-a -> cyc-b -> cyc-a: until it is broken, the queue borrows only within organisation acme",
			"cyc-b":    "parents make a cycle, cyc-b -> cyc-a -> cyc-b: until it is broken, the queue borrows only within organisation acme",
			"spy":      "parent acme belongs to organisation acme, not globex: quota is never borrowed across organisations, so the parent is ignored",
			"tpu-team": "no Pool has node profile tpu: its quota is left out until one does",
		} {
			reason := map[string]string{"cyc-a": appsv1alpha1.ParentCycleReason, "cyc-b": appsv1alpha1.ParentCycleReason,
				"spy": appsv1alpha1.ParentInOtherOrganizationReason, "tpu-team": appsv1alpha1.NodeProfileUnknownReason}[name]
			q := waitCondition(t, hub.c, name, appsv1alpha1.BatchQueueReadyCondition, reason)
			if c := meta.FindStatusCondition(q.Status.Conditions, appsv1alpha1.BatchQueueReadyCondition); c.Status != metav1.ConditionFalse || c.Message != want {
				t.Errorf("%s Ready = %s %q, want False %q", name, c.Status, c.Message, want)
			}
		}
		// Kueue itself cannot lend across organisations: the spy's queue is
		// in globex's root Cohort.
		for _, p := range all {
			waitObject(t, p, kueue.ClusterQueueKind, "", "spy", func(u *unstructured.Unstructured) bool {
				return field(u, "spec", "cohortName") == "org.globex"
			})
			waitObject(t, p, kueue.ClusterQueueKind, "", "cyc-a", func(u *unstructured.Unstructured) bool {
				return field(u, "spec", "cohortName") == "org.acme"
			})
		}
		flavors := func(u *unstructured.Unstructured) []string {
			var names []string
			for _, g := range u.Object["spec"].(map[string]any)["resourceGroups"].([]any) {
				for _, f := range g.(map[string]any)["flavors"].([]any) {
					names = append(names, f.(map[string]any)["name"].(string))
				}
			}
			return names
		}
		waitObject(t, hub, kueue.ClusterQueueKind, "", "tpu-team", func(u *unstructured.Unstructured) bool {
			return slices.Equal(flavors(u), []string{"general"})
		})

		// A Pool of the profile: the quota is in, and the condition clears.
		testutil.MustCreate(t, hub.c, testutil.MakePool("w1-tpu", "w1", 1).Profile("tpu").Obj())
		waitCondition(t, hub.c, "tpu-team", appsv1alpha1.BatchQueueReadyCondition, appsv1alpha1.QueueReadyReason)
		for _, p := range all {
			waitObject(t, p, kueue.ResourceFlavorKind, "", "tpu", nil)
			waitObject(t, p, kueue.ClusterQueueKind, "", "tpu-team", func(u *unstructured.Unstructured) bool {
				return slices.Equal(flavors(u), []string{"tpu", "general"})
			})
		}
		// Breaking the cycle puts cyc-a under cyc-b, a Cohort now.
		update(t, hub.c, "cyc-b", func(q *appsv1alpha1.BatchQueue) { q.Spec.Parent = "" })
		waitCondition(t, hub.c, "cyc-a", appsv1alpha1.BatchQueueReadyCondition, appsv1alpha1.QueueReadyReason)
		for _, p := range all {
			waitObject(t, p, kueue.ClusterQueueKind, "", "cyc-a", func(u *unstructured.Unstructured) bool {
				return field(u, "spec", "cohortName") == "cyc-b"
			})
			waitObject(t, p, kueue.CohortKind, "", "cyc-b", func(u *unstructured.Unstructured) bool {
				return field(u, "spec", "parentName") == "org.acme"
			})
			waitGone(t, p, kueue.ClusterQueueKind, "", "cyc-b")
		}
	})

	t.Run("an unreachable cluster does not hold back the others, and is named", func(t *testing.T) {
		// w3's API server does not answer: nothing listens on port 1.
		kubeconfig := testutil.KubeconfigWithServer(t, w1.kubeconfig, "https://127.0.0.1:1")
		testutil.MustCreate(t, hub.c, testutil.MakeSecret(systemNamespace, "w3-kubeconfig", "kubeconfig", kubeconfig))
		testutil.MustCreate(t, hub.c, testutil.MakeCluster("w3", systemNamespace).Obj())
		testutil.MustCreate(t, hub.c, makeQueue("late", "acme").Quota("general", "1", "", "").Obj())
		for _, p := range all {
			waitObject(t, p, kueue.ClusterQueueKind, "", "late", nil)
		}
		q := waitCondition(t, hub.c, "late", appsv1alpha1.BatchQueueClustersSyncedCondition, appsv1alpha1.ClusterUnreachableReason)
		msg := meta.FindStatusCondition(q.Status.Conditions, appsv1alpha1.BatchQueueClustersSyncedCondition).Message
		if !strings.Contains(msg, "w3") || !strings.HasSuffix(msg, "; retried; written on w1, w2") {
			t.Errorf("ClustersSynced message = %q, want w3 named and w1, w2 written", msg)
		}
		if err := hub.c.Delete(t.Context(), &fleetv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "w3"}}); err != nil {
			t.Fatal(err)
		}
		waitCondition(t, hub.c, "late", appsv1alpha1.BatchQueueClustersSyncedCondition, appsv1alpha1.ClustersSyncedReason)
	})

	t.Run("cleanup: what no queue wants goes everywhere, and only what the controller made", func(t *testing.T) {
		foreign := kueue.New(kueue.ResourceFlavorKind, "", "someone-elses")
		foreign.SetLabels(map[string]string{kueue.ManagedByLabel: kueue.ManagedBy})
		if err := w1.c.Create(t.Context(), foreign); err != nil {
			t.Fatal(err)
		}
		// acme loses its last child: a ClusterQueue now, no Cohort.
		for _, name := range []string{"acme-ml", "tpu-team"} {
			if err := hub.c.Delete(t.Context(), &appsv1alpha1.BatchQueue{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range all {
			waitGone(t, p, kueue.ClusterQueueKind, "", "acme-ml")
			waitGone(t, p, kueue.LocalQueueKind, "ml", "acme-ml")
			waitGone(t, p, kueue.CohortKind, "", "acme")
			waitObject(t, p, kueue.ClusterQueueKind, "", "acme", func(u *unstructured.Unstructured) bool {
				return field(u, "spec", "cohortName") == "org.acme"
			})
		}
		// No queue at all: nothing is left.
		if err := hub.c.DeleteAllOf(t.Context(), &appsv1alpha1.BatchQueue{}); err != nil {
			t.Fatal(err)
		}
		for _, p := range all {
			for _, kind := range pruneOrder {
				waitNone(t, p, kind)
			}
		}
		if err := w1.c.Get(t.Context(), client.ObjectKeyFromObject(foreign), foreign); err != nil {
			t.Errorf("a ResourceFlavor the controller did not make was deleted: %v", err)
		}
	})
}

// startWorkload starts a workload cluster with Kueue's CRDs, registers it
// on the hub and plays the Cluster controller: it is Ready.
func startWorkload(t *testing.T, hub client.Client, name string) place {
	t.Helper()
	cfg, kubeconfig := testutil.StartWorkloadEnv(t, hub, name, systemNamespace, true)
	cluster := &fleetv1alpha1.Cluster{}
	if err := hub.Get(t.Context(), client.ObjectKey{Name: name}, cluster); err != nil {
		t.Fatal(err)
	}
	meta.SetStatusCondition(&cluster.Status.Conditions, metav1.Condition{Type: fleetv1alpha1.ClusterReadyCondition, Status: metav1.ConditionTrue,
		Reason: fleetv1alpha1.ClusterReachableReason, Message: "reachable", ObservedGeneration: cluster.Generation})
	if err := hub.Status().Update(t.Context(), cluster); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return place{name: name, c: c, kubeconfig: kubeconfig}
}

func batchNamespace(name, queue string) *appsv1alpha1.AppNamespace {
	return &appsv1alpha1.AppNamespace{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1alpha1.AppNamespaceSpec{App: name, Tenant: appsv1alpha1.BatchTenant, NodeProfile: "general", BatchQueue: queue}}
}

// field reads a string field of an unstructured object, "" if absent.
func field(u *unstructured.Unstructured, path ...string) string {
	v, _, _ := unstructured.NestedString(u.Object, path...)
	return v
}

// waitObject waits until the Kueue object exists in the place and, if ok
// is given, satisfies it.
func waitObject(t *testing.T, p place, kind, namespace, name string, ok func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	u := kueue.New(kind, namespace, name)
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := p.c.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return ok == nil || ok(u), nil
	})
	if err != nil {
		t.Fatalf("%s %s/%s in %s: %v; last seen %v", kind, namespace, name, p.name, err, u.Object["spec"])
	}
	return u
}

func waitGone(t *testing.T, p place, kind, namespace, name string) {
	t.Helper()
	u := kueue.New(kind, namespace, name)
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(p.c.Get(ctx, client.ObjectKeyFromObject(u), u)), nil
	})
	if err != nil {
		t.Errorf("%s %s/%s is still in %s: %v", kind, namespace, name, p.name, err)
	}
}

// waitNone waits until the place has no object of the kind that the
// controller made.
func waitNone(t *testing.T, p place, kind string) {
	t.Helper()
	var left []string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list := kueue.NewList(kind)
		if err := p.c.List(ctx, list); err != nil {
			return false, err
		}
		left = nil
		for i := range list.Items {
			if managedByUs(&list.Items[i]) {
				left = append(left, list.Items[i].GetName())
			}
		}
		return len(left) == 0, nil
	})
	if err != nil {
		t.Errorf("%ss left in %s: %v", kind, p.name, left)
	}
}

// setClusterQueueStatus plays the hub's Kueue.
func setClusterQueueStatus(t *testing.T, hub client.Client, name string, status map[string]any) {
	t.Helper()
	u := kueue.New(kueue.ClusterQueueKind, "", name)
	if err := hub.Get(t.Context(), client.ObjectKeyFromObject(u), u); err != nil {
		t.Fatal(err)
	}
	u.Object["status"] = status
	if err := hub.Status().Update(t.Context(), u); err != nil {
		t.Fatal(err)
	}
}

func waitCondition(t *testing.T, hub client.Client, name, typ, reason string) *appsv1alpha1.BatchQueue {
	t.Helper()
	q := &appsv1alpha1.BatchQueue{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := hub.Get(ctx, client.ObjectKey{Name: name}, q); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		c := meta.FindStatusCondition(q.Status.Conditions, typ)
		return c != nil && c.Reason == reason && c.ObservedGeneration == q.Generation, nil
	})
	if err != nil {
		t.Fatalf("batch queue %s: want %s reason %s: %v; conditions %+v", name, typ, reason, err, q.Status.Conditions)
	}
	return q
}

func waitStatus(t *testing.T, hub client.Client, name string, ok func(appsv1alpha1.BatchQueueStatus) bool) *appsv1alpha1.BatchQueue {
	t.Helper()
	q := &appsv1alpha1.BatchQueue{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := hub.Get(ctx, client.ObjectKey{Name: name}, q); err != nil {
			return false, err
		}
		return ok(q.Status), nil
	})
	if err != nil {
		t.Fatalf("batch queue %s: status %+v: %v", name, q.Status, err)
	}
	return q
}

func update(t *testing.T, hub client.Client, name string, mutate func(*appsv1alpha1.BatchQueue)) {
	t.Helper()
	q := &appsv1alpha1.BatchQueue{}
	if err := hub.Get(t.Context(), client.ObjectKey{Name: name}, q); err != nil {
		t.Fatal(err)
	}
	before := q.DeepCopy()
	mutate(q)
	if err := hub.Patch(t.Context(), q, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
}

// countsAndProfiles is a status without its conditions and generation.
func countsAndProfiles(s appsv1alpha1.BatchQueueStatus) appsv1alpha1.BatchQueueStatus {
	return appsv1alpha1.BatchQueueStatus{Profiles: s.Profiles,
		PendingWorkloads: s.PendingWorkloads, DispatchingWorkloads: s.DispatchingWorkloads, AdmittedWorkloads: s.AdmittedWorkloads}
}

// rs is a resource status of quota, usage and borrowed.
func rs(quota, usage, borrowed string) appsv1alpha1.ResourceStatus {
	return appsv1alpha1.ResourceStatus{Quota: resource.MustParse(quota), Usage: resource.MustParse(usage), Borrowed: resource.MustParse(borrowed)}
}
