package appnamespace

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// hubPlace names the hub in messages.
const hubPlace = "the hub"

// reconcileBatch keeps the namespace of a tenant batch app namespace on
// the hub, where its jobs are submitted, and on every Ready workload
// cluster, where MultiKueue runs their copies: labels and owners'
// RoleBindings, no ResourceQuota (the BatchQueue is the quota). A cluster
// that cannot be written does not hold back the others; it is named in
// the Ready condition and retried.
func (r *Reconciler) reconcileBatch(ctx context.Context, an *appsv1alpha1.AppNamespace) (outcome, error) {
	terminating, err := r.write(ctx, an, r.onHub(nil))
	switch {
	case err != nil:
		return outcome{}, err
	case terminating:
		return outcome{reason: appsv1alpha1.DeletingNamespaceReason, message: fmt.Sprintf(
			"namespace %s on the hub is being deleted, though not by Strata; it is made again once it is gone", an.Name)}, nil
	}
	clusters := &fleetv1alpha1.ClusterList{}
	if err := r.hub.List(ctx, clusters); err != nil {
		return outcome{}, fmt.Errorf("listing clusters: %w", err)
	}
	slices.SortFunc(clusters.Items, func(a, b fleetv1alpha1.Cluster) int { return strings.Compare(a.Name, b.Name) })
	var written, notReady, failed []string
	for i := range clusters.Items {
		c := &clusters.Items[i]
		if !c.DeletionTimestamp.IsZero() {
			continue
		}
		if ok, why := clusterReady(c); !ok {
			notReady = append(notReady, c.Name+" ("+why+")")
			continue
		}
		rc, err := r.clusters.Get(ctx, c)
		if err != nil {
			failed = append(failed, err.Error())
			continue
		}
		terminating, err := r.write(ctx, an, target{name: "cluster " + c.Name, client: rc.Client, reader: rc.APIReader})
		switch {
		case err != nil:
			failed = append(failed, err.Error())
		case terminating:
			failed = append(failed, fmt.Sprintf("namespace %s in cluster %s is being deleted, though not by Strata; it is made again once it is gone", an.Name, c.Name))
		default:
			written = append(written, c.Name)
		}
	}
	out := batchOutcome(an, written, notReady, failed)
	if out.reason != appsv1alpha1.NamespaceReadyReason {
		return out, nil
	}
	reason, why, err := r.queueProblem(ctx, an)
	if err != nil || reason == "" {
		return out, err
	}
	return outcome{clusters: written, reason: reason, message: why + "; " + out.message}, nil
}

// queueProblem says why the BatchQueue a batch app namespace names cannot
// take its jobs, if it cannot: it does not exist, or it is a parent (a
// Cohort in Kueue, with no queue of its own).
func (r *Reconciler) queueProblem(ctx context.Context, an *appsv1alpha1.AppNamespace) (string, string, error) {
	queues := &appsv1alpha1.BatchQueueList{}
	if err := r.hub.List(ctx, queues); err != nil {
		return "", "", fmt.Errorf("listing batch queues: %w", err)
	}
	name := an.Spec.BatchQueue
	var children []string
	found := false
	for i := range queues.Items {
		q := &queues.Items[i]
		found = found || q.Name == name
		if q.Spec.Parent == name {
			children = append(children, q.Name)
		}
	}
	switch {
	case !found:
		return appsv1alpha1.BatchQueueNotFoundReason, fmt.Sprintf(
			"BatchQueue %s does not exist: jobs submitted in namespace %s wait until it does", name, an.Name), nil
	case len(children) > 0:
		slices.Sort(children)
		return appsv1alpha1.BatchQueueIsParentReason, fmt.Sprintf(
			"BatchQueue %s is a parent: it lends its quota to %s and takes no jobs itself; name one of those in spec.batchQueue",
			name, strings.Join(children, ", ")), nil
	}
	return "", "", nil
}

// batchOutcome is the Ready condition of a batch app namespace written to
// the hub and the written clusters: a failed cluster makes it
// ClusterUnavailable; a cluster not Ready is only mentioned (jobs are not
// sent there), and gets the namespace once it is Ready.
func batchOutcome(an *appsv1alpha1.AppNamespace, written, notReady, failed []string) outcome {
	where := "on the hub and in no workload cluster"
	if len(written) > 0 {
		where = "on the hub and in workload clusters " + strings.Join(written, ", ")
	}
	msg := fmt.Sprintf("namespace %s %s, %s, no ResourceQuota: BatchQueue %s is its quota", an.Name, where, countOwners(len(an.Spec.Owners)), an.Spec.BatchQueue)
	if len(notReady) > 0 {
		msg += "; not in " + strings.Join(notReady, ", ") + " until Ready"
	}
	if len(failed) > 0 {
		return outcome{clusters: written, reason: appsv1alpha1.ClusterUnavailableReason, message: strings.Join(failed, "; ") + "; " + msg}
	}
	return outcome{clusters: written, reason: appsv1alpha1.NamespaceReadyReason, message: msg}
}

