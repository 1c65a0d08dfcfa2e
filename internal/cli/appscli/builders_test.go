package appscli

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// appNamespaceWrapper builds an AppNamespace.
type appNamespaceWrapper struct{ appsv1alpha1.AppNamespace }

// makeAppNamespace starts an unrouted stateless AppNamespace of profile general.
func makeAppNamespace(name, app string) *appNamespaceWrapper {
	return &appNamespaceWrapper{appsv1alpha1.AppNamespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec:       appsv1alpha1.AppNamespaceSpec{App: app, Tenant: appsv1alpha1.StatelessTenant, NodeProfile: "general"},
	}}
}

func (w *appNamespaceWrapper) profile(p string) *appNamespaceWrapper {
	w.Spec.NodeProfile = p
	return w
}

func (w *appNamespaceWrapper) owner(kind appsv1alpha1.SubjectKind, name string, role appsv1alpha1.OwnerRole) *appNamespaceWrapper {
	w.Spec.Owners = append(w.Spec.Owners, appsv1alpha1.Owner{Kind: kind, Name: name, Role: role})
	return w
}

// routed sets status.cluster and namespace, and Ready True.
func (w *appNamespaceWrapper) routed(cluster string) *appNamespaceWrapper {
	w.Status.Cluster, w.Status.Namespace = cluster, w.Name
	return w.ready(metav1.ConditionTrue, appsv1alpha1.NamespaceReadyReason, "")
}

func (w *appNamespaceWrapper) ready(status metav1.ConditionStatus, reason, message string) *appNamespaceWrapper {
	w.Status.Conditions = []metav1.Condition{{Type: appsv1alpha1.AppNamespaceReadyCondition, Status: status, Reason: reason, Message: message}}
	return w
}

func (w *appNamespaceWrapper) obj() *appsv1alpha1.AppNamespace { return &w.AppNamespace }

// statelessAppWrapper builds a StatelessApp.
type statelessAppWrapper struct{ appsv1alpha1.StatelessApp }

// makeStatelessApp starts an app of namespace shop, version 1.0 (config 1),
// whose status is of its generation, with no conditions.
func makeStatelessApp(name string, replicas int32) *statelessAppWrapper {
	return &statelessAppWrapper{appsv1alpha1.StatelessApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Generation: 1},
		Spec: appsv1alpha1.StatelessAppSpec{
			Application: name, AppVersion: "1.0", ConfigVersion: "1", Replicas: replicas, Port: 8080,
			Resources:               appsv1alpha1.Resources{CPU: resource.MustParse("500m"), Memory: resource.MustParse("512Mi")},
			ProgressDeadlineSeconds: 600,
		},
		Status: appsv1alpha1.StatelessAppStatus{ObservedGeneration: 1, Replicas: replicas},
	}}
}

func (w *statelessAppWrapper) canary(version string, percent int32) *statelessAppWrapper {
	w.Spec.Canary = &appsv1alpha1.Canary{AppVersion: version, Percent: percent}
	return w
}

func (w *statelessAppWrapper) generation(spec, observed int64) *statelessAppWrapper {
	w.Generation, w.Status.ObservedGeneration = spec, observed
	return w
}

// tracks sets the ready and wanted replicas of each track (canary when
// canaryWant > 0) and in all; every replica is updated.
func (w *statelessAppWrapper) tracks(stableReady, stableWant, canaryReady, canaryWant int32) *statelessAppWrapper {
	w.Status.Stable = appsv1alpha1.TrackStatus{AppVersion: w.Spec.AppVersion, Replicas: stableWant, UpdatedReplicas: stableWant, ReadyReplicas: stableReady}
	w.Status.ReadyReplicas = stableReady + canaryReady
	if canaryWant > 0 {
		w.Status.Canary = &appsv1alpha1.TrackStatus{AppVersion: w.Spec.Canary.AppVersion, Replicas: canaryWant, UpdatedReplicas: canaryWant, ReadyReplicas: canaryReady}
	}
	return w
}

func (w *statelessAppWrapper) condition(typ string, status metav1.ConditionStatus, reason, message string) *statelessAppWrapper {
	w.Status.Conditions = append(w.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message})
	return w
}

// readyConditions are those of an app that runs as asked.
func (w *statelessAppWrapper) readyConditions() *statelessAppWrapper {
	return w.condition(appsv1alpha1.StatelessAppReadyCondition, metav1.ConditionTrue, appsv1alpha1.AvailableReason, "").
		condition(appsv1alpha1.StatelessAppProgressingCondition, metav1.ConditionFalse, appsv1alpha1.RolledOutReason, "").
		condition(appsv1alpha1.StatelessAppDegradedCondition, metav1.ConditionFalse, appsv1alpha1.NoFailureReason, "")
}

func (w *statelessAppWrapper) failure(category appsv1alpha1.FailureCategory, reason, message string, failing int32, pods ...string) *statelessAppWrapper {
	w.Status.Failure = &appsv1alpha1.Failure{Category: category, Reason: reason, Message: message, Pods: pods, FailingPods: failing}
	return w
}

func (w *statelessAppWrapper) obj() *appsv1alpha1.StatelessApp { return &w.StatelessApp }
