package appscli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cli/hubcli"
	"github.com/strata-dev/strata/internal/testutil"
)

// TestHubCommands runs the verbs that need only the hub against an API
// server serving the hub's CRDs (Clusters, AppNamespaces, StatelessApps
// declared on the hub), through a kubeconfig that holds the hub alone: no
// context of any workload cluster. The StatelessApps carry the status the
// hub's controller would write (written here, as nothing runs it).
func TestHubCommands(t *testing.T) {
	hubEnv, hubCfg := testutil.StartEnv(t)
	hubClient, err := hubcli.NewClient(hubCfg)
	if err != nil {
		t.Fatal(err)
	}
	hubKubeconfig := writeKubeconfig(t, "hub", map[string][]byte{"hub": testutil.AdminKubeconfig(t, hubEnv)})
	kubectl := func(args ...string) (string, string, error) {
		return run(NewPluginCommand(), append([]string{"--kubeconfig", hubKubeconfig}, args...)...)
	}

	// Developers may list the AppNamespaces and the Clusters, not change
	// them; shop-devs may read the StatelessApps of namespace shop on the
	// hub, not change them.
	grantAppNamespaceReaders(t, hubClient)
	grant(t, hubClient, "", "strata-clusters-view", "developers", rbacv1.PolicyRule{
		APIGroups: []string{fleetv1alpha1.GroupVersion.Group}, Resources: []string{"clusters"}, Verbs: []string{"get", "list"},
	})

	// Three workload clusters; shop is on two of them (as namespace
	// shop-prod there: its apps are declared in namespace shop of the hub,
	// the AppNamespace's name), blog on one.
	createCluster(t, hubClient, makeCluster("workload-1", "eu", 12, isTrue, fleetv1alpha1.ClusterReachableReason, ""))
	createCluster(t, hubClient, makeCluster("workload-2", "eu", 8, isTrue, fleetv1alpha1.ClusterReachableReason, ""))
	createCluster(t, hubClient, makeCluster("workload-3", "us", 4, isFalse, fleetv1alpha1.APIServerUnreachableReason, "connection refused"))
	shop := makeAppNamespace("shop", "shop").placed("workload-1", "workload-2").
		owner(appsv1alpha1.GroupSubject, "shop-devs", appsv1alpha1.EditRole).obj()
	shop.Status.Namespace = "shop-prod"
	createAppNamespace(t, hubClient, shop)
	createAppNamespace(t, hubClient, makeAppNamespace("blog", "blog").placed("workload-1").obj())

	// On the hub, namespace shop declares web, whose release of 1.1 an App
	// failure in workload-2 paused; namespace blog declares blog, at its
	// first version.
	for _, ns := range []string{"shop", "blog"} {
		testutil.MustCreate(t, hubClient, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	grant(t, hubClient, "shop", "statelessapps-view", "shop-devs", rbacv1.PolicyRule{
		APIGroups: []string{appsv1alpha1.GroupVersion.Group}, Resources: []string{"statelessapps"}, Verbs: []string{"get", "list"},
	})
	createStatelessApp(t, hubClient, makeStatelessApp("web", 8).hubApp().version("1.1", "2").
		inCluster("workload-1", 4).
		inCluster("workload-2", 4).clusterStatus(func(c *appsv1alpha1.ClusterAppStatus) {
		c.ReadyReplicas, c.Ready = 1, false
		c.Failure = &appsv1alpha1.Failure{Category: appsv1alpha1.AppFailure, Reason: "CrashLoopBackOff",
			Message: "back-off restarting failed container app", Pods: []string{"web-7d9-a"}, FailingPods: 3}
	}).
		release("1.0", "1", "Paused", 2, "App failure in workload-2: CrashLoopBackOff in 3 pods", "workload-1", "workload-2").
		condition(ready, isFalse, appsv1alpha1.ReplicasUnavailableReason, "5 of 8 replicas ready").
		condition(degraded, isTrue, string(appsv1alpha1.AppFailure), "workload-2: 3 pods crash").
		condition(appsv1alpha1.StatelessAppReleasedCondition, isFalse, appsv1alpha1.ReleasePausedReason, "wave 2 (workload-2): App failure, CrashLoopBackOff").obj())
	blog := makeStatelessApp("blog", 2).hubApp().inCluster("workload-1", 2).
		release("", "", "Released", 1, "", "workload-1").readyConditions().obj()
	blog.Namespace = "blog"
	createStatelessApp(t, hubClient, blog)

	t.Run("cluster list counts the app namespaces placed on each", func(t *testing.T) {
		out, _, err := kubectl("cluster", "list")
		if err != nil {
			t.Fatal(err)
		}
		golden(t, filepath.Join("testdata", "e2e", "cluster-list.txt"), out)
		if alone, _, err := kubectl("clusters"); err != nil || alone != out {
			t.Errorf("kubectl strata clusters = %q, %v; want what cluster list shows", alone, err)
		}
	})

	t.Run("cordon and uncordon patch the Cluster's spec", func(t *testing.T) {
		cordoned := func() bool {
			cl := &fleetv1alpha1.Cluster{}
			if err := hubClient.Get(t.Context(), client.ObjectKey{Name: "workload-2"}, cl); err != nil {
				t.Fatal(err)
			}
			return cl.Spec.Cordoned
		}
		steps := []struct {
			args         []string
			want         string
			wantCordoned bool
		}{
			{[]string{"cluster", "cordon", "workload-2"}, "cluster workload-2 cordoned: no new app namespaces are placed there, and the apps " +
				"declared on the hub move their replicas to their other clusters (kubectl strata cluster uncordon workload-2 undoes it)\n", true},
			{[]string{"cluster", "cordon", "workload-2"}, "cluster workload-2 is already cordoned (kubectl strata cluster uncordon workload-2 puts it back)\n", true},
			{[]string{"cluster", "uncordon", "workload-2"}, "cluster workload-2 uncordoned: app namespaces may be placed there again, and the apps " +
				"declared on the hub take their share back\n", false},
			{[]string{"cluster", "uncordon", "workload-2"}, "cluster workload-2 is not cordoned\n", false},
		}
		for _, s := range steps {
			out, _, err := kubectl(s.args...)
			if err != nil || out != s.want {
				t.Errorf("%s = %q, %v; want %q", strings.Join(s.args, " "), out, err, s.want)
			}
			if got := cordoned(); got != s.wantCordoned {
				t.Errorf("after %s: spec.cordoned = %t, want %t", strings.Join(s.args, " "), got, s.wantCordoned)
			}
		}
	})

	t.Run("cordon of an unknown cluster names those there are", func(t *testing.T) {
		_, _, err := kubectl("cluster", "cordon", "workload-9")
		want := `no cluster "workload-9" on the hub; its clusters are workload-1, workload-2, workload-3`
		if err == nil || err.Error() != want {
			t.Errorf("error = %v\nwant %s", err, want)
		}
	})

	t.Run("cordon is refused to who may not patch Clusters, naming them and the permission", func(t *testing.T) {
		if _, _, err := kubectl("cluster", "list", "--as", "bob", "--as-group", "developers"); err != nil {
			t.Errorf("cluster list as a developer: %v", err)
		}
		_, _, err := kubectl("cluster", "cordon", "workload-2", "--as", "bob", "--as-group", "developers")
		want := `forbidden: user "bob" may not patch Cluster workload-2 on the hub ` +
			`(cordoning a cluster is the platform team's: it needs get and patch on clusters.fleet.strata.dev)`
		if err == nil || err.Error() != want {
			t.Errorf("error = %v\nwant %s", err, want)
		}
	})

	t.Run("status of an app declared on the hub needs only the hub", func(t *testing.T) {
		out, _, err := kubectl("status", "shop")
		if err != nil {
			t.Fatalf("status: %v, want none: the workload clusters are not read", err)
		}
		golden(t, filepath.Join("testdata", "e2e", "status-hub-app.txt"), out)

		// As the caller: shop-devs may read the StatelessApps of shop on
		// the hub, and see what the admin sees.
		asAlice, _, err := kubectl("status", "shop", "--as", "alice", "--as-group", "developers", "--as-group", "shop-devs")
		if err != nil || asAlice != out {
			t.Errorf("status shop as alice of shop-devs = %v:\n%s\nwant what the admin sees:\n%s", err, asAlice, out)
		}

		out, _, err = kubectl("status", "shop", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var s AppStatus
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("parsing %s: %v", out, err)
		}
		if len(s.Namespaces) != 1 || len(s.Namespaces[0].HubApps) != 1 || len(s.Namespaces[0].HubApps[0].StatelessApp.Status.Clusters) != 2 {
			t.Fatalf("namespaces = %+v, want shop with web declared on the hub, in 2 clusters", s.Namespaces)
		}
	})

	t.Run("get apps shows each cluster of an app declared on the hub, from the hub", func(t *testing.T) {
		out, _, err := kubectl("get", "apps", "-o", "wide")
		if err != nil {
			t.Fatalf("get apps: %v, want none: the workload clusters are not read", err)
		}
		golden(t, filepath.Join("testdata", "e2e", "get-apps-hub.txt"), out)
	})

	hubApp := func(namespace, name string) *appsv1alpha1.StatelessApp {
		t.Helper()
		sa := &appsv1alpha1.StatelessApp{}
		if err := hubClient.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: name}, sa); err != nil {
			t.Fatal(err)
		}
		return sa
	}

	t.Run("release verbs are refused to who may not change the app on the hub", func(t *testing.T) {
		_, _, err := kubectl("release", "resume", "shop", "--as", "bob", "--as-group", "developers")
		want := `forbidden: user "bob" may not list StatelessApps in namespace shop of the hub (steering a release needs get, list and patch ` +
			`on statelessapps.apps.strata.dev in the app's namespace on the hub: ask the platform team)`
		if err == nil || err.Error() != want {
			t.Errorf("resume as bob: error = %v\nwant %s", err, want)
		}
		_, _, err = kubectl("release", "resume", "shop", "--as", "alice", "--as-group", "developers", "--as-group", "shop-devs")
		want = `forbidden: user "alice" may not patch StatelessApp web in namespace shop of the hub (steering a release needs patch ` +
			`on statelessapps.apps.strata.dev in the app's namespace on the hub: ask the platform team)`
		if err == nil || err.Error() != want {
			t.Errorf("resume as alice (view): error = %v\nwant %s", err, want)
		}
		if f := hubApp("shop", "web").Spec.Fleet; f.Release.ResumeVersion != "" {
			t.Errorf("spec.fleet.release.resumeVersion = %q after refusals, want it unset", f.Release.ResumeVersion)
		}
	})

	t.Run("pause and unpause", func(t *testing.T) {
		// The StatelessApp's name alone, as the hub's release messages
		// name it, finds it too.
		for _, tc := range []struct {
			verb, app string
			want      bool
		}{{"pause", "web", true}, {"unpause", "shop/web", false}} {
			if _, _, err := kubectl("release", tc.verb, tc.app); err != nil {
				t.Fatalf("release %s %s: %v", tc.verb, tc.app, err)
			}
			if got := hubApp("shop", "web").Spec.Fleet.Release.Paused; got != tc.want {
				t.Errorf("after release %s: spec.fleet.release.paused = %t, want %t", tc.verb, got, tc.want)
			}
		}
	})

	t.Run("resume sets resumeVersion to the release's version", func(t *testing.T) {
		out, _, err := kubectl("release", "resume", "shop")
		if err != nil {
			t.Fatal(err)
		}
		if want := "the release of 1.1 (config 2) to shop/web resumed: "; !strings.HasPrefix(out, want) {
			t.Errorf("release resume says %q, want it to start with %q", out, want)
		}
		if got := hubApp("shop", "web").Spec.Fleet.Release.ResumeVersion; got != "1.1" {
			t.Errorf("spec.fleet.release.resumeVersion = %q, want 1.1", got)
		}
	})

	t.Run("rollback sets the versions before the release", func(t *testing.T) {
		out, _, err := kubectl("release", "rollback", "shop/web")
		if want := "shop/web rolled back to 1.0 (config 1) from 1.1 (config 2): every cluster goes back at once, without waves\n"; err != nil || out != want {
			t.Errorf("release rollback = %q, %v; want %q", out, err, want)
		}
		sa := hubApp("shop", "web")
		if got := []string{sa.Spec.AppVersion, sa.Spec.ConfigVersion}; !cmp.Equal(got, []string{"1.0", "1"}) {
			t.Errorf("spec versions = %q, want 1.0, 1", got)
		}
	})

	t.Run("rollback without a previous version is refused, and changes nothing", func(t *testing.T) {
		before := hubApp("blog", "blog")
		_, _, err := kubectl("release", "rollback", "blog")
		want := "cannot roll back blog/blog: there is no previous version (status.release.previousAppVersion is empty: " +
			"no release has replaced a version yet); set spec.appVersion to the version wanted instead"
		if err == nil || err.Error() != want {
			t.Errorf("error = %v\nwant %s", err, want)
		}
		if after := hubApp("blog", "blog"); after.ResourceVersion != before.ResourceVersion {
			t.Errorf("StatelessApp blog/blog changed: resourceVersion %s -> %s", before.ResourceVersion, after.ResourceVersion)
		}
	})

	t.Run("release of an app with nothing declared on the hub says so", func(t *testing.T) {
		createAppNamespace(t, hubClient, makeAppNamespace("news", "news").placed("workload-1").obj())
		_, _, err := kubectl("release", "pause", "news")
		want := "app news has no StatelessApp declared on the hub (in namespace news there): releases in waves are of apps declared on the hub; " +
			"a StatelessApp in a workload cluster is changed there"
		if err == nil || err.Error() != want {
			t.Errorf("error = %v\nwant %s", err, want)
		}
	})
}

