package appscli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// Statuses of an app namespace in `get apps`.
const (
	statusReady       = "Ready"
	statusNotRouted   = "Not routed"
	statusUnreachable = "unreachable"
	statusForbidden   = "forbidden"
	statusNoWorkloads = "No workloads"
	statusProgressing = "Progressing"
	statusNotReady    = "Not ready"
	statusDeleting    = "Deleting"
	statusDegraded    = "Degraded: " // + the failure categories
	// Of the rows of apps declared on the hub, from the hub's status.
	statusCordoned = "Cordoned"
	statusConflict = "Conflict"
)

// AppRow is one AppNamespace in `get apps`, and its -o json|yaml item.
type AppRow struct {
	App          string `json:"app"`
	AppNamespace string `json:"appNamespace"`
	Cluster      string `json:"cluster,omitempty"`
	Namespace    string `json:"namespace,omitempty"`
	Workloads    int    `json:"workloads"`
	// ReadyReplicas of Replicas wanted, over the StatelessApps.
	ReadyReplicas int32  `json:"readyReplicas"`
	Replicas      int32  `json:"replicas"`
	Status        string `json:"status"`
	// Message says why the status is not Ready.
	Message string `json:"message,omitempty"`
	// Hub is true when the row is the hub's view of the StatelessApps
	// declared on the hub in the namespace (their status.clusters): the
	// cluster itself was not read.
	Hub bool `json:"hub,omitempty"`
	// read is false when the StatelessApps could not be read.
	read bool
}

type listOptions struct {
	hub    hub
	output string
}

