package appnamespace

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/google/go-cmp/cmp"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	clusterhub "github.com/strata-dev/strata/internal/cluster/hub"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/testutil"
)

const systemNamespace = "strata-system"

// holdLabel marks a namespace that the test's stand-in for the guardrail
// webhook refuses to delete, as the webhook refuses a non-empty one.
const holdLabel = "test.strata.dev/holds-workloads"

// workload is a workload cluster of the test: an API server of its own.
type workload struct {
	name string
	cfg  *rest.Config
	c    client.Client
	cs   kubernetes.Interface
}

// TestAppNamespaceController runs the controller on a hub API server with
// two workload clusters, each an API server of its own. Nothing else runs:
// the test writes the Clusters' and Pools' status (the room), and plays the
// namespace controller where a namespace is deleted.
func TestAppNamespaceController(t *testing.T) {
	hubCluster := startHub(t)
	hub := hubCluster.c
	w1, w2 := startWorkload(t, hub, "w1"), startWorkload(t, hub, "w2")
	setRoom(t, hub, "w1", "8", "32Gi")
	setRoom(t, hub, "w2", "64", "256Gi")
	readyPoolOn(t, hub, "w1-general", "w1")
	readyPoolOn(t, hub, "w2-general", "w2")
	startController(t, hubCluster.cfg)

	t.Run("routes to the cluster with room and makes the namespace there", func(t *testing.T) {
		testutil.MustCreate(t, hub, makeAppNamespace("shop", "shop").Quota("16", "64Gi").
			Owner(appsv1alpha1.UserSubject, "alice", appsv1alpha1.ViewRole).
			Owner(appsv1alpha1.GroupSubject, "shop-devs", appsv1alpha1.EditRole).Obj())
		an := waitReason(t, hub, "shop", appsv1alpha1.NamespaceReadyReason)
		if an.Status.Cluster != "w2" || an.Status.Namespace != "shop" {
			t.Errorf("status = %+v, want namespace shop in w2, the only cluster with room", an.Status)
		}
		ns := &corev1.Namespace{}
		if err := w2.c.Get(t.Context(), client.ObjectKey{Name: "shop"}, ns); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			appsv1alpha1.AppLabel: "shop", appsv1alpha1.TenantLabel: "stateless", appsv1alpha1.AppNamespaceLabel: "shop",
			fleetv1alpha1.NodeProfileLabel: "general",
		}
		for k, v := range want {
			if ns.Labels[k] != v {
				t.Errorf("namespace label %s = %q, want %q", k, ns.Labels[k], v)
			}
		}
		if err := w1.c.Get(t.Context(), client.ObjectKey{Name: "shop"}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace shop in w1: %v, want none", err)
		}
		wantQuota(t, w2, "shop", "16", "64Gi")
		waitEvent(t, hub, "shop", routedReason)
	})

	t.Run("owners get RoleBindings; a view owner cannot create objects", func(t *testing.T) {
		waitBindings(t, w2, "shop", map[string]string{"alice": "view", "shop-devs": "edit"})
		alice := impersonate(t, w2, "alice", nil)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "shop"}}
		if err := alice.Create(t.Context(), cm); !apierrors.IsForbidden(err) {
			t.Errorf("alice (view) creating a ConfigMap: %v, want Forbidden", err)
		}
		if err := alice.List(t.Context(), &corev1.ConfigMapList{}, client.InNamespace("shop")); err != nil {
			t.Errorf("alice (view) listing ConfigMaps: %v", err)
		}
		dev := impersonate(t, w2, "bob", []string{"shop-devs"})
		if err := dev.Create(t.Context(), cm); err != nil {
			t.Errorf("a shop-devs member (edit) creating a ConfigMap: %v", err)
		}
	})

	t.Run("changed owners: stale RoleBindings go; a changed quota is applied", func(t *testing.T) {
		update(t, hub, "shop", func(an *appsv1alpha1.AppNamespace) {
			an.Spec.Owners = []appsv1alpha1.Owner{{Kind: appsv1alpha1.UserSubject, Name: "alice", Role: appsv1alpha1.AdminRole}}
			an.Spec.Quota = resources("20", "64Gi")
		})
		waitBindings(t, w2, "shop", map[string]string{"alice": "admin"})
		wantQuota(t, w2, "shop", "20", "64Gi")
	})

	t.Run("the choice is sticky across a capacity change", func(t *testing.T) {
		setRoom(t, hub, "w1", "64", "256Gi")
		setRoom(t, hub, "w2", "8", "32Gi")
		update(t, hub, "shop", func(an *appsv1alpha1.AppNamespace) { an.Spec.Quota = resources("24", "64Gi") })
		an := waitReason(t, hub, "shop", appsv1alpha1.NamespaceReadyReason)
		if an.Status.Cluster != "w2" {
			t.Errorf("status.cluster = %q after the capacity moved, want w2 still", an.Status.Cluster)
		}
		wantQuota(t, w2, "shop", "24", "64Gi")
		if err := w1.c.Get(t.Context(), client.ObjectKey{Name: "shop"}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace shop in w1: %v, want none", err)
		}
		// A new one goes where the room is now.
		testutil.MustCreate(t, hub, makeAppNamespace("cart", "cart").Obj())
		if an := waitReason(t, hub, "cart", appsv1alpha1.NamespaceReadyReason); an.Status.Cluster != "w1" {
			t.Errorf("cart went to %q, want w1", an.Status.Cluster)
		}
	})

	t.Run("none fits: the message says why per cluster; room that appears routes it", func(t *testing.T) {
		testutil.MustCreate(t, hub, makeAppNamespace("huge", "huge").Quota("100", "64Gi").Obj())
		an := waitReason(t, hub, "huge", appsv1alpha1.NoClusterFitsReason)
		// w1: 64 - cart's 4; w2: 8 - shop's 24.
		want := "no workload cluster fits profile general with quota cpu 100, memory 64Gi: " +
			"w1: room cpu 60 of 64 after 1 app namespace, quota asks cpu 100; " +
			"w2: room cpu 0 of 8 and memory 0 of 32Gi after 1 app namespace, quota asks cpu 100 and memory 64Gi"
		if got := readyCondition(an).Message; got != want {
			t.Errorf("message = %q, want %q", got, want)
		}
		waitEvent(t, hub, "huge", appsv1alpha1.NoClusterFitsReason)

		testutil.MustCreate(t, hub, makeAppNamespace("trainer", "trainer").Profile("gpu-h100").Obj())
		an = waitReason(t, hub, "trainer", appsv1alpha1.NoClusterFitsReason)
		want = "no workload cluster fits profile gpu-h100 with quota cpu 4, memory 16Gi: " +
			"w1: no Pool of profile gpu-h100; w2: no Pool of profile gpu-h100"
		if got := readyCondition(an).Message; got != want {
			t.Errorf("message = %q, want %q", got, want)
		}

		setRoom(t, hub, "w1", "200", "256Gi")
		if an := waitReason(t, hub, "huge", appsv1alpha1.NamespaceReadyReason); an.Status.Cluster != "w1" {
			t.Errorf("huge went to %q once w1 had room, want w1", an.Status.Cluster)
		}
	})

	t.Run("a lost status is found again; a foreign namespace of the name is avoided", func(t *testing.T) {
		setRoom(t, hub, "w2", "64", "256Gi")
		// Made for an AppNamespace "found" whose status was lost: it is in
		// w2, though w1 has more room.
		testutil.MustCreate(t, w2.c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: "found", Labels: map[string]string{appsv1alpha1.AppNamespaceLabel: "found"}}})
		testutil.MustCreate(t, hub, makeAppNamespace("found", "found").Quota("1", "1Gi").Obj())
		if an := waitReason(t, hub, "found", appsv1alpha1.NamespaceReadyReason); an.Status.Cluster != "w2" {
			t.Errorf("found went to %q, want w2 where its namespace is", an.Status.Cluster)
		}
		testutil.MustCreate(t, w1.c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}})
		testutil.MustCreate(t, hub, makeAppNamespace("team-a", "team-a").Quota("1", "1Gi").Obj())
		if an := waitReason(t, hub, "team-a", appsv1alpha1.NamespaceReadyReason); an.Status.Cluster != "w2" {
			t.Errorf("team-a went to %q, want w2: w1 has a namespace team-a of its own", an.Status.Cluster)
		}
	})

	t.Run("tenant batch: the namespace is on the hub and every workload cluster, without a quota", func(t *testing.T) {
		// w3 is registered but not Ready yet: the namespace is not there, and
		// the condition says so.
		testutil.MustCreate(t, hub, testutil.MakeCluster("w3", systemNamespace).Obj())
		testutil.MustCreate(t, hub, makeAppNamespace("ml", "ml").Batch("ml-queue").
			Owner(appsv1alpha1.GroupSubject, "ml-devs", appsv1alpha1.EditRole).Obj())
		// Its queue does not exist yet: the namespace is made, and the
		// condition says the jobs would have no queue.
		an := waitReason(t, hub, "ml", appsv1alpha1.BatchQueueNotFoundReason)
		if got := readyCondition(an).Message; !strings.HasPrefix(got, "BatchQueue ml-queue does not exist: jobs submitted in namespace ml wait until it does; namespace ml on the hub") {
			t.Errorf("message = %q", got)
		}
		queue := func(name, parent string) *appsv1alpha1.BatchQueue {
			return &appsv1alpha1.BatchQueue{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1alpha1.BatchQueueSpec{
				Organization: "ml", Parent: parent, Quotas: []appsv1alpha1.ProfileQuota{{NodeProfile: "general"}}}}
		}
		testutil.MustCreate(t, hub, queue("ml-queue", ""))
		an = waitReason(t, hub, "ml", appsv1alpha1.NamespaceReadyReason)
		if diff := cmp.Diff([]string{"w1", "w2"}, an.Status.Clusters); diff != "" || an.Status.Cluster != "" || an.Status.Namespace != "ml" {
			t.Errorf("status = %+v, want namespace ml in clusters w1 and w2 (-want +got):\n%s", an.Status, diff)
		}
		want := "namespace ml on the hub and in workload clusters w1, w2, 1 owner RoleBinding, no ResourceQuota: BatchQueue ml-queue is its quota; " +
			"not in w3 (not Ready (not probed yet)) until Ready"
		if got := readyCondition(an).Message; got != want {
			t.Errorf("message = %q, want %q", got, want)
		}
		for _, w := range []*workload{hubCluster, w1, w2} {
			ns := &corev1.Namespace{}
			if err := w.c.Get(t.Context(), client.ObjectKey{Name: "ml"}, ns); err != nil {
				t.Fatalf("namespace ml in %s: %v", w.name, err)
			}
			if ns.Labels[appsv1alpha1.TenantLabel] != "batch" || ns.Labels[appsv1alpha1.AppNamespaceLabel] != "ml" {
				t.Errorf("namespace ml in %s has labels %v", w.name, ns.Labels)
			}
			waitBindings(t, w, "ml", map[string]string{"ml-devs": "edit"})
			quotas := &corev1.ResourceQuotaList{}
			if err := w.c.List(t.Context(), quotas, client.InNamespace("ml")); err != nil || len(quotas.Items) != 0 {
				t.Errorf("ResourceQuotas of ml in %s = %v (%v), want none", w.name, quotas.Items, err)
			}
		}
	})

	t.Run("tenant batch: a parent queue takes no jobs, and the condition says which do", func(t *testing.T) {
		child := &appsv1alpha1.BatchQueue{ObjectMeta: metav1.ObjectMeta{Name: "ml-team"}, Spec: appsv1alpha1.BatchQueueSpec{
			Organization: "ml", Parent: "ml-queue", Quotas: []appsv1alpha1.ProfileQuota{{NodeProfile: "general"}}}}
		testutil.MustCreate(t, hub, child)
		an := waitReason(t, hub, "ml", appsv1alpha1.BatchQueueIsParentReason)
		if got := readyCondition(an).Message; !strings.HasPrefix(got,
			"BatchQueue ml-queue is a parent: it lends its quota to ml-team and takes no jobs itself; name one of those in spec.batchQueue; namespace ml") {
			t.Errorf("message = %q", got)
		}
		waitEvent(t, hub, "ml", appsv1alpha1.BatchQueueIsParentReason)
		if err := hub.Delete(t.Context(), child); err != nil {
			t.Fatal(err)
		}
		waitReason(t, hub, "ml", appsv1alpha1.NamespaceReadyReason)
	})

	t.Run("tenant batch: deleting it deletes the namespace everywhere; a cluster not Ready holds it until it goes", func(t *testing.T) {
		deleteAppNamespace(t, hub, "ml")
		for _, w := range []*workload{hubCluster, w1, w2} {
			finalizeNamespace(t, w, "ml")
		}
		// Gone from the hub, w1 and w2, the namespace is left only in w3.
		an := &appsv1alpha1.AppNamespace{}
		err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			if err := hub.Get(ctx, client.ObjectKey{Name: "ml"}, an); err != nil {
				return false, err
			}
			return slices.Equal(an.Status.Clusters, []string{"w3"}), nil
		})
		if err != nil {
			t.Fatalf("status.clusters = %v, want [w3]: %v", an.Status.Clusters, err)
		}
		if c := readyCondition(an); c.Reason != appsv1alpha1.ClusterUnavailableReason || !strings.Contains(c.Message, "cluster w3 is not Ready") {
			t.Errorf("Ready = %s: %q, want ClusterUnavailable naming w3", c.Reason, c.Message)
		}
		if err := hub.Delete(t.Context(), &fleetv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "w3"}}); err != nil {
			t.Fatal(err)
		}
		waitGone(t, hub, "ml")
	})

	t.Run("delete: the namespace goes, then the finalizer", func(t *testing.T) {
		deleteAppNamespace(t, hub, "cart")
		finalizeNamespace(t, w1, "cart")
		// Then the hub's.
		finalizeNamespace(t, hubCluster, "cart")
		waitGone(t, hub, "cart")
	})

	t.Run("delete refused by the guardrails: NamespaceNotEmpty with their message, retried", func(t *testing.T) {
		denyNamespaceDeletes(t, w2)
		hold(t, w2, "shop", true)
		deleteAppNamespace(t, hub, "shop")
		an := waitReason(t, hub, "shop", appsv1alpha1.NamespaceNotEmptyReason)
		msg := readyCondition(an).Message
		if !strings.Contains(msg, "strata-guardrail: namespace shop still holds workloads; delete them first") ||
			!strings.Contains(msg, "deleting namespace shop in cluster w2 was refused") {
			t.Errorf("message = %q, want the denial as the API server gave it", msg)
		}
		if an.Status.Cluster != "w2" || an.DeletionTimestamp.IsZero() {
			t.Errorf("status = %+v, deletion = %v", an.Status, an.DeletionTimestamp)
		}
		waitEvent(t, hub, "shop", appsv1alpha1.NamespaceNotEmptyReason)

		// Emptied (the hold is gone): the retry goes through.
		hold(t, w2, "shop", false)
		waitReason(t, hub, "shop", appsv1alpha1.DeletingNamespaceReason)
		finalizeNamespace(t, w2, "shop")
		finalizeNamespace(t, hubCluster, "shop")
		waitGone(t, hub, "shop")
	})
}

