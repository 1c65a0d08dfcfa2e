package appscli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

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

func (w *appNamespaceWrapper) stateful() *appNamespaceWrapper {
	w.Spec.Tenant = appsv1alpha1.StatefulTenant
	return w
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

// statefulAppWrapper builds a StatefulApp.
type statefulAppWrapper struct{ appsv1alpha1.StatefulApp }

// makeStatefulApp starts an app of namespace store, version 1.0, whose
// status is of its generation, with no pods and no conditions.
func makeStatefulApp(name string, replicas int32) *statefulAppWrapper {
	return &statefulAppWrapper{appsv1alpha1.StatefulApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: name, Generation: 1},
		Spec: appsv1alpha1.StatefulAppSpec{
			Application: name, Version: "1.0", Replicas: replicas, Port: 8080,
			Resources:               appsv1alpha1.Resources{CPU: resource.MustParse("2"), Memory: resource.MustParse("8Gi")},
			Storage:                 appsv1alpha1.Storage{Size: resource.MustParse("500Gi"), StorageClassName: appsv1alpha1.LocalSSDStorageClass},
			ShardManager:            appsv1alpha1.ShardManager{Endpoint: "127.0.0.1:7443", Transport: appsv1alpha1.TransportPlaintext, CallTimeoutSeconds: 5, ApprovalSeconds: 300},
			MaxConcurrentOperations: 1,
		},
		Status: appsv1alpha1.StatefulAppStatus{ObservedGeneration: 1, Replicas: replicas},
	}}
}

func (w *statefulAppWrapper) endpoint(e string) *statefulAppWrapper {
	w.Spec.ShardManager.Endpoint = e
	return w
}

// tls dials the shard manager over TLS, verified with the CA in key
// ca.crt of Secret secret.
func (w *statefulAppWrapper) tls(secret string) *statefulAppWrapper {
	w.Spec.ShardManager.Transport = appsv1alpha1.TransportTLS
	w.Spec.ShardManager.TLS = &appsv1alpha1.ShardManagerTLS{CASecretRef: appsv1alpha1.SecretKeyRef{Name: secret}}
	return w
}

func (w *statefulAppWrapper) canary(version string, replicas int32) *statefulAppWrapper {
	w.Spec.Canary = &appsv1alpha1.StatefulCanary{Version: version, Replicas: replicas}
	return w
}

func (w *statefulAppWrapper) generation(spec, observed int64) *statefulAppWrapper {
	w.Generation, w.Status.ObservedGeneration = spec, observed
	return w
}

// pod adds a pod to the status; the ready and updated counts follow.
func (w *statefulAppWrapper) pod(name, node, version string, ready bool) *statefulAppWrapper {
	w.Status.Pods = append(w.Status.Pods, appsv1alpha1.StatefulPodStatus{Name: name, Node: node, Version: version, Ready: ready})
	if ready {
		w.Status.ReadyReplicas++
	}
	want := w.Spec.Version
	if c := w.Spec.Canary; c != nil && int32(len(w.Status.Pods)) > w.Spec.Replicas-c.Replicas {
		want = c.Version
	}
	if version == want {
		w.Status.UpdatedReplicas++
	}
	return w
}

// operation sets the operation of the last pod added.
func (w *statefulAppWrapper) operation(kind, reason string, state appsv1alpha1.OperationState, message string, since time.Time) *statefulAppWrapper {
	p := &w.Status.Pods[len(w.Status.Pods)-1]
	p.Operation = &appsv1alpha1.PodOperation{
		ID:   fmt.Sprintf("%s/%s/%s/%s/1", w.Namespace, w.Name, p.Name, strings.ToUpper(kind)),
		Kind: kind, Reason: reason, State: state, Message: message, Since: metav1.NewTime(since),
	}
	return w
}

func (w *statefulAppWrapper) condition(typ string, status metav1.ConditionStatus, reason, message string) *statefulAppWrapper {
	w.Status.Conditions = append(w.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message})
	return w
}

