package appscli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spf13/cobra"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// The states of a job in `kubectl strata jobs`, from its Kueue Workload on
// the hub.
const (
	jobPending     = "Pending"     // waits for quota in its queue
	jobDispatching = "Dispatching" // holds quota, waits for a workload cluster
	jobAdmitted    = "Admitted"    // admitted on a workload cluster
	jobRunning     = "Running"     // and all its pods are ready
	jobNeverFits   = "NeverFits"   // no workload cluster could ever hold it
	jobInactive    = "Inactive"    // deactivated (spec.active=false)
	jobFinished    = "Finished"
)

// The reasons Strata's dispatcher records on a Workload it cannot place
// (internal/workload/dispatch).
const noClusterFitsReason = "NoClusterFits"

// QueueRow is one BatchQueue in `kubectl strata jobs`, and its -o json|yaml.
type QueueRow struct {
	Queue        string                       `json:"queue"`
	Organization string                       `json:"organization"`
	Parent       string                       `json:"parent,omitempty"`
	Profiles     []appsv1alpha1.ProfileStatus `json:"profiles,omitempty"`
	Admitted     int32                        `json:"admitted"`
	Dispatching  int32                        `json:"dispatching"`
	Pending      int32                        `json:"pending"`
	Ready        string                       `json:"ready"`
	// Message says why the queue is not Ready.
	Message string `json:"message,omitempty"`
}

// JobRow is one job of a queue: its state, its place in the queue while it
// waits, where it runs, and why it waits.
type JobRow struct {
	Job       string `json:"job"`
	Namespace string `json:"namespace"`
	Workload  string `json:"workload"`
	State     string `json:"state"`
	// Position is the job's place among the queue's pending jobs (1 is
	// next), in Kueue's order: priority, then time queued. Zero when it
	// does not wait for quota.
	Position int    `json:"position,omitempty"`
	Cluster  string `json:"cluster,omitempty"`
	// Pods is ready of wanted, for an admitted job: fewer means the gang
	// is not complete yet.
	Pods string `json:"pods,omitempty"`
	Why  string `json:"why,omitempty"`
	// queued orders the pending jobs.
	queued   time.Time
	priority int64
}

// QueueView is a queue and its jobs, for -o json|yaml.
type QueueView struct {
	Queue QueueRow `json:"queue"`
	Jobs  []JobRow `json:"jobs"`
}

type jobsOptions struct {
	hub    hub
	output string
	all    bool
}

