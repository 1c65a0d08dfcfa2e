package statelessapp_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/workload/statelessapp"
)

const ns = "team-a"

// TestStatelessAppController runs the controller against a real API
// server. Nothing else runs there: the test plays the Deployment
// controller (it writes the Deployments' status) and the kubelets (it
// creates pods and writes their status).
func TestStatelessAppController(t *testing.T) {
	_, cfg := testutil.StartEnv(t)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, appsv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
		appsv1alpha1.AppLabel: "shop-app", fleetv1alpha1.NodeProfileLabel: "general",
	}}})
	for i := 1; i <= 3; i++ {
		node := testutil.MakeNode(fmt.Sprintf("n%d", i), "general-pool", fmt.Sprint(i)).Obj()
		status := node.Status
		testutil.MustCreate(t, c, node)
		node.Status = status
		if err := c.Status().Update(t.Context(), node); err != nil {
			t.Fatal(err)
		}
	}
	testutil.MustCreate(t, c, platform())
	startController(t, cfg, scheme)

	t.Run("an app expands into its Deployment, Service and PodDisruptionBudget", func(t *testing.T) {
		testutil.MustCreate(t, c, &appsv1alpha1.StatelessApp{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: appsv1alpha1.StatelessAppSpec{
				Application: "shop", AppVersion: "1.0", ConfigVersion: "c1", Replicas: 10,
				Resources: appsv1alpha1.Resources{CPU: resource.MustParse("500m"), Memory: resource.MustParse("256Mi")},
			},
		})
		d := waitDeployment(t, c, "web", func(d *appsv1.Deployment) bool { return true })
		pod := d.Spec.Template.Spec
		if names := containerNames(pod.InitContainers); !slices.Equal(names, []string{"config-init"}) {
			t.Errorf("init containers %v, want the platform's config-init", names)
		}
		if names := containerNames(pod.Containers); !slices.Equal(names, []string{"app", "log-shipper"}) {
			t.Errorf("containers %v, want app and the platform's log-shipper", names)
		}
		if img := pod.Containers[0].Image; img != "registry.test/apps/shop:1.0" {
			t.Errorf("app image %s", img)
		}
		if pod.NodeSelector[fleetv1alpha1.NodeProfileLabel] != "general" || d.Spec.Template.Labels[appsv1alpha1.AppLabel] != "shop-app" {
			t.Errorf("node selector %v, labels %v: want the namespace's profile and app", pod.NodeSelector, d.Spec.Template.Labels)
		}
		if *d.Spec.Replicas != 10 || d.Spec.ProgressDeadlineSeconds == nil || *d.Spec.ProgressDeadlineSeconds != 600 {
			t.Errorf("replicas %d, deadline %v: want 10 and the API's default 600", *d.Spec.Replicas, d.Spec.ProgressDeadlineSeconds)
		}
		app := getApp(t, c)
		if !metav1.IsControlledBy(d, app) || !appliedBy(d, string(statelessapp.FieldOwner)) {
			t.Errorf("deployment owners %v, managers %v: want the app, applied by %s", d.OwnerReferences, d.ManagedFields, statelessapp.FieldOwner)
		}
		svc := &corev1.Service{}
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web"}, svc); err != nil || svc.Spec.Ports[0].TargetPort.IntVal != 8080 {
			t.Errorf("service: %v %+v, want port 80 to 8080", err, svc.Spec.Ports)
		}
		pdb := &policyv1.PodDisruptionBudget{}
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web"}, pdb); err != nil || pdb.Spec.MaxUnavailable.String() != "10%" {
			t.Errorf("pdb: %v %+v, want maxUnavailable 10%%", err, pdb.Spec)
		}
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web-canary"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
			t.Errorf("canary Deployment: %v, want none", err)
		}
		waitApp(t, c, "Ready False ReplicasUnavailable", func(a *appsv1alpha1.StatelessApp) bool {
			return hasCondition(a, appsv1alpha1.StatelessAppReadyCondition, metav1.ConditionFalse, appsv1alpha1.ReplicasUnavailableReason) &&
				a.Status.Selector == appsv1alpha1.StatelessAppLabel+"=web"
		})
	})

	t.Run("the app is Ready once its Deployment rolled out", func(t *testing.T) {
		rollOut(t, c, "web")
		app := waitApp(t, c, "Ready", func(a *appsv1alpha1.StatelessApp) bool {
			return hasCondition(a, appsv1alpha1.StatelessAppReadyCondition, metav1.ConditionTrue, appsv1alpha1.AvailableReason) &&
				hasCondition(a, appsv1alpha1.StatelessAppProgressingCondition, metav1.ConditionFalse, appsv1alpha1.RolledOutReason)
		})
		if app.Status.Replicas != 10 || app.Status.ReadyReplicas != 10 || app.Status.ObservedGeneration != app.Generation {
			t.Errorf("status %+v, want 10 ready replicas of generation %d", app.Status, app.Generation)
		}
	})

	t.Run("scaling the app through its scale subresource scales the Deployment", func(t *testing.T) {
		scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 20}}
		if err := c.SubResource("scale").Update(t.Context(), getApp(t, c), client.WithSubResourceBody(scale)); err != nil {
			t.Fatal(err)
		}
		waitDeployment(t, c, "web", func(d *appsv1.Deployment) bool { return *d.Spec.Replicas == 20 })
		waitApp(t, c, "rolling out", func(a *appsv1alpha1.StatelessApp) bool {
			return hasCondition(a, appsv1alpha1.StatelessAppProgressingCondition, metav1.ConditionTrue, appsv1alpha1.RollingOutReason)
		})
		rollOut(t, c, "web")
		waitApp(t, c, "Ready", func(a *appsv1alpha1.StatelessApp) bool {
			return hasCondition(a, appsv1alpha1.StatelessAppReadyCondition, metav1.ConditionTrue, appsv1alpha1.AvailableReason) && a.Status.Replicas == 20
		})
	})

	t.Run("a 10% canary runs the new version on 3 of 30 replicas", func(t *testing.T) {
		updateApp(t, c, func(a *appsv1alpha1.StatelessApp) {
			a.Spec.Replicas = 30
			a.Spec.Canary = &appsv1alpha1.Canary{AppVersion: "1.1", Percent: 10}
		})
		waitDeployment(t, c, "web", func(d *appsv1.Deployment) bool { return *d.Spec.Replicas == 27 })
		canary := waitDeployment(t, c, "web-canary", func(d *appsv1.Deployment) bool { return *d.Spec.Replicas == 3 })
		if img := canary.Spec.Template.Spec.Containers[0].Image; img != "registry.test/apps/shop:1.1" {
			t.Errorf("canary image %s, want version 1.1", img)
		}
		rollOut(t, c, "web")
		rollOut(t, c, "web-canary")
		app := waitApp(t, c, "Ready with a canary", func(a *appsv1alpha1.StatelessApp) bool {
			return hasCondition(a, appsv1alpha1.StatelessAppReadyCondition, metav1.ConditionTrue, appsv1alpha1.AvailableReason) && a.Status.Canary != nil
		})
		if app.Status.Canary.ReadyReplicas != 3 || app.Status.Stable.ReadyReplicas != 27 || app.Status.Replicas != 30 {
			t.Errorf("status %+v, want 27 stable and 3 canary replicas ready", app.Status)
		}
	})

	t.Run("promoting the canary rolls the stable track out, then removes the canary", func(t *testing.T) {
		updateApp(t, c, func(a *appsv1alpha1.StatelessApp) { a.Spec.AppVersion = "1.1" })
		stable := waitDeployment(t, c, "web", func(d *appsv1.Deployment) bool { return *d.Spec.Replicas == 30 })
		if img := stable.Spec.Template.Spec.Containers[0].Image; img != "registry.test/apps/shop:1.1" {
			t.Errorf("stable image %s, want the promoted 1.1", img)
		}
		// The canary serves while the stable track rolls out.
		waitApp(t, c, "promoting", func(a *appsv1alpha1.StatelessApp) bool {
			return hasCondition(a, appsv1alpha1.StatelessAppProgressingCondition, metav1.ConditionTrue, appsv1alpha1.RollingOutReason)
		})
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web-canary"}, &appsv1.Deployment{}); err != nil {
			t.Errorf("canary Deployment during the promotion: %v, want it serving", err)
		}
		rollOut(t, c, "web")
		waitGone(t, c, "web-canary")
		waitApp(t, c, "Ready on 1.1", func(a *appsv1alpha1.StatelessApp) bool {
			return hasCondition(a, appsv1alpha1.StatelessAppReadyCondition, metav1.ConditionTrue, appsv1alpha1.AvailableReason) &&
				a.Status.Canary == nil && a.Status.Stable.AppVersion == "1.1"
		})
	})

	t.Run("crash-looping pods: Degraded, category App, naming them", func(t *testing.T) {
		for i := range 3 {
			createPod(t, c, fmt.Sprintf("web-crash-%d", i), "n1", corev1.PodStatus{
				Phase:      corev1.PodRunning,
				Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionFalse}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "app", RestartCount: 4, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
					Reason: "CrashLoopBackOff", Message: "back-off 1m20s restarting failed container=app",
				}}}},
			})
		}
		app := waitApp(t, c, "Degraded App", func(a *appsv1alpha1.StatelessApp) bool {
			return hasCondition(a, appsv1alpha1.StatelessAppDegradedCondition, metav1.ConditionTrue, string(appsv1alpha1.AppFailure)) &&
				a.Status.Failure.FailingPods == 3
		})
		f := app.Status.Failure
		if f == nil || f.Reason != "CrashLoopBackOff" || f.FailingPods != 3 || !slices.Equal(f.Pods, []string{"web-crash-0", "web-crash-1", "web-crash-2"}) ||
			!strings.Contains(f.Message, "back-off 1m20s") {
			t.Errorf("failure %+v, want the 3 crash-looping pods and the kubelet's message", f)
		}
		waitEvent(t, c, "CrashLoopBackOff")
	})

	t.Run("unschedulable pods: category Infra with the scheduler's message", func(t *testing.T) {
		for i := range 3 {
			if err := c.Delete(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("web-crash-%d", i)}},
				client.GracePeriodSeconds(0)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 5 {
			createPod(t, c, fmt.Sprintf("web-pending-%d", i), "", corev1.PodStatus{
				Phase: corev1.PodPending,
				Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
					Message: "0/40 nodes are available: 40 Insufficient cpu."}},
			})
		}
		app := waitApp(t, c, "Degraded Infra", func(a *appsv1alpha1.StatelessApp) bool {
			return hasCondition(a, appsv1alpha1.StatelessAppDegradedCondition, metav1.ConditionTrue, string(appsv1alpha1.InfraFailure)) &&
				a.Status.Failure.FailingPods == 5
		})
		if f := app.Status.Failure; f.Reason != "Unschedulable" || f.FailingPods != 5 || !strings.Contains(f.Message, "40 Insufficient cpu") {
			t.Errorf("failure %+v, want 5 unschedulable pods and the scheduler's message", f)
		}
		waitEvent(t, c, "Unschedulable")
	})

	t.Run("without an AppPlatform the app is not Ready: PlatformNotFound", func(t *testing.T) {
		if err := c.Delete(t.Context(), platform()); err != nil {
			t.Fatal(err)
		}
		app := waitApp(t, c, "PlatformNotFound", func(a *appsv1alpha1.StatelessApp) bool {
			return hasCondition(a, appsv1alpha1.StatelessAppReadyCondition, metav1.ConditionFalse, appsv1alpha1.PlatformNotFoundReason)
		})
		if c := meta.FindStatusCondition(app.Status.Conditions, appsv1alpha1.StatelessAppReadyCondition); !strings.Contains(c.Message, `AppPlatform "default"`) {
			t.Errorf("Ready message %q does not name the missing AppPlatform", c.Message)
		}
		waitEvent(t, c, appsv1alpha1.PlatformNotFoundReason)
	})

	t.Run("the platform back and the failing pods gone: Ready, no failure left", func(t *testing.T) {
		testutil.MustCreate(t, c, platform())
		for i := range 5 {
			if err := c.Delete(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("web-pending-%d", i)}}); err != nil {
				t.Fatal(err)
			}
		}
		waitApp(t, c, "Ready without a failure", func(a *appsv1alpha1.StatelessApp) bool {
			return hasCondition(a, appsv1alpha1.StatelessAppReadyCondition, metav1.ConditionTrue, appsv1alpha1.AvailableReason) &&
				hasCondition(a, appsv1alpha1.StatelessAppDegradedCondition, metav1.ConditionFalse, appsv1alpha1.NoFailureReason) &&
				a.Status.Failure == nil
		})
		waitEvent(t, c, "Recovered")
	})
}