// TestAppNamespacePlacement runs the controller on a hub with three
// workload clusters of the same room, w1 and w2 in datacenter dc1, w3 in
// dc2, for app namespaces placed on several clusters.
func TestAppNamespacePlacement(t *testing.T) {
	hubCluster := startHub(t)
	hub := hubCluster.c
	w := map[string]*workload{}
	for _, name := range []string{"w1", "w2", "w3"} {
		w[name] = startWorkload(t, hub, name)
		setRoom(t, hub, name, "64", "256Gi")
		readyPoolOn(t, hub, name+"-general", name)
	}
	updateCluster(t, hub, "w3", func(c *fleetv1alpha1.Cluster) { c.Spec.Datacenter = "dc2" })
	startController(t, hubCluster.cfg)

	t.Run("two of three clusters: the second in another datacenter; on the hub with a quota of no pods", func(t *testing.T) {
		testutil.MustCreate(t, hub, makeAppNamespace("shop", "shop").Clusters(2).
			Owner(appsv1alpha1.GroupSubject, "shop-devs", appsv1alpha1.EditRole).Obj())
		an := waitReason(t, hub, "shop", appsv1alpha1.NamespaceReadyReason)
		room := "room cpu 64, memory 256Gi of cpu 64, memory 256Gi after 0 app namespaces; quota cpu 4, memory 16Gi"
		want := []appsv1alpha1.ClusterPlacement{
			{Cluster: "w1", Reason: "routed to w1 (profile general): " + room},
			{Cluster: "w3", Reason: "routed to w3 (profile general): " + room + "; datacenter dc2, where it is on no other cluster"},
		}
		if diff := cmp.Diff(want, an.Status.Placements); diff != "" {
			t.Errorf("placements (-want +got):\n%s", diff)
		}
		if an.Status.Cluster != "w1" || !slices.Equal(an.Status.Clusters, []string{"w1", "w3"}) {
			t.Errorf("status.cluster = %q, clusters = %v, want w1 and [w1 w3]", an.Status.Cluster, an.Status.Clusters)
		}
		wantMsg := "namespace shop in clusters w1, w3, 1 owner RoleBinding, quota cpu 4, memory 16Gi in each"
		if got := readyCondition(an).Message; got != wantMsg {
			t.Errorf("message = %q, want %q", got, wantMsg)
		}
		for _, name := range []string{"w1", "w3"} {
			wantQuota(t, w[name], "shop", "4", "16Gi")
			waitBindings(t, w[name], "shop", map[string]string{"shop-devs": "edit"})
		}
		wantNoNamespace(t, w["w2"], "shop")

		ns := &corev1.Namespace{}
		if err := hub.Get(t.Context(), client.ObjectKey{Name: "shop"}, ns); err != nil {
			t.Fatalf("namespace shop on the hub: %v", err)
		}
		if ns.Labels[appsv1alpha1.AppNamespaceLabel] != "shop" || ns.Labels[appsv1alpha1.TenantLabel] != "stateless" {
			t.Errorf("namespace shop on the hub has labels %v", ns.Labels)
		}
		waitBindings(t, hubCluster, "shop", map[string]string{"shop-devs": "edit"})
		q := &corev1.ResourceQuota{}
		if err := hub.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: QuotaName}, q); err != nil {
			t.Fatalf("quota of shop on the hub: %v", err)
		}
		if diff := cmp.Diff(corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}, q.Spec.Hard); diff != "" {
			t.Errorf("quota of shop on the hub (-want +got):\n%s", diff)
		}
		waitEvent(t, hub, "shop", routedReason)
	})

	t.Run("a cordoned cluster gets no new namespace, though it has the most room", func(t *testing.T) {
		updateCluster(t, hub, "w2", func(c *fleetv1alpha1.Cluster) { c.Spec.Cordoned = true })
		testutil.MustCreate(t, hub, makeAppNamespace("cart", "cart").Clusters(1).Obj())
		an := waitReason(t, hub, "cart", appsv1alpha1.NamespaceReadyReason)
		if !slices.Equal(an.Status.Clusters, []string{"w1"}) {
			t.Errorf("cart is on %v, want [w1]: w2, with more room, is cordoned", an.Status.Clusters)
		}
		wantNoNamespace(t, w["w2"], "cart")
	})

	t.Run("more clusters asked than fit: TooFewClusters, the namespace whole on those that fit; more when one fits", func(t *testing.T) {
		testutil.MustCreate(t, hub, makeAppNamespace("wide", "wide").Clusters(3).
			Owner(appsv1alpha1.UserSubject, "alice", appsv1alpha1.ViewRole).Obj())
		an := waitReason(t, hub, "wide", appsv1alpha1.TooFewClustersReason)
		if !slices.Equal(an.Status.Clusters, []string{"w3", "w1"}) {
			t.Errorf("wide is on %v, want [w3 w1]", an.Status.Clusters)
		}
		c := readyCondition(an)
		want := "namespace wide in clusters w3, w1, 1 owner RoleBinding, quota cpu 4, memory 16Gi in each; " +
			"2 of 3 clusters asked: no other workload cluster fits profile general with quota cpu 4, memory 16Gi: w2: cordoned"
		if c.Status != metav1.ConditionFalse || c.Message != want {
			t.Errorf("Ready = %s: %q, want False: %q", c.Status, c.Message, want)
		}
		waitEvent(t, hub, "wide", appsv1alpha1.TooFewClustersReason)
		for _, name := range []string{"w1", "w3"} {
			wantQuota(t, w[name], "wide", "4", "16Gi")
			waitBindings(t, w[name], "wide", map[string]string{"alice": "view"})
		}
		wantNoNamespace(t, w["w2"], "wide")

		// Uncordoned, w2 fits: it is added, the others kept.
		updateCluster(t, hub, "w2", func(c *fleetv1alpha1.Cluster) { c.Spec.Cordoned = false })
		an = waitReason(t, hub, "wide", appsv1alpha1.NamespaceReadyReason)
		if !slices.Equal(an.Status.Clusters, []string{"w3", "w1", "w2"}) || an.Status.Cluster != "w3" {
			t.Errorf("wide is on %v (cluster %s), want [w3 w1 w2] (w3)", an.Status.Clusters, an.Status.Cluster)
		}
		wantQuota(t, w["w2"], "wide", "4", "16Gi")
	})

	t.Run("a placed cluster not Ready: Ready stays while the namespace is in place on the others, naming it", func(t *testing.T) {
		setNotReady(t, hub, "w2")
		update(t, hub, "wide", func(an *appsv1alpha1.AppNamespace) { an.Spec.Quota = resources("2", "8Gi") })
		waitMessage(t, hub, "wide", appsv1alpha1.NamespaceReadyReason,
			"namespace wide in clusters w3, w1, 1 owner RoleBinding, quota cpu 2, memory 8Gi in each; "+
				"unreachable, retried: cluster w2 is not Ready (APIServerUnreachable); the namespace stays there and is retried")
		wantQuota(t, w["w1"], "wide", "2", "8Gi")
		// Back: retried, though the app namespace was Ready.
		setRoom(t, hub, "w2", "64", "256Gi")
		waitMessage(t, hub, "wide", appsv1alpha1.NamespaceReadyReason,
			"namespace wide in clusters w3, w1, w2, 1 owner RoleBinding, quota cpu 2, memory 8Gi in each")
		wantQuota(t, w["w2"], "wide", "2", "8Gi")
	})

	t.Run("clusters grown from 1 to 2: the first choice is kept, one is added", func(t *testing.T) {
		update(t, hub, "cart", func(an *appsv1alpha1.AppNamespace) { an.Spec.Placement.Clusters = ptr.To[int32](2) })
		an := waitReason(t, hub, "cart", appsv1alpha1.NamespaceReadyReason)
		// w1: 64 - shop, cart, wide; w2: 64 - wide; w3: 64 - shop, wide.
		if !slices.Equal(an.Status.Clusters, []string{"w1", "w2"}) || an.Status.Cluster != "w1" {
			t.Errorf("cart is on %v (cluster %s), want [w1 w2] (w1)", an.Status.Clusters, an.Status.Cluster)
		}
		wantQuota(t, w["w2"], "cart", "4", "16Gi")
	})

	t.Run("delete: the namespace goes from every cluster, then from the hub", func(t *testing.T) {
		deleteAppNamespace(t, hub, "shop")
		finalizeNamespace(t, w["w1"], "shop")
		// The hub's stays while a cluster still has one.
		waitReason(t, hub, "shop", appsv1alpha1.DeletingNamespaceReason)
		ns := &corev1.Namespace{}
		if err := hub.Get(t.Context(), client.ObjectKey{Name: "shop"}, ns); err != nil || !ns.DeletionTimestamp.IsZero() {
			t.Errorf("namespace shop on the hub: %v, deleting %v; want it kept until the clusters' are gone", err, !ns.DeletionTimestamp.IsZero())
		}
		finalizeNamespace(t, w["w3"], "shop")
		finalizeNamespace(t, hubCluster, "shop")
		waitGone(t, hub, "shop")
	})

	t.Run("delete refused on the hub (the apps declared there): NamespaceNotEmpty, retried", func(t *testing.T) {
		denyNamespaceDeletes(t, hubCluster)
		hold(t, hubCluster, "cart", true)
		deleteAppNamespace(t, hub, "cart")
		finalizeNamespace(t, w["w1"], "cart")
		finalizeNamespace(t, w["w2"], "cart")
		an := waitReason(t, hub, "cart", appsv1alpha1.NamespaceNotEmptyReason)
		if msg := readyCondition(an).Message; !strings.Contains(msg, "deleting namespace cart in the hub was refused") {
			t.Errorf("message = %q, want the hub's refusal", msg)
		}
		hold(t, hubCluster, "cart", false)
		finalizeNamespace(t, hubCluster, "cart")
		waitGone(t, hub, "cart")
	})
}

