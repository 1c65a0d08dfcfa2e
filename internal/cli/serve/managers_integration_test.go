package serve

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/testutil"
)

// TestServeHubLeaderElection runs two `strata serve hub` processes of the
// binary built from this tree against one API server and one broker: the
// first becomes ready and leads, serving controller-runtime's and Strata's
// metrics; the second is ready too (it sees the Lease held) but does not
// lead; when the first stops it releases the Lease and the second takes
// over.
func TestServeHubLeaderElection(t *testing.T) {
	c, kubeconfig := startEnvWithSystemNamespace(t)
	broker := startBroker(t).address(t)
	strata := buildStrata(t)

	first := startHub(t, strata, kubeconfig, broker)
	first.waitReady(t)
	first.waitMetric(t, `strata_leader{component="hub"} 1`)
	metrics := first.get(t, "/metrics", first.metrics)
	if !strings.Contains(metrics, "controller_runtime_reconcile_total") {
		t.Errorf("/metrics of the hub has no controller_runtime_reconcile_total:\n%s", metrics)
	}
	lease := &coordinationv1.Lease{}
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: "strata-system", Name: "strata-hub"}, lease); err != nil {
		t.Fatalf("the leader's Lease: %v", err)
	}
	leader := ptr.Deref(lease.Spec.HolderIdentity, "")
	if leader == "" {
		t.Fatalf("Lease strata-system/strata-hub has no holder while the first hub leads: %+v", lease.Spec)
	}

	// The second replica: ready once it sees the Lease held, not leading
	// while the first holds it.
	second := startHub(t, strata, kubeconfig, broker)
	second.waitReady(t)
	if m := second.get(t, "/metrics", second.metrics); !strings.Contains(m, `strata_leader{component="hub"} 0`) {
		t.Errorf("the second hub's /metrics while the first leads: want strata_leader 0:\n%s", grepLines(m, "strata_leader"))
	}

	// The first stops: it gives the Lease up on its way out, and the
	// second leads.
	if err := first.stop(); err != nil {
		t.Fatalf("strata serve hub after its context ended: %v", err)
	}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(lease), lease); err != nil {
		t.Fatal(err)
	}
	if holder := ptr.Deref(lease.Spec.HolderIdentity, ""); holder == leader {
		t.Errorf("the first hub stopped and still holds the Lease (%s): it was not released", holder)
	}
	second.waitMetric(t, `strata_leader{component="hub"} 1`)
	second.waitReady(t)
}

// buildStrata builds cmd/strata from this tree (the build cache makes it
// a link when `make build` ran) and returns the binary's path.
func buildStrata(t *testing.T) string {
	t.Helper()
	strataBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "strata-serve-test")
		if err != nil {
			strataBuild.err = err
			return
		}
		strataBuild.bin = filepath.Join(dir, "strata")
		build := exec.Command("go", "build", "-o", strataBuild.bin, "./cmd/strata")
		build.Dir = testutil.RepoRoot(t)
		if out, err := build.CombinedOutput(); err != nil {
			strataBuild.err = fmt.Errorf("building strata: %w\n%s", err, out)
		}
	})
	if strataBuild.err != nil {
		t.Fatal(strataBuild.err)
	}
	return strataBuild.bin
}

// strataBuild is the binary the package's tests share: built once.
var strataBuild struct {
	once sync.Once
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if strataBuild.bin != "" {
		_ = os.RemoveAll(filepath.Dir(strataBuild.bin))
	}
	os.Exit(code)
}

// TestServeApps runs `strata serve apps` for one cluster: it elects itself
// on the strata-apps Lease, becomes ready and says it leads.
func TestServeApps(t *testing.T) {
	_, kubeconfig := startEnvWithSystemNamespace(t)
	apps := startComponent(t, buildStrata(t), kubeconfig, "apps", func(health, metrics string) string {
		return fmt.Sprintf(`apiVersion: config.strata.dev/v1alpha1
kind: AppsConfiguration
clusterName: workload-1
health: {bindAddress: %q}
metrics: {bindAddress: %q}
`, health, metrics)
	})
	apps.waitReady(t)
	apps.waitMetric(t, `strata_leader{component="apps"} 1`)
	if err := apps.stop(); err != nil {
		t.Errorf("strata serve apps after SIGTERM: %v", err)
	}
}

