package guardrails_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/drain"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/workload/guardrails"
	"github.com/strata-dev/strata/internal/workload/install"
	"github.com/strata-dev/strata/internal/workload/statefulapp"
)

// guarded is an envtest API server with the hub's and a workload cluster's
// guardrails installed (both sets, in one server) and the webhook served
// from this process over TLS.
type guarded struct {
	c          client.Client
	cfg        *rest.Config
	kubeconfig string
	// stopWebhook stops serving the webhook.
	stopWebhook func()
}

func scheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, appsv1alpha1.AddToScheme, fleetv1alpha1.AddToScheme,
	} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func startGuarded(t *testing.T) *guarded {
	t.Helper()
	env, cfg := testutil.StartEnv(t)
	c, err := client.New(cfg, client.Options{Scheme: scheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	handler, err := guardrails.NewHandler(guardrails.Options{Metadata: md, Cluster: "test-1"})
	if err != nil {
		t.Fatal(err)
	}
	caBundle, certFile, keyFile, err := guardrails.Certificates(filepath.Join(t.TempDir(), "certs"), []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/clusters/test-1/", http.StripPrefix("/clusters/test-1", handler))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ServeTLS(listener, certFile, keyFile); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("webhook server: %v", err)
		}
	}()
	t.Cleanup(func() { _ = srv.Close() })

	wh := install.Webhook{URL: "https://" + listener.Addr().String() + "/clusters/test-1", CABundle: caBundle}
	if err := install.Hub(t.Context(), c, wh); err != nil {
		t.Fatalf("installing the hub: %v", err)
	}
	if err := install.Workload(t.Context(), c, wh); err != nil {
		t.Fatalf("installing the workload cluster: %v", err)
	}

	user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	g := &guarded{c: c, cfg: cfg, kubeconfig: filepath.Join(t.TempDir(), "kubeconfig"), stopWebhook: func() { _ = srv.Close() }}
	if err := os.WriteFile(g.kubeconfig, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return g
}

// waitDenied repeats a dry-run request until a guardrail denies it: the API
// server loads new policies (and their params) a moment after they are
// written.
func waitDenied(t *testing.T, what string, request func(ctx context.Context) error, contains string) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		last = request(ctx)
		return last != nil && strings.Contains(last.Error(), contains), nil
	})
	if err != nil {
		t.Fatalf("%s was never denied with %q; last answer: %v", what, contains, last)
	}
}

// wantDenied checks err is a guardrail's denial containing each part.
func wantDenied(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: allowed, want denied", what)
	}
	t.Logf("DENIAL %s: %v", what, err)
	for _, p := range append([]string{guardrails.Prefix}, parts...) {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: denial %q does not contain %q", what, err, p)
		}
	}
}

func wantAllowed(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v, want allowed", what, err)
	}
}

func makeApp(namespace, name string, replicas int32) *appsv1alpha1.StatelessApp {
	return &appsv1alpha1.StatelessApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: appsv1alpha1.StatelessAppSpec{
			Application: name, AppVersion: "1.0", Replicas: replicas,
			Resources: appsv1alpha1.Resources{CPU: resource.MustParse("100m"), Memory: resource.MustParse("128Mi")},
		},
	}
}

func makeNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

// makeAppNamespace creates the namespace of an AppNamespace of the tenant,
// labelled as the AppNamespace controller labels it.
func makeAppNamespace(t *testing.T, c client.Client, name string, tenant appsv1alpha1.TenantKind) {
	t.Helper()
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		appsv1alpha1.TenantLabel: string(tenant), appsv1alpha1.AppNamespaceLabel: name, appsv1alpha1.AppLabel: name,
	}}})
}

func annotate(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	before := obj.DeepCopyObject().(client.Object)
	obj.SetAnnotations(map[string]string{appsv1alpha1.AllowDeleteAnnotation: "true"})
	if err := c.Patch(t.Context(), obj, client.MergeFrom(before)); err != nil {
		t.Fatalf("annotating %s: %v", obj.GetName(), err)
	}
}

func setReplicas(ctx context.Context, c client.Client, app *appsv1alpha1.StatelessApp, replicas int32, opts ...client.UpdateOption) error {
	fresh := &appsv1alpha1.StatelessApp{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(app), fresh); err != nil {
		return err
	}
	fresh.Spec.Replicas = replicas
	return c.Update(ctx, fresh, opts...)
}

// scaleSubresource writes replicas through the scale subresource (of a
// StatelessApp, a Deployment ...), as kubectl scale and autoscalers do.
func scaleSubresource(ctx context.Context, c client.Client, obj client.Object, replicas int32, opts ...client.SubResourceUpdateOption) error {
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
	return c.SubResource("scale").Update(ctx, obj, append(opts, client.WithSubResourceBody(scale))...)
}

