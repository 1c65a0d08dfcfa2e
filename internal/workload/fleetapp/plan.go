package fleetapp

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// States of a cluster in a hub app's status.
const (
	// Active: the cluster has its share of the replicas.
	Active = "Active"
	// Cordoned: the cluster's Cluster is cordoned; its replicas move to
	// the app's other clusters.
	Cordoned = "Cordoned"
	// Unreachable: the hub cannot use the cluster; its share runs
	// elsewhere and nothing is changed there until it is back.
	Unreachable = "Unreachable"
	// Conflict: the cluster holds a StatelessApp of the same name that the
	// hub did not write; it is left alone and gets no share.
	Conflict = "Conflict"
)

// Phases of a release (status.release.phase).
const (
	PhaseReleasing = "Releasing"
	PhasePaused    = "Paused"
	PhaseWaiting   = "Waiting"
	PhaseBlocked   = "Blocked"
	PhaseReleased  = "Released"
)

// defaultMaxScaleDownPercent is the AppPlatform guardrail's default share of
// a cluster's app that one change may remove.
const defaultMaxScaleDownPercent = 50

// version is what a release rolls out: an app and a config version.
type version struct{ app, config string }

func (v version) String() string {
	if v.config == "" {
		return v.app
	}
	return v.app + " (config " + v.config + ")"
}

// clusterView is what the hub knows of one of an app's clusters.
type clusterView struct {
	Name string
	// State is Active, Cordoned, Unreachable or Conflict.
	State string
	// Why says why a cluster is not Active, in words.
	Why string
	// App is the cluster's StatelessApp as it is, nil when it has none (or
	// State is Unreachable).
	App *appsv1alpha1.StatelessApp
	// MaxScaleDownPercent is the cluster's AppPlatform guardrail (0: the
	// default).
	MaxScaleDownPercent int32
	// conn writes to the cluster's API server; set when the hub reached it.
	conn client.Client
	// Returning: the cluster was unreachable moments ago, so its app's
	// status may still say what it was before; its Ready replicas do not
	// count yet (nothing leaves another cluster on their strength).
	Returning bool
}

// reachable says whether the hub can read and write the cluster.
func (c *clusterView) reachable() bool { return c.State == Active || c.State == Cordoned }

// running is the version the cluster's app runs (its spec).
func (c *clusterView) running() (version, bool) {
	if c.App == nil {
		return version{}, false
	}
	return version{c.App.Spec.AppVersion, c.App.Spec.ConfigVersion}, true
}

// replicas are the cluster's app's replicas, 0 without one.
func (c *clusterView) replicas() int32 {
	if c.App == nil {
		return 0
	}
	return c.App.Spec.Replicas
}

// ready counts the cluster's app's Ready replicas, as the cluster reports
// them, but never more than it is asked for: right after a cut, its status
// may still count the pods that are leaving. An unreachable cluster's count
// nothing.
func (c *clusterView) ready() int32 {
	if c.App == nil || !c.reachable() || c.Returning {
		return 0
	}
	return min(c.App.Status.ReadyReplicas, c.App.Spec.Replicas)
}

// settled says whether the cluster's app has acted on its last change:
// a cluster is cut again only then, one step at a time.
func (c *clusterView) settled() bool {
	return c.App != nil && c.App.Status.ObservedGeneration == c.App.Generation && c.App.Status.Replicas == c.App.Spec.Replicas
}

// readyAt says whether the cluster's app has rolled out v, all of its
// replicas Ready.
func (c *clusterView) readyAt(v version) bool {
	a := c.App
	if a == nil || !c.reachable() || a.Status.ObservedGeneration != a.Generation {
		return false
	}
	if a.Spec.AppVersion != v.app || a.Spec.ConfigVersion != v.config || a.Status.Stable.AppVersion != v.app {
		return false
	}
	return meta.IsStatusConditionTrue(a.Status.Conditions, appsv1alpha1.StatelessAppReadyCondition) &&
		a.Status.Stable.UpdatedReplicas == a.Status.Stable.Replicas && a.Status.ReadyReplicas >= a.Spec.Replicas
}

