// Package hubcli holds what the commands that talk to the hub share: the
// flag that names the hub and the client built from it.
package hubcli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/localdc"
)

// Hint ends errors of a hub call: what to check.
const Hint = "is `strata up` running? --hub-kubeconfig to point elsewhere"

// Flags say which hub to talk to.
type Flags struct {
	Global     *globals.Flags
	Kubeconfig string
}

// AddTo registers --hub-kubeconfig.
func (h *Flags) AddTo(fs *pflag.FlagSet) {
	fs.StringVar(&h.Kubeconfig, "hub-kubeconfig", "",
		"kubeconfig of the hub (default: the local datacenter's hub in the strata home)")
}

// Path is the hub's kubeconfig: --hub-kubeconfig, else the local
// datacenter's in the home.
func (h *Flags) Path() string {
	if h.Kubeconfig != "" {
		return h.Kubeconfig
	}
	return localdc.KubeconfigPath(h.Global.Home, localdc.HubName)
}

// Client connects to the hub; nil when no hub is named and the home holds
// no local datacenter.
func (h *Flags) Client() (client.Client, error) {
	path := h.Path()
	if h.Kubeconfig == "" {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("reading the hub's kubeconfig %s: %w", path, err)
	}
	return NewClient(cfg)
}

// NewClient returns a client of the hub at cfg that knows the hub's types:
// the fleet and apps APIs and Kubernetes' own (the kubeconfig Secrets of
// the workload clusters).
func NewClient(cfg *rest.Config) (client.Client, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, fleetv1alpha1.AddToScheme, appsv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// MustClient is Client for commands that need a hub: no hub is an error.
func (h *Flags) MustClient() (client.Client, error) {
	c, err := h.Client()
	if err == nil && c == nil {
		err = fmt.Errorf("no hub: the home %s holds no local datacenter (run `strata up`, or name a hub with --hub-kubeconfig)", h.Global.Home)
	}
	return c, err
}
