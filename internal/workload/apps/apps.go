// Package apps builds the controller manager of one workload cluster's app
// controllers (StatelessApp, StatefulApp, and the gang of queued Jobs), configured by an
// AppsConfiguration. `strata serve apps` and the local datacenter both run
// it.
package apps

import (
	"errors"
	"fmt"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/component"
	"github.com/strata-dev/strata/internal/workload/appcache"
	"github.com/strata-dev/strata/internal/workload/jobgang"
	"github.com/strata-dev/strata/internal/workload/statefulapp"
	"github.com/strata-dev/strata/internal/workload/statelessapp"
)

// Component is the app controllers' name in logs and metrics.
const Component = "apps"

// Scheme is the scheme of a workload cluster's controllers.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, appsv1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // only on a programming error in the list above
		}
	}
	return s
}

// Options are what the manager is built from.
type Options struct {
	// Config is the configuration, defaulted and validated.
	Config *configv1alpha1.AppsConfiguration
	// RestConfig reaches the workload cluster's API server, as Strata's
	// ServiceAccount strata-apps; the configuration's client limits are
	// applied to a copy.
	RestConfig *rest.Config
	Logger     logr.Logger
}

// NewManager builds the manager of the cluster's app controllers. The
// StatefulApp controller reaches each app's shard manager over gRPC
// (spec.shardManager.endpoint); its connections close with the manager.
func NewManager(o Options) (ctrl.Manager, error) {
	switch {
	case o.Config == nil:
		return nil, errors.New("the app controllers' manager needs its configuration")
	case o.RestConfig == nil:
		return nil, errors.New("the app controllers' manager needs a config of the cluster's API server")
	}
	c := o.Config
	mgr, err := ctrl.NewManager(component.RestConfig(o.RestConfig, c.ClientConnection),
		component.ManagerOptions(c.ControllerManager, Scheme(), appcache.Options(), o.Logger))
	if err != nil {
		return nil, fmt.Errorf("creating the controller manager of cluster %s: %w", c.ClusterName, err)
	}
	if err := component.AddChecks(mgr, Component, c.ControllerManager); err != nil {
		return nil, err
	}
	stateless, err := statelessapp.New(statelessapp.Options{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("statelessapp-controller"), Cluster: c.ClusterName,
	})
	if err != nil {
		return nil, err
	}
	if err := stateless.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the StatelessApp controller of cluster %s: %w", c.ClusterName, err)
	}
	stateful, err := statefulapp.New(statefulapp.Options{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("statefulapp-controller"), Cluster: c.ClusterName,
	})
	if err != nil {
		return nil, err
	}
	if err := stateful.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the StatefulApp controller of cluster %s: %w", c.ClusterName, err)
	}
	gangs, err := jobgang.New(jobgang.Options{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("jobgang-controller"), Cluster: c.ClusterName})
	if err != nil {
		return nil, err
	}
	if err := gangs.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the gang controller of cluster %s: %w", c.ClusterName, err)
	}
	return mgr, nil
}
