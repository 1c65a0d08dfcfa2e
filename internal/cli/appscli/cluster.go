package appscli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// ClusterRow is one workload cluster in `kubectl strata cluster list`, and
// its -o json|yaml item.
type ClusterRow struct {
	Cluster    string `json:"cluster"`
	Datacenter string `json:"datacenter"`
	Region     string `json:"region,omitempty"`
	// Ready is the status of the Cluster's Ready condition: True, False or
	// Unknown.
	Ready    string `json:"ready"`
	Cordoned bool   `json:"cordoned"`
	// ReadyNodes of Nodes.
	Nodes      int32 `json:"nodes"`
	ReadyNodes int32 `json:"readyNodes"`
	// AppNamespaces counts the AppNamespaces placed on the cluster
	// (status.clusters).
	AppNamespaces int `json:"appNamespaces"`
	// Message says why the cluster is not Ready.
	Message string `json:"message,omitempty"`
}

type clusterListOptions struct {
	hub    hub
	output string
}

// newCluster returns `cluster`: the workload clusters of the hub, listed,
// cordoned and uncordoned. `clusters` alone lists them.
func newCluster(h hub) *cobra.Command {
	o := &clusterListOptions{hub: h}
	cmd := &cobra.Command{
		Use:     "cluster",
		Aliases: []string{"clusters"},
		Short:   "The hub's workload clusters: list, cordon, uncordon",
		Long: `Lists the workload clusters registered to the hub (its Clusters), and cordons
or uncordons one: a cordoned cluster takes no new app namespace, and the apps
declared on the hub move their replicas to their other clusters. These act
on the hub as you, with your kubeconfig's context of the hub.`,
		Args: cobra.NoArgs,
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the workload clusters: datacenter, region, Ready, cordoned, Nodes, app namespaces placed",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	for _, c := range []*cobra.Command{cmd, list} {
		c.Flags().StringVarP(&o.output, "output", "o", "", "output format: table (default), wide, json or yaml")
	}
	cmd.RunE = list.RunE
	cmd.AddCommand(list, newCordon(h, true), newCordon(h, false))
	return cmd
}

func (o *clusterListOptions) run(ctx context.Context, out io.Writer) error {
	if err := validOutput(o.output, "table", "wide", "json", "yaml"); err != nil {
		return err
	}
	c, err := o.hub.Client()
	if err != nil {
		return err
	}
	clusters, err := hubClusters(ctx, c, o.hub)
	if err != nil {
		return err
	}
	ans, err := appNamespaces(ctx, o.hub)
	if err != nil {
		return err
	}
	placed := map[string]int{}
	for i := range ans {
		for _, cl := range placedOn(&ans[i]) {
			placed[cl]++
		}
	}
	rows := make([]ClusterRow, 0, len(clusters))
	for i := range clusters {
		rows = append(rows, clusterRow(&clusters[i], placed[clusters[i].Name]))
	}
	if o.output == "json" || o.output == "yaml" {
		return printData(out, o.output, rows)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	clusterListTable(tw, rows, o.output == "wide")
	return tw.Flush()
}

// hubClusters lists the hub's Clusters, sorted by name.
func hubClusters(ctx context.Context, c client.Client, h hub) ([]fleetv1alpha1.Cluster, error) {
	list := &fleetv1alpha1.ClusterList{}
	if err := c.List(ctx, list); err != nil {
		return nil, clusterError(ctx, c, h, err, "list", "Clusters", listClustersRBAC)
	}
	slices.SortFunc(list.Items, func(a, b fleetv1alpha1.Cluster) int { return strings.Compare(a.Name, b.Name) })
	return list.Items, nil
}

// The permissions the cluster verbs need on the hub, for refusals.
const (
	listClustersRBAC = "listing the workload clusters needs list on clusters.fleet.strata.dev (and on appnamespaces.apps.strata.dev), " +
		"which the platform team grants"
	cordonRBAC = "cordoning a cluster is the platform team's: it needs get and patch on clusters.fleet.strata.dev"
)

// clusterError says what failed on the hub: not a hub, or who may not do
// what, and what it needs (rbac).
func clusterError(ctx context.Context, c client.Client, h hub, err error, verb, what, rbac string) error {
	switch {
	case meta.IsNoMatchError(err) || (apierrors.IsNotFound(err) && verb == "list"):
		return fmt.Errorf("the cluster serves no Clusters (fleet.strata.dev): it is not a Strata hub (%s)", h.Hint())
	case apierrors.IsForbidden(err):
		return &accessError{forbidden: true, msg: fmt.Sprintf("forbidden: user %s may not %s %s on the hub (%s)", hubUser(ctx, c), verb, what, rbac)}
	}
	doing := map[string]string{"get": "reading", "list": "listing", "patch": "patching"}[verb]
	return fmt.Errorf("%s %s on the hub: %w (%s)", doing, what, err, h.Hint())
}

// hubUser is who the hub knows the caller as, quoted, for refusals.
func hubUser(ctx context.Context, c client.Client) string {
	if user := whoami(ctx, c); user != "" {
		return user
	}
	return "of your context"
}

// clusterRow sums up a Cluster with the number of AppNamespaces placed on
// it.
func clusterRow(cl *fleetv1alpha1.Cluster, appNamespaces int) ClusterRow {
	r := ClusterRow{
		Cluster: cl.Name, Datacenter: cl.Spec.Datacenter, Region: cl.Spec.Region, Cordoned: cl.Spec.Cordoned,
		Nodes: cl.Status.Nodes, ReadyNodes: cl.Status.ReadyNodes, AppNamespaces: appNamespaces, Ready: string(metav1.ConditionUnknown),
	}
	if c := meta.FindStatusCondition(cl.Status.Conditions, fleetv1alpha1.ClusterReadyCondition); c != nil {
		r.Ready = string(c.Status)
		if c.Status != metav1.ConditionTrue {
			r.Message = conditionText(c)
		}
	} else {
		r.Message = "not observed yet (is the hub's cluster controller running?)"
	}
	return r
}

// clusterListTable writes the rows; wide adds why a cluster is not Ready.
func clusterListTable(w io.Writer, rows []ClusterRow, wide bool) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "No clusters: the hub has no Clusters registered.")
		return
	}
	header := "NAME\tDATACENTER\tREGION\tREADY\tCORDONED\tNODES\tAPPNAMESPACES"
	if wide {
		header += "\tMESSAGE"
	}
	fmt.Fprintln(w, header)
	for _, r := range rows {
		cordoned := "no"
		if r.Cordoned {
			cordoned = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%d", r.Cluster, r.Datacenter, dash(r.Region), r.Ready, cordoned, r.ReadyNodes, r.Nodes, r.AppNamespaces)
		if wide {
			fmt.Fprintf(w, "\t%s", dash(oneLine(r.Message)))
		}
		fmt.Fprintln(w)
	}
}

