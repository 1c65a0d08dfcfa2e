package rollout_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/cluster"
	"github.com/strata-dev/strata/internal/cluster/pool"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/cluster/rollout"
	"github.com/strata-dev/strata/internal/metal/provision/sim"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/testutil/testbroker"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

const ns = "strata-system"

// harness is the world of the test: an API server that is both the hub and
// the workload cluster, a broker on SQLite with the sim provisioner, the
// cluster, pool and rollout controllers, and the test playing the cluster
// manager: it approves every Pending disruption but those it holds.
type harness struct {
	t      *testing.T
	c      client.Client
	broker brokerv1.BrokerServiceClient
	sim    *sim.Provisioner
	mu     sync.Mutex
	held   map[string]bool // machines whose disruptions are not approved
}

// TestRollout runs the maintenance orchestrator against a real API server
// and a real broker: it moves machines only to the node config their Pool
// states, never writes a Pool's spec or its own, halts while more machines
// failed than it tolerates, and goes on once a person tolerates them.
func TestRollout(t *testing.T) {
	h := start(t)
	testutil.MustCreate(t, h.c, testutil.MakePool("web", "wl", 10).Obj())
	h.waitPool("web")
	poolGen := h.pool("web").Generation

	t.Run("a pool stating another node config: nothing is disrupted, nothing is written to the pool", func(t *testing.T) {
		h.create(t, rolloutOf("v2", "v2"))
		ro := h.waitRollout(t, "v2", func(ro *fleetv1alpha1.MaintenanceRollout) bool {
			c := meta.FindStatusCondition(ro.Status.Conditions, fleetv1alpha1.RolloutProgressingCondition)
			return c != nil && c.Reason == fleetv1alpha1.RolloutPoolNodeConfigDiffersReason && ro.Status.Machines == 10
		})
		c := meta.FindStatusCondition(ro.Status.Conditions, fleetv1alpha1.RolloutProgressingCondition)
		want := `kubectl patch pool web --type merge -p '{"spec":{"nodeConfig":"v2"}}'`
		if !strings.Contains(c.Message, want) {
			t.Errorf("Progressing message %q does not say %q", c.Message, want)
		}
		if ds := h.disruptionsBy(t, "v2"); len(ds) != 0 {
			t.Errorf("a rollout whose pool states another node config asked for disruptions %v", ds)
		}
		if p := h.pool("web"); p.Generation != poolGen || p.Spec.NodeConfig != "" {
			t.Errorf("pool web: generation %d -> %d, node config %q: its spec was written", poolGen, p.Generation, p.Spec.NodeConfig)
		}
	})

	t.Run("once the pool's owner states it, every machine moves to it, and only the owner wrote the pool", func(t *testing.T) {
		h.setNodeConfig(t, "web", "v2")
		ro := h.waitRollout(t, "v2", complete)
		if ro.Status.Updated != 10 || ro.Status.CompletionTime == nil {
			t.Errorf("status: %d updated, completionTime %v", ro.Status.Updated, ro.Status.CompletionTime)
		}
		if p := h.pool("web"); p.Generation != poolGen+1 || p.Spec.NodeConfig != "v2" {
			t.Errorf("pool web: generation %d (want %d: the owner's one change), node config %q", p.Generation, poolGen+1, p.Spec.NodeConfig)
		}
		if ro.Generation != 1 || ro.Spec.Paused {
			t.Errorf("rollout v2: generation %d, paused %t: its spec was written", ro.Generation, ro.Spec.Paused)
		}
	})

	t.Run("a failed machine halts the next rollout; the older one does not block it and pulls nothing back", func(t *testing.T) {
		victim := h.machines(t, "web")[0]
		h.hold(victim.GetId(), true)
		v3 := rolloutOf("v3", "v3")
		v3.Spec.ZoneOrder = []int32{victim.GetMaintenanceZone()}
		h.create(t, v3)
		h.setNodeConfig(t, "web", "v3")
		// The fault lands while the victim's disruption is open.
		h.waitDisruption(t, "v3", victim.GetId(), brokerv1.DisruptionState_DISRUPTION_STATE_PENDING)
		if _, err := h.sim.Fail(t.Context(), []string{victim.GetId()}, sim.FixNever); err != nil {
			t.Fatal(err)
		}
		h.hold(victim.GetId(), false)

		ro := h.waitRollout(t, "v3", func(ro *fleetv1alpha1.MaintenanceRollout) bool {
			c := meta.FindStatusCondition(ro.Status.Conditions, fleetv1alpha1.RolloutPausedCondition)
			return c != nil && c.Status == metav1.ConditionTrue && c.Reason == fleetv1alpha1.RolloutMachineFailedReason
		})
		halted := time.Now()
		if c := meta.FindStatusCondition(ro.Status.Conditions, fleetv1alpha1.RolloutPausedCondition); !strings.Contains(c.Message, victim.GetId()) {
			t.Errorf("Paused message does not name machine %s: %s", victim.GetId(), c.Message)
		}
		if len(ro.Status.Failures) != 1 || ro.Status.Failures[0].Machine != victim.GetId() {
			t.Errorf("status failures = %+v, want machine %s", ro.Status.Failures, victim.GetId())
		}
		if ro.Spec.Paused || ro.Generation != 1 {
			t.Errorf("rollout v3: paused %t, generation %d: it wrote its own spec", ro.Spec.Paused, ro.Generation)
		}
		// The older rollout pulls nothing back and says why.
		old := h.waitRollout(t, "v2", func(ro *fleetv1alpha1.MaintenanceRollout) bool {
			c := meta.FindStatusCondition(ro.Status.Conditions, fleetv1alpha1.RolloutProgressingCondition)
			return c != nil && c.Reason == fleetv1alpha1.RolloutSupersededReason
		})
		if old.Status.CompletionTime == nil {
			t.Error("rollout v2 lost its completionTime")
		}
		if ds := h.disruptionsBy(t, "v2"); len(ds) != 10 {
			t.Errorf("rollout v2 asked for %d disruptions, want its 10 of before", len(ds))
		}

		// A person tolerates the failure, as strata rollouts resume does.
		patch := client.MergeFrom(ro.DeepCopy())
		ro.Spec.ToleratedFailures = 1
		if err := h.c.Patch(t.Context(), ro, patch); err != nil {
			t.Fatal(err)
		}
		for _, d := range h.disruptionsBy(t, "v3") {
			if d.GetMachine() != victim.GetId() && d.GetCreateTime().AsTime().After(halted) {
				t.Errorf("disruption %s of machine %s was asked for while the rollout was halted", d.GetId(), d.GetMachine())
			}
		}
		ro = h.waitRollout(t, "v3", func(ro *fleetv1alpha1.MaintenanceRollout) bool {
			return ro.Status.Updated == 9 && meta.IsStatusConditionFalse(ro.Status.Conditions, fleetv1alpha1.RolloutPausedCondition)
		})
		if meta.IsStatusConditionTrue(ro.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition) {
			t.Error("rollout v3 is Complete with a machine on the old node config")
		}
		if p := h.pool("web"); p.Generation != poolGen+2 {
			t.Errorf("pool web: generation %d, want %d: only its owner's two changes", p.Generation, poolGen+2)
		}
		for _, m := range h.machines(t, "web") {
			if m.GetId() != victim.GetId() && m.GetSoftware().GetNodeConfig() != "v3" {
				t.Errorf("machine %s runs %q, want v3", m.GetId(), m.GetSoftware().GetNodeConfig())
			}
		}
	})
}

