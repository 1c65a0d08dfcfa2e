package appscli

import (
	"errors"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

var t0 = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)

func TestAppRow(t *testing.T) {
	shop := makeAppNamespace("shop", "shop").routed("workload-1").obj()
	readyApp := makeStatelessApp("web", 3).tracks(3, 3, 0, 0).readyConditions().obj()
	appFailing := makeStatelessApp("worker", 4).tracks(1, 4, 0, 0).
		condition(ready, isFalse, appsv1alpha1.ReplicasUnavailableReason, "").
		failure(appsv1alpha1.AppFailure, "OOMKilled", "3 pods ran out of memory", 3, "worker-a").obj()
	infraFailing := makeStatelessApp("api", 10).tracks(5, 10, 0, 0).
		condition(ready, isFalse, appsv1alpha1.ReplicasUnavailableReason, "").
		failure(appsv1alpha1.InfraFailure, "Unschedulable", "0/3 nodes are available", 5).obj()
	rolling := makeStatelessApp("web", 3).tracks(2, 3, 0, 0).
		condition(ready, isFalse, appsv1alpha1.ReplicasUnavailableReason, "2 of 3").
		condition(progressing, isTrue, appsv1alpha1.RollingOutReason, "").obj()
	deleting := makeAppNamespace("old", "old").routed("workload-1").
		ready(isFalse, appsv1alpha1.NamespaceNotEmptyReason, "namespace old holds 3 pods").obj()
	deleting.DeletionTimestamp = &metav1.Time{}
	readyKV := makeStatefulApp("kv", 3).readyConditions().
		pod("kv-0", "n1", "1.0", true).pod("kv-1", "n2", "1.0", true).pod("kv-2", "n3", "1.0", true).obj()
	waitingKV := makeStatefulApp("kv", 3).
		condition(appsv1alpha1.StatefulAppReadyCondition, isFalse, appsv1alpha1.PodsNotReadyReason, "").
		condition(appsv1alpha1.StatefulAppProgressingCondition, isTrue, appsv1alpha1.WaitingForShardManagerReason, "").
		pod("kv-0", "n1", "1.0", true).operation("Evict", "", appsv1alpha1.OperationDenied, "shard 3 would lose its last in-sync replica", t0).
		pod("kv-1", "n2", "1.0", true).pod("kv-2", "n3", "1.0", false).obj()
	tests := []struct {
		name     string
		an       *appsv1alpha1.AppNamespace
		apps     []*appsv1alpha1.StatelessApp
		stateful []appsv1alpha1.StatefulApp
		err      error
		want     AppRow
	}{
		{
			name: "stateless and stateful ready", an: shop, apps: []*appsv1alpha1.StatelessApp{readyApp}, stateful: []appsv1alpha1.StatefulApp{*readyKV},
			want: AppRow{App: "shop", AppNamespace: "shop", Cluster: "workload-1", Namespace: "shop", Workloads: 2,
				ReadyReplicas: 6, Replicas: 6, Status: "Ready", read: true},
		},
		{
			name: "a StatefulApp waits for its shard manager", an: shop, stateful: []appsv1alpha1.StatefulApp{*waitingKV},
			want: AppRow{App: "shop", AppNamespace: "shop", Cluster: "workload-1", Namespace: "shop", Workloads: 1,
				ReadyReplicas: 2, Replicas: 3, Status: "Progressing",
				Message: "kv: Waiting for the shard manager: 1 operation (kv-0: Evict, Denied)", read: true},
		},
		{
			name: "ready", an: shop, apps: []*appsv1alpha1.StatelessApp{readyApp},
			want: AppRow{App: "shop", AppNamespace: "shop", Cluster: "workload-1", Namespace: "shop", Workloads: 1,
				ReadyReplicas: 3, Replicas: 3, Status: "Ready", read: true},
		},
		{
			name: "both categories fail, the first failure is the message", an: shop,
			apps: []*appsv1alpha1.StatelessApp{readyApp, infraFailing, appFailing},
			want: AppRow{App: "shop", AppNamespace: "shop", Cluster: "workload-1", Namespace: "shop", Workloads: 3,
				ReadyReplicas: 9, Replicas: 17, Status: "Degraded: App+Infra", Message: "api: Unschedulable: 0/3 nodes are available", read: true},
		},
		{
			name: "rolling out", an: shop, apps: []*appsv1alpha1.StatelessApp{readyApp, rolling},
			want: AppRow{App: "shop", AppNamespace: "shop", Cluster: "workload-1", Namespace: "shop", Workloads: 2,
				ReadyReplicas: 5, Replicas: 6, Status: "Progressing", Message: "web: Not ready: rolling out, 2/3 replicas ready", read: true},
		},
		{
			name: "no workloads", an: shop,
			want: AppRow{App: "shop", AppNamespace: "shop", Cluster: "workload-1", Namespace: "shop", Status: "No workloads", read: true},
		},
		{
			name: "not routed",
			an:   makeAppNamespace("gpu", "shop").ready(isFalse, appsv1alpha1.NoClusterFitsReason, "workload-1: no Pool of profile gpu").obj(),
			want: AppRow{App: "shop", AppNamespace: "gpu", Status: "Not routed", Message: "NoClusterFits — workload-1: no Pool of profile gpu"},
		},
		{
			name: "unreachable", an: shop, err: errors.New("connection refused"),
			want: AppRow{App: "shop", AppNamespace: "shop", Cluster: "workload-1", Namespace: "shop", Status: "unreachable", Message: "connection refused"},
		},
		{
			name: "deleting", an: deleting, apps: []*appsv1alpha1.StatelessApp{readyApp},
			want: AppRow{App: "old", AppNamespace: "old", Cluster: "workload-1", Namespace: "old", Workloads: 1, ReadyReplicas: 3, Replicas: 3,
				Status: "Deleting", Message: "NamespaceNotEmpty — namespace old holds 3 pods", read: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var apps []appsv1alpha1.StatelessApp
			for _, sa := range tc.apps {
				apps = append(apps, *sa)
			}
			got := appRow(tc.an, tc.an.Status.Cluster, workloads{stateless: apps, stateful: tc.stateful}, tc.err)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(AppRow{})); diff != "" {
				t.Errorf("appRow (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAppTable(t *testing.T) {
	rows := []AppRow{
		{App: "shop", AppNamespace: "shop", Cluster: "workload-1", Namespace: "shop", Workloads: 2, ReadyReplicas: 9, Replicas: 12,
			Status: "Degraded: App", Message: "web: CrashLoopBackOff: back-off\nrestarting", read: true},
		{App: "shop", AppNamespace: "shop-gpu", Status: "Not routed", Message: "NoClusterFits — none"},
		{App: "zoo", AppNamespace: "zoo", Cluster: "workload-2", Namespace: "zoo", Status: "unreachable", Message: "connection refused"},
	}
	for _, tc := range []struct {
		wide bool
		want string
	}{
		{false, `APP   APPNAMESPACE  CLUSTER     NAMESPACE  WORKLOADS  READY  STATUS
shop  shop          workload-1  shop       2          9/12   Degraded: App
shop  shop-gpu      -           -          -          -      Not routed
zoo   zoo           workload-2  zoo        -          -      unreachable
`},
		{true, `APP   APPNAMESPACE  CLUSTER     NAMESPACE  WORKLOADS  READY  STATUS         MESSAGE
shop  shop          workload-1  shop       2          9/12   Degraded: App  web: CrashLoopBackOff: back-off restarting
shop  shop-gpu      -           -          -          -      Not routed     NoClusterFits — none
zoo   zoo           workload-2  zoo        -          -      unreachable    connection refused
`},
	} {
		var got strings.Builder
		tw := tabwriter.NewWriter(&got, 0, 4, 2, ' ', 0)
		appTable(tw, rows, tc.wide)
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got.String()); diff != "" {
			t.Errorf("appTable(wide=%t) (-want +got):\n%s", tc.wide, diff)
		}
	}
}

func TestFindApp(t *testing.T) {
	all := []appsv1alpha1.AppNamespace{
		*makeAppNamespace("checkout", "checkout").obj(),
		*makeAppNamespace("checkout-gpu", "checkout").obj(),
		*makeAppNamespace("payments-eu", "payments").obj(),
		*makeAppNamespace("search", "search").obj(),
	}
	names := func(ans []appsv1alpha1.AppNamespace) []string {
		var out []string
		for _, an := range ans {
			out = append(out, an.Name)
		}
		return out
	}
	tests := []struct {
		app     string
		all     []appsv1alpha1.AppNamespace
		want    []string
		wantErr string
	}{
		{app: "checkout", all: all, want: []string{"checkout", "checkout-gpu"}},
		{app: "payments-eu", all: all, want: []string{"payments-eu"}},
		{app: "chekout", all: all, wantErr: `no app "chekout" on the hub: no AppNamespace has spec.app "chekout" or that name; did you mean checkout? (` + "`kubectl strata get apps`" + ` lists them all)`},
		{app: "pay", all: all, wantErr: `no app "pay" on the hub: no AppNamespace has spec.app "pay" or that name; did you mean payments? (` + "`kubectl strata get apps`" + ` lists them all)`},
		{app: "zzzzzz", all: all, wantErr: `no app "zzzzzz" on the hub: no AppNamespace has spec.app "zzzzzz" or that name (` + "`kubectl strata get apps`" + ` lists them all)`},
		{app: "shop", wantErr: `no app "shop": the hub has no AppNamespaces yet (an app is onboarded by applying an AppNamespace to the hub)`},
	}
	for _, tc := range tests {
		got, err := findApp(tc.all, tc.app)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("findApp(%q) error = %v, want %s", tc.app, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("findApp(%q): %v", tc.app, err)
		}
		if diff := cmp.Diff(tc.want, names(got)); diff != "" {
			t.Errorf("findApp(%q) (-want +got):\n%s", tc.app, diff)
		}
	}
}

func TestSimilarNames(t *testing.T) {
	names := []string{"checkout", "checkouts", "check", "payments", "search", "checkout"}
	if diff := cmp.Diff([]string{"checkouts", "checkout", "check"}, similarNames("checkoutss", names)); diff != "" {
		t.Errorf("similarNames (-want +got):\n%s", diff)
	}
	if got := similarNames("x", names); len(got) != 0 {
		t.Errorf("similarNames(x) = %v, want none", got)
	}
}

func TestSplitApp(t *testing.T) {
	tests := []struct {
		arg, workload, wantApp, wantName, wantErr string
	}{
		{arg: "shop", wantApp: "shop"},
		{arg: "shop/web", wantApp: "shop", wantName: "web"},
		{arg: "shop", workload: "web", wantApp: "shop", wantName: "web"},
		{arg: "shop/web", workload: "web", wantApp: "shop", wantName: "web"},
		{arg: "shop/web", workload: "api", wantErr: `"shop/web" and --workload api name different workloads`},
		{arg: "/web", wantErr: `"/web" names no app: give APP or APP/WORKLOAD`},
	}
	for _, tc := range tests {
		app, name, err := splitApp(tc.arg, tc.workload)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("splitApp(%q, %q) error = %v, want %s", tc.arg, tc.workload, err, tc.wantErr)
			}
			continue
		}
		if err != nil || app != tc.wantApp || name != tc.wantName {
			t.Errorf("splitApp(%q, %q) = %q, %q, %v; want %q, %q", tc.arg, tc.workload, app, name, err, tc.wantApp, tc.wantName)
		}
	}
}

func TestHubRows(t *testing.T) {
	shop := makeAppNamespace("shop", "shop").placed("workload-1", "workload-2", "workload-3").obj()
	web := makeStatelessApp("web", 12).hubApp().
		inCluster("workload-1", 4).
		inCluster("workload-2", 4).clusterStatus(func(c *appsv1alpha1.ClusterAppStatus) {
		c.ReadyReplicas, c.Ready = 1, false
		c.Failure = &appsv1alpha1.Failure{Category: appsv1alpha1.AppFailure, Reason: "CrashLoopBackOff", Message: "back-off", FailingPods: 3}
	}).
		inCluster("workload-3", 4).clusterStatus(func(c *appsv1alpha1.ClusterAppStatus) {
		c.State, c.Share, c.Message = "Cordoned", 0, "cordoned: its replicas stay until workload-1 has 6 Ready"
	}).
		condition(ready, isFalse, appsv1alpha1.MovingReason, "").obj()
	// api is not in workload-3 yet, and workload-1 cannot be reached.
	api := makeStatelessApp("api", 2).hubApp().version("2.0", "7").
		inCluster("workload-1", 1).clusterStatus(func(c *appsv1alpha1.ClusterAppStatus) {
		c.State, c.Ready, c.Message = "Unreachable", false, "the hub cannot reach cluster workload-1"
	}).
		inCluster("workload-2", 1).obj()
	row := func(cluster string, workloads int, ready, want int32, status, message string, read bool) AppRow {
		return AppRow{App: "shop", AppNamespace: "shop", Cluster: cluster, Namespace: "shop", Workloads: workloads,
			ReadyReplicas: ready, Replicas: want, Status: status, Message: message, Hub: true, read: read}
	}
	tests := []struct {
		name string
		an   *appsv1alpha1.AppNamespace
		apps []*appsv1alpha1.StatelessApp
		want []AppRow
	}{
		{
			name: "one row per cluster, from the hub's status", an: shop, apps: []*appsv1alpha1.StatelessApp{web},
			want: []AppRow{
				row("workload-1", 1, 4, 4, "Ready", "", true),
				row("workload-2", 1, 1, 4, "Degraded: App", "web: CrashLoopBackOff: back-off", true),
				row("workload-3", 1, 4, 4, "Cordoned", "web: cordoned: its replicas stay until workload-1 has 6 Ready", true),
			},
		},
		{
			name: "an unreachable cluster, and one the hub has not reported yet", an: shop, apps: []*appsv1alpha1.StatelessApp{api, web},
			want: []AppRow{
				row("workload-1", 2, 5, 5, "unreachable", "api: the hub cannot reach cluster workload-1", false),
				row("workload-2", 2, 2, 5, "Degraded: App", "web: CrashLoopBackOff: back-off", true),
				row("workload-3", 2, 4, 4, "Cordoned", "api: the hub reports nothing of this cluster yet", true),
			},
		},
		{
			name: "not routed", an: makeAppNamespace("shop", "shop").ready(isFalse, appsv1alpha1.NoClusterFitsReason, "none fits").obj(),
			apps: []*appsv1alpha1.StatelessApp{makeStatelessApp("web", 3).hubApp().obj()},
			want: []AppRow{{App: "shop", AppNamespace: "shop", Workloads: 1, Status: "Not routed", Message: "NoClusterFits — none fits", Hub: true}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var apps []appsv1alpha1.StatelessApp
			for _, sa := range tc.apps {
				apps = append(apps, *sa)
			}
			if diff := cmp.Diff(tc.want, hubRows(tc.an, apps), cmp.AllowUnexported(AppRow{})); diff != "" {
				t.Errorf("hubRows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlacements(t *testing.T) {
	multi := makeAppNamespace("shop", "shop").placed("workload-2", "workload-1").obj()
	// An older hub wrote status.cluster alone.
	single := makeAppNamespace("blog", "blog").routed("workload-1").obj()
	unrouted := makeAppNamespace("gpu", "gpu").obj()
	// A batch namespace is on every cluster; the app views read it where it was routed.
	batch := makeAppNamespace("train", "train").obj()
	batch.Spec.Tenant = appsv1alpha1.BatchTenant
	batch.Status.Clusters = []string{"workload-1", "workload-2"}
	got := map[string][]string{}
	for _, p := range placements([]appsv1alpha1.AppNamespace{*multi, *single, *unrouted, *batch}) {
		got[p.an.Name] = append(got[p.an.Name], p.cluster)
	}
	want := map[string][]string{"shop": {"workload-2", "workload-1"}, "blog": {"workload-1"}, "gpu": {""}, "train": {""}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("placements (-want +got):\n%s", diff)
	}
}
