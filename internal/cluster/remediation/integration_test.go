package remediation_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/cluster"
	"github.com/strata-dev/strata/internal/cluster/index"
	"github.com/strata-dev/strata/internal/cluster/pool"
	"github.com/strata-dev/strata/internal/cluster/remediation"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/metal/provision/sim"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/testutil/testbroker"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

const (
	ns = "strata-system"
	// machines of the test datacenter: 10 per MZ.
	machines = 200
	// notReadyThreshold is the controller's, short for the test.
	notReadyThreshold = 2 * time.Second
	faultHoldOff      = time.Second
	resync            = 500 * time.Millisecond
)

// harness is the world of the test: an API server that is both the hub and
// the workload cluster, a broker on SQLite with the sim provisioner, the
// cluster and pool controllers, and the remediation controller in a manager
// of its own, so that it can be stopped and started again.
type harness struct {
	t      *testing.T
	cfg    *rest.Config
	scheme *runtime.Scheme
	c      client.Client
	broker brokerv1.BrokerServiceClient
	sim    *sim.Provisioner
}

// TestRemediation runs the remediation controller against a real API server
// and a real broker whose sim provisioner performs the rungs and plays the
// faults. The test plays the cluster manager (package manager is not on
// main yet): it approves every Pending disruption at once, without
// cordoning or draining, since no pod runs.
func TestRemediation(t *testing.T) {
	h := start(t)
	stop := h.startRemediation()
	defer func() { stop() }()

	t.Run("a whole zone down halts remediation and starts none", func(t *testing.T) {
		h := h.on(t)
		const name = "zone"
		h.newPool(name, 40)
		zone := h.zoneMachines(5)
		h.fail(sim.FixNever, zone...)
		halted := "remediation halted: all 2 machines of pool zone in MZ 5 are unhealthy — a zone event, not broken hosts; " +
			"no machine is rebooted, reimaged or replaced until the zone recovers"
		h.waitHosts(name, fleetv1alpha1.RemediationHaltedReason, halted)
		// The two controllers write the same status: neither wipes the other's condition.
		p := h.waitCondition(name, fleetv1alpha1.PoolReadyCondition, fleetv1alpha1.NodesNotReadyReason)
		if c := meta.FindStatusCondition(p.Status.Conditions, fleetv1alpha1.PoolHostsHealthyCondition); c == nil || c.Message != halted {
			t.Errorf("HostsHealthy after the pool controller wrote Ready = %+v, want it kept", c)
		}
		h.waitEvent(name, fleetv1alpha1.RemediationHaltedReason)
		// Past both thresholds, and several passes later, nothing was asked for.
		h.passes(notReadyThreshold + 4*resync)
		if ds := h.remediations(name); len(ds) != 0 {
			t.Errorf("remediation disruptions of a zone down = %v, want none", ds)
		}
		h.heal(zone...)
		h.waitHosts(name, fleetv1alpha1.HostsHealthyReason, "all 40 machines healthy")
		if ds := h.remediations(name); len(ds) != 0 {
			t.Errorf("remediation disruptions after the zone recovered = %v, want none", ds)
		}
	})

	t.Run("a Node NotReady through a reboot is reimaged; a restart mid-ladder repeats no rung", func(t *testing.T) {
		h := h.on(t)
		const name = "notready"
		h.newPool(name, 10)
		node := h.nodesOf(name)[0]
		// The sim's reboot leaves the Node as it is: still NotReady after it.
		// Its reimage registers the Node again, Ready.
		h.setReady(&node, corev1.ConditionFalse)
		h.waitRemediations(name, node.Name+" REBOOT IN_PROGRESS")
		// Stopped while the broker reboots, the controller does not see the
		// reboot end; started again, it reads the broker's record.
		stop()
		h.waitRemediations(name, node.Name+" REBOOT COMPLETED")
		stop = h.startRemediation()
		h.waitRemediations(name, node.Name+" REBOOT COMPLETED", node.Name+" REIMAGE COMPLETED")
		h.waitHosts(name, fleetv1alpha1.HostsHealthyReason, "all 10 machines healthy")
		h.passes(notReadyThreshold + 4*resync)
		if got := h.remediations(name); len(got) != 2 {
			t.Errorf("remediations = %v, want the reboot and the reimage only", got)
		}
		h.waitEvent(name, "RemediationRequested")
	})

	t.Run("a machine faulted for good is rebooted, reimaged, then replaced, and the Pool is back at capacity", func(t *testing.T) {
		h := h.on(t)
		const name = "ladder"
		h.newPool(name, 10)
		broken := h.nodesOf(name)[3].Name
		h.fail(sim.FixNever, broken)
		h.waitRemediations(name, broken+" REBOOT FAILED", broken+" REIMAGE FAILED", broken+" REPLACE COMPLETED")
		h.waitHosts(name, fleetv1alpha1.HostsHealthyReason, "all 10 machines healthy")
		h.waitCondition(name, fleetv1alpha1.PoolReadyCondition, fleetv1alpha1.PoolReadyReason)
		nodes := h.nodesOf(name)
		if len(nodes) != 10 || slices.ContainsFunc(nodes, func(n corev1.Node) bool { return n.Name == broken }) {
			t.Errorf("Nodes of the pool = %v, want 10 without %s", names(nodes), broken)
		}
		m, err := h.broker.GetMachine(t.Context(), &brokerv1.GetMachineRequest{Id: broken})
		if err != nil || m.GetMachine().GetPool() != "" || m.GetMachine().GetHealthy() {
			t.Errorf("replaced machine = %v (%v), want out of the pool and unhealthy", m.GetMachine(), err)
		}
	})

	t.Run("faults a reboot fixes stop at the reboot, one machine at a time within the budget", func(t *testing.T) {
		h := h.on(t)
		const name = "reboot"
		h.newPool(name, 10)
		nodes := h.nodesOf(name)
		a, b := nodes[1].Name, nodes[6].Name
		h.fail(sim.FixReboot, a, b)
		// The budget lets one machine of a pool of 10 be disrupted at once.
		h.waitHostsMessage(name, fleetv1alpha1.RemediatingReason, "reboot waits for the disruption budget")
		h.waitHosts(name, fleetv1alpha1.HostsHealthyReason, "all 10 machines healthy")
		h.passes(faultHoldOff + 4*resync)
		got := h.remediations(name)
		slices.Sort(got)
		if want := []string{a + " REBOOT COMPLETED", b + " REBOOT COMPLETED"}; !slices.Equal(got, want) {
			t.Errorf("remediations = %q, want %q", got, want)
		}
	})
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

	h := &harness{t: t, cfg: cfg, scheme: scheme, c: c}
	// A maintenance long enough to stop the controller while a rung runs.
	h.broker, h.sim = testbroker.Start(t, machines, time.Second, sim.Cluster{Name: "wl", Kubeconfig: kubeconfig})
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
		return pr.SetupWithManager(mgr)
	})
	go h.playClusterManager(t.Context())
	return h
}

