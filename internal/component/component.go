// Package component holds what every controller manager of Strata shares,
// built from its configuration kind: the client limits, leader election
// through a Lease released on shutdown, /healthz and /readyz, and /metrics
// with controller-runtime's metrics and Strata's own.
package component

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
)

// leaderGauge is 1 in a component that leads (or has no election), 0 in a
// standby: Strata's own metric beside controller-runtime's, on the same
// registry.
var leaderGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "strata_leader",
	Help: "1 when this replica of the component does the work (it leads, or there is no election), else 0.",
}, []string{"component"})

func init() {
	metrics.Registry.MustRegister(leaderGauge)
}

var leaseScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := coordinationv1.AddToScheme(s); err != nil {
		panic(err) // only on a programming error
	}
	return s
}()

// RestConfig is cfg with the client limits of the configuration.
func RestConfig(cfg *rest.Config, cc configv1alpha1.ClientConnection) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = ptr.Deref(cc.QPS, configv1alpha1.DefaultQPS), int(ptr.Deref(cc.Burst, configv1alpha1.DefaultBurst))
	return cfg
}

// ManagerOptions are the options of a controller manager configured by cm
// (defaulted), for scheme and cache, logging to logger. Every object its
// cache holds is without managed fields (unless cacheOpts has a default
// transform of its own): no controller of Strata reads them, and they are
// often the larger part of an object.
func ManagerOptions(cm configv1alpha1.ControllerManager, scheme *runtime.Scheme, cacheOpts cache.Options, logger logr.Logger) ctrl.Options {
	if cacheOpts.DefaultTransform == nil {
		cacheOpts.DefaultTransform = cache.TransformStripManagedFields()
	}
	le := cm.LeaderElection
	return ctrl.Options{
		Scheme:                  scheme,
		Logger:                  logger,
		Cache:                   cacheOpts,
		Metrics:                 metricsserver.Options{BindAddress: cm.Metrics.BindAddress},
		HealthProbeBindAddress:  cm.Health.BindAddress,
		LeaderElection:          ptr.Deref(le.LeaderElect, false),
		LeaderElectionID:        le.ResourceName,
		LeaderElectionNamespace: le.ResourceNamespace,
		// Resource lock: a coordination.k8s.io Lease (controller-runtime's
		// default), given up at shutdown so a standby takes over at once
		// rather than after the lease expires.
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 durationPtr(le.LeaseDuration),
		RenewDeadline:                 durationPtr(le.RenewDeadline),
		RetryPeriod:                   durationPtr(le.RetryPeriod),
		// The manager's Start returns when its context ends; the
		// controllers get this long to finish their reconciles.
		GracefulShutdownTimeout: ptr.To(30 * time.Second),
	}
}

func durationPtr(d *metav1.Duration) *time.Duration {
	if d == nil {
		return nil
	}
	return &d.Duration
}

// AddChecks registers the manager's health and readiness checks and
// Strata's leader metric. /healthz answers while the process runs; /readyz
// only once the informers the manager started have synced and, under
// leader election, once leadership is known: held by this replica, or seen
// held by another in the Lease. A standby is ready (it is a healthy
// replica that will take over); a replica that cannot tell is not.
func AddChecks(mgr manager.Manager, component string, cm configv1alpha1.ControllerManager) error {
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	elect := ptr.Deref(cm.LeaderElection.LeaderElect, false)
	lease := types.NamespacedName{Namespace: cm.LeaderElection.ResourceNamespace, Name: cm.LeaderElection.ResourceName}
	// Its own client: the manager's scheme need not know Leases.
	reader, err := client.New(mgr.GetConfig(), client.Options{Scheme: leaseScheme})
	if err != nil {
		return fmt.Errorf("creating the readiness check's client: %w", err)
	}
	ready := &readiness{mgr: mgr, elect: elect, lease: lease, reader: reader}
	if err := mgr.AddReadyzCheck("caches-and-leadership", ready.check); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	gauge := leaderGauge.WithLabelValues(component)
	gauge.Set(0)
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		select {
		case <-mgr.Elected():
			gauge.Set(1)
			mgr.GetLogger().Info("Leading", "component", component, "lease", lease)
		case <-ctx.Done():
		}
		<-ctx.Done()
		gauge.Set(0)
		return nil
	}))
}

// readiness is the readiness check of a controller manager.
type readiness struct {
	mgr    manager.Manager
	elect  bool
	lease  types.NamespacedName
	reader client.Reader
}

// cacheSyncWait bounds how long a probe waits for the informers: a probe
// is answered, not held open.
const cacheSyncWait = time.Second

func (r *readiness) check(req *http.Request) error {
	ctx, cancel := context.WithTimeout(req.Context(), cacheSyncWait)
	defer cancel()
	if !r.mgr.GetCache().WaitForCacheSync(ctx) {
		return errors.New("the informers have not synced yet")
	}
	select {
	case <-r.mgr.Elected():
		return nil // leading, or no election
	default:
	}
	if !r.elect {
		return errors.New("the manager has not started its controllers yet")
	}
	return r.heldByAnother(req.Context())
}

// heldByAnother says whether the Lease is held, unexpired, by a replica.
func (r *readiness) heldByAnother(ctx context.Context) error {
	var l coordinationv1.Lease
	if err := r.reader.Get(ctx, r.lease, &l); err != nil {
		return fmt.Errorf("leadership unknown: reading Lease %s: %w", r.lease, err)
	}
	holder := ptr.Deref(l.Spec.HolderIdentity, "")
	if holder == "" || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return fmt.Errorf("leadership unknown: Lease %s has no holder", r.lease)
	}
	expires := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
	if time.Now().After(expires) {
		return fmt.Errorf("leadership unknown: Lease %s of %s expired at %s", r.lease, holder, expires.Format(time.RFC3339))
	}
	return nil
}
