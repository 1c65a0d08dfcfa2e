package statelessapp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// TestExpandWhole checks every field of what a ten-line app expands to.
func TestExpandWhole(t *testing.T) {
	w := Expand(makeApp(30).obj(), makePlatform(), makeNamespace())

	owner := []metav1.OwnerReference{{APIVersion: "apps.strata.dev/v1alpha1", Kind: "StatelessApp", Name: "web", UID: "uid-web",
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	labels := map[string]string{appsv1alpha1.AppLabel: "shop-app", appsv1alpha1.StatelessAppLabel: "web"}
	env := []corev1.EnvVar{{Name: EnvApp, Value: "shop"}, {Name: EnvAppVersion, Value: "1.0"}, {Name: EnvConfigVersion, Value: "c1"}}
	res := func(cpu, mem string) corev1.ResourceRequirements {
		l := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
		return corev1.ResourceRequirements{Requests: l, Limits: l}
	}
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}},
			PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 1, SuccessThreshold: 1,
		}
	}
	trackSel := map[string]string{appsv1alpha1.StatelessAppLabel: "web", appsv1alpha1.TrackLabel: "stable"}
	spread := func(key string, when corev1.UnsatisfiableConstraintAction) corev1.TopologySpreadConstraint {
		return corev1.TopologySpreadConstraint{MaxSkew: 1, TopologyKey: key, WhenUnsatisfiable: when,
			LabelSelector: &metav1.LabelSelector{MatchLabels: trackSel}, MatchLabelKeys: []string{"pod-template-hash"},
			NodeTaintsPolicy: ptr.To(corev1.NodeInclusionPolicyHonor)}
	}
	surge, unavailable := intstr.FromString("25%"), intstr.FromInt32(0)
	wantStable := &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a", OwnerReferences: owner, Labels: map[string]string{
			appsv1alpha1.AppLabel: "shop-app", appsv1alpha1.StatelessAppLabel: "web", appsv1alpha1.TrackLabel: "stable"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](30),
			Selector: &metav1.LabelSelector{MatchLabels: trackSel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
					appsv1alpha1.AppLabel: "shop-app", appsv1alpha1.StatelessAppLabel: "web", appsv1alpha1.TrackLabel: "stable",
					appsv1alpha1.AppVersionLabel: "1.0", appsv1alpha1.ConfigVersionLabel: "c1",
				}},
				Spec: corev1.PodSpec{
					EnableServiceLinks: ptr.To(false),
					InitContainers: []corev1.Container{{Name: "config-init", Image: "registry.test/platform/config-init:1.0",
						Args: []string{"--version=$(STRATA_CONFIG_VERSION)"}, Env: env, Resources: res("50m", "64Mi")}},
					Containers: []corev1.Container{
						{
							Name: "app", Image: "registry.test/apps/shop:1.0",
							Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
							Env:            env,
							Resources:      res("500m", "256Mi"),
							ReadinessProbe: probe("/ready", 5, 3),
							LivenessProbe:  probe("/health", 10, 3),
							StartupProbe:   probe("/health", 5, 60),
						},
						{Name: "log-shipper", Image: "registry.test/platform/log-shipper:1.0", Env: env, Resources: res("50m", "64Mi")},
					},
					NodeSelector: map[string]string{fleetv1alpha1.NodeProfileLabel: "general"},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{
						spread(fleetv1alpha1.MaintenanceZoneLabel, corev1.DoNotSchedule),
						spread("kubernetes.io/hostname", corev1.ScheduleAnyway),
					},
				},
			},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}},
			ProgressDeadlineSeconds: ptr.To[int32](600),
		},
	}
	if diff := cmp.Diff(wantStable, w.Stable); diff != "" {
		t.Errorf("stable Deployment (-want +got):\n%s", diff)
	}
	if w.Canary != nil {
		t.Errorf("canary Deployment = %v, want none", w.Canary.Name)
	}

	wantService := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a", OwnerReferences: owner, Labels: labels},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{appsv1alpha1.StatelessAppLabel: "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}
	if diff := cmp.Diff(wantService, w.Service); diff != "" {
		t.Errorf("Service (-want +got):\n%s", diff)
	}
	maxUnavailable := intstr.FromString("10%")
	wantPDB := &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a", OwnerReferences: owner, Labels: labels},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &maxUnavailable,
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{appsv1alpha1.StatelessAppLabel: "web"}},
		},
	}
	if diff := cmp.Diff(wantPDB, w.PDB); diff != "" {
		t.Errorf("PodDisruptionBudget (-want +got):\n%s", diff)
	}
}