// as is a client of the API server acting as user, in groups.
func (g *guarded) as(t *testing.T, user string, groups ...string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(g.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	c, err := client.New(cfg, client.Options{Scheme: scheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// strata is a client acting as Strata's controllers do in the local
// datacenter: a service account of strata-system with the admin's rights.
func (g *guarded) strata(t *testing.T) client.Client {
	return g.as(t, guardrails.StrataControllers+"strata-apps", "system:masters")
}

func TestGuardrails(t *testing.T) {
	// A policy whose CEL does not compile or fails at run time denies
	// everything it matches (failurePolicy Fail) with the API server's own
	// message: the allowed paths below and the exact denials catch both.
	g := startGuarded(t)
	c := g.c
	ctx := t.Context()

	makeNamespace(t, c, "shop")

	t.Run("delete protection", func(t *testing.T) {
		objs := []client.Object{
			testutil.MakePool("web", "workload-1", 3).Obj(),
			testutil.MakeCluster("workload-1", "strata-system").Obj(),
			&appsv1alpha1.AppNamespace{
				ObjectMeta: metav1.ObjectMeta{Name: "shop"},
				Spec:       appsv1alpha1.AppNamespaceSpec{App: "shop", Tenant: appsv1alpha1.StatelessTenant, NodeProfile: "general"},
			},
			makeApp("shop", "cart", 3),
		}
		refs := []string{
			"`kubectl annotate pools.fleet.strata.dev web strata.dev/allow-delete=true`",
			"`kubectl annotate clusters.fleet.strata.dev workload-1 strata.dev/allow-delete=true`",
			"`kubectl annotate appnamespaces.apps.strata.dev shop strata.dev/allow-delete=true`",
			"`kubectl annotate statelessapps.apps.strata.dev cart -n shop strata.dev/allow-delete=true`",
		}
		kinds := []string{"Pool web", "Cluster workload-1", "AppNamespace shop", "StatelessApp cart"}
		for i, obj := range objs {
			obj.SetResourceVersion("")
			testutil.MustCreate(t, c, obj)
			waitDenied(t, "a dry-run delete of "+kinds[i], func(ctx context.Context) error {
				return c.Delete(ctx, obj, client.DryRunAll)
			}, guardrails.DeleteProtectionRule)
			wantDenied(t, "deleting "+kinds[i], c.Delete(ctx, obj), "delete-protection: "+kinds[i]+" is protected against deletion", refs[i])
			annotate(t, c, obj)
			wantAllowed(t, "deleting "+kinds[i]+" with the override", c.Delete(ctx, obj))
		}

		// The workload's policy: the hub's, which also covers StatelessApps,
		// may be the one that denied the StatelessApp above.
		platform := &appsv1alpha1.AppPlatform{ObjectMeta: metav1.ObjectMeta{Name: appsv1alpha1.PlatformName}}
		waitDenied(t, "a dry-run delete of the AppPlatform", func(ctx context.Context) error {
			return c.Delete(ctx, platform, client.DryRunAll)
		}, guardrails.DeleteProtectionRule)
		wantDenied(t, "deleting the AppPlatform", c.Delete(ctx, platform, client.DryRunAll), "AppPlatform default is protected")

		makeAppNamespace(t, c, "ledger", appsv1alpha1.StatefulTenant)
		kv := makeStatefulApp("ledger")
		testutil.MustCreate(t, c, kv)
		wantDenied(t, "deleting a StatefulApp", c.Delete(ctx, kv), "delete-protection: StatefulApp kv is protected against deletion",
			"`kubectl annotate statefulapps.apps.strata.dev kv -n ledger strata.dev/allow-delete=true`")
		annotate(t, c, kv)
		wantAllowed(t, "deleting a StatefulApp with the override", c.Delete(ctx, kv))
	})

	t.Run("scale-down bound", func(t *testing.T) {
		app := makeApp("shop", "web", 30)
		testutil.MustCreate(t, c, app)
		waitDenied(t, "a dry-run scale-down from 30 to 10", func(ctx context.Context) error {
			return setReplicas(ctx, c, app, 10, client.DryRunAll)
		}, guardrails.ScaleDownRule)

		wantDenied(t, "scaling 30 -> 10", setReplicas(ctx, c, app, 10),
			"scale-down: StatelessApp web may scale from 30 to no fewer than 15 now, not to 10",
			"maxScaleDownPercent", "scale down in steps", "`kubectl scale statelessapp web -n shop --replicas=15`")
		wantAllowed(t, "scaling 30 -> 15", setReplicas(ctx, c, app, 15))
		wantAllowed(t, "scaling 15 -> 40", setReplicas(ctx, c, app, 40))
		wantAllowed(t, "scaling 40 -> 20", setReplicas(ctx, c, app, 20))

		// The scale subresource: its object is a Scale, checked all the same.
		wantDenied(t, "scaling 20 -> 3 through /scale", scaleSubresource(ctx, c, app, 3),
			"may scale from 20 to no fewer than 10 now, not to 3")
		wantAllowed(t, "scaling 20 -> 10 through /scale", scaleSubresource(ctx, c, app, 10))
		got := &appsv1alpha1.StatelessApp{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(app), got); err != nil || got.Spec.Replicas != 10 {
			t.Fatalf("after scaling to 10 through /scale: replicas %d, %v", got.Spec.Replicas, err)
		}

		// kubectl scale, as a user would.
		wantDenied(t, "kubectl scale 10 -> 1", g.kubectl(ctx, "-n", "shop", "scale", "statelessapp", "web", "--replicas=1"),
			"may scale from 10 to no fewer than 5 now, not to 1")
		wantAllowed(t, "kubectl scale 10 -> 5", g.kubectl(ctx, "-n", "shop", "scale", "statelessapp", "web", "--replicas=5"))

		// At least one replica may always go.
		for _, r := range []int32{3, 2, 1, 0} {
			wantAllowed(t, fmt.Sprintf("scaling down to %d", r), scaleSubresource(ctx, c, app, r))
		}

		// The bound is the AppPlatform's.
		setPlatform(t, c, func(g *appsv1alpha1.Guardrails) { g.MaxScaleDownPercent = 10 })
		wantAllowed(t, "scaling 0 -> 50", setReplicas(ctx, c, app, 50))
		waitDenied(t, "a dry-run scale-down 50 -> 40 after the bound became 10%", func(ctx context.Context) error {
			return scaleSubresource(ctx, c, app, 40, client.DryRunAll)
		}, "no fewer than 45 now")
		wantAllowed(t, "scaling 50 -> 45", scaleSubresource(ctx, c, app, 45))
	})

	t.Run("surge and canary bounds", func(t *testing.T) {
		setPlatform(t, c, func(g *appsv1alpha1.Guardrails) { g.MaxSurgePercent, g.MaxCanaryPercent = 50, 50 })
		surging := makeApp("shop", "surging", 4)
		surging.Spec.MaxSurgePercent = 80
		waitDenied(t, "a dry-run create with maxSurgePercent 80", func(ctx context.Context) error {
			return c.Create(ctx, surging.DeepCopy(), client.DryRunAll)
		}, guardrails.MaxSurgeRule)
		wantDenied(t, "maxSurgePercent 80", c.Create(ctx, surging.DeepCopy()),
			"max-surge: StatelessApp surging asks spec.maxSurgePercent 80, above the bound of 50", "set spec.maxSurgePercent to at most 50")
		surging.Spec.MaxSurgePercent = 50
		wantAllowed(t, "maxSurgePercent 50", c.Create(ctx, surging.DeepCopy()))

		canary := makeApp("shop", "canary", 10)
		canary.Spec.Canary = &appsv1alpha1.Canary{AppVersion: "2.0", Percent: 60}
		wantDenied(t, "canary 60%", c.Create(ctx, canary.DeepCopy()),
			"max-canary: StatelessApp canary asks spec.canary.percent 60, above the bound of 50", "set spec.canary.percent to at most 50")
		canary.Spec.Canary.Percent = 50
		wantAllowed(t, "canary 50%", c.Create(ctx, canary.DeepCopy()))

		// A lowered bound does not freeze the apps above it: changes that
		// leave the value alone pass, raising it or setting a new one does not.
		setPlatform(t, c, func(g *appsv1alpha1.Guardrails) { g.MaxCanaryPercent = 20 })
		waitDenied(t, "a dry-run canary of 30% after the bound became 20%", func(ctx context.Context) error {
			fresh := &appsv1alpha1.StatelessApp{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(canary), fresh); err != nil {
				return err
			}
			fresh.Spec.Canary.Percent = 30
			return c.Update(ctx, fresh, client.DryRunAll)
		}, "above the bound of 20")
		wantAllowed(t, "scaling an app whose canary is above a lowered bound", setReplicas(ctx, c, canary, 12))
	})

	t.Run("namespace deletes", func(t *testing.T) {
		makeNamespace(t, c, "empty")
		testutil.MustCreate(t, c, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "empty", Name: "settings"}})
		wantAllowed(t, "deleting a namespace with no workloads", c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "empty"}}))

		makeNamespace(t, c, "busy")
		for i := range 3 {
			testutil.MustCreate(t, c, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: "busy", Name: fmt.Sprintf("web-%d", i)},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "web:1"}}},
			})
		}
		testutil.MustCreate(t, c, makeApp("busy", "web", 3))
		ns := &corev1.Namespace{}
		if err := c.Get(ctx, client.ObjectKey{Name: "busy"}, ns); err != nil {
			t.Fatal(err)
		}
		wantDenied(t, "deleting a namespace with workloads", c.Delete(ctx, ns),
			"namespace-not-empty: namespace busy of cluster test-1 still holds 3 pods (e.g. web-0) and 1 statelessapp (web)",
			"`kubectl annotate namespace busy strata.dev/allow-delete=true`")

		annotate(t, c, ns)
		wantAllowed(t, "deleting a namespace with workloads and the override", c.Delete(ctx, ns))
		// The namespace controller empties it then; the StatelessApp's own
		// delete protection lets it.
		wantAllowed(t, "deleting a StatelessApp of a terminating namespace", c.Delete(ctx, makeApp("busy", "web", 3)))
	})

	t.Run("CRD deletes", func(t *testing.T) {
		widgets := &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: "widgets.test.strata.dev"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "test.strata.dev",
				Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
				Scope: apiextensionsv1.NamespaceScoped,
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", XPreserveUnknownFields: ptr.To(true),
					}},
				}},
			},
		}
		testutil.MustCreate(t, c, widgets)
		widget := &unstructured.Unstructured{}
		widget.SetAPIVersion("test.strata.dev/v1")
		widget.SetKind("Widget")
		widget.SetNamespace("shop")
		widget.SetName("w1")
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			return c.Create(ctx, widget) == nil, nil
		})
		if err != nil {
			t.Fatalf("the widgets CRD was never served: %v", err)
		}
		wantDenied(t, "deleting a CRD with objects", c.Delete(ctx, widgets.DeepCopy()),
			"crd-in-use: CRD widgets.test.strata.dev of cluster test-1 still has 1 widget (shop/w1)",
			"`kubectl get widgets.test.strata.dev -A`", "`kubectl annotate crd widgets.test.strata.dev strata.dev/allow-delete=true`")
		wantDenied(t, "deleting Strata's Pool CRD with a Pool", deleteCRDWithPool(ctx, c), "crd-in-use: CRD pools.fleet.strata.dev")

		if err := c.Delete(ctx, widget); err != nil {
			t.Fatal(err)
		}
		wantAllowed(t, "deleting a CRD without objects", c.Delete(ctx, widgets.DeepCopy()))
	})

	t.Run("replicas of what a StatelessApp expands into", func(t *testing.T) { testManagedReplicas(t, g) })

	// Last: they stop the webhook.
	t.Run("evictions", func(t *testing.T) { testEvictions(t, g) })
	t.Run("scaling with the webhook down", func(t *testing.T) { testScaleWebhookDown(t, g) })
}

