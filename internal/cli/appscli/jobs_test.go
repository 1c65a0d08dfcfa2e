package appscli

import (
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// workloadBuilder writes a hub Workload as Kueue would.
type workloadBuilder struct{ u *unstructured.Unstructured }

func makeWorkload(name string, created time.Time) *workloadBuilder {
	u := kueue.New(kueue.WorkloadKind, "team-a", name)
	u.SetCreationTimestamp(metav1.NewTime(created))
	_ = unstructured.SetNestedField(u.Object, "train", "spec", "queueName")
	return &workloadBuilder{u: u}
}

func (b *workloadBuilder) condition(t, status, msg string) *workloadBuilder {
	conds, _, _ := unstructured.NestedSlice(b.u.Object, "status", "conditions")
	conds = append(conds, map[string]any{"type": t, "status": status, "message": msg, "lastTransitionTime": t0.Format(time.RFC3339)})
	_ = unstructured.SetNestedSlice(b.u.Object, conds, "status", "conditions")
	return b
}

func (b *workloadBuilder) set(value any, path ...string) *workloadBuilder {
	_ = unstructured.SetNestedField(b.u.Object, value, path...)
	return b
}

func (b *workloadBuilder) priority(p int64) *workloadBuilder { return b.set(p, "spec", "priority") }

func (b *workloadBuilder) obj() *unstructured.Unstructured { return b.u }

func TestJobRows(t *testing.T) {
	gang := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: batchv1.JobSpec{Parallelism: ptr.To[int32](8)}, Status: batchv1.JobStatus{Ready: ptr.To[int32](3)}}
	whole := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: batchv1.JobSpec{Parallelism: ptr.To[int32](8)}, Status: batchv1.JobStatus{Ready: ptr.To[int32](8)}}
	tests := []struct {
		name        string
		wl          *unstructured.Unstructured
		job         *batchv1.Job
		dispatchWhy string
		want        JobRow
	}{{
		name: "waits for quota: Kueue's message",
		wl:   makeWorkload("a", t0).condition("QuotaReserved", "False", "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor general, 8 more needed").obj(),
		want: JobRow{State: jobPending, Why: "quota: couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor general, 8 more needed"},
	}, {
		name: "not yet seen by Kueue",
		wl:   makeWorkload("a", t0).obj(),
		want: JobRow{State: jobPending, Why: "waiting for Kueue to consider it"},
	}, {
		name:        "holds quota, no cluster fits: the dispatcher's event",
		wl:          makeWorkload("a", t0).condition("QuotaReserved", "True", "").obj(),
		dispatchWhy: "workload-1: 4 cpu free of profile general, 8 needed",
		want:        JobRow{State: jobDispatching, Why: "no cluster fits: workload-1: 4 cpu free of profile general, 8 needed"},
	}, {
		name: "holds quota, sent to a cluster",
		wl:   makeWorkload("a", t0).condition("QuotaReserved", "True", "").set([]any{"workload-2"}, "status", "nominatedClusterNames").obj(),
		want: JobRow{State: jobDispatching, Why: "sent to workload-2, waiting for its admission there"},
	}, {
		name: "admitted, the gang not complete",
		wl:   makeWorkload("a", t0).condition("QuotaReserved", "True", "").condition("Admitted", "True", "").set("workload-1", "status", "clusterName").obj(),
		job:  gang,
		want: JobRow{State: jobAdmitted, Cluster: "workload-1", Pods: "3/8", Why: "gang incomplete: 3 of 8 pods ready"},
	}, {
		name: "running, every pod ready",
		wl:   makeWorkload("a", t0).condition("QuotaReserved", "True", "").condition("Admitted", "True", "").set("workload-1", "status", "clusterName").obj(),
		job:  whole,
		want: JobRow{State: jobRunning, Cluster: "workload-1", Pods: "8/8"},
	}, {
		name: "running: its pods ended on the cluster, the hub not told yet",
		wl:   makeWorkload("a", t0).condition("QuotaReserved", "True", "").condition("Admitted", "True", "").set("workload-1", "status", "clusterName").obj(),
		job:  &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: batchv1.JobSpec{Parallelism: ptr.To[int32](8)}, Status: batchv1.JobStatus{Succeeded: 8}},
		want: JobRow{State: jobRunning, Cluster: "workload-1", Pods: "0/8 (8 ended)"},
	}, {
		name: "never fits: the dispatcher's annotation wins over the deactivation",
		wl: func() *unstructured.Unstructured {
			u := makeWorkload("a", t0).set(false, "spec", "active").obj()
			u.SetAnnotations(map[string]string{kueue.NeverFitsAnnotation: "asks 80 cpu of profile general; the largest cluster has 64"})
			return u
		}(),
		want: JobRow{State: jobNeverFits, Why: "asks 80 cpu of profile general; the largest cluster has 64"},
	}, {
		name: "deactivated",
		wl:   makeWorkload("a", t0).set(false, "spec", "active").obj(),
		want: JobRow{State: jobInactive, Why: "deactivated: spec.active is false"},
	}, {
		name: "finished",
		wl:   makeWorkload("a", t0).condition("Finished", "True", "Job finished successfully").obj(),
		want: JobRow{State: jobFinished, Why: "Job finished successfully"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := jobRow(tt.wl, tt.job, tt.dispatchWhy)
			tt.want.Namespace, tt.want.Workload, tt.want.Job = "team-a", "a", "a"
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreUnexported(JobRow{})); diff != "" {
				t.Errorf("jobRow (-want +got):\n%s", diff)
			}
		})
	}
}

