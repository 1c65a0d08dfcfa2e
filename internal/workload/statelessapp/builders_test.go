package statelessapp

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// now is the time the unit tests judge at.
var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// appWrapper builds a StatelessApp.
type appWrapper struct{ appsv1alpha1.StatelessApp }

// makeApp starts an app "web" of application shop, version 1.0 with config
// c1, in namespace team-a.
func makeApp(replicas int32) *appWrapper {
	return &appWrapper{appsv1alpha1.StatelessApp{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a", UID: "uid-web", Generation: 3},
		Spec: appsv1alpha1.StatelessAppSpec{
			Application: "shop", AppVersion: "1.0", ConfigVersion: "c1", Replicas: replicas,
			Resources:       appsv1alpha1.Resources{CPU: resource.MustParse("500m"), Memory: resource.MustParse("256Mi")},
			Port:            8080,
			MaxSurgePercent: 25, ProgressDeadlineSeconds: 600,
		},
	}}
}

func (w *appWrapper) canary(version, config string, percent int32) *appWrapper {
	w.Spec.Canary = &appsv1alpha1.Canary{AppVersion: version, ConfigVersion: config, Percent: percent}
	return w
}

func (w *appWrapper) version(app, config string) *appWrapper {
	w.Spec.AppVersion, w.Spec.ConfigVersion = app, config
	return w
}

func (w *appWrapper) surge(p int32) *appWrapper {
	w.Spec.MaxSurgePercent = p
	return w
}

func (w *appWrapper) condition(c metav1.Condition) *appWrapper {
	w.Status.Conditions = append(w.Status.Conditions, c)
	return w
}

func (w *appWrapper) obj() *appsv1alpha1.StatelessApp { return &w.StatelessApp }

// makePlatform is a platform with a config init container and a log shipper.
func makePlatform() *appsv1alpha1.AppPlatformSpec {
	small := appsv1alpha1.Resources{CPU: resource.MustParse("50m"), Memory: resource.MustParse("64Mi")}
	return &appsv1alpha1.AppPlatformSpec{
		ImageRepository: "registry.test/apps",
		InitContainers: []appsv1alpha1.InfraContainer{{
			Name: "config-init", Image: "registry.test/platform/config-init:1.0",
			Args: []string{"--version=$(STRATA_CONFIG_VERSION)"}, Resources: small,
		}},
		Sidecars:              []appsv1alpha1.InfraContainer{{Name: "log-shipper", Image: "registry.test/platform/log-shipper:1.0", Resources: small}},
		Probes:                appsv1alpha1.Probes{ReadinessPath: "/ready", LivenessPath: "/health"},
		MaxUnavailablePercent: 10,
	}
}

// makeNamespace is team-a of app shop-app on general Nodes.
func makeNamespace() *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{
		appsv1alpha1.AppLabel: "shop-app", fleetv1alpha1.NodeProfileLabel: "general",
	}}}
}

// deployWrapper builds the Deployment of a track as its controller reports it.
type deployWrapper struct{ appsv1.Deployment }

// makeDeployment starts the Deployment of a track, with replicas wanted,
// seen by its controller, nothing running yet.
func makeDeployment(name, appVersion, configVersion string, replicas int32) *deployWrapper {
	return &deployWrapper{appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a", Generation: 2},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas), ProgressDeadlineSeconds: ptr.To[int32](600),
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
				appsv1alpha1.AppVersionLabel: appVersion, appsv1alpha1.ConfigVersionLabel: configVersion,
			}}},
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 2},
	}}
}

// counts sets the pods: all of them, updated, ready and available.
func (w *deployWrapper) counts(replicas, updated, ready, available int32) *deployWrapper {
	w.Status.Replicas, w.Status.UpdatedReplicas, w.Status.ReadyReplicas, w.Status.AvailableReplicas = replicas, updated, ready, available
	return w
}

// rolledOut sets every wanted replica updated and available, and the
// Progressing condition of a finished rollout.
func (w *deployWrapper) rolledOut() *deployWrapper {
	n := *w.Spec.Replicas
	return w.counts(n, n, n, n).progressing(corev1.ConditionTrue, deploymentCompleteReason, "ReplicaSet has successfully progressed.")
}