// makeDeployment is a Deployment with labels (on its pods too).
func makeDeployment(namespace, name string, labels map[string]string, replicas int32) *appsv1.Deployment {
	selector := map[string]string{"deployment": name}
	podLabels := map[string]string{}
	for k, v := range labels {
		podLabels[k] = v
	}
	for k, v := range selector {
		podLabels[k] = v
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
			},
		},
	}
}

// setDeploymentReplicas updates spec.replicas of the Deployment itself.
func setDeploymentReplicas(ctx context.Context, c client.Client, d *appsv1.Deployment, replicas int32) error {
	fresh := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(d), fresh); err != nil {
		return err
	}
	fresh.Spec.Replicas = ptr.To(replicas)
	return c.Update(ctx, fresh)
}

// testManagedReplicas: the replicas of what a StatelessApp expands into
// change only by Strata, through the scale subresource (the webhook) as
// through the object (the policy), for an owner with edit as for an admin.
func testManagedReplicas(t *testing.T, g *guarded) {
	c, ctx := g.c, t.Context()
	// What Kubernetes' edit role grants on them (envtest runs no
	// controller that would aggregate the edit role itself).
	testutil.MustCreate(t, c, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "edit"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"apps"}, Resources: []string{"deployments", "deployments/scale", "replicasets", "replicasets/scale"},
			Verbs: []string{"get", "list", "watch", "update", "patch", "delete"},
		}},
	})
	testutil.MustCreate(t, c, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop-devs"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "edit"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "shop-devs"}},
	})
	admin, owner, strata := c, g.as(t, "bob", "shop-devs", "system:authenticated"), g.strata(t)
	app := map[string]string{appsv1alpha1.StatelessAppLabel: "web"}
	web := makeDeployment("shop", "web", app, 20)
	plain := makeDeployment("shop", "plain", map[string]string{"app": "plain"}, 3)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-7d9f", Labels: web.Spec.Template.Labels},
		Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](20), Selector: web.Spec.Selector, Template: web.Spec.Template},
	}
	for _, obj := range []client.Object{web, plain, rs} {
		testutil.MustCreate(t, c, obj)
	}

	webhookSays := `admission webhook "scale.guardrails.strata.dev" denied the request: `
	// Every attempt below asks 20 -> 0.
	managed := func(kind, name string) string {
		return fmt.Sprintf("strata-guardrail: managed-object: %s %s is expanded from StatelessApp web and its replicas change only through it "+
			"(this asked 20 -> 0); scale the StatelessApp instead: `kubectl scale statelessapp web -n shop --replicas=N` "+
			"(N counts all of its replicas; one step removes at most the AppPlatform's maxScaleDownPercent).", kind, name)
	}
	waitDenied(t, "a dry-run scale of an app's Deployment", func(ctx context.Context) error {
		return scaleSubresource(ctx, admin, web, 0, client.DryRunAll)
	}, guardrails.ManagedObjectRule)
	waitDenied(t, "a dry-run update of an app's Deployment's replicas", func(ctx context.Context) error {
		fresh := &appsv1.Deployment{}
		if err := admin.Get(ctx, client.ObjectKeyFromObject(web), fresh); err != nil {
			return err
		}
		fresh.Spec.Replicas = ptr.To[int32](0)
		return admin.Update(ctx, fresh, client.DryRunAll)
	}, guardrails.ManagedObjectRule)

	wantDenied(t, "an admin scales an app's Deployment", scaleSubresource(ctx, admin, web, 0), webhookSays+managed("Deployment", "web"))
	wantDenied(t, "kubectl scale deployment, as an admin", g.kubectl(ctx, "-n", "shop", "scale", "deployment", "web", "--replicas=0"),
		webhookSays+managed("Deployment", "web"))
	wantDenied(t, "an owner scales an app's Deployment", scaleSubresource(ctx, owner, web, 0), webhookSays+managed("Deployment", "web"))
	wantDenied(t, "an admin scales a ReplicaSet of an app's Deployment", scaleSubresource(ctx, admin, rs, 0),
		webhookSays+managed("ReplicaSet", "web-7d9f"))
	policySays := "ValidatingAdmissionPolicy 'strata-managed-objects' with binding 'strata-managed-objects' denied request: "
	wantDenied(t, "an admin updates an app's Deployment's replicas", setDeploymentReplicas(ctx, admin, web, 0), policySays+managed("Deployment", "web"))
	wantDenied(t, "kubectl patch deployment, as an admin", g.kubectl(ctx, "-n", "shop", "patch", "deployment", "web", "--type=merge", "-p", `{"spec":{"replicas":0}}`),
		policySays+managed("Deployment", "web"))
	wantDenied(t, "an owner updates an app's Deployment's replicas", setDeploymentReplicas(ctx, owner, web, 0), policySays+managed("Deployment", "web"))
	wantDenied(t, "an owner edits a ReplicaSet of an app's Deployment", func() error {
		fresh := &appsv1.ReplicaSet{}
		if err := owner.Get(ctx, client.ObjectKeyFromObject(rs), fresh); err != nil {
			return err
		}
		fresh.Spec.Replicas = ptr.To[int32](0)
		return owner.Update(ctx, fresh)
	}(), "managed-object: ReplicaSet web-7d9f is expanded from StatelessApp web and changes only through it")

	wantAllowed(t, "an admin scales an app's Deployment to what it has", scaleSubresource(ctx, admin, web, 20))
	wantAllowed(t, "an admin scales a Deployment of no StatelessApp", scaleSubresource(ctx, admin, plain, 1))
	wantAllowed(t, "an admin annotates an app's Deployment", func() error {
		patch := client.MergeFrom(web.DeepCopy())
		web.Annotations = map[string]string{"note": "looked at"}
		return admin.Patch(ctx, web, patch)
	}())
	wantAllowed(t, "Strata scales its Deployment", scaleSubresource(ctx, strata, web, 19))
	wantAllowed(t, "Strata updates its Deployment's replicas", setDeploymentReplicas(ctx, strata, web, 21))
	got := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(web), got); err != nil || *got.Spec.Replicas != 21 {
		t.Errorf("the app's Deployment has %d replicas (%v), want 21: Strata's last change", ptr.Deref(got.Spec.Replicas, -1), err)
	}
}

