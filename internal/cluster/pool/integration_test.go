package pool_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/cluster"
	"github.com/strata-dev/strata/internal/cluster/manager"
	"github.com/strata-dev/strata/internal/cluster/pool"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/testutil/testbroker"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

const (
	ns = "strata-system"
	// machines of the test datacenter: 10 per MZ.
	machines = 200
)

// TestPoolController runs the pool and cluster controllers, and the cluster
// manager that drains Nodes for the pool's shrinks, against a real
// API server (the hub, which also plays the workload cluster) and a real
// broker on SQLite whose sim provisioner registers the Nodes. Nothing runs
// the pods: the test plays the kubelet where a pod must become ready.
func TestPoolController(t *testing.T) {
	env, cfg := testutil.StartJoinEnv(t)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, fleetv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	admin, err := env.AddUser(envtest.User{Name: "hub", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	testutil.MustCreate(t, c, testutil.MakeSecret(ns, "wl-kubeconfig", "kubeconfig", kubeconfig))
	testutil.MustCreate(t, c, testutil.MakeCluster("wl", ns).Obj())

	bc, _ := testbroker.Start(t, machines, 0)
	startControllers(t, cfg, scheme, bc)

	t.Run("a Pool grows to its capacity, evenly across MZs", func(t *testing.T) {
		testutil.MustCreate(t, c, testutil.MakePool("grow", "wl", 40).NodeLabel("team", "a").Obj())
		p := waitPool(t, c, "grow", fleetv1alpha1.PoolReadyReason, 40)
		if p.Status.Allocated != 40 || p.Status.Nodes != 40 || len(p.Status.Zones) != 20 {
			t.Errorf("status = %+v, want 40 allocated and Nodes, 20 zones", p.Status)
		}
		for _, z := range p.Status.Zones {
			if z.Allocated != 2 || z.Ready != 2 {
				t.Errorf("zone %+v, want 2 allocated and ready", z)
			}
		}
		n := nodesOf(t, c, "grow")[0]
		for _, k := range []string{fleetv1alpha1.DatacenterLabel, fleetv1alpha1.MaintenanceZoneLabel, fleetv1alpha1.RackLabel,
			fleetv1alpha1.SKULabel, fleetv1alpha1.NodeConfigLabel, fleetv1alpha1.NodeProfileLabel, "team"} {
			if n.Labels[k] == "" {
				t.Errorf("node %s has no label %s: %v", n.Name, k, n.Labels)
			}
		}
		cl := &fleetv1alpha1.Cluster{}
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			if err := c.Get(ctx, client.ObjectKey{Name: "wl"}, cl); err != nil {
				return false, err
			}
			i := slices.IndexFunc(cl.Status.Profiles, func(p fleetv1alpha1.ProfileNodes) bool { return p.Name == "general" })
			return i >= 0 && cl.Status.Profiles[i].ReadyNodes == 40, nil
		})
		if err != nil || cl.Status.Allocatable.Cpu().Value() < 40*30 {
			t.Errorf("cluster status = %+v (%v), want 40 ready general Nodes and their CPUs", cl.Status, err)
		}
		// The machines joined with the Pool's bootstrap token; the broker
		// has the API server and CA, and never gives the token back.
		if tokens := tokensOf(t, c, "grow"); len(tokens) != 1 {
			t.Errorf("bootstrap tokens of pool grow: %v, want one", tokens)
		}
		bp, err := bc.GetPool(ctx, &brokerv1.GetPoolRequest{Name: "grow"})
		if err != nil {
			t.Fatal(err)
		}
		if jt := bp.GetPool().GetJoinTarget(); !strings.HasPrefix(jt.GetApiServer(), "https://") || !strings.Contains(cfg.Host, strings.TrimPrefix(jt.GetApiServer(), "https://")) || len(jt.GetCaBundle()) == 0 || jt.GetBootstrapToken() != "" {
			t.Errorf("join target = %v, want the API server and CA, no token", jt)
		}
	})

	t.Run("a token due for rotation is replaced, then deleted", func(t *testing.T) {
		old := tokensOf(t, c, "grow")[0]
		// Two thirds of its life passed: it expires in an hour.
		secret := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: metav1.NamespaceSystem, Name: old}, secret); err != nil {
			t.Fatal(err)
		}
		secret.Data["expiration"] = []byte(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		if err := c.Update(ctx, secret); err != nil {
			t.Fatal(err)
		}
		touchPool(t, c, "grow")
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			tokens := tokensOf(t, c, "grow")
			return len(tokens) == 1 && tokens[0] != old, nil
		})
		if err != nil {
			t.Fatalf("the token due for rotation was not replaced and deleted: %v; tokens %v", err, tokensOf(t, c, "grow"))
		}
		// Machines join with the new one.
		p := &fleetv1alpha1.Pool{}
		if err := c.Get(ctx, client.ObjectKey{Name: "grow"}, p); err != nil {
			t.Fatal(err)
		}
		p.Spec.Capacity = 41
		if err := c.Update(ctx, p); err != nil {
			t.Fatal(err)
		}
		waitPool(t, c, "grow", fleetv1alpha1.PoolReadyReason, 41)
		p.Spec.Capacity = 40
		if err := c.Get(ctx, client.ObjectKey{Name: "grow"}, p); err != nil {
			t.Fatal(err)
		}
		p.Spec.Capacity = 40
		if err := c.Update(ctx, p); err != nil {
			t.Fatal(err)
		}
		waitPool(t, c, "grow", fleetv1alpha1.PoolReadyReason, 40)
	})

	t.Run("a shrink drains Nodes and gives their machines back", func(t *testing.T) {
		// One pod per Node, as a workload would be.
		for _, n := range nodesOf(t, c, "grow") {
			testutil.MustCreate(t, c, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "app-" + n.Name, Namespace: "default", Labels: map[string]string{"app": "grow"}},
				Spec: corev1.PodSpec{NodeName: n.Name, TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
			})
		}
		setCapacity(t, c, "grow", 20)
		waitPool(t, c, "grow", fleetv1alpha1.PoolReadyReason, 20)
		left := nodesOf(t, c, "grow")
		if len(left) != 20 {
			t.Fatalf("%d Nodes left, want 20", len(left))
		}
		zones := map[string]int{}
		names := map[string]bool{}
		for _, n := range left {
			zones[n.Labels[fleetv1alpha1.MaintenanceZoneLabel]]++
			names[n.Name] = true
		}
		if len(zones) != 20 {
			t.Errorf("Nodes per MZ after the shrink = %v, want 1 in each of 20", zones)
		}
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace("default"), client.MatchingLabels{"app": "grow"}); err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if !names[p.Spec.NodeName] {
				t.Errorf("pod %s is still on released node %s", p.Name, p.Spec.NodeName)
			}
		}
		if len(pods.Items) != 20 {
			t.Errorf("%d pods left, want the 20 on remaining Nodes", len(pods.Items))
		}
		resp, err := bc.ListMachines(ctx, &brokerv1.ListMachinesRequest{Pool: "grow", PageSize: 1000})
		if err != nil || len(resp.GetMachines()) != 20 {
			t.Errorf("broker holds %d machines for the pool (%v), want 20", len(resp.GetMachines()), err)
		}
	})

	t.Run("a Node whose machine the broker does not hold for the Pool is kept and reported, never deleted", func(t *testing.T) {
		// As after a broker restored from an older backup: two Nodes of the
		// Pool on machines the broker holds for no pool, one never drained,
		// one drained for a disruption the broker does not know.
		free, err := bc.ListMachines(ctx, &brokerv1.ListMachinesRequest{PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var strays []string
		for _, m := range free.GetMachines() {
			if m.GetPool() == "" && len(strays) < 2 {
				strays = append(strays, m.GetId())
			}
		}
		if len(strays) != 2 {
			t.Fatalf("found %d machines in no pool, want 2", len(strays))
		}
		for i, id := range strays {
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: id,
				Labels: map[string]string{fleetv1alpha1.PoolLabel: "grow", fleetv1alpha1.MachineLabel: id}}}
			if i == 1 {
				node.Annotations = map[string]string{fleetv1alpha1.CordonedForAnnotation: "d-from-a-newer-broker"}
			}
			testutil.MustCreate(t, c, node)
		}
		touchPool(t, c, "grow")
		p := waitNodesKnown(t, c, "grow", metav1.ConditionFalse)
		msg := meta.FindStatusCondition(p.Status.Conditions, fleetv1alpha1.PoolNodesKnownCondition).Message
		for _, want := range []string{
			"2 Nodes kept, never deleted nor drained by the Pool",
			"node " + strays[0] + " runs on machine " + strays[0] + ", which broker pool grow does not hold and no disruption of Strata's drained it",
			"disruption d-from-a-newer-broker that drained it is unknown to the broker",
			"kubectl delete node",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("NodesKnown message = %q, want it to say %q", msg, want)
			}
		}
		waitEvent(t, c, "grow", fleetv1alpha1.MachineUnknownReason)
		// The pass that reported them is the one that used to delete them.
		for _, id := range strays {
			if err := c.Get(ctx, client.ObjectKey{Name: id}, &corev1.Node{}); err != nil {
				t.Errorf("node %s: %v, want it kept", id, err)
			}
		}
		if p.Status.Nodes != 20 || readyCondition(p).Reason != fleetv1alpha1.PoolReadyReason {
			t.Errorf("status = %+v, want the Pool's 20 Nodes Ready beside the kept ones", p.Status)
		}

		// A person who knows the machines are gone deletes the Nodes.
		for _, id := range strays {
			if err := c.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: id}}); err != nil {
				t.Fatal(err)
			}
		}
		waitNodesKnown(t, c, "grow", metav1.ConditionTrue)
	})

	t.Run("a required DaemonSet gates the startup taint", func(t *testing.T) {
		testutil.MustCreate(t, c, testutil.MakePool("gated", "wl", 4).RequireDaemonSet("default", "agent").Obj())
		p := waitPool(t, c, "gated", fleetv1alpha1.WaitingForDaemonSetsReason, 0)
		if msg := readyCondition(p).Message; msg != "required DaemonSet default/agent does not exist" {
			t.Errorf("message = %q", msg)
		}
		ds := &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "default"},
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
					Spec: corev1.PodSpec{
						Tolerations: []corev1.Toleration{{Key: fleetv1alpha1.StartupTaintKey, Operator: corev1.TolerationOpExists}},
						Containers:  []corev1.Container{{Name: "agent", Image: "agent:1"}},
					},
				},
			},
		}
		testutil.MustCreate(t, c, ds)
		nodes := nodesOf(t, c, "gated")
		// The kubelet's part: a ready agent pod on the first two Nodes.
		for _, n := range nodes[:2] {
			runReadyPod(t, c, ds, n.Name)
		}
		waitPool(t, c, "gated", fleetv1alpha1.WaitingForDaemonSetsReason, 2)
		for _, n := range nodesOf(t, c, "gated") {
			tainted := slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == fleetv1alpha1.StartupTaintKey })
			if want := n.Name != nodes[0].Name && n.Name != nodes[1].Name; tainted != want {
				t.Errorf("node %s tainted = %v, want %v", n.Name, tainted, want)
			}
		}
		for _, n := range nodes[2:] {
			runReadyPod(t, c, ds, n.Name)
		}
		waitPool(t, c, "gated", fleetv1alpha1.PoolReadyReason, 4)
	})

	t.Run("bad input is a condition and an event", func(t *testing.T) {
		testutil.MustCreate(t, c, testutil.MakePool("lost", "nowhere", 1).Obj())
		p := waitPool(t, c, "lost", fleetv1alpha1.ClusterNotFoundReason, 0)
		wantMsg := `cluster "nowhere" is not registered on the hub (kubectl get clusters lists those that are)`
		if got := readyCondition(p).Message; got != wantMsg {
			t.Errorf("message = %q, want %q", got, wantMsg)
		}
		waitEvent(t, c, "lost", fleetv1alpha1.ClusterNotFoundReason)

		testutil.MustCreate(t, c, testutil.MakePool("odd", "wl", 1).Profile("no-such-profile").Obj())
		p = waitPool(t, c, "odd", fleetv1alpha1.BrokerRejectedReason, 0)
		if got := readyCondition(p).Message; !strings.Contains(got, `"no-such-profile" does not exist`) {
			t.Errorf("message = %q, want the broker's word on the unknown profile", got)
		}

		testutil.MustCreate(t, c, testutil.MakePool("huge", "wl", 1000).Obj())
		p = waitPool(t, c, "huge", fleetv1alpha1.InsufficientInventoryReason, -1)
		if got := readyCondition(p).Message; !strings.Contains(got, "of 1000 machines allocated") {
			t.Errorf("message = %q", got)
		}
		if _, err := bc.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
			Name: "taken", Datacenter: "dc1", NodeProfile: "general", Capacity: 1}}); err != nil {
			t.Fatal(err)
		}
		testutil.MustCreate(t, c, testutil.MakePool("taken", "wl", 1).Obj())
		waitPool(t, c, "taken", fleetv1alpha1.BrokerPoolConflictReason, 0)

		err := c.Create(ctx, testutil.MakePool("bad-taint", "wl", 1).NodeTaint(fleetv1alpha1.StartupTaintKey, "", corev1.TaintEffectNoSchedule).Obj())
		if err == nil || !strings.Contains(err.Error(), "the pool controller manages that taint") {
			t.Errorf("Create with the startup taint = %v, want a rejection", err)
		}
		moved := &fleetv1alpha1.Pool{}
		if err := c.Get(ctx, client.ObjectKey{Name: "grow"}, moved); err != nil {
			t.Fatal(err)
		}
		moved.Spec.Cluster = "elsewhere"
		if err := c.Update(ctx, moved); err == nil || !strings.Contains(err.Error(), "cluster is immutable") {
			t.Errorf("moving a Pool = %v, want a rejection", err)
		}
		for _, name := range []string{"lost", "odd", "huge", "taken"} {
			deletePool(t, c, name)
		}
		if _, err := bc.GetPool(ctx, &brokerv1.GetPoolRequest{Name: "taken"}); err != nil {
			t.Errorf("deleting the Pool removed the broker pool it did not own: %v", err)
		}
	})

	// A second cluster, the same API server under another name, with a
	// limit of 10 Nodes.
	testutil.MustCreate(t, c, testutil.MakeSecret(ns, "small-kubeconfig", "kubeconfig", kubeconfig))
	small := testutil.MakeCluster("small", ns).Obj()
	small.Spec.MaxNodes = 10
	testutil.MustCreate(t, c, small)

	t.Run("a capacity over the cluster's limit is refused; the broker pool is left as it was", func(t *testing.T) {
		testutil.MustCreate(t, c, testutil.MakePool("small-a", "small", 4).Obj())
		waitPool(t, c, "small-a", fleetv1alpha1.PoolReadyReason, 4)
		testutil.MustCreate(t, c, testutil.MakePool("small-b", "small", 7).Obj())
		p := waitPool(t, c, "small-b", fleetv1alpha1.OverClusterLimitReason, 0)
		want := "capacity 7 would give cluster small 11 Nodes, over its limit of 10 (spec.maxNodes of Cluster small): " +
			"its other Pools take 4, so this Pool may have at most 6; the broker pool is left as it was"
		if got := readyCondition(p).Message; got != want {
			t.Errorf("message = %q, want %q", got, want)
		}
		waitEvent(t, c, "small-b", fleetv1alpha1.OverClusterLimitReason)
		if _, err := bc.GetPool(ctx, &brokerv1.GetPoolRequest{Name: "small-b"}); err == nil {
			t.Error("the broker pool of a refused Pool was created")
		}
		// Growth of a Pool that has its broker pool is refused the same way.
		setCapacity(t, c, "small-b", 6)
		waitPool(t, c, "small-b", fleetv1alpha1.PoolReadyReason, 6)
		setCapacity(t, c, "small-a", 5)
		waitPool(t, c, "small-a", fleetv1alpha1.OverClusterLimitReason, -1)
		if bp, err := bc.GetPool(ctx, &brokerv1.GetPoolRequest{Name: "small-a"}); err != nil || bp.GetPool().GetCapacity() != 4 {
			t.Errorf("broker pool small-a = %v (%v), want it left at 4", bp.GetPool(), err)
		}
		setCapacity(t, c, "small-a", 4)
		waitPool(t, c, "small-a", fleetv1alpha1.PoolReadyReason, 4)
		deletePool(t, c, "small-b")
	})

	t.Run("a shrink reaches the broker while the cluster is not Ready, and drains once it is", func(t *testing.T) {
		secret := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "small-kubeconfig"}, secret); err != nil {
			t.Fatal(err)
		}
		good := secret.Data["kubeconfig"]
		unreachable, err := clientcmd.Load(good)
		if err != nil {
			t.Fatal(err)
		}
		for _, cl := range unreachable.Clusters {
			cl.Server = "https://127.0.0.1:1"
		}
		if secret.Data["kubeconfig"], err = clientcmd.Write(*unreachable); err != nil {
			t.Fatal(err)
		}
		if err := c.Update(ctx, secret); err != nil {
			t.Fatal(err)
		}
		waitPool(t, c, "small-a", fleetv1alpha1.ClusterNotReadyReason, -1)
		setCapacity(t, c, "small-a", 1)
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			bp, err := bc.GetPool(ctx, &brokerv1.GetPoolRequest{Name: "small-a"})
			return err == nil && bp.GetPool().GetCapacity() == 1, err
		})
		if err != nil {
			t.Fatalf("the broker pool did not shrink to 1 while cluster small was not Ready: %v", err)
		}
		waitEvent(t, c, "small-a", "BrokerPoolShrunk")
		secret.Data["kubeconfig"] = good
		if err := c.Update(ctx, secret); err != nil {
			t.Fatal(err)
		}
		waitPool(t, c, "small-a", fleetv1alpha1.PoolReadyReason, 1)
		if n := len(nodesOf(t, c, "small-a")); n != 1 {
			t.Errorf("pool small-a has %d Nodes after the shrink, want 1", n)
		}
		deletePool(t, c, "small-a")
	})

	t.Run("deleting a Pool drains and releases every machine", func(t *testing.T) {
		deletePool(t, c, "grow")
		deletePool(t, c, "gated")
		if n := len(nodesOf(t, c, "grow")) + len(nodesOf(t, c, "gated")); n != 0 {
			t.Errorf("%d Nodes left", n)
		}
		for _, name := range []string{"grow", "gated", "huge"} {
			if _, err := bc.GetPool(ctx, &brokerv1.GetPoolRequest{Name: name}); err == nil {
				t.Errorf("broker pool %s still exists", name)
			}
			if tokens := tokensOf(t, c, name); len(tokens) != 0 {
				t.Errorf("bootstrap tokens of deleted pool %s are left: %v", name, tokens)
			}
		}
	})
}

