package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/console/store"
	"github.com/strata-dev/strata/internal/console/web"
)

// consoleReadyWait bounds the readiness probe's read of the store.
const consoleReadyWait = 2 * time.Second

func newConsole() *cobra.Command {
	var f managerFlags
	cmd := &cobra.Command{
		Use:   "console --config FILE",
		Short: "Serve the fleet console: every cluster, machine, rollout and app in one live web page",
		Long: `Serve the fleet console, configured by a ConsoleConfiguration
(config.strata.dev/v1alpha1): a read-only web application over the fleet
store that the aggregator keeps (the fleet map, clusters and pools,
rollouts, apps and their pods, search), pushing changes to browsers as they
happen.

On a loopback address (the default, 127.0.0.1:8090) anyone on the host may
look. Anywhere else it serves TLS only (tls.certFile, tls.keyFile), and a
person signs in with a Kubernetes bearer token that the hub reviews
(TokenReview), then sees what the hub's RBAC lets them see (a
SubjectAccessReview per view): --kubeconfig (or the Pod's ServiceAccount)
reaches the hub for that. Every replica serves; there is no leader.
/healthz and /readyz (ready: the store answers) are served on
health.bindAddress (:8081), /metrics on metrics.bindAddress (:8080).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := &configv1alpha1.ConsoleConfiguration{}
			if err := config.Load(f.config, c); err != nil {
				return err
			}
			dsn, err := databaseDSN(c.Database)
			if err != nil {
				return err
			}
			log := logger(cmd)
			ctx := cmd.Context()
			// The hub reviews sign-ins; on loopback nobody signs in, but
			// a kubeconfig given is used all the same.
			var auth kubernetes.Interface
			if f.kubeconfig != "" || !configv1alpha1.IsLoopbackTarget(c.Listen) {
				restCfg, err := f.restConfig()
				if err != nil {
					return err
				}
				restCfg.Timeout = consoleReviewTimeout
				if auth, err = kubernetes.NewForConfig(restCfg); err != nil {
					return fmt.Errorf("a client of the hub: %w", err)
				}
			}
			st, err := store.Open(ctx, dsn)
			if err != nil {
				return err
			}
			defer st.Close() //nolint:errcheck // closed at exit
			srv, err := web.New(web.Options{
				Store: st, Address: c.Listen, TLSCertFile: c.TLS.CertFile, TLSKeyFile: c.TLS.KeyFile, Auth: auth,
				PollInterval: c.PollInterval.Duration, Logger: log,
			})
			if err != nil {
				return err
			}
			defer srv.Close()
			log.Info("Serving the fleet console", "address", c.Listen, "tls", c.TLS.CertFile != "",
				"health", c.Health.BindAddress, "metrics", c.Metrics.BindAddress)
			g, ctx := errgroup.WithContext(ctx)
			g.Go(func() error { return srv.Run(ctx) })
			if c.Health.BindAddress != "0" {
				mux := http.NewServeMux()
				mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
				mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
					rctx, cancel := context.WithTimeout(r.Context(), consoleReadyWait)
					defer cancel()
					if _, err := st.Revisions(rctx); err != nil {
						http.Error(w, "the fleet store does not answer: "+err.Error(), http.StatusServiceUnavailable)
						return
					}
					_, _ = w.Write([]byte("ok"))
				})
				g.Go(func() error { return serveHTTP(ctx, c.Health.BindAddress, mux) })
			}
			if c.Metrics.BindAddress != "0" {
				mux := http.NewServeMux()
				mux.Handle("/metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
				g.Go(func() error { return serveHTTP(ctx, c.Metrics.BindAddress, mux) })
			}
			return g.Wait()
		},
	}
	f.addTo(cmd, "kubeconfig of the hub, which reviews sign-ins (needed beyond loopback)")
	return cmd
}

// consoleReviewTimeout bounds each TokenReview and SubjectAccessReview.
const consoleReviewTimeout = 10 * time.Second

// serveHTTP serves handler on address until ctx is done.
func serveHTTP(ctx context.Context, address string, handler http.Handler) error {
	srv := &http.Server{Addr: address, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving %s: %w", address, err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("stopping %s: %w", address, err)
	}
	return nil
}
