package appscli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/cli/hubcli"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/workload/install"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// unreachableKubeconfig points at a port nothing listens on.
const unreachableKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster:
    server: https://127.0.0.1:1
    insecure-skip-tls-verify: true
contexts:
- name: gone
  context: {cluster: gone, user: gone}
current-context: gone
users:
- name: gone
  user: {token: x}
`

// TestCommands runs kubectl strata end to end against two API servers: a
// hub with AppNamespaces, and a workload cluster whose StatelessApps carry
// the status a controller would write (written here, as nothing runs the
// controllers). The person's kubeconfig has the hub as its current context
// and a context per workload cluster, named after it: kubectl strata reads
// the workload cluster with it, as the person, never with the hub's
// credentials (the hub here holds none).
func TestCommands(t *testing.T) {
	hubEnv, hubCfg := testutil.StartEnv(t)
	wlEnv, wlCfg := testutil.StartEnv(t)
	hubClient, err := hubcli.NewClient(hubCfg)
	if err != nil {
		t.Fatal(err)
	}
	wlClient, err := client.New(wlCfg, client.Options{Scheme: workloadScheme})
	if err != nil {
		t.Fatal(err)
	}
	wlAdmin := testutil.AdminKubeconfig(t, wlEnv)
	hubKubeconfig := writeKubeconfig(t, "hub", map[string][]byte{
		"hub":  testutil.AdminKubeconfig(t, hubEnv),
		"wl":   wlAdmin,
		"gone": []byte(unreachableKubeconfig),
	})

	// The hub: the group developers may list the AppNamespaces (the app
	// catalogue); AppNamespace shop routed to cluster wl, gone not
	// reachable.
	grantAppNamespaceReaders(t, hubClient)
	createAppNamespace(t, hubClient, makeAppNamespace("shop", "shop").
		owner(appsv1alpha1.UserSubject, "alice", appsv1alpha1.AdminRole).routed("wl").obj())
	createAppNamespace(t, hubClient, makeAppNamespace("shop-gpu", "shop").profile("gpu").
		ready(isFalse, appsv1alpha1.NoClusterFitsReason, "wl: no Pool of profile gpu").obj())
	createAppNamespace(t, hubClient, makeAppNamespace("lost", "lost").routed("gone").obj())
	// A second namespace in wl: get apps lists wl's StatelessApps at once.
	createAppNamespace(t, hubClient, makeAppNamespace("blog", "blog").routed("wl").obj())

	// The workload cluster: namespace shop, a Ready app and a crashing one.
	testutil.MustCreate(t, wlClient, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	createStatelessApp(t, wlClient, makeStatelessApp("web", 3).tracks(3, 3, 0, 0).readyConditions().obj())
	createStatelessApp(t, wlClient, makeStatelessApp("worker", 4).canary("1.1", 25).tracks(3, 3, 0, 1).
		condition(ready, isFalse, appsv1alpha1.ReplicasUnavailableReason, "3 of 4 replicas available").
		condition(progressing, isTrue, appsv1alpha1.RollingOutReason, "canary 1.1: 0 of 1 pods ready").
		condition(degraded, isTrue, string(appsv1alpha1.AppFailure), "1 pod crashes").
		failure(appsv1alpha1.AppFailure, "CrashLoopBackOff", "back-off restarting failed container app", 1, "worker-canary-x").obj())

	// Namespace store: a StatefulApp whose shard manager answers over TLS
	// (a fake, in this process; its CA in a Secret of the namespace) and
	// one whose shard manager is down.
	sm, smCA := startShardManager(t)
	createAppNamespace(t, hubClient, makeAppNamespace("store", "store").stateful().profile("storage").routed("wl").obj())
	testutil.MustCreate(t, wlClient, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "store"}})
	testutil.MustCreate(t, wlClient, testutil.MakeSecret("store", "kv-ca", "ca.crt", smCA))
	since := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	createStatefulApp(t, wlClient, makeStatefulApp("kv", 3).endpoint(sm).tls("kv-ca").
		condition(appsv1alpha1.StatefulAppReadyCondition, isFalse, appsv1alpha1.PodsNotReadyReason, "kv-1 is not ready").
		condition(appsv1alpha1.StatefulAppProgressingCondition, isTrue, appsv1alpha1.WaitingForShardManagerReason, "kv-2: Evict waits for the shard manager").
		condition(appsv1alpha1.ShardManagerReachableCondition, isTrue, appsv1alpha1.ShardManagerAnsweredReason, "").
		pod("kv-0", "dc1-r002-u01", "1.0", true).
		pod("kv-1", "dc1-r002-u02", "1.0", false).
		operation("Evict", "planned-upgrade of machine dc1-r002-u02", appsv1alpha1.OperationWaitingForPod, "", since).
		pod("kv-2", "dc1-r002-u03", "1.0", true).
		operation("Evict", "planned-upgrade of machine dc1-r002-u03", appsv1alpha1.OperationRetryAfter, "moving the leader of shard 2 off kv-2", since).obj())
	createStatefulApp(t, wlClient, makeStatefulApp("cache", 1).endpoint("127.0.0.1:1").readyConditions().
		pod("cache-0", "dc1-r002-u01", "1.0", true).obj())

	kubectl := func(args ...string) (string, string, error) {
		return run(NewPluginCommand(), append([]string{"--kubeconfig", hubKubeconfig}, args...)...)
	}

	t.Run("status shows the app's namespaces and workloads", func(t *testing.T) {
		out, _, err := kubectl("status", "shop")
		if err != nil {
			t.Fatal(err)
		}
		golden(t, filepath.Join("testdata", "e2e", "status-shop.txt"), out)
	})

	t.Run("strata apps status is the same, through --hub-kubeconfig", func(t *testing.T) {
		want, _, _ := kubectl("status", "shop")
		out, _, err := run(NewCommand(&globals.Flags{}), "--hub-kubeconfig", hubKubeconfig, "status", "shop")
		if err != nil || out != want {
			t.Errorf("strata apps status = %q, %v; want %q", out, err, want)
		}
	})

	t.Run("status of one workload, as JSON", func(t *testing.T) {
		out, _, err := kubectl("status", "shop/worker", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var s AppStatus
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("parsing %s: %v", out, err)
		}
		var workloads []string
		for _, ns := range s.Namespaces {
			for _, w := range ns.Workloads {
				workloads = append(workloads, w.StatelessApp.Name+": "+w.Verdict)
			}
		}
		want := "worker: Not ready: App failure — CrashLoopBackOff in 1 pod. Fix the app: its container keeps exiting; " +
			"`kubectl strata logs shop/worker --previous` shows why."
		if len(workloads) != 1 || workloads[0] != want {
			t.Errorf("workloads = %q, want [%q]", workloads, want)
		}
		if len(s.Namespaces) != 2 || s.Namespaces[1].Verdict != "Not routed: NoClusterFits — wl: no Pool of profile gpu" {
			t.Errorf("namespaces = %+v, want shop and the unrouted shop-gpu", s.Namespaces)
		}
	})

	t.Run("an unknown workload names those there are", func(t *testing.T) {
		_, _, err := kubectl("status", "shop", "--workload", "nope")
		if want := `app shop has no StatelessApp or StatefulApp "nope" (it has web, worker)`; err == nil || err.Error() != want {
			t.Errorf("error = %v, want %s", err, want)
		}
	})

	t.Run("status of a StatefulApp shows its pods' shards and operations", func(t *testing.T) {
		out, _, err := kubectl("status", "store/kv")
		if err != nil {
			t.Fatal(err)
		}
		golden(t, filepath.Join("testdata", "e2e", "status-store-kv.txt"), strings.ReplaceAll(out, sm, "SHARD-MANAGER"))

		out, _, err = kubectl("status", "store/kv", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var s AppStatus
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("parsing %s: %v", out, err)
		}
		if len(s.Namespaces) != 1 || len(s.Namespaces[0].StatefulApps) != 1 {
			t.Fatalf("namespaces = %+v, want store with kv", s.Namespaces)
		}
		kv := s.Namespaces[0].StatefulApps[0]
		if kv.Shards == nil || len(kv.Shards.Pods) != 3 || kv.Shards.Pods[2].Replicas[0] != (Replica{Shard: 0, Role: "follower", InSync: true}) {
			t.Errorf("shards = %+v, want the fake shard manager's", kv.Shards)
		}
	})

	t.Run("an unreachable shard manager is said, and does not fail the command", func(t *testing.T) {
		out, _, err := kubectl("status", "store/cache")
		if err != nil {
			t.Fatalf("status: %v, want no error", err)
		}
		if !strings.Contains(out, "Shards:           shard manager unreachable: 127.0.0.1:1: ") || !strings.Contains(out, "Verdict:          Ready") {
			t.Errorf("output does not say the shard manager is unreachable:\n%s", out)
		}
	})

	t.Run("an unknown app suggests similar ones", func(t *testing.T) {
		_, _, err := kubectl("status", "shopp")
		if err == nil || !strings.Contains(err.Error(), "did you mean shop?") {
			t.Errorf("error = %v, want a suggestion of shop", err)
		}
	})

	t.Run("an unreachable cluster is said, and fails the command", func(t *testing.T) {
		out, _, err := kubectl("status", "lost")
		if err == nil || err.Error() != "could not read cluster gone (see above)" {
			t.Errorf("error = %v, want that cluster gone could not be read", err)
		}
		if !strings.Contains(out, "Cluster:          gone (unreachable: ") || !strings.Contains(out, "Verdict:          Unknown: cluster gone cannot be read") {
			t.Errorf("output does not say the cluster is unreachable:\n%s", out)
		}
	})

	t.Run("get apps reads each cluster, tolerating the unreachable one", func(t *testing.T) {
		out, _, err := kubectl("get", "apps")
		if err != nil {
			t.Fatal(err)
		}
		golden(t, filepath.Join("testdata", "e2e", "get-apps.txt"), out)
		var rows []AppRow
		out, _, err = kubectl("get", "apps", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 5 {
			t.Fatalf("rows = %+v (%v), want 5", rows, err)
		}
	})

	t.Run("a missing context is named", func(t *testing.T) {
		_, _, err := kubectl("--context", "nosuch", "get", "apps")
		if err == nil || !strings.Contains(err.Error(), `context "nosuch"`) {
			t.Errorf("error = %v, want one naming the missing context", err)
		}
	})

	t.Run("a cluster that is not the hub is named so", func(t *testing.T) {
		plain := &envtest.Environment{BinaryAssetsDirectory: os.Getenv("KUBEBUILDER_ASSETS")}
		if _, err := plain.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = plain.Stop() })
		path := filepath.Join(t.TempDir(), "plain.kubeconfig")
		if err := os.WriteFile(path, testutil.AdminKubeconfig(t, plain), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := run(NewPluginCommand(), "--kubeconfig", path, "status", "shop")
		if err == nil || !strings.HasPrefix(err.Error(), "the cluster serves no AppNamespaces (apps.strata.dev): it is not a Strata hub (is context ") {
			t.Errorf("error = %v, want that the cluster is not a hub", err)
		}
	})

	t.Run("logs says why a pod has none", func(t *testing.T) {
		// No kubelet serves logs here: web-1 is not scheduled (an empty
		// log), web-2 runs on a Node that does not exist (as a log request
		// fails for a pod of kwok), web-3 waits for its container. The API
		// server calls the missing Node `pods "n1"`.
		createPod(t, wlClient, "web-1", "", nil)
		createPod(t, wlClient, "web-2", "n1", &corev1.ContainerStatus{Name: "app", RestartCount: 3,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
		createPod(t, wlClient, "web-3", "n1", &corev1.ContainerStatus{Name: "app",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}})
		out, errOut, err := kubectl("logs", "shop/web")
		if err != nil {
			t.Errorf("logs: %v, want no error: one pod could be read", err)
		}
		wantErr := []string{
			`[web-2/app] no log: pods "n1" not found (container app has run on Node n1; in the local datacenter Nodes are simulated by kwok, run no containers and keep no logs)`,
			`[web-1/app] the log is empty (the pod is not scheduled to a Node yet)`,
			`[web-3/app] no log: pods "n1" not found (container app has not started: ContainerCreating)`,
		}
		if got := strings.Split(strings.TrimSpace(errOut), "\n"); out != "" || !slices.Equal(got, wantErr) {
			t.Errorf("stdout %q, stderr:\n%s\nwant on stderr:\n%s", out, errOut, strings.Join(wantErr, "\n"))
		}

		_, errOut, err = kubectl("logs", "shop/web", "--max-pods", "1")
		if err == nil || err.Error() != "no log could be read from any of the 1 pods (see above)" {
			t.Errorf("error = %v, want that no log could be read", err)
		}
		if !strings.HasPrefix(errOut, "Reading 1 of 3 pods, failing ones first (--max-pods to read more).\n[web-2/app] no log: ") {
			t.Errorf("stderr = %q, want web-2, which restarts most, alone", errOut)
		}

		_, errOut, _ = kubectl("logs", "shop/web", "-c", "sidecar", "--max-pods", "1")
		if !strings.HasSuffix(errOut, "[web-2/sidecar] no such container; the pod has app (--container to pick one)\n") {
			t.Errorf("stderr = %q, want the pod's containers", errOut)
		}

		_, _, err = kubectl("logs", "shop/worker")
		if want := "app shop has no pods of StatelessApp worker (`kubectl strata status shop` shows why)"; err == nil || err.Error() != want {
			t.Errorf("error = %v, want %s", err, want)
		}
	})

	t.Run("as the caller: view access to the app's namespace shows it, none is forbidden", func(t *testing.T) {
		// Kubernetes' view role holds the apps' API once the
		// controller-manager has aggregated Strata's strata-apps-view into
		// it, as in a real cluster; the AppNamespace controller binds an
		// owner's role in the namespace the same way.
		startRoleAggregation(t, wlAdmin, wlClient)
		testutil.MustCreate(t, wlClient, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop-devs-view"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "shop-devs"}},
		})
		want, _, err := kubectl("status", "shop")
		if err != nil {
			t.Fatal(err)
		}

		out, _, err := kubectl("status", "shop", "--as", "alice", "--as-group", "developers", "--as-group", "shop-devs")
		if err != nil || out != want {
			t.Errorf("status shop as alice of shop-devs = %v:\n%s\nwant what the admin sees:\n%s", err, out, want)
		}

		out, _, err = kubectl("status", "shop", "--as", "bob", "--as-group", "developers")
		wantErr := `forbidden: user "bob" may not list StatelessApps in namespace shop of cluster wl ` +
			`(an app's namespace is open to the owners its AppNamespace lists in spec.owners: ask one of them, or the platform team, for view access)`
		if err == nil || err.Error() != wantErr {
			t.Errorf("status shop as bob: error = %v\nwant %s", err, wantErr)
		}
		if !strings.Contains(out, "Verdict:          Forbidden: user \"bob\" may not list StatelessApps in namespace shop of cluster wl") || strings.Contains(out, "StatelessApp web") {
			t.Errorf("status shop as bob shows:\n%s\nwant the refusal and no workload", out)
		}

		_, _, err = kubectl("logs", "shop/web", "--as", "bob", "--as-group", "developers")
		if err == nil || !strings.HasPrefix(err.Error(), `forbidden: user "bob" may not list pods in namespace shop of cluster wl (`) {
			t.Errorf("logs shop/web as bob: error = %v, want forbidden", err)
		}

		// get apps shows each namespace as far as the caller may see it.
		out, _, err = kubectl("get", "apps", "-o", "json", "--as", "alice", "--as-group", "developers", "--as-group", "shop-devs")
		if err != nil {
			t.Fatal(err)
		}
		var rows []AppRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("parsing %s: %v", out, err)
		}
		got := map[string]string{}
		for _, r := range rows {
			got[r.AppNamespace] = r.Status
		}
		wantRows := map[string]string{"blog": statusForbidden, "lost": statusUnreachable, "shop": "Degraded: App", "shop-gpu": statusNotRouted, "store": statusForbidden}
		if diff := cmp.Diff(wantRows, got); diff != "" {
			t.Errorf("get apps as alice of shop-devs (-want +got):\n%s", diff)
		}

		// Not even the hub's AppNamespaces for who is not a developer.
		_, _, err = kubectl("get", "apps", "--as", "mallory")
		wantErr = `forbidden: user "mallory" may not list AppNamespaces on the hub, where kubectl strata finds apps ` +
			`(the platform team grants it: get and list on appnamespaces.apps.strata.dev)`
		if err == nil || err.Error() != wantErr {
			t.Errorf("get apps as mallory: error = %v\nwant %s", err, wantErr)
		}
	})

	t.Run("the shard manager's CA is read as the caller", func(t *testing.T) {
		// view (aggregated above) may not read Secrets: the shards are not asked for, and
		// the line says why; the rest is shown.
		testutil.MustCreate(t, wlClient, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: "store-viewers"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "store-viewers"}},
		})
		out, _, err := kubectl("status", "store/kv", "--as", "carol", "--as-group", "developers", "--as-group", "store-viewers")
		if err != nil {
			t.Fatalf("status: %v, want no error", err)
		}
		if want := "Shards:           shard manager not asked: you may not read its CA, key ca.crt of Secret store/kv-ca"; !strings.Contains(out, want) {
			t.Errorf("status store/kv as carol (view) does not say %q:\n%s", want, out)
		}
		if !strings.Contains(out, "Pod kv-0:") {
			t.Errorf("status store/kv as carol (view) lacks the pods:\n%s", out)
		}
	})

	t.Run("a workload cluster without a context in the kubeconfig says what to add", func(t *testing.T) {
		noContext := writeKubeconfig(t, "hub", map[string][]byte{"hub": testutil.AdminKubeconfig(t, hubEnv), "kwok-wl": wlAdmin})
		_, _, err := run(NewPluginCommand(), "--kubeconfig", noContext, "status", "shop")
		want := `no context "wl" for cluster wl in the kubeconfig ` + noContext + `: kubectl strata reads a workload cluster as you, ` +
			`with your own credentials for it; add a context named wl that reaches it (kubectl config set-context wl --cluster=CLUSTER --user=USER), ` +
			`or map one of yours with --cluster-context wl=CONTEXT`
		if err == nil || err.Error() != want {
			t.Errorf("error = %v\nwant %s", err, want)
		}
		if _, _, err := run(NewPluginCommand(), "--kubeconfig", noContext, "--cluster-context", "wl=kwok-wl", "status", "shop"); err != nil {
			t.Errorf("status with --cluster-context wl=kwok-wl: %v", err)
		}
	})

	t.Run("an AppNamespace on several clusters is read in each", func(t *testing.T) {
		// Namespace shop of app outlet, on wl and then gone (unreachable).
		outlet := makeAppNamespace("outlet", "outlet").placed("wl", "gone").obj()
		outlet.Status.Namespace = "shop"
		createAppNamespace(t, hubClient, outlet)

		out, _, err := kubectl("status", "outlet")
		if err == nil || err.Error() != "could not read cluster gone (see above)" {
			t.Errorf("error = %v, want that cluster gone could not be read", err)
		}
		for _, want := range []string{
			"Cluster:          wl (1 of 2: wl, gone)\nPlaced:           room for profile general in wl\n",
			"StatelessApp worker\n",
			"Cluster:          gone (2 of 2: wl, gone) (unreachable: ",
			"Verdict:          Unknown: cluster gone cannot be read",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("status outlet does not show %q:\n%s", want, out)
			}
		}

		out, _, err = kubectl("get", "apps", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var rows []AppRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("parsing %s: %v", out, err)
		}
		got := map[string]string{}
		for _, r := range rows {
			if r.App == "outlet" {
				got[r.Cluster] = r.Status
			}
		}
		if diff := cmp.Diff(map[string]string{"wl": "Degraded: App", "gone": statusUnreachable}, got); diff != "" {
			t.Errorf("get apps rows of outlet by cluster (-want +got):\n%s", diff)
		}
	})
}