// Pending jobs are numbered in Kueue's order: priority, then time queued
// (a requeued job queues again from its requeue).
func TestOrderedPositions(t *testing.T) {
	pending := func(name string, created time.Time) *workloadBuilder {
		return makeWorkload(name, created).condition("QuotaReserved", "False", "insufficient unused quota")
	}
	rows := []JobRow{}
	for _, wl := range []*unstructured.Unstructured{
		pending("old", t0).obj(),
		pending("new", t0.Add(time.Minute)).obj(),
		pending("urgent", t0.Add(2*time.Minute)).priority(100).obj(),
		makeWorkload("running", t0).condition("Admitted", "True", "").obj(),
	} {
		rows = append(rows, jobRow(wl, nil, ""))
	}
	var got []string
	for _, r := range ordered(rows) {
		got = append(got, r.Job+":"+r.State+":"+string(rune('0'+r.Position)))
	}
	want := []string{"running:Admitted:0", "urgent:Pending:1", "old:Pending:2", "new:Pending:3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestQueueTable(t *testing.T) {
	bq := &appsv1alpha1.BatchQueue{
		ObjectMeta: metav1.ObjectMeta{Name: "train"},
		Spec:       appsv1alpha1.BatchQueueSpec{Organization: "search", Parent: "search"},
		Status: appsv1alpha1.BatchQueueStatus{
			Profiles: []appsv1alpha1.ProfileStatus{{
				NodeProfile: "general",
				CPU:         appsv1alpha1.ResourceStatus{Quota: resource.MustParse("32"), Usage: resource.MustParse("40"), Borrowed: resource.MustParse("8")},
				Memory:      appsv1alpha1.ResourceStatus{Quota: resource.MustParse("128Gi"), Usage: resource.MustParse("80Gi")},
			}},
			AdmittedWorkloads: 5, DispatchingWorkloads: 1, PendingWorkloads: 12,
			Conditions: []metav1.Condition{{Type: appsv1alpha1.BatchQueueReadyCondition, Status: metav1.ConditionTrue}},
		},
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	queueTable(tw, []QueueRow{queueRow(bq)})
	_ = tw.Flush()
	want := "" +
		"QUEUE  ORGANIZATION  PARENT  PROFILE  CPU                 MEMORY      GPUS  ADMITTED  DISPATCHING  PENDING  READY\n" +
		"train  search        search  general  40/32 (8 borrowed)  80Gi/128Gi  0/0   5         1            12       True\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}