// failure is the cluster's app's failure, when it reports one for the
// generation the hub wrote.
func (c *clusterView) failure() *appsv1alpha1.Failure {
	if c.App == nil || !c.reachable() {
		return nil
	}
	return c.App.Status.Failure
}

// write is what the hub applies to one cluster's app.
type write struct {
	Replicas int32
	Version  version
}

// plan is one step of a hub app: what to write to which cluster, and the
// hub app's new status.
type plan struct {
	Writes map[string]write
	Status appsv1alpha1.StatelessAppStatus
	// Requeue is when to look again.
	Requeue time.Duration
}

// Requeue intervals: while replicas move or a release goes on, the
// clusters' apps are read again soon (nothing of them is watched); when
// all is steady, now and then to notice failures and drift.
const (
	busyInterval   = 2 * time.Second
	steadyInterval = 30 * time.Second
)

// step decides one step of a hub app over its clusters (in the order of
// the AppNamespace's placements): the release's progress, each cluster's
// version and replicas (up first: a cluster gives replicas back only while
// the Ready replicas of all the reachable clusters exceed the app's, and
// by no more than that surplus), and the status that says so.
func step(app *appsv1alpha1.StatelessApp, clusters []clusterView, now time.Time) plan {
	p := plan{Writes: map[string]write{}, Requeue: steadyInterval}
	status := app.Status.DeepCopy()
	status.ObservedGeneration = app.Generation
	status.Replicas = app.Spec.Replicas
	status.Failure = nil

	var active []string
	for i := range clusters {
		if clusters[i].State == Active {
			active = append(active, clusters[i].Name)
		}
	}
	var weights map[string]int32
	if app.Spec.Fleet != nil {
		weights = app.Spec.Fleet.Weights
	}
	shares, err := divide(app.Spec.Replicas, active, weights)
	if err != nil {
		status.Clusters = clusterStatuses(clusters, nil, nil)
		setCondition(status, app, appsv1alpha1.StatelessAppReadyCondition, false, appsv1alpha1.InvalidWeightsReason, err.Error()+"; nothing is changed until they do", now)
		p.Status = *status
		return p
	}

	rel := release(app, status.Release, clusters, now)
	status.Release = rel
	p.Requeue = min(p.Requeue, releaseRequeue(app, rel, now))

	// Each reachable cluster's version: the release's where it is released
	// (all of them once it is complete), elsewhere the one it runs.
	target := version{rel.AppVersion, rel.ConfigVersion}
	previous := version{rel.PreviousAppVersion, rel.PreviousConfigVersion}
	versionOf := func(c *clusterView) version {
		if rel.Phase == PhaseReleased || slices.Contains(rel.Released, c.Name) {
			return target
		}
		if v, ok := c.running(); ok {
			return v
		}
		return previous
	}

	// Replicas: up at once, down by the surplus of Ready replicas.
	surplus := -app.Spec.Replicas
	for i := range clusters {
		surplus += clusters[i].ready()
	}
	want := map[string]int32{}
	for i := range clusters {
		c := &clusters[i]
		if !c.reachable() {
			continue
		}
		share := shares[c.Name] // 0 when cordoned
		have := c.replicas()
		n := have
		switch {
		case share > have:
			n = share
		case share < have && surplus > 0 && c.settled():
			cut := min(have-share, surplus, maxCut(have, c.MaxScaleDownPercent))
			n = have - cut
			surplus -= cut
		}
		want[c.Name] = n
		v := versionOf(c)
		if runs, _ := c.running(); c.App == nil || n != have || runs != v || !fleetSpecInStep(app, c.App) {
			p.Writes[c.Name] = write{Replicas: n, Version: v}
		}
	}
	status.Clusters = clusterStatuses(clusters, shares, want)

	var ready int32
	moving := []string{}
	failing := []string{}
	for i := range clusters {
		c := &clusters[i]
		ready += c.ready()
		if c.reachable() && c.App != nil && c.replicas() != shares[c.Name] {
			moving = append(moving, fmt.Sprintf("%s %d to %d", c.Name, c.replicas(), shares[c.Name]))
		}
		if f := c.failure(); f != nil {
			if status.Failure == nil {
				status.Failure = f.DeepCopy()
			}
			failing = append(failing, fmt.Sprintf("%s in %s: %s", f.Category, c.Name, f.Reason))
		}
	}
	status.ReadyReplicas = ready
	if status.Stable.AppVersion != target.app || status.Stable.ConfigVersion != target.config {
		status.Stable = appsv1alpha1.TrackStatus{AppVersion: target.app, ConfigVersion: target.config}
	}
	status.Stable.Replicas = app.Spec.Replicas
	status.Stable.ReadyReplicas = ready

	switch {
	case len(active) == 0:
		setCondition(status, app, appsv1alpha1.StatelessAppReadyCondition, false, appsv1alpha1.NoClustersReason,
			"no cluster of the app can run it: "+describeClusters(clusters), now)
	case len(moving) > 0:
		setCondition(status, app, appsv1alpha1.StatelessAppReadyCondition, false, appsv1alpha1.MovingReason,
			fmt.Sprintf("moving replicas (%s); those leaving stay until the ones replacing them are Ready: %d of %d Ready", strings.Join(moving, ", "), ready, app.Spec.Replicas), now)
	case ready < app.Spec.Replicas || !allReady(clusters, versionOf):
		setCondition(status, app, appsv1alpha1.StatelessAppReadyCondition, false, appsv1alpha1.ReplicasUnavailableReason,
			fmt.Sprintf("%d of %d replicas Ready over %s", ready, app.Spec.Replicas, strings.Join(active, ", ")), now)
	default:
		setCondition(status, app, appsv1alpha1.StatelessAppReadyCondition, true, appsv1alpha1.AvailableReason,
			fmt.Sprintf("%d replicas Ready over %s", ready, strings.Join(active, ", ")), now)
	}
	if len(failing) > 0 {
		setCondition(status, app, appsv1alpha1.StatelessAppDegradedCondition, true, string(status.Failure.Category), strings.Join(failing, "; "), now)
	} else {
		setCondition(status, app, appsv1alpha1.StatelessAppDegradedCondition, false, appsv1alpha1.NoFailureReason, "no cluster reports failing pods", now)
	}
	if rel.Phase == PhaseReleased {
		setCondition(status, app, appsv1alpha1.StatelessAppReleasedCondition, true, appsv1alpha1.ReleasedReason, rel.Message, now)
	} else {
		setCondition(status, app, appsv1alpha1.StatelessAppReleasedCondition, false, releaseReasons[rel.Phase], rel.Message, now)
	}
	if len(p.Writes) > 0 || len(moving) > 0 || !meta.IsStatusConditionTrue(status.Conditions, appsv1alpha1.StatelessAppReadyCondition) {
		p.Requeue = min(p.Requeue, busyInterval)
	}
	p.Status = *status
	return p
}

