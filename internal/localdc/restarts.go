package localdc

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// restartsFile, under the home's run folder, counts the restarts of every
// process `strata up` supervises since it started: `strata status` shows
// them.
const restartsFile = "restarts.json"

// Restart counts the restarts of one supervised process.
type Restart struct {
	Count int       `json:"count"`
	Last  time.Time `json:"last"`
	// Reason is why it was restarted the last time: how it exited, or the
	// last line of its log.
	Reason string `json:"reason"`
}

// restartLog records restarts, keyed by process name ("hub-1") or by
// cluster and Kubernetes component ("workload-1/kube-scheduler").
type restartLog struct {
	path string
	mu   sync.Mutex
	seen map[string]Restart
}

// newRestartLog starts the count of a `strata up` afresh.
func newRestartLog(home string) (*restartLog, error) {
	l := &restartLog{path: filepath.Join(home, runDir, restartsFile), seen: map[string]Restart{}}
	return l, l.save()
}

// record counts a restart of the named process; a nil log counts nothing.
func (l *restartLog) record(name, reason string, logger logr.Logger) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.seen[name]
	r.Count++
	r.Last, r.Reason = time.Now().UTC().Truncate(time.Second), reason
	l.seen[name] = r
	if err := l.save(); err != nil {
		logger.Error(err, "Recording a restart", "process", name)
	}
}

func (l *restartLog) save() error {
	raw, err := json.Marshal(l.seen)
	if err != nil {
		return err
	}
	return writeFileAtomic(l.path, raw)
}

// loadRestarts reads what the running `strata up` recorded; none when it
// recorded nothing.
func loadRestarts(home string) map[string]Restart {
	raw, err := os.ReadFile(filepath.Join(home, runDir, restartsFile))
	if err != nil {
		return nil
	}
	var seen map[string]Restart
	if json.Unmarshal(raw, &seen) != nil {
		return nil
	}
	return seen
}

// clusterComponentNames are the processes kwokctl runs for each cluster,
// by the name of their pid and log files.
var clusterComponentNames = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller"}

// clusterCheckInterval is how often the clusters' components are looked at.
const clusterCheckInterval = 2 * time.Second

// superviseClusterComponents starts the supervision of the clusters'
// components, from the moment they first run (a controller-manager gives up
// when its API server is not healthy within 20 s of its start, which a busy
// machine sees while the clusters come up) until Stop.
func (r *Running) superviseClusterComponents() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.superviseClusters(ctx, r.restarts, r.opts.Logger.WithName("clusters"))
	}()
	r.stopWatch = func() { cancel(); <-done }
}

// stopClusterSupervision ends it, so that nothing starts a component a
// stop is stopping.
func (r *Running) stopClusterSupervision() {
	if r.stopWatch != nil {
		r.stopWatch()
		r.stopWatch = nil
	}
}

// superviseClusters restarts the Kubernetes components of a cluster that
// exited (kwokctl starts them detached and never again): a controller-manager
// or a scheduler that lost its API server for too long, or was killed, comes
// back within clusterCheckInterval, and the restart is counted. A cluster
// whose restart fails is tried again later, with backoff.
func (r *Running) superviseClusters(ctx context.Context, restarts *restartLog, logger logr.Logger) {
	retryAt := map[string]time.Time{}
	backoff := map[string]time.Duration{}
	ticker := time.NewTicker(clusterCheckInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		for _, c := range r.Datacenter.Clusters {
			dir := ClusterDir(r.opts.Home, c.Name)
			missing := missingComponents(dir)
			if len(missing) == 0 {
				delete(backoff, c.Name)
				continue
			}
			if time.Now().Before(retryAt[c.Name]) {
				continue
			}
			for _, name := range missing {
				why := "exited; its log ends with " + lastLogLine(filepath.Join(dir, "logs", name+".log"))
				logger.Info("A Kubernetes component exited; restarting it", "cluster", c.Name, "component", name, "reason", why)
				restarts.record(c.Name+"/"+name, why, logger)
			}
			startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			err := r.kwok.start(startCtx, c.Name)
			cancel()
			if err != nil && ctx.Err() == nil {
				backoff[c.Name] = min(max(2*backoff[c.Name], restartMin), restartMax)
				retryAt[c.Name] = time.Now().Add(backoff[c.Name])
				logger.Error(err, "Restarting a cluster's components; trying again", "cluster", c.Name, "in", backoff[c.Name])
			}
		}
	}
}

// missingComponents names the cluster's Kubernetes components that do not
// run.
func missingComponents(clusterDir string) []string {
	running := runningComponents(clusterDir)
	var missing []string
	for _, name := range clusterComponentNames {
		if !slices.ContainsFunc(running, func(c component) bool { return c.name == name }) {
			missing = append(missing, name)
		}
	}
	return missing
}

// lastLogLine is the last line of a log, at most 300 bytes of it: what a
// process said as it exited.
func lastLogLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "no log"
	}
	defer f.Close() //nolint:errcheck // read only
	const tail = 4096
	info, err := f.Stat()
	if err != nil {
		return "no log"
	}
	buf := make([]byte, min(info.Size(), tail))
	if _, err := f.ReadAt(buf, info.Size()-int64(len(buf))); err != nil {
		return "no log"
	}
	lines := strings.Split(strings.TrimSpace(string(buf)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if len(last) > 300 {
		last = last[:300] + "..."
	}
	if last == "" {
		return "nothing in its log"
	}
	return fmt.Sprintf("%q", last)
}
