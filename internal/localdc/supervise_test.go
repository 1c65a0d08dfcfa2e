package localdc

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
)

// TestSupervisor: a component killed with -9 is started again, and stopping
// the datacenter stops it for good (SIGTERM first, so a leader can let go of
// its Lease).
func TestSupervisor(t *testing.T) {
	home := t.TempDir()
	pids := filepath.Join(home, "pids")
	terms := filepath.Join(home, "terms")
	script := `trap 'echo $$ >> ` + terms + `; exit 0' TERM; echo $$ >> ` + pids + `; while true; do sleep 0.1; done`
	s := newSupervisor(home, testr.New(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	p := Process{Name: "looper", Path: "/bin/sh", Args: []string{"-c", script}}
	go func() { done <- s.Run(ctx, p) }()

	first := waitForLines(t, pids, 1)[0]
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := waitForLines(t, pids, 2)[1]
	if second == first {
		t.Fatalf("the process was not started again after kill -9 (pid %d)", first)
	}
	if got := s.PID(p.Name); got != second {
		t.Errorf("PID(%s) = %d, want %d", p.Name, got, second)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(stopGrace + 5*time.Second):
		t.Fatal("the supervisor did not return after its context was done")
	}
	if got := waitForLines(t, terms, 1)[0]; got != second {
		t.Errorf("SIGTERM reached pid %d, want %d", got, second)
	}
	if err := syscall.Kill(second, 0); err == nil {
		t.Errorf("process %d still runs after the supervisor stopped", second)
	}
	if _, err := os.Stat(p.LogPath(home)); err != nil {
		t.Errorf("no log file: %v", err)
	}
}

// waitForLines waits until path holds at least n lines of PIDs.
func waitForLines(t *testing.T, path string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		var pids []int
		for _, f := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			pids = append(pids, pid)
		}
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d lines after 30s, want %d", path, len(pids), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStopLeftoverProcesses: a `strata serve` of the home left running is
// killed; a stranger whose pid a stale file names is not.
func TestStopLeftoverProcesses(t *testing.T) {
	home := t.TempDir()
	// A shell stands for each: its command line is what is checked.
	loop := "while :; do sleep 1; done"
	leftover := exec.Command("/bin/sh", "-c", loop, "serve", filepath.Join(home, configDir, "hub-1.yaml"))
	stranger := exec.Command("/bin/sh", "-c", loop, "serve", filepath.Join(t.TempDir(), configDir, "hub-1.yaml"))
	for _, c := range []*exec.Cmd{leftover, stranger} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill() })
	}
	for name, c := range map[string]*exec.Cmd{"hub-1": leftover, "apps-x-1": stranger} {
		if err := writeFileAtomic(Process{Name: name}.PIDPath(home), []byte(strconv.Itoa(c.Process.Pid))); err != nil {
			t.Fatal(err)
		}
	}
	exited := make(chan error, 1)
	go func() { exited <- leftover.Wait() }()
	stopLeftoverProcesses(home)
	select {
	case err := <-exited:
		if err == nil {
			t.Error("the leftover strata serve exited cleanly: it was not killed")
		}
	case <-time.After(10 * time.Second):
		t.Error("the leftover strata serve still runs 10 s after: it was not killed")
	}
	if err := syscall.Kill(stranger.Process.Pid, 0); err != nil {
		t.Errorf("the stranger was killed: %v", err)
	}
	if files, _ := filepath.Glob(filepath.Join(home, runDir, "*.pid")); len(files) != 0 {
		t.Errorf("pid files left: %v", files)
	}
}
