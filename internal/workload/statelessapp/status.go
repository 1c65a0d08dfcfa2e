package statelessapp

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// Failure reasons of status.failure beside the container waiting reasons
// (CrashLoopBackOff, ImagePullBackOff ...) that are taken as they are.
const (
	OOMKilledReason                = "OOMKilled"
	ReadinessProbeFailingReason    = "ReadinessProbeFailing"
	UnschedulableReason            = "Unschedulable"
	NodeLostReason                 = "NodeLost"
	QuotaExceededReason            = "QuotaExceeded"
	FailedCreateReason             = "FailedCreate"
	ContainerCreatingTooLongReason = "ContainerCreatingTooLong"
)

// Reasons the Deployment controller gives its conditions.
const (
	deploymentCompleteReason = "NewReplicaSetAvailable"
	deploymentFailedCreate   = "FailedCreate"
)

// maxFailurePods is how many offending pods status.failure names.
const maxFailurePods = 10

// maxMessage bounds the messages of the status.
const maxMessage = 4096

// failingWaitingReasons are the container waiting reasons that mean the
// container cannot run as it is: its image or its own code or configuration
// is at fault.
var failingWaitingReasons = []string{
	"CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "InvalidImageName",
	"CreateContainerConfigError", "CreateContainerError", "RunContainerError",
}

// Grace is how long a pod may look unwell before it counts as failing.
type Grace struct {
	// Readiness: a running container not ready for this long fails its
	// readiness probe.
	Readiness time.Duration
	// Creating: a scheduled pod whose containers are still being created
	// this long is stuck on its volumes or its network.
	Creating time.Duration
}

// DefaultGrace is the Grace of a Reconciler that sets none.
var DefaultGrace = Grace{Readiness: time.Minute, Creating: 3 * time.Minute}

// Blocker is why an app's workload could not be written.
type Blocker struct {
	// Reason is PlatformNotFound or ExpansionFailed.
	Reason  string
	Message string
}

// Observation is what an app's status is judged from.
type Observation struct {
	App *appsv1alpha1.StatelessApp
	// Blocked, when set, is why the workload was not written.
	Blocked *Blocker
	// Stable and Canary are the app's Deployments as they are, nil when
	// absent. Canary may be a promoted canary that is kept until the stable
	// track has rolled out.
	Stable, Canary *appsv1.Deployment
	// Pods are the app's pods, both tracks.
	Pods []corev1.Pod
	// NodeReady says whether each Node that the pods run on is Ready; a Node
	// missing from it does not exist. Nil: Nodes are not judged.
	NodeReady map[string]bool
	Now       time.Time
	Grace     Grace
}

// Status judges an app: its replicas, its conditions and why pods fail. It
// also says after how long a pod's grace runs out, when one is pending (0:
// none is), for the app to be judged again then.
func Status(o Observation) (appsv1alpha1.StatelessAppStatus, time.Duration) {
	app := o.App
	wantStable, wantCanary := Tracks(&app.Spec)
	stable := judgeTrack(wantStable, o.Stable)
	tracks := []trackState{stable}
	st := appsv1alpha1.StatelessAppStatus{
		ObservedGeneration: app.Generation,
		Selector:           labels.SelectorFromSet(Selector(app.Name)).String(),
		Stable:             stable.status(),
		Conditions:         slices.Clone(app.Status.Conditions),
	}
	if wantCanary != nil {
		canary := judgeTrack(*wantCanary, o.Canary)
		tracks = append(tracks, canary)
		st.Canary = ptr.To(canary.status())
	}
	for _, d := range []*appsv1.Deployment{o.Stable, o.Canary} {
		if d != nil {
			st.Replicas += d.Status.Replicas
			st.ReadyReplicas += d.Status.ReadyReplicas
		}
	}
	// A promoted canary still running: it goes once the stable track rolled out.
	retiring := wantCanary == nil && o.Canary != nil

	failure, recheck := judgeFailures(o, tracks)
	st.Failure = failure
	now := metav1.NewTime(o.Now)
	for _, c := range conditions(tracks, retiring, o.Blocked, failure) {
		c.ObservedGeneration = app.Generation
		c.LastTransitionTime = now
		c.Message = truncate(c.Message)
		meta.SetStatusCondition(&st.Conditions, c)
	}
	return st, recheck
}