// startHub starts the hub's API server, with the namespace of the
// workload clusters' kubeconfig Secrets.
func startHub(t *testing.T) *workload {
	t.Helper()
	_, cfg := testutil.StartEnv(t)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, fleetv1alpha1.AddToScheme, appsv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}})
	return &workload{name: "the hub", cfg: cfg, c: c, cs: cs}
}

// startController runs the controller on the hub, with the hub's own
// scheme, as `strata serve hub` runs it.
func startController(t *testing.T, hubCfg *rest.Config) {
	t.Helper()
	mgr, err := ctrl.NewManager(hubCfg, ctrl.Options{Scheme: clusterhub.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		// Each test of the package runs one, under the same name.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		t.Fatal(err)
	}
	clusters := remote.New(mgr.GetClient())
	if err := mgr.Add(clusters); err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{Hub: mgr.GetClient(), HubReader: mgr.GetAPIReader(), Clusters: clusters, Recorder: mgr.GetEventRecorder("appnamespace-controller")})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	testutil.RunManager(t, mgr)
}

// startWorkload starts a workload cluster and registers it on the hub.
func startWorkload(t *testing.T, hub client.Client, name string) *workload {
	t.Helper()
	cfg, _ := testutil.StartWorkloadEnv(t, hub, name, systemNamespace, false)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	aggregateRoles(t, c)
	return &workload{name: name, cfg: cfg, c: c, cs: cs}
}

