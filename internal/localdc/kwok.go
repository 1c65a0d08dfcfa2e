package localdc

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/internal/metal/provision/sim"
)

// kwokWorkdir is the folder under the home that kwokctl keeps its clusters in.
const kwokWorkdir = "kwok"

// ClusterDir is where kwokctl keeps a cluster of the home: its config, pki,
// etcd data, pids and component logs.
func ClusterDir(home, name string) string {
	return filepath.Join(home, kwokWorkdir, "clusters", name)
}

// KubeconfigPath is the admin kubeconfig of a cluster of the home.
func KubeconfigPath(home, name string) string {
	return filepath.Join(ClusterDir(home, name), "kubeconfig.yaml")
}

// throughputArgs tune the local control planes for throughput on a small
// machine, where one process plays thousands of kubelets. The defaults (20 qps
// for the controller-manager, 50 for the scheduler, 400/200 in-flight
// requests) cap pod creation; see docs/local-datacenter.md for the figures.
var throughputArgs = map[string][][2]string{
	"kube-apiserver": {
		{"max-requests-inflight", "1000"},
		{"max-mutating-requests-inflight", "500"},
	},
	"kube-controller-manager": {
		{"kube-api-qps", "300"},
		{"kube-api-burst", "600"},
		{"concurrent-deployment-syncs", "10"},
		{"concurrent-replicaset-syncs", "10"},
	},
	"kube-scheduler": {
		{"kube-api-qps", "300"},
		{"kube-api-burst", "600"},
	},
}

// etcdArgs size each cluster's etcd for the twin (docs/local-datacenter.md,
// "Sizing: the twin"): 5,000 Nodes renewing their leases and kwok moving
// 150,000 pods through their phases write hundreds of revisions a second.
// kwokctl's own settings keep an hour of history (periodic compaction,
// retention 1 hour), which at that pace outgrows the quota; five minutes
// keep what a watch that reconnects needs. The quota is etcd's
// recommended maximum, 8 GiB, stated here rather than left to kwokctl.
var etcdArgs = []extraArg{
	{Key: "quota-backend-bytes", Value: "8589934592", Override: true},
	{Key: "auto-compaction-mode", Value: "periodic"},
	{Key: "auto-compaction-retention", Value: "5m", Override: true},
}

// Gang scheduling (all of a Job's pods bind or none does): Kubernetes 1.37's
// Workload and PodGroup API (scheduling.k8s.io/v1beta1, a beta API off by
// default), the scheduler's GangScheduling plugin (on with GenericWorkload)
// and the Job controller's making a Workload and PodGroup for each new Job
// (WorkloadWithJob, alpha; it also admits a Job's spec.scheduling). kwokctl
// gives the gates to the API server, the controller-manager and the
// scheduler. See docs/jobs.md for which Jobs are gangs.
const (
	gangFeatureGates  = "GenericWorkload=true,WorkloadWithJob=true"
	gangRuntimeConfig = "scheduling.k8s.io/v1beta1=true"
)

// kwokArgs are always given to kwok: its default /24 pod CIDR runs out of pod
// IPs after 254 pods; and it manages (heart-beats) every Node but those of
// machines with a simulated fault, whose Nodes the sim provisioner keeps
// NotReady (kwokctl passes --manage-all-nodes=true, which conflicts with a
// selector, so it is overridden).
var kwokArgs = []extraArg{
	{Key: "cidr", Value: "10.0.0.0/16"},
	{Key: "manage-all-nodes", Value: "false", Override: true},
	{Key: "manage-nodes-with-label-selector", Value: "!" + sim.FaultLabel},
}