func startControllers(t testing.TB, cfg *rest.Config, scheme *runtime.Scheme, bc brokerv1.BrokerServiceClient) {
	t.Helper()
	testutil.StartManager(t, cfg, scheme, func(mgr ctrl.Manager) error {
		cr, err := cluster.New(cluster.Options{Client: mgr.GetClient(), Prober: cluster.NewAPIProber(), ProbeInterval: time.Second})
		if err != nil {
			return err
		}
		if err := cr.SetupWithManager(mgr); err != nil {
			return err
		}
		workloads := remote.New(mgr.GetClient())
		if err := mgr.Add(workloads); err != nil {
			return err
		}
		pr, err := pool.New(pool.Options{Hub: mgr.GetClient(), Broker: bc, Clusters: workloads, Recorder: mgr.GetEventRecorder("pool-controller")})
		if err != nil {
			return err
		}
		if err := pr.SetupWithManager(mgr); err != nil {
			return err
		}
		// The cluster manager drains the Nodes of the machines a shrink or
		// a delete gives back.
		m, err := manager.New(manager.Options{Hub: mgr.GetClient(), Broker: bc, Clusters: workloads})
		if err != nil {
			return err
		}
		return m.SetupWithManager(mgr)
	})
}

// waitPool waits until the Pool's Ready condition has the reason and, when
// ready >= 0, status.ready is that.
func waitPool(t *testing.T, c client.Client, name, reason string, ready int32) *fleetv1alpha1.Pool {
	t.Helper()
	p := &fleetv1alpha1.Pool{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
			return false, err
		}
		cond := readyCondition(p)
		return cond != nil && cond.Reason == reason && cond.ObservedGeneration == p.Generation && (ready < 0 || p.Status.Ready == ready), nil
	})
	if err != nil {
		t.Fatalf("pool %s: want Ready reason %s with %d ready: %v; status %+v", name, reason, ready, err, p.Status)
	}
	return p
}