func newList(h hub, use string, aliases []string) *cobra.Command {
	o := &listOptions{hub: h}
	cmd := &cobra.Command{
		Use:     use,
		Aliases: aliases,
		Short:   "List apps: every AppNamespace on the hub, its cluster, workloads and status",
		Long: `Lists every AppNamespace on the hub with the cluster and namespace it was
routed to, and sums up its StatelessApps and StatefulApps there: how many,
replicas ready of wanted, and a status: Ready, Progressing, Degraded: App or Infra (whose problem
it is), Not routed, No workloads, or unreachable when the cluster cannot be
read. Each cluster is read once. An AppNamespace on several clusters has a
row per cluster. The namespace of StatelessApps declared on the hub has its
rows from the hub's status of them (Cordoned and Conflict besides): its
clusters are not read. -o wide adds why a row is not Ready.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: table (default), wide, json or yaml")
	return cmd
}

func (o *listOptions) run(ctx context.Context, out io.Writer) error {
	if err := validOutput(o.output, "table", "wide", "json", "yaml"); err != nil {
		return err
	}
	all, err := appNamespaces(ctx, o.hub)
	if err != nil {
		return err
	}
	declared, err := hubAppsIn(ctx, o.hub, "")
	if err != nil {
		return err
	}
	// The namespaces of apps declared on the hub are shown as the hub sees
	// them; the others are read in each of their clusters.
	var ps []placement
	for i := range all {
		if len(declared[hubNamespaceOf(&all[i])]) == 0 {
			ps = append(ps, placements(all[i:i+1])...)
		}
	}
	read := readClusters(ctx, o.hub, ps)
	rows := make([]AppRow, 0, len(all))
	next := 0
	for i := range all {
		an := &all[i]
		if apps := declared[hubNamespaceOf(an)]; len(apps) > 0 {
			rows = append(rows, hubRows(an, apps)...)
			continue
		}
		for ; next < len(ps) && ps[next].an == an; next++ {
			rows = append(rows, appRow(an, ps[next].cluster, read[next].workloads, read[next].err))
		}
	}
	slices.SortStableFunc(rows, func(a, b AppRow) int { return strings.Compare(a.App, b.App) })
	if o.output == "json" || o.output == "yaml" {
		return printData(out, o.output, rows)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	appTable(tw, rows, o.output == "wide")
	return tw.Flush()
}

// appRow sums up an AppNamespace and its StatelessApps and StatefulApps in
// cluster ("" when not routed; err: why they could not be read).
func appRow(an *appsv1alpha1.AppNamespace, cluster string, w workloads, err error) AppRow {
	apps := w.stateless
	r := AppRow{App: an.Spec.App, AppNamespace: an.Name, Cluster: cluster, Workloads: len(apps) + len(w.stateful)}
	if r.Cluster == "" {
		r.Status, r.Message = statusNotRouted, conditionText(readyCondition(an))
		if an.DeletionTimestamp != nil {
			r.Status = statusDeleting
		}
		return r
	}
	r.Namespace = namespaceOf(an)
	if err != nil {
		r.Status, r.Message = statusUnreachable, err.Error()
		if isForbidden(err) {
			r.Status = statusForbidden
		}
		return r
	}
	r.read = true
	var categories []string
	allReady, progressing := true, false
	for i := range apps {
		sa := &apps[i]
		r.Replicas += sa.Spec.Replicas
		r.ReadyReplicas += sa.Status.ReadyReplicas
		if f := sa.Status.Failure; f != nil {
			if !slices.Contains(categories, string(f.Category)) {
				categories = append(categories, string(f.Category))
			}
			if r.Message == "" {
				r.Message = fmt.Sprintf("%s: %s: %s", sa.Name, f.Reason, f.Message)
			}
		}
		ready := meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.StatelessAppReadyCondition)
		if ready == nil || ready.Status != metav1.ConditionTrue || sa.Status.ObservedGeneration < sa.Generation {
			allReady = false
			if sa.Status.Failure == nil && r.Message == "" {
				r.Message = sa.Name + ": " + verdict(an, cluster, sa)
			}
		}
		if c := meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.StatelessAppProgressingCondition); c != nil && c.Status == metav1.ConditionTrue {
			progressing = true
		}
	}
	for i := range w.stateful {
		sa := &w.stateful[i]
		r.Replicas += sa.Spec.Replicas
		r.ReadyReplicas += sa.Status.ReadyReplicas
		ready := meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.StatefulAppReadyCondition)
		if ready == nil || ready.Status != metav1.ConditionTrue || sa.Status.ObservedGeneration < sa.Generation {
			allReady = false
			if r.Message == "" {
				r.Message = sa.Name + ": " + statefulVerdict(cluster, sa)
			}
		}
		if c := meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.StatefulAppProgressingCondition); c != nil && c.Status == metav1.ConditionTrue {
			progressing = true
		}
	}
	slices.Sort(categories)
	switch {
	case an.DeletionTimestamp != nil:
		r.Status = statusDeleting
		if c := readyCondition(an); c != nil {
			r.Message = conditionText(c)
		}
	case r.Workloads == 0:
		r.Status = statusNoWorkloads
	case len(categories) > 0:
		r.Status = statusDegraded + strings.Join(categories, "+")
	case allReady:
		r.Status, r.Message = statusReady, ""
	case progressing:
		r.Status = statusProgressing
	default:
		r.Status = statusNotReady
	}
	return r
}

// appTable writes the rows; wide adds why they are not Ready.
func appTable(w io.Writer, rows []AppRow, wide bool) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "No apps: the hub has no AppNamespaces.")
		return
	}
	header := "APP\tAPPNAMESPACE\tCLUSTER\tNAMESPACE\tWORKLOADS\tREADY\tSTATUS"
	if wide {
		header += "\tMESSAGE"
	}
	fmt.Fprintln(w, header)
	for _, r := range rows {
		workloads, ready := "-", "-"
		if r.read {
			workloads, ready = fmt.Sprint(r.Workloads), fmt.Sprintf("%d/%d", r.ReadyReplicas, r.Replicas)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s", r.App, r.AppNamespace, dash(r.Cluster), dash(r.Namespace), workloads, ready, r.Status)
		if wide {
			fmt.Fprintf(w, "\t%s", dash(oneLine(r.Message)))
		}
		fmt.Fprintln(w)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a message on its table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