// securityArgs make each local cluster join Nodes as a production cluster
// does (kubelet TLS bootstrapping, as kubeadm sets it up): the API server
// takes bootstrap tokens, confines each kubelet to its own Node (kwokctl
// already runs --authorization-mode=Node,RBAC; NodeRestriction is added) and
// audits to a file under the home (AuditLogPath); the controller-manager
// signs kubelet certificates with the cluster's CA (which the API server
// trusts for clients), approves those bootstrap tokens ask for (csrapproving
// is on by default), and deletes expired tokens (tokencleaner, off by
// default). The token's ClusterRoleBindings come with the workload RBAC
// (config/rbac/kubelet-bootstrap).
func securityArgs(clusterDir string) map[string][]extraArg {
	pki := filepath.Join(clusterDir, "pki")
	return map[string][]extraArg{
		"kube-apiserver": {
			{Key: "enable-bootstrap-token-auth", Value: "true"},
			{Key: "enable-admission-plugins", Value: "NodeRestriction"},
			{Key: "audit-log-maxsize", Value: "100"},
			{Key: "audit-log-maxbackup", Value: "3"},
		},
		"kube-controller-manager": {
			{Key: "controllers", Value: "*,tokencleaner"},
			{Key: "cluster-signing-cert-file", Value: filepath.Join(pki, "ca.crt")},
			{Key: "cluster-signing-key-file", Value: filepath.Join(pki, "ca.key")},
		},
	}
}

// auditPolicy records who wrote what of what matters to a Node's identity,
// at Metadata level (no bodies): each machine's own requests (as
// system:node:<name>, or as its bootstrap token), certificate requests and
// their approval, bootstrap token Secrets, and Node writes by anyone. Not
// the status heartbeats kwok posts for every Node, nor reads.
//
//go:embed audit-policy.yaml
var auditPolicy []byte

// AuditLogPath is the audit log of a cluster of the home.
func AuditLogPath(home, name string) string {
	return filepath.Join(ClusterDir(home, name), "logs", "audit.log")
}

// extraArg is a command-line flag kwokctl adds to a component; Override
// replaces the value kwokctl itself gives.
type extraArg struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Override bool   `json:"override,omitempty"`
}

// kwokctlConfig renders the KwokctlConfiguration of one cluster of the
// home, with securityArgs and the audit policy file auditPolicyFile; tuned
// applies throughputArgs.
func kwokctlConfig(binDir, home, auditPolicyFile, kubeVersion string, c ClusterInfo, tuned bool) ([]byte, error) {
	bin := func(name string) string { return filepath.Join(binDir, name) }
	type patch struct {
		Name      string     `json:"name"`
		ExtraArgs []extraArg `json:"extraArgs"`
	}
	args := map[string][]extraArg{
		"kwok-controller": kwokArgs,
		// The sim registers Nodes with their machine's hostname, which does
		// not resolve, and kwok's loopback address as InternalIP, where it
		// serves the kubelet API (pod logs).
		"kube-apiserver": {{Key: "kubelet-preferred-address-types", Value: "InternalIP,Hostname"}},
		// One of each per cluster, and nothing restarts them: with leader
		// election, an API server that stops answering for longer than the
		// lease's renew deadline makes them exit for good.
		"kube-controller-manager": {{Key: "leader-elect", Value: "false"}},
		"kube-scheduler":          {{Key: "leader-elect", Value: "false"}},
	}
	for name, a := range securityArgs(ClusterDir(home, c.Name)) {
		args[name] = append(args[name], a...)
	}
	if tuned {
		args["etcd"] = append(args["etcd"], etcdArgs...)
		for name, a := range throughputArgs {
			for _, kv := range a {
				args[name] = append(args[name], extraArg{Key: kv[0], Value: kv[1]})
			}
		}
	}
	var patches []patch
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller"} {
		p := patch{Name: name, ExtraArgs: args[name]}
		if len(p.ExtraArgs) > 0 {
			patches = append(patches, p)
		}
	}
	cfg := map[string]any{
		"apiVersion": "config.kwok.x-k8s.io/v1alpha1",
		"kind":       "KwokctlConfiguration",
		"options": map[string]any{
			"runtime":                     "binary",
			"kubeVersion":                 kubeVersion,
			"kubeFeatureGates":            gangFeatureGates,
			"kubeRuntimeConfig":           gangRuntimeConfig,
			"bindAddress":                 "127.0.0.1",
			"kubeApiserverBinary":         bin("kube-apiserver"),
			"kubeControllerManagerBinary": bin("kube-controller-manager"),
			"kubeSchedulerBinary":         bin("kube-scheduler"),
			"kwokControllerBinary":        bin("kwok"),
			"etcdBinary":                  bin("etcd"),
			"kubectlBinary":               bin("kubectl"),
			"kubeApiserverPort":           c.Ports.KubeAPIServer,
			"etcdPort":                    c.Ports.Etcd,
			"etcdPeerPort":                c.Ports.EtcdPeer,
			"kubeControllerManagerPort":   c.Ports.KubeControllerManager,
			"kubeSchedulerPort":           c.Ports.KubeScheduler,
			"kwokControllerPort":          c.Ports.KwokController,
			// kwokctl copies it into the cluster's folder and logs to
			// logs/audit.log there (AuditLogPath).
			"kubeAuditPolicy": auditPolicyFile,
		},
		"componentsPatches": patches,
	}
	return yaml.Marshal(cfg)
}

