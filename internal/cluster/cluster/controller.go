// Package cluster runs the hub's Cluster controller: it probes each registered
// workload cluster and reports in status whether the hub can use it, and why not.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/index"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/conflicts"
)

// DefaultProbeInterval is how often a workload cluster is probed when nothing
// on the hub changes: the remote cluster is not watched.
const DefaultProbeInterval = 30 * time.Second

// notReadyProbeInterval is how often a cluster that is not Ready is probed.
const notReadyProbeInterval = 5 * time.Second

// NodeCaches give the cached Nodes of a workload cluster: the hub's
// connections to them (remote.Clusters) hold every Node, trimmed.
type NodeCaches interface {
	Get(ctx context.Context, c *fleetv1alpha1.Cluster) (*remote.Cluster, error)
}

// Reconciler keeps each Cluster's status in step with its workload cluster.
type Reconciler struct {
	client        client.Client
	prober        Prober
	nodes         NodeCaches
	clock         clock.PassiveClock
	probeInterval time.Duration
}

// Options are the Reconciler's dependencies.
type Options struct {
	Client client.Client
	Prober Prober
	// Nodes, when set, are where the Nodes are counted (a list of the
	// cache, no request), and the prober only asks whether the API server
	// is ready (APIProber.ReadinessOnly); unset, the prober counts them.
	Nodes NodeCaches
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
	// ProbeInterval defaults to DefaultProbeInterval.
	ProbeInterval time.Duration
}

// New validates the options and returns a Reconciler.
func New(o Options) (*Reconciler, error) {
	if o.Client == nil {
		return nil, errors.New("cluster controller: a client is required")
	}
	if o.Prober == nil {
		return nil, errors.New("cluster controller: a prober is required")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	return &Reconciler{client: o.Client, prober: o.Prober, nodes: o.Nodes, clock: o.Clock, probeInterval: o.ProbeInterval}, nil
}

// SetupWithManager registers the controller. The manager must have the
// indexes of package index.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.Cluster{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.clustersForSecret)).
		// A Pool's status changes as its Nodes come and go: the cluster's
		// counts are probed again then, not only every probe interval.
		Watches(&fleetv1alpha1.Pool{}, handler.EnqueueRequestsFromMapFunc(clusterOfPool)).
		Named("cluster").
		Complete(conflicts.Requeue(r))
}

// Reconcile probes one workload cluster and writes what it found.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	cluster := &fleetv1alpha1.Cluster{}
	if err := r.client.Get(ctx, req.NamespacedName, cluster); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	logger := log.FromContext(ctx).WithValues("cluster", klog.KObj(cluster))
	ctx = log.IntoContext(ctx, logger)

	obs := r.observe(ctx, cluster)
	status := desiredStatus(cluster, obs, metav1.NewTime(r.clock.Now()))
	if !equality.Semantic.DeepEqual(status, cluster.Status) {
		cluster.Status = status
		// An update, not a merge patch: a patch would leave out zero counts.
		if err := r.client.Status().Update(ctx, cluster); err != nil {
			return reconcile.Result{}, fmt.Errorf("writing status of cluster %q: %w", cluster.Name, err)
		}
		logger.V(1).Info("Updated cluster status", "reason", obs.reason, "nodes", obs.Nodes)
	}
	if obs.reason != fleetv1alpha1.ClusterReachableReason {
		// A cluster that is coming up or failing is looked at again soon.
		return reconcile.Result{RequeueAfter: min(r.probeInterval, notReadyProbeInterval)}, nil
	}
	return reconcile.Result{RequeueAfter: r.probeInterval}, nil
}

// observation is what the hub found when it looked at a workload cluster.
type observation struct {
	reason  string
	message string
	Health
}