// on is the harness for a subtest: its failures are the subtest's.
func (h *harness) on(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

// startRemediation runs the remediation controller in a manager of its own
// and returns what stops it.
func (h *harness) startRemediation() (stop func()) {
	h.t.Helper()
	mgr, err := ctrl.NewManager(h.cfg, ctrl.Options{Scheme: h.scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		// A second instance after a restart registers the same controller name.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := index.Setup(h.t.Context(), mgr.GetFieldIndexer()); err != nil {
		h.t.Fatal(err)
	}
	workloads := remote.New(mgr.GetClient())
	if err := mgr.Add(workloads); err != nil {
		h.t.Fatal(err)
	}
	r, err := remediation.New(remediation.Options{
		Hub: mgr.GetClient(), Broker: h.broker, Clusters: workloads, Recorder: mgr.GetEventRecorder("remediation-controller"),
		NotReadyThreshold: notReadyThreshold, FaultHoldOff: faultHoldOff, Window: 10 * time.Minute, ResyncInterval: resync,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	return func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("remediation manager: %v", err)
		}
	}
}

// playClusterManager approves every Pending disruption, as the cluster
// manager does once it drained the Node (no pod runs in this test).
func (h *harness) playClusterManager(ctx context.Context) {
	for ctx.Err() == nil {
		stream, err := h.broker.WatchDisruptions(ctx, &brokerv1.WatchDisruptionsRequest{})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for {
			resp, err := stream.Recv()
			if err != nil {
				break
			}
			d := resp.GetDisruption()
			if d.GetState() != brokerv1.DisruptionState_DISRUPTION_STATE_PENDING || d.GetReason() == brokerv1.DisruptionReason_DISRUPTION_REASON_POOL_SHRINK {
				continue
			}
			// As the cluster manager does: the Node cordoned for the
			// disruption before it is approved (the pool controller deletes
			// the Node of a replaced machine only when it was).
			patch := []byte(`{"spec":{"unschedulable":true},"metadata":{"annotations":{"` +
				fleetv1alpha1.CordonedForAnnotation + `":"` + d.GetId() + `"}}}`)
			// A Node that is not there (never joined) has nothing to cordon.
			_ = h.c.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: d.GetMachine()}}, client.RawPatch(types.MergePatchType, patch))
			_, _ = h.broker.ApproveDisruption(ctx, &brokerv1.ApproveDisruptionRequest{
				Id: d.GetId(), OnBehalfOf: "cluster-manager/wl", Message: "node " + d.GetMachine() + " is drained (played by the test)",
			})
		}
	}
}

