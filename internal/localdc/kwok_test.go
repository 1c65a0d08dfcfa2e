package localdc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// TestHelperComponent is not a test: the tests below run the test binary as
// a component of a cluster (its command line names the cluster's directory,
// as a real component's does). STRATA_TEST_COMPONENT says how it stops:
// "slow" exits only when its stdin closes after a SIGTERM, as an etcd takes
// its time to exit; "stubborn" ignores SIGTERM.
func TestHelperComponent(t *testing.T) {
	mode := os.Getenv("STRATA_TEST_COMPONENT")
	if mode == "" {
		t.Skip("a component process for the tests of stopAndWait")
	}
	sig := make(chan os.Signal, 1)
	switch mode {
	case "slow":
		signal.Notify(sig, syscall.SIGTERM)
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
	}
	fmt.Println("running")
	if mode == "slow" {
		<-sig
		fmt.Println("stopping")
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// fakeComponent is a test binary run as a cluster's component.
type fakeComponent struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Scanner
}

// startComponent runs a fake component in clusterDir and writes its pid file.
func startComponent(t *testing.T, clusterDir, name, mode string) *fakeComponent {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperComponent$", "--", clusterDir)
	cmd.Env = append(os.Environ(), "STRATA_TEST_COMPONENT="+mode)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c := &fakeComponent{cmd: cmd, stdin: stdin, stdout: bufio.NewScanner(stdout)}
	c.waitLine(t, "running")
	if err := os.MkdirAll(filepath.Join(clusterDir, "pids"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(clusterDir, "pids", name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *fakeComponent) waitLine(t *testing.T, want string) {
	for c.stdout.Scan() {
		if c.stdout.Text() == want {
			return
		}
	}
	t.Errorf("the component ended without saying %q", want)
}

// kwokctl kills a cluster's components and returns at once; stopAndWait
// returns only once they have exited (and so released their ports).
func TestStopAndWaitWaitsForTheComponents(t *testing.T) {
	clusterDir := t.TempDir()
	etcd := startComponent(t, clusterDir, "etcd", "slow")
	if got := len(runningComponents(clusterDir)); got != 1 {
		t.Fatalf("runningComponents = %d, want the etcd", got)
	}
	var exitAllowed atomic.Bool
	go func() {
		etcd.waitLine(t, "stopping")
		exitAllowed.Store(true)
		_ = etcd.stdin.Close()
	}()
	err := stopAndWait(t.Context(), clusterDir, func(context.Context) error {
		return etcd.cmd.Process.Signal(syscall.SIGTERM)
	})
	if err != nil {
		t.Fatalf("stopAndWait: %v", err)
	}
	if !exitAllowed.Load() {
		t.Error("stopAndWait returned while the etcd still ran")
	}
	// Not reaped yet (the test is its parent): a zombie, whose threads have
	// all exited and whose files and ports are closed, has exited.
	if state, _, _ := procStat(etcd.cmd.Process.Pid); state != 'Z' {
		t.Errorf("the etcd's state is %q, want Z (exited, not reaped)", state)
	}
	if got := len(runningComponents(clusterDir)); got != 0 {
		t.Errorf("runningComponents after the stop = %d, want 0", got)
	}
}

func TestWaitExitedNamesWhatStillRuns(t *testing.T) {
	clusterDir := t.TempDir()
	startComponent(t, clusterDir, "kube-apiserver", "stubborn")
	running := runningComponents(clusterDir)
	if len(running) != 1 {
		t.Fatalf("runningComponents = %v, want the kube-apiserver", running)
	}
	err := waitExited(t.Context(), running, 100*time.Millisecond)
	want := fmt.Sprintf("kube-apiserver (pid %d) still running 100ms after it was stopped", running[0].pid)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("waitExited = %v, want %q", err, want)
	}
}

func TestProcStat(t *testing.T) {
	state, started, ok := procStat(os.Getpid())
	if !ok || state == 'Z' || started == 0 || !threadsLive(os.Getpid()) {
		t.Errorf("procStat(self) = %q, %d, %t; want a live process with a start time", state, started, ok)
	}
	if _, _, ok := procStat(1 << 30); ok || threadsLive(1<<30) {
		t.Error("a pid beyond pid_max has a process")
	}
	// comm may hold spaces and parentheses.
	state, started, ok = parseStat([]byte("42 (kube apiserver) (x)) Z 1 42 42 0 -1 4194564 0 0 0 0 0 0 0 0 20 0 1 0 8675309 0 0"))
	if !ok || state != 'Z' || started != 8675309 {
		t.Errorf("parseStat = %q, %d, %t; want Z, 8675309", state, started, ok)
	}
}

// Every local cluster gang-schedules: the Workload and PodGroup API is
// served, and the API server, the controller-manager's Job controller and
// the scheduler have the gates on (kwokctl gives kubeFeatureGates to all
// three).
func TestKwokctlConfigGangScheduling(t *testing.T) {
	c := ClusterInfo{Name: "workload-1", Ports: Ports{KubeAPIServer: 1, Etcd: 2, EtcdPeer: 3, KubeControllerManager: 4, KubeScheduler: 5, KwokController: 6}}
	raw, err := kwokctlConfig("/opt/bin", "/home/dc", "/home/dc/kwok/audit-policy.yaml", "v1.37.1", c, false)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Options struct {
			KubeFeatureGates  string `json:"kubeFeatureGates"`
			KubeRuntimeConfig string `json:"kubeRuntimeConfig"`
		} `json:"options"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{"gates": cfg.Options.KubeFeatureGates, "runtime": cfg.Options.KubeRuntimeConfig}
	want := map[string]string{"gates": "GenericWorkload=true,WorkloadWithJob=true", "runtime": "scheduling.k8s.io/v1beta1=true"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kwokctl options (-want +got):\n%s\n%s", diff, raw)
	}
}
