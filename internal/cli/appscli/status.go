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
	clusters bool
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
operation waits on whom.

An AppNamespace on several clusters is shown once per cluster. A
StatelessApp declared on the hub (in the app's namespace there) is shown
from the hub alone: its replicas and version in each cluster, its release
(phase, wave, the clusters released) and its conditions Ready and Released;
the workload clusters are then not read, unless --clusters.`,
		Example: `  kubectl strata status checkout
  kubectl strata status checkout/api
  kubectl strata status store/kv
  kubectl strata status checkout -o yaml
  kubectl strata status shop --clusters      # an app declared on the hub, and each of its clusters`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), args[0])
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: text (default), json or yaml")
	cmd.Flags().StringVar(&o.workload, "workload", "", "only this StatelessApp or StatefulApp of the app (also APP/WORKLOAD)")
	cmd.Flags().BoolVar(&o.clusters, "clusters", false, "for an app declared on the hub, also read each of its workload clusters as you")
	return cmd
}

// statusSection is one part of the status: the hub's view of the
// StatelessApps declared on the hub in an AppNamespace's namespace (hub
// set), or the AppNamespace in one of its clusters (read: the index of the
// placement read).
type statusSection struct {
	an      *appsv1alpha1.AppNamespace
	hubApps []appsv1alpha1.StatelessApp
	read    int
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
	declared, err := hubAppsOf(ctx, o.hub, found)
	if err != nil {
		return err
	}
	var names []string // of the app's workloads, when --workload matches none
	matched := false
	var sections []statusSection
	var ps []placement
	for i := range found {
		an := &found[i]
		apps := declared[hubNamespaceOf(an)]
		for _, sa := range apps {
			names = append(names, sa.Name)
		}
		if workload != "" {
			apps = slices.DeleteFunc(slices.Clone(apps), func(sa appsv1alpha1.StatelessApp) bool { return sa.Name != workload })
		}
		if len(apps) > 0 {
			matched = true
			sections = append(sections, statusSection{an: an, hubApps: apps})
			if !o.clusters {
				continue
			}
		}
		for _, p := range placements(found[i : i+1]) {
			sections = append(sections, statusSection{an: an, read: len(ps)})
			ps = append(ps, p)
		}
	}
	read := readClusters(ctx, o.hub, ps)
	status := &AppStatus{App: found[0].Spec.App}
	var unreachable []string
	var refused []string // what the caller may act on: a missing context, a refusal
	for _, sec := range sections {
		if len(sec.hubApps) > 0 {
			status.Namespaces = append(status.Namespaces, newHubNamespaceStatus(sec.an, sec.hubApps))
			continue
		}
		p, r := ps[sec.read], read[sec.read]
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
			if !slices.Contains(unreachable, p.cluster) {
				unreachable = append(unreachable, p.cluster)
			}
		}
		status.Namespaces = append(status.Namespaces, newNamespaceStatus(p.an, p.cluster, w, r.err, describeAll(ctx, r.reader, w.stateful)))
	}
	if workload != "" && !matched && len(unreachable)+len(refused) == 0 {
		has := "it has none"
		if len(names) > 0 {
			slices.Sort(names)
			has = "it has " + strings.Join(slices.Compact(names), ", ")
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
		refused = append(refused, fmt.Sprintf("could not read cluster %s (see above)", strings.Join(unreachable, ", ")))
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

// namespaceRead is what was read of one AppNamespace's namespace in one
// cluster.
type namespaceRead struct {
	workloads workloads
	// err says why the namespace could not be read (cluster unreachable...).
	err error
	// reader reads the cluster as the caller: the CAs of the StatefulApps'
	// shard managers.
	reader client.Reader
}

// placement is an AppNamespace in one of the workload clusters it is on:
// what the per-cluster views read. cluster is "" for an AppNamespace not
// routed yet.
type placement struct {
	an      *appsv1alpha1.AppNamespace
	cluster string
}

// placements are the clusters each AppNamespace is on, in order, or the
// AppNamespace alone when it is on none.
func placements(ans []appsv1alpha1.AppNamespace) []placement {
	var out []placement
	for i := range ans {
		clusters := clustersOf(&ans[i])
		if len(clusters) == 0 {
			out = append(out, placement{an: &ans[i]})
		}
		for _, c := range clusters {
			out = append(out, placement{an: &ans[i], cluster: c})
		}
	}
	return out
}

// clustersOf are the workload clusters whose namespace of the AppNamespace
// the app views read: status.clusters in the order they were chosen
// (status.cluster first). A batch namespace is read where it was routed,
// as before it could be on several clusters: its jobs are `kubectl strata
// jobs`'.
func clustersOf(an *appsv1alpha1.AppNamespace) []string {
	if an.Spec.Tenant == appsv1alpha1.BatchTenant {
		if an.Status.Cluster == "" {
			return nil
		}
		return []string{an.Status.Cluster}
	}
	return placedOn(an)
}

// placedOn are all the workload clusters an AppNamespace is on: status.cluster
// (the first), then the rest of status.clusters.
func placedOn(an *appsv1alpha1.AppNamespace) []string {
	var out []string
	if an.Status.Cluster != "" {
		out = append(out, an.Status.Cluster)
	}
	for _, c := range an.Status.Clusters {
		if c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// readClusters reads the StatelessApps and StatefulApps of each placement
// as the caller, connecting to each cluster once, the clusters in
// parallel. The result is aligned with ps; an unrouted placement reads
// nothing.
func readClusters(ctx context.Context, h hub, ps []placement) []namespaceRead {
	byCluster := map[string][]int{}
	for i, p := range ps {
		if p.cluster != "" {
			byCluster[p.cluster] = append(byCluster[p.cluster], i)
		}
	}
	out := make([]namespaceRead, len(ps))
	var wg sync.WaitGroup
	for cluster, idx := range byCluster {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
			defer cancel()
			namespaces := make([]string, 0, len(idx))
			for _, i := range idx {
				if ns := namespaceOf(ps[i].an); !slices.Contains(namespaces, ns) {
					namespaces = append(namespaces, ns)
				}
			}
			read := readCluster(ctx, h, cluster, namespaces)
			for _, i := range idx {
				out[i] = read[namespaceOf(ps[i].an)]
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
