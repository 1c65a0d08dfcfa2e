package statelessapp

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// The app container, its port and the environment every container of an
// app's pods gets.
const (
	AppContainer = "app"
	portName     = "http"
	// servicePort is the port the Service serves the app on.
	servicePort = 80

	EnvApp           = "STRATA_APP"
	EnvAppVersion    = "STRATA_APP_VERSION"
	EnvConfigVersion = "STRATA_CONFIG_VERSION"

	// canarySuffix names the canary Deployment: <app>-canary.
	canarySuffix = "-canary"
	// hostnameLabel is the Node label of the hostname spread.
	hostnameLabel = "kubernetes.io/hostname"
	// podTemplateHashLabel tells the ReplicaSets of one Deployment apart:
	// each rollout's new pods spread among themselves.
	podTemplateHashLabel = "pod-template-hash"
)

// Defaults of fields the CRD defaults, for objects that did not go through
// the API server (unit tests, old objects). Only fields whose zero value is
// invalid are defaulted here.
const (
	defaultPort                    = 8080
	defaultProgressDeadlineSeconds = 600
	defaultMaxUnavailablePercent   = 10
	defaultReadinessPath           = "/ready"
	defaultLivenessPath            = "/health"
)

// Workload is what a StatelessApp expands to. Canary is nil when no canary
// runs: without spec.canary, or once it is promoted (its versions are the
// stable ones).
type Workload struct {
	Stable  *appsv1.Deployment
	Canary  *appsv1.Deployment
	Service *corev1.Service
	PDB     *policyv1.PodDisruptionBudget
}

// Track is what one Deployment of an app runs.
type Track struct {
	// Name is stable or canary.
	Name          string
	AppVersion    string
	ConfigVersion string
	Replicas      int32
}

// Tracks splits the app's replicas between its stable track and its
// canary, nil when no canary runs. The canary gets percent of the replicas
// rounded up, but never every replica of two or more; the stable track the
// rest. A canary whose versions are the
// stable ones has been promoted: the stable track runs every replica.
func Tracks(spec *appsv1alpha1.StatelessAppSpec) (Track, *Track) {
	stable := Track{Name: appsv1alpha1.StableTrack, AppVersion: spec.AppVersion, ConfigVersion: spec.ConfigVersion, Replicas: spec.Replicas}
	if Promoted(spec) || spec.Canary == nil {
		return stable, nil
	}
	c := spec.Canary
	canary := Track{Name: appsv1alpha1.CanaryTrack, AppVersion: c.AppVersion, ConfigVersion: canaryConfigVersion(spec),
		Replicas: int32((int64(spec.Replicas)*int64(c.Percent) + 99) / 100)}
	// A stable pod is always kept when there are two or more: a canary that
	// crashes must not take the whole app (a 10% canary of one replica
	// would otherwise be all of it).
	canary.Replicas = min(canary.Replicas, max(spec.Replicas-1, 1), spec.Replicas)
	stable.Replicas -= canary.Replicas
	return stable, &canary
}

// Promoted says whether the app's canary runs the stable versions: it has
// been promoted, and no canary Deployment is needed any more.
func Promoted(spec *appsv1alpha1.StatelessAppSpec) bool {
	return spec.Canary != nil && spec.Canary.AppVersion == spec.AppVersion && canaryConfigVersion(spec) == spec.ConfigVersion
}

func canaryConfigVersion(spec *appsv1alpha1.StatelessAppSpec) string {
	if spec.Canary.ConfigVersion != "" {
		return spec.Canary.ConfigVersion
	}
	return spec.ConfigVersion
}

// DeploymentName is the name of the Deployment of an app's track.
func DeploymentName(app, track string) string {
	if track == appsv1alpha1.CanaryTrack {
		return app + canarySuffix
	}
	return app
}

// Expand turns a StatelessApp into its workload with the cluster's platform
// configuration and the app's namespace (whose labels give the app name and
// the node profile).
func Expand(app *appsv1alpha1.StatelessApp, platform *appsv1alpha1.AppPlatformSpec, ns *corev1.Namespace) Workload {
	stable, canary := Tracks(&app.Spec)
	w := Workload{
		Stable:  deployment(app, platform, ns, stable),
		Service: service(app, ns),
		PDB:     pdb(app, platform, ns),
	}
	if canary != nil {
		w.Canary = deployment(app, platform, ns, *canary)
	}
	return w
}

// Selector selects every pod of the app, both tracks.
func Selector(app string) map[string]string {
	return map[string]string{appsv1alpha1.StatelessAppLabel: app}
}