var releaseReasons = map[string]string{
	PhaseReleasing: appsv1alpha1.ReleasingReason,
	PhasePaused:    appsv1alpha1.ReleasePausedReason,
	PhaseWaiting:   appsv1alpha1.ReleaseWaitingReason,
	PhaseBlocked:   appsv1alpha1.ReleaseBlockedReason,
}

// maxCut is the most one change may remove from a cluster's app: the
// AppPlatform's maxScaleDownPercent of it, at least one (the scale-down
// guardrail refuses more).
func maxCut(replicas, percent int32) int32 {
	if percent <= 0 {
		percent = defaultMaxScaleDownPercent
	}
	return max(replicas*percent/100, 1)
}

// fleetSpecInStep says whether a cluster's app has the hub app's spec, but
// for replicas and versions (which step decides).
func fleetSpecInStep(hubApp, clusterApp *appsv1alpha1.StatelessApp) bool {
	want := clusterSpec(hubApp, 0, version{})
	got := clusterApp.Spec
	got.Replicas, got.AppVersion, got.ConfigVersion = 0, "", ""
	return equality.Semantic.DeepEqual(want, got)
}

// allReady says whether every Active cluster's app is Ready at its version.
func allReady(clusters []clusterView, versionOf func(*clusterView) version) bool {
	for i := range clusters {
		if c := &clusters[i]; c.State == Active && !c.readyAt(versionOf(c)) {
			return false
		}
	}
	return true
}