// reconcileBatchDelete deletes the namespace of a batch app namespace on
// every registered workload cluster and on the hub, and lets the app
// namespace go once all are gone. A cluster that cannot be reached, or
// whose guardrails refuse (the namespace still runs jobs), keeps it, as
// for the other tenants.
func (r *Reconciler) reconcileBatchDelete(ctx context.Context, an *appsv1alpha1.AppNamespace) (reconcile.Result, error) {
	clusters := &fleetv1alpha1.ClusterList{}
	if err := r.hub.List(ctx, clusters); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing clusters: %w", err)
	}
	names := make([]string, 0, len(clusters.Items))
	for i := range clusters.Items {
		names = append(names, clusters.Items[i].Name)
	}
	slices.Sort(names)
	left, worst := r.deleteInClusters(ctx, an.Name, names)
	if step := r.deleteNamespace(ctx, an.Name, r.onHub(nil)); step.reason != "" {
		worst = worse(worst, step)
	}
	if worst.reason == "" {
		return r.release(ctx, an, "its namespace is gone from the hub and every workload cluster")
	}
	if worst.err != nil {
		return reconcile.Result{}, worst.err
	}
	log.FromContext(ctx).Info("Deleting the batch namespace", "left", left)
	return r.finish(ctx, an, outcome{clusters: left, reason: worst.reason, message: worst.message, terminating: worst.terminating})
}

// deleteInClusters deletes the namespace made for the app namespace name in
// the named workload clusters. It returns those that still have it, and
// the step a person should see first.
func (r *Reconciler) deleteInClusters(ctx context.Context, name string, clusters []string) ([]string, deletionStep) {
	var left []string
	worst := deletionStep{}
	for _, c := range clusters {
		rc, why := r.connect(ctx, c)
		step := deletionStep{reason: appsv1alpha1.ClusterUnavailableReason, message: why}
		if why == "" {
			step = r.deleteNamespace(ctx, name, target{name: "cluster " + c, client: rc.Client, reader: rc.APIReader})
		}
		if step.reason != "" {
			left = append(left, c)
			worst = worse(worst, step)
		}
	}
	return left, worst
}

// deletionStep is where the deletion of a namespace in one place stands:
// no reason once it is gone.
type deletionStep struct {
	reason, message string
	err             error
	// terminating: a namespace is terminating in some place, whatever
	// the reason shown (a cluster unreachable outranks it).
	terminating bool
}

// deletionSeverity orders the reasons of deletion steps: the one a person
// must act on first.
var deletionSeverity = map[string]int{
	appsv1alpha1.DeletingNamespaceReason:  1,
	appsv1alpha1.ClusterUnavailableReason: 2,
	appsv1alpha1.NamespaceNotEmptyReason:  3,
}

func worse(a, b deletionStep) deletionStep {
	w := a
	if b.err != nil || deletionSeverity[b.reason] > deletionSeverity[a.reason] {
		w = b
	}
	w.terminating = a.terminating || b.terminating ||
		a.reason == appsv1alpha1.DeletingNamespaceReason || b.reason == appsv1alpha1.DeletingNamespaceReason
	return w
}

// deleteNamespace deletes the namespace made for the app namespace name in
// one place, unless it is gone or was not made for it.
func (r *Reconciler) deleteNamespace(ctx context.Context, name string, in target) deletionStep {
	ns := &corev1.Namespace{}
	err := in.reader.Get(ctx, client.ObjectKey{Name: name}, ns)
	switch {
	case apierrors.IsNotFound(err):
		return deletionStep{}
	case err != nil:
		return deletionStep{reason: appsv1alpha1.ClusterUnavailableReason, message: fmt.Sprintf("reading namespace %s in %s: %v", name, in.name, err)}
	case ns.Labels[appsv1alpha1.AppNamespaceLabel] != name:
		return deletionStep{}
	case !ns.DeletionTimestamp.IsZero():
		return deletionStep{reason: appsv1alpha1.DeletingNamespaceReason, message: fmt.Sprintf("namespace %s in %s is terminating", name, in.name)}
	}
	err = in.client.Delete(ctx, ns, client.Preconditions{UID: &ns.UID})
	switch {
	case apierrors.IsNotFound(err):
		return deletionStep{}
	case apierrors.IsForbidden(err) || apierrors.IsInvalid(err):
		// The guardrails' word, as the API server gave it.
		return deletionStep{reason: appsv1alpha1.NamespaceNotEmptyReason,
			message: fmt.Sprintf("deleting namespace %s in %s was refused, retrying: %v", name, in.name, err)}
	case err != nil:
		return deletionStep{err: fmt.Errorf("deleting namespace %s in %s: %w", name, in.name, err)}
	}
	log.FromContext(ctx).Info("Deleting the namespace", "in", in.name)
	return deletionStep{reason: appsv1alpha1.DeletingNamespaceReason, message: fmt.Sprintf("namespace %s in %s is terminating", name, in.name)}
}
