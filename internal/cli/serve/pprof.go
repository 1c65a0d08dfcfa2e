package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
)

// pprofFlag is `strata serve --pprof-bind-address`, shared by every
// component.
const pprofFlag = "pprof-bind-address"

// pprofUsage is the flag's help.
const pprofUsage = `host:port where net/http/pprof answers (/debug/pprof/); off when empty (the default).
Loopback only (127.0.0.1:6060): profiles show the process's code paths and
goroutines, so they are reached through kubectl port-forward, never the Pod network`

// withPprof runs a component's command with /debug/pprof/ on *address
// while it runs, when the flag is given.
func withPprof(address *string, run func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if *address == "" {
			return run(cmd, args)
		}
		if !configv1alpha1.IsLoopbackTarget(*address) {
			return fmt.Errorf("--%s %s: profiles are served on loopback only (e.g. 127.0.0.1:6060); reach them with kubectl port-forward",
				pprofFlag, *address)
		}
		lis, err := net.Listen("tcp", *address)
		if err != nil {
			return fmt.Errorf("--%s: %w", pprofFlag, err)
		}
		g, ctx := errgroup.WithContext(cmd.Context())
		cmd.SetContext(ctx)
		g.Go(func() error { return servePprof(ctx, lis) })
		g.Go(func() error {
			// The component's end ends the profiles' server too.
			defer lis.Close() //nolint:errcheck // closed at exit
			return run(cmd, args)
		})
		return g.Wait()
	}
}

// pprofMux serves net/http/pprof's handlers under /debug/pprof/.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// servePprof serves the profiles on lis until ctx is done.
func servePprof(ctx context.Context, lis net.Listener) error {
	// No write timeout: a CPU profile or trace streams for its seconds.
	srv := &http.Server{Handler: pprofMux(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
			return nil
		}
		return fmt.Errorf("serving profiles on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown) // profiles being read are cut short
	return nil
}