// kwokctl runs the kwokctl binary against the home's kwok workdir.
type kwokctl struct {
	binDir string
	home   string
	// untuned leaves the control planes at Kubernetes' default limits.
	untuned bool
}

// run runs kwokctl with a clean environment: every KWOK_* variable would
// override the configuration file, and kwokctl prefers a kubectl on PATH, so
// bin/ comes first.
func (k kwokctl) run(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(k.binDir, "kwokctl"), args...)
	var env []string
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "KWOK_"):
		case strings.HasPrefix(kv, "PATH="):
			env = append(env, "PATH="+k.binDir+string(os.PathListSeparator)+strings.TrimPrefix(kv, "PATH="))
		default:
			env = append(env, kv)
		}
	}
	env = append(env, "KWOK_WORKDIR="+filepath.Join(k.home, kwokWorkdir))
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kwokctl %s: %w: %s", strings.Join(args, " "), err, lastLines(out.String(), 5))
	}
	return nil
}

func (k kwokctl) create(ctx context.Context, kubeVersion string, c ClusterInfo) error {
	policyPath := filepath.Join(k.home, kwokWorkdir, "audit-policy.yaml")
	if err := os.MkdirAll(filepath.Dir(policyPath), 0o750); err != nil {
		return err
	}
	if err := os.WriteFile(policyPath, auditPolicy, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", policyPath, err)
	}
	cfg, err := kwokctlConfig(k.binDir, k.home, policyPath, kubeVersion, c, !k.untuned)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(k.home, kwokWorkdir, c.Name+".config.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", cfgPath, err)
	}
	// An empty --kubeconfig keeps kwokctl away from the user's ~/.kube/config.
	return k.run(ctx, "--config", cfgPath, "create", "cluster", "--name", c.Name, "--kubeconfig", "")
}

// appStages are the kwok Stages that play app failures (see the file).
//
//go:embed appstages.yaml
var appStages []byte

// appStagesMarker starts what Strata appends to a cluster's kwok.yaml.
const appStagesMarker = "# strata: the local datacenter's app stages and container logs (rewritten at every start)"

// SimLogFile is the log every simulated container shows (`kubectl logs`),
// under the home: kwok runs no process that could write one.
const SimLogFile = "sim/container.log"