type cordonOptions struct {
	hub    hub
	cordon bool
}

func newCordon(h hub, cordon bool) *cobra.Command {
	o := &cordonOptions{hub: h, cordon: cordon}
	cmd := &cobra.Command{
		Use:   "cordon CLUSTER",
		Short: "Take a workload cluster out of placement: apps declared on the hub move their replicas off it",
		Long: `Sets spec.cordoned of the hub's Cluster (a merge patch, as you): no new app
namespace is placed on it, and the apps declared on the hub move their
replicas to their other clusters (up there and Ready first, then down here).
Nothing is deleted: the namespaces stay, and uncordon gives the apps their
share back.`,
		Example: "  kubectl strata cluster cordon workload-2",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), args[0])
		},
	}
	if !cordon {
		cmd.Use = "uncordon CLUSTER"
		cmd.Short = "Put a cordoned workload cluster back into placement: apps declared on the hub take their share back"
		cmd.Long = `Clears spec.cordoned of the hub's Cluster (a merge patch, as you): app
namespaces may be placed on it again, and the apps declared on the hub give
it its share of their replicas back.`
		cmd.Example = "  kubectl strata cluster uncordon workload-2"
	}
	return cmd
}

func (o *cordonOptions) run(ctx context.Context, out io.Writer, name string) error {
	c, err := o.hub.Client()
	if err != nil {
		return err
	}
	cl := &fleetv1alpha1.Cluster{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, cl); err != nil {
		if apierrors.IsNotFound(err) && !meta.IsNoMatchError(err) {
			return o.notFound(ctx, c, name)
		}
		return clusterError(ctx, c, o.hub, err, "get", "Cluster "+name, cordonRBAC)
	}
	switch {
	case cl.Spec.Cordoned && o.cordon:
		_, err := fmt.Fprintf(out, "cluster %s is already cordoned (kubectl strata cluster uncordon %s puts it back)\n", name, name)
		return err
	case !cl.Spec.Cordoned && !o.cordon:
		_, err := fmt.Fprintf(out, "cluster %s is not cordoned\n", name)
		return err
	}
	patch := client.MergeFromWithOptions(cl.DeepCopy(), client.MergeFromWithOptimisticLock{})
	cl.Spec.Cordoned = o.cordon
	if err := c.Patch(ctx, cl, patch); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("cluster %s changed on the hub while it was being patched: run the command again", name)
		}
		return clusterError(ctx, c, o.hub, err, "patch", "Cluster "+name, cordonRBAC)
	}
	if o.cordon {
		_, err = fmt.Fprintf(out, "cluster %s cordoned: no new app namespaces are placed there, and the apps declared on the hub "+
			"move their replicas to their other clusters (kubectl strata cluster uncordon %s undoes it)\n", name, name)
	} else {
		_, err = fmt.Fprintf(out, "cluster %s uncordoned: app namespaces may be placed there again, and the apps declared on the hub "+
			"take their share back\n", name)
	}
	return err
}

// maxNamed is how many clusters an error names at most.
const maxNamed = 12

// notFound names the clusters the hub has, or those closest to name when
// it has many.
func (o *cordonOptions) notFound(ctx context.Context, c client.Client, name string) error {
	clusters, err := hubClusters(ctx, c, o.hub)
	if err != nil {
		return fmt.Errorf("no cluster %q on the hub", name)
	}
	if len(clusters) == 0 {
		return fmt.Errorf("no cluster %q on the hub: it has no Clusters registered", name)
	}
	names := make([]string, 0, len(clusters))
	for _, cl := range clusters {
		names = append(names, cl.Name)
	}
	if len(names) <= maxNamed {
		return fmt.Errorf("no cluster %q on the hub; its clusters are %s", name, strings.Join(names, ", "))
	}
	msg := fmt.Sprintf("no cluster %q on the hub", name)
	if similar := similarNames(name, names); len(similar) > 0 {
		msg += "; did you mean " + strings.Join(similar, ", ") + "?"
	}
	return fmt.Errorf("%s (it has %d clusters: kubectl strata cluster list shows them)", msg, len(names))
}
