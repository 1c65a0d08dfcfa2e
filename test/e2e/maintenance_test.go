package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

const maintPool = `
apiVersion: fleet.strata.dev/v1alpha1
kind: Pool
metadata: {name: maint}
spec:
  cluster: workload-1
  capacity: 200
  nodeProfile: general
`

// shopWorkload is 100 replicas on pool maint behind a PDB that allows 10% of
// them to be unavailable.
const shopWorkload = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, namespace: default}
spec:
  replicas: 100
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      nodeSelector: {fleet.strata.dev/pool: maint}
      terminationGracePeriodSeconds: 0
      containers: [{name: shop, image: registry.example/shop:1}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: shop, namespace: default}
spec:
  maxUnavailable: 10%
  selector: {matchLabels: {app: shop}}
`

const nodeConfigRollout = `
apiVersion: fleet.strata.dev/v1alpha1
kind: MaintenanceRollout
metadata: {name: general-v2}
spec:
  pools: [maint]
  nodeConfig: general-v2
`

// heldPod runs on one Node under a PDB that allows no disruption.
const heldPod = `
apiVersion: v1
kind: Pod
metadata: {name: hold, namespace: default, labels: {app: hold}}
spec:
  nodeName: %s
  terminationGracePeriodSeconds: 0
  containers: [{name: hold, image: registry.example/hold:1}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: hold, namespace: default}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: hold}}
`

// failingRollout starts with MZ 5, where the test breaks a machine.
const failingRollout = `
apiVersion: fleet.strata.dev/v1alpha1
kind: MaintenanceRollout
metadata: {name: general-v3}
spec:
  pools: [maint]
  nodeConfig: general-v3
  zoneOrder: [5]
`

// controlPool is a second small pool: its machine's fault, injected once
// the zone is down, is the signal that remediation passed its hold-off.
const controlPool = `
apiVersion: fleet.strata.dev/v1alpha1
kind: Pool
metadata: {name: control}
spec:
  cluster: workload-1
  capacity: 3
  nodeProfile: general