// deploymentSummary is what differs between the Deployments of apps.
type deploymentSummary struct {
	Name           string
	Replicas       int32
	AppImage       string
	Versions       [2]string // app-version, config-version labels
	Env            []corev1.EnvVar
	Containers     []string
	InitContainers []string
	MaxSurge       string
	MaxUnavailable string
	Deadline       int32
	NodeSelector   map[string]string
	AppLabel       string
	ProbePort      int32
}

func summarize(d *appsv1.Deployment) *deploymentSummary {
	if d == nil {
		return nil
	}
	pod := d.Spec.Template.Spec
	s := &deploymentSummary{
		Name: d.Name, Replicas: *d.Spec.Replicas,
		Versions:       [2]string{d.Spec.Template.Labels[appsv1alpha1.AppVersionLabel], d.Spec.Template.Labels[appsv1alpha1.ConfigVersionLabel]},
		MaxSurge:       d.Spec.Strategy.RollingUpdate.MaxSurge.String(),
		MaxUnavailable: d.Spec.Strategy.RollingUpdate.MaxUnavailable.String(),
		Deadline:       *d.Spec.ProgressDeadlineSeconds,
		NodeSelector:   pod.NodeSelector,
		AppLabel:       d.Spec.Template.Labels[appsv1alpha1.AppLabel],
	}
	for _, c := range pod.Containers {
		s.Containers = append(s.Containers, c.Name)
		if c.Name == AppContainer {
			s.AppImage, s.Env, s.ProbePort = c.Image, c.Env, c.ReadinessProbe.HTTPGet.Port.IntVal
		}
	}
	for _, c := range pod.InitContainers {
		s.InitContainers = append(s.InitContainers, c.Name)
	}
	return s
}

