package aggregator_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/console/aggregator"
	"github.com/strata-dev/strata/internal/console/store"
	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/testutil/testbroker"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// deadline bounds every wait for the store to show a change.
const deadline = 10 * time.Second

// fixture is a hub, a workload cluster registered on it, and a store on
// SQLite read through a connection of the test's own.
type fixture struct {
	hubCfg *rest.Config
	hub    client.Client
	wl     kubernetes.Interface
	path   string
	st     *store.Store
	db     *sql.DB
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	_, hubCfg := testutil.StartEnv(t)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, fleetv1alpha1.AddToScheme, appsv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	hub, err := client.New(hubCfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	wlCfg, _ := testutil.StartWorkloadEnv(t, hub, "workload-1", "default", false)
	path := filepath.Join(t.TempDir(), "fleet.db")
	st, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	db, _, err := sqldb.Open(t.Context(), path, "the test's reader")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &fixture{hubCfg: hubCfg, hub: hub, wl: kubernetes.NewForConfigOrDie(wlCfg), path: path, st: st, db: db}
}

// start runs an aggregator until the returned stop is called (or the test ends).
func (f *fixture) start(t *testing.T, broker brokerv1.BrokerServiceClient) (*aggregator.Aggregator, func()) {
	t.Helper()
	a, err := aggregator.New(aggregator.Options{HubConfig: f.hubCfg, Broker: broker, Store: f.st, Logger: testr.New(t),
		FlushInterval: 50 * time.Millisecond, PageSize: 2, ClusterResync: time.Second, ProbeInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Start(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("aggregator stopped with %v", err)
		}
	}
	t.Cleanup(stop)
	return a, stop
}

// rows runs a query whose rows are one text column, joined by spaces.
func (f *fixture) rows(t *testing.T, query string) string {
	t.Helper()
	rows, err := f.db.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close() //nolint:errcheck // test
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

// eventually waits until query returns want.
func (f *fixture) eventually(t *testing.T, query, want string) {
	t.Helper()
	var got string
	for end := time.Now().Add(deadline); time.Now().Before(end); {
		if got = f.rows(t, query); got == want {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatal("test ended")
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s after %s (-want +got):\n%s", query, deadline, cmp.Diff(want, got))
}

func pod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "app"}}},
	}
}

const podsQuery = `SELECT name || ':' || app || ':' || phase || ':' || ready || ':' || reason FROM pods WHERE cluster = 'workload-1' ORDER BY name`

