package remote

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/testutil"
)

const secretNamespace = "default"

// TestAccessors runs one API server that is both the hub and the workload
// cluster: cluster "direct" reaches it straight, cluster "proxied" through a
// proxy the test can make hang (it accepts connections and never answers).
func TestAccessors(t *testing.T) {
	env, cfg := testutil.StartEnv(t)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := fleetv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	hub, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := testutil.AdminKubeconfig(t, env)
	server, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	p := testutil.StartProxy(t, server.Host)
	register := func(name string, kubeconfig []byte) *fleetv1alpha1.Cluster {
		t.Helper()
		fc := testutil.MakeCluster(name, secretNamespace).Obj()
		testutil.MustCreate(t, hub, testutil.MakeSecret(secretNamespace, fc.Spec.KubeconfigSecretRef.Name, fleetv1alpha1.DefaultKubeconfigKey, kubeconfig))
		testutil.MustCreate(t, hub, fc)
		return fc
	}
	direct := register("direct", kubeconfig)
	proxied := register("proxied", testutil.KubeconfigWithServer(t, kubeconfig, "https://"+p.Addr()))

	t.Run("a hung cluster does not hold up the others", func(t *testing.T) {
		// Long timeouts: the call on the hung cluster stays blocked for the
		// whole subtest (with one global lock, the healthy cluster's call
		// would wait for it and the subtest fail a minute later).
		c := start(t, hub, Options{RequestTimeout: time.Minute, ConnectTimeout: time.Minute, ProbeTimeout: time.Minute})
		p.SetHung(true)
		defer p.SetHung(false) // ends the hung call
		hung := make(chan error, 1)
		go func() {
			_, err := c.Get(t.Context(), proxied)
			hung <- err
		}()
		<-p.HungConns // the call is waiting for the hung API server

		rc, err := c.Get(t.Context(), direct)
		if err != nil {
			t.Fatalf("Get of the healthy cluster: %v", err)
		}
		if err := rc.Client.List(t.Context(), &corev1.NodeList{}); err != nil {
			t.Fatalf("List of the healthy cluster's Nodes: %v", err)
		}
		if err := rc.Client.List(t.Context(), &corev1.PodList{}); err != nil {
			t.Fatalf("List of the healthy cluster's Pods: %v", err)
		}
		select {
		case err := <-hung:
			t.Fatalf("the call on the hung cluster ended (%v) before the healthy cluster answered: the test proves nothing", err)
		default:
		}
	})

	t.Run("a hung cluster's calls fail by their deadline, it is disconnected and comes back", func(t *testing.T) {
		c := start(t, hub, Options{
			RequestTimeout: time.Second, ConnectTimeout: 5 * time.Second, ProbeInterval: 100 * time.Millisecond,
			ProbeTimeout: 500 * time.Millisecond, ProbeFailureThreshold: 2,
			ReconnectInterval: 100 * time.Millisecond, MaxReconnectInterval: 200 * time.Millisecond,
		})
		rc, err := c.Get(t.Context(), proxied)
		if err != nil {
			t.Fatalf("Get while the cluster answers: %v", err)
		}
		a := accessorOf(c, "proxied")
		a.mu.RLock()
		conn := a.conn
		a.mu.RUnlock()
		p.SetHung(true)
		// Without a deadline, the request would wait for HTTP/2's own health
		// check to drop the connection, and fail with another error.
		err = rc.Client.List(t.Context(), &corev1.PodList{})
		if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("List of Pods on the hung cluster = %v, want an error that is ErrUnreachable, by its deadline", err)
		}
		err = rc.APIReader.Get(t.Context(), client.ObjectKey{Name: "default"}, &corev1.Namespace{})
		if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Get of a Namespace on the hung cluster = %v, want an error that is ErrUnreachable, by its deadline", err)
		}
		// A request got no answer: until a probe succeeds, Get answers
		// ErrUnreachable without waiting.
		if _, err := c.Get(t.Context(), proxied); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("Get of the hung cluster after a request got no answer = %v, want an error that is ErrUnreachable", err)
		}
		// The probes fail: the connection and its cache go.
		waitFor(t, "the hung cluster to be disconnected", func() bool {
			select {
			case <-conn.stopped:
				return true
			default:
				return false
			}
		})
		if _, err := c.Get(t.Context(), proxied); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("Get of the disconnected cluster = %v, want an error that is ErrUnreachable", err)
		}
		if _, err := c.Get(t.Context(), direct); err != nil {
			t.Errorf("Get of the healthy cluster while the other hangs: %v", err)
		}

		p.SetHung(false)
		waitFor(t, "the cluster to be reconnected", func() bool {
			_, err := c.Get(t.Context(), proxied)
			return err == nil
		})
		rc, err = c.Get(t.Context(), proxied)
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Client.List(t.Context(), &corev1.PodList{}); err != nil {
			t.Errorf("List of Pods after the cluster came back: %v", err)
		}
	})

	t.Run("a request without an answer makes callers fail fast until a probe succeeds", func(t *testing.T) {
		// No periodic probe, no disconnect: only the request can tell.
		c := start(t, hub, Options{
			RequestTimeout: time.Second, ProbeInterval: time.Hour, ProbeTimeout: 500 * time.Millisecond,
			ProbeFailureThreshold: 1000, ReconnectInterval: 100 * time.Millisecond, MaxReconnectInterval: 200 * time.Millisecond,
		})
		rc, err := c.Get(t.Context(), proxied)
		if err != nil {
			t.Fatalf("Get while the cluster answers: %v", err)
		}
		p.SetHung(true)
		if err := rc.Client.List(t.Context(), &corev1.PodList{}); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("List of Pods on the hung cluster = %v, want an error that is ErrUnreachable", err)
		}
		if _, err := c.Get(t.Context(), proxied); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("Get of the hung cluster after a request got no answer = %v, want an error that is ErrUnreachable", err)
		}
		p.SetHung(false)
		waitFor(t, "a probe to trust the cluster again", func() bool {
			_, err := c.Get(t.Context(), proxied)
			return err == nil
		})
	})

	t.Run("deleting a Cluster closes its accessor", func(t *testing.T) {
		c := start(t, hub, Options{ProbeInterval: 100 * time.Millisecond})
		gone := register("gone", kubeconfig)
		if _, err := c.Get(t.Context(), gone); err != nil {
			t.Fatal(err)
		}
		a := accessorOf(c, "gone")
		a.mu.RLock()
		conn := a.conn
		a.mu.RUnlock()
		if err := hub.Delete(t.Context(), gone); err != nil {
			t.Fatal(err)
		}
		select {
		case <-a.done:
		case <-time.After(time.Minute):
			t.Fatal("the accessor of a deleted Cluster still runs a minute later")
		}
		select {
		case <-conn.stopped:
		default:
			t.Error("the accessor stopped but its Node cache still runs")
		}
		c.mu.Lock()
		_, kept := c.accessors["gone"]
		c.mu.Unlock()
		if kept {
			t.Error("Clusters still holds the accessor of a deleted Cluster")
		}
	})

	t.Run("a new kubeconfig gets a new accessor", func(t *testing.T) {
		c := start(t, hub, Options{})
		before, err := c.Get(t.Context(), direct)
		if err != nil {
			t.Fatal(err)
		}
		secret := &corev1.Secret{}
		if err := hub.Get(t.Context(), client.ObjectKey{Namespace: secretNamespace, Name: direct.Spec.KubeconfigSecretRef.Name}, secret); err != nil {
			t.Fatal(err)
		}
		secret.Data[fleetv1alpha1.DefaultKubeconfigKey] = testutil.KubeconfigWithServer(t, kubeconfig, "https://"+p.Addr())
		if err := hub.Update(t.Context(), secret); err != nil {
			t.Fatal(err)
		}
		after, err := c.Get(t.Context(), direct)
		if err != nil {
			t.Fatal(err)
		}
		if after == before || string(after.Kubeconfig) != string(secret.Data[fleetv1alpha1.DefaultKubeconfigKey]) {
			t.Error("Get after the kubeconfig changed returned the old connection")
		}
	})
}

func TestOptionsValidate(t *testing.T) {
	cases := map[string]struct {
		opts Options
		want string
	}{
		"zero takes the defaults": {},
		"negative timeout":        {opts: Options{RequestTimeout: -time.Second}, want: "remote clusters: requestTimeout must not be negative, got -1s"},
		"negative threshold":      {opts: Options{ProbeFailureThreshold: -1}, want: "remote clusters: probeFailureThreshold must not be negative, got -1"},
		"max below first interval": {
			opts: Options{ReconnectInterval: time.Minute, MaxReconnectInterval: time.Second},
			want: "remote clusters: maxReconnectInterval (1s) must not be less than reconnectInterval (1m0s)",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := ""
			if err := tc.opts.Validate(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func accessorOf(c *Clusters, name string) *accessor {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accessors[name]
}

// start runs Clusters with o until the test ends.
func start(t *testing.T, hub client.Reader, o Options) *Clusters {
	t.Helper()
	c, err := NewWithOptions(hub, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
