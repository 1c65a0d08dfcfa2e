package dispatch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	clusterhub "github.com/strata-dev/strata/internal/cluster/hub"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

const (
	systemNamespace = "strata-system"
	teamNamespace   = "team-a"
	checkName       = "strata-multikueue"
)

// TestDispatcher runs the dispatcher on a hub API server with Kueue's CRDs
// and two workload clusters, each an API server of its own with Pool Nodes
// written by the test. Kueue does not run: the test writes each Workload's
// admission status as the hub's Kueue would (as its admission field
// manager), and plays Kueue where it takes the nomination over.
func TestDispatcher(t *testing.T) {
	_, hubCfg := testutil.StartEnvWithKueue(t)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, fleetv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	hub, err := client.New(hubCfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{systemNamespace, teamNamespace} {
		testutil.MustCreate(t, hub, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	// w1: 2 Nodes of 16 cpu in zone 1. w2: 4 Nodes of 16 cpu, 2 in zone 1
	// and 2 in zone 2: more room.
	w1, w2 := startWorkload(t, hub, "w1"), startWorkload(t, hub, "w2")
	addNodes(t, w1, "w1-general", "1", 2)
	addNodes(t, w2, "w2-general", "1", 2)
	addNodes(t, w2, "w2-general", "2", 2)
	setReady(t, hub, "w1", true)
	setReady(t, hub, "w2", true)
	for _, c := range []string{"w1", "w2"} {
		p := testutil.MakePool(c+"-general", c, 4).Profile("general").Obj()
		testutil.MustCreate(t, hub, p)
		p.Status.Nodes = 4
		if err := hub.Status().Update(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []*unstructured.Unstructured{
		kueueObj(kueue.ResourceFlavorKind, "general", map[string]any{"nodeLabels": map[string]any{fleetv1alpha1.NodeProfileLabel: "general"}}),
		kueueObj(kueue.MultiKueueConfigKind, "strata", map[string]any{"clusters": []any{"w1", "w2"}}),
		kueueObj(kueue.AdmissionCheckKind, checkName, map[string]any{"controllerName": kueue.MultiKueueControllerName,
			"parameters": map[string]any{"apiGroup": kueue.GroupVersion.Group, "kind": kueue.MultiKueueConfigKind, "name": "strata"}}),
	} {
		testutil.MustCreate(t, hub, o)
	}

	// The hub's own scheme, as `strata serve hub` runs the controllers.
	testutil.StartManager(t, hubCfg, clusterhub.Scheme(), func(mgr ctrl.Manager) error {
		clusters := remote.New(mgr.GetClient())
		if err := mgr.Add(clusters); err != nil {
			return err
		}
		if err := SetupBatchNodesOnHub(mgr, clusters); err != nil {
			return err
		}
		return SetupOnHub(configv1alpha1.JobsController{})(mgr, clusters)
	})

	t.Run("dispatched to the cluster with the most room, with the reason as an event", func(t *testing.T) {
		createAdmitted(t, hub, "job-a", 8, "4", "8Gi")
		if got := waitNominated(t, hub, "job-a"); !slices.Equal(got, []string{"w2"}) {
			t.Errorf("nominatedClusterNames = %v, want [w2]", got)
		}
		e := waitEvent(t, hub, "job-a", DispatchedReason)
		if want := "dispatched 8 pods of cpu 4, memory 8Gi (profile general) to w2: cpu 32 of 64"; !strings.HasPrefix(e.Message, want) {
			t.Errorf("event = %q, want it to start with %q", e.Message, want)
		}
	})

	t.Run("Kueue takes the nomination over: clusterName set, nominatedClusterNames cleared", func(t *testing.T) {
		// As Kueue does once w2 reserved quota: its apply leaves the
		// nomination out, which removes it only if no other field manager
		// owns it (else the API server refuses clusterName beside it).
		wl := getWorkload(t, hub, "job-a")
		st := admissionApply(wl, "w2")
		status := st.Object["status"].(map[string]any)
		delete(status, "nominatedClusterNames")
		status["clusterName"] = "w2"
		if err := hub.Status().Apply(t.Context(), client.ApplyConfigurationFromUnstructured(st),
			client.FieldOwner(kueue.AdmissionFieldManager), client.ForceOwnership); err != nil {
			t.Fatalf("Kueue's apply of clusterName: %v", err)
		}
		wl = getWorkload(t, hub, "job-a")
		if names, _, _ := unstructured.NestedStringSlice(wl.Object, "status", "nominatedClusterNames"); len(names) > 0 {
			t.Errorf("nominatedClusterNames = %v after Kueue's apply, want none", names)
		}
	})

	t.Run("a NotReady cluster is skipped", func(t *testing.T) {
		setReady(t, hub, "w2", false)
		createAdmitted(t, hub, "job-b", 2, "4", "8Gi")
		if got := waitNominated(t, hub, "job-b"); !slices.Equal(got, []string{"w1"}) {
			t.Errorf("nominatedClusterNames = %v, want [w1]", got)
		}
		e := waitEvent(t, hub, "job-b", DispatchedReason)
		if !strings.Contains(e.Message, "w2: not Ready (APIServerNotReady)") {
			t.Errorf("event = %q, want it to say w2 is not Ready", e.Message)
		}
		setReady(t, hub, "w2", true)
	})

	t.Run("the nominated cluster goes NotReady before it reserved the workload: nominated again", func(t *testing.T) {
		setReady(t, hub, "w1", false)
		createAdmitted(t, hub, "job-r", 1, "4", "1Gi")
		if got := waitNominated(t, hub, "job-r"); !slices.Equal(got, []string{"w2"}) {
			t.Fatalf("nominatedClusterNames = %v while w1 is not Ready, want [w2]", got)
		}
		setReady(t, hub, "w1", true)
		setReady(t, hub, "w2", false)
		e := waitEvent(t, hub, "job-r", RedispatchedReason)
		if want := "cluster w2, nominated before, is not Ready (APIServerNotReady): dispatched 1 pod of cpu 4, memory 1Gi (profile general) to w1"; !strings.HasPrefix(e.Message, want) {
			t.Errorf("event = %q, want it to start with %q", e.Message, want)
		}
		if got := getNominated(t, hub, "job-r"); !slices.Equal(got, []string{"w1"}) {
			t.Errorf("nominatedClusterNames = %v, want [w1]", got)
		}
		setReady(t, hub, "w2", true)
		if err := hub.Delete(t.Context(), getWorkload(t, hub, "job-r")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("zones under maintenance are counted out; none fits, then room appears", func(t *testing.T) {
		// job-a holds 32 of w2's 64 cpu, job-b 8 of w1's 32. A rollout of
		// w2's Pool maintains zone 1 and goes to zone 2 next: none of w2's
		// Nodes take pods. On w1, job-b's 8 cpu are counted spread over
		// its 2 Nodes (12 free on each): room for 2 pods of 8, not 4.
		ro := &fleetv1alpha1.MaintenanceRollout{ObjectMeta: metav1.ObjectMeta{Name: "kernel-6-8"},
			Spec: fleetv1alpha1.MaintenanceRolloutSpec{Pools: []string{"w2-general"}, NodeConfig: "kernel-6-8"}}
		testutil.MustCreate(t, hub, ro)
		ro.Status.CurrentZone = 1
		ro.Status.Zones = []fleetv1alpha1.RolloutZoneStatus{
			{MaintenanceZone: 1, Phase: fleetv1alpha1.RolloutZoneInProgress}, {MaintenanceZone: 2, Phase: fleetv1alpha1.RolloutZonePending},
		}
		if err := hub.Status().Update(t.Context(), ro); err != nil {
			t.Fatal(err)
		}
		// Inside the clusters, batch pods keep off those Nodes by the
		// label the ResourceFlavors select.
		waitBatchSchedulable(t, w2, "w2-general", map[string]bool{"1": false, "2": false})
		waitBatchSchedulable(t, w1, "w1-general", map[string]bool{"1": true})
		createAdmitted(t, hub, "job-c", 4, "8", "1Gi")
		e := waitEvent(t, hub, "job-c", NoClusterFitsReason)
		for _, want := range []string{
			"w1: room for 2 of 4 pods on 2 Nodes of profile general, cpu 24 of 32",
			"w2: room for 0 of 4 pods on 0 Nodes of profile general",
			"2 Nodes: zone dc1-mz1 under maintenance (rollout kernel-6-8)",
			"2 Nodes: zone dc1-mz2 next in maintenance (rollout kernel-6-8)",
		} {
			if !strings.Contains(e.Message, want) {
				t.Errorf("event = %q, want it to say %q", e.Message, want)
			}
		}
		if got := getNominated(t, hub, "job-c"); len(got) > 0 {
			t.Errorf("nominatedClusterNames = %v while no cluster fits, want none", got)
		}

		// Zone 1 is done and zone 2 in progress: zone 1's Nodes take pods
		// again, but job-a's 32 cpu are counted against them: still no
		// room. The rollout completes: w2 has room for 4 more.
		ro.Status.CurrentZone = 2
		ro.Status.Zones = []fleetv1alpha1.RolloutZoneStatus{
			{MaintenanceZone: 1, Phase: fleetv1alpha1.RolloutZoneComplete}, {MaintenanceZone: 2, Phase: fleetv1alpha1.RolloutZoneInProgress},
		}
		if err := hub.Status().Update(t.Context(), ro); err != nil {
			t.Fatal(err)
		}
		meta.SetStatusCondition(&ro.Status.Conditions, metav1.Condition{Type: fleetv1alpha1.RolloutCompleteCondition,
			Status: metav1.ConditionTrue, Reason: fleetv1alpha1.RolloutCompleteReason})
		ro.Status.CurrentZone = 0
		if err := hub.Status().Update(t.Context(), ro); err != nil {
			t.Fatal(err)
		}
		if got := waitNominated(t, hub, "job-c"); !slices.Equal(got, []string{"w2"}) {
			t.Errorf("nominatedClusterNames = %v once the rollout completed, want [w2]", got)
		}
		waitBatchSchedulable(t, w2, "w2-general", map[string]bool{"1": true, "2": true})
	})

	t.Run("a job no cluster can ever hold is marked and deactivated", func(t *testing.T) {
		createAdmitted(t, hub, "job-huge", 1, "64", "1Gi")
		e := waitEvent(t, hub, "job-huge", NeverFitsReason)
		if want := "no workload cluster could ever hold 1 pod of cpu 64, memory 1Gi (profile general)"; !strings.HasPrefix(e.Message, want) {
			t.Errorf("event = %q, want it to start with %q", e.Message, want)
		}
		wl := getWorkload(t, hub, "job-huge")
		if active, found, _ := unstructured.NestedBool(wl.Object, "spec", "active"); !found || active {
			t.Errorf("spec.active = %v (set: %v), want false", active, found)
		}
		if got := wl.GetAnnotations()[kueue.NeverFitsAnnotation]; got != e.Message {
			t.Errorf("annotation %s = %q, want the event's note %q", kueue.NeverFitsAnnotation, got, e.Message)
		}
	})

	t.Run("a burst does not pile onto one cluster: each decision counts the ones before", func(t *testing.T) {
		// w2 is full (job-a and job-c); w1 has 24 of 32 cpu free, counted
		// 12 on each Node: room for 2 pods of 8, one per Node, not 3.
		names := []string{"burst-1", "burst-2", "burst-3"}
		for _, name := range names {
			createAdmitted(t, hub, name, 1, "8", "1Gi")
		}
		placed := map[string]int{}
		err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			clear(placed)
			for _, name := range names {
				switch got := getNominated(t, hub, name); {
				case len(got) > 0:
					placed[strings.Join(got, ",")]++
				case hasEvent(ctx, t, hub, name, NoClusterFitsReason):
					placed[""]++
				}
			}
			return placed["w1"]+placed["w2"]+placed[""] == len(names), nil
		})
		if err != nil {
			t.Fatalf("the burst was not dispatched (%v): %v", placed, err)
		}
		if diff := cmp.Diff(map[string]int{"w1": 2, "": 1}, placed); diff != "" {
			t.Errorf("workloads by nominated cluster (-want +got):\n%s", diff)
		}
	})
}

// startWorkload starts a workload cluster and registers it on the hub.
func startWorkload(t *testing.T, hub client.Client, name string) client.Client {
	t.Helper()
	cfg, _ := testutil.StartWorkloadEnv(t, hub, name, systemNamespace, false)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// addNodes plays the kubelets: n Ready Nodes of 16 cpu and 64Gi of a Pool
// of profile general in a zone.
func addNodes(t *testing.T, c client.Client, pool, zone string, n int) {
	t.Helper()
	for i := range n {
		node := testutil.MakeNode(fmt.Sprintf("%s-mz%s-%d", pool, zone, i), pool, zone).
			Label(fleetv1alpha1.NodeProfileLabel, "general").Label(fleetv1alpha1.DatacenterLabel, "dc1").Obj()
		testutil.MustCreate(t, c, node)
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		node.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi")}
		node.Status.Capacity = node.Status.Allocatable
		if err := c.Status().Update(t.Context(), node); err != nil {
			t.Fatal(err)
		}
	}
}

// setReady plays the cluster controller.
func setReady(t *testing.T, hub client.Client, name string, ready bool) {
	t.Helper()
	c := &fleetv1alpha1.Cluster{}
	if err := hub.Get(t.Context(), client.ObjectKey{Name: name}, c); err != nil {
		t.Fatal(err)
	}
	cond := metav1.Condition{Type: fleetv1alpha1.ClusterReadyCondition, Status: metav1.ConditionTrue, Reason: fleetv1alpha1.ClusterReachableReason}
	if !ready {
		cond.Status, cond.Reason = metav1.ConditionFalse, fleetv1alpha1.APIServerNotReadyReason
	}
	meta.SetStatusCondition(&c.Status.Conditions, cond)
	if err := hub.Status().Update(t.Context(), c); err != nil {
		t.Fatal(err)
	}
}

func kueueObj(kind, name string, spec map[string]any) *unstructured.Unstructured {
	u := kueue.New(kind, "", name)
	u.Object["spec"] = spec
	return u
}

// createAdmitted creates a Workload of a gang and writes its status as the
// hub's Kueue does once it reserved quota: admitted in flavor general, the
// MultiKueue check Pending.
func createAdmitted(t *testing.T, hub client.Client, name string, count int64, cpu, mem string) {
	t.Helper()
	wl := kueue.New(kueue.WorkloadKind, teamNamespace, name)
	wl.Object["spec"] = map[string]any{
		"queueName": "team-a",
		"podSets": []any{map[string]any{"name": "main", "count": count, "template": map[string]any{"spec": map[string]any{
			"restartPolicy": "Never",
			"containers": []any{map[string]any{"name": "main", "image": "busybox",
				"resources": map[string]any{"requests": map[string]any{"cpu": cpu, "memory": mem}}}},
		}}}},
	}
	testutil.MustCreate(t, hub, wl)
	c, m := resource.MustParse(cpu), resource.MustParse(mem)
	c.Set(c.Value() * count)
	m.Set(m.Value() * count)
	now := metav1.Now().UTC().Format(time.RFC3339)
	st := kueue.New(kueue.WorkloadKind, teamNamespace, name)
	st.Object["status"] = map[string]any{
		"admission": map[string]any{"clusterQueue": "team-a", "podSetAssignments": []any{map[string]any{
			"name": "main", "count": count, "flavors": map[string]any{"cpu": "general", "memory": "general"},
			"resourceUsage": map[string]any{"cpu": c.String(), "memory": m.String()},
		}}},
		"conditions": []any{map[string]any{"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved",
			"message": "Quota reserved in ClusterQueue team-a", "lastTransitionTime": now}},
		"admissionChecks": []any{map[string]any{"name": checkName, "state": "Pending", "message": "", "lastTransitionTime": now}},
	}
	if err := hub.Status().Apply(t.Context(), client.ApplyConfigurationFromUnstructured(st),
		client.FieldOwner(kueue.AdmissionFieldManager), client.ForceOwnership); err != nil {
		t.Fatalf("writing the admission of workload %s: %v", name, err)
	}
}

func getWorkload(t *testing.T, hub client.Client, name string) *unstructured.Unstructured {
	t.Helper()
	wl := kueue.New(kueue.WorkloadKind, teamNamespace, name)
	if err := hub.Get(t.Context(), client.ObjectKey{Namespace: teamNamespace, Name: name}, wl); err != nil {
		t.Fatal(err)
	}
	return wl
}

func getNominated(t *testing.T, hub client.Client, name string) []string {
	t.Helper()
	names, _, _ := unstructured.NestedStringSlice(getWorkload(t, hub, name).Object, "status", "nominatedClusterNames")
	return names
}

func waitNominated(t *testing.T, hub client.Client, name string) []string {
	t.Helper()
	var names []string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		names = getNominated(t, hub, name)
		return len(names) > 0, nil
	})
	if err != nil {
		t.Fatalf("workload %s was not nominated a cluster: %v", name, err)
	}
	return names
}

// hasEvent says whether there is an event of a reason about a Workload.
func hasEvent(ctx context.Context, t *testing.T, hub client.Client, name, reason string) bool {
	t.Helper()
	events := &corev1.EventList{}
	if err := hub.List(ctx, events, client.InNamespace(teamNamespace)); err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(events.Items, func(e corev1.Event) bool {
		return e.InvolvedObject.Kind == kueue.WorkloadKind && e.InvolvedObject.Name == name && e.Reason == reason
	})
}

// waitEvent waits for an event of a reason about a Workload, and returns the latest.
func waitEvent(t *testing.T, hub client.Client, name, reason string) corev1.Event {
	t.Helper()
	var found corev1.Event
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		events := &corev1.EventList{}
		if err := hub.List(ctx, events, client.InNamespace(teamNamespace)); err != nil {
			return false, err
		}
		ok := false
		for _, e := range events.Items {
			if e.InvolvedObject.Kind == kueue.WorkloadKind && e.InvolvedObject.Name == name && e.Reason == reason {
				found, ok = e, true
			}
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("no %s event about workload %s: %v", reason, name, err)
	}
	return found
}

// waitBatchSchedulable waits until the Nodes of pool in each maintenance
// zone carry the batch-schedulable label, or not, as want says.
func waitBatchSchedulable(t *testing.T, c client.Client, pool string, want map[string]bool) {
	t.Helper()
	var got map[string][]string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		nodes := &corev1.NodeList{}
		if err := c.List(ctx, nodes, client.MatchingLabels{fleetv1alpha1.PoolLabel: pool}); err != nil {
			return false, err
		}
		got = map[string][]string{}
		ok := len(nodes.Items) > 0
		for _, n := range nodes.Items {
			zone, has := n.Labels[fleetv1alpha1.MaintenanceZoneLabel], n.Labels[appsv1alpha1.BatchSchedulableLabel] == "true"
			got[zone] = append(got[zone], fmt.Sprintf("%s=%t", n.Name, has))
			if has != want[zone] {
				ok = false
			}
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("Nodes of %s: %v, want batch-schedulable by zone %v", pool, got, want)
	}
}