func TestExpand(t *testing.T) {
	env := func(app, cfg string) []corev1.EnvVar {
		return []corev1.EnvVar{{Name: EnvApp, Value: "shop"}, {Name: EnvAppVersion, Value: app}, {Name: EnvConfigVersion, Value: cfg}}
	}
	stable := func(replicas int32) *deploymentSummary {
		return &deploymentSummary{
			Name: "web", Replicas: replicas, AppImage: "registry.test/apps/shop:1.0", Versions: [2]string{"1.0", "c1"},
			Env: env("1.0", "c1"), Containers: []string{"app", "log-shipper"}, InitContainers: []string{"config-init"},
			MaxSurge: "25%", MaxUnavailable: "0", Deadline: 600, NodeSelector: map[string]string{fleetv1alpha1.NodeProfileLabel: "general"},
			AppLabel: "shop-app", ProbePort: 8080,
		}
	}
	with := func(s *deploymentSummary, f func(*deploymentSummary)) *deploymentSummary { f(s); return s }
	canary := func(replicas int32, app, cfg string) *deploymentSummary {
		return with(stable(replicas), func(s *deploymentSummary) {
			s.Name, s.AppImage, s.Versions, s.Env = "web-canary", "registry.test/apps/shop:"+app, [2]string{app, cfg}, env(app, cfg)
		})
	}

	cases := []struct {
		name       string
		app        *appsv1alpha1.StatelessApp
		platform   func(*appsv1alpha1.AppPlatformSpec)
		ns         func(*corev1.Namespace)
		wantStable *deploymentSummary
		wantCanary *deploymentSummary
	}{
		{name: "no canary", app: makeApp(30).obj(), wantStable: stable(30)},
		{
			name: "a 10% canary runs 3 of 30 replicas", app: makeApp(30).canary("1.1", "", 10).obj(),
			wantStable: stable(27), wantCanary: canary(3, "1.1", "c1"),
		},
		{
			name: "the canary share is rounded up", app: makeApp(10).canary("1.1", "c2", 15).obj(),
			wantStable: stable(8), wantCanary: canary(2, "1.1", "c2"),
		},
		{
			name: "a canary of a single replica app takes it", app: makeApp(1).canary("1.1", "", 10).obj(),
			wantStable: stable(0), wantCanary: canary(1, "1.1", "c1"),
		},
		{
			name: "a canary never takes every replica of two or more", app: makeApp(3).canary("1.1", "", 90).obj(),
			wantStable: stable(1), wantCanary: canary(2, "1.1", "c1"),
		},
		{
			name: "a canary of another config version only", app: makeApp(20).canary("1.0", "c2", 50).obj(),
			wantStable: stable(10), wantCanary: canary(10, "1.0", "c2"),
		},
		{
			name: "a promoted canary: stable runs its version on every replica", app: makeApp(30).version("1.1", "c1").canary("1.1", "", 10).obj(),
			wantStable: with(stable(30), func(s *deploymentSummary) {
				s.AppImage, s.Versions, s.Env = "registry.test/apps/shop:1.1", [2]string{"1.1", "c1"}, env("1.1", "c1")
			}),
		},
		{
			name: "no surge: a rollout replaces pods as far as the disruption budget goes", app: makeApp(30).surge(0).obj(),
			wantStable: with(stable(30), func(s *deploymentSummary) { s.MaxSurge, s.MaxUnavailable = "0%", "10%" }),
		},
		{
			name: "a 50% surge", app: makeApp(30).surge(50).obj(),
			wantStable: with(stable(30), func(s *deploymentSummary) { s.MaxSurge = "50%" }),
		},
		{
			name: "the app's port and deadline", app: func() *appsv1alpha1.StatelessApp {
				a := makeApp(3).obj()
				a.Spec.Port, a.Spec.ProgressDeadlineSeconds = 9000, 120
				return a
			}(),
			wantStable: with(stable(3), func(s *deploymentSummary) { s.ProbePort, s.Deadline = 9000, 120 }),
		},
		{
			name: "unset port and deadline take the API's defaults", app: func() *appsv1alpha1.StatelessApp {
				a := makeApp(3).obj()
				a.Spec.Port, a.Spec.ProgressDeadlineSeconds = 0, 0
				return a
			}(),
			wantStable: stable(3),
		},
		{
			name: "a platform without infra containers", app: makeApp(3).obj(),
			platform: func(p *appsv1alpha1.AppPlatformSpec) {
				p.InitContainers, p.Sidecars, p.ImageRepository = nil, nil, "other.test/x"
			},
			wantStable: with(stable(3), func(s *deploymentSummary) {
				s.Containers, s.InitContainers, s.AppImage = []string{"app"}, nil, "other.test/x/shop:1.0"
			}),
		},
		{
			name: "a namespace without labels: no node profile, the application names the app", app: makeApp(3).obj(),
			ns: func(ns *corev1.Namespace) { ns.Labels = nil },
			wantStable: with(stable(3), func(s *deploymentSummary) {
				s.NodeSelector, s.AppLabel = nil, "shop"
			}),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			platform, ns := makePlatform(), makeNamespace()
			if tc.platform != nil {
				tc.platform(platform)
			}
			if tc.ns != nil {
				tc.ns(ns)
			}
			w := Expand(tc.app, platform, ns)
			if diff := cmp.Diff(tc.wantStable, summarize(w.Stable)); diff != "" {
				t.Errorf("stable (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCanary, summarize(w.Canary)); diff != "" {
				t.Errorf("canary (-want +got):\n%s", diff)
			}
			if w.Canary != nil {
				// Both tracks are one Service and one disruption budget;
				// each spreads on its own.
				sel := w.Canary.Spec.Selector.MatchLabels
				if sel[appsv1alpha1.TrackLabel] != "canary" || w.Canary.Spec.Template.Spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels[appsv1alpha1.TrackLabel] != "canary" {
					t.Errorf("canary selects %v, spreads over %v: want the canary track", sel, w.Canary.Spec.Template.Spec.TopologySpreadConstraints[0].LabelSelector)
				}
			}
			if diff := cmp.Diff(map[string]string{appsv1alpha1.StatelessAppLabel: "web"}, w.Service.Spec.Selector); diff != "" {
				t.Errorf("Service selector (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTracks(t *testing.T) {
	cases := []struct {
		name       string
		spec       appsv1alpha1.StatelessAppSpec
		wantStable Track
		wantCanary *Track
	}{
		{
			name:       "no canary",
			spec:       makeApp(5).Spec,
			wantStable: Track{Name: "stable", AppVersion: "1.0", ConfigVersion: "c1", Replicas: 5},
		},
		{
			name:       "no replicas, a canary of none",
			spec:       makeApp(0).canary("2", "", 10).Spec,
			wantStable: Track{Name: "stable", AppVersion: "1.0", ConfigVersion: "c1"},
			wantCanary: &Track{Name: "canary", AppVersion: "2", ConfigVersion: "c1"},
		},
		{
			name:       "a 100% canary keeps one stable pod",
			spec:       makeApp(7).canary("2", "c9", 100).Spec,
			wantStable: Track{Name: "stable", AppVersion: "1.0", ConfigVersion: "c1", Replicas: 1},
			wantCanary: &Track{Name: "canary", AppVersion: "2", ConfigVersion: "c9", Replicas: 6},
		},
		{
			name:       "1,000 replicas, 1%",
			spec:       makeApp(1000).canary("2", "", 1).Spec,
			wantStable: Track{Name: "stable", AppVersion: "1.0", ConfigVersion: "c1", Replicas: 990},
			wantCanary: &Track{Name: "canary", AppVersion: "2", ConfigVersion: "c1", Replicas: 10},
		},
		{
			name:       "promoted with the config version spelled out",
			spec:       makeApp(4).version("2", "c1").canary("2", "c1", 50).Spec,
			wantStable: Track{Name: "stable", AppVersion: "2", ConfigVersion: "c1", Replicas: 4},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stable, canary := Tracks(&tc.spec)
			if diff := cmp.Diff(tc.wantStable, stable); diff != "" {
				t.Errorf("stable (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCanary, canary); diff != "" {
				t.Errorf("canary (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRetireCanary(t *testing.T) {
	promoted := makeApp(10).version("1.1", "c1").canary("1.1", "", 10).obj()
	calledOff := makeApp(10).obj()
	cases := []struct {
		name   string
		app    *appsv1alpha1.StatelessApp
		canary *appsv1.Deployment
		stable *appsv1.Deployment
		want   bool
	}{
		{
			name:   "promoted, the stable track still rolls out: the canary serves on",
			app:    promoted,
			canary: makeDeployment("web-canary", "1.1", "c1", 1).rolledOut().obj(),
			stable: makeDeployment("web", "1.1", "c1", 10).counts(12, 4, 8, 8).obj(),
			want:   false,
		},
		{
			name:   "promoted, the stable Deployment not seen by its controller yet",
			app:    promoted,
			canary: makeDeployment("web-canary", "1.1", "c1", 1).rolledOut().obj(),
			stable: makeDeployment("web", "1.1", "c1", 10).rolledOut().unobserved().obj(),
			want:   false,
		},
		{
			name:   "promoted and the stable track rolled out: the canary goes",
			app:    promoted,
			canary: makeDeployment("web-canary", "1.1", "c1", 1).rolledOut().obj(),
			stable: makeDeployment("web", "1.1", "c1", 10).rolledOut().obj(),
			want:   true,
		},
		{
			name:   "the canary called off: it goes at once",
			app:    calledOff,
			canary: makeDeployment("web-canary", "1.1", "c1", 1).rolledOut().obj(),
			stable: makeDeployment("web", "1.0", "c1", 10).counts(9, 9, 9, 9).obj(),
			want:   true,
		},
		{
			name:   "promoted with another config than the canary ran: it goes at once",
			app:    makeApp(10).version("1.1", "c2").canary("1.1", "c2", 10).obj(),
			canary: makeDeployment("web-canary", "1.1", "c1", 1).rolledOut().obj(),
			stable: makeDeployment("web", "1.1", "c2", 10).counts(1, 1, 0, 0).obj(),
			want:   true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := retireCanary(tc.canary, tc.stable, &tc.app.Spec); got != tc.want {
				t.Errorf("retireCanary = %v, want %v", got, tc.want)
			}
		})
	}
}