// aggregateRoles plays kube-controller-manager's ClusterRole aggregation,
// which envtest does not run, for the roles owners are bound to: without
// it view, edit and admin grant nothing.
func aggregateRoles(t *testing.T, c client.Client) {
	t.Helper()
	for _, name := range []string{"view", "edit", "admin"} {
		role := &rbacv1.ClusterRole{}
		if err := c.Get(t.Context(), client.ObjectKey{Name: name}, role); err != nil {
			t.Fatal(err)
		}
		role.Rules = nil
		for _, selector := range role.AggregationRule.ClusterRoleSelectors {
			sel, err := metav1.LabelSelectorAsSelector(&selector)
			if err != nil {
				t.Fatal(err)
			}
			parts := &rbacv1.ClusterRoleList{}
			if err := c.List(t.Context(), parts, client.MatchingLabelsSelector{Selector: sel}); err != nil {
				t.Fatal(err)
			}
			for _, part := range parts.Items {
				if part.Name != name {
					role.Rules = append(role.Rules, part.Rules...)
				}
			}
		}
		if err := c.Update(t.Context(), role); err != nil {
			t.Fatal(err)
		}
	}
}

// setRoom plays the Cluster controller: the cluster is Ready with the
// allocatable of its general Nodes.
func setRoom(t *testing.T, hub client.Client, name, cpu, memory string) {
	t.Helper()
	c := &fleetv1alpha1.Cluster{}
	if err := hub.Get(t.Context(), client.ObjectKey{Name: name}, c); err != nil {
		t.Fatal(err)
	}
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: fleetv1alpha1.ClusterReadyCondition, Status: metav1.ConditionTrue,
		Reason: fleetv1alpha1.ClusterReachableReason, Message: "reachable", ObservedGeneration: c.Generation})
	c.Status.Profiles = []fleetv1alpha1.ProfileNodes{{Name: "general", Nodes: 4, ReadyNodes: 4, Allocatable: resources(cpu, memory)}}
	if err := hub.Status().Update(t.Context(), c); err != nil {
		t.Fatal(err)
	}
}