func newJobs(h hub) *cobra.Command {
	o := &jobsOptions{hub: h}
	cmd := &cobra.Command{
		Use:   "jobs [QUEUE]",
		Short: "Show batch queues: usage against quota; with QUEUE, its jobs, their place and why they wait",
		Long: `Without QUEUE, lists the BatchQueues of the hub: per node profile, what
their admitted jobs use of their quota (and borrow from their organisation),
and how many jobs are admitted, being dispatched and pending.

With QUEUE, also lists the queue's jobs (from their Kueue Workloads on the
hub): Pending ones with their position in the queue and why they wait
(quota, and how much more is needed), Dispatching ones that hold quota and
wait for a workload cluster (and why none fits yet), Admitted and Running
ones with the cluster they run in and their pods ready (a gang is complete
when all are), and NeverFits ones that no cluster could ever hold.
Finished jobs are left out unless --all.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			queue := ""
			if len(args) == 1 {
				queue = args[0]
			}
			return o.run(cmd.Context(), cmd.OutOrStdout(), queue)
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: table (default), json or yaml")
	cmd.Flags().BoolVar(&o.all, "all", false, "with QUEUE, list finished jobs too")
	return cmd
}

func (o *jobsOptions) run(ctx context.Context, out io.Writer, queue string) error {
	if err := validOutput(o.output, "table", "json", "yaml"); err != nil {
		return err
	}
	c, err := o.hub.Client()
	if err != nil {
		return err
	}
	if queue == "" {
		return o.listQueues(ctx, c, out)
	}
	bq := &appsv1alpha1.BatchQueue{}
	if err := c.Get(ctx, client.ObjectKey{Name: queue}, bq); err != nil {
		return o.hubError(err, "reading BatchQueue "+queue, "get on batchqueues.apps.strata.dev")
	}
	jobs, err := o.queueJobs(ctx, c, queue)
	if err != nil {
		return err
	}
	view := QueueView{Queue: queueRow(bq), Jobs: jobs}
	if o.output == "json" || o.output == "yaml" {
		return printData(out, o.output, view)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	queueTable(tw, []QueueRow{view.Queue})
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(jobs) == 0 {
		_, err := fmt.Fprintf(out, "\nNo jobs in queue %s.\n", queue)
		return err
	}
	fmt.Fprintln(out)
	jobTable(tw, jobs)
	return tw.Flush()
}

func (o *jobsOptions) listQueues(ctx context.Context, c client.Client, out io.Writer) error {
	list := &appsv1alpha1.BatchQueueList{}
	if err := c.List(ctx, list); err != nil {
		return o.hubError(err, "listing BatchQueues", "list on batchqueues.apps.strata.dev")
	}
	rows := make([]QueueRow, 0, len(list.Items))
	for i := range list.Items {
		rows = append(rows, queueRow(&list.Items[i]))
	}
	slices.SortFunc(rows, func(a, b QueueRow) int { return strings.Compare(a.Queue, b.Queue) })
	if o.output == "json" || o.output == "yaml" {
		return printData(out, o.output, rows)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(out, "No BatchQueues on the hub.")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	queueTable(tw, rows)
	return tw.Flush()
}

// hubError says what failed on the hub, naming the permission when the
// caller lacks it.
func (o *jobsOptions) hubError(err error, doing, permission string) error {
	switch {
	case apierrors.IsNotFound(err) && strings.HasPrefix(doing, "reading BatchQueue "):
		return fmt.Errorf("no BatchQueue %s on the hub (kubectl strata jobs lists them)", strings.TrimPrefix(doing, "reading BatchQueue "))
	case meta.IsNoMatchError(err) || apierrors.IsNotFound(err):
		return fmt.Errorf("the cluster serves no BatchQueues (apps.strata.dev): it is not a Strata hub with the jobs platform (%s)", o.hub.Hint())
	case apierrors.IsForbidden(err):
		return &accessError{forbidden: true, msg: fmt.Sprintf("forbidden: %s on the hub needs %s (the platform team grants it): %v", doing, permission, err)}
	}
	return fmt.Errorf("%s on the hub: %w (%s)", doing, err, o.hub.Hint())
}

// queueJobs reads the queue's Workloads, their Jobs and the dispatcher's
// events about them, in one list each.
func (o *jobsOptions) queueJobs(ctx context.Context, c client.Client, queue string) ([]JobRow, error) {
	workloads := kueue.NewList(kueue.WorkloadKind)
	if err := c.List(ctx, workloads); err != nil {
		return nil, o.hubError(err, "listing Kueue Workloads", "list on workloads.kueue.x-k8s.io")
	}
	var ours []unstructured.Unstructured
	namespaces := map[string]bool{}
	for _, wl := range workloads.Items {
		if q, _, _ := unstructured.NestedString(wl.Object, "spec", "queueName"); q == queue {
			ours = append(ours, wl)
			namespaces[wl.GetNamespace()] = true
		}
	}
	jobs := &batchv1.JobList{}
	if err := c.List(ctx, jobs, client.MatchingLabels{kueue.QueueNameLabel: queue}); err != nil {
		return nil, o.hubError(err, "listing the queue's Jobs", "list on jobs.batch")
	}
	byUID := map[types.UID]*batchv1.Job{}
	for i := range jobs.Items {
		byUID[jobs.Items[i].UID] = &jobs.Items[i]
	}
	// The dispatcher's latest word on each workload that no cluster fits;
	// only the namespaces of the queue's workloads are read.
	why := map[types.UID]string{}
	for ns := range namespaces {
		events := &corev1.EventList{}
		sel := fields.SelectorFromSet(fields.Set{"involvedObject.kind": kueue.WorkloadKind, "reason": noClusterFitsReason})
		if err := c.List(ctx, events, client.InNamespace(ns), client.MatchingFieldsSelector{Selector: sel}); err != nil {
			continue // events only explain; the rows stand without them
		}
		latest := map[types.UID]time.Time{}
		for _, e := range events.Items {
			at := eventTime(&e)
			if at.After(latest[e.InvolvedObject.UID]) || latest[e.InvolvedObject.UID].IsZero() {
				latest[e.InvolvedObject.UID], why[e.InvolvedObject.UID] = at, e.Message
			}
		}
	}
	rows := make([]JobRow, 0, len(ours))
	for i := range ours {
		r := jobRow(&ours[i], ownerJob(&ours[i], byUID), why[ours[i].GetUID()])
		if r.State == jobFinished && !o.all {
			continue
		}
		rows = append(rows, r)
	}
	return ordered(rows), nil
}

func eventTime(e *corev1.Event) time.Time {
	for _, t := range []time.Time{e.LastTimestamp.Time, e.EventTime.Time, e.CreationTimestamp.Time} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// ownerJob is the Job a Workload is for, if it is among jobs.
func ownerJob(wl *unstructured.Unstructured, jobs map[types.UID]*batchv1.Job) *batchv1.Job {
	for _, ref := range wl.GetOwnerReferences() {
		if ref.Kind == "Job" {
			return jobs[ref.UID]
		}
	}
	return nil
}

// queueRow sums up a BatchQueue.
func queueRow(bq *appsv1alpha1.BatchQueue) QueueRow {
	r := QueueRow{
		Queue: bq.Name, Organization: bq.Spec.Organization, Parent: bq.Spec.Parent, Profiles: bq.Status.Profiles,
		Admitted: bq.Status.AdmittedWorkloads, Dispatching: bq.Status.DispatchingWorkloads, Pending: bq.Status.PendingWorkloads,
		Ready: "Unknown",
	}
	if c := meta.FindStatusCondition(bq.Status.Conditions, appsv1alpha1.BatchQueueReadyCondition); c != nil {
		r.Ready = string(c.Status)
		if c.Status != metav1.ConditionTrue {
			r.Message = c.Reason + ": " + c.Message
		}
	}
	if c := meta.FindStatusCondition(bq.Status.Conditions, appsv1alpha1.BatchQueueClustersSyncedCondition); c != nil && c.Status != metav1.ConditionTrue {
		r.Message = strings.TrimPrefix(r.Message+"; "+c.Reason+": "+c.Message, "; ")
	}
	return r
}

// jobRow tells where a job is from its Workload on the hub (and its Job,
// when readable), and dispatchWhy, the dispatcher's latest reason for not
// placing it.
func jobRow(wl *unstructured.Unstructured, job *batchv1.Job, dispatchWhy string) JobRow {
	r := JobRow{Namespace: wl.GetNamespace(), Workload: wl.GetName(), Job: wl.GetName()}
	if job != nil {
		r.Job = job.Name
	}
	r.priority, _, _ = unstructured.NestedInt64(wl.Object, "spec", "priority")
	conds := workloadConditions(wl)
	r.queued = wl.GetCreationTimestamp().Time
	if c := meta.FindStatusCondition(conds, "Requeued"); c != nil && c.Status == metav1.ConditionTrue {
		r.queued = c.LastTransitionTime.Time
	}
	r.Cluster, _, _ = unstructured.NestedString(wl.Object, "status", "clusterName")
	active, found, _ := unstructured.NestedBool(wl.Object, "spec", "active")
	switch {
	case meta.IsStatusConditionTrue(conds, "Finished"):
		r.State, r.Why = jobFinished, conditionMessage(conds, "Finished")
	case wl.GetAnnotations()[kueue.NeverFitsAnnotation] != "":
		r.State, r.Why = jobNeverFits, wl.GetAnnotations()[kueue.NeverFitsAnnotation]
	case found && !active:
		r.State, r.Why = jobInactive, "deactivated: "+cmp.Or(conditionMessage(conds, "Evicted"), "spec.active is false")
	case meta.IsStatusConditionTrue(conds, "Admitted"):
		r.State = jobAdmitted
		if job != nil {
			// Pods that ended count as placed: the gang ran; the hub's
			// copy of the status lags the workload cluster's.
			want := ptrValue(job.Spec.Parallelism, 1)
			ready, ended := ptrValue(job.Status.Ready, 0), job.Status.Succeeded+job.Status.Failed
			r.Pods = fmt.Sprintf("%d/%d", ready, want)
			if ended > 0 {
				r.Pods += fmt.Sprintf(" (%d ended)", ended)
			}
			if ready+ended >= want {
				r.State = jobRunning
			} else {
				r.Why = fmt.Sprintf("gang incomplete: %d of %d pods ready", ready, want)
			}
		}
	case meta.IsStatusConditionTrue(conds, "QuotaReserved"):
		r.State = jobDispatching
		nominated, _, _ := unstructured.NestedStringSlice(wl.Object, "status", "nominatedClusterNames")
		switch {
		case len(nominated) > 0:
			r.Why = "sent to " + strings.Join(nominated, ", ") + ", waiting for its admission there"
		case dispatchWhy != "":
			r.Why = "no cluster fits: " + dispatchWhy
		default:
			r.Why = "holds quota, waiting for the dispatcher"
		}
	default:
		r.State = jobPending
		r.Why = cmp.Or(quotaWhy(conditionMessage(conds, "QuotaReserved")), "waiting for Kueue to consider it")
	}
	return r
}

// quotaWhy turns Kueue's message on a workload it cannot reserve quota for
// into what the person needs to know.
func quotaWhy(msg string) string {
	if msg == "" {
		return ""
	}
	if strings.Contains(msg, "quota") {
		return "quota: " + msg
	}
	return msg
}

func workloadConditions(wl *unstructured.Unstructured) []metav1.Condition {
	raw, _, _ := unstructured.NestedSlice(wl.Object, "status", "conditions")
	out := make([]metav1.Condition, 0, len(raw))
	for _, item := range raw {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		c := metav1.Condition{}
		c.Type, _, _ = unstructured.NestedString(m, "type")
		s, _, _ := unstructured.NestedString(m, "status")
		c.Status = metav1.ConditionStatus(s)
		c.Reason, _, _ = unstructured.NestedString(m, "reason")
		c.Message, _, _ = unstructured.NestedString(m, "message")
		if at, _, _ := unstructured.NestedString(m, "lastTransitionTime"); at != "" {
			if t, err := time.Parse(time.RFC3339, at); err == nil {
				c.LastTransitionTime = metav1.NewTime(t)
			}
		}
		out = append(out, c)
	}
	return out
}

func conditionMessage(conds []metav1.Condition, t string) string {
	if c := meta.FindStatusCondition(conds, t); c != nil {
		return c.Message
	}
	return ""
}

func ptrValue(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// ordered sorts the rows for a person: what runs, then what is being
// dispatched, then the pending ones in queue order with their positions,
// then the rest.
func ordered(rows []JobRow) []JobRow {
	rank := map[string]int{jobRunning: 0, jobAdmitted: 1, jobDispatching: 2, jobPending: 3, jobNeverFits: 4, jobInactive: 5, jobFinished: 6}
	slices.SortStableFunc(rows, func(a, b JobRow) int {
		if c := cmp.Compare(rank[a.State], rank[b.State]); c != 0 {
			return c
		}
		if a.State == jobPending {
			if c := cmp.Compare(b.priority, a.priority); c != 0 {
				return c
			}
			if c := a.queued.Compare(b.queued); c != 0 {
				return c
			}
		}
		return strings.Compare(a.Namespace+"/"+a.Job, b.Namespace+"/"+b.Job)
	})
	position := 0
	for i := range rows {
		if rows[i].State == jobPending {
			position++
			rows[i].Position = position
		}
	}
	return rows
}

func queueTable(tw io.Writer, rows []QueueRow) {
	fmt.Fprintln(tw, "QUEUE\tORGANIZATION\tPARENT\tPROFILE\tCPU\tMEMORY\tGPUS\tADMITTED\tDISPATCHING\tPENDING\tREADY")
	for _, r := range rows {
		profiles := r.Profiles
		if len(profiles) == 0 {
			profiles = []appsv1alpha1.ProfileStatus{{}}
		}
		for i, p := range profiles {
			queue, org, parent, counts := r.Queue, r.Organization, dash(r.Parent),
				fmt.Sprintf("%d\t%d\t%d\t%s", r.Admitted, r.Dispatching, r.Pending, r.Ready)
			if i > 0 {
				queue, org, parent, counts = "", "", "", "\t\t\t"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", queue, org, parent, dash(p.NodeProfile),
				usage(p.CPU), usage(p.Memory), usage(p.GPUs), counts)
		}
		if r.Message != "" {
			fmt.Fprintf(tw, "  %s\n", r.Message)
		}
	}
}

// usage is "used/quota", with what is borrowed.
func usage(s appsv1alpha1.ResourceStatus) string {
	out := quantity(s.Usage) + "/" + quantity(s.Quota)
	if !s.Borrowed.IsZero() {
		out += " (" + quantity(s.Borrowed) + " borrowed)"
	}
	return out
}

func quantity(q resource.Quantity) string {
	if q.IsZero() {
		return "0"
	}
	return q.String()
}

func jobTable(tw io.Writer, rows []JobRow) {
	fmt.Fprintln(tw, "NAMESPACE\tJOB\tSTATE\tPOSITION\tCLUSTER\tPODS\tWHY")
	for _, r := range rows {
		position := "-"
		if r.Position > 0 {
			position = fmt.Sprint(r.Position)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Namespace, r.Job, r.State, position, dash(r.Cluster), dash(r.Pods), dash(oneLine(r.Why)))
	}
}