// waitHosts waits until the Pool's HostsHealthy condition has the reason
// and the message, for its generation.
func (h *harness) waitHosts(name, reason, message string) {
	h.t.Helper()
	h.waitFor(name, fleetv1alpha1.PoolHostsHealthyCondition, reason, func(m string) bool { return m == message })
}

// waitHostsMessage waits until the Pool's HostsHealthy condition has the
// reason and a message that contains part.
func (h *harness) waitHostsMessage(name, reason, part string) {
	h.t.Helper()
	h.waitFor(name, fleetv1alpha1.PoolHostsHealthyCondition, reason, func(m string) bool { return strings.Contains(m, part) })
}

// waitCondition waits until the Pool's condition of type has the reason.
func (h *harness) waitCondition(name, typ, reason string) *fleetv1alpha1.Pool {
	h.t.Helper()
	return h.waitFor(name, typ, reason, func(string) bool { return true })
}

func (h *harness) waitFor(name, typ, reason string, message func(string) bool) *fleetv1alpha1.Pool {
	h.t.Helper()
	p := &fleetv1alpha1.Pool{}
	var c *metav1.Condition
	err := wait.PollUntilContextTimeout(h.t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := h.c.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
			return false, err
		}
		c = meta.FindStatusCondition(p.Status.Conditions, typ)
		return c != nil && c.Reason == reason && message(c.Message) && c.ObservedGeneration == p.Generation, nil
	})
	if err != nil {
		h.t.Fatalf("pool %s: want %s %s: %v; have %+v", name, typ, reason, err, c)
	}
	return p
}

// passes lets the controller look at the pools for d: the time a negative
// claim ("nothing was asked for") needs, since nothing can signal it.
func (h *harness) passes(d time.Duration) {
	select {
	case <-h.t.Context().Done():
	case <-time.After(d):
	}
}

// remediations lists the pool's remediation disruptions.
func (h *harness) remediations(pool string) []string {
	h.t.Helper()
	resp, err := h.broker.ListDisruptions(h.t.Context(), &brokerv1.ListDisruptionsRequest{Pool: pool})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, d := range resp.GetDisruptions() {
		if d.GetReason() == brokerv1.DisruptionReason_DISRUPTION_REASON_REMEDIATION {
			out = append(out, d.GetMachine()+" "+strings.TrimPrefix(d.GetOperation().GetKind().String(), "OPERATION_KIND_")+
				" "+strings.TrimPrefix(d.GetState().String(), "DISRUPTION_STATE_"))
		}
	}
	return out
}