// conditions are Ready, Progressing and Degraded.
func conditions(tracks []trackState, retiring bool, blocked *Blocker,
	failure *appsv1alpha1.Failure) []metav1.Condition {
	ready := metav1.Condition{Type: appsv1alpha1.StatelessAppReadyCondition}
	progressing := metav1.Condition{Type: appsv1alpha1.StatelessAppProgressingCondition}
	degraded := metav1.Condition{Type: appsv1alpha1.StatelessAppDegradedCondition,
		Status: metav1.ConditionFalse, Reason: appsv1alpha1.NoFailureReason, Message: "no pod is failing"}
	if failure != nil {
		degraded.Status, degraded.Reason, degraded.Message = metav1.ConditionTrue, string(failure.Category), failure.Message
	}

	var available, wanted int32
	allReady, allRolledOut := !retiring, !retiring
	var deadline []string
	for _, t := range tracks {
		available += t.available()
		wanted += t.want.Replicas
		allReady = allReady && t.ready()
		allRolledOut = allRolledOut && t.rolledOut()
		if c := t.deadlineExceeded(); c != nil {
			deadline = append(deadline, fmt.Sprintf("deployment %s made no progress for %ds: %s",
				t.dep.Name, ptr.Deref(t.dep.Spec.ProgressDeadlineSeconds, 0), c.Message))
		}
	}
	summary := fmt.Sprintf("%d of %d replicas available (%s)", available, wanted, trackSummary(tracks))
	if retiring {
		summary += "; the promoted canary is removed once the stable track has rolled out"
	}

	switch {
	case blocked != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, blocked.Reason, blocked.Message
		progressing.Status, progressing.Reason = metav1.ConditionFalse, blocked.Reason
		progressing.Message = "no change of the app rolls out: " + blocked.Message
	case len(deadline) > 0:
		msg := strings.Join(deadline, "; ") + "; " + summary
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, appsv1alpha1.ProgressDeadlineExceededReason, msg
		progressing.Status, progressing.Reason, progressing.Message = metav1.ConditionFalse, appsv1alpha1.ProgressDeadlineExceededReason, msg
	default:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, appsv1alpha1.ReplicasUnavailableReason, summary
		if allReady {
			ready.Status, ready.Reason = metav1.ConditionTrue, appsv1alpha1.AvailableReason
		}
		progressing.Status, progressing.Reason, progressing.Message = metav1.ConditionTrue, appsv1alpha1.RollingOutReason, summary
		if allRolledOut {
			progressing.Status, progressing.Reason = metav1.ConditionFalse, appsv1alpha1.RolledOutReason
		}
	}
	return []metav1.Condition{ready, progressing, degraded}
}

// trackState is a wanted track and its Deployment as it is.
type trackState struct {
	want Track
	dep  *appsv1.Deployment
	// current: the Deployment is the wanted one and its controller has seen it.
	current bool
}

func judgeTrack(want Track, dep *appsv1.Deployment) trackState {
	t := trackState{want: want, dep: dep}
	t.current = dep != nil && dep.Status.ObservedGeneration >= dep.Generation &&
		ptr.Deref(dep.Spec.Replicas, 1) == want.Replicas &&
		dep.Spec.Template.Labels[appsv1alpha1.AppVersionLabel] == want.AppVersion &&
		dep.Spec.Template.Labels[appsv1alpha1.ConfigVersionLabel] == want.ConfigVersion
	return t
}

func (t trackState) updated() int32 {
	if !t.current {
		return 0
	}
	return t.dep.Status.UpdatedReplicas
}

func (t trackState) available() int32 {
	if t.dep == nil {
		return 0
	}
	return min(t.dep.Status.AvailableReplicas, t.want.Replicas)
}