func TestAggregatorMirrorsAClusterAndResumes(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	node := testutil.MakeNode("n1", "general", "3").Label(fleetv1alpha1.DatacenterLabel, "dc1").Obj()
	node.Status = corev1.NodeStatus{}
	node, err := f.wl.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Conditions = []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: "PLEG is not healthy"},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue},
	}
	if _, err := f.wl.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 { // more than a page
		if _, err := f.wl.CoreV1().Pods("default").Create(ctx, pod(fmt.Sprintf("web-%d", i), map[string]string{appsv1alpha1.AppLabel: "web"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []*corev1.Event{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "node-event"}, Reason: "NodeNotReady", Type: "Warning",
			InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "n1", APIVersion: "v1"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pod-event"}, Reason: "Pulled",
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-0", APIVersion: "v1"}},
	} {
		if _, err := f.wl.CoreV1().Events("default").Create(ctx, e, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	a, stop := f.start(t, nil)
	f.eventually(t, podsQuery, "web-0:web:Pending:0: web-1:web:Pending:0: web-2:web:Pending:0: web-3:web:Pending:0: web-4:web:Pending:0:")
	f.eventually(t, `SELECT name || ':' || machine || ':' || datacenter || ':' || maintenance_zone || ':' || ready || ':' || problems FROM nodes`,
		"n1:n1:dc1:3:False:Ready=False: KubeletNotReady: PLEG is not healthy; MemoryPressure=True")
	f.eventually(t, `SELECT name || ':' || object_kind FROM events`, "node-event:Node")
	f.eventually(t, `SELECT cluster || ':' || kind || ':' || name FROM objects WHERE kind = 'Cluster'`, "hub:Cluster:workload-1")
	f.eventually(t, `SELECT COUNT(*) FROM sources WHERE synced = 1 AND cluster IN ('hub', 'workload-1')`, "11")
	waitSynced(t, a)
	if got := f.rows(t, `SELECT data FROM objects WHERE kind = 'Cluster'`); strings.Contains(got, "managedFields") {
		t.Errorf("the Cluster is stored with its managedFields: %s", got)
	}

	// A change and a delete while it watches.
	p, err := f.wl.CoreV1().Pods("default").Get(ctx, "web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if _, err := f.wl.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err = f.wl.CoreV1().Pods("default").Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", RestartCount: 4,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off"}}}}
	if _, err := f.wl.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.wl.CoreV1().Pods("default").Delete(ctx, "web-2", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	f.eventually(t, podsQuery, "web-0:web:Running:1: web-1:web:Pending:0:CrashLoopBackOff web-3:web:Pending:0: web-4:web:Pending:0:")

	// A quiet source (no StatefulApp ever changes here) stays fresh: the
	// cluster answers its probes while the watch is open.
	quiet := `SELECT CAST(last_seen AS TEXT) FROM sources WHERE cluster = 'workload-1' AND kind = 'StatefulApp'`
	seen := f.rows(t, quiet)
	for end := time.Now().Add(deadline); f.rows(t, quiet) == seen; {
		if time.Now().After(end) {
			t.Fatalf("the quiet StatefulApp source was last seen at %s and not since (probes every 200 ms)", seen)
		}
		time.Sleep(50 * time.Millisecond) // polling the store with a deadline
	}

	// Stopped, the cluster changes; a new aggregator on the same store
	// resumes its watches from the stored resourceVersions and catches up.
	stop()
	listed := aggregator.EventsReceived(t, "workload-1", store.KindPod, "LISTED")
	if err := f.wl.CoreV1().Pods("default").Delete(ctx, "web-3", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.wl.CoreV1().Pods("default").Create(ctx, pod("api-0", map[string]string{appsv1alpha1.AppLabel: "api"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	node, err = f.wl.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Spec.Unschedulable = true
	if _, err := f.wl.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.start(t, nil)
	f.eventually(t, podsQuery, "api-0:api:Pending:0: web-0:web:Running:1: web-1:web:Pending:0:CrashLoopBackOff web-4:web:Pending:0:")
	f.eventually(t, `SELECT name || ':' || unschedulable FROM nodes`, "n1:1")
	if got := aggregator.EventsReceived(t, "workload-1", store.KindPod, "LISTED"); got != listed {
		t.Errorf("the pods were listed again (%v objects listed, %v before the restart); want the watch resumed", got, listed)
	}

	// The Cluster goes: its rows and sources are forgotten.
	if err := f.hub.Delete(ctx, &fleetv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "workload-1"}}); err != nil {
		t.Fatal(err)
	}
	f.eventually(t, `SELECT COUNT(*) FROM pods`, "0")
	f.eventually(t, `SELECT COUNT(*) FROM nodes`, "0")
	f.eventually(t, `SELECT COUNT(*) FROM sources WHERE cluster = 'workload-1'`, "0")
}

func waitSynced(t *testing.T, a *aggregator.Aggregator) {
	t.Helper()
	for end := time.Now().Add(deadline); !a.Synced(); {
		if time.Now().After(end) {
			t.Fatal("the aggregator is not synced")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	if err := a.ReadyCheck()(nil); err != nil {
		t.Errorf("ReadyCheck once synced: %v", err)
	}
}

func TestAggregatorMirrorsTheBroker(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	broker, _ := testbroker.Start(t, 40, time.Hour)
	f.start(t, broker)
	f.eventually(t, `SELECT COUNT(*) || ':' || COALESCE(MIN(state), '') || ':' || COALESCE(MIN(datacenter), '') FROM machines`, "40:available:dc1")
	f.eventually(t, `SELECT COUNT(*) FROM sources WHERE cluster = 'broker' AND synced = 1`, "3")

	if _, err := broker.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
		Name: "p1", Datacenter: "dc1", NodeProfile: testbroker.GeneralProfile, Capacity: 1}}); err != nil {
		t.Fatal(err)
	}
	f.eventually(t, `SELECT name || ':' || profile || ':' || capacity FROM broker_pools`, "p1:general:1")
	f.eventually(t, `SELECT COUNT(*) FROM machines WHERE pool = 'p1' AND state = 'allocated'`, "1")
	machine := f.rows(t, `SELECT id FROM machines WHERE pool = 'p1'`)
	created, err := broker.CreateDisruption(ctx, &brokerv1.CreateDisruptionRequest{Machine: machine,
		Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR, OnBehalfOf: "test"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetDisruption().GetId()
	if _, err := broker.ApproveDisruption(ctx, &brokerv1.ApproveDisruptionRequest{Id: id, Message: "go"}); err != nil {
		t.Fatal(err)
	}
	f.eventually(t, `SELECT machine || ':' || reason || ':' || state FROM disruptions`, machine+":hardware-repair:approved")
	var history []store.Transition
	if err := json.Unmarshal([]byte(f.rows(t, `SELECT history FROM disruptions`)), &history); err != nil {
		t.Fatal(err)
	}
	if len(history) == 0 || history[len(history)-1].To != store.DisruptionApproved || history[len(history)-1].Message != "go" {
		t.Errorf("disruption history = %+v, want it to end with the approval", history)
	}

	if _, err := broker.DeletePool(ctx, &brokerv1.DeletePoolRequest{Name: "p1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := broker.CancelDisruption(ctx, &brokerv1.CancelDisruptionRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	f.eventually(t, `SELECT COUNT(*) FROM broker_pools`, "0")

	// A cluster that cannot be reached says why on its sources.
	down := []byte(`apiVersion: v1
kind: Config
clusters: [{name: down, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: down, user: {token: x}}]
contexts: [{name: down, context: {cluster: down, user: down}}]
current-context: down
`)
	testutil.MustCreate(t, f.hub, testutil.MakeSecret("default", "down-kubeconfig", "kubeconfig", down))
	testutil.MustCreate(t, f.hub, testutil.MakeCluster("down", "default").Obj())
	f.eventually(t, `SELECT COUNT(*) FROM sources WHERE cluster = 'down' AND last_error LIKE 'cluster down: %connection refused%' AND error_since > 0`, "5")
}
