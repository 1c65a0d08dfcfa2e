package localdc

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLockHomeIsExclusive(t *testing.T) {
	home := t.TempDir()
	unlock, err := lockHome(home)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockHome(home)
	if err == nil || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second lock = %v, want an error naming the holder's pid", err)
	}
	unlock()
	unlock, err = lockHome(home)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock()
}

func TestPortsFreeNamesTheBusyComponent(t *testing.T) {
	dc, err := newDatacenter("v1.37.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := portsFree(dc); err != nil {
		t.Fatalf("fresh ports reported busy: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() //nolint:errcheck // test listener
	dc.Clusters[1].Ports.KubeScheduler = uint32(l.Addr().(*net.TCPAddr).Port)
	err = portsFree(dc)
	if err == nil || !strings.Contains(err.Error(), "workload-1's kube-scheduler listens on, is in use") {
		t.Errorf("portsFree = %v, want an error naming workload-1's kube-scheduler", err)
	}
}

func TestClearStalePIDs(t *testing.T) {
	clusterDir := t.TempDir()
	pids := filepath.Join(clusterDir, "pids")
	if err := os.MkdirAll(pids, 0o750); err != nil {
		t.Fatal(err)
	}
	// This test's own pid is alive but is no component of the cluster: stale.
	stale := filepath.Join(pids, "etcd.pid")
	garbage := filepath.Join(pids, "kwok-controller.pid")
	for f, content := range map[string]string{stale: strconv.Itoa(os.Getpid()), garbage: "not a pid"} {
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := clearStalePIDs(clusterDir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{stale, garbage} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s was kept (stat: %v)", filepath.Base(f), err)
		}
	}
	if n := len(runningComponents(clusterDir)); n != 0 {
		t.Errorf("runningComponents = %d, want 0", n)
	}
}

func TestOptionsCompleteNamesMissingBinaries(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "kwokctl"), nil, 0o700); err != nil {
		t.Fatal(err)
	}
	o := Options{Home: t.TempDir(), BinDir: bin}
	err := o.complete()
	if err == nil || !strings.Contains(err.Error(), "is missing kube-apiserver, kube-controller-manager") || !strings.Contains(err.Error(), "make tools") || strings.Contains(err.Error(), "kwokctl") {
		t.Errorf("complete = %v, want the missing binaries (not kwokctl) and `make tools`", err)
	}
}

// The app stages are appended once, replacing what an earlier start added,
// and kwokctl's own documents are kept.
func TestWithAppStages(t *testing.T) {
	base := []byte("kind: KwokctlConfiguration\n---\nkind: Stage\nmetadata:\n  name: pod-ready\n")
	once := withAppStages(base, "/home/sim/container.log")
	twice := withAppStages(once, "/home/sim/container.log")
	if !bytes.Equal(once, twice) {
		t.Fatalf("a second start changed kwok.yaml:\n%s\nthen\n%s", once, twice)
	}
	for _, want := range []string{"name: pod-ready", "name: pod-crashloop-start", "name: pod-unready", "kind: ClusterLogs", `logsFile: "/home/sim/container.log"`} {
		if !bytes.Contains(once, []byte(want)) {
			t.Errorf("kwok.yaml lacks %q:\n%s", want, once)
		}
	}
	if n := bytes.Count(once, []byte(appStagesMarker)); n != 1 {
		t.Errorf("the marker appears %d times, want 1", n)
	}
	if bytes.Contains(once, []byte("---\n---")) {
		t.Errorf("kwok.yaml has an empty document:\n%s", once)
	}
}