// ready: every wanted replica runs the wanted versions and is available,
// and no other pod is left.
func (t trackState) ready() bool {
	n := t.want.Replicas
	return t.current && t.dep.Status.UpdatedReplicas == n && t.dep.Status.AvailableReplicas == n && t.dep.Status.Replicas == n
}

// rolledOut: the last change of the track is over, as its Deployment's
// controller judges: a pod that fails afterwards degrades the app but
// rolls nothing out.
func (t trackState) rolledOut() bool {
	n := t.want.Replicas
	if !t.current || t.dep.Status.UpdatedReplicas != n || t.dep.Status.Replicas != n {
		return false
	}
	if c := deploymentCondition(t.dep, appsv1.DeploymentProgressing); c != nil {
		return c.Status == corev1.ConditionTrue && c.Reason == deploymentCompleteReason
	}
	return t.dep.Status.AvailableReplicas == n
}

// deadlineExceeded is the Deployment's Progressing condition when its
// controller gave up on the rollout.
func (t trackState) deadlineExceeded() *appsv1.DeploymentCondition {
	if !t.current {
		return nil
	}
	c := deploymentCondition(t.dep, appsv1.DeploymentProgressing)
	if c != nil && c.Status == corev1.ConditionFalse && c.Reason == appsv1alpha1.ProgressDeadlineExceededReason {
		return c
	}
	return nil
}

func (t trackState) status() appsv1alpha1.TrackStatus {
	s := appsv1alpha1.TrackStatus{AppVersion: t.want.AppVersion, ConfigVersion: t.want.ConfigVersion,
		Replicas: t.want.Replicas, UpdatedReplicas: t.updated()}
	if t.dep != nil {
		s.ReadyReplicas = t.dep.Status.ReadyReplicas
	}
	return s
}

func trackSummary(tracks []trackState) string {
	parts := make([]string, 0, len(tracks))
	for _, t := range tracks {
		parts = append(parts, fmt.Sprintf("%s %s: %d of %d", t.want.Name, versions(t.want), t.available(), t.want.Replicas))
	}
	return strings.Join(parts, ", ")
}

func versions(t Track) string {
	if t.ConfigVersion == "" {
		return t.AppVersion
	}
	return t.AppVersion + " config " + t.ConfigVersion
}

func deploymentCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// podFailure is why one pod (or Deployment) fails.
type podFailure struct {
	category appsv1alpha1.FailureCategory
	reason   string
	detail   string
}

// failureGroup gathers the pods failing one way.
type failureGroup struct {
	podFailure
	pods  []string
	count int32
	// first is the failing thing the message shows.
	first string
}

// judgeFailures finds why the app's pods fail, the most common way first.
func judgeFailures(o Observation, tracks []trackState) (*appsv1alpha1.Failure, time.Duration) {
	pods := slices.Clone(o.Pods)
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return cmp.Compare(a.Name, b.Name) })
	groups := map[podFailure]*failureGroup{}
	add := func(f podFailure, pod, what string, count int32) {
		key := podFailure{category: f.category, reason: f.reason}
		g := groups[key]
		if g == nil {
			g = &failureGroup{podFailure: f, first: what}
			groups[key] = g
		}
		if pod != "" && len(g.pods) < maxFailurePods {
			g.pods = append(g.pods, pod)
		}
		g.count += count
	}

	var recheck time.Duration
	var live int32
	for i := range pods {
		pod := &pods[i]
		if !pod.DeletionTimestamp.IsZero() || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		live++
		f, after := judgePod(pod, o.NodeReady, o.Now, o.Grace)
		if after > 0 && (recheck == 0 || after < recheck) {
			recheck = after
		}
		if f != nil {
			add(*f, pod.Name, "pod "+pod.Name, 1)
		}
	}
	for _, t := range tracks {
		if f, missing := judgeDeployment(t); f != nil {
			add(*f, "", "deployment "+t.dep.Name, missing)
		}
	}
	if len(groups) == 0 {
		return nil, recheck
	}

	all := make([]*failureGroup, 0, len(groups))
	for _, g := range groups {
		all = append(all, g)
	}
	slices.SortFunc(all, func(a, b *failureGroup) int {
		return cmp.Or(cmp.Compare(b.count, a.count), cmp.Compare(a.category, b.category), cmp.Compare(a.reason, b.reason))
	})
	top := all[0]
	var msg string
	if len(top.pods) > 0 {
		msg = fmt.Sprintf("%d of %d pods fail with %s; %s: %s", top.count, live, top.reason, top.first, top.detail)
	} else {
		msg = fmt.Sprintf("%s cannot create %d pods: %s", top.first, top.count, top.detail)
	}
	if len(all) > 1 {
		others := make([]string, 0, len(all)-1)
		for _, g := range all[1:] {
			others = append(others, fmt.Sprintf("%d %s (%s)", g.count, g.reason, g.category))
		}
		msg += ". Also failing: " + strings.Join(others, ", ")
	}
	return &appsv1alpha1.Failure{
		Category: top.category, Reason: top.reason, Message: truncate(msg), Pods: top.pods, FailingPods: top.count,
	}, recheck
}