`

// shopMinimum is the fewest ready shop pods the PDB allows: 100 - 10%.
const shopMinimum = 90

// TestMaintenance runs the disruption protocol end to end in a local
// datacenter: a MaintenanceRollout of 200 Nodes under a PDB, zone by zone,
// surviving a kill of the strata process; a hand-cordoned Node that stays
// cordoned; a failed machine rebooted, reimaged and replaced; a failed zone
// that remediation leaves alone.
func TestMaintenance(t *testing.T) {
	t.Parallel()
	waitForSlot(t)
	bin := binDir(t)
	home := filepath.Join(t.TempDir(), "home")
	upArgs := []string{"--workload-clusters", "1", "--pool-capacity", "0", "--maintenance-duration", "1s",
		"--not-ready-threshold", "10s", "--fault-hold-off", "3s"}
	up := startUp(t, bin, home, upArgs...)
	hub := localdc.KubeconfigPath(home, localdc.HubName)
	wl := localdc.KubeconfigPath(home, localdc.WorkloadClusterName(1))
	kubectl := func(kubeconfig string, args ...string) string {
		return run(t, bin, "kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	}
	strata := func(args ...string) string {
		return run(t, bin, "strata", append([]string{"--home", home}, args...)...)
	}
	cs := clientset(t, wl)
	hubc := hubClient(t, hub)

	runKubectlApply(t, bin, hub, maintPool)
	waitPool(t, bin, hub, "maint", "Ready", 200)
	runKubectlApply(t, bin, wl, shopWorkload)
	waitRunning(t, wl, "app=shop", 100, 3*time.Minute)
	nodes := poolNodes(t, cs, "maint")
	handCordoned := nodes[len(nodes)/2].Name
	kubectl(wl, "cordon", handCordoned)

	// The rollout runs while strata is killed and started again; what it did
	// is checked below.
	sampler := sampleReady(t, cs, "app=shop")
	runKubectlApply(t, bin, hub, nodeConfigRollout)
	// A person follows the rollout in the console, without reloading.
	con := openConsole(t, home)
	con.open("/rollouts/general-v2")
	// The Pool's owner states the node config; the rollout never writes it.
	poolGen := poolGeneration(t, hubc, "maint")
	kubectl(hub, "patch", "pool", "maint", "--type", "merge", "-p", `{"spec":{"nodeConfig":"general-v2"}}`)
	waitRollout(t, hubc, "general-v2", 8*time.Minute, func(ro *fleetv1alpha1.MaintenanceRollout) bool {
		return completeZones(ro) >= 5
	})
	con.waitLive("five zones of the rollout done", time.Minute, func(text string) bool {
		n, ok := rolloutUpdated(text)
		return ok && n >= 50
	})
	con.screenshot("rollout")
	up.kill(t)
	startUp(t, bin, home, upArgs...)
	ro := waitRollout(t, hubc, "general-v2", 12*time.Minute, func(ro *fleetv1alpha1.MaintenanceRollout) bool {
		return meta.IsStatusConditionTrue(ro.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition)
	})
	minimum := sampler.stop()

	t.Run("the rollout went zone by zone, through a restart, within the PDB", func(t *testing.T) {
		if minimum < shopMinimum {
			t.Errorf("ready shop pods fell to %d during the rollout; the PDB allows no fewer than %d", minimum, shopMinimum)
		} else {
			t.Logf("fewest ready shop pods during the rollout: %d (PDB minimum %d), %d samples", minimum, shopMinimum, sampler.samples)
		}
		if ro.Status.Updated != 200 || ro.Status.Machines != 200 || len(ro.Status.Zones) != 20 {
			t.Errorf("rollout status: %d of %d updated in %d zones, want 200 of 200 in 20", ro.Status.Updated, ro.Status.Machines, len(ro.Status.Zones))
		}

		// Every machine and Node ends on the new version.
		for _, m := range brokerMachines(t, bin, home, "maint") {
			if m.GetSoftware().GetNodeConfig() != "general-v2" {
				t.Errorf("machine %s runs node config %q, want general-v2", m.GetId(), m.GetSoftware().GetNodeConfig())
			}
		}
		// The cluster manager uncordons each Node at its pass after the
		// Node's disruption completed, which may come after the rollout's
		// Complete (after strata's restart above, the first pass is later):
		// the Nodes are read once no Node but the hand-cordoned one is
		// cordoned, or after two minutes, and judged below either way.
		var nodes []corev1.Node
		_ = wait.PollUntilContextTimeout(t.Context(), time.Second, 2*time.Minute, true, func(context.Context) (bool, error) {
			nodes = poolNodes(t, cs, "maint")
			return !slices.ContainsFunc(nodes, func(n corev1.Node) bool {
				_, marked := n.Annotations[fleetv1alpha1.CordonedForAnnotation]
				return marked || n.Spec.Unschedulable != (n.Name == handCordoned)
			}), nil
		})
		for _, n := range nodes {
			if n.Labels[fleetv1alpha1.NodeConfigLabel] != "general-v2" {
				t.Errorf("node %s has node config %q, want general-v2", n.Name, n.Labels[fleetv1alpha1.NodeConfigLabel])
			}
			// No Node is left cordoned, but the one a person cordoned.
			if n.Spec.Unschedulable != (n.Name == handCordoned) {
				t.Errorf("node %s unschedulable = %t after the rollout", n.Name, n.Spec.Unschedulable)
			}
			if _, ok := n.Annotations[fleetv1alpha1.CordonedForAnnotation]; ok {
				t.Errorf("node %s still carries %s", n.Name, fleetv1alpha1.CordonedForAnnotation)
			}
		}

		// One disruption per machine, zone after zone.
		ours := disruptionsBy(t, bin, home, "maintenance/general-v2")
		perMachine := map[string]int{}
		zoneSpan := map[int32][2]time.Time{}
		for _, d := range ours {
			perMachine[d.GetMachine()]++
			if d.GetState() != brokerv1.DisruptionState_DISRUPTION_STATE_COMPLETED {
				t.Errorf("disruption %s of machine %s is %s, want completed", d.GetId(), d.GetMachine(), d.GetState())
			}
			span, ok := zoneSpan[d.GetMaintenanceZone()]
			if !ok || d.GetCreateTime().AsTime().Before(span[0]) {
				span[0] = d.GetCreateTime().AsTime()
			}
			if d.GetUpdateTime().AsTime().After(span[1]) {
				span[1] = d.GetUpdateTime().AsTime()
			}
			zoneSpan[d.GetMaintenanceZone()] = span
		}
		// A zone ends when its last disruption turned Completed: where the
		// update times say otherwise, a step recorded later (a cluster
		// manager restarted mid-rollout records its last steps late), the
		// history says when.
		for mz := int32(1); mz < 20; mz++ {
			next := zoneSpan[mz+1][0]
			if !next.Before(zoneSpan[mz][1]) {
				continue
			}
			span := zoneSpan[mz]
			span[1] = time.Time{}
			for _, d := range ours {
				if d.GetMaintenanceZone() != mz {
					continue
				}
				end := d.GetUpdateTime().AsTime()
				if end.After(next) {
					end = completedAt(t, bin, home, d)
				}
				if end.After(span[1]) {
					span[1] = end
				}
			}
			zoneSpan[mz] = span
		}
		if len(perMachine) != 200 || len(ours) != 200 {
			t.Errorf("%d disruptions for %d machines, want one for each of 200", len(ours), len(perMachine))
		}
		for mz := int32(1); mz < 20; mz++ {
			if zoneSpan[mz+1][0].Before(zoneSpan[mz][1]) {
				t.Errorf("MZ %d started (%s) before MZ %d ended (%s)", mz+1, zoneSpan[mz+1][0], mz, zoneSpan[mz][1])
			}
		}

		// The record shows each step with actor and reason.
		record := strata("disruptions", "get", ours[0].GetId())
		for _, want := range []string{"maintenance/general-v2", "cluster-manager/workload-1", "broker", "cordon", "drain", "uncordon", "planned-upgrade"} {
			if !strings.Contains(strings.ToLower(record), want) {
				t.Errorf("disruption record lacks %q:\n%s", want, record)
			}
		}
		if out := strata("rollouts"); !strings.Contains(out, "general-v2") || !strings.Contains(out, "200/200") || !strings.Contains(out, "Complete") {
			t.Errorf("strata rollouts:\n%s", out)
		}
		// Only the owner's patch changed the Pool's spec, and nobody the rollout's.
		if gen := poolGeneration(t, hubc, "maint"); gen != poolGen+1 {
			t.Errorf("pool maint generation %d, want %d: a controller wrote its spec", gen, poolGen+1)
		}
		if ro.Generation != 1 {
			t.Errorf("rollout general-v2 generation %d, want 1: a controller wrote its spec", ro.Generation)
		}
	})

	t.Run("the console shows the fleet as it is, after the kill", func(t *testing.T) { testConsoleAfterMaintenance(t, bin, home, con, cs) })

	// Its person uncordons it, so the Pool can be Ready again.
	kubectl(wl, "uncordon", handCordoned)

	t.Run("a failed machine is rebooted, reimaged, then replaced", func(t *testing.T) {
		victim := poolNodes(t, cs, "maint")[0].Name
		strata("sim", "fail", "machine", victim, "--until", "never")
		var ladder []string
		err := wait.PollUntilContextTimeout(t.Context(), time.Second, 5*time.Minute, true, func(context.Context) (bool, error) {
			ladder = ladder[:0]
			for _, d := range disruptionsOf(t, bin, home, victim) {
				if d.GetReason() == brokerv1.DisruptionReason_DISRUPTION_REASON_REMEDIATION {
					ladder = append(ladder, fmt.Sprintf("%s:%s", d.GetOperation().GetKind(), d.GetState()))
				}
			}
			return slices.Contains(ladder, "OPERATION_KIND_REPLACE:DISRUPTION_STATE_COMPLETED"), nil
		})
		want := []string{
			"OPERATION_KIND_REBOOT:DISRUPTION_STATE_FAILED", "OPERATION_KIND_REIMAGE:DISRUPTION_STATE_FAILED",
			"OPERATION_KIND_REPLACE:DISRUPTION_STATE_COMPLETED",
		}
		if err != nil || !slices.Equal(ladder, want) {
			t.Fatalf("remediation of %s: %v, want %v (%v)", victim, ladder, want, err)
		}
		waitPool(t, bin, hub, "maint", "Ready", 200)
		for _, m := range brokerMachines(t, bin, home, "maint") {
			if m.GetId() == victim {
				t.Errorf("machine %s is still in pool maint after its replacement", victim)
			}
		}
		strata("sim", "heal", "machine", victim)
	})

	t.Run("a machine that fails its maintenance halts the rollout until a person tolerates it or it is replaced", func(t *testing.T) {
		// A pod under a PDB that allows nothing holds the victim's drain, so
		// the fault lands while its disruption is open.
		var victim string
		for _, n := range poolNodes(t, cs, "maint") {
			if n.Labels[fleetv1alpha1.MaintenanceZoneLabel] == "5" && !n.Spec.Unschedulable {
				victim = n.Name
				break
			}
		}
		runKubectlApply(t, bin, wl, fmt.Sprintf(heldPod, victim))
		waitRunning(t, wl, "app=hold", 1, 2*time.Minute)
		runKubectlApply(t, bin, hub, failingRollout)
		kubectl(hub, "patch", "pool", "maint", "--type", "merge", "-p", `{"spec":{"nodeConfig":"general-v3"}}`)
		err := wait.PollUntilContextTimeout(t.Context(), time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
			n, err := cs.CoreV1().Nodes().Get(ctx, victim, metav1.GetOptions{})
			return err == nil && n.Annotations[fleetv1alpha1.DrainBlockedAnnotation] != "", nil
		})
		if err != nil {
			t.Fatalf("the drain of %s was not held by the PDB: %v", victim, err)
		}
		strata("sim", "fail", "machine", victim, "--until", "never")
		kubectl(wl, "delete", "pdb", "hold")

		ro := waitRollout(t, hubc, "general-v3", 5*time.Minute, func(ro *fleetv1alpha1.MaintenanceRollout) bool {
			c := meta.FindStatusCondition(ro.Status.Conditions, fleetv1alpha1.RolloutPausedCondition)
			return c != nil && c.Status == metav1.ConditionTrue && c.Reason == fleetv1alpha1.RolloutMachineFailedReason
		})
		if ro.Spec.Paused || ro.Generation != 1 {
			t.Errorf("rollout general-v3: spec.paused %t, generation %d: it halted by writing its spec", ro.Spec.Paused, ro.Generation)
		}
		if len(ro.Status.Failures) != 1 || ro.Status.Failures[0].Machine != victim {
			t.Errorf("rollout failures = %+v, want machine %s", ro.Status.Failures, victim)
		}
		// The older rollout pulls nothing back and does not hold this one.
		old := &fleetv1alpha1.MaintenanceRollout{}
		if err := hubc.Get(t.Context(), client.ObjectKey{Name: "general-v2"}, old); err != nil {
			t.Fatal(err)
		}
		if c := meta.FindStatusCondition(old.Status.Conditions, fleetv1alpha1.RolloutProgressingCondition); c == nil ||
			c.Reason != fleetv1alpha1.RolloutSupersededReason {
			t.Errorf("rollout general-v2 Progressing = %+v, want Superseded", c)
		}
		// Remediation replaces the victim, and the halt lifts by itself once
		// it has left the pool; until then a person tolerates it.
		out := strata("rollouts", "resume", "general-v3")
		switch {
		case strings.Contains(out, "tolerates the machine that failed its maintenance ("+victim+")"):
			if err := hubc.Get(t.Context(), client.ObjectKey{Name: "general-v3"}, ro); err != nil || ro.Spec.ToleratedFailures != 1 {
				t.Errorf("spec.toleratedFailures after resume = %d (%v), want 1", ro.Spec.ToleratedFailures, err)
			}
		case strings.Contains(out, "is not paused"):
			t.Logf("the halt lifted before resume: machine %s was replaced", victim)
		default:
			t.Errorf("strata rollouts resume said:\n%s", out)
		}
		waitRollout(t, hubc, "general-v3", 8*time.Minute, func(ro *fleetv1alpha1.MaintenanceRollout) bool {
			return meta.IsStatusConditionTrue(ro.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition)
		})
		strata("sim", "heal", "machine", victim)
	})

	t.Run("a failed zone is a fleet event: no replacement, and a condition says why", func(t *testing.T) {
		runKubectlApply(t, bin, hub, controlPool)
		waitPool(t, bin, hub, "control", "Ready", 3)
		con.open("/map?dc=dc1")
		unhealthy := `section[aria-labelledby="zone-7"] a.cell.s-unhealthy`
		if n := con.count(unhealthy); n != 0 {
			t.Errorf("the fleet map shows %d unhealthy machines in MZ 7 before it failed", n)
		}
		strata("sim", "fail", "zone", "dc1/7")
		con.waitLive("MZ 7's machines unhealthy on the fleet map", 2*time.Minute, func(string) bool { return con.count(unhealthy) >= 10 })
		con.screenshot("map")
		var cond *metav1.Condition
		err := wait.PollUntilContextTimeout(t.Context(), time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
			pool := &fleetv1alpha1.Pool{}
			if err := hubc.Get(ctx, client.ObjectKey{Name: "maint"}, pool); err != nil {
				return false, err
			}
			cond = meta.FindStatusCondition(pool.Status.Conditions, "HostsHealthy")
			return cond != nil && cond.Reason == "RemediationHalted", nil
		})
		if err != nil {
			t.Fatalf("pool maint condition HostsHealthy = %+v, want RemediationHalted (%v)", cond, err)
		}
		if !strings.Contains(cond.Message, "7") {
			t.Errorf("the guard's message does not name the zone: %s", cond.Message)
		}
		t.Logf("guard: %s", cond.Message)
		// A machine of another pool fails after the zone: once remediation
		// reboots it, the zone's machines were past the same hold-off for
		// longer, and would have got their rungs had the guard not held.
		var control string
		for _, m := range brokerMachines(t, bin, home, "control") {
			if m.GetMaintenanceZone() != 7 {
				control = m.GetId()
				break
			}
		}
		if control == "" {
			t.Fatal("every machine of pool control is in MZ 7")
		}
		strata("sim", "fail", "machine", control, "--until", "reboot")
		err = wait.PollUntilContextTimeout(t.Context(), time.Second, 3*time.Minute, true, func(context.Context) (bool, error) {
			return slices.ContainsFunc(disruptionsOf(t, bin, home, control), func(d *brokerv1.Disruption) bool {
				return d.GetReason() == brokerv1.DisruptionReason_DISRUPTION_REASON_REMEDIATION &&
					d.GetState() == brokerv1.DisruptionState_DISRUPTION_STATE_COMPLETED
			}), nil
		})
		if err != nil {
			t.Fatalf("machine %s of pool control was not rebooted by remediation: %v", control, err)
		}
		for _, m := range brokerMachines(t, bin, home, "maint") {
			if m.GetMaintenanceZone() != 7 {
				continue
			}
			for _, d := range disruptionsOf(t, bin, home, m.GetId()) {
				if d.GetReason() == brokerv1.DisruptionReason_DISRUPTION_REASON_REMEDIATION {
					t.Errorf("machine %s of the failed zone got remediation disruption %s (%s)", m.GetId(), d.GetId(), d.GetOperation().GetKind())
				}
			}
		}
		strata("sim", "heal", "zone", "dc1/7")
	})
}

// poolGeneration is the Pool's metadata.generation: it moves only when
// someone writes its spec.
func poolGeneration(t testing.TB, c client.Client, name string) int64 {
	t.Helper()
	p := &fleetv1alpha1.Pool{}
	if err := c.Get(t.Context(), client.ObjectKey{Name: name}, p); err != nil {
		t.Fatal(err)
	}
	return p.Generation
}

// readySampler counts the ready pods of a selector until stopped.
type readySampler struct {
	stopCh  chan struct{}
	done    sync.WaitGroup
	minimum int
	samples int
}

// sampleReady samples, every 200 ms, the pods a PDB counts as healthy:
// Ready and not being deleted.
func sampleReady(t *testing.T, cs kubernetes.Interface, selector string) *readySampler {
	return sampleReadyIn(t, cs, "default", selector)
}

// sampleReadyIn is sampleReady in a namespace.
func sampleReadyIn(t *testing.T, cs kubernetes.Interface, namespace, selector string) *readySampler {
	s := &readySampler{stopCh: make(chan struct{}), minimum: 1 << 30}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stopCh:
				return
			case <-tick.C:
			}
			pods, err := cs.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				continue // the API server restarts with strata
			}
			ready := 0
			for i := range pods.Items {
				if p := &pods.Items[i]; p.DeletionTimestamp == nil && podReady(p) {
					ready++
				}
			}
			s.minimum = min(s.minimum, ready)
			s.samples++
		}
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *readySampler) stop() int {
	select {
	case <-s.stopCh:
	default:
		close(s.stopCh)
	}
	s.done.Wait()
	return s.minimum
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func hubClient(t testing.TB, kubeconfig string) client.Client {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := fleetv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitRollout waits until done says yes, and returns the rollout then.
func waitRollout(t testing.TB, c client.Client, name string, timeout time.Duration,
	done func(*fleetv1alpha1.MaintenanceRollout) bool) *fleetv1alpha1.MaintenanceRollout {
	t.Helper()
	ro := &fleetv1alpha1.MaintenanceRollout{}
	err := wait.PollUntilContextTimeout(t.Context(), time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: name}, ro); err != nil {
			return false, nil //nolint:nilerr // the hub restarts with strata
		}
		return done(ro), nil
	})
	if err != nil {
		t.Fatalf("rollout %s: %v; status: %d of %d updated, zone %d, conditions %+v", name, err,
			ro.Status.Updated, ro.Status.Machines, ro.Status.CurrentZone, ro.Status.Conditions)
	}
	return ro
}

func completeZones(ro *fleetv1alpha1.MaintenanceRollout) int {
	n := 0
	for _, z := range ro.Status.Zones {
		if z.Phase == fleetv1alpha1.RolloutZoneComplete {
			n++
		}
	}
	return n
}

// brokerJSON runs a strata command with -o json and decodes its answer.
func brokerJSON(t testing.TB, bin, home string, msg proto.Message, args ...string) {
	t.Helper()
	out := run(t, bin, "strata", append(append([]string{"--home", home}, args...), "-o", "json")...)
	if err := protojson.Unmarshal([]byte(out), msg); err != nil {
		t.Fatalf("strata %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func brokerMachines(t testing.TB, bin, home, pool string) []*brokerv1.Machine {
	resp := &brokerv1.ListMachinesResponse{}
	brokerJSON(t, bin, home, resp, "machines", "list", "--pool", pool, "--all")
	return resp.GetMachines()
}

// completedAt is when d turned Completed, from its history.
func completedAt(t testing.TB, bin, home string, d *brokerv1.Disruption) time.Time {
	t.Helper()
	if d.GetState() != brokerv1.DisruptionState_DISRUPTION_STATE_COMPLETED {
		return d.GetUpdateTime().AsTime()
	}
	full := &brokerv1.Disruption{}
	brokerJSON(t, bin, home, full, "disruptions", "get", d.GetId())
	for _, tr := range full.GetHistory() {
		if tr.GetTo() == brokerv1.DisruptionState_DISRUPTION_STATE_COMPLETED && tr.GetFrom() != tr.GetTo() {
			return tr.GetTime().AsTime()
		}
	}
	t.Errorf("disruption %s is completed but its history has no such step", d.GetId())
	return d.GetUpdateTime().AsTime()
}

func disruptionsOf(t testing.TB, bin, home, machine string) []*brokerv1.Disruption {
	resp := &brokerv1.ListDisruptionsResponse{}
	brokerJSON(t, bin, home, resp, "disruptions", "list", "--machine", machine)
	return resp.GetDisruptions()
}

// disruptionsBy lists the disruptions asked for on behalf of actor (a
// rollout's signature, beside the caller's identity), oldest first.
func disruptionsBy(t testing.TB, bin, home, actor string) []*brokerv1.Disruption {
	resp := &brokerv1.ListDisruptionsResponse{}
	brokerJSON(t, bin, home, resp, "disruptions", "list")
	var out []*brokerv1.Disruption
	for _, d := range resp.GetDisruptions() {
		if d.GetOnBehalfOf() == actor {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b *brokerv1.Disruption) int {
		return a.GetCreateTime().AsTime().Compare(b.GetCreateTime().AsTime())
	})
	return out
}