// observe reads the kubeconfig Secret and probes the cluster behind it.
func (r *Reconciler) observe(ctx context.Context, cluster *fleetv1alpha1.Cluster) observation {
	kubeconfig, err := remote.Kubeconfig(ctx, r.client, cluster)
	if err != nil {
		return observation{reason: fleetv1alpha1.KubeconfigSecretNotFoundReason, message: err.Error()}
	}
	ref := cluster.Spec.KubeconfigSecretRef
	health, err := r.prober.Probe(ctx, kubeconfig)
	switch {
	case errors.Is(err, remote.ErrInvalidKubeconfig):
		return observation{reason: fleetv1alpha1.KubeconfigInvalidReason,
			message: fmt.Sprintf("Secret %s/%s key %q: %v", ref.Namespace, ref.Name, remote.KubeconfigKey(ref), err)}
	case err != nil:
		return observation{reason: fleetv1alpha1.APIServerUnreachableReason, message: err.Error()}
	}
	if r.nodes != nil {
		if err := r.countCached(ctx, cluster, &health); err != nil && health.Ready {
			return observation{reason: fleetv1alpha1.APIServerUnreachableReason, message: err.Error(), Health: health}
		}
	}
	if !health.Ready {
		return observation{reason: fleetv1alpha1.APIServerNotReadyReason,
			message: "the API server answered /readyz with: " + health.ReadyzMessage, Health: health}
	}
	return observation{reason: fleetv1alpha1.ClusterReachableReason,
		message: fmt.Sprintf("API server %s is ready; %d of %d nodes ready", health.Version, health.ReadyNodes, health.Nodes),
		Health:  health}
}

// countCached fills h's node counts from the cluster's Node cache.
func (r *Reconciler) countCached(ctx context.Context, cluster *fleetv1alpha1.Cluster, h *Health) error {
	rc, err := r.nodes.Get(ctx, cluster)
	if err != nil {
		return fmt.Errorf("reading its Nodes: %w", err)
	}
	nodes := &corev1.NodeList{}
	// Read only: the cached Nodes themselves, not copies of 5,000 of them.
	if err := rc.Client.List(ctx, nodes, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing its Nodes from the cache: %w", err)
	}
	var c nodeCounter
	for i := range nodes.Items {
		c.add(&nodes.Items[i])
	}
	c.fill(h)
	return nil
}

// desiredStatus is the status that a Cluster should have given an observation.
// It keeps condition transition times that did not change.
func desiredStatus(cluster *fleetv1alpha1.Cluster, obs observation, now metav1.Time) fleetv1alpha1.ClusterStatus {
	status := *cluster.Status.DeepCopy()
	status.ObservedGeneration = cluster.Generation
	conditionStatus := metav1.ConditionFalse
	if obs.reason == fleetv1alpha1.ClusterReachableReason {
		conditionStatus = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type:               fleetv1alpha1.ClusterReadyCondition,
		Status:             conditionStatus,
		ObservedGeneration: cluster.Generation,
		LastTransitionTime: now,
		Reason:             obs.reason,
		Message:            obs.message,
	})
	// What could not be observed is left as it was last seen, except the counts
	// of an unreachable cluster, which are no longer known.
	if obs.Version != "" {
		status.KubernetesVersion = obs.Version
	}
	status.Nodes = obs.Nodes
	status.ReadyNodes = obs.ReadyNodes
	status.Profiles = obs.Profiles
	status.Allocatable = obs.Allocatable
	return status
}

// clusterOfPool maps a Pool to its Cluster.
func clusterOfPool(_ context.Context, obj client.Object) []reconcile.Request {
	p, ok := obj.(*fleetv1alpha1.Pool)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: p.Spec.Cluster}}}
}

// clustersForSecret maps a Secret to the Clusters whose kubeconfig it holds.
func (r *Reconciler) clustersForSecret(ctx context.Context, obj client.Object) []reconcile.Request {
	clusters := &fleetv1alpha1.ClusterList{}
	if err := r.client.List(ctx, clusters, client.MatchingFields{
		index.ClusterKubeconfigSecret: index.SecretKey(obj.GetNamespace(), obj.GetName()),
	}); err != nil {
		log.FromContext(ctx).Error(err, "Listing clusters that use a kubeconfig Secret", "secret", klog.KObj(obj))
		return nil
	}
	requests := make([]reconcile.Request, 0, len(clusters.Items))
	for i := range clusters.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&clusters.Items[i])})
	}
	return requests
}