// judgeDeployment finds the pods a track's Deployment cannot create, and
// how many are missing.
func judgeDeployment(t trackState) (*podFailure, int32) {
	if t.dep == nil {
		return nil, 0
	}
	c := deploymentCondition(t.dep, appsv1.DeploymentReplicaFailure)
	if c == nil || c.Status != corev1.ConditionTrue || c.Reason != deploymentFailedCreate {
		return nil, 0
	}
	missing := max(1, ptr.Deref(t.dep.Spec.Replicas, 1)-t.dep.Status.Replicas)
	reason := FailedCreateReason
	if strings.Contains(c.Message, "exceeded quota") {
		reason = QuotaExceededReason
	}
	return &podFailure{category: appsv1alpha1.InfraFailure, reason: reason, detail: c.Message}, missing
}

// judgePod says why a pod fails, nil when it does not (yet). When the pod
// is within a grace that may run out, it also says after how long.
func judgePod(pod *corev1.Pod, nodeReady map[string]bool, now time.Time, grace Grace) (*podFailure, time.Duration) {
	if c := podCondition(pod, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
		return &podFailure{category: appsv1alpha1.InfraFailure, reason: UnschedulableReason, detail: c.Message}, 0
	}
	if node := pod.Spec.NodeName; node != "" && nodeReady != nil {
		ready, exists := nodeReady[node]
		switch {
		case !exists:
			return &podFailure{category: appsv1alpha1.InfraFailure, reason: NodeLostReason, detail: "its Node " + node + " no longer exists"}, 0
		case !ready:
			return &podFailure{category: appsv1alpha1.InfraFailure, reason: NodeLostReason, detail: "its Node " + node + " is not Ready"}, 0
		}
	}
	statuses := containerStatuses(pod)
	for _, cs := range statuses {
		if f := judgeContainer(cs, now); f != nil {
			return f, 0
		}
	}
	// Grace-bound failures: readiness, then stuck creation.
	var recheck time.Duration
	for _, cs := range statuses {
		if cs.State.Running == nil || cs.Ready {
			continue
		}
		since := cs.State.Running.StartedAt.Time
		if c := podCondition(pod, corev1.PodReady); c != nil && c.LastTransitionTime.After(since) {
			since = c.LastTransitionTime.Time
		}
		if left := since.Add(grace.Readiness).Sub(now); left > 0 {
			recheck = minPositive(recheck, left)
			continue
		}
		probe := "readiness probe"
		if cs.Started != nil && !*cs.Started {
			probe = "startup probe"
		}
		return &podFailure{category: category(cs.Name), reason: ReadinessProbeFailingReason,
			detail: fmt.Sprintf("%s has been running for %s without passing its %s", containerName(cs.Name), now.Sub(since).Round(time.Second), probe)}, 0
	}
	scheduled := podCondition(pod, corev1.PodScheduled)
	if pod.Status.Phase == corev1.PodPending && scheduled != nil && scheduled.Status == corev1.ConditionTrue && creating(statuses) {
		since := scheduled.LastTransitionTime.Time
		if left := since.Add(grace.Creating).Sub(now); left > 0 {
			return nil, minPositive(recheck, left)
		}
		return &podFailure{category: appsv1alpha1.InfraFailure, reason: ContainerCreatingTooLongReason,
			detail: fmt.Sprintf("its containers are still being created on Node %s after %s: its volumes or its network are not set up (its events say why, e.g. FailedMount or FailedCreatePodSandBox)",
				pod.Spec.NodeName, now.Sub(since).Round(time.Second))}, 0
	}
	return nil, recheck
}