// newPool creates a Pool and waits until its Nodes are Ready and its hosts healthy.
func (h *harness) newPool(name string, capacity int32) {
	h.t.Helper()
	testutil.MustCreate(h.t, h.c, testutil.MakePool(name, "wl", capacity).Obj())
	h.waitCondition(name, fleetv1alpha1.PoolReadyCondition, fleetv1alpha1.PoolReadyReason)
	h.waitHosts(name, fleetv1alpha1.HostsHealthyReason, fmt.Sprintf("all %d machines healthy", capacity))
}

// fail plays a hardware fault of machines that fix fixes.
func (h *harness) fail(fix sim.Fix, machines ...string) {
	h.t.Helper()
	if _, err := h.sim.Fail(h.t.Context(), machines, fix); err != nil {
		h.t.Fatal(err)
	}
}

// heal clears the faults of machines.
func (h *harness) heal(machines ...string) {
	h.t.Helper()
	if _, err := h.sim.Heal(h.t.Context(), machines); err != nil {
		h.t.Fatal(err)
	}
}

// zoneMachines lists every machine of an MZ of the datacenter, in a pool or not.
func (h *harness) zoneMachines(mz int32) []string {
	h.t.Helper()
	resp, err := h.broker.ListMachines(h.t.Context(), &brokerv1.ListMachinesRequest{Datacenter: "dc1", MaintenanceZone: mz, PageSize: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	var ids []string
	for _, m := range resp.GetMachines() {
		ids = append(ids, m.GetId())
	}
	return ids
}

func names(nodes []corev1.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}

// waitRemediations waits until the pool's remediation disruptions are want
// ("machine OPERATION STATE", oldest first).
func (h *harness) waitRemediations(pool string, want ...string) {
	h.t.Helper()
	var got []string
	err := wait.PollUntilContextTimeout(h.t.Context(), 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		got = h.remediations(pool)
		return slices.Equal(got, want), nil
	})
	if err != nil {
		h.t.Fatalf("remediations of pool %s = %q, want %q", pool, got, want)
	}
}

// setReady plays the node lifecycle controller: the Node's Ready condition
// becomes status now.
func (h *harness) setReady(node *corev1.Node, status corev1.ConditionStatus) {
	h.t.Helper()
	err := wait.PollUntilContextTimeout(h.t.Context(), 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		n := &corev1.Node{}
		if err := h.c.Get(ctx, client.ObjectKeyFromObject(node), n); err != nil {
			return false, err
		}
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == corev1.NodeReady && n.Status.Conditions[i].Status != status {
				n.Status.Conditions[i].Status = status
				n.Status.Conditions[i].Reason = "PlayedByTheTest"
				n.Status.Conditions[i].LastTransitionTime = metav1.Now()
			}
		}
		err := h.c.Status().Update(ctx, n)
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		h.t.Fatalf("setting node %s Ready %s: %v", node.Name, status, err)
	}
}

func (h *harness) nodesOf(pool string) []corev1.Node {
	h.t.Helper()
	nodes := &corev1.NodeList{}
	if err := h.c.List(h.t.Context(), nodes, client.MatchingLabels{fleetv1alpha1.PoolLabel: pool}); err != nil {
		h.t.Fatal(err)
	}
	slices.SortFunc(nodes.Items, func(a, b corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	return nodes.Items
}

// waitEvent waits for an event about the Pool with the reason.
func (h *harness) waitEvent(pool, reason string) {
	h.t.Helper()
	err := wait.PollUntilContextTimeout(h.t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		events := &corev1.EventList{}
		if err := h.c.List(ctx, events); err != nil {
			return false, err
		}
		return slices.ContainsFunc(events.Items, func(e corev1.Event) bool {
			return e.InvolvedObject.Name == pool && e.Reason == reason
		}), nil
	})
	if err != nil {
		h.t.Errorf("no %s event about pool %s: %v", reason, pool, err)
	}
}
