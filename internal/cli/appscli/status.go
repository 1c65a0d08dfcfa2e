package appscli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
		Use:   "status APP[/STATELESSAPP]",
		Short: "Show an app: where it runs, its versions and replicas, and why it is not Ready",
		Long: `Finds the app's AppNamespaces on the hub (spec.app, or the AppNamespace's name),
follows each to its workload cluster and namespace, and shows every
StatelessApp there: versions per track, replicas ready of wanted, the
conditions Ready, Progressing and Degraded, the failure (App: the app's to
fix; Infra: the platform's) with the offending pods, and a verdict.`,
		Example: `  kubectl strata status checkout
  kubectl strata status checkout/api
  kubectl strata status checkout -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), args[0])
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: text (default), json or yaml")
	cmd.Flags().StringVar(&o.workload, "workload", "", "only this StatelessApp of the app (also APP/STATELESSAPP)")
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
	hubClient, all, err := appNamespaces(ctx, o.hub)
	if err != nil {
		return err
	}
	found, err := findApp(all, app)
	if err != nil {
		return err
	}
	read := readClusters(ctx, hubClient, found)
	status := &AppStatus{App: found[0].Spec.App}
	var unreachable []string
	var names []string // of the app's StatelessApps, when --workload matches none
	matched := false
	for i := range found {
		r := read[i]
		names = append(names, statelessAppNames(r.apps)...)
		apps := r.apps
		if workload != "" {
			apps = slices.DeleteFunc(slices.Clone(apps), func(sa appsv1alpha1.StatelessApp) bool { return sa.Name != workload })
			matched = matched || len(apps) > 0
		}
		reason := ""
		if r.err != nil {
			reason = r.err.Error()
			unreachable = append(unreachable, found[i].Status.Cluster)
		}
		status.Namespaces = append(status.Namespaces, newNamespaceStatus(&found[i], apps, reason))
	}
	if workload != "" && !matched && len(unreachable) == 0 {
		has := "it has none"
		if len(names) > 0 {
			has = "it has " + strings.Join(names, ", ")
		}
		return fmt.Errorf("app %s has no StatelessApp %q (%s)", status.App, workload, has)
	}
	if o.output == "json" || o.output == "yaml" {
		if err := printData(out, o.output, status); err != nil {
			return err
		}
	} else {
		describe(out, status)
	}
	if len(unreachable) > 0 {
		return fmt.Errorf("could not read cluster %s (see above)", strings.Join(slices.Compact(unreachable), ", "))
	}
	return nil
}

// splitApp parses APP[/STATELESSAPP] and --workload.
func splitApp(arg, workload string) (app, name string, err error) {
	app, name, _ = strings.Cut(arg, "/")
	switch {
	case app == "":
		return "", "", fmt.Errorf("%q names no app: give APP or APP/STATELESSAPP", arg)
	case name != "" && workload != "" && name != workload:
		return "", "", fmt.Errorf("%q and --workload %s name different StatelessApps", arg, workload)
	case name == "":
		name = workload
	}
	return app, name, nil
}

func statelessAppNames(apps []appsv1alpha1.StatelessApp) []string {
	names := make([]string, 0, len(apps))
	for _, sa := range apps {
		names = append(names, sa.Name)
	}
	return names
}

// namespaceRead is what was read of one AppNamespace's namespace.
type namespaceRead struct {
	apps []appsv1alpha1.StatelessApp
	// err says why the namespace could not be read (cluster unreachable...).
	err error
}

// readClusters reads the StatelessApps of each routed AppNamespace,
// connecting to each cluster once, the clusters in parallel. The result is
// aligned with ans; an unrouted AppNamespace reads nothing.
func readClusters(ctx context.Context, hubClient client.Client, ans []appsv1alpha1.AppNamespace) []namespaceRead {
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
			apps, err := readCluster(ctx, hubClient, cluster, namespaces)
			for j, i := range idx {
				out[i] = namespaceRead{apps: apps[namespaces[j]], err: err}
			}
		})
	}
	wg.Wait()
	return out
}

// readCluster returns the StatelessApps of namespaces in one cluster, by
// namespace: one list over all namespaces when there are several (falling
// back to one per namespace without the right to list them all).
func readCluster(ctx context.Context, hubClient client.Client, cluster string, namespaces []string) (map[string][]appsv1alpha1.StatelessApp, error) {
	w, err := connect(ctx, hubClient, cluster)
	if err != nil {
		return nil, err
	}
	byNamespace := map[string][]appsv1alpha1.StatelessApp{}
	if len(namespaces) > 1 {
		all, err := w.statelessApps(ctx, "")
		if err == nil {
			for _, sa := range all {
				if slices.Contains(namespaces, sa.Namespace) {
					byNamespace[sa.Namespace] = append(byNamespace[sa.Namespace], sa)
				}
			}
			return byNamespace, nil
		}
		if !apierrors.IsForbidden(err) {
			return nil, err
		}
	}
	for _, ns := range namespaces {
		apps, err := w.statelessApps(ctx, ns)
		if err != nil {
			return nil, err
		}
		byNamespace[ns] = apps
	}
	return byNamespace, nil
}