func rolloutOf(name, nodeConfig string) *fleetv1alpha1.MaintenanceRollout {
	return &fleetv1alpha1.MaintenanceRollout{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       fleetv1alpha1.MaintenanceRolloutSpec{Pools: []string{"web"}, NodeConfig: nodeConfig},
	}
}

func complete(ro *fleetv1alpha1.MaintenanceRollout) bool {
	return meta.IsStatusConditionTrue(ro.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition)
}

func start(t *testing.T) *harness {
	t.Helper()
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
	kubeconfig := testutil.AdminKubeconfig(t, env)
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	testutil.MustCreate(t, c, testutil.MakeSecret(ns, "wl-kubeconfig", "kubeconfig", kubeconfig))
	testutil.MustCreate(t, c, testutil.MakeCluster("wl", ns).Obj())

	h := &harness{t: t, c: c, held: map[string]bool{}}
	h.broker, h.sim = testbroker.Start(t, 200, 10*time.Millisecond, sim.Cluster{Name: "wl", Kubeconfig: kubeconfig})
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
		pr, err := pool.New(pool.Options{Hub: mgr.GetClient(), Broker: h.broker, Clusters: workloads, Recorder: mgr.GetEventRecorder("pool-controller")})
		if err != nil {
			return err
		}
		if err := pr.SetupWithManager(mgr); err != nil {
			return err
		}
		rr, err := rollout.New(rollout.Options{Hub: mgr.GetClient(), Broker: h.broker, Clusters: workloads, Recorder: mgr.GetEventRecorder("rollout-controller")})
		if err != nil {
			return err
		}
		return rr.SetupWithManager(mgr)
	})
	go h.playClusterManager(t.Context())
	return h
}

func (h *harness) hold(machine string, held bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held[machine] = held
}

