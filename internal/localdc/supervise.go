package localdc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// logsDir holds, under the home, the log of each component process, and
// runDir the pid file of each that runs (`strata status` reads them).
const (
	logsDir = "logs"
	runDir  = "run"
)

// Restart backoff of a supervised process: doubled after each quick exit,
// reset once it has run for restartReset.
const (
	restartMin   = time.Second
	restartMax   = 30 * time.Second
	restartReset = time.Minute
	// stopGrace is how long a process has to exit after SIGTERM (a leader
	// releases its Lease) before it is killed.
	stopGrace = 10 * time.Second
)

// Process is one of Strata's components run by `strata up` as its own
// process, as it runs in production.
type Process struct {
	// Name is unique in the datacenter, e.g. "hub-1" or "apps-workload-1-2".
	Name string
	// Path and Args are the program and its arguments.
	Path string
	Args []string
	// Env is added to the environment the process inherits.
	Env []string
}

// LogPath is where a process's output goes, under the home.
func (p Process) LogPath(home string) string {
	return filepath.Join(home, logsDir, p.Name+".log")
}

// PIDPath is where the pid of a running process is written, under the
// home; it is removed when the process exits.
func (p Process) PIDPath(home string) string {
	return filepath.Join(home, runDir, p.Name+".pid")
}

// supervisor runs processes, restarting any that exits before it is told
// to stop.
type supervisor struct {
	home   string
	logger logr.Logger
	// restarts counts the restarts, for `strata status`; nil counts none.
	restarts *restartLog

	mu   sync.Mutex
	pids map[string]int
}

func newSupervisor(home string, logger logr.Logger) *supervisor {
	return &supervisor{home: home, logger: logger, pids: map[string]int{}}
}

// PID is the current process ID of the named process, 0 when it is not
// running.
func (s *supervisor) PID(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pids[name]
}

// Run runs p until ctx is done, restarting it when it exits (a crash or a
// kill -9), with backoff. When ctx is done it sends SIGTERM, and SIGKILL
// after stopGrace, and returns once the process has exited.
func (s *supervisor) Run(ctx context.Context, p Process) error {
	logPath := p.LogPath(s.home)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o750); err != nil {
		return err
	}
	backoff := restartMin
	for {
		started := time.Now()
		err := s.runOnce(ctx, p, logPath)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) >= restartReset {
			backoff = restartMin
		}
		s.logger.Info("A component process exited; restarting it", "process", p.Name, "err", err, "in", backoff, "log", logPath)
		s.restarts.record(p.Name, fmt.Sprintf("%v; its log ends with %s", err, lastLogLine(logPath)), s.logger)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, restartMax)
	}
}

// runOnce starts p and waits for it to exit or for ctx to be done.
func (s *supervisor) runOnce(ctx context.Context, p Process, logPath string) error {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening the log of %s: %w", p.Name, err)
	}
	defer logFile.Close()                  //nolint:errcheck // the child has its own descriptor
	cmd := exec.Command(p.Path, p.Args...) //nolint:gosec // Strata's own binary with arguments it built
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if len(p.Env) > 0 {
		cmd.Env = append(os.Environ(), p.Env...)
	}
	// Its own process group: a Ctrl-C to `strata up` reaches strata up,
	// which stops the components in order, not every process at once.
	// A `strata up` that dies without stopping them (kill -9) takes its
	// components with it, gracefully: they give up their Leases.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.Name, err)
	}
	pidPath := p.PIDPath(s.home)
	if err := writeFileAtomic(pidPath, []byte(strconv.Itoa(cmd.Process.Pid)+"\n")); err != nil {
		s.logger.Error(err, "Writing a pid file", "process", p.Name)
	}
	s.mu.Lock()
	s.pids[p.Name] = cmd.Process.Pid
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pids, p.Name)
		s.mu.Unlock()
		_ = os.Remove(pidPath)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			return errors.New("exited")
		}
		return err
	case <-ctx.Done():
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		return err
	case <-time.After(stopGrace):
		s.logger.Info("A component process did not stop in time; killing it", "process", p.Name, "grace", stopGrace)
		_ = cmd.Process.Kill()
		return <-exited
	}
}

// stopLeftoverProcesses kills the component processes that a `strata up`
// killed before it could stop them left running (they get SIGTERM when it
// dies; one that hangs in its shutdown would hold its ports), so every
// start is the same start. A pid file whose process is not a `strata serve`
// of this home (a reused pid) is only removed.
func stopLeftoverProcesses(home string) {
	files, _ := filepath.Glob(filepath.Join(home, runDir, "*.pid"))
	for _, f := range files {
		if pid, alive := alivePID(f); alive && servesHome(pid, home) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = os.Remove(f)
	}
}

// servesHome says whether a process is a `strata serve`, or a Kueue, with
// a configuration file of the home.
func servesHome(pid int, home string) bool {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(string(raw), "\x00")
	component := slices.Contains(args, "serve") || filepath.Base(args[0]) == kueueBinary
	return component && strings.Contains(string(raw), filepath.Join(home, configDir)+string(filepath.Separator))
}
