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
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
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

// hub says how to reach the hub, and the workload clusters as the person
// running the command.
type hub interface {
	Client() (client.Client, error)
	// Hint ends errors of hub calls: what to check.
	Hint() string
	// workloadConfig is how the caller reaches workload cluster name with
	// their own credentials, and the kubeconfig context that holds them.
	// The hub's credentials for the cluster (the Cluster's kubeconfig
	// Secret) are never used: they would show anyone who may read the
	// hub's Secrets everything, as the hub.
	workloadConfig(name string) (*rest.Config, string, error)
}

// clusterContexts maps a Cluster's name to the kubeconfig context that
// reaches it (--cluster-context), for contexts not named after their
// Cluster.
type clusterContexts map[string]string

func (c *clusterContexts) addTo(fs *pflag.FlagSet) {
	fs.StringToStringVar((*map[string]string)(c), "cluster-context", nil,
		"CLUSTER=CONTEXT: the kubeconfig context that reaches workload cluster CLUSTER (default: the context named CLUSTER); repeatable")
}

func (c clusterContexts) of(cluster string) string {
	if ctx, ok := c[cluster]; ok {
		return ctx
	}
	return cluster
}

// strataHub is the hub of the strata commands: --hub-kubeconfig, by default
// the local datacenter's; the workload clusters are that kubeconfig's
// contexts named after them.
type strataHub struct {
	hubcli.Flags
	contexts clusterContexts
	client   clientOnce
}

// clientOnce builds the hub's client once per command.
type clientOnce struct {
	once   sync.Once
	client client.Client
	err    error
}

func (o *clientOnce) get(build func() (client.Client, error)) (client.Client, error) {
	o.once.Do(func() { o.client, o.err = build() })
	return o.client, o.err
}

func (h *strataHub) Client() (client.Client, error) { return h.client.get(h.MustClient) }
func (h *strataHub) Hint() string                   { return hubcli.Hint }

func (h *strataHub) workloadConfig(name string) (*rest.Config, string, error) {
	path := h.Path()
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("reading the hub's kubeconfig %s: %w", path, err)
	}
	context := h.contexts.of(name)
	cfg, err := workloadConfig(*raw, name, context, clientcmd.ConfigOverrides{}, "the kubeconfig "+path+" (--hub-kubeconfig)")
	return cfg, context, err
}

// kubectlHub is the hub of the plugin, from kubectl's own flags: the
// kubeconfig as kubectl loads it (--kubeconfig, else KUBECONFIG, else
// ~/.kube/config), --context, else the current context, and client-go's
// override flags that kubectl binds (--as, --as-group, --as-uid, --token,
// --user, --server...). A workload cluster is the kubeconfig's context
// named after it (or --cluster-context), with the same impersonation: the
// person is the same in every cluster.
type kubectlHub struct {
	kubeconfig string
	overrides  clientcmd.ConfigOverrides
	contexts   clusterContexts
	// contextName is the context used, for messages; set by Client.
	contextName string
	client      clientOnce
}

func (h *kubectlHub) addTo(fs *pflag.FlagSet) {
	fs.StringVar(&h.kubeconfig, "kubeconfig", "", "kubeconfig of the hub (default: KUBECONFIG, else ~/.kube/config)")
	flags := clientcmd.RecommendedConfigOverrideFlags("")
	flags.CurrentContext.Description = "kubeconfig context of the hub (default: the current context)"
	// The app's namespace comes from the hub: no -n.
	flags.ContextOverrideFlags.Namespace = clientcmd.FlagInfo{}
	clientcmd.BindOverrideFlags(&h.overrides, fs, flags)
	h.contexts.addTo(fs)
}

// loader loads the kubeconfig as kubectl does, with the flags' overrides.
func (h *kubectlHub) loader() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = h.kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &h.overrides)
}

func (h *kubectlHub) Client() (client.Client, error) { return h.client.get(h.newClient) }

func (h *kubectlHub) newClient() (client.Client, error) {
	loader := h.loader()
	raw, err := loader.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	h.contextName = raw.CurrentContext
	if h.overrides.CurrentContext != "" {
		h.contextName = h.overrides.CurrentContext
	}
	cfg, err := loader.ClientConfig()
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

func (h *kubectlHub) workloadConfig(name string) (*rest.Config, string, error) {
	loader := h.loader()
	raw, err := loader.RawConfig()
	if err != nil {
		return nil, "", fmt.Errorf("reading the kubeconfig: %w", err)
	}
	// Only who the caller is and the request timeout carry over to the
	// workload clusters; --server, --token, --user and the like name the
	// hub's.
	overrides := clientcmd.ConfigOverrides{Timeout: h.overrides.Timeout}
	overrides.AuthInfo.Impersonate = h.overrides.AuthInfo.Impersonate
	overrides.AuthInfo.ImpersonateUID = h.overrides.AuthInfo.ImpersonateUID
	overrides.AuthInfo.ImpersonateGroups = h.overrides.AuthInfo.ImpersonateGroups
	where := "the kubeconfig"
	if files := loader.ConfigAccess().GetLoadingPrecedence(); len(files) > 0 {
		where += " " + strings.Join(files, string(filepath.ListSeparator))
	}
	context := h.contexts.of(name)
	cfg, err := workloadConfig(raw, name, context, overrides, where)
	return cfg, context, err
}

// NewCommand returns `strata apps`.
func NewCommand(g *globals.Flags) *cobra.Command {
	h := &strataHub{Flags: hubcli.Flags{Global: g}}
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "Show apps as their owners see them: status, list, logs, releases, clusters (also `kubectl strata`)",
		Long: `An app's AppNamespaces on the hub say which workload cluster and namespace it
runs in; these verbs follow them there and read its StatelessApps,
StatefulApps and pods.
The same verbs are the kubectl plugin 'kubectl strata' (bin/kubectl-strata on
PATH), which reads the hub's kubeconfig the way kubectl does.`,
		Args: cobra.NoArgs,
	}
	h.AddTo(cmd.PersistentFlags())
	h.contexts.addTo(cmd.PersistentFlags())
	list := newList(h, "list", nil)
	cmd.AddCommand(newStatus(h), list, newLogs(h), newJobs(h), newRelease(h), newCluster(h))
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
  kubectl strata logs <app>          the logs of the app's pods
  kubectl strata jobs [queue]        batch queues' usage against quota; a queue's jobs, their place and why they wait
  kubectl strata release resume|rollback|pause|unpause <app>
                                     steer the release of an app declared on the hub
  kubectl strata cluster list|cordon|uncordon [cluster]
                                     the workload clusters; take one out of placement and back`,
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
	cmd.AddCommand(newStatus(h), get, newLogs(h), newJobs(h), newRelease(h), newCluster(h))
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