// readyPoolOn plays the Pool controller: a general Pool with Ready Nodes.
func readyPoolOn(t *testing.T, hub client.Client, name, cluster string) {
	t.Helper()
	p := testutil.MakePool(name, cluster, 4).Obj()
	testutil.MustCreate(t, hub, p)
	p.Status.Nodes, p.Status.Ready = 4, 4
	if err := hub.Status().Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

// updateCluster changes a Cluster's spec, as an admin does (kubectl
// strata cluster cordon).
func updateCluster(t *testing.T, hub client.Client, name string, mutate func(*fleetv1alpha1.Cluster)) {
	t.Helper()
	c := &fleetv1alpha1.Cluster{}
	if err := hub.Get(t.Context(), client.ObjectKey{Name: name}, c); err != nil {
		t.Fatal(err)
	}
	before := c.DeepCopy()
	mutate(c)
	if err := hub.Patch(t.Context(), c, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
}

// setNotReady plays the Cluster controller: the cluster's API server does
// not answer.
func setNotReady(t *testing.T, hub client.Client, name string) {
	t.Helper()
	c := &fleetv1alpha1.Cluster{}
	if err := hub.Get(t.Context(), client.ObjectKey{Name: name}, c); err != nil {
		t.Fatal(err)
	}
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: fleetv1alpha1.ClusterReadyCondition, Status: metav1.ConditionFalse,
		Reason: fleetv1alpha1.APIServerUnreachableReason, Message: "no answer", ObservedGeneration: c.Generation})
	if err := hub.Status().Update(t.Context(), c); err != nil {
		t.Fatal(err)
	}
}