// createPod creates a pod of StatelessApp web with an app container, on
// node (when set), with the app container's status (when given).
func createPod(t *testing.T, c client.Client, name, node string, status *corev1.ContainerStatus) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: map[string]string{appsv1alpha1.StatelessAppLabel: "web"}},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}
	testutil.MustCreate(t, c, pod)
	if status == nil {
		return
	}
	status.Image = "app:1"
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{*status}
	if err := c.Status().Update(t.Context(), pod); err != nil {
		t.Fatalf("writing the status of pod %s: %v", name, err)
	}
}

// run executes a command with args and returns its stdout, stderr and error.
func run(cmd *cobra.Command, args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

// createAppNamespace creates an AppNamespace, then writes its status.
func createAppNamespace(t *testing.T, c client.Client, an *appsv1alpha1.AppNamespace) {
	t.Helper()
	status := *an.Status.DeepCopy()
	testutil.MustCreate(t, c, an)
	an.Status = status
	stampConditions(an.Status.Conditions)
	if err := c.Status().Update(t.Context(), an); err != nil {
		t.Fatalf("writing the status of AppNamespace %s: %v", an.Name, err)
	}
}

// createStatelessApp creates a StatelessApp, then writes its status.
func createStatelessApp(t *testing.T, c client.Client, sa *appsv1alpha1.StatelessApp) {
	t.Helper()
	status := *sa.Status.DeepCopy()
	testutil.MustCreate(t, c, sa)
	status.ObservedGeneration = sa.Generation
	sa.Status = status
	stampConditions(sa.Status.Conditions)
	if err := c.Status().Update(t.Context(), sa); err != nil {
		t.Fatalf("writing the status of StatelessApp %s: %v", sa.Name, err)
	}
}

// createStatefulApp creates a StatefulApp, then writes its status.
func createStatefulApp(t *testing.T, c client.Client, sa *appsv1alpha1.StatefulApp) {
	t.Helper()
	status := *sa.Status.DeepCopy()
	testutil.MustCreate(t, c, sa)
	status.ObservedGeneration = sa.Generation
	sa.Status = status
	stampConditions(sa.Status.Conditions)
	if err := c.Status().Update(t.Context(), sa); err != nil {
		t.Fatalf("writing the status of StatefulApp %s: %v", sa.Name, err)
	}
}

// fakeShardManager answers DescribeShards for StatefulApp store/kv: six
// shards, replication 3, kv-1 down.
type fakeShardManager struct {
	shardmanagerv1.UnimplementedShardManagerServiceServer
}

func (fakeShardManager) DescribeShards(_ context.Context, req *shardmanagerv1.DescribeShardsRequest) (*shardmanagerv1.DescribeShardsResponse, error) {
	if req.GetNamespace() != "store" || req.GetApp() != "kv" {
		return nil, status.Errorf(codes.NotFound, "no app %s/%s", req.GetNamespace(), req.GetApp())
	}
	leader, follower := shardmanagerv1.ReplicaRole_REPLICA_ROLE_LEADER, shardmanagerv1.ReplicaRole_REPLICA_ROLE_FOLLOWER
	replicas := func(inSync bool, leaders ...int32) []*shardmanagerv1.Replica {
		var out []*shardmanagerv1.Replica
		for shard := range int32(6) {
			role := follower
			if slices.Contains(leaders, shard) {
				role = leader
			}
			out = append(out, &shardmanagerv1.Replica{Shard: shard, Role: role, InSync: inSync})
		}
		return out
	}
	return &shardmanagerv1.DescribeShardsResponse{
		Shards: 6, ReplicationFactor: 3, MinInSync: 2,
		Pods: []*shardmanagerv1.PodShards{
			{Pod: "kv-0", Available: true, Replicas: replicas(true, 0, 1, 3, 4)},
			{Pod: "kv-1", Available: false, Replicas: replicas(false)},
			{Pod: "kv-2", Available: true, Replicas: replicas(true, 2, 5)},
		},
		Operations: []*shardmanagerv1.Operation{{
			OperationId: "store/kv/kv-1/EVICT/1", Namespace: "store", App: "kv", Pod: "kv-1", Node: "dc1-r002-u02",
			Kind: shardmanagerv1.OperationKind_OPERATION_KIND_EVICT, Reason: "planned-upgrade of machine dc1-r002-u02",
		}},
	}, nil
}

// startShardManager serves fakeShardManager over TLS on a loopback port
// and returns its address and the CA of its certificate.
func startShardManager(t *testing.T) (string, []byte) {
	t.Helper()
	creds, ca := testutil.ServerTLS(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(creds)
	shardmanagerv1.RegisterShardManagerServiceServer(srv, fakeShardManager{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), ca
}

// stampConditions sets the transition times the API requires.
func stampConditions(conds []metav1.Condition) {
	for i := range conds {
		conds[i].LastTransitionTime = metav1.Now()
	}
}

// writeKubeconfig writes a kubeconfig of a context per entry of contexts,
// each the current context of the kubeconfig given, current the current
// one, and returns its path.
func writeKubeconfig(t *testing.T, current string, contexts map[string][]byte) string {
	t.Helper()
	out := clientcmdapi.NewConfig()
	for name, raw := range contexts {
		in, err := clientcmd.Load(raw)
		if err != nil {
			t.Fatalf("parsing the kubeconfig of context %s: %v", name, err)
		}
		ctx := in.Contexts[in.CurrentContext]
		if ctx == nil {
			t.Fatalf("the kubeconfig of context %s has no current context", name)
		}
		out.Clusters[name] = in.Clusters[ctx.Cluster]
		out.AuthInfos[name] = in.AuthInfos[ctx.AuthInfo]
		out.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	}
	out.CurrentContext = current
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*out, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// grantAppNamespaceReaders lets the group developers list the hub's
// AppNamespaces, as docs/kubectl-strata.md proposes.
func grantAppNamespaceReaders(t *testing.T, hub client.Client) {
	t.Helper()
	testutil.MustCreate(t, hub, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "strata-appnamespaces-view"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{appsv1alpha1.GroupVersion.Group}, Resources: []string{"appnamespaces"}, Verbs: []string{"get", "list", "watch"},
		}},
	})
	testutil.MustCreate(t, hub, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "strata-appnamespaces-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "strata-appnamespaces-view"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "developers"}},
	})
}

