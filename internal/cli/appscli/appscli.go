// Package appscli holds the app owner's view of Strata: `kubectl strata`
// (the strata binary run as kubectl-strata, a kubectl plugin) and the same
// verbs under `strata apps`. Given only the hub's kubeconfig, it finds an
// app's AppNamespaces on the hub, the workload clusters they were routed to,
// and reads the app's StatelessApps, StatefulApps (with their shard
// managers' view of the shards) and pods there: no context to switch, no -n
// to remember.
package appscli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/cli/hubcli"
	"github.com/strata-dev/strata/internal/localdc"
)

// PluginName is the executable name kubectl looks for on PATH to run
// `kubectl strata`; the strata binary behaves as the plugin under it.
const PluginName = "kubectl-strata"

// hub says how to reach the hub and what to check when that fails.
type hub interface {
	Client() (client.Client, error)
	// Hint ends errors of hub calls: what to check.
	Hint() string
}

// strataHub is the hub of the strata commands: --hub-kubeconfig, by default
// the local datacenter's.
type strataHub struct{ hubcli.Flags }

func (h *strataHub) Client() (client.Client, error) { return h.MustClient() }
func (h *strataHub) Hint() string                   { return hubcli.Hint }

// kubectlHub is the hub of the plugin: kubectl's kubeconfig loading rules
// (--kubeconfig, else KUBECONFIG, else ~/.kube/config) and --context, else
// the current context.
type kubectlHub struct {
	kubeconfig string
	context    string
	// contextName is the context used, for messages; set by Client.
	contextName string
}

func (h *kubectlHub) addTo(fs *pflag.FlagSet) {
	fs.StringVar(&h.kubeconfig, "kubeconfig", "", "kubeconfig of the hub (default: KUBECONFIG, else ~/.kube/config)")
	fs.StringVar(&h.context, "context", "", "kubeconfig context of the hub (default: the current context)")
}

func (h *kubectlHub) Client() (client.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = h.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: h.context})
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	h.contextName = raw.CurrentContext
	if h.context != "" {
		h.contextName = h.context
	}
	cfg, err := cc.ClientConfig()
	switch {
	case clientcmd.IsEmptyConfig(err):
		return nil, fmt.Errorf("no kubeconfig: kubectl strata talks to the Strata hub; point KUBECONFIG or --kubeconfig at the hub's kubeconfig "+
			"(the local datacenter's is %s)", localdc.KubeconfigPath(globals.DefaultHome, localdc.HubName))
	case err != nil:
		return nil, fmt.Errorf("loading the kubeconfig (context %q): %w", h.contextName, err)
	}
	return hubcli.NewClient(cfg)
}

func (h *kubectlHub) Hint() string {
	return fmt.Sprintf("is context %q the Strata hub? --context or KUBECONFIG select another", h.contextName)
}

// NewCommand returns `strata apps`.
func NewCommand(g *globals.Flags) *cobra.Command {
	h := &strataHub{hubcli.Flags{Global: g}}
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "Show apps as their owners see them: status, list, logs (also `kubectl strata`)",
		Long: `An app's AppNamespaces on the hub say which workload cluster and namespace it
runs in; these verbs follow them there and read its StatelessApps,
StatefulApps and pods.
The same verbs are the kubectl plugin 'kubectl strata' (bin/kubectl-strata on
PATH), which reads the hub's kubeconfig the way kubectl does.`,
		Args: cobra.NoArgs,
	}
	h.AddTo(cmd.PersistentFlags())
	list := newList(h, "list", nil)
	cmd.AddCommand(newStatus(h), list, newLogs(h))
	// `strata apps` alone lists them.
	cmd.RunE = list.RunE
	return cmd
}

// NewPluginCommand returns the root of `kubectl strata`; the caller adds
// `version`.
func NewPluginCommand() *cobra.Command {
	h := &kubectlHub{}
	cmd := &cobra.Command{
		Use:   PluginName,
		Short: "Strata apps from kubectl: status, get apps, logs",
		Long: `kubectl strata shows Strata apps from the hub's point of view. The current
kubeconfig context must be the Strata hub: the app's AppNamespace there says
which workload cluster and namespace the app runs in, and kubectl strata
follows it (no context switch, no -n).

  kubectl strata status <app>        the app's workloads, versions, replicas, shards and why they are not Ready
  kubectl strata get apps            every app on the hub, with its cluster and status
  kubectl strata logs <app>          the logs of the app's pods`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl strata"},
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.CompletionOptions.DisableDefaultCmd = true
	h.addTo(cmd.PersistentFlags())
	get := &cobra.Command{
		Use:   "get apps",
		Short: "List apps (the only kind kubectl strata gets; kubectl get the rest)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("get what? kubectl strata get apps lists the apps; kubectl get does the rest")
			}
			return fmt.Errorf("kubectl strata cannot get %q: only apps (kubectl get does the rest)", args[0])
		},
	}
	get.AddCommand(newList(h, "apps", []string{"app", "application", "applications"}))
	cmd.AddCommand(newStatus(h), get, newLogs(h))
	return cmd
}

// validOutput checks -o against the formats a verb knows.
func validOutput(output string, formats ...string) error {
	for _, f := range append([]string{""}, formats...) {
		if output == f {
			return nil
		}
	}
	return fmt.Errorf("--output %q is not one of %s", output, strings.Join(formats, ", "))
}

// printData writes v as YAML, or JSON for output "json".
func printData(out io.Writer, output string, v any) error {
	raw, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	if output == "json" {
		if raw, err = yaml.YAMLToJSONStrict(raw); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintln(out, strings.TrimSpace(string(raw)))
	return err
}
