package appscli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

type statusOptions struct {
	hub      hub
	output   string
	workload string
}

func newStatus(h hub) *cobra.Command {
	o := &statusOptions{hub: h}
	cmd := &cobra.Command{
		Use:   "status APP[/WORKLOAD]",
		Short: "Show an app: where it runs, its versions and replicas, its shards, and why it is not Ready",
		Long: `Finds the app's AppNamespaces on the hub (spec.app, or the AppNamespace's name),
follows each to its workload cluster and namespace, and shows every
StatelessApp there: versions per track, replicas ready of wanted, the
conditions Ready, Progressing and Degraded, the failure (App: the app's to
fix; Infra: the platform's) with the offending pods, and a verdict; and every
StatefulApp: version and canary, replicas, the conditions Ready, Progressing
and ShardManagerReachable, each pod with its Node, version, readiness, the
shards its shard manager says it holds (DescribeShards; an unreachable shard
manager is said, not an error) and the operation pending on it: which
operation waits on whom.`,
		Example: `  kubectl strata status checkout
  kubectl strata status checkout/api
  kubectl strata status store/kv
  kubectl strata status checkout -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), args[0])
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: text (default), json or yaml")
	cmd.Flags().StringVar(&o.workload, "workload", "", "only this StatelessApp or StatefulApp of the app (also APP/WORKLOAD)")
	return cmd
}

func (o *statusOptions) run(ctx context.Context, out io.Writer, arg string) error {
	if err := validOutput(o.output, "text", "json", "yaml"); err != nil {
		return err
	}
	app, workload, err := splitApp(arg, o.workload)
	if err != nil {
		return err
	}
	all, err := appNamespaces(ctx, o.hub)
	if err != nil {
		return err
	}
	found, err := findApp(all, app)
	if err != nil {
		return err
	}
	read := readClusters(ctx, o.hub, found)
	status := &AppStatus{App: found[0].Spec.App}
	var unreachable []string
	var refused []string // what the caller may act on: a missing context, a refusal
	var names []string   // of the app's workloads, when --workload matches none
	matched := false
	for i := range found {
		r := read[i]
		names = append(names, r.workloads.names()...)
		w := r.workloads
		if workload != "" {
			w = w.only(workload)
			matched = matched || len(w.stateless)+len(w.stateful) > 0
		}
		switch {
		case isAccessError(r.err):
			if !slices.Contains(refused, r.err.Error()) {
				refused = append(refused, r.err.Error())
			}
		case r.err != nil:
			unreachable = append(unreachable, found[i].Status.Cluster)
		}
		status.Namespaces = append(status.Namespaces, newNamespaceStatus(&found[i], w, r.err, describeAll(ctx, r.reader, w.stateful)))
	}
	if workload != "" && !matched && len(unreachable)+len(refused) == 0 {
		has := "it has none"
		if len(names) > 0 {
			slices.Sort(names)
			has = "it has " + strings.Join(names, ", ")
		}
		return fmt.Errorf("app %s has no StatelessApp or StatefulApp %q (%s)", status.App, workload, has)
	}
	if o.output == "json" || o.output == "yaml" {
		if err := printData(out, o.output, status); err != nil {
			return err
		}
	} else {
		describe(out, status)
	}
	if len(unreachable) > 0 {
		refused = append(refused, fmt.Sprintf("could not read cluster %s (see above)", strings.Join(slices.Compact(unreachable), ", ")))
	}
	if len(refused) > 0 {
		return errors.New(strings.Join(refused, "\n"))
	}
	return nil
}

// splitApp parses APP[/WORKLOAD] and --workload.
func splitApp(arg, workload string) (app, name string, err error) {
	app, name, _ = strings.Cut(arg, "/")
	switch {
	case app == "":
		return "", "", fmt.Errorf("%q names no app: give APP or APP/WORKLOAD", arg)
	case name != "" && workload != "" && name != workload:
		return "", "", fmt.Errorf("%q and --workload %s name different workloads", arg, workload)
	case name == "":
		name = workload
	}
	return app, name, nil
}

// workloads are the StatelessApps and StatefulApps of a namespace.
type workloads struct {
	stateless []appsv1alpha1.StatelessApp
	stateful  []appsv1alpha1.StatefulApp
}

func (w workloads) names() []string {
	names := make([]string, 0, len(w.stateless)+len(w.stateful))
	for _, sa := range w.stateless {
		names = append(names, sa.Name)
	}
	for _, sa := range w.stateful {
		names = append(names, sa.Name)
	}
	return names
}

// only keeps the workloads named name.
func (w workloads) only(name string) workloads {
	return workloads{
		stateless: slices.DeleteFunc(slices.Clone(w.stateless), func(sa appsv1alpha1.StatelessApp) bool { return sa.Name != name }),
		stateful:  slices.DeleteFunc(slices.Clone(w.stateful), func(sa appsv1alpha1.StatefulApp) bool { return sa.Name != name }),
	}
}

// namespaceRead is what was read of one AppNamespace's namespace.
type namespaceRead struct {
	workloads workloads
	// err says why the namespace could not be read (cluster unreachable...).
	err error
	// reader reads the cluster as the caller: the CAs of the StatefulApps'
	// shard managers.
	reader client.Reader
}

// readClusters reads the StatelessApps and StatefulApps of each routed
// AppNamespace as the caller, connecting to each cluster once, the
// clusters in parallel. The result is aligned with ans; an unrouted
// AppNamespace reads nothing.
func readClusters(ctx context.Context, h hub, ans []appsv1alpha1.AppNamespace) []namespaceRead {
	byCluster := map[string][]int{}
	for i := range ans {
		if c := ans[i].Status.Cluster; c != "" {
			byCluster[c] = append(byCluster[c], i)
		}
	}
	out := make([]namespaceRead, len(ans))
	var wg sync.WaitGroup
	for cluster, idx := range byCluster {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
			defer cancel()
			namespaces := make([]string, len(idx))
			for j, i := range idx {
				namespaces[j] = namespaceOf(&ans[i])
			}
			read := readCluster(ctx, h, cluster, namespaces)
			for j, i := range idx {
				out[i] = read[namespaces[j]]
			}
		})
	}
	wg.Wait()
	return out
}

// readCluster returns what was read of namespaces in one cluster, by
// namespace: one list of each kind over all namespaces when there are
// several, else (or without the right to list them all, as an app owner
// has) one per namespace, each namespace with its own error: a caller may
// read one namespace of the cluster and not another.
func readCluster(ctx context.Context, h hub, cluster string, namespaces []string) map[string]namespaceRead {
	byNamespace := map[string]namespaceRead{}
	w, err := connect(h, cluster)
	if err != nil {
		for _, ns := range namespaces {
			byNamespace[ns] = namespaceRead{err: err}
		}
		return byNamespace
	}
	if len(namespaces) > 1 {
		stateless, err := w.statelessApps(ctx, "")
		var stateful []appsv1alpha1.StatefulApp
		if err == nil {
			stateful, err = w.statefulApps(ctx, "")
		}
		if err == nil {
			for _, ns := range namespaces {
				byNamespace[ns] = namespaceRead{reader: w.client}
			}
			for _, sa := range stateless {
				if r, ok := byNamespace[sa.Namespace]; ok {
					r.workloads.stateless = append(r.workloads.stateless, sa)
					byNamespace[sa.Namespace] = r
				}
			}
			for _, sa := range stateful {
				if r, ok := byNamespace[sa.Namespace]; ok {
					r.workloads.stateful = append(r.workloads.stateful, sa)
					byNamespace[sa.Namespace] = r
				}
			}
			return byNamespace
		}
		if !isAccessError(err) {
			for _, ns := range namespaces {
				byNamespace[ns] = namespaceRead{err: err}
			}
			return byNamespace
		}
	}
	for _, ns := range namespaces {
		stateless, err := w.statelessApps(ctx, ns)
		if err != nil {
			byNamespace[ns] = namespaceRead{err: err}
			continue
		}
		stateful, err := w.statefulApps(ctx, ns)
		byNamespace[ns] = namespaceRead{workloads: workloads{stateless: stateless, stateful: stateful}, err: err, reader: w.client}
	}
	return byNamespace
}