func startController(t *testing.T, cfg *rest.Config, scheme *runtime.Scheme) {
	t.Helper()
	mgr := testutil.NewAppsManager(t, cfg, scheme)
	// Named after the test's cluster: -count=N runs the test N times in one process.
	r, err := statelessapp.New(statelessapp.Options{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("statelessapp-controller"),
		Cluster: fmt.Sprintf("envtest-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	testutil.RunManager(t, mgr)
}

func platform() *appsv1alpha1.AppPlatform {
	small := appsv1alpha1.Resources{CPU: resource.MustParse("50m"), Memory: resource.MustParse("64Mi")}
	return &appsv1alpha1.AppPlatform{
		ObjectMeta: metav1.ObjectMeta{Name: appsv1alpha1.PlatformName},
		Spec: appsv1alpha1.AppPlatformSpec{
			ImageRepository: "registry.test/apps",
			InitContainers: []appsv1alpha1.InfraContainer{{Name: "config-init", Image: "registry.test/platform/config-init:1.0",
				Args: []string{"--version=$(STRATA_CONFIG_VERSION)"}, Resources: small}},
			Sidecars: []appsv1alpha1.InfraContainer{{Name: "log-shipper", Image: "registry.test/platform/log-shipper:1.0", Resources: small}},
		},
	}
}

func getApp(t *testing.T, c client.Client) *appsv1alpha1.StatelessApp {
	t.Helper()
	app := &appsv1alpha1.StatelessApp{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web"}, app); err != nil {
		t.Fatal(err)
	}
	return app
}

func updateApp(t *testing.T, c client.Client, change func(*appsv1alpha1.StatelessApp)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		app := getApp(t, c)
		change(app)
		return c.Update(t.Context(), app)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitApp waits for the app's status to satisfy ok.
func waitApp(t *testing.T, c client.Client, what string, ok func(*appsv1alpha1.StatelessApp) bool) *appsv1alpha1.StatelessApp {
	t.Helper()
	app := &appsv1alpha1.StatelessApp{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, app); err != nil {
			return false, err
		}
		return ok(app), nil
	})
	if err != nil {
		t.Fatalf("app not %s: %v; status %+v", what, err, app.Status)
	}
	return app
}

func waitDeployment(t *testing.T, c client.Client, name string, ok func(*appsv1.Deployment) bool) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return ok(d), nil
	})
	if err != nil {
		t.Fatalf("deployment %s: %v; spec %+v", name, err, d.Spec)
	}
	return d
}