func (w *deployWrapper) progressing(status corev1.ConditionStatus, reason, message string) *deployWrapper {
	w.Status.Conditions = append(w.Status.Conditions, appsv1.DeploymentCondition{
		Type: appsv1.DeploymentProgressing, Status: status, Reason: reason, Message: message,
	})
	return w
}

func (w *deployWrapper) replicaFailure(message string) *deployWrapper {
	w.Status.Conditions = append(w.Status.Conditions, appsv1.DeploymentCondition{
		Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: deploymentFailedCreate, Message: message,
	})
	return w
}

// unobserved: the Deployment changed and its controller has not seen it.
func (w *deployWrapper) unobserved() *deployWrapper {
	w.Generation++
	return w
}

func (w *deployWrapper) obj() *appsv1.Deployment { return &w.Deployment }

// podWrapper builds a pod of app web as its kubelet reports it.
type podWrapper struct{ corev1.Pod }

// makePod starts a pod of the stable track on a Node, Running and Ready
// for ten minutes, with the app container and a log shipper.
func makePod(name, node string) *podWrapper {
	started := metav1.NewTime(now.Add(-10 * time.Minute))
	running := func(c string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: c, Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}
	}
	return &podWrapper{corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a", Labels: map[string]string{
			appsv1alpha1.StatelessAppLabel: "web", appsv1alpha1.TrackLabel: appsv1alpha1.StableTrack,
		}},
		Spec: corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: started},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: started},
			},
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "config-init", Ready: true,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}}},
			ContainerStatuses: []corev1.ContainerStatus{running(AppContainer), running("log-shipper")},
		},
	}}
}

func (w *podWrapper) container(name string) *corev1.ContainerStatus {
	for i := range w.Status.ContainerStatuses {
		if w.Status.ContainerStatuses[i].Name == name {
			return &w.Status.ContainerStatuses[i]
		}
	}
	panic("no container " + name)
}

func (w *podWrapper) setReady(ready bool, since time.Time) {
	status := corev1.ConditionTrue
	if !ready {
		status = corev1.ConditionFalse
	}
	for i := range w.Status.Conditions {
		if w.Status.Conditions[i].Type == corev1.PodReady {
			w.Status.Conditions[i].Status, w.Status.Conditions[i].LastTransitionTime = status, metav1.NewTime(since)
		}
	}
}

// waiting puts a container in a waiting state after a restart.
func (w *podWrapper) waiting(container, reason, message string) *podWrapper {
	c := w.container(container)
	c.Ready, c.RestartCount = false, 5
	c.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
	w.setReady(false, now.Add(-5*time.Minute))
	return w
}

// oomKilled records that the container last ended out of memory.
func (w *podWrapper) oomKilled(container string) *podWrapper {
	return w.oomKilledAt(container, time.Time{})
}

// oomKilledAt: the container's last run ended OOMKilled at that time.
func (w *podWrapper) oomKilledAt(container string, at time.Time) *podWrapper {
	c := w.container(container)
	c.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		Reason: OOMKilledReason, ExitCode: 137, FinishedAt: metav1.NewTime(at),
	}}
	return w
}

// notReadySince: the container runs, not ready, since then.
func (w *podWrapper) notReadySince(container string, since time.Time) *podWrapper {
	c := w.container(container)
	c.Ready = false
	c.State.Running.StartedAt = metav1.NewTime(since)
	w.setReady(false, since)
	return w
}

// unschedulable: the scheduler found no Node.
func (w *podWrapper) unschedulable(message string) *podWrapper {
	w.Spec.NodeName = ""
	w.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: message,
	}}}
	return w
}

// creating: scheduled then, its containers still being created.
func (w *podWrapper) creating(since time.Time) *podWrapper {
	waiting := func(c, reason string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: c, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}
	}
	w.Status = corev1.PodStatus{
		Phase: corev1.PodPending,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(since)},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(since)},
		},
		InitContainerStatuses: []corev1.ContainerStatus{waiting("config-init", "PodInitializing")},
		ContainerStatuses:     []corev1.ContainerStatus{waiting(AppContainer, "PodInitializing"), waiting("log-shipper", "PodInitializing")},
	}
	return w
}

func (w *podWrapper) terminating() *podWrapper {
	t := metav1.NewTime(now.Add(-time.Second))
	w.DeletionTimestamp = &t
	return w
}

func (w *podWrapper) obj() corev1.Pod { return w.Pod }

// readyNodes says every named Node is Ready.
func readyNodes(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}