func wantNoNamespace(t *testing.T, w *workload, name string) {
	t.Helper()
	if err := w.c.Get(t.Context(), client.ObjectKey{Name: name}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s in %s: %v, want none", name, w.name, err)
	}
}

func update(t *testing.T, hub client.Client, name string, mutate func(*appsv1alpha1.AppNamespace)) {
	t.Helper()
	an := &appsv1alpha1.AppNamespace{}
	if err := hub.Get(t.Context(), client.ObjectKey{Name: name}, an); err != nil {
		t.Fatal(err)
	}
	before := an.DeepCopy()
	mutate(an)
	if err := hub.Patch(t.Context(), an, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
}

// waitReason waits until the AppNamespace's Ready condition has the reason
// for its current generation.
func waitReason(t *testing.T, hub client.Client, name, reason string) *appsv1alpha1.AppNamespace {
	t.Helper()
	return waitMessage(t, hub, name, reason, "")
}

// waitMessage is waitReason that waits for the message too, unless it is "".
func waitMessage(t *testing.T, hub client.Client, name, reason, message string) *appsv1alpha1.AppNamespace {
	t.Helper()
	an := &appsv1alpha1.AppNamespace{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := hub.Get(ctx, client.ObjectKey{Name: name}, an); err != nil {
			return false, err
		}
		c := readyCondition(an)
		return c != nil && c.Reason == reason && (message == "" || c.Message == message) &&
			c.ObservedGeneration == an.Generation && an.Status.ObservedGeneration == an.Generation, nil
	})
	if err != nil {
		t.Fatalf("app namespace %s: want Ready reason %s %q: %v; status %+v", name, reason, message, err, an.Status)
	}
	return an
}