// playClusterManager approves the Pending disruptions of machines it does
// not hold, as the cluster manager does once it drained the Node (no pod
// runs in this test); a held machine's is approved once released.
func (h *harness) playClusterManager(ctx context.Context) {
	for ctx.Err() == nil {
		resp, err := h.broker.ListDisruptions(ctx, &brokerv1.ListDisruptionsRequest{})
		if err == nil {
			for _, d := range resp.GetDisruptions() {
				h.mu.Lock()
				held := h.held[d.GetMachine()]
				h.mu.Unlock()
				if held || d.GetState() != brokerv1.DisruptionState_DISRUPTION_STATE_PENDING ||
					d.GetReason() == brokerv1.DisruptionReason_DISRUPTION_REASON_POOL_SHRINK {
					continue
				}
				_, _ = h.broker.ApproveDisruption(ctx, &brokerv1.ApproveDisruptionRequest{
					Id: d.GetId(), OnBehalfOf: "cluster-manager/wl", Message: "node " + d.GetMachine() + " is drained (played by the test)",
				})
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (h *harness) create(t *testing.T, obj client.Object) {
	t.Helper()
	testutil.MustCreate(t, h.c, obj)
}

func (h *harness) pool(name string) *fleetv1alpha1.Pool {
	h.t.Helper()
	p := &fleetv1alpha1.Pool{}
	if err := h.c.Get(h.t.Context(), client.ObjectKey{Name: name}, p); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// setNodeConfig plays the Pool's owner stating its node config.
func (h *harness) setNodeConfig(t *testing.T, name, nodeConfig string) {
	t.Helper()
	p := h.pool(name)
	patch := client.MergeFrom(p.DeepCopy())
	p.Spec.NodeConfig = nodeConfig
	if err := h.c.Patch(t.Context(), p, patch); err != nil {
		t.Fatal(err)
	}
}

// waitPool waits until the Pool is Ready with all its Nodes.
func (h *harness) waitPool(name string) {
	h.t.Helper()
	err := wait.PollUntilContextTimeout(h.t.Context(), 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		p := h.pool(name)
		c := meta.FindStatusCondition(p.Status.Conditions, fleetv1alpha1.PoolReadyCondition)
		return c != nil && c.Reason == fleetv1alpha1.PoolReadyReason && c.ObservedGeneration == p.Generation, nil
	})
	if err != nil {
		h.t.Fatalf("pool %s is not Ready: %v", name, err)
	}
}

// waitRollout waits until done says yes of the rollout's status for its
// generation, and returns it.
func (h *harness) waitRollout(t *testing.T, name string, done func(*fleetv1alpha1.MaintenanceRollout) bool) *fleetv1alpha1.MaintenanceRollout {
	t.Helper()
	ro := &fleetv1alpha1.MaintenanceRollout{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := h.c.Get(ctx, client.ObjectKey{Name: name}, ro); err != nil {
			return false, err
		}
		return ro.Status.ObservedGeneration == ro.Generation && done(ro), nil
	})
	if err != nil {
		t.Fatalf("rollout %s: %v; status %d of %d updated, conditions %+v", name, err, ro.Status.Updated, ro.Status.Machines, ro.Status.Conditions)
	}
	return ro
}

func (h *harness) machines(t *testing.T, pool string) []*brokerv1.Machine {
	t.Helper()
	resp, err := h.broker.ListMachines(t.Context(), &brokerv1.ListMachinesRequest{Pool: pool, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ms := resp.GetMachines()
	slices.SortFunc(ms, func(a, b *brokerv1.Machine) int { return strings.Compare(a.GetId(), b.GetId()) })
	return ms
}

// disruptionsBy lists the disruptions a rollout asked for.
func (h *harness) disruptionsBy(t *testing.T, name string) []*brokerv1.Disruption {
	t.Helper()
	resp, err := h.broker.ListDisruptions(t.Context(), &brokerv1.ListDisruptionsRequest{Pool: "web"})
	if err != nil {
		t.Fatal(err)
	}
	var out []*brokerv1.Disruption
	for _, d := range resp.GetDisruptions() {
		if d.GetOnBehalfOf() == rollout.Actor(name) {
			out = append(out, d)
		}
	}
	return out
}

// waitDisruption waits until the rollout has a disruption of the machine in state.
func (h *harness) waitDisruption(t *testing.T, name, machine string, state brokerv1.DisruptionState) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return slices.ContainsFunc(h.disruptionsBy(t, name), func(d *brokerv1.Disruption) bool {
			return d.GetMachine() == machine && d.GetState() == state
		}), nil
	})
	if err != nil {
		t.Fatalf("rollout %s has no %s disruption of machine %s: %v", name, state, machine, err)
	}
}