// waitNodesKnown waits until the Pool's NodesKnown condition has the status.
func waitNodesKnown(t *testing.T, c client.Client, name string, status metav1.ConditionStatus) *fleetv1alpha1.Pool {
	t.Helper()
	p := &fleetv1alpha1.Pool{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
			return false, err
		}
		return meta.IsStatusConditionPresentAndEqual(p.Status.Conditions, fleetv1alpha1.PoolNodesKnownCondition, status), nil
	})
	if err != nil {
		t.Fatalf("pool %s: want NodesKnown %s: %v; conditions %+v", name, status, err, p.Status.Conditions)
	}
	return p
}

func readyCondition(p *fleetv1alpha1.Pool) *metav1.Condition {
	return meta.FindStatusCondition(p.Status.Conditions, fleetv1alpha1.PoolReadyCondition)
}

func setCapacity(t *testing.T, c client.Client, name string, capacity int32) {
	t.Helper()
	p := &fleetv1alpha1.Pool{}
	if err := c.Get(t.Context(), client.ObjectKey{Name: name}, p); err != nil {
		t.Fatal(err)
	}
	before := p.DeepCopy()
	p.Spec.Capacity = capacity
	if err := c.Patch(t.Context(), p, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
}

// deletePool deletes a Pool and waits until it is gone.
func deletePool(t *testing.T, c client.Client, name string) {
	t.Helper()
	if err := c.Delete(t.Context(), &fleetv1alpha1.Pool{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	// A Pool that holds many machines ("huge" takes every free one) drains
	// each Node before it goes: minutes when the machine is busy.
	p := &fleetv1alpha1.Pool{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKey{Name: name}, p)
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("pool %s not gone 3 minutes after its deletion; status %+v", name, p.Status)
	}
}

func nodesOf(t *testing.T, c client.Client, pool string) []corev1.Node {
	t.Helper()
	nodes := &corev1.NodeList{}
	if err := c.List(t.Context(), nodes, client.MatchingLabels{fleetv1alpha1.PoolLabel: pool}); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(nodes.Items, func(a, b corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	return nodes.Items
}

// runReadyPod plays the DaemonSet controller and the kubelet: a ready pod of
// ds on the node.
func runReadyPod(t *testing.T, c client.Client, ds *appsv1.DaemonSet, node string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s-%s", ds.Name, node), Namespace: ds.Namespace, Labels: ds.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))},
		},
		Spec: *ds.Spec.Template.Spec.DeepCopy(),
	}
	pod.Spec.NodeName = node
	testutil.MustCreate(t, c, pod)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	if err := c.Status().Update(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
}

// waitEvent waits for an event about the Pool with the reason.
func waitEvent(t *testing.T, c client.Client, pool, reason string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		events := &corev1.EventList{}
		if err := c.List(ctx, events); err != nil {
			return false, err
		}
		return slices.ContainsFunc(events.Items, func(e corev1.Event) bool {
			return e.InvolvedObject.Name == pool && e.Reason == reason
		}), nil
	})
	if err != nil {
		t.Errorf("no %s event about pool %s: %v", reason, pool, err)
	}
}

// tokensOf names the bootstrap token Secrets of a Pool in kube-system.
func tokensOf(t *testing.T, c client.Client, pool string) []string {
	t.Helper()
	list := &corev1.SecretList{}
	if err := c.List(t.Context(), list, client.InNamespace(metav1.NamespaceSystem), client.MatchingLabels{fleetv1alpha1.PoolLabel: pool}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range list.Items {
		if s.Type == corev1.SecretTypeBootstrapToken {
			names = append(names, s.Name)
		}
	}
	return names
}

// touchPool annotates a Pool, so that the controller looks at it now.
func touchPool(t *testing.T, c client.Client, name string) {
	t.Helper()
	patch := []byte(`{"metadata":{"annotations":{"test.strata.dev/touched":"` + time.Now().Format(time.RFC3339Nano) + `"}}}`)
	if err := c.Patch(t.Context(), &fleetv1alpha1.Pool{ObjectMeta: metav1.ObjectMeta{Name: name}}, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}