// release moves the app's release on by one step and returns its new
// status: it starts one when the app's version changes, gives the next wave
// the new version once every released cluster has been Ready at it for the
// soak time, and pauses on an App failure in a released cluster.
func release(app *appsv1alpha1.StatelessApp, last *appsv1alpha1.ReleaseStatus, clusters []clusterView, now time.Time) *appsv1alpha1.ReleaseStatus {
	want := version{app.Spec.AppVersion, app.Spec.ConfigVersion}
	opts := releaseOptions(app)
	t := metav1.NewTime(now)
	var active []string
	for i := range clusters {
		if clusters[i].State == Active {
			active = append(active, clusters[i].Name)
		}
	}

	if last == nil {
		// The app's first version goes everywhere at once: nothing runs yet.
		return &appsv1alpha1.ReleaseStatus{
			AppVersion: want.app, ConfigVersion: want.config, PreviousAppVersion: want.app, PreviousConfigVersion: want.config,
			Phase: PhaseReleased, Released: active, StartTime: &t, CompletionTime: &t,
			Message: fmt.Sprintf("%s runs on every cluster of the app", want),
		}
	}
	rel := last.DeepCopy()
	current := version{rel.AppVersion, rel.ConfigVersion}
	previous := version{rel.PreviousAppVersion, rel.PreviousConfigVersion}
	if want != current {
		switch {
		case want == previous && rel.Phase != PhaseReleased:
			// A rollback of an unfinished release: every cluster at once,
			// to the version they all ran before.
			return &appsv1alpha1.ReleaseStatus{
				AppVersion: want.app, ConfigVersion: want.config, PreviousAppVersion: want.app, PreviousConfigVersion: want.config,
				Phase: PhaseReleased, Released: active, StartTime: &t, CompletionTime: &t,
				Message: fmt.Sprintf("rolled back from %s to %s on every cluster at once", current, want),
			}
		case rel.Phase == PhasePaused || rel.Phase == PhaseBlocked:
			rel.Phase = PhaseBlocked
			rel.Message = fmt.Sprintf("%s is not released: the release of %s is paused (%s); roll it back to %s (kubectl strata release rollback %s) or resume it (kubectl strata release resume %s) first",
				want, current, pausedWhy(rel.Message), previous, ref(app), ref(app))
			return rel
		}
		from := current
		if rel.Phase != PhaseReleased {
			from = previous // a release superseded before it finished
		}
		rel = &appsv1alpha1.ReleaseStatus{
			AppVersion: want.app, ConfigVersion: want.config, PreviousAppVersion: from.app, PreviousConfigVersion: from.config,
			Phase: PhaseReleasing, StartTime: &t,
		}
		current = want
	} else if rel.Phase == PhaseBlocked {
		// The version asked for is the paused release's again.
		rel.Phase = PhasePaused
	}
	if rel.Phase == PhaseReleased {
		rel.Released = mergeReleased(rel.Released, active)
		return rel
	}

	byName := map[string]*clusterView{}
	for i := range clusters {
		byName[clusters[i].Name] = &clusters[i]
	}
	// Failures of the released clusters: App pauses, Infra waits.
	for _, name := range rel.Released {
		c, ok := byName[name]
		if !ok {
			continue
		}
		if v, _ := c.running(); v != current {
			continue
		}
		f := c.failure()
		switch {
		case f == nil:
		case f.Category == appsv1alpha1.AppFailure && opts.ResumeVersion == current.app:
		case f.Category == appsv1alpha1.AppFailure:
			rel.Phase, rel.WaveReadySince, rel.FailedCluster = PhasePaused, nil, name
			rel.Message = fmt.Sprintf("paused at wave %d: App failure in cluster %s: %s: %s; roll back with appVersion %s (kubectl strata release rollback %s), or fix the app and resume (kubectl strata release resume %s)",
				rel.Wave, name, f.Reason, f.Message, previous.app, ref(app), ref(app))
			return rel
		default:
			rel.Phase, rel.WaveReadySince = PhaseWaiting, nil
			rel.Message = fmt.Sprintf("wave %d waits: Infra failure in cluster %s: %s: %s; it goes on once the platform recovers", rel.Wave, name, f.Reason, f.Message)
			return rel
		}
	}
	if rel.FailedCluster != "" {
		if opts.ResumeVersion != current.app {
			return rel // an App failure's pause holds until resumed or rolled back
		}
		rel.FailedCluster = ""
	}
	rel.Phase = PhaseReleasing

	var notReady []string
	for _, name := range rel.Released {
		if c, ok := byName[name]; ok && c.State == Active && !c.readyAt(current) {
			notReady = append(notReady, name)
		}
	}
	switch {
	case len(rel.Released) == 0:
	case len(notReady) > 0:
		rel.WaveReadySince = nil
		rel.Message = fmt.Sprintf("wave %d: %s rolls out to %s", rel.Wave, current, strings.Join(notReady, ", "))
		return rel
	case rel.WaveReadySince == nil:
		rel.WaveReadySince = &t
	}
	if len(rel.Released) > 0 {
		if left := soakLeft(rel, opts, now); left > 0 {
			rel.Message = fmt.Sprintf("wave %d soaks: %s Ready on %s since %s, the next wave in %s",
				rel.Wave, current, strings.Join(rel.Released, ", "), rel.WaveReadySince.UTC().Format(time.RFC3339), left.Round(time.Second))
			return rel
		}
	}

	next := nextWave(active, rel.Released, opts)
	if len(next) == 0 {
		rel.Phase, rel.CompletionTime, rel.WaveReadySince = PhaseReleased, &t, nil
		rel.Message = fmt.Sprintf("%s released to %s in %d waves", current, strings.Join(rel.Released, ", "), rel.Wave)
		return rel
	}
	if opts.Paused {
		rel.Phase = PhasePaused
		rel.Message = fmt.Sprintf("paused by spec.fleet.release.paused before wave %d (%s)", rel.Wave+1, strings.Join(next, ", "))
		return rel
	}
	rel.Wave++
	rel.Released = append(rel.Released, next...)
	rel.WaveReadySince = nil
	rel.Message = fmt.Sprintf("wave %d: %s rolls out to %s", rel.Wave, current, strings.Join(next, ", "))
	return rel
}

