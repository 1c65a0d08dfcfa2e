package sim

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/metal/provision"
	simv1 "github.com/strata-dev/strata/proto/strata/sim/v1"
)

// TestMaintenance runs the maintenance and fault tests against one API
// server, a machine each.
func TestMaintenance(t *testing.T) {
	c := startCluster(t)
	for name, fn := range map[string]func(*testing.T, *testCluster){
		"reimage registers the new node config": testReimage,
		"reboot leaves the Node":                testReboot,
		"a fault and what fixes it":             testFaultAndFix,
		"faults are kept across a restart":      testFaultsKept,
	} {
		t.Run(name, func(t *testing.T) { fn(t, c) })
	}
}

// joined joins machine id to the cluster with a startup taint and returns
// the provisioner, its clock and the target. The provisioner has its own
// credential of the cluster, to play faults with.
func joined(t *testing.T, id string, c *testCluster, o Options) (*Provisioner, *clocktesting.FakeClock, provision.Machine, provision.Target) {
	t.Helper()
	clock := clocktesting.NewFakeClock(t0)
	o.Clock, o.JoinDuration, o.Clusters = clock, time.Second, c.own()
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	m := gpu
	m.ID = id
	target := c.target()
	target.NodeTaints = []corev1.Taint{startup}
	if err := run(t, clock, time.Second, func() error { return p.Join(t.Context(), m, target) }); err != nil {
		t.Fatalf("Join: %v", err)
	}
	return p, clock, m, target
}