// withAppStages returns a cluster's kwok.yaml with the app stages and the
// ClusterLogs that serves logsFile for every pod, replacing what an earlier
// start appended. kwokctl writes kwok.yaml once, at creation, with its
// default stages; kwok reads it at every start.
func withAppStages(kwokYAML []byte, logsFile string) []byte {
	if i := bytes.Index(kwokYAML, []byte(appStagesMarker)); i >= 0 {
		kwokYAML = kwokYAML[:i]
	}
	kwokYAML = bytes.TrimRight(kwokYAML, "\n")
	kwokYAML = bytes.TrimSuffix(kwokYAML, []byte("---"))
	var b bytes.Buffer
	b.Write(bytes.TrimRight(kwokYAML, "\n"))
	b.WriteString("\n---\n" + appStagesMarker + "\n")
	b.Write(bytes.TrimRight(appStages, "\n"))
	fmt.Fprintf(&b, "\n---\napiVersion: kwok.x-k8s.io/v1alpha1\nkind: ClusterLogs\nmetadata:\n  name: all-pods\nspec:\n  logs:\n  - logsFile: %q\n    previousLogsFile: %q\n", logsFile, logsFile)
	return b.Bytes()
}

// writeSimLog writes the log every simulated container shows, in the CRI
// format kwok serves.
func writeSimLog(home string) (string, error) {
	path := filepath.Join(home, SimLogFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", err
	}
	line := func(t time.Time, msg string) string {
		return t.UTC().Format(time.RFC3339Nano) + " stdout F " + msg + "\n"
	}
	now := time.Now()
	content := line(now, "strata local datacenter: kwok plays this container; no process runs in it.") +
		line(now, "strata local datacenter: its state (running, ready, crash loop, OOM) is simulated by kwok stages keyed on the image; see docs/local-datacenter.md.")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// addAppStages appends the app stages to a workload cluster's kwok.yaml.
func (k kwokctl) addAppStages(name string) error {
	logs, err := writeSimLog(k.home)
	if err != nil {
		return err
	}
	path := filepath.Join(ClusterDir(k.home, name), "kwok.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if err := os.WriteFile(path, withAppStages(raw, logs), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// restartKwok restarts a running cluster's kwok controller alone, so it
// reads its configuration again: kwokctl starts only the components that
// are not running.
func (k kwokctl) restartKwok(ctx context.Context, name string) error {
	dir := ClusterDir(k.home, name)
	pidFile := filepath.Join(dir, "pids", "kwok-controller.pid")
	if pid, ok := componentPID(dir, pidFile); ok {
		if kwok, ok := liveComponent("kwok-controller", pid); ok {
			if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("stopping the kwok controller of cluster %s: %w", name, err)
			}
			if err := waitExited(ctx, []component{kwok}, exitTimeout); err != nil {
				return fmt.Errorf("restarting the kwok controller of cluster %s: %w", name, err)
			}
		}
	}
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return k.start(ctx, name)
}

func (k kwokctl) start(ctx context.Context, name string) error {
	if err := clearStalePIDs(ClusterDir(k.home, name)); err != nil {
		return err
	}
	return k.run(ctx, "start", "cluster", "--name", name)
}

func (k kwokctl) stop(ctx context.Context, name string) error {
	return stopAndWait(ctx, ClusterDir(k.home, name), func(ctx context.Context) error {
		return k.run(ctx, "stop", "cluster", "--name", name)
	})
}

// delete removes a cluster and its data. kwokctl refuses an empty
// --kubeconfig here, and a path that does not exist is left alone.
func (k kwokctl) delete(ctx context.Context, name string) error {
	return stopAndWait(ctx, ClusterDir(k.home, name), func(ctx context.Context) error {
		return k.run(ctx, "delete", "cluster", "--name", name,
			"--kubeconfig", filepath.Join(k.home, kwokWorkdir, "no-kubeconfig"))
	})
}

// exitTimeout bounds the wait for a stopped component to exit.
const exitTimeout = 30 * time.Second

// stopAndWait runs stop, which ends a cluster's components, and returns once
// every component that ran before has exited. kwokctl sends SIGKILL and
// returns at once, while an etcd or an API server can take seconds to exit
// and release its ports (its memory is torn down first): without the wait,
// "Stopped." was printed while they still ran, and an immediate `strata up`
// met busy ports.
func stopAndWait(ctx context.Context, clusterDir string, stop func(context.Context) error) error {
	if err := clearStalePIDs(clusterDir); err != nil {
		return err
	}
	running := runningComponents(clusterDir)
	if err := stop(ctx); err != nil {
		return err
	}
	return waitExited(ctx, running, exitTimeout)
}

// waitExited waits until each component has exited, and names those still
// running after timeout.
func waitExited(ctx context.Context, components []component, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for _, c := range components {
			if c.running() {
				left = append(left, fmt.Sprintf("%s (pid %d)", c.name, c.pid))
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still running %s after it was stopped", strings.Join(left, ", "), timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to exit: %w", strings.Join(left, ", "), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// clearStalePIDs removes pid files that name a process which is not one of
// the cluster's components (the pid was reused after a reboot), so kwokctl
// neither skips starting the component nor kills a stranger.
func clearStalePIDs(clusterDir string) error {
	files, err := filepath.Glob(filepath.Join(clusterDir, "pids", "*.pid"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if _, ok := componentPID(clusterDir, f); !ok {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("removing stale pid file: %w", err)
			}
		}
	}
	return nil
}

// componentPID reads a pid file and says whether it names a live process
// started from the cluster's directory.
func componentPID(clusterDir, pidFile string) (int, bool) {
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return 0, false
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || !bytes.Contains(cmdline, []byte(clusterDir)) {
		return 0, false
	}
	return pid, true
}

// component is a live process of a cluster, named after its pid file.
type component struct {
	name string
	pid  int
	// started is the process's start time (clock ticks after boot), which
	// tells it from a later process that reuses its pid.
	started uint64
}

// runningComponents lists a cluster's live components.
func runningComponents(clusterDir string) []component {
	files, _ := filepath.Glob(filepath.Join(clusterDir, "pids", "*.pid"))
	var comps []component
	for _, f := range files {
		pid, ok := componentPID(clusterDir, f)
		if !ok {
			continue
		}
		if c, ok := liveComponent(strings.TrimSuffix(filepath.Base(f), ".pid"), pid); ok {
			comps = append(comps, c)
		}
	}
	return comps
}

// liveComponent records a running process as a component.
func liveComponent(name string, pid int) (component, bool) {
	_, started, ok := procStat(pid)
	if !ok || !threadsLive(pid) {
		return component{}, false
	}
	return component{name: name, pid: pid, started: started}, true
}

// running says whether the component's process has not exited yet. It
// reads /proc rather than the command line, which a dying process loses
// well before it closes its sockets.
func (c component) running() bool {
	_, started, ok := procStat(c.pid)
	return ok && started == c.started && threadsLive(c.pid)
}

// threadsLive says whether a thread of the process has yet to exit. The
// main thread of a killed Go program can be a zombie while its other
// threads still tear the process down and hold its sockets open; once they
// are gone too, its files and ports are released.
func threadsLive(pid int) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, t := range tasks {
		raw, err := os.ReadFile(filepath.Join(dir, t.Name(), "stat"))
		if err != nil {
			continue // the thread is gone
		}
		if state, _, ok := parseStat(raw); ok && state != 'Z' && state != 'X' {
			return true
		}
	}
	return false
}

// procStat reads a process's state and start time from /proc/<pid>/stat.
func procStat(pid int) (state byte, started uint64, ok bool) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, false
	}
	return parseStat(raw)
}

// parseStat reads the state and start time of a /proc stat line: "pid (comm)
// state ppid ...", where comm may hold spaces and parentheses, and
// starttime is the 22nd field, the 20th after comm.
func parseStat(raw []byte) (state byte, started uint64, ok bool) {
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(string(raw[i+1:]))
	if len(fields) < 20 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	started, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], started, true
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