// startEnvWithSystemNamespace starts envtest with the namespace
// strata-system, and returns a client and an admin kubeconfig file.
func startEnvWithSystemNamespace(t *testing.T) (client.Client, string) {
	t.Helper()
	env, restCfg := testutil.StartEnv(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, testutil.AdminKubeconfig(t, env), 0o600); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(restCfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "strata-system"}})
	return c, kubeconfig
}

// runningComponent is a `strata serve` process.
type runningComponent struct {
	cmd *exec.Cmd
	// done is closed when the process ended, err.
	done            chan struct{}
	err             error
	stderr          *bytes.Buffer
	health, metrics string
}

func startHub(t *testing.T, strata, kubeconfig, broker string) *runningComponent {
	t.Helper()
	return startComponent(t, strata, kubeconfig, "hub", func(health, metrics string) string {
		// A short lease so a takeover after a crash would be quick; a
		// released one is taken at the next retry.
		return fmt.Sprintf(`apiVersion: config.strata.dev/v1alpha1
kind: HubConfiguration
health:
  bindAddress: %s
metrics:
  bindAddress: %s
leaderElection:
  leaseDuration: 6s
  renewDeadline: 4s
  retryPeriod: 500ms
broker:
  addresses: [%s]
`, health, metrics, broker)
	})
}

// startComponent runs `strata serve <component>` with the configuration
// that config writes for its health and metrics addresses.
func startComponent(t *testing.T, strata, kubeconfig, component string, config func(health, metrics string) string) *runningComponent {
	t.Helper()
	h := &runningComponent{done: make(chan struct{}), stderr: &bytes.Buffer{}, health: freeAddress(t), metrics: freeAddress(t)}
	path := filepath.Join(t.TempDir(), component+".yaml")
	if err := os.WriteFile(path, []byte(config(h.health, h.metrics)), 0o600); err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command(strata, "serve", component, "--config", path, "--kubeconfig", kubeconfig)
	h.cmd.Stderr = &lockedWriter{w: h.stderr}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(h.done)
		h.err = h.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = h.stop()
		if t.Failed() {
			t.Logf("strata serve %s (%s) logged:\n%s", component, h.health, h.stderr)
		}
	})
	return h
}

// stop sends SIGTERM, as the kubelet does, and returns how the process
// ended.
func (h *runningComponent) stop() error {
	select {
	case <-h.done:
	default:
		_ = h.cmd.Process.Signal(syscall.SIGTERM)
		<-h.done
	}
	return h.err
}

// lockedWriter is a writer safe for the process's output copier and the
// test.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *runningComponent) waitReady(t *testing.T) {
	t.Helper()
	h.poll(t, "/readyz on "+h.health, func() (bool, string) {
		resp, err := http.Get("http://" + h.health + "/readyz?verbose")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close() //nolint:errcheck // test
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK, string(body)
	})
}

func (h *runningComponent) waitMetric(t *testing.T, line string) {
	t.Helper()
	h.poll(t, line+" on "+h.metrics, func() (bool, string) {
		resp, err := http.Get("http://" + h.metrics + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close() //nolint:errcheck // test
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), line), grepLines(string(body), "strata_")
	})
}

func (h *runningComponent) get(t *testing.T, path, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() //nolint:errcheck // test
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// poll waits until ok says so, failing the test if the command ends first
// or after a bound that is no speed target.
func (h *runningComponent) poll(t *testing.T, what string, ok func() (bool, string)) {
	t.Helper()
	giveUp := time.After(time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		var done bool
		if done, last = ok(); done {
			return
		}
		select {
		case <-h.done:
			t.Fatalf("waiting for %s: the strata serve process ended: %v", what, h.err)
		case <-giveUp:
			t.Fatalf("waiting for %s: never; last answer:\n%s", what, last)
		case <-tick.C:
		}
	}
}

func grepLines(text, pattern string) string {
	re := regexp.MustCompile(regexp.QuoteMeta(pattern))
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if re.MatchString(l) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// freeAddress is a loopback address with a port that was free a moment
// ago (controller-runtime does not say which port it bound for ":0").
func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() //nolint:errcheck // test
	return l.Addr().String()
}