// readyConditions are those of an app that runs as asked.
func (w *statefulAppWrapper) readyConditions() *statefulAppWrapper {
	return w.condition(appsv1alpha1.StatefulAppReadyCondition, metav1.ConditionTrue, "AllPodsReady", "").
		condition(appsv1alpha1.StatefulAppProgressingCondition, metav1.ConditionFalse, "Idle", "").
		condition(appsv1alpha1.ShardManagerReachableCondition, metav1.ConditionTrue, appsv1alpha1.ShardManagerAnsweredReason, "")
}

func (w *statefulAppWrapper) obj() *appsv1alpha1.StatefulApp { return &w.StatefulApp }

// podShards are a pod's replicas, each "<shard><L|F>[!]": leader or
// follower, ! when out of sync.
func podShards(pod string, available bool, replicas ...string) PodShards {
	p := PodShards{Pod: pod, Available: available}
	for _, r := range replicas {
		inSync := !strings.HasSuffix(r, "!")
		r = strings.TrimSuffix(r, "!")
		role := followerRole
		if strings.HasSuffix(r, "L") {
			role = leaderRole
		}
		shard, err := strconv.Atoi(r[:len(r)-1])
		if err != nil {
			panic(err)
		}
		p.Replicas = append(p.Replicas, Replica{Shard: int32(shard), Role: role, InSync: inSync}) //nolint:gosec // small test numbers
	}
	return p
}

// placed puts the AppNamespace on clusters (the first is status.cluster),
// each placement with a reason, and Ready True.
func (w *appNamespaceWrapper) placed(clusters ...string) *appNamespaceWrapper {
	w.routed(clusters[0])
	w.Status.Clusters = clusters
	for _, c := range clusters {
		w.Status.Placements = append(w.Status.Placements, appsv1alpha1.ClusterPlacement{Cluster: c, Reason: "room for profile general in " + c})
	}
	return w
}

// hubApp makes the StatelessApp one declared on the hub, released at its
// version with nothing previous, Ready.
func (w *statelessAppWrapper) hubApp() *statelessAppWrapper {
	w.Spec.Fleet = &appsv1alpha1.Fleet{Release: appsv1alpha1.Release{ClustersPerWave: 1, SoakSeconds: 60}}
	return w
}

// inCluster adds the app's status in a cluster: Active and Ready at the
// app's versions with share replicas, unless changed after.
func (w *statelessAppWrapper) inCluster(cluster string, share int32) *statelessAppWrapper {
	w.Status.Clusters = append(w.Status.Clusters, appsv1alpha1.ClusterAppStatus{
		Cluster: cluster, State: "Active", Replicas: share, Share: share, ReadyReplicas: share,
		AppVersion: w.Spec.AppVersion, ConfigVersion: w.Spec.ConfigVersion, Ready: true,
	})
	return w
}

// clusterStatus edits the status of the last cluster added.
func (w *statelessAppWrapper) clusterStatus(edit func(*appsv1alpha1.ClusterAppStatus)) *statelessAppWrapper {
	edit(&w.Status.Clusters[len(w.Status.Clusters)-1])
	return w
}

// release sets status.release: from the previous versions to the app's,
// in phase at wave, released to those clusters.
func (w *statelessAppWrapper) release(prevApp, prevConfig, phase string, wave int32, message string, released ...string) *statelessAppWrapper {
	start := metav1.NewTime(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	w.Status.Release = &appsv1alpha1.ReleaseStatus{
		AppVersion: w.Spec.AppVersion, ConfigVersion: w.Spec.ConfigVersion,
		PreviousAppVersion: prevApp, PreviousConfigVersion: prevConfig,
		Phase: phase, Wave: wave, Released: released, StartTime: &start, Message: message,
	}
	return w
}

// version sets the app's versions.
func (w *statelessAppWrapper) version(app, config string) *statelessAppWrapper {
	w.Spec.AppVersion, w.Spec.ConfigVersion = app, config
	return w
}
