// Package hub builds the hub's controller manager: the cluster controller,
// the pool controller, the cluster manager, the maintenance orchestrator and
// remediation, sharing one set of connections to the workload clusters,
// configured by a HubConfiguration. `strata serve hub` and the local
// datacenter both run it.
package hub

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/cluster"
	"github.com/strata-dev/strata/internal/cluster/index"
	"github.com/strata-dev/strata/internal/cluster/manager"
	"github.com/strata-dev/strata/internal/cluster/pool"
	"github.com/strata-dev/strata/internal/cluster/remediation"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/cluster/rollout"
	"github.com/strata-dev/strata/internal/component"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// Component is the hub's name in logs and metrics.
const Component = "hub"

// Scheme knows every type the hub's controllers use.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, rbacv1.AddToScheme, apiextensionsv1.AddToScheme, fleetv1alpha1.AddToScheme, appsv1alpha1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err) // only on a programming error in the list above
		}
	}
	return s
}

// Setup registers a controller that runs beside the hub's own, sharing its
// connections to the workload clusters: the workload layer's controllers
// that live on the hub (the AppNamespace controller) come in this way, as
// the cluster layer does not import the layer above it.
type Setup func(mgr ctrl.Manager, clusters *remote.Clusters) error

// Options are what the hub's manager is built from.
type Options struct {
	// Config is the hub's configuration, defaulted and validated.
	Config *configv1alpha1.HubConfiguration
	// RestConfig reaches the hub's API server; the configuration's client
	// limits are applied to a copy.
	RestConfig *rest.Config
	// Broker is the Compute Broker (see Dial), for every controller that
	// has no client of its own in Brokers.
	Broker brokerv1.BrokerServiceClient
	// Brokers are the controllers' own broker clients, each its own
	// identity (see DialControllers).
	Brokers Brokers
	Logger  logr.Logger
	// Controllers are set up after the hub's own.
	Controllers []Setup
}

// brokerFor is the broker client of a controller.
func (o Options) brokerFor(controller string) brokerv1.BrokerServiceClient {
	if b, ok := o.Brokers[controller]; ok {
		return b
	}
	return o.Broker
}

// NewManager builds the hub's controller manager; Start runs it.
func NewManager(ctx context.Context, o Options) (ctrl.Manager, error) {
	switch {
	case o.Config == nil:
		return nil, errors.New("the hub's manager needs its configuration")
	case o.RestConfig == nil:
		return nil, errors.New("the hub's manager needs a config of the hub's API server")
	case o.Broker == nil && len(o.Brokers) < len(BrokerCallers):
		return nil, errors.New("the hub's manager needs a broker client for each of its controllers")
	}
	c := o.Config
	mgr, err := ctrl.NewManager(component.RestConfig(o.RestConfig, c.ClientConnection),
		component.ManagerOptions(c.ControllerManager, Scheme(), cache.Options{ByObject: map[client.Object]cache.ByObject{
			// Only Strata's own Secrets are read.
			&corev1.Secret{}: {Namespaces: map[string]cache.Config{configv1alpha1.SystemNamespace: {}}},
		}}, o.Logger))
	if err != nil {
		return nil, fmt.Errorf("creating the hub's controller manager: %w", err)
	}
	if err := component.AddChecks(mgr, Component, c.ControllerManager); err != nil {
		return nil, err
	}
	if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	workloads, err := remote.NewWithOptions(mgr.GetClient(), remoteOptions(c.WorkloadClusters))
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(workloads); err != nil {
		return nil, err
	}
	// The Cluster controller counts the Nodes in the workload connections'
	// cache instead of listing them all at each probe.
	clusters, err := cluster.New(cluster.Options{
		Client: mgr.GetClient(), Prober: cluster.NewAPIProber().ReadinessOnly(), Nodes: workloads, ProbeInterval: c.Cluster.ProbeInterval.Duration,
	})
	if err != nil {
		return nil, err
	}
	if err := clusters.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the cluster controller: %w", err)
	}
	pools, err := pool.New(pool.Options{
		Hub: mgr.GetClient(), Broker: o.brokerFor(PoolController), Clusters: workloads, Recorder: mgr.GetEventRecorder(PoolController),
		TokenTTL: c.Pool.BootstrapTokenTTL.Duration,
	})
	if err != nil {
		return nil, err
	}
	if err := pools.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the pool controller: %w", err)
	}
	clusterManager, err := manager.New(manager.Options{
		Hub: mgr.GetClient(), Broker: o.brokerFor(ClusterManager), Clusters: workloads, DrainDeadline: c.ClusterManager.DrainDeadline.Duration,
	})
	if err != nil {
		return nil, err
	}
	if err := clusterManager.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the cluster manager: %w", err)
	}
	rollouts, err := rollout.New(rollout.Options{
		Hub: mgr.GetClient(), Broker: o.brokerFor(Orchestrator), Clusters: workloads, Recorder: mgr.GetEventRecorder(Orchestrator),
		ActiveInterval: c.Rollout.ActiveInterval.Duration,
	})
	if err != nil {
		return nil, err
	}
	if err := rollouts.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the maintenance orchestrator: %w", err)
	}
	remediator, err := remediation.New(remediation.Options{
		Hub: mgr.GetClient(), Broker: o.brokerFor(RemediationController), Clusters: workloads, Recorder: mgr.GetEventRecorder(RemediationController),
		NotReadyThreshold: c.Remediation.NotReadyThreshold.Duration, FaultHoldOff: c.Remediation.FaultHoldOff.Duration,
		ResyncInterval: c.Remediation.ResyncInterval.Duration,
	})
	if err != nil {
		return nil, err
	}
	if err := remediator.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the remediation controller: %w", err)
	}
	for _, setup := range o.Controllers {
		if err := setup(mgr, workloads); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}

// remoteOptions are the connections' options from the configuration.
func remoteOptions(w configv1alpha1.WorkloadClusters) remote.Options {
	return remote.Options{
		RequestTimeout: w.RequestTimeout.Duration, ConnectTimeout: w.ConnectTimeout.Duration,
		ProbeInterval: w.ProbeInterval.Duration, ProbeFailureThreshold: int(ptr.Deref(w.ProbeFailureThreshold, 0)),
		QPS: ptr.Deref(w.QPS, 0), Burst: int(ptr.Deref(w.Burst, 0)),
	}
}
