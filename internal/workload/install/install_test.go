package install_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1alpha3 "k8s.io/api/scheduling/v1alpha3"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/workload/guardrails"
	"github.com/strata-dev/strata/internal/workload/install"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// startBareEnv starts an API server without any of Strata's CRDs: install
// puts them there.
func startBareEnv(t *testing.T) *rest.Config {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds the Kubernetes binaries into bin/")
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	testutil.EnableJobGangs(env)
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	return cfg
}

// clients returns one client with an empty scheme, for install (which must
// not depend on the caller's scheme), and one that reads typed objects.
func clients(t *testing.T, cfg *rest.Config) (bare, typed client.Client) {
	t.Helper()
	bare, err := client.New(cfg, client.Options{Scheme: runtime.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, appsv1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	typed, err = client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return bare, typed
}

// versions maps "Kind name" to resourceVersion for the objects of names.
func versions(t *testing.T, c client.Client, objs ...client.Object) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range objs {
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatalf("getting %T %s: %v", o, o.GetName(), err)
		}
		out[o.GetObjectKind().GroupVersionKind().Kind+" "+o.GetName()] = o.GetResourceVersion()
	}
	return out
}

func exists(t *testing.T, c client.Client, obj client.Object) bool {
	t.Helper()
	err := c.Get(t.Context(), client.ObjectKeyFromObject(obj), obj)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func crdNamed(name string) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func vap(name string) *admissionregistrationv1.ValidatingAdmissionPolicy {
	return &admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func vwc(name string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func TestInstall(t *testing.T) {
	cfg := startBareEnv(t)
	bare, c := clients(t, cfg)
	ctx := t.Context()
	wh := install.Webhook{URL: "https://127.0.0.1:9443/clusters/workload-1", CABundle: []byte("CA-1")}

	t.Run("hub", func(t *testing.T) {
		if err := install.Hub(ctx, bare, install.Webhook{URL: "https://127.0.0.1:9443/clusters/hub", CABundle: []byte("CA-H")}); err != nil {
			t.Fatalf("install.Hub: %v", err)
		}
		for _, name := range []string{"pools.fleet.strata.dev", "clusters.fleet.strata.dev", "maintenancerollouts.fleet.strata.dev", "appnamespaces.apps.strata.dev"} {
			if !exists(t, c, crdNamed(name)) {
				t.Errorf("CRD %s is missing", name)
			}
		}
		if !exists(t, c, crdNamed("statelessapps.apps.strata.dev")) {
			t.Error("the hub lacks the CRD of the StatelessApps declared there")
		}
		if exists(t, c, crdNamed("statefulapps.apps.strata.dev")) {
			t.Error("the hub got the workload CRD statefulapps")
		}
		if !exists(t, c, vap(guardrails.HubDeleteProtectionPolicy)) {
			t.Error("the hub's delete protection is missing")
		}
		hooks := vwc(guardrails.HubWebhookConfiguration)
		if !exists(t, c, hooks) || len(hooks.Webhooks) != 1 || *hooks.Webhooks[0].ClientConfig.URL != "https://127.0.0.1:9443/clusters/hub/validate-crd-delete" {
			t.Errorf("hub webhook configuration: %+v", hooks.Webhooks)
		}
	})

	t.Run("the hub refuses a queued Job that MultiKueue would not send on", func(t *testing.T) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "hub-batch", Labels: map[string]string{
			appsv1alpha1.TenantLabel: string(appsv1alpha1.BatchTenant),
		}}}
		if err := c.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
		job := func(managedBy *string) *batchv1.Job {
			return &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "train", Labels: map[string]string{kueue.QueueNameLabel: "team-a"}},
				Spec: batchv1.JobSpec{
					ManagedBy: managedBy, Parallelism: ptr.To[int32](2), Completions: ptr.To[int32](2),
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyNever,
						Containers:    []corev1.Container{{Name: "work", Image: "batch:1"}},
					}},
				},
			}
		}
		// In force a moment after it is written: poll with a dry run.
		var refusal error
		_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			refusal = c.Create(ctx, job(nil), client.DryRunAll)
			return refusal != nil, nil
		})
		want := "strata-guardrail: queued-job: Job train names the queue team-a (kueue.x-k8s.io/queue-name) of namespace hub-batch, " +
			"but the hub's Kueue did not make it MultiKueue's"
		if refusal == nil || !strings.Contains(refusal.Error(), want) {
			t.Fatalf("a queued Job without spec.managedBy: %v, want a refusal saying %q", refusal, want)
		}
		if err := c.Create(ctx, job(ptr.To("batch.kubernetes.io/job-controller")), client.DryRunAll); err == nil ||
			!strings.Contains(err.Error(), "spec.managedBy is batch.kubernetes.io/job-controller; leave it unset or set it to kueue.x-k8s.io/multikueue") {
			t.Errorf("a queued Job managed by the Job controller: %v", err)
		}
		if err := c.Create(ctx, job(ptr.To(kueue.MultiKueueControllerName)), client.DryRunAll); err != nil {
			t.Errorf("a queued Job managed by MultiKueue is refused: %v", err)
		}
	})

	t.Run("workload", func(t *testing.T) {
		if err := install.Workload(ctx, bare, wh); err != nil {
			t.Fatalf("install.Workload: %v", err)
		}
		for _, name := range []string{"statelessapps.apps.strata.dev", "appplatforms.apps.strata.dev"} {
			if !exists(t, c, crdNamed(name)) {
				t.Errorf("CRD %s is missing", name)
			}
		}
		platform := &appsv1alpha1.AppPlatform{ObjectMeta: metav1.ObjectMeta{Name: appsv1alpha1.PlatformName}}
		if !exists(t, c, platform) {
			t.Fatal("no AppPlatform default")
		}
		if diff := cmp.Diff(install.DefaultPlatform().Spec, platform.Spec); diff != "" {
			t.Errorf("AppPlatform spec (-want +got):\n%s", diff)
		}
		for _, p := range guardrails.WorkloadPolicies() {
			if !exists(t, c, vap(p.Policy.Name)) {
				t.Errorf("policy %s is missing", p.Policy.Name)
			}
		}
		hooks := vwc(guardrails.WorkloadWebhookConfiguration)
		if !exists(t, c, hooks) || len(hooks.Webhooks) != len(guardrails.WorkloadWebhooks(wh.URL, nil).Webhooks) ||
			string(hooks.Webhooks[0].ClientConfig.CABundle) != "CA-1" {
			t.Errorf("workload webhook configuration: %+v", hooks.Webhooks)
		}
		if !exists(t, c, crdNamed("statefulapps.apps.strata.dev")) {
			t.Error("CRD statefulapps.apps.strata.dev is missing")
		}
		// The hub's set, in the same API server, is left alone.
		if !exists(t, c, vap(guardrails.HubDeleteProtectionPolicy)) || !exists(t, c, vwc(guardrails.HubWebhookConfiguration)) {
			t.Error("installing the workload set removed the hub's")
		}
	})

	t.Run("a queued Job that starts all its pods at once is a gang", func(t *testing.T) {
		if !exists(t, c, &admissionregistrationv1.MutatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: install.JobGangPolicy}}) {
			t.Fatal("no binding of the gang policy")
		}
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "batch"}}); err != nil {
			t.Fatal(err)
		}
		// The API server loads the policy a moment after it is written:
		// a queued gang Job (dry run) says when it is in force.
		probe := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Namespace: "batch", Name: "probe", Labels: map[string]string{kueue.QueueNameLabel: "team-a"}},
			Spec: batchv1.JobSpec{
				Parallelism: ptr.To[int32](2), Completions: ptr.To[int32](2),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "work", Image: "batch:1"}},
				}},
			},
		}
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			j := probe.DeepCopy()
			if err := c.Create(ctx, j, client.DryRunAll); err != nil {
				return false, err
			}
			return j.Spec.Scheduling != nil, nil
		})
		if err != nil {
			p := &admissionregistrationv1.MutatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: install.JobGangPolicy}}
			exists(t, c, p)
			t.Fatalf("the gang policy is not in force: %v; the policy: %+v", err, p.Spec)
		}
		basic := &batchv1.JobSchedulingConfiguration{SchedulingPolicy: &schedulingv1alpha3.WorkloadPodGroupSchedulingPolicy{
			Basic: &schedulingv1alpha3.WorkloadPodGroupBasicSchedulingPolicy{}}}
		for name, tc := range map[string]struct {
			queued                   bool
			parallelism, completions int32
			scheduling               *batchv1.JobSchedulingConfiguration
			want                     string
		}{
			"8 pods at once":                           {queued: true, parallelism: 8, completions: 8, want: "gang"},
			"8 pods at once, not queued":               {parallelism: 8, completions: 8, want: "none"},
			"16 pods 8 at a time: the last wave waits": {queued: true, parallelism: 8, completions: 16, want: "none"},
			"one pod":                    {queued: true, parallelism: 1, completions: 1, want: "none"},
			"its own scheduling is kept": {queued: true, parallelism: 8, completions: 8, scheduling: basic, want: "basic"},
		} {
			t.Run(name, func(t *testing.T) {
				job := &batchv1.Job{
					ObjectMeta: metav1.ObjectMeta{Namespace: "batch", GenerateName: "job-"},
					Spec: batchv1.JobSpec{
						Parallelism: ptr.To(tc.parallelism), Completions: ptr.To(tc.completions), Scheduling: tc.scheduling,
						Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
							RestartPolicy: corev1.RestartPolicyNever,
							Containers:    []corev1.Container{{Name: "work", Image: "batch:1"}},
						}},
					},
				}
				if tc.queued {
					job.Labels = map[string]string{kueue.QueueNameLabel: "team-a"}
				}
				if err := c.Create(ctx, job); err != nil {
					t.Fatal(err)
				}
				got := "none"
				if s := job.Spec.Scheduling; s != nil && s.SchedulingPolicy != nil {
					switch p := s.SchedulingPolicy; {
					case p.Gang != nil:
						got = "gang"
					case p.Basic != nil:
						got = "basic"
					}
				}
				if got != tc.want {
					t.Errorf("scheduling policy %s (%+v), want %s", got, job.Spec.Scheduling, tc.want)
				}
			})
		}
	})

	t.Run("the StorageClass of local volumes", func(t *testing.T) {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local-ssd"}}
		if !exists(t, c, sc) {
			t.Fatal("no StorageClass local-ssd")
		}
		got := fmt.Sprintf("provisioner %s, reclaimPolicy %s, volumeBindingMode %s, label %s", sc.Provisioner,
			ptr.Deref(sc.ReclaimPolicy, ""), ptr.Deref(sc.VolumeBindingMode, ""), sc.Labels[install.SetLabel])
		if want := "provisioner kubernetes.io/no-provisioner, reclaimPolicy Delete, volumeBindingMode WaitForFirstConsumer, label workload"; got != want {
			t.Errorf("StorageClass local-ssd: %s, want %s", got, want)
		}
		// The StatefulApp CRD defaults its claims' class to it. StatefulApps
		// live in the namespaces of stateful AppNamespaces only.
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kv", Labels: map[string]string{
			appsv1alpha1.TenantLabel: string(appsv1alpha1.StatefulTenant), appsv1alpha1.AppNamespaceLabel: "kv",
		}}}
		if err := c.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
		app := &appsv1alpha1.StatefulApp{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "kv"},
			Spec: appsv1alpha1.StatefulAppSpec{
				Application: "kv", Version: "1.0", Replicas: 1,
				Resources:    appsv1alpha1.Resources{CPU: resource.MustParse("1"), Memory: resource.MustParse("1Gi")},
				Storage:      appsv1alpha1.Storage{Size: resource.MustParse("10Gi")},
				ShardManager: appsv1alpha1.ShardManager{Endpoint: "127.0.0.1:7443", Transport: appsv1alpha1.TransportPlaintext},
			},
		}
		if err := c.Create(ctx, app, client.DryRunAll); err != nil {
			t.Fatal(err)
		}
		if app.Spec.Storage.StorageClassName != sc.Name {
			t.Errorf("a StatefulApp's claims default to class %q, not to the installed %q", app.Spec.Storage.StorageClassName, sc.Name)
		}
	})

	t.Run("the view, edit and admin roles get the apps' API", func(t *testing.T) {
		want := map[string]map[string]string{
			install.ViewClusterRole: {
				"rbac.authorization.k8s.io/aggregate-to-view": "true", "rbac.authorization.k8s.io/aggregate-to-edit": "true",
				"rbac.authorization.k8s.io/aggregate-to-admin": "true", install.SetLabel: "workload",
			},
			install.EditClusterRole: {
				"rbac.authorization.k8s.io/aggregate-to-edit": "true", "rbac.authorization.k8s.io/aggregate-to-admin": "true",
				install.SetLabel: "workload",
			},
		}
		verbs := map[string]map[string][]string{}
		for name, labels := range want {
			role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}}
			if !exists(t, c, role) {
				t.Fatalf("ClusterRole %s is missing", name)
			}
			if diff := cmp.Diff(labels, role.Labels); diff != "" {
				t.Errorf("%s labels (-want +got):\n%s", name, diff)
			}
			verbs[name] = map[string][]string{}
			for _, r := range role.Rules {
				for _, res := range r.Resources {
					verbs[name][res] = r.Verbs
				}
			}
		}
		read := []string{"get", "list", "watch"}
		write := []string{"create", "update", "patch", "delete", "deletecollection"}
		wantVerbs := map[string]map[string][]string{
			install.ViewClusterRole: {
				"statelessapps": read, "statelessapps/scale": read, "statelessapps/status": read,
				"statefulapps": read, "statefulapps/scale": read, "statefulapps/status": read, "appplatforms": read,
			},
			install.EditClusterRole: {
				"statelessapps": write, "statelessapps/scale": {"update", "patch"},
				"statefulapps": write, "statefulapps/scale": {"update", "patch"},
			},
		}
		if diff := cmp.Diff(wantVerbs, verbs); diff != "" {
			t.Errorf("verbs (-want +got):\n%s", diff)
		}
	})

	t.Run("a second install changes nothing", func(t *testing.T) {
		objs := []client.Object{
			crdNamed("statelessapps.apps.strata.dev"), crdNamed("appplatforms.apps.strata.dev"),
			vwc(guardrails.WorkloadWebhookConfiguration),
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: install.ViewClusterRole}},
			&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local-ssd"}},
			&appsv1alpha1.AppPlatform{ObjectMeta: metav1.ObjectMeta{Name: appsv1alpha1.PlatformName}},
		}
		for _, p := range guardrails.WorkloadPolicies() {
			objs = append(objs, vap(p.Policy.Name), &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: p.Binding.Name}})
		}
		before := versions(t, c, objs...)
		if err := install.Workload(ctx, bare, wh); err != nil {
			t.Fatalf("install.Workload again: %v", err)
		}
		if diff := cmp.Diff(before, versions(t, c, objs...)); diff != "" {
			t.Errorf("resourceVersions (-before +after):\n%s", diff)
		}
	})

	t.Run("the AppPlatform is the platform team's once it exists", func(t *testing.T) {
		platform := &appsv1alpha1.AppPlatform{}
		if err := c.Get(ctx, client.ObjectKey{Name: appsv1alpha1.PlatformName}, platform); err != nil {
			t.Fatal(err)
		}
		platform.Spec.ImageRepository = "registry.example.com/apps"
		platform.Spec.Sidecars = nil
		if err := c.Update(ctx, platform); err != nil {
			t.Fatal(err)
		}
		if err := install.Workload(ctx, bare, wh); err != nil {
			t.Fatal(err)
		}
		got := &appsv1alpha1.AppPlatform{}
		if err := c.Get(ctx, client.ObjectKey{Name: appsv1alpha1.PlatformName}, got); err != nil {
			t.Fatal(err)
		}
		if got.Spec.ImageRepository != "registry.example.com/apps" || len(got.Spec.Sidecars) != 0 {
			t.Errorf("install overwrote the edited AppPlatform: %+v", got.Spec)
		}

		// Deleted on purpose, it comes back with the next install.
		got.Annotations = map[string]string{appsv1alpha1.AllowDeleteAnnotation: "true"}
		if err := c.Update(ctx, got); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, got); err != nil {
			t.Fatal(err)
		}
		if err := install.Workload(ctx, bare, wh); err != nil {
			t.Fatal(err)
		}
		if err := c.Get(ctx, client.ObjectKey{Name: appsv1alpha1.PlatformName}, got); err != nil || got.Spec.ImageRepository != install.DefaultImageRepository {
			t.Errorf("the AppPlatform was not made anew: %v, %+v", err, got.Spec)
		}
	})

	t.Run("a new CA bundle is installed; no URL removes the webhook", func(t *testing.T) {
		if err := install.Workload(ctx, bare, install.Webhook{URL: wh.URL, CABundle: []byte("CA-2")}); err != nil {
			t.Fatal(err)
		}
		hooks := vwc(guardrails.WorkloadWebhookConfiguration)
		if !exists(t, c, hooks) {
			t.Fatal("webhook configuration missing")
		}
		for _, w := range hooks.Webhooks {
			if string(w.ClientConfig.CABundle) != "CA-2" {
				t.Errorf("%s: caBundle %q, want CA-2", w.Name, w.ClientConfig.CABundle)
			}
		}
		if err := install.Workload(ctx, bare, install.Webhook{}); err != nil {
			t.Fatal(err)
		}
		if exists(t, c, vwc(guardrails.WorkloadWebhookConfiguration)) {
			t.Error("the webhook configuration is still there without a URL")
		}
	})

	t.Run("what the set no longer has is removed, nothing else", func(t *testing.T) {
		policy := func(name string, labels map[string]string) *admissionregistrationv1.ValidatingAdmissionPolicy {
			p := guardrails.WorkloadPolicies()[0].Policy.DeepCopy()
			p.ObjectMeta = metav1.ObjectMeta{Name: name, Labels: labels}
			return p
		}
		retired := policy("strata-retired", map[string]string{install.SetLabel: "workload"})
		hubs := policy("strata-hub-other", map[string]string{install.SetLabel: "hub"})
		users := policy("someone-elses", nil)
		for _, p := range []client.Object{retired, hubs, users} {
			if err := c.Create(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := install.Workload(ctx, bare, wh); err != nil {
			t.Fatal(err)
		}
		if exists(t, c, vap("strata-retired")) {
			t.Error("a policy the workload set no longer has was kept")
		}
		if !exists(t, c, vap("strata-hub-other")) || !exists(t, c, vap("someone-elses")) {
			t.Error("install removed a policy of another set or of a user")
		}
	})
}
