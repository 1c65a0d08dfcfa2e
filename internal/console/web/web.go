// Package web is the fleet console: server-rendered pages over the fleet
// aggregator's store (internal/console/store), kept live by Server-Sent
// Events, read-only, behind Kubernetes sign-in when it is not on loopback.
package web

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/strata-dev/strata/internal/console/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// DefaultAddress is where the console listens unless told otherwise: on
// loopback, where it needs no sign-in.
const DefaultAddress = "127.0.0.1:8090"

// DefaultPollInterval is how often the console reads the store's
// revisions to push changes to browsers.
const DefaultPollInterval = 250 * time.Millisecond

// Options configure the console.
type Options struct {
	// Store is the fleet store the pages read.
	Store *store.Store
	// Address is the host:port to listen on (DefaultAddress when empty).
	// Any address but a loopback one needs TLS and Auth: people sign in.
	Address string
	// TLSCertFile and TLSKeyFile are the serving certificate and its key
	// (PEM); required off loopback.
	TLSCertFile, TLSKeyFile string
	// Auth is the hub's clientset: sign-in reviews tokens (TokenReview) and
	// each view asks whether the user may see it (SubjectAccessReview).
	// Nil only on a loopback address.
	Auth kubernetes.Interface
	// PollInterval is how often the store's revisions are read for live
	// updates (DefaultPollInterval when 0).
	PollInterval time.Duration
	// Logger logs requests that fail and the server's life.
	Logger logr.Logger
	// Clock tells the time ("last seen 3 s ago", session expiry, polling);
	// the real one when nil.
	Clock clock.WithTicker
}

// Validate says what is missing or wrong, naming the option.
func (o *Options) Validate() error {
	var errs []error
	if o.Store == nil {
		errs = append(errs, errors.New("store: required"))
	}
	if o.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("pollInterval: %s is negative", o.PollInterval))
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		errs = append(errs, errors.New("tlsCertFile and tlsKeyFile: give both or neither"))
	}
	loopback, err := isLoopback(o.address())
	if err != nil {
		errs = append(errs, err)
	} else if !loopback {
		if o.TLSCertFile == "" || o.TLSKeyFile == "" {
			errs = append(errs, fmt.Errorf("tlsCertFile and tlsKeyFile: required to listen on %s, which is not a loopback address", o.address()))
		}
		if o.Auth == nil {
			errs = append(errs, fmt.Errorf("auth: a hub clientset is required to listen on %s, which is not a loopback address (people sign in with Kubernetes tokens)", o.address()))
		}
	}
	return errors.Join(errs...)
}

func (o *Options) address() string {
	if o.Address == "" {
		return DefaultAddress
	}
	return o.Address
}

// isLoopback reports whether addr's host is a loopback address (an IP or
// localhost); an empty host means every interface, which is not.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// Server is the console.
type Server struct {
	opts    Options
	store   *store.Store
	log     logr.Logger
	clock   clock.WithTicker
	signIn  bool
	pages   map[string]*pageTemplate
	handler http.Handler
	static  http.Handler

	// ctx lives as long as the server: the poller and the event streams
	// end with it.
	ctx    context.Context
	cancel context.CancelFunc

	live     *broadcaster
	pollOnce sync.Once
	auth     *authenticator
}

// New validates the options and builds the console.
func New(opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("invalid console options: %w", err)
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	loopback, _ := isLoopback(opts.address())
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	staticRoot, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("reading the console's static files: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:   opts,
		store:  opts.Store,
		log:    opts.Logger,
		clock:  opts.Clock,
		signIn: !loopback,
		pages:  pages,
		static: http.StripPrefix("/static/", http.FileServerFS(staticRoot)),
		ctx:    ctx,
		cancel: cancel,
		live:   newBroadcaster(),
	}
	if s.signIn {
		s.auth = newAuthenticator(opts.Auth, opts.Clock)
	}
	s.handler = s.routes()
	return s, nil
}

// Handler serves the console (for tests and for Run).
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the poller and ends the event streams (Run does it when its
// context is done).
func (s *Server) Close() { s.cancel() }

// Run listens on the address and serves until ctx is done, then shuts
// down gracefully.
func (s *Server) Run(ctx context.Context) error {
	defer s.cancel()
	ln, err := net.Listen("tcp", s.opts.address())
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.opts.address(), err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// Event streams derive from the server's context, so they end
		// when it stops instead of holding Shutdown.
		BaseContext: func(net.Listener) context.Context { return s.ctx },
		ErrorLog:    nil,
	}
	if s.opts.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.opts.TLSCertFile, s.opts.TLSKeyFile)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("loading the console's serving certificate %s: %w", s.opts.TLSCertFile, err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	s.log.Info("Serving the fleet console", "address", ln.Addr().String(), "signIn", s.signIn)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving the console: %w", err)
	case <-ctx.Done():
	}
	s.cancel()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting the console down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving the console: %w", err)
	}
	return nil
}
