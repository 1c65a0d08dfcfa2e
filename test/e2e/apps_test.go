package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
)

// shopNamespace is an app namespace with two owners: alice may only look,
// the shop-devs group may change things.
const shopNamespace = `
apiVersion: apps.strata.dev/v1alpha1
kind: AppNamespace
metadata: {name: shop}
spec:
  app: shop
  tenant: stateless
  nodeProfile: general
  quota: {cpu: "900", memory: 2Ti}
  owners:
  - {kind: User, name: alice, role: view}
  - {kind: Group, name: shop-devs, role: edit}
`

// webApp is the ten-line StatelessApp.
const webApp = `
apiVersion: apps.strata.dev/v1alpha1
kind: StatelessApp
metadata: {name: web, namespace: shop}
spec:
  application: shop-web
  appVersion: "1.0.0"
  configVersion: "7"
  replicas: 30
  resources: {cpu: 500m, memory: 1Gi}
`

// TestApps runs the workload layer in the local datacenter with kubectl as
// the client: an AppNamespace routed with its owners' RoleBindings, a
// StatelessApp spread over zones with a canary promoted, failures told
// apart (App, Infra), every guardrail, and kubectl strata from a shell that
// has only the hub's kubeconfig (with its contexts of the workload
// clusters), as the admin and, through --as, as an owner and a stranger;
// plain Jobs on the same Nodes (kwok's run times, gang scheduling), Kueue,
// which it runs (--jobs), by hand (testKueue), and the jobs platform
// through the hub (testJobs).
func TestApps(t *testing.T) {
	t.Parallel()
	waitForSlot(t)
	bin := binDir(t)
	home := filepath.Join(t.TempDir(), "home")
	startUp(t, bin, home, "--jobs")
	hub := localdc.KubeconfigPath(home, localdc.HubName)
	kubectl := func(kubeconfig string, args ...string) string {
		t.Helper()
		return run(t, bin, "kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	}
	kubectlErr := func(kubeconfig string, args ...string) (string, error) {
		return runErr(bin, "kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	}
	hc := appsClient(t, hub)

	// Onboarding: the namespace, its labels, RoleBindings and quota.
	runKubectlApply(t, bin, hub, shopNamespace)
	ans := &appsv1alpha1.AppNamespace{}
	poll(t, 2*time.Minute, "AppNamespace shop Ready", func(ctx context.Context) (bool, string) {
		if err := hc.Get(ctx, client.ObjectKey{Name: "shop"}, ans); err != nil {
			return false, err.Error()
		}
		return meta.IsStatusConditionTrue(ans.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition), conditionsOf(ans.Status.Conditions)
	})
	if ans.Status.Namespace != "shop" || !strings.HasPrefix(ans.Status.Cluster, "workload-") {
		t.Fatalf("AppNamespace status: cluster %q namespace %q", ans.Status.Cluster, ans.Status.Namespace)
	}
	wl := localdc.KubeconfigPath(home, ans.Status.Cluster)
	wc := appsClient(t, wl)
	ns := &corev1.Namespace{}
	if err := wc.Get(t.Context(), client.ObjectKey{Name: "shop"}, ns); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{appsv1alpha1.AppLabel: "shop", appsv1alpha1.TenantLabel: "stateless", fleetv1alpha1.NodeProfileLabel: "general"} {
		if ns.Labels[k] != v {
			t.Errorf("namespace label %s = %q, want %q (labels %v)", k, ns.Labels[k], v, ns.Labels)
		}
	}
	t.Log(kubectl(wl, "get", "rolebindings,resourcequota", "-n", "shop"))

	t.Run("owners get their role and no more", func(t *testing.T) {
		if out, _ := kubectlErr(wl, "auth", "can-i", "create", "statelessapps.apps.strata.dev", "-n", "shop", "--as", "alice"); strings.TrimSpace(out) != "no" {
			t.Errorf("alice (view) may create StatelessApps: %s", out)
		}
		if out, _ := kubectlErr(wl, "auth", "can-i", "list", "statelessapps.apps.strata.dev", "-n", "shop", "--as", "alice"); strings.TrimSpace(out) != "yes" {
			t.Errorf("alice (view) may not list StatelessApps: %s", out)
		}
		out, err := kubectlErr(wl, "create", "configmap", "x", "-n", "shop", "--as", "alice")
		if err == nil || !strings.Contains(out, "forbidden") {
			t.Errorf("alice (view) created a ConfigMap: err=%v\n%s", err, out)
		}
		if out, _ := kubectlErr(wl, "auth", "can-i", "create", "statelessapps.apps.strata.dev", "-n", "shop", "--as", "bob", "--as-group", "shop-devs"); strings.TrimSpace(out) != "yes" {
			t.Errorf("shop-devs (edit) may not create StatelessApps: %s", out)
		}
	})

	// The ten-line app, applied by an owner with edit.
	applyAs(t, bin, wl, webApp, "bob", "shop-devs")
	waitApp(t, wc, "web", func(a *appsv1alpha1.StatelessApp) bool {
		return ready(a) && a.Status.ReadyReplicas == 30
	})
	t.Run("expanded and spread over zones", func(t *testing.T) {
		pods := appPods(t, wc, "web")
		if len(pods) != 30 {
			t.Fatalf("%d pods, want 30", len(pods))
		}
		zones := podsPerZone(t, wc, pods)
		lo, hi := 30, 0
		for _, n := range zones {
			lo, hi = min(lo, n), max(hi, n)
		}
		if len(zones) != 20 || hi-lo > 1 {
			t.Errorf("pods per maintenance zone %v: want all 20 zones, skew at most 1", zones)
		}
		p := pods[0]
		names := []string{}
		for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			names = append(names, c.Name)
		}
		for _, want := range []string{"config-init", "log-shipper", "app"} {
			if !strings.Contains(strings.Join(names, ","), want) {
				t.Errorf("pod %s has containers %v, want %s among them", p.Name, names, want)
			}
		}
		t.Log(kubectl(wl, "get", "deployments,services,pdb", "-n", "shop"))
		for _, obj := range []string{"deployment/web", "service/web", "pdb/web"} {
			kubectl(wl, "get", obj, "-n", "shop")
		}
	})

	t.Run("canary at 10% then promoted", func(t *testing.T) {
		kubectl(wl, "patch", "statelessapp", "web", "-n", "shop", "--type=merge", "-p", `{"spec":{"canary":{"appVersion":"1.1.0","percent":10}}}`)
		waitApp(t, wc, "web", func(a *appsv1alpha1.StatelessApp) bool {
			return ready(a) && a.Status.Canary != nil && a.Status.Canary.ReadyReplicas == 3 && a.Status.Stable.ReadyReplicas == 27
		})
		if n := countVersion(appPods(t, wc, "web"), "1.1.0"); n != 3 {
			t.Errorf("%d pods run 1.1.0 during the canary, want 3", n)
		}
		kubectl(wl, "patch", "statelessapp", "web", "-n", "shop", "--type=merge", "-p", `{"spec":{"appVersion":"1.1.0"}}`)
		waitApp(t, wc, "web", func(a *appsv1alpha1.StatelessApp) bool {
			pods := appPods(t, wc, "web")
			return ready(a) && a.Status.ReadyReplicas == 30 && len(pods) == 30 && countVersion(pods, "1.1.0") == 30
		})
	})

	t.Run("a crashing image is an App failure", func(t *testing.T) {
		applyAs(t, bin, wl, strings.NewReplacer("name: web", "name: broken", `"1.0.0"`, `"2.0.0-crashloop"`, "replicas: 30", "replicas: 3").Replace(webApp), "bob", "shop-devs")
		a := waitApp(t, wc, "broken", func(a *appsv1alpha1.StatelessApp) bool {
			return meta.IsStatusConditionTrue(a.Status.Conditions, appsv1alpha1.StatelessAppDegradedCondition) && a.Status.Failure != nil
		})
		if f := a.Status.Failure; f.Category != appsv1alpha1.AppFailure || f.Reason != "CrashLoopBackOff" || len(f.Pods) == 0 {
			t.Errorf("failure %+v, want category App, reason CrashLoopBackOff, with pods", f)
		}
		out := pluginRun(t, bin, hub, "status", "shop")
		for _, want := range []string{ans.Status.Cluster, "broken", "App", "CrashLoopBackOff"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl strata status shop lacks %q:\n%s", want, out)
			}
		}
	})

	// Batch pods on the same kwok Nodes: run times played, gangs bound
	// all or nothing.
	t.Run("a Job's pods run for their annotated run time, then succeed or fail", func(t *testing.T) { testJobRunTime(t, wc) })
	t.Run("a gang Job binds no pod until all 8 fit", func(t *testing.T) { testGangScheduling(t, wc) })
	t.Run("an evicted Job pod is stopped and replaced", func(t *testing.T) { testEvictedJobPod(t, wc) })

	t.Run("more replicas than capacity is an Infra failure", func(t *testing.T) {
		// 16 cpus each: one per 32-core Node, and there are 40 Nodes.
		applyAs(t, bin, wl, strings.NewReplacer("name: web", "name: bulk", "replicas: 30", "replicas: 45", "cpu: 500m", "cpu: \"16\"").Replace(webApp), "bob", "shop-devs")
		a := waitApp(t, wc, "bulk", func(a *appsv1alpha1.StatelessApp) bool {
			return meta.IsStatusConditionTrue(a.Status.Conditions, appsv1alpha1.StatelessAppDegradedCondition) && a.Status.Failure != nil &&
				a.Status.Failure.Category == appsv1alpha1.InfraFailure
		})
		if f := a.Status.Failure; f.Reason != "Unschedulable" || !strings.Contains(f.Message, "Insufficient cpu") {
			t.Errorf("failure %+v, want reason Unschedulable naming Insufficient cpu", f)
		}
		kubectl(wl, "annotate", "statelessapp", "bulk", "-n", "shop", appsv1alpha1.AllowDeleteAnnotation+"=true")
		kubectl(wl, "delete", "statelessapp", "bulk", "-n", "shop")
	})

	t.Run("guardrails", func(t *testing.T) {
		denied := func(what, want string, out string, err error) {
			t.Helper()
			if err == nil || !strings.Contains(out, want) {
				t.Errorf("%s: want a denial saying %q; err=%v\n%s", what, want, err, out)
			}
		}
		out, err := kubectlErr(wl, "delete", "statelessapp", "web", "-n", "shop")
		denied("delete StatelessApp", AllowDeleteHint, out, err)
		out, err = kubectlErr(wl, "scale", "statelessapp", "web", "-n", "shop", "--replicas", "5")
		denied("scale 30 -> 5", "strata-guardrail", out, err)
		out, err = kubectlErr(wl, "patch", "statelessapp", "web", "-n", "shop", "--type=merge", "-p", `{"spec":{"replicas":4}}`)
		denied("patch replicas 30 -> 4", "strata-guardrail", out, err)
		kubectl(wl, "scale", "statelessapp", "web", "-n", "shop", "--replicas", "20")
		out, err = kubectlErr(wl, "patch", "statelessapp", "web", "-n", "shop", "--type=merge", "-p", `{"spec":{"canary":{"appVersion":"1.2.0","percent":90}}}`)
		denied("canary 90%", "strata-guardrail", out, err)
		out, err = kubectlErr(wl, "patch", "statelessapp", "web", "-n", "shop", "--type=merge", "-p", `{"spec":{"maxSurgePercent":90}}`)
		denied("maxSurge 90%", "strata-guardrail", out, err)
		out, err = kubectlErr(wl, "delete", "namespace", "shop")
		denied("delete a namespace with workloads", "strata-guardrail", out, err)
		out, err = kubectlErr(wl, "delete", "crd", "statelessapps.apps.strata.dev")
		denied("delete a CRD with objects", "strata-guardrail", out, err)
		out, err = kubectlErr(hub, "delete", "appnamespace", "shop")
		denied("delete an AppNamespace", AllowDeleteHint, out, err)
		out, err = kubectlErr(hub, "delete", "pool", "workload-1-general")
		denied("delete a Pool", AllowDeleteHint, out, err)
		// An owner with edit cannot go around the app through what it expands into.
		out, err = kubectlErr(wl, "delete", "deployment", "web", "-n", "shop", "--as", "bob", "--as-group", "shop-devs")
		denied("an owner deletes the app's Deployment", "managed-object", out, err)
		out, err = kubectlErr(wl, "delete", "pdb", "web", "-n", "shop", "--as", "bob", "--as-group", "shop-devs")
		denied("an owner deletes the app's PodDisruptionBudget", "managed-object", out, err)

		// Nor through the Deployment's replicas, an owner or an admin: no
		// pod of the app goes while they try.
		deployment := waitDeployment(t, wc, "web", 20)
		sampler := sampleReadyIn(t, clientset(t, wl), "shop", appsv1alpha1.StatelessAppLabel+"=web")
		for _, try := range []struct {
			what string
			args []string
		}{
			{"an owner scales the app's Deployment", []string{"scale", "deployment", "web", "-n", "shop", "--replicas", "0", "--as", "bob", "--as-group", "shop-devs"}},
			{"an admin scales the app's Deployment", []string{"scale", "deployment", "web", "-n", "shop", "--replicas", "0"}},
			{"an owner patches the app's Deployment's replicas", []string{"patch", "deployment", "web", "-n", "shop", "--type=merge", "-p", `{"spec":{"replicas":0}}`, "--as", "bob", "--as-group", "shop-devs"}},
			{"an admin patches the app's Deployment's replicas", []string{"patch", "deployment", "web", "-n", "shop", "--type=merge", "-p", `{"spec":{"replicas":0}}`}},
		} {
			out, err := kubectlErr(wl, try.args...)
			denied(try.what, "strata-guardrail: managed-object: Deployment web is expanded from StatelessApp web and its replicas change only through it", out, err)
			if !strings.Contains(out, "`kubectl scale statelessapp web -n shop --replicas=N`") {
				t.Errorf("%s: the denial does not say how to scale the app:\n%s", try.what, out)
			}
		}
		if fewest := sampler.stop(); sampler.samples == 0 || fewest != 20 {
			t.Errorf("ready pods of app web while owners and admins tried to scale its Deployment: at least %d in %d samples, want 20 throughout",
				fewest, sampler.samples)
		}
		after := &appsv1.Deployment{}
		if err := wc.Get(t.Context(), client.ObjectKeyFromObject(deployment), after); err != nil {
			t.Fatal(err)
		}
		if after.Generation != deployment.Generation || ptr.Deref(after.Spec.Replicas, -1) != 20 {
			t.Errorf("Deployment web changed: generation %d -> %d, replicas %d; want neither changed", deployment.Generation, after.Generation,
				ptr.Deref(after.Spec.Replicas, -1))
		}
	})

	t.Run("bad AppNamespaces are refused with what is wrong", func(t *testing.T) {
		other := strings.Replace(shopNamespace, "name: shop}", "name: shop-bad}", 1)
		for _, c := range []struct{ manifest, want string }{
			{strings.Replace(shopNamespace, "name: shop}", "name: shop.v2}", 1), "a DNS label"},
			{strings.Replace(shopNamespace, "name: shop}", "name: kube-shop}", 1), "the system's namespaces"},
			{strings.Replace(other, "name: alice,", "name: 'system:authenticated',", 1), "cannot be owners"},
			{strings.Replace(other, `cpu: "900"`, `cpu: "-1"`, 1), "must not be negative"},
		} {
			apply := exec.Command(filepath.Join(bin, "kubectl"), "--kubeconfig", hub, "apply", "-f", "-")
			apply.Stdin = strings.NewReader(c.manifest)
			out, err := apply.CombinedOutput()
			if err == nil || !strings.Contains(string(out), c.want) {
				t.Errorf("want a refusal saying %q; err=%v\n%s\nmanifest:%s", c.want, err, out, c.manifest)
			}
		}
	})

	t.Run("kubectl strata from a shell with only the hub's kubeconfig", func(t *testing.T) {
		out := pluginRun(t, bin, hub, "status", "shop/web")
		for _, want := range []string{"shop", ans.Status.Cluster, "web", "1.1.0", "Ready"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl strata status shop/web lacks %q:\n%s", want, out)
			}
		}
		out = pluginRun(t, bin, hub, "get", "apps")
		if !strings.Contains(out, "shop") || !strings.Contains(out, ans.Status.Cluster) {
			t.Errorf("kubectl strata get apps:\n%s", out)
		}
		out = pluginRun(t, bin, hub, "logs", "shop", "--workload", "web", "--max-pods", "2")
		if !strings.Contains(out, "kwok plays this container") {
			t.Errorf("kubectl strata logs shop:\n%s", out)
		}
	})

	t.Run("kubectl strata acts as the caller: an owner with view sees the app, another user is refused", func(t *testing.T) {
		runKubectlApply(t, bin, hub, appNamespaceReaders)
		out := pluginRun(t, bin, hub, "status", "shop/web", "--as", "alice", "--as-group", "developers")
		if !strings.Contains(out, "StatelessApp web") || !strings.Contains(out, "Ready") {
			t.Errorf("kubectl strata status shop/web as alice (view):\n%s", out)
		}
		cmd := exec.Command(filepath.Join(bin, "kubectl"), "strata", "status", "shop", "--as", "mallory", "--as-group", "developers")
		cmd.Env = []string{"KUBECONFIG=" + hub, "PATH=" + bin + ":/usr/bin:/bin", "HOME=" + t.TempDir()}
		raw, err := cmd.CombinedOutput()
		want := `forbidden: user "mallory" may not list StatelessApps in namespace shop of cluster ` + ans.Status.Cluster + ` (`
		if err == nil || !strings.Contains(string(raw), want) {
			t.Errorf("kubectl strata status shop as mallory: %v, want a refusal saying %q:\n%s", err, want, raw)
		}
	})

	t.Run("deleting the AppNamespace waits for its namespace to be emptied", func(t *testing.T) {
		kubectl(hub, "annotate", "appnamespace", "shop", appsv1alpha1.AllowDeleteAnnotation+"=true")
		kubectl(hub, "delete", "appnamespace", "shop", "--wait=false")
		poll(t, time.Minute, "AppNamespace shop NamespaceNotEmpty", func(ctx context.Context) (bool, string) {
			if err := hc.Get(ctx, client.ObjectKey{Name: "shop"}, ans); err != nil {
				return false, err.Error()
			}
			c := meta.FindStatusCondition(ans.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition)
			return c != nil && c.Reason == appsv1alpha1.NamespaceNotEmptyReason, conditionsOf(ans.Status.Conditions)
		})
		for _, app := range []string{"web", "broken"} {
			kubectl(wl, "annotate", "statelessapp", app, "-n", "shop", appsv1alpha1.AllowDeleteAnnotation+"=true")
			kubectl(wl, "delete", "statelessapp", app, "-n", "shop")
		}
		poll(t, 3*time.Minute, "AppNamespace and namespace gone", func(ctx context.Context) (bool, string) {
			errA := hc.Get(ctx, client.ObjectKey{Name: "shop"}, &appsv1alpha1.AppNamespace{})
			errN := wc.Get(ctx, client.ObjectKey{Name: "shop"}, &corev1.Namespace{})
			return client.IgnoreNotFound(errA) == nil && errA != nil && client.IgnoreNotFound(errN) == nil && errN != nil,
				"appnamespace: " + errString(errA) + "; namespace: " + errString(errN) + "; " + conditionsOf(ans.Status.Conditions)
		})
	})

	// The batch system under the jobs platform, driven by hand.
	t.Run("Kueue", func(t *testing.T) { testKueue(t, bin, home) })
	t.Run("jobs platform", func(t *testing.T) { testJobs(t, bin, home) })
}

// appNamespaceReaders lets the group developers list the hub's
// AppNamespaces, which kubectl strata reads as the caller.
const appNamespaceReaders = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: appnamespaces-view}
rules: [{apiGroups: [apps.strata.dev], resources: [appnamespaces], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: appnamespaces-view-developers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: appnamespaces-view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: developers}]
`

// waitDeployment waits (3 minutes at most) until Deployment name of
// namespace shop has rolled out replicas, all ready, and returns it.
func waitDeployment(t *testing.T, c client.Client, name string, replicas int32) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	poll(t, 3*time.Minute, "Deployment "+name+" settled", func(ctx context.Context) (bool, string) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: name}, d); err != nil {
			return false, err.Error()
		}
		s := d.Status
		return s.ObservedGeneration == d.Generation && ptr.Deref(d.Spec.Replicas, -1) == replicas && s.Replicas == replicas &&
				s.UpdatedReplicas == replicas && s.ReadyReplicas == replicas,
			fmt.Sprintf("replicas %d, status %+v", ptr.Deref(d.Spec.Replicas, -1), s)
	})
	return d
}

// AllowDeleteHint is what every delete-protection denial tells the user to do.
const AllowDeleteHint = appsv1alpha1.AllowDeleteAnnotation + "=true"

// pluginRun runs `kubectl strata` as a user would from a fresh shell: the
// hub's kubeconfig in KUBECONFIG, bin/ on PATH (kubectl finds the plugin
// there), no context or namespace given.
func pluginRun(t *testing.T, bin, hubKubeconfig string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "kubectl"), append([]string{"strata"}, args...)...)
	cmd.Env = []string{"KUBECONFIG=" + hubKubeconfig, "PATH=" + bin + ":/usr/bin:/bin", "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl strata %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// applyAs applies a manifest impersonating a user in a group.
func applyAs(t *testing.T, bin, kubeconfig, manifest, user, group string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "kubectl"), "--kubeconfig", kubeconfig, "apply", "-f", "-", "--as", user, "--as-group", group)
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply as %s (%s): %v\n%s", user, group, err, out)
	}
}

func appsClient(t testing.TB, kubeconfig string) client.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 100, 200 // the onboarding benchmark applies 200 objects at once
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, appsv1alpha1.AddToScheme, fleetv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// poll waits until cond holds; its string says what was seen, for the failure.
func poll(t testing.TB, timeout time.Duration, what string, cond func(context.Context) (bool, string)) {
	t.Helper()
	var seen string
	err := wait.PollUntilContextTimeout(t.Context(), time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		ok, s := cond(ctx)
		seen = s
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v; last seen: %s", what, err, seen)
	}
}

// waitApp waits (3 minutes at most) until a StatelessApp of namespace shop
// satisfies done.
func waitApp(t *testing.T, c client.Client, name string, done func(*appsv1alpha1.StatelessApp) bool) *appsv1alpha1.StatelessApp {
	t.Helper()
	a := &appsv1alpha1.StatelessApp{}
	poll(t, 3*time.Minute, "StatelessApp "+name, func(ctx context.Context) (bool, string) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: name}, a); err != nil {
			return false, err.Error()
		}
		return a.Status.ObservedGeneration == a.Generation && done(a), summarize(a)
	})
	return a
}

func ready(a *appsv1alpha1.StatelessApp) bool {
	return meta.IsStatusConditionTrue(a.Status.Conditions, appsv1alpha1.StatelessAppReadyCondition)
}

func summarize(a *appsv1alpha1.StatelessApp) string {
	s := conditionsOf(a.Status.Conditions)
	if f := a.Status.Failure; f != nil {
		s += "; failure " + string(f.Category) + "/" + f.Reason + ": " + f.Message
	}
	return s
}

func conditionsOf(cs []metav1.Condition) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.Type+"="+string(c.Status)+"/"+c.Reason+" ("+c.Message+")")
	}
	return strings.Join(parts, "; ")
}

func errString(err error) string {
	if err == nil {
		return "exists"
	}
	return err.Error()
}

func appPods(t *testing.T, c client.Client, app string) []corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	if err := c.List(t.Context(), pods, client.InNamespace("shop"), client.MatchingLabels{appsv1alpha1.StatelessAppLabel: app}); err != nil {
		t.Fatal(err)
	}
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live
}

func countVersion(pods []corev1.Pod, version string) int {
	n := 0
	for _, p := range pods {
		if p.Labels[appsv1alpha1.AppVersionLabel] == version {
			n++
		}
	}
	return n
}

// podsPerZone counts pods by their Node's maintenance zone.
func podsPerZone(t *testing.T, c client.Client, pods []corev1.Pod) map[string]int {
	t.Helper()
	zones := map[string]int{}
	for _, p := range pods {
		n := &corev1.Node{}
		if err := c.Get(t.Context(), client.ObjectKey{Name: p.Spec.NodeName}, n); err != nil {
			t.Fatalf("node of pod %s: %v", p.Name, err)
		}
		zones[n.Labels[fleetv1alpha1.MaintenanceZoneLabel]]++
	}
	return zones
}