// ref names a hub app for kubectl strata: namespace/name.
func ref(app *appsv1alpha1.StatelessApp) string { return app.Namespace + "/" + app.Name }

// releaseOptions are the app's spec.fleet.release, defaulted.
func releaseOptions(app *appsv1alpha1.StatelessApp) appsv1alpha1.Release {
	var r appsv1alpha1.Release
	if app.Spec.Fleet != nil {
		r = app.Spec.Fleet.Release
	}
	if r.ClustersPerWave < 1 {
		r.ClustersPerWave = 1
	}
	return r
}

// nextWave is the clusters the next wave gives the new version: the canary
// cluster (the first active one by name when it names none of them) when
// nothing is released yet, else the next clustersPerWave active clusters
// not released, by name. A cluster that joins during a release is in a
// later wave; one that leaves is skipped.
func nextWave(active, released []string, opts appsv1alpha1.Release) []string {
	var left []string
	for _, c := range slices.Sorted(slices.Values(active)) {
		if !slices.Contains(released, c) {
			left = append(left, c)
		}
	}
	if len(left) == 0 {
		return nil
	}
	if len(released) == 0 {
		if slices.Contains(left, opts.CanaryCluster) {
			return []string{opts.CanaryCluster}
		}
		return left[:1]
	}
	return left[:min(len(left), int(opts.ClustersPerWave))]
}