func readyCondition(an *appsv1alpha1.AppNamespace) *metav1.Condition {
	return meta.FindStatusCondition(an.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition)
}

func wantQuota(t *testing.T, w *workload, namespace, cpu, memory string) {
	t.Helper()
	var q corev1.ResourceQuota
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := w.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: QuotaName}, &q); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return q.Spec.Hard.Name("requests.cpu", resource.DecimalSI).Equal(resource.MustParse(cpu)) &&
			q.Spec.Hard.Name("requests.memory", resource.BinarySI).Equal(resource.MustParse(memory)) && len(q.Spec.Hard) == 2, nil
	})
	if err != nil {
		t.Errorf("quota of %s in %s = %v, want requests.cpu %s, requests.memory %s", namespace, w.name, q.Spec.Hard, cpu, memory)
	}
}

// waitBindings waits until the namespace's owner RoleBindings are exactly
// want (subject name -> ClusterRole).
func waitBindings(t *testing.T, w *workload, namespace string, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list := &rbacv1.RoleBindingList{}
		if err := w.c.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{appsv1alpha1.AppNamespaceLabel: namespace}); err != nil {
			return false, err
		}
		got = map[string]string{}
		for _, rb := range list.Items {
			for _, s := range rb.Subjects {
				got[s.Name] = rb.RoleRef.Name
			}
		}
		return len(got) == len(want) && len(list.Items) == len(want) && equalMaps(got, want), nil
	})
	if err != nil {
		t.Errorf("owner bindings in %s/%s = %v, want %v", w.name, namespace, got, want)
	}
}