// testScaleWebhookDown: the scale webhook fails closed for the app
// namespaces, and neither Kubernetes' namespaces nor Strata's own requests
// wait on it.
func testScaleWebhookDown(t *testing.T, g *guarded) {
	c, ctx := g.c, t.Context()
	g.stopWebhook()
	system := makeDeployment(metav1.NamespaceSystem, "dns", map[string]string{"app": "dns"}, 2)
	testutil.MustCreate(t, c, system)
	wantAllowed(t, "scaling a Deployment of kube-system with the webhook down", scaleSubresource(ctx, c, system, 3))
	web := makeDeployment("shop", "web", nil, 0)
	err := scaleSubresource(ctx, c, web, 5)
	if err == nil || !strings.Contains(err.Error(), `failed calling webhook "scale.guardrails.strata.dev"`) {
		t.Errorf("scaling an app's Deployment with the webhook down: %v, want refused", err)
	}
	wantAllowed(t, "Strata scales its Deployment with the webhook down", scaleSubresource(ctx, g.strata(t), web, 22))
}

// makeStatefulApp is StatefulApp kv of a namespace.
func makeStatefulApp(namespace string) *appsv1alpha1.StatefulApp {
	return &appsv1alpha1.StatefulApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "kv"},
		Spec: appsv1alpha1.StatefulAppSpec{
			Application: "kv", Version: "1.0", Replicas: 3,
			Resources:    appsv1alpha1.Resources{CPU: resource.MustParse("1"), Memory: resource.MustParse("1Gi")},
			Storage:      appsv1alpha1.Storage{Size: resource.MustParse("100Gi")},
			ShardManager: appsv1alpha1.ShardManager{Endpoint: "127.0.0.1:7443", Transport: appsv1alpha1.TransportPlaintext},
		},
	}
}