// createCluster creates a Cluster, then writes its status.
func createCluster(t *testing.T, c client.Client, cl *fleetv1alpha1.Cluster) {
	t.Helper()
	status := *cl.Status.DeepCopy()
	testutil.MustCreate(t, c, cl)
	cl.Status = status
	stampConditions(cl.Status.Conditions)
	if err := c.Status().Update(t.Context(), cl); err != nil {
		t.Fatalf("writing the status of Cluster %s: %v", cl.Name, err)
	}
}

// grant binds group to a role of rule: a ClusterRole and binding when
// namespace is "", else a Role and RoleBinding in namespace.
func grant(t *testing.T, c client.Client, namespace, name, group string, rule rbacv1.PolicyRule) {
	t.Helper()
	subjects := []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: group}}
	meta := metav1.ObjectMeta{Namespace: namespace, Name: name}
	if namespace == "" {
		testutil.MustCreate(t, c, &rbacv1.ClusterRole{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{rule}})
		testutil.MustCreate(t, c, &rbacv1.ClusterRoleBinding{ObjectMeta: meta, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}})
		return
	}
	testutil.MustCreate(t, c, &rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{rule}})
	testutil.MustCreate(t, c, &rbacv1.RoleBinding{ObjectMeta: meta, Subjects: subjects,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}})
}