func waitGone(t *testing.T, c client.Client, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &appsv1.Deployment{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Fatalf("deployment %s still there: %v", name, err)
	}
}

// rollOut plays the Deployment controller: every replica of the current
// spec is updated and available.
func rollOut(t *testing.T, c client.Client, name string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := &appsv1.Deployment{}
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return err
		}
		n := *d.Spec.Replicas
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
				Reason: "NewReplicaSetAvailable", Message: "rolled out", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		}
		return c.Status().Update(t.Context(), d)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// createPod plays the Deployment controller and the kubelet: a pod of the
// app's stable track with that status, labelled as the Deployment's pods are.
func createPod(t *testing.T, c client.Client, name, node string, status corev1.PodStatus) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
			appsv1alpha1.AppLabel:          "shop-app",
			appsv1alpha1.StatelessAppLabel: "web", appsv1alpha1.TrackLabel: appsv1alpha1.StableTrack,
		}},
		Spec: corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers: []corev1.Container{{Name: "app", Image: "registry.test/apps/shop:1.1"}}},
	}
	testutil.MustCreate(t, c, pod)
	pod.Status = status
	if err := c.Status().Update(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
}

func waitEvent(t *testing.T, c client.Client, reason string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		events := &corev1.EventList{}
		if err := c.List(ctx, events, client.InNamespace(ns)); err != nil {
			return false, err
		}
		return slices.ContainsFunc(events.Items, func(e corev1.Event) bool {
			return e.InvolvedObject.Kind == "StatelessApp" && e.InvolvedObject.Name == "web" && e.Reason == reason
		}), nil
	})
	if err != nil {
		t.Errorf("no %s event about the app: %v", reason, err)
	}
}

func hasCondition(a *appsv1alpha1.StatelessApp, typ string, status metav1.ConditionStatus, reason string) bool {
	c := meta.FindStatusCondition(a.Status.Conditions, typ)
	return c != nil && c.Status == status && c.Reason == reason && c.ObservedGeneration == a.Generation
}

func containerNames(cs []corev1.Container) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func appliedBy(obj client.Object, manager string) bool {
	return slices.ContainsFunc(obj.GetManagedFields(), func(m metav1.ManagedFieldsEntry) bool {
		return m.Manager == manager && m.Operation == metav1.ManagedFieldsOperationApply
	})
}
