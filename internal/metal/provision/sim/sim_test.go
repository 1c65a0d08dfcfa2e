package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	certutil "k8s.io/client-go/util/cert"
	clocktesting "k8s.io/utils/clock/testing"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/metal/provision"
	"github.com/strata-dev/strata/internal/testutil"
)

var (
	t0  = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	gpu = provision.Machine{
		ID: "dc1-r004-u17", Datacenter: "dc1", MaintenanceZone: 7, Rack: "dc1-r004",
		SKU:     inventory.SKU{Name: "gpu-h100", Arch: "amd64", CPUCores: 96, MemoryGiB: 1536, GPUs: 8, GPUModel: "nvidia-h100", LocalDiskGiB: 7680},
		OSImage: "strata-os-2026.11", Kernel: "6.12.40", NodeConfig: "kubelet-1.37-gpu", Pool: "train",
	}
	startup = corev1.Taint{Key: fleetv1alpha1.StartupTaintKey, Effect: corev1.TaintEffectNoSchedule}
)

// testCluster is a cluster that machines join as kubelets do (an API
// server with bootstrap tokens, the Node authorizer and NodeRestriction,
// and a controller-manager that approves and signs kubelet certificates),
// with a bootstrap token of it.
type testCluster struct {
	*testutil.JoinCluster
	token string
}

func startCluster(t *testing.T) *testCluster {
	t.Helper()
	c := testutil.StartJoinCluster(t)
	return &testCluster{JoinCluster: c, token: c.BootstrapToken(t, time.Hour)}
}

// target is a join target of workload-1, as the pool controller hands over.
func (c *testCluster) target() provision.Target {
	return provision.Target{Cluster: "workload-1", APIServer: c.APIServer, CABundle: c.CABundle, BootstrapToken: c.token}
}

// own is the sim's own credential of workload-1 (Options.Clusters).
func (c *testCluster) own() []Cluster {
	return []Cluster{{Name: "workload-1", Kubeconfig: c.Kubeconfig}}
}

// run calls fn in a goroutine and steps the fake clock by d once fn waits
// on it: the sim's durations pass without the test sleeping.
func run(t *testing.T, clock *clocktesting.FakeClock, d time.Duration, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	waitForWaiter(t, clock)
	clock.Step(d)
	return <-done
}

// TestJoin runs the join tests against one API server, a machine each.
func TestJoin(t *testing.T) {
	c := startCluster(t)
	for name, fn := range map[string]func(*testing.T, *testCluster){
		"registers the Node":      testNodeFromJoin,
		"takes its duration":      testJoinTakesItsDuration,
		"cancelled":               testJoinCancelled,
		"rejoin updates the Node": testRejoinUpdatesTheNode,
		"a rotated token":         testRotatedToken,
	} {
		t.Run(name, func(t *testing.T) { fn(t, c) })
	}
}