// mergeReleased adds the active clusters missing from a complete release's
// list (clusters that joined since), keeping its order.
func mergeReleased(released, active []string) []string {
	out := slices.Clone(released)
	for _, c := range slices.Sorted(slices.Values(active)) {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// releaseRequeue is when a soaking wave is done soaking.
func releaseRequeue(app *appsv1alpha1.StatelessApp, rel *appsv1alpha1.ReleaseStatus, now time.Time) time.Duration {
	if rel.Phase != PhaseReleasing || rel.WaveReadySince == nil {
		return steadyInterval
	}
	return max(soakLeft(rel, releaseOptions(app), now), 0) + 100*time.Millisecond
}

// soakLeft is how long the current wave still soaks. The status keeps
// waveReadySince to the second, cut down: a second more makes sure a wave
// never soaks less than soakSeconds.
func soakLeft(rel *appsv1alpha1.ReleaseStatus, opts appsv1alpha1.Release, now time.Time) time.Duration {
	return time.Duration(opts.SoakSeconds)*time.Second + time.Second - now.Sub(rel.WaveReadySince.Time)
}

// pausedWhy is the part of a paused release's message that says why.
func pausedWhy(message string) string {
	if _, why, ok := strings.Cut(message, ": "); ok {
		return why
	}
	return message
}

// clusterStatuses are the hub app's per-cluster status: share is what the
// cluster is meant to have, want what it is asked for now.
func clusterStatuses(clusters []clusterView, shares, want map[string]int32) []appsv1alpha1.ClusterAppStatus {
	out := make([]appsv1alpha1.ClusterAppStatus, 0, len(clusters))
	for i := range clusters {
		c := &clusters[i]
		s := appsv1alpha1.ClusterAppStatus{Cluster: c.Name, State: c.State, Share: shares[c.Name], Replicas: c.replicas(), Message: c.Why}
		if n, ok := want[c.Name]; ok {
			s.Replicas = n
		}
		if c.App != nil {
			s.AppVersion, s.ConfigVersion = c.App.Spec.AppVersion, c.App.Spec.ConfigVersion
			s.ReadyReplicas = c.ready()
			if v, ok := c.running(); ok {
				s.Ready = c.readyAt(v)
			}
			if f := c.failure(); f != nil {
				s.Failure = f.DeepCopy()
			}
		}
		out = append(out, s)
	}
	return out
}

// describeClusters says, for each cluster, why it cannot run the app.
func describeClusters(clusters []clusterView) string {
	if len(clusters) == 0 {
		return "its AppNamespace is on no cluster yet"
	}
	parts := make([]string, 0, len(clusters))
	for i := range clusters {
		parts = append(parts, clusters[i].Name+" "+strings.ToLower(clusters[i].State)+": "+clusters[i].Why)
	}
	return strings.Join(parts, "; ")
}

// setCondition sets one condition of the hub app's status; the transition
// time stays while its status does.
func setCondition(status *appsv1alpha1.StatelessAppStatus, app *appsv1alpha1.StatelessApp, t string, ok bool, reason, message string, now time.Time) {
	c := metav1.Condition{Type: t, Status: metav1.ConditionFalse, Reason: reason, Message: truncate(message), ObservedGeneration: app.Generation, LastTransitionTime: metav1.NewTime(now)}
	if ok {
		c.Status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&status.Conditions, c)
}

// maxMessage bounds a condition's message (the API allows 32768).
const maxMessage = 4096

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage-3] + "..."
}
