package guardrails

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
)

// Guarded is a cluster the webhook server guards.
type Guarded struct {
	// Cluster names it in denials and logs.
	Cluster string
	// RestConfig reaches its API server (the checks read metadata).
	RestConfig *rest.Config
	// Prefix is where its checks are served: "" at the root, as
	// `strata serve webhook` does; "/clusters/<name>" in the local
	// datacenter, whose one server guards every cluster.
	Prefix string
}

// ServerOptions are what the webhook's manager is built from.
type ServerOptions struct {
	// Config is the webhook's configuration, defaulted and validated:
	// port, host, certDir (tls.crt and tls.key, reloaded when they
	// change), health and metrics addresses, client limits, and the
	// ValidatingWebhookConfigurations whose caBundle is set from
	// certDir/ca.crt.
	Config *configv1alpha1.WebhookConfiguration
	// RestConfig reaches the API server of the cluster whose webhook
	// configurations get the CA bundle.
	RestConfig *rest.Config
	// Guarded are the clusters served.
	Guarded []Guarded
	Logger  logr.Logger
}

// NewServer builds the manager of the guardrails' admission webhook: the
// checks of each guarded cluster over HTTPS (controller-runtime's webhook
// server, whose certificate watcher reloads the files when they change),
// /healthz, /readyz (ready once the HTTPS server answers) and /metrics.
// Every replica serves; there is no leader.
func NewServer(o ServerOptions) (ctrl.Manager, error) {
	switch {
	case o.Config == nil:
		return nil, errors.New("the webhook needs its configuration")
	case o.RestConfig == nil:
		return nil, errors.New("the webhook needs a config of its cluster's API server")
	case len(o.Guarded) == 0:
		return nil, errors.New("the webhook guards no cluster")
	}
	c := o.Config
	srv := crwebhook.NewServer(crwebhook.Options{
		Host: c.Host, Port: int(ptr.Deref(c.Port, configv1alpha1.DefaultWebhookPort)), CertDir: c.CertDir,
		CertName: CertFile, KeyName: KeyFile,
	})
	for _, g := range o.Guarded {
		cfg := rest.CopyConfig(g.RestConfig)
		cfg.QPS, cfg.Burst = ptr.Deref(c.ClientConnection.QPS, configv1alpha1.DefaultQPS), int(ptr.Deref(c.ClientConnection.Burst, configv1alpha1.DefaultBurst))
		md, err := metadata.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("connecting to cluster %s: %w", g.Cluster, err)
		}
		h, err := NewHandler(Options{Metadata: md, Cluster: g.Cluster})
		if err != nil {
			return nil, err
		}
		if g.Prefix != "" {
			h = http.StripPrefix(g.Prefix, h)
		}
		for _, path := range []string{NamespaceDeletePath, CRDDeletePath, EvictionPath, ScalePath} {
			srv.Register(g.Prefix+path, h)
		}
	}
	scheme := runtime.NewScheme()
	if err := admissionregistrationv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(o.RestConfig, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 o.Logger,
		Metrics:                metricsserver.Options{BindAddress: c.Metrics.BindAddress},
		HealthProbeBindAddress: c.Health.BindAddress,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the webhook's manager: %w", err)
	}
	if err := mgr.Add(srv); err != nil {
		return nil, fmt.Errorf("adding the webhook server: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("webhook-serving", srv.StartedChecker()); err != nil {
		return nil, err
	}
	if len(c.ValidatingWebhookConfigurations) > 0 {
		// A plain client: the injector reads each configuration afresh.
		cl, err := client.New(o.RestConfig, client.Options{Scheme: scheme})
		if err != nil {
			return nil, err
		}
		inj := &caInjector{client: cl, caFile: filepath.Join(c.CertDir, CAFile), names: c.ValidatingWebhookConfigurations, log: o.Logger}
		if err := mgr.Add(inj); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}

// caInjectInterval is how often the CA bundle is checked again: a renewed
// CA (the Secret's ca.crt) and a webhook configuration re-applied without
// one are both mended within it.
const caInjectInterval = 30 * time.Second

// caInjector sets the caBundle of the named ValidatingWebhookConfigurations
// to the certificate directory's ca.crt.
type caInjector struct {
	client client.Client
	caFile string
	names  []string
	log    logr.Logger
}

// NeedLeaderElection: every replica serves, and injecting the same bundle
// twice is harmless.
func (*caInjector) NeedLeaderElection() bool { return false }

// Start injects now and then every caInjectInterval until ctx ends.
func (i *caInjector) Start(ctx context.Context) error {
	t := time.NewTicker(caInjectInterval)
	defer t.Stop()
	for {
		if err := i.inject(ctx); err != nil {
			i.log.Error(err, "Injecting the CA bundle into the webhook configurations")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (i *caInjector) inject(ctx context.Context) error {
	ca, err := os.ReadFile(i.caFile)
	if err != nil {
		return fmt.Errorf("reading the CA bundle: %w", err)
	}
	if len(bytes.TrimSpace(ca)) == 0 {
		return fmt.Errorf("the CA bundle %s is empty", i.caFile)
	}
	var errs []error
	for _, name := range i.names {
		if err := i.injectInto(ctx, name, ca); err != nil {
			errs = append(errs, fmt.Errorf("ValidatingWebhookConfiguration %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (i *caInjector) injectInto(ctx context.Context, name string, ca []byte) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var vwc admissionregistrationv1.ValidatingWebhookConfiguration
		if err := i.client.Get(ctx, client.ObjectKey{Name: name}, &vwc); err != nil {
			return err
		}
		changed := false
		for j := range vwc.Webhooks {
			if !bytes.Equal(vwc.Webhooks[j].ClientConfig.CABundle, ca) {
				vwc.Webhooks[j].ClientConfig.CABundle = ca
				changed = true
			}
		}
		if !changed {
			return nil
		}
		if err := i.client.Update(ctx, &vwc); err != nil {
			return err
		}
		i.log.Info("CA bundle injected by Strata", "validatingWebhookConfiguration", name, "webhooks", len(vwc.Webhooks))
		return nil
	})
}

var _ manager.LeaderElectionRunnable = (*caInjector)(nil)