// testNodeFromJoin checks the Node a join registers: labels, taints,
// capacity, allocatable, conditions and node info.
func testNodeFromJoin(t *testing.T, c *testCluster) {
	clock := clocktesting.NewFakeClock(t0)
	p, err := New(Options{JoinDuration: 3 * time.Second, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	target := c.target()
	target.NodeLabels, target.NodeTaints = map[string]string{fleetv1alpha1.PoolLabel: "train", fleetv1alpha1.NodeProfileLabel: "gpu",
		// A pool cannot misstate where the machine is, nor set a label
		// NodeRestriction refuses a kubelet.
		fleetv1alpha1.MaintenanceZoneLabel: "1", "node-role.kubernetes.io/gpu": ""},
		[]corev1.Taint{startup, {Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}}
	if err := run(t, clock, 3*time.Second, func() error { return p.Join(t.Context(), gpu, target) }); err != nil {
		t.Fatalf("Join: %v", err)
	}
	node, err := c.Kube.CoreV1().Nodes().Get(t.Context(), gpu.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Node of the joined machine: %v", err)
	}

	wantLabels := map[string]string{
		fleetv1alpha1.MachineLabel:         "dc1-r004-u17",
		fleetv1alpha1.DatacenterLabel:      "dc1",
		fleetv1alpha1.MaintenanceZoneLabel: "7",
		fleetv1alpha1.RackLabel:            "dc1-r004",
		fleetv1alpha1.SKULabel:             "gpu-h100",
		fleetv1alpha1.NodeConfigLabel:      "kubelet-1.37-gpu",
		fleetv1alpha1.PoolLabel:            "train",
		fleetv1alpha1.NodeProfileLabel:     "gpu",
		"node.kubernetes.io/instance-type": "gpu-h100",
		"kubernetes.io/arch":               "amd64",
		"kubernetes.io/os":                 "linux",
		"kubernetes.io/hostname":           "dc1-r004-u17",
	}
	if diff := cmp.Diff(wantLabels, node.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(target.NodeTaints, withoutNotReady(node.Spec.Taints)); diff != "" {
		t.Errorf("taints (-want +got):\n%s", diff)
	}
	if node.Spec.ProviderID != "strata://dc1/dc1-r004-u17" {
		t.Errorf("providerID = %q", node.Spec.ProviderID)
	}
	quantities := func(rl corev1.ResourceList) map[corev1.ResourceName]string {
		out := map[corev1.ResourceName]string{}
		for k, v := range rl {
			out[k] = v.String()
		}
		return out
	}
	wantCapacity := map[corev1.ResourceName]string{
		"cpu": "96", "memory": "1536Gi", "pods": "110", "ephemeral-storage": "7680Gi", "nvidia.com/gpu": "8",
	}
	if diff := cmp.Diff(wantCapacity, quantities(node.Status.Capacity)); diff != "" {
		t.Errorf("capacity (-want +got):\n%s", diff)
	}
	// kube-reserved of 96 cores and 7680 GiB of disk: 60+10+10+230 = 310m,
	// 768 GiB (memory: see TestKubeReserved).
	wantMemory := resource.MustParse("1536Gi")
	wantMemory.Sub(kubeReserved(gpu.SKU)[corev1.ResourceMemory])
	wantAllocatable := map[corev1.ResourceName]string{
		"cpu": "95690m", "memory": wantMemory.String(), "pods": "110", "ephemeral-storage": "6912Gi", "nvidia.com/gpu": "8",
	}
	if diff := cmp.Diff(wantAllocatable, quantities(node.Status.Allocatable)); diff != "" {
		t.Errorf("allocatable (-want +got):\n%s", diff)
	}
	ready := readyCondition(node)
	if ready == nil || ready.Status != corev1.ConditionTrue || ready.Reason != "KubeletReady" || !ready.LastHeartbeatTime.Time.Equal(t0.Add(3*time.Second)) {
		t.Errorf("Ready condition = %+v, want True by KubeletReady at the end of the join", ready)
	}
	wantInfo := corev1.NodeSystemInfo{
		MachineID: gpu.ID, SystemUUID: gpu.ID, KernelVersion: "6.12.40", OSImage: "strata-os-2026.11",
		ContainerRuntimeVersion: ContainerRuntimeVersion, OperatingSystem: "linux", Architecture: "amd64",
	}
	if diff := cmp.Diff(wantInfo, node.Status.NodeInfo, cmpopts.IgnoreFields(corev1.NodeSystemInfo{}, "KubeletVersion")); diff != "" {
		t.Errorf("node info (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(node.Status.NodeInfo.KubeletVersion, "v1.") {
		t.Errorf("kubelet version = %q, want the control plane's", node.Status.NodeInfo.KubeletVersion)
	}
	// The provisioner holds no credential but the token: the Node was
	// written with the certificate the token asked for, of the Node's own
	// identity, approved and signed by the controller-manager.
	tokenID, _, _ := strings.Cut(c.token, ".")
	if got := nodeCertificates(t, c, tokenID); !slices.Contains(got, "system:node:"+gpu.ID+"/system:nodes") {
		t.Errorf("certificates issued to bootstrap token %s: %v, want one of system:node:%s in system:nodes", tokenID, got, gpu.ID)
	}
}

// nodeCertificates lists the subjects (CN/O) of the certificates issued to
// a bootstrap token's requests of the kubelet client signer.
func nodeCertificates(t *testing.T, c *testCluster, tokenID string) []string {
	t.Helper()
	csrs, err := c.Kube.CertificatesV1().CertificateSigningRequests().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, csr := range csrs.Items {
		if csr.Spec.Username != "system:bootstrap:"+tokenID || csr.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName ||
			len(csr.Status.Certificate) == 0 {
			continue
		}
		certs, err := certutil.ParseCertsPEM(csr.Status.Certificate)
		if err != nil {
			t.Fatalf("certificate of request %s: %v", csr.Name, err)
		}
		subjects = append(subjects, certs[0].Subject.CommonName+"/"+strings.Join(certs[0].Subject.Organization, ","))
	}
	return subjects
}

func testJoinTakesItsDuration(t *testing.T, c *testCluster) {
	gpu := gpu
	gpu.ID = "dc1-r001-u01"
	clock := clocktesting.NewFakeClock(t0)
	p, err := New(Options{JoinDuration: 3 * time.Second, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	target := c.target()
	done := make(chan error, 1)
	go func() { done <- p.Join(t.Context(), gpu, target) }()
	waitForWaiter(t, clock)
	clock.Step(3*time.Second - time.Nanosecond)
	// Its timer has not fired, so Join still waits and no Node exists.
	if !clock.HasWaiters() {
		t.Fatal("Join stopped waiting before its duration passed")
	}
	if _, err := c.Kube.CoreV1().Nodes().Get(t.Context(), gpu.ID, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Node before the join ended: %v, want NotFound", err)
	}
	clock.Step(time.Nanosecond)
	if err := <-done; err != nil {
		t.Fatalf("Join: %v", err)
	}
	if _, err := c.Kube.CoreV1().Nodes().Get(t.Context(), gpu.ID, metav1.GetOptions{}); err != nil {
		t.Errorf("Node after the join: %v", err)
	}
}

func testJoinCancelled(t *testing.T, c *testCluster) {
	gpu := gpu
	gpu.ID = "dc1-r001-u02"
	clock := clocktesting.NewFakeClock(t0)
	p, err := New(Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- p.Join(ctx, gpu, c.target())
	}()
	waitForWaiter(t, clock)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Join: %v, want context.Canceled", err)
	}
	if _, err := c.Kube.CoreV1().Nodes().Get(t.Context(), gpu.ID, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Node after a cancelled join: %v, want NotFound", err)
	}
}

// testRejoinUpdatesTheNode joins a machine whose Node exists (the machine
// restarted, its pool changed labels): the Node gets the new labels and
// capacity and keeps what others put on it, and its taints.
func testRejoinUpdatesTheNode(t *testing.T, c *testCluster) {
	gpu := gpu
	gpu.ID = "dc1-r001-u03"
	clock := clocktesting.NewFakeClock(t0)
	p, err := New(Options{JoinDuration: time.Second, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	target := c.target()
	target.NodeLabels, target.NodeTaints = map[string]string{"team": "ml"}, []corev1.Taint{startup}
	if err := run(t, clock, time.Second, func() error { return p.Join(t.Context(), gpu, target) }); err != nil {
		t.Fatalf("first Join: %v", err)
	}
	// Others label, taint and cordon the Node, and kwok adds an address.
	nodes := c.Kube.CoreV1().Nodes()
	node, err := nodes.Get(t.Context(), gpu.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Labels["other"] = "kept"
	node.Spec.Unschedulable = true
	node.Spec.Taints = append(node.Spec.Taints, corev1.Taint{Key: "other", Effect: corev1.TaintEffectNoExecute})
	if node, err = nodes.Update(t.Context(), node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.7"}}
	if _, err = nodes.UpdateStatus(t.Context(), node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	again := gpu
	again.NodeConfig, again.SKU.GPUs = "kubelet-1.38-gpu", 4 // reimaged, half its GPUs found
	target.NodeLabels = map[string]string{"team": "research"}
	target.NodeTaints = []corev1.Taint{{Key: startup.Key, Value: "again", Effect: startup.Effect}}
	if err := run(t, clock, time.Second, func() error { return p.Join(t.Context(), again, target) }); err != nil {
		t.Fatalf("second Join: %v", err)
	}
	node, err = nodes.Get(t.Context(), gpu.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"team": "research", "other": "kept", fleetv1alpha1.NodeConfigLabel: "kubelet-1.38-gpu"} {
		if got := node.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	// As a kubelet, the machine sets taints only when it creates its Node:
	// NodeRestriction refuses a Node changing its own.
	wantTaints := []corev1.Taint{startup, {Key: "other", Effect: corev1.TaintEffectNoExecute}}
	if diff := cmp.Diff(wantTaints, withoutNotReady(node.Spec.Taints)); diff != "" {
		t.Errorf("taints (-want +got):\n%s", diff)
	}
	if !node.Spec.Unschedulable {
		t.Error("the rejoin uncordoned the Node")
	}
	if got := node.Status.Capacity[GPUResource]; got.Value() != 4 {
		t.Errorf("GPU capacity = %s, want 4", got.String())
	}
	if diff := cmp.Diff([]corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.7"}}, node.Status.Addresses); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if ready := readyCondition(node); ready == nil || !ready.LastHeartbeatTime.Time.Equal(t0.Add(2*time.Second)) ||
		!ready.LastTransitionTime.Time.Equal(t0.Add(time.Second)) {
		t.Errorf("Ready condition = %+v, want a new heartbeat and the first transition kept", ready)
	}
	if n := len(p.bootstraps); n != 1 {
		t.Errorf("%d bootstrap clients cached for one token, want 1", n)
	}
}

// testRotatedToken: machines join with a pool's new token once it was
// rotated, and the client of the old one is let go.
func testRotatedToken(t *testing.T, c *testCluster) {
	clock := clocktesting.NewFakeClock(t0)
	p, err := New(Options{JoinDuration: time.Second, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	for i, token := range []string{c.token, c.BootstrapToken(t, time.Hour)} {
		m := gpu
		m.ID = fmt.Sprintf("dc1-r001-u1%d", i)
		target := c.target()
		target.BootstrapToken = token
		if err := run(t, clock, time.Second, func() error { return p.Join(t.Context(), m, target) }); err != nil {
			t.Fatalf("Join with token %d: %v", i, err)
		}
		tokenID, _, _ := strings.Cut(token, ".")
		if got := nodeCertificates(t, c, tokenID); !slices.Contains(got, "system:node:"+m.ID+"/system:nodes") {
			t.Errorf("certificates issued to token %s: %v, want one for %s", tokenID, got, m.ID)
		}
	}
	if n := len(p.bootstraps); n != 1 {
		t.Errorf("%d bootstrap clients cached after a rotation, want 1", n)
	}
}

func TestWipeTakesItsDuration(t *testing.T) {
	clock := clocktesting.NewFakeClock(t0)
	p, err := New(Options{WipeDuration: 4 * time.Second, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	// No cluster at all: Wipe must not need one (TestLocalVolumes has a
	// wipe that deletes the machine's volumes).
	done := make(chan error, 1)
	go func() { done <- p.Wipe(t.Context(), provision.Machine{ID: gpu.ID}) }()
	waitForWaiter(t, clock)
	clock.Step(4*time.Second - time.Nanosecond)
	if !clock.HasWaiters() {
		t.Fatal("Wipe stopped waiting before its duration passed")
	}
	clock.Step(time.Nanosecond)
	if err := <-done; err != nil {
		t.Errorf("Wipe: %v", err)
	}
}

func TestJoinUnreachableCluster(t *testing.T) {
	clock := clocktesting.NewFakeClock(t0)
	p, err := New(Options{JoinDuration: time.Second, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ca, _, err := certutil.GenerateSelfSignedCertKey("gone", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := provision.Target{Cluster: "gone", APIServer: "https://127.0.0.1:1", CABundle: ca, BootstrapToken: "abcdef.0123456789abcdef"}
	err = run(t, clock, time.Second, func() error { return p.Join(t.Context(), gpu, target) })
	if err == nil || !strings.Contains(err.Error(), "connecting to cluster gone") {
		t.Errorf("Join to an unreachable cluster: %v, want an error naming it", err)
	}
	if n := len(p.bootstraps); n != 0 {
		t.Errorf("a failed connection stays cached (%d clients): the next join would not try again", n)
	}
}

// TestJoinRefusedToken: a bootstrap token the API server refuses (expired,
// revoked, of another cluster) fails the join with a message that says so,
// and no Node is written.
func TestJoinRefusedToken(t *testing.T) {
	c := startCluster(t)
	expired := c.BootstrapToken(t, -time.Minute)
	revoked := c.BootstrapToken(t, time.Hour)
	id, _, _ := strings.Cut(revoked, ".")
	if err := c.Kube.CoreV1().Secrets(metav1.NamespaceSystem).Delete(t.Context(), "bootstrap-token-"+id, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{
		"expired": expired, "revoked": revoked,
		"of another cluster": "zzzzzz.0123456789abcdef",
	} {
		t.Run(name, func(t *testing.T) {
			clock := clocktesting.NewFakeClock(t0)
			p, err := New(Options{JoinDuration: time.Second, Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			target := c.target()
			target.BootstrapToken = token
			err = run(t, clock, time.Second, func() error { return p.Join(t.Context(), gpu, target) })
			tokenID, _, _ := strings.Cut(token, ".")
			if !errors.Is(err, provision.ErrBootstrapTokenRefused) || !strings.Contains(err.Error(), "refused bootstrap token "+tokenID) {
				t.Errorf("Join with a token that is %s: %v, want ErrBootstrapTokenRefused naming token %s", name, err, tokenID)
			}
			if _, err := c.Kube.CoreV1().Nodes().Get(t.Context(), gpu.ID, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("Node after a refused join: %v, want NotFound", err)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	if _, err := New(Options{JoinDuration: -time.Second}); err == nil || !strings.Contains(err.Error(), "join duration must not be negative") {
		t.Errorf("negative join duration: %v", err)
	}
	if _, err := New(Options{WipeDuration: -time.Second}); err == nil || !strings.Contains(err.Error(), "wipe duration must not be negative") {
		t.Errorf("negative wipe duration: %v", err)
	}
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.join != DefaultJoinDuration || p.wipe != DefaultWipeDuration {
		t.Errorf("defaults = %s, %s; want %s, %s", p.join, p.wipe, DefaultJoinDuration, DefaultWipeDuration)
	}
}

// TestKubeReserved checks the tiers against figures worked out by hand.
func TestKubeReserved(t *testing.T) {
	cases := []struct {
		sku       inventory.SKU
		cpuMilli  int64
		memoryMiB int64 // rounded down
		diskGiB   int64
	}{
		// 60+10+10+0.25% of 28 cores; 1+0.8+0.8+6.72 GiB + 100 MiB.
		{inventory.SKU{CPUCores: 32, MemoryGiB: 128, LocalDiskGiB: 960}, 150, 9543 + 100, 96},
		// 0.25% of 60 cores more; 2% of 128 GiB more.
		{inventory.SKU{CPUCores: 64, MemoryGiB: 256, LocalDiskGiB: 1920}, 230, 12165 + 100, 192},
		// Below the tiers' ends: 6% of one core; 25% of 2 GiB.
		{inventory.SKU{CPUCores: 1, MemoryGiB: 2, LocalDiskGiB: 10}, 60, 512 + 100, 1},
	}
	for _, tc := range cases {
		r := kubeReserved(tc.sku)
		cpu, mem, disk := r[corev1.ResourceCPU], r[corev1.ResourceMemory], r[corev1.ResourceEphemeralStorage]
		if cpu.MilliValue() != tc.cpuMilli || mem.Value()>>20 != tc.memoryMiB || disk.Value()>>30 != tc.diskGiB {
			t.Errorf("kubeReserved(%d cores, %d GiB, %d GiB disk) = %s, %d MiB, %d GiB; want %dm, %d MiB, %d GiB",
				tc.sku.CPUCores, tc.sku.MemoryGiB, tc.sku.LocalDiskGiB, cpu.String(), mem.Value()>>20, disk.Value()>>30,
				tc.cpuMilli, tc.memoryMiB, tc.diskGiB)
		}
	}
}

// withoutNotReady drops the not-ready taint the API server's
// TaintNodesByCondition admission adds to every new Node; the node lifecycle
// controller, which envtest does not run, removes it once the Node is Ready.
func withoutNotReady(taints []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range taints {
		if t.Key != corev1.TaintNodeNotReady {
			out = append(out, t)
		}
	}
	return out
}

// waitForWaiter returns once something waits on the fake clock.
func waitForWaiter(t *testing.T, clock *clocktesting.FakeClock) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !clock.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("nothing waits on the clock")
		}
		time.Sleep(time.Millisecond)
	}
}
