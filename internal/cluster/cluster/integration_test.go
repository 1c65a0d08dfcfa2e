package cluster_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/cluster"
	"github.com/strata-dev/strata/internal/testutil"
)

const ns = "strata-system"

// TestClusterController runs the controller against a real API server, which
// also plays the workload cluster that the Clusters point at.
func TestClusterController(t *testing.T) {
	env, cfg := testutil.StartEnv(t)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, fleetv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	startController(t, cfg, scheme)

	admin, err := env.AddUser(envtest.User{Name: "hub", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a reachable cluster is Ready with its version", func(t *testing.T) {
		testutil.MustCreate(t, c, testutil.MakeSecret(ns, "up-kubeconfig", "kubeconfig", kubeconfig))
		testutil.MustCreate(t, c, testutil.MakeCluster("up", ns).Obj())
		got := waitForReason(t, c, "up", fleetv1alpha1.ClusterReachableReason)
		if !strings.HasPrefix(got.Status.KubernetesVersion, "v1.37.") {
			t.Errorf("kubernetesVersion = %q, want the envtest API server's v1.37.x", got.Status.KubernetesVersion)
		}
		if got.Status.ObservedGeneration != got.Generation {
			t.Errorf("observedGeneration = %d, want %d", got.Status.ObservedGeneration, got.Generation)
		}
	})

	t.Run("a Secret created later is noticed without waiting for a probe", func(t *testing.T) {
		testutil.MustCreate(t, c, testutil.MakeCluster("late", ns).Obj())
		waitForReason(t, c, "late", fleetv1alpha1.KubeconfigSecretNotFoundReason)
		testutil.MustCreate(t, c, testutil.MakeSecret(ns, "late-kubeconfig", "kubeconfig", kubeconfig))
		waitForReason(t, c, "late", fleetv1alpha1.ClusterReachableReason)
	})

	t.Run("an API server that does not answer is reported", func(t *testing.T) {
		testutil.MustCreate(t, c, testutil.MakeSecret(ns, "down-kubeconfig", "kubeconfig", []byte(deadKubeconfig(t))))
		testutil.MustCreate(t, c, testutil.MakeCluster("down", ns).Obj())
		waitForReason(t, c, "down", fleetv1alpha1.APIServerUnreachableReason)
	})

	t.Run("a Secret without a kubeconfig is reported", func(t *testing.T) {
		testutil.MustCreate(t, c, testutil.MakeSecret(ns, "junk-kubeconfig", "kubeconfig", []byte("not: [a kubeconfig")))
		testutil.MustCreate(t, c, testutil.MakeCluster("junk", ns).Obj())
		waitForReason(t, c, "junk", fleetv1alpha1.KubeconfigInvalidReason)
	})

	t.Run("the schema rejects a bad datacenter name", func(t *testing.T) {
		err := c.Create(ctx, testutil.MakeCluster("bad", ns).Datacenter("Not_A_DNS_Label").Obj())
		if err == nil || !strings.Contains(err.Error(), "spec.datacenter") {
			t.Errorf("Create = %v, want a rejection that names spec.datacenter", err)
		}
	})
}

func startController(t *testing.T, cfg *rest.Config, scheme *runtime.Scheme) {
	t.Helper()
	testutil.StartManager(t, cfg, scheme, func(mgr ctrl.Manager) error {
		// A probe interval longer than the test: every change must come from a watch.
		r, err := cluster.New(cluster.Options{Client: mgr.GetClient(), Prober: cluster.NewAPIProber(), ProbeInterval: time.Hour})
		if err != nil {
			return err
		}
		return r.SetupWithManager(mgr)
	})
}

// waitForReason waits until the Cluster's Ready condition has the reason.
func waitForReason(t *testing.T, c client.Client, name, reason string) *fleetv1alpha1.Cluster {
	t.Helper()
	got := &fleetv1alpha1.Cluster{}
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: name}, got); err != nil {
			return false, err
		}
		cond := meta.FindStatusCondition(got.Status.Conditions, fleetv1alpha1.ClusterReadyCondition)
		if cond == nil {
			return false, nil
		}
		last = cond.Reason + ": " + cond.Message
		return cond.Reason == reason, nil
	})
	if err != nil {
		t.Fatalf("cluster %s: waiting for Ready reason %s, last saw %q: %v", name, reason, last, err)
	}
	return got
}

// deadKubeconfig points at a loopback port that nothing listens on.
func deadKubeconfig(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: dead, cluster: {server: "https://%s", insecure-skip-tls-verify: true}}]
users: [{name: dead, user: {token: x}}]
contexts: [{name: dead, context: {cluster: dead, user: dead}}]
current-context: dead
`, addr)
}