// recentOOM is how long after an out-of-memory kill a container that runs
// again still counts as failing: an app that is OOMKilled every few minutes
// is failing even while it is up between kills.
const recentOOM = 10 * time.Minute

// judgeContainer says whether a container cannot run as it is.
func judgeContainer(cs corev1.ContainerStatus, now time.Time) *podFailure {
	oom := func(s corev1.ContainerState) bool {
		return s.Terminated != nil && s.Terminated.Reason == OOMKilledReason
	}
	if w := cs.State.Waiting; w != nil && slices.Contains(failingWaitingReasons, w.Reason) {
		if oom(cs.LastTerminationState) {
			return &podFailure{category: category(cs.Name), reason: OOMKilledReason,
				detail: fmt.Sprintf("%s ran out of memory (OOMKilled, %d restarts) and waits in %s", containerName(cs.Name), cs.RestartCount, w.Reason)}
		}
		detail := fmt.Sprintf("%s waits in %s", containerName(cs.Name), w.Reason)
		if w.Message != "" {
			detail += ": " + w.Message
		}
		return &podFailure{category: category(cs.Name), reason: w.Reason, detail: detail}
	}
	recent := func(s corev1.ContainerState) bool {
		return oom(s) && now.Sub(s.Terminated.FinishedAt.Time) < recentOOM
	}
	if oom(cs.State) || (!cs.Ready && oom(cs.LastTerminationState)) || recent(cs.LastTerminationState) {
		return &podFailure{category: category(cs.Name), reason: OOMKilledReason,
			detail: fmt.Sprintf("%s ran out of memory (OOMKilled, %d restarts)", containerName(cs.Name), cs.RestartCount)}
	}
	return nil
}

// category: the app container's failures are the app's; the platform's
// containers' are the platform's.
func category(container string) appsv1alpha1.FailureCategory {
	if container == AppContainer {
		return appsv1alpha1.AppFailure
	}
	return appsv1alpha1.InfraFailure
}

func containerName(container string) string {
	if container == AppContainer {
		return "container " + container
	}
	return "platform container " + container
}

// containerStatuses are the pod's container statuses, the app container's
// first, then those of the init containers, then the sidecars'.
func containerStatuses(pod *corev1.Pod) []corev1.ContainerStatus {
	out := make([]corev1.ContainerStatus, 0, len(pod.Status.InitContainerStatuses)+len(pod.Status.ContainerStatuses))
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == AppContainer {
			out = append(out, cs)
		}
	}
	out = append(out, pod.Status.InitContainerStatuses...)
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != AppContainer {
			out = append(out, cs)
		}
	}
	return out
}

// creating: the kubelet has not started the pod's containers yet.
func creating(statuses []corev1.ContainerStatus) bool {
	if len(statuses) == 0 {
		return true
	}
	for _, cs := range statuses {
		if w := cs.State.Waiting; w != nil && (w.Reason == "ContainerCreating" || w.Reason == "PodInitializing") {
			return true
		}
	}
	return false
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func minPositive(a, b time.Duration) time.Duration {
	if a == 0 || b < a {
		return b
	}
	return a
}

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage-3] + "..."
}