// trackSelector selects the pods of one track.
func trackSelector(app, track string) map[string]string {
	return map[string]string{appsv1alpha1.StatelessAppLabel: app, appsv1alpha1.TrackLabel: track}
}

// objectLabels are the labels of everything an app expands to.
func objectLabels(app *appsv1alpha1.StatelessApp, ns *corev1.Namespace) map[string]string {
	return map[string]string{
		appsv1alpha1.AppLabel:          AppName(ns, app.Spec.Application),
		appsv1alpha1.StatelessAppLabel: app.Name,
	}
}

// AppName is the app (the apps.strata.dev/app label) that the pods of an
// application in namespace ns belong to: the namespace's (set for the
// AppNamespace it was made for), else the application.
func AppName(ns *corev1.Namespace, application string) string {
	if a := ns.Labels[appsv1alpha1.AppLabel]; a != "" {
		return a
	}
	return application
}

// NodeSelector places an app's pods on the Nodes of its namespace's node
// profile; nil when the namespace has none.
func NodeSelector(ns *corev1.Namespace) map[string]string {
	if profile := ns.Labels[fleetv1alpha1.NodeProfileLabel]; profile != "" {
		return map[string]string{fleetv1alpha1.NodeProfileLabel: profile}
	}
	return nil
}

func ownerRefs(app *appsv1alpha1.StatelessApp) []metav1.OwnerReference {
	return []metav1.OwnerReference{*metav1.NewControllerRef(app, appsv1alpha1.GroupVersion.WithKind("StatelessApp"))}
}

func objectMeta(app *appsv1alpha1.StatelessApp, name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: app.Namespace, Labels: labels, OwnerReferences: ownerRefs(app)}
}

// deployment is the Deployment of one track.
func deployment(app *appsv1alpha1.StatelessApp, platform *appsv1alpha1.AppPlatformSpec, ns *corev1.Namespace, t Track) *appsv1.Deployment {
	labels := objectLabels(app, ns)
	labels[appsv1alpha1.TrackLabel] = t.Name
	podLabels := map[string]string{
		appsv1alpha1.AppVersionLabel:    t.AppVersion,
		appsv1alpha1.ConfigVersionLabel: t.ConfigVersion,
	}
	for k, v := range labels {
		podLabels[k] = v
	}
	// maxSurgePercent 0 is a choice (the API server defaults an unset one).
	surge := app.Spec.MaxSurgePercent
	// A rollout keeps every replica serving when it may surge; without a
	// surge it may only replace pods as far as disruptions may take them.
	unavailable := intstr.FromInt32(0)
	if surge == 0 {
		unavailable = percent(orDefault(platform.MaxUnavailablePercent, defaultMaxUnavailablePercent))
	}
	surgeValue := percent(surge)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment"},
		ObjectMeta: objectMeta(app, DeploymentName(app.Name, t.Name), labels),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(t.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: trackSelector(app.Name, t.Name)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec:       podSpec(app, platform, ns, t),
			},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surgeValue, MaxUnavailable: &unavailable},
			},
			ProgressDeadlineSeconds: ptr.To(orDefault(app.Spec.ProgressDeadlineSeconds, defaultProgressDeadlineSeconds)),
		},
	}
}

// podSpec is the pod of one track: the platform's init containers, the app
// and the platform's sidecars, on Nodes of the namespace's node profile,
// spread evenly across maintenance zones.
func podSpec(app *appsv1alpha1.StatelessApp, platform *appsv1alpha1.AppPlatformSpec, ns *corev1.Namespace, t Track) corev1.PodSpec {
	spec := corev1.PodSpec{
		// Service links put every Service of the namespace in the
		// environment; apps find theirs through DNS.
		EnableServiceLinks: ptr.To(false),
		TopologySpreadConstraints: []corev1.TopologySpreadConstraint{
			spread(app.Name, t.Name, fleetv1alpha1.MaintenanceZoneLabel, corev1.DoNotSchedule),
			spread(app.Name, t.Name, hostnameLabel, corev1.ScheduleAnyway),
		},
		NodeSelector: NodeSelector(ns),
	}
	spec.InitContainers, spec.Containers = Containers(platform, ContainerParams{
		Application: app.Spec.Application, AppVersion: t.AppVersion, ConfigVersion: t.ConfigVersion,
		Port: app.Spec.Port, Resources: app.Spec.Resources,
	})
	return spec
}

// ContainerParams are what the platform expands an app's containers from.
type ContainerParams struct {
	Application   string
	AppVersion    string
	ConfigVersion string
	// Port the app serves on; 0 is the default 8080.
	Port      int32
	Resources appsv1alpha1.Resources
}