// startRoleAggregation installs Strata's ClusterRoles in the workload
// cluster and runs a kube-controller-manager with only its ClusterRole
// aggregation controller (envtest runs none), until Kubernetes' view role
// holds the apps' API.
func startRoleAggregation(t *testing.T, kubeconfig []byte, c client.Client) {
	t.Helper()
	for _, obj := range install.WorkloadObjects(install.Webhook{}) {
		if role, ok := obj.(*rbacv1.ClusterRole); ok {
			testutil.MustCreate(t, c, role.DeepCopy())
		}
	}
	path := filepath.Join(t.TempDir(), "kcm.kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	kcm := exec.Command(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kube-controller-manager"),
		"--kubeconfig", path, "--controllers", "clusterrole-aggregation", "--leader-elect=false", "--secure-port=0")
	kcm.Stdout, kcm.Stderr = &logs, &logs
	if err := kcm.Start(); err != nil {
		t.Fatalf("starting kube-controller-manager: %v", err)
	}
	t.Cleanup(func() {
		_ = kcm.Process.Kill()
		_ = kcm.Wait()
	})
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		view := &rbacv1.ClusterRole{}
		if err := c.Get(ctx, client.ObjectKey{Name: "view"}, view); err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		for _, r := range view.Rules {
			if slices.Contains(r.Resources, "statelessapps") {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("the view role did not aggregate strata-apps-view: %v; kube-controller-manager:\n%s", err, logs.String())
	}
}