func getNode(t *testing.T, kube kubernetes.Interface, id string) *corev1.Node {
	t.Helper()
	node, err := kube.CoreV1().Nodes().Get(t.Context(), id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return node
}

func testReimage(t *testing.T, c *testCluster) {
	kube := c.Kube
	p, clock, m, target := joined(t, "dc1-r002-u01", c, Options{MaintenanceDuration: 5 * time.Second})
	// The cluster manager cordoned the Node and the pool controller
	// removed the startup taint.
	nodes := kube.CoreV1().Nodes()
	node := getNode(t, kube, m.ID)
	node.Spec.Unschedulable = true
	node.Spec.Taints = nil
	if _, err := nodes.Update(t.Context(), node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	op := provision.Operation{Kind: provision.Reimage, Software: inventory.Software{OSImage: "strata-os-2026.12", Kernel: "6.13.2", NodeConfig: "kubelet-1.38-gpu"}}
	if err := run(t, clock, 5*time.Second, func() error { return p.Maintain(t.Context(), m, op, target) }); err != nil {
		t.Fatalf("Maintain: %v", err)
	}
	node = getNode(t, kube, m.ID)
	if got := node.Labels[fleetv1alpha1.NodeConfigLabel]; got != "kubelet-1.38-gpu" {
		t.Errorf("node config label after the reimage = %q", got)
	}
	if info := node.Status.NodeInfo; info.OSImage != "strata-os-2026.12" || info.KernelVersion != "6.13.2" {
		t.Errorf("node info after the reimage = %s, %s", info.OSImage, info.KernelVersion)
	}
	if !node.Spec.Unschedulable || len(withoutNotReady(node.Spec.Taints)) != 0 {
		t.Errorf("reimaged Node: unschedulable %t, taints %v; want the cordon kept and no startup taint again", node.Spec.Unschedulable, node.Spec.Taints)
	}
	if ready := readyCondition(node); ready == nil || !ready.LastHeartbeatTime.Time.Equal(t0.Add(6*time.Second)) {
		t.Errorf("Ready after the reimage = %+v, want a heartbeat at its end", ready)
	}
}

func testReboot(t *testing.T, c *testCluster) {
	kube := c.Kube
	p, _, m, target := joined(t, "dc1-r002-u02", c, Options{}) // instant maintenance
	before := getNode(t, kube, m.ID)
	op := provision.Operation{Kind: provision.Reboot, Software: inventory.Software{OSImage: m.OSImage, Kernel: m.Kernel, NodeConfig: m.NodeConfig}}
	if err := p.Maintain(t.Context(), m, op, target); err != nil {
		t.Fatalf("Maintain with no duration: %v", err)
	}
	if after := getNode(t, kube, m.ID); after.ResourceVersion != before.ResourceVersion {
		t.Errorf("a reboot wrote the Node")
	}
	err := p.Maintain(t.Context(), m, provision.Operation{Kind: "replace"}, target)
	if err == nil || errors.Is(err, provision.ErrMachineFault) {
		t.Errorf("Maintain(replace) = %v, want an error that is not a machine fault", err)
	}
}

// faultOf is what a Node shows of a fault: its label and Ready condition.
type nodeFault struct {
	Label         string
	Ready, Reason string
}

func faultOf(t *testing.T, kube kubernetes.Interface, id string) nodeFault {
	t.Helper()
	node := getNode(t, kube, id)
	f := nodeFault{Label: node.Labels[FaultLabel]}
	if ready := readyCondition(node); ready != nil {
		f.Ready, f.Reason = string(ready.Status), ready.Reason
	}
	return f
}

func testFaultAndFix(t *testing.T, c *testCluster) {
	kube := c.Kube
	p, clock, m, target := joined(t, "dc1-r002-u03", c, Options{MaintenanceDuration: time.Second})
	faults, err := p.Fail(t.Context(), []string{m.ID}, FixReimage)
	if err != nil {
		t.Fatal(err)
	}
	if len(faults) != 1 || !faults[0].Since.Equal(t0.Add(time.Second)) {
		t.Errorf("Fail = %+v", faults)
	}
	select {
	case <-p.FaultsChanged():
	default:
		t.Error("Fail did not say the faults changed")
	}
	if diff := cmp.Diff(nodeFault{"reimage", "False", FaultReason}, faultOf(t, kube, m.ID)); diff != "" {
		t.Errorf("Node of the faulted machine (-want +got):\n%s", diff)
	}
	got, err := p.Faults(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{m.ID: "simulated hardware fault: only a reimage fixes it"}, got); diff != "" {
		t.Errorf("Faults (-want +got):\n%s", diff)
	}

	// kwok heart-beats once more; the resync (Run's, every faultResync)
	// puts the fault back.
	node := getNode(t, kube, m.ID)
	node.Status.Conditions = conditions(t0)
	if _, err := kube.CoreV1().Nodes().UpdateStatus(t.Context(), node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p.reconcileNodes(t.Context(), []string{m.ID})
	if diff := cmp.Diff(nodeFault{"reimage", "False", FaultReason}, faultOf(t, kube, m.ID)); diff != "" {
		t.Errorf("Node after a heartbeat and a resync (-want +got):\n%s", diff)
	}

	reboot := provision.Operation{Kind: provision.Reboot, Software: inventory.Software{NodeConfig: m.NodeConfig}}
	err = run(t, clock, time.Second, func() error { return p.Maintain(t.Context(), m, reboot, target) })
	if !errors.Is(err, provision.ErrMachineFault) || !strings.Contains(err.Error(), "did not come back from the reboot") {
		t.Errorf("reboot of a machine only a reimage fixes: %v, want a machine fault", err)
	}
	if err := run(t, clock, time.Second, func() error { return p.Join(t.Context(), m, target) }); err == nil || errors.Is(err, provision.ErrMachineFault) {
		t.Errorf("Join of a faulted machine = %v, want a (transient) error", err)
	}
	reimage := provision.Operation{Kind: provision.Reimage, Software: inventory.Software{OSImage: m.OSImage, Kernel: m.Kernel, NodeConfig: "kubelet-1.38-gpu"}}
	if err := run(t, clock, time.Second, func() error { return p.Maintain(t.Context(), m, reimage, target) }); err != nil {
		t.Fatalf("reimage that fixes the fault: %v", err)
	}
	if diff := cmp.Diff(nodeFault{"", "True", "KubeletReady"}, faultOf(t, kube, m.ID)); diff != "" {
		t.Errorf("Node after the fix (-want +got):\n%s", diff)
	}
	if fs := p.ListFaults(); len(fs) != 0 {
		t.Errorf("faults after the fix = %+v", fs)
	}

	// Never: no operation fixes it; Heal does.
	if _, err := p.Fail(t.Context(), []string{m.ID}, FixNever); err != nil {
		t.Fatal(err)
	}
	if err := run(t, clock, time.Second, func() error { return p.Maintain(t.Context(), m, reimage, target) }); !errors.Is(err, provision.ErrMachineFault) {
		t.Errorf("reimage of a machine nothing fixes: %v, want a machine fault", err)
	}
	healed, err := p.Heal(t.Context(), []string{m.ID, "dc9-not-faulted"})
	if err != nil || !cmp.Equal(healed, []string{m.ID}) {
		t.Errorf("Heal = %v, %v; want just %s", healed, err, m.ID)
	}
	if diff := cmp.Diff(nodeFault{"", "True", "KubeletReady"}, faultOf(t, kube, m.ID)); diff != "" {
		t.Errorf("Node after the heal (-want +got):\n%s", diff)
	}
	if _, err := p.Fail(t.Context(), []string{m.ID}, "sometimes"); err == nil {
		t.Error("Fail with an unknown fix succeeded")
	}
}

// testFaultsKept: a provisioner started on the faults file of a previous
// one has its faults, and finds the Nodes in the clusters it is given.
func testFaultsKept(t *testing.T, c *testCluster) {
	kube := c.Kube
	file := filepath.Join(t.TempDir(), "faults.json")
	p, _, m, _ := joined(t, "dc1-r002-u04", c, Options{FaultsFile: file})
	// standby is another broker replica's provisioner, started before the
	// fault: it learns it when it reloads the file (as it takes over).
	standby, err := New(Options{FaultsFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Fail(t.Context(), []string{m.ID}, FixReboot); err != nil {
		t.Fatal(err)
	}
	if err := standby.StartTerm(); err != nil {
		t.Fatal(err)
	}
	if fs := standby.ListFaults(); len(fs) != 1 || fs[0].Machine != m.ID {
		t.Fatalf("faults of a replica after StartTerm = %+v, want the fault of %s", fs, m.ID)
	}
	again, err := New(Options{FaultsFile: file, Clusters: c.own()})
	if err != nil {
		t.Fatal(err)
	}
	if fs := again.ListFaults(); len(fs) != 1 || fs[0].Machine != m.ID || fs[0].FixedBy != FixReboot || !fs[0].Since.Equal(t0.Add(time.Second)) {
		t.Fatalf("faults after a restart = %+v", fs)
	}
	healed, err := again.Heal(t.Context(), []string{m.ID})
	if err != nil || len(healed) != 1 {
		t.Fatalf("Heal after a restart = %v, %v", healed, err)
	}
	if diff := cmp.Diff(nodeFault{"", "True", "KubeletReady"}, faultOf(t, kube, m.ID)); diff != "" {
		t.Errorf("Node healed by a provisioner that never joined it (-want +got):\n%s", diff)
	}
	if err := p.StartTerm(); err != nil {
		t.Fatal(err)
	}
	if fs := p.ListFaults(); len(fs) != 0 {
		t.Errorf("faults of the first provisioner after another healed and it reloaded = %+v, want none", fs)
	}
	third, err := New(Options{FaultsFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if fs := third.ListFaults(); len(fs) != 0 {
		t.Errorf("faults after heal and restart = %+v", fs)
	}
}

func TestService(t *testing.T) {
	store, err := inventory.Open(t.Context(), filepath.Join(t.TempDir(), "inventory.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if _, err := inventory.Seed(t.Context(), store, inventory.GenerateOptions{Seed: 3, Machines: 200}); err != nil {
		t.Fatal(err)
	}
	var zone7 []string
	if err := store.InTx(t.Context(), func(ctx context.Context, tx inventory.Tx) error {
		ms, err := tx.ListPlacements(ctx, inventory.MachineFilter{MaintenanceZone: 7})
		for _, m := range ms {
			zone7 = append(zone7, m.ID)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewService(p, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	bad := []struct {
		name     string
		call     func() error
		code     codes.Code
		contains string
	}{
		{"no machines", func() error {
			_, err := s.FailMachines(ctx, &simv1.FailMachinesRequest{FixedBy: simv1.FaultFix_FAULT_FIX_NEVER})
			return err
		},
			codes.InvalidArgument, "machines is required"},
		{"no fix", func() error {
			_, err := s.FailMachines(ctx, &simv1.FailMachinesRequest{Machines: zone7[:1]})
			return err
		},
			codes.InvalidArgument, "fixed_by is required"},
		{"unknown machine", func() error {
			_, err := s.FailMachines(ctx, &simv1.FailMachinesRequest{Machines: []string{"dc1-r999-u99"}, FixedBy: simv1.FaultFix_FAULT_FIX_NEVER})
			return err
		}, codes.NotFound, `machine "dc1-r999-u99" does not exist`},
		{"unknown datacenter", func() error {
			_, err := s.FailZone(ctx, &simv1.FailZoneRequest{Datacenter: "dc9", MaintenanceZone: 1, FixedBy: simv1.FaultFix_FAULT_FIX_NEVER})
			return err
		}, codes.NotFound, `datacenter "dc9" does not exist`},
		{"zone out of range", func() error {
			_, err := s.FailZone(ctx, &simv1.FailZoneRequest{Datacenter: "dc1", MaintenanceZone: 21, FixedBy: simv1.FaultFix_FAULT_FIX_NEVER})
			return err
		}, codes.InvalidArgument, "maintenance_zone 21 is not one of datacenter dc1's: 1..20"},
		{"negative zone", func() error {
			_, err := s.FailZone(ctx, &simv1.FailZoneRequest{Datacenter: "dc1", MaintenanceZone: -1, FixedBy: simv1.FaultFix_FAULT_FIX_NEVER})
			return err
		}, codes.InvalidArgument, "maintenance_zone -1 is not one of datacenter dc1's: 1..20"},
		{"heal nothing said", func() error { _, err := s.Heal(ctx, &simv1.HealRequest{}); return err },
			codes.InvalidArgument, "give exactly one of"},
		{"heal two things", func() error { _, err := s.Heal(ctx, &simv1.HealRequest{All: true, Machines: zone7[:1]}); return err },
			codes.InvalidArgument, "give exactly one of"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if st, _ := status.FromError(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.contains) {
				t.Errorf("error = %v, want %s containing %q", err, tc.code, tc.contains)
			}
		})
	}
	if fs := p.ListFaults(); len(fs) != 0 {
		t.Fatalf("refused calls left faults: %+v", fs)
	}

	resp, err := s.FailZone(ctx, &simv1.FailZoneRequest{Datacenter: "dc1", MaintenanceZone: 7, FixedBy: simv1.FaultFix_FAULT_FIX_REBOOT})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetFaults()) != len(zone7) || len(zone7) == 0 {
		t.Errorf("FailZone faulted %d machines, MZ 7 has %d", len(resp.GetFaults()), len(zone7))
	}
	list, err := s.ListFaults(ctx, &simv1.ListFaultsRequest{})
	if err != nil || len(list.GetFaults()) != len(zone7) || list.GetFaults()[0].GetFixedBy() != simv1.FaultFix_FAULT_FIX_REBOOT {
		t.Errorf("ListFaults = %v, %v", list, err)
	}
	healed, err := s.Heal(ctx, &simv1.HealRequest{Machines: zone7[:1]})
	if err != nil || !cmp.Equal(healed.GetHealed(), zone7[:1]) {
		t.Errorf("Heal one = %v, %v", healed, err)
	}
	healed, err = s.Heal(ctx, &simv1.HealRequest{Datacenter: "dc1", MaintenanceZone: 7})
	if err != nil || len(healed.GetHealed()) != len(zone7)-1 {
		t.Errorf("Heal the zone = %v, %v; want the %d left", healed, err, len(zone7)-1)
	}
	if _, err := s.FailMachines(ctx, &simv1.FailMachinesRequest{Machines: zone7[:2], FixedBy: simv1.FaultFix_FAULT_FIX_NEVER}); err != nil {
		t.Fatal(err)
	}
	if healed, err := s.Heal(ctx, &simv1.HealRequest{All: true}); err != nil || len(healed.GetHealed()) != 2 {
		t.Errorf("Heal all = %v, %v", healed, err)
	}
}