// Containers are the containers of an app's pod as the platform expands
// them: the platform's init containers, then the app container
// (<imageRepository>/<application>:<appVersion>, its port, the platform's
// probes, requests equal to limits) followed by the platform's sidecars.
// Every container gets the app's environment (STRATA_APP,
// STRATA_APP_VERSION, STRATA_CONFIG_VERSION). Both app controllers expand
// their pods with it.
func Containers(platform *appsv1alpha1.AppPlatformSpec, p ContainerParams) (initContainers, containers []corev1.Container) {
	env := []corev1.EnvVar{
		{Name: EnvApp, Value: p.Application},
		{Name: EnvAppVersion, Value: p.AppVersion},
		{Name: EnvConfigVersion, Value: p.ConfigVersion},
	}
	containers = []corev1.Container{appContainer(platform, p, env)}
	for _, c := range platform.InitContainers {
		initContainers = append(initContainers, infraContainer(c, env))
	}
	for _, c := range platform.Sidecars {
		containers = append(containers, infraContainer(c, env))
	}
	return initContainers, containers
}

// spread keeps a track's pods of one rollout (ReplicaSet) at most one apart
// across the values of the Node label key, among the Nodes the pods may
// run on (tainted Nodes do not count).
func spread(app, track, key string, when corev1.UnsatisfiableConstraintAction) corev1.TopologySpreadConstraint {
	return corev1.TopologySpreadConstraint{
		MaxSkew:           1,
		TopologyKey:       key,
		WhenUnsatisfiable: when,
		LabelSelector:     &metav1.LabelSelector{MatchLabels: trackSelector(app, track)},
		MatchLabelKeys:    []string{podTemplateHashLabel},
		NodeTaintsPolicy:  ptr.To(corev1.NodeInclusionPolicyHonor),
	}
}

func appContainer(platform *appsv1alpha1.AppPlatformSpec, p ContainerParams, env []corev1.EnvVar) corev1.Container {
	port := orDefault(p.Port, defaultPort)
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP,
			}},
			PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 1, SuccessThreshold: 1,
		}
	}
	liveness := orDefault(platform.Probes.LivenessPath, defaultLivenessPath)
	return corev1.Container{
		Name:           AppContainer,
		Image:          fmt.Sprintf("%s/%s:%s", platform.ImageRepository, p.Application, p.AppVersion),
		Ports:          []corev1.ContainerPort{{Name: portName, ContainerPort: port, Protocol: corev1.ProtocolTCP}},
		Env:            env,
		Resources:      requestsEqualLimits(p.Resources),
		ReadinessProbe: probe(orDefault(platform.Probes.ReadinessPath, defaultReadinessPath), 5, 3),
		LivenessProbe:  probe(liveness, 10, 3),
		// The liveness probe waits for the app to start, up to 5 minutes.
		StartupProbe: probe(liveness, 5, 60),
	}
}

func infraContainer(c appsv1alpha1.InfraContainer, env []corev1.EnvVar) corev1.Container {
	return corev1.Container{
		Name:      c.Name,
		Image:     c.Image,
		Args:      c.Args,
		Env:       env,
		Resources: requestsEqualLimits(c.Resources),
	}
}

func requestsEqualLimits(r appsv1alpha1.Resources) corev1.ResourceRequirements {
	list := corev1.ResourceList{corev1.ResourceCPU: r.CPU, corev1.ResourceMemory: r.Memory}
	return corev1.ResourceRequirements{Requests: list, Limits: list.DeepCopy()}
}

// service serves both tracks on port 80.
func service(app *appsv1alpha1.StatelessApp, ns *corev1.Namespace) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(app, app.Name, objectLabels(app, ns)),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: Selector(app.Name),
			Ports: []corev1.ServicePort{{
				Name: portName, Port: servicePort, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(orDefault(app.Spec.Port, defaultPort)),
			}},
		},
	}
}

// pdb lets voluntary disruptions take the platform's share of the app's
// pods, both tracks, at once.
func pdb(app *appsv1alpha1.StatelessApp, platform *appsv1alpha1.AppPlatformSpec, ns *corev1.Namespace) *policyv1.PodDisruptionBudget {
	unavailable := percent(orDefault(platform.MaxUnavailablePercent, defaultMaxUnavailablePercent))
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: policyv1.SchemeGroupVersion.String(), Kind: "PodDisruptionBudget"},
		ObjectMeta: objectMeta(app, app.Name, objectLabels(app, ns)),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &unavailable,
			Selector:       &metav1.LabelSelector{MatchLabels: Selector(app.Name)},
		},
	}
}

func percent(p int32) intstr.IntOrString {
	return intstr.FromString(fmt.Sprintf("%d%%", p))
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