// makePod is a pod on node n1, with labels and annotations.
func makePod(namespace, name string, labels, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels, Annotations: annotations},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}
}

func evict(ctx context.Context, c client.Client, pod *corev1.Pod, opts ...client.SubResourceCreateOption) error {
	return c.SubResource("eviction").Create(ctx, pod, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name}}, opts...)
}

// testEvictions drives the eviction guardrail through the Eviction API, as
// kubectl drain and Strata's drain call it.
func testEvictions(t *testing.T, g *guarded) {
	c, ctx := g.c, t.Context()
	// store is the namespace of an AppNamespace of tenant stateful; cart
	// one of tenant stateless.
	makeAppNamespace(t, c, "store", appsv1alpha1.StatefulTenant)
	makeAppNamespace(t, c, "cart", appsv1alpha1.StatelessTenant)
	node := testutil.MakeNode("n1", "storage", "1").Obj()
	testutil.MustCreate(t, c, node)
	app := makeStatefulApp("store")
	wantAllowed(t, "creating a StatefulApp in the namespace of a stateful AppNamespace", c.Create(ctx, app))

	// kv is a pod of StatefulApp kv, which controls it.
	kv := func(name string, annotations map[string]string) *corev1.Pod {
		pod := makePod("store", name, map[string]string{appsv1alpha1.StatefulAppLabel: "kv", appsv1alpha1.AppLabel: "store"}, annotations)
		pod.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(app, appsv1alpha1.GroupVersion.WithKind("StatefulApp"))}
		return pod
	}
	// bare is labelled like a pod of StatefulApp kv, which anyone who may
	// create pods in the namespace can do, but nothing controls it.
	bare := makePod("store", "kv-9", map[string]string{appsv1alpha1.StatefulAppLabel: "kv", appsv1alpha1.AppLabel: "store"}, nil)
	opID := func(pod string) string { return "store/kv/" + pod + "/Evict/0a1b2c3d-1" }
	approved := func(pod string, deadline time.Time) map[string]string {
		return map[string]string{appsv1alpha1.StopApprovedAnnotation: opID(pod) + "@" + deadline.UTC().Format(time.RFC3339)}
	}
	// record is the operation as the StatefulApp controller records it on
	// the pod's PVC, approved until deadline.
	record := func(pod *corev1.Pod, deadline time.Time) map[string]string {
		raw, err := json.Marshal(&statefulapp.Record{ID: opID(pod.Name), Kind: statefulapp.KindEvict, Reason: "Node n1 is cordoned",
			Deadline: deadline.UTC().Truncate(time.Second), State: appsv1alpha1.OperationApproved, Since: time.Now().UTC().Truncate(time.Second),
			PodUID: pod.UID, Node: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{appsv1alpha1.OperationAnnotation: string(raw)}
	}
	claim := func(pod *corev1.Pod, annotations map[string]string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: statefulapp.ClaimName(pod.Name), Annotations: annotations,
				Labels: map[string]string{appsv1alpha1.StatefulAppLabel: "kv"}},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}
	}
	inAnHour, aMinuteAgo := time.Now().Add(time.Hour), time.Now().Add(-time.Minute)
	unapproved := kv("kv-0", nil)
	pods := []*corev1.Pod{
		unapproved,
		kv("kv-1", approved("kv-1", inAnHour)),
		kv("kv-2", approved("kv-2", aMinuteAgo)),
		makePod("store", "web-0", map[string]string{appsv1alpha1.StatelessAppLabel: "web"}, nil),
		bare,
	}
	for _, p := range pods {
		testutil.MustCreate(t, c, p)
	}
	unapprovedClaim := claim(unapproved, nil)
	testutil.MustCreate(t, c, unapprovedClaim)
	testutil.MustCreate(t, c, claim(pods[1], record(pods[1], inAnHour)))
	testutil.MustCreate(t, c, claim(pods[2], record(pods[2], aMinuteAgo)))

	waitDenied(t, "a dry-run eviction of a StatefulApp pod", func(ctx context.Context) error {
		return evict(ctx, c, unapproved, client.DryRunAll)
	}, guardrails.StatefulEvictionRule)
	err := evict(ctx, c, unapproved)
	wantDenied(t, "evicting a StatefulApp pod without approval", err,
		`admission webhook "pod-eviction.guardrails.strata.dev" denied the request: strata-guardrail: stateful-eviction: `+
			"pod kv-0 of StatefulApp kv (namespace store of cluster test-1)", "no stop of it was approved",
		"cordon its Node", "`kubectl annotate pod kv-0 -n store apps.strata.dev/stop-requested=<reason>`",
		"`kubectl strata status store/kv` shows where it waits")
	if !apierrors.IsTooManyRequests(err) {
		t.Errorf("the denial is not a 429, which drains take as blocked: %v", err)
	}

	// A drain pass evicts what may go, the bare pod labelled like kv's
	// included, and reports the rest as blocked, with the guardrail's
	// message and whose they are.
	res, err := drain.Pass(ctx, c, node, time.Now(), false)
	if err != nil {
		t.Fatalf("drain pass: %v", err)
	}
	if res.Evicted != 3 || res.Remaining != 5 || len(res.Blocked) != 2 {
		t.Fatalf("drain pass: %+v; want kv-1 (approved), web-0 and the bare kv-9 evicted, kv-0 and kv-2 blocked", res)
	}
	for i, want := range []string{"kv-0", "kv-2"} {
		b := res.Blocked[i]
		if b.Name != want || b.Owner != "StatefulApp kv" || !strings.Contains(b.Reason, "strata-guardrail: stateful-eviction: ") {
			t.Errorf("blocked[%d] = %+v, want %s of StatefulApp kv with the guardrail's message", i, b, want)
		}
	}
	if !strings.Contains(res.Blocked[1].Reason, "the approval of operation store/kv/kv-2/Evict/0a1b2c3d-1 expired at ") {
		t.Errorf("the expired approval is not named: %s", res.Blocked[1])
	}
	for _, p := range []*corev1.Pod{pods[1], bare} {
		got := &corev1.Pod{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(p), got); client.IgnoreNotFound(err) != nil || (err == nil && got.DeletionTimestamp == nil) {
			t.Errorf("pod %s was not evicted: %v", p.Name, err)
		}
	}

	// An approval written on the pod by whoever may patch it, which Strata
	// did not record on the pod's PVC, does not count.
	patch := client.MergeFrom(unapproved.DeepCopy())
	unapproved.Annotations = approved("kv-0", time.Now().Add(time.Minute))
	if err := c.Patch(ctx, unapproved, patch); err != nil {
		t.Fatal(err)
	}
	err = evict(ctx, c, unapproved)
	wantDenied(t, "evicting a StatefulApp pod with a forged approval", err,
		"the approval on the pod is not Strata's: no approved Evict operation store/kv/kv-0/Evict/0a1b2c3d-1 is recorded on PVC data-kv-0 "+
			"(it records no operation)")
	if !apierrors.IsTooManyRequests(err) {
		t.Errorf("the denial is not a 429: %v", err)
	}

	// Once Strata records the approval, the pod goes.
	deadline, _ := time.Parse(time.RFC3339, strings.TrimPrefix(unapproved.Annotations[appsv1alpha1.StopApprovedAnnotation], opID("kv-0")+"@"))
	claimPatch := client.MergeFrom(unapprovedClaim.DeepCopy())
	unapprovedClaim.Annotations = record(unapproved, deadline)
	if err := c.Patch(ctx, unapprovedClaim, claimPatch); err != nil {
		t.Fatal(err)
	}
	wantAllowed(t, "evicting a StatefulApp pod with an approval", evict(ctx, c, unapproved))

	// StatefulApps stay out of namespaces whose evictions are not checked.
	waitDenied(t, "a dry-run create of a StatefulApp in a stateless namespace", func(ctx context.Context) error {
		return c.Create(ctx, makeStatefulApp("cart"), client.DryRunAll)
	}, guardrails.StatefulNamespaceRule)
	wantDenied(t, "creating a StatefulApp in a stateless namespace", c.Create(ctx, makeStatefulApp("cart")),
		"stateful-namespace: StatefulApp kv cannot be created in namespace cart, an app namespace of tenant stateless",
		"AppNamespace of tenant stateful")
	makeNamespace(t, c, "loose")
	wantDenied(t, "creating a StatefulApp in a namespace of no AppNamespace", c.Create(ctx, makeStatefulApp("loose")),
		"stateful-namespace: StatefulApp kv cannot be created in namespace loose, which is no app namespace of tenant stateful",
		"AppNamespace of tenant stateful")

	// failurePolicy Fail, in the namespaces of stateful tenants only: with
	// the webhook down, no eviction there passes; those of every other
	// namespace do, kube-system's even when labelled as a stateful
	// tenant's, and those of namespaces that Strata did not make.
	g.stopWebhook()
	kubeSystem := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: metav1.NamespaceSystem}, kubeSystem); err != nil {
		t.Fatal(err)
	}
	patch = client.MergeFrom(kubeSystem.DeepCopy())
	kubeSystem.Labels[appsv1alpha1.TenantLabel] = string(appsv1alpha1.StatefulTenant)
	kubeSystem.Labels[appsv1alpha1.AppNamespaceLabel] = metav1.NamespaceSystem
	if err := c.Patch(ctx, kubeSystem, patch); err != nil {
		t.Fatal(err)
	}
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unmanaged",
		Labels: map[string]string{appsv1alpha1.TenantLabel: string(appsv1alpha1.StatefulTenant)}}})
	stateful := kv("kv-3", approved("kv-3", time.Now().Add(time.Hour)))
	testutil.MustCreate(t, c, stateful)
	err = evict(ctx, c, stateful)
	if err == nil || !strings.Contains(err.Error(), `failed calling webhook "pod-eviction.guardrails.strata.dev"`) {
		t.Errorf("evicting a StatefulApp pod with the webhook down: %v, want refused", err)
	}
	kvLabels := map[string]string{appsv1alpha1.StatefulAppLabel: "kv"}
	for what, pod := range map[string]*corev1.Pod{
		"a pod of a stateless tenant":                            makePod("cart", "web-1", map[string]string{appsv1alpha1.StatelessAppLabel: "web"}, nil),
		"a pod of kube-system":                                   makePod(metav1.NamespaceSystem, "dns-0", kvLabels, nil),
		"a pod of a namespace Strata does not manage":            makePod("loose", "kv-0", kvLabels, nil),
		"a pod of a namespace labelled stateful by someone else": makePod("unmanaged", "kv-0", kvLabels, nil),
	} {
		testutil.MustCreate(t, c, pod)
		wantAllowed(t, "evicting "+what+" with the webhook down", evict(ctx, c, pod))
	}
}

func deleteCRDWithPool(ctx context.Context, c client.Client) error {
	pool := testutil.MakePool("kept", "workload-1", 1).Obj()
	pool.ResourceVersion = ""
	if err := c.Create(ctx, pool); err != nil {
		return err
	}
	return c.Delete(ctx, &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "pools.fleet.strata.dev"}}, client.DryRunAll)
}

func setPlatform(t *testing.T, c client.Client, edit func(*appsv1alpha1.Guardrails)) {
	t.Helper()
	p := &appsv1alpha1.AppPlatform{}
	if err := c.Get(t.Context(), client.ObjectKey{Name: appsv1alpha1.PlatformName}, p); err != nil {
		t.Fatal(err)
	}
	edit(&p.Spec.Guardrails)
	if err := c.Update(t.Context(), p); err != nil {
		t.Fatalf("editing the AppPlatform: %v", err)
	}
}

// kubectl runs the kubectl of KUBEBUILDER_ASSETS against the API server;
// its error holds the output.
func (g *guarded) kubectl(ctx context.Context, args ...string) error {
	bin := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	out, err := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", g.kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}
