package localdc

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// readyPoll is how often a starting cluster is asked whether it is ready.
const readyPoll = 250 * time.Millisecond

// readyReminder is how often, while the clusters start, a line says what
// they still wait for.
const readyReminder = 10 * time.Second

// What a starting cluster waits for, in order.
const (
	waitAPIServer      = "its API server to be ready (/readyz)"
	waitServiceAccount = `the "default" ServiceAccount, which its kube-controller-manager creates`
)

// readyProbe asks a starting cluster what it still waits for: "" when it is
// ready, else the step and the error that says why.
type readyProbe func(ctx context.Context, cluster string) (string, error)

// waitReady waits until every cluster's API server is ready and its
// controller-manager has made the default ServiceAccount (so pods can be
// made). While it takes long, a line says what each cluster waits for; after
// Options.ReadyTimeout the error names each cluster that was not ready.
func (r *Running) waitReady(ctx context.Context) error {
	clients := make(map[string]kubernetes.Interface, len(r.Datacenter.Clusters))
	var names []string
	for _, c := range r.Datacenter.Clusters {
		cfg, err := clientcmd.BuildConfigFromFlags("", KubeconfigPath(r.opts.Home, c.Name))
		if err != nil {
			return fmt.Errorf("cluster %s: reading kubeconfig: %w", c.Name, err)
		}
		// Two requests every readyPoll: above client-go's default 5 qps,
		// whose limiter would fail the requests near the deadline.
		cfg.QPS, cfg.Burst = 50, 100
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		clients[c.Name] = cs
		names = append(names, c.Name)
	}
	reminders := time.NewTicker(readyReminder)
	defer reminders.Stop()
	w := readyWait{
		timeout: r.opts.ReadyTimeout, poll: readyPoll, reminders: reminders.C, progress: r.progress,
		logsOf: func(cluster string) string { return filepath.Join(ClusterDir(r.opts.Home, cluster), "logs") },
	}
	return w.run(ctx, names, func(ctx context.Context, cluster string) (string, error) {
		return clusterReady(ctx, clients[cluster])
	})
}

// clusterReady says what a starting cluster still waits for.
func clusterReady(ctx context.Context, cs kubernetes.Interface) (string, error) {
	if body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		if failed := failedChecks(body); len(failed) > 0 {
			// The error holds the whole body, some 40 lines.
			return waitAPIServer, fmt.Errorf("failing checks: %s", strings.Join(failed, ", "))
		}
		return waitAPIServer, err
	}
	if _, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{}); err != nil {
		return waitServiceAccount, err
	}
	return "", nil
}

// failedChecks lists the checks that a /readyz body reports failing, in
// lines like "[-]poststarthook/rbac/bootstrap-roles failed: reason withheld".
func failedChecks(body []byte) []string {
	var failed []string
	for _, line := range strings.Split(string(body), "\n") {
		if check, ok := strings.CutPrefix(line, "[-]"); ok {
			failed = append(failed, strings.TrimSuffix(check, " failed: reason withheld"))
		}
	}
	return failed
}

// readyWait waits for clusters to become ready.
type readyWait struct {
	timeout, poll time.Duration
	// reminders tick when a line should say what the clusters wait for.
	reminders <-chan time.Time
	progress  func(format string, args ...any)
	// logsOf is where a cluster's component logs are.
	logsOf func(cluster string) string
}

// waiting is what a cluster waits for and the last error that said why.
type waiting struct {
	what string
	err  error
}

// run probes every cluster until each is ready, the timeout passes or ctx
// ends.
func (w readyWait) run(ctx context.Context, clusters []string, probe readyProbe) error {
	began := time.Now()
	pollCtx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	var mu sync.Mutex
	state := make(map[string]waiting, len(clusters))
	for _, c := range clusters {
		state[c] = waiting{what: waitAPIServer}
	}
	var wg sync.WaitGroup
	for _, c := range clusters {
		wg.Go(func() {
			_ = wait.PollUntilContextCancel(pollCtx, w.poll, true, func(ctx context.Context) (bool, error) {
				what, err := probe(ctx, c)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case what == "":
					delete(state, c)
				case ctx.Err() != nil && state[c].err != nil:
					// The wait ended during the request (its error says
					// no more than that): the error before says more.
				default:
					state[c] = waiting{what: what, err: err}
				}
				return what == "", nil
			})
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-w.reminders:
			mu.Lock()
			left := describeWaiting(clusters, state, nil)
			mu.Unlock()
			if len(left) > 0 {
				w.progress("Still waiting after %s (at most %s; --timeout raises it): %s",
					time.Since(began).Round(time.Second), w.timeout, strings.Join(left, "; "))
			}
		case <-done:
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("waiting for the clusters to be ready: %w", err)
			}
			left := describeWaiting(clusters, state, w.logsOf)
			if len(left) == 0 {
				return nil
			}
			return fmt.Errorf("the clusters are not ready after %s: %s. A busy machine may need longer: `strata up --timeout %s`",
				w.timeout, strings.Join(left, "; "), 2*w.timeout)
		}
	}
}

// describeWaiting says, in the clusters' order, what each cluster that is
// not ready waits for, why, and (when logsOf is set) where its logs are.
func describeWaiting(clusters []string, state map[string]waiting, logsOf func(string) string) []string {
	var out []string
	for _, c := range clusters {
		s, ok := state[c]
		if !ok {
			continue
		}
		line := fmt.Sprintf("cluster %s waits for %s", c, s.what)
		var details []string
		if s.err != nil {
			details = append(details, "last error: "+s.err.Error())
		}
		if logsOf != nil {
			details = append(details, "its logs are in "+logsOf(c))
		}
		if len(details) > 0 {
			line += " (" + strings.Join(details, "; ") + ")"
		}
		out = append(out, line)
	}
	return out
}