func equalMaps(a, b map[string]string) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

func impersonate(t *testing.T, w *workload, user string, groups []string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(w.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func deleteAppNamespace(t *testing.T, hub client.Client, name string) {
	t.Helper()
	if err := hub.Delete(t.Context(), &appsv1alpha1.AppNamespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

// finalizeNamespace plays the namespace controller once the namespace is
// being deleted: its contents are gone, and so is it.
func finalizeNamespace(t *testing.T, w *workload, name string) {
	t.Helper()
	ns := &corev1.Namespace{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := w.c.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil {
			return false, err
		}
		return !ns.DeletionTimestamp.IsZero(), nil
	})
	if err != nil {
		t.Fatalf("namespace %s in %s is not being deleted: %v", name, w.name, err)
	}
	ns.Spec.Finalizers = nil
	if _, err := w.cs.CoreV1().Namespaces().Finalize(t.Context(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func waitGone(t *testing.T, hub client.Client, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := hub.Get(ctx, client.ObjectKey{Name: name}, &appsv1alpha1.AppNamespace{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("app namespace %s is still there: %v", name, err)
	}
}

// denyNamespaceDeletes stands in for the guardrail webhook: a
// ValidatingAdmissionPolicy refuses to delete namespaces with holdLabel. It
// waits until the API server enforces it.
func denyNamespaceDeletes(t *testing.T, w *workload) {
	t.Helper()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "test-namespace-guardrail"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"namespaces"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{
				Expression:        `!has(oldObject.metadata.labels) || !('` + holdLabel + `' in oldObject.metadata.labels)`,
				MessageExpression: `'strata-guardrail: namespace ' + oldObject.metadata.name + ' still holds workloads; delete them first'`,
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "test-namespace-guardrail"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: policy.Name, ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	testutil.MustCreate(t, w.c, policy)
	testutil.MustCreate(t, w.c, binding)
	probe := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "probe", Labels: map[string]string{holdLabel: "true"}}}
	testutil.MustCreate(t, w.c, probe)
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := w.c.Delete(ctx, probe, client.DryRunAll)
		return apierrors.IsForbidden(err) || apierrors.IsInvalid(err), nil
	})
	if err != nil {
		t.Fatalf("the test guardrail does not deny namespace deletes: %v", err)
	}
}

// hold marks a namespace as holding workloads (the test's stand-in for the
// guardrail webhook then refuses its deletion), or with false lets it go, as
// someone else than the controller.
func hold(t *testing.T, w *workload, namespace string, holds bool) {
	t.Helper()
	ns := &corev1.Namespace{}
	if err := w.c.Get(t.Context(), client.ObjectKey{Name: namespace}, ns); err != nil {
		t.Fatal(err)
	}
	before := ns.DeepCopy()
	if holds {
		ns.Labels[holdLabel] = "true"
	} else {
		delete(ns.Labels, holdLabel)
	}
	if err := w.c.Patch(t.Context(), ns, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
}

// waitEvent waits for an event about the AppNamespace with the reason.
func waitEvent(t *testing.T, hub client.Client, name, reason string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		events := &corev1.EventList{}
		if err := hub.List(ctx, events); err != nil {
			return false, err
		}
		return slices.ContainsFunc(events.Items, func(e corev1.Event) bool {
			return e.InvolvedObject.Kind == "AppNamespace" && e.InvolvedObject.Name == name && e.Reason == reason
		}), nil
	})
	if err != nil {
		t.Errorf("no %s event about app namespace %s: %v", reason, name, err)
	}
}
