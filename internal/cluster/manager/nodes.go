package manager

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/brokerapi"
	"github.com/strata-dev/strata/internal/cluster/drain"
	"github.com/strata-dev/strata/internal/cluster/nodeutil"
	"github.com/strata-dev/strata/internal/cluster/remote"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// Drain pass pacing: a Node whose pods are on their way out is looked at
// again soon; one whose evictions a PodDisruptionBudget refuses backs off
// exponentially, per Node, up to refusedMaxDelay; a pass that failed is
// tried again after retryDelay.
const (
	progressDelay   = 2 * time.Second
	refusedMaxDelay = 30 * time.Second
	retryDelay      = 5 * time.Second
)

// NonInterruptibleEvictedReason is the Event reason, on the Node, of the
// eviction of a non-interruptible pod (drain.NonInterruptibleAnnotation)
// once the drain's deadline passed.
const NonInterruptibleEvictedReason = "NonInterruptibleEvicted"

// eventNamespace holds the Events about Nodes, as the kubelet's do.
const eventNamespace = metav1.NamespaceDefault

// clusterState is what the manager remembers of a cluster between passes.
// The Nodes' annotations are the record that survives a restart; this is
// pacing and bookkeeping only.
type clusterState struct {
	// drains is keyed by disruption ID. A pass creates the entries it needs
	// before it starts its workers, and each worker touches only its own.
	drains map[string]*drainState

	mu sync.Mutex
	// unrecorded are steps the broker did not take yet.
	unrecorded []update
}

// drainState paces the drain of one Node for one disruption.
type drainState struct {
	// next is when the next pass is due.
	next time.Time
	// refusals counts the passes in a row whose evictions were all refused.
	refusals int
	// evicted are the pods evicted so far (by this process), by UID.
	evicted sets.Set[types.UID]
	// drainedRecorded and overdueRecorded say that the step was recorded.
	drainedRecorded, overdueRecorded bool
}

// pace schedules the next pass after one that left pods on the Node: soon
// while pods leave, with a per-Node exponential backoff while a
// PodDisruptionBudget refuses every eviction (429), or while only
// non-interruptible pods are left to finish.
func (ds *drainState) pace(res drain.Result, now time.Time) {
	// Waiting for a non-interruptible pod to finish is paced as a refusal.
	held := len(res.Blocked) + len(res.Waiting)
	switch {
	case res.Evicted > 0:
		ds.refusals = 0
	case held > 0:
		ds.refusals++
	}
	delay := progressDelay
	if held > 0 {
		delay = min(time.Second<<max(ds.refusals-1, 0), refusedMaxDelay)
	}
	ds.next = now.Add(delay)
}

// clusterPass is one pass over one cluster.
type clusterPass struct {
	*Reconciler
	cluster string
	actor   string
	rc      *remote.Cluster
	state   *clusterState
	now     time.Time
	// journal holds the steps the pass takes, sent to the broker at its end.
	journal journal
}

// world is what a pass found.
type world struct {
	// nodes are the cluster's Pool Nodes, by machine, from the cache.
	nodes map[string]*corev1.Node
	// open are the open disruptions of the cluster's machines, by machine.
	open map[string]*brokerv1.Disruption
}

// observe reads the cluster's Nodes, then the broker's disruptions. Nodes
// first: a Node marked for a disruption was marked after that disruption
// existed, so the disruptions read afterwards show whether it is still open.
func (p *clusterPass) observe(ctx context.Context, cluster *fleetv1alpha1.Cluster) (world, error) {
	list := &corev1.NodeList{}
	if err := p.rc.Client.List(ctx, list); err != nil {
		return world{}, fmt.Errorf("listing the nodes of cluster %s: %w", p.cluster, err)
	}
	w := world{nodes: make(map[string]*corev1.Node, len(list.Items))}
	for i := range list.Items {
		w.nodes[nodeutil.Machine(&list.Items[i])] = &list.Items[i]
	}
	pools, err := p.clusterPools(ctx)
	if err != nil {
		return world{}, err
	}
	if w.open, err = p.openDisruptions(ctx, cluster.Spec.Datacenter, pools); err != nil {
		return world{}, err
	}
	return w, nil
}

// nodeResult is what became of one Node in a pass.
type nodeResult struct {
	// draining: the Node is being drained; its next pass is due at next.
	draining bool
	next     time.Time
	overdue  *overdueDrain
}

// passResult sums up a pass.
type passResult struct {
	draining int
	// nextDrain is when the earliest drain pass is due, zero if none.
	nextDrain time.Time
	// overdue are the drains past their deadline, by Node.
	overdue []overdueDrain
	// failed counts the Nodes that could not be brought in step.
	failed int
}

// syncNodes brings every Node of the cluster in step with the disruption of
// its machine, a bounded number at once. An error on one Node is logged and
// counted; it does not stop the others.
func (p *clusterPass) syncNodes(ctx context.Context, w world) passResult {
	var (
		mu  sync.Mutex
		out passResult
	)
	pending := map[string]bool{}
	g := &errgroup.Group{}
	g.SetLimit(p.workers)
	run := func(node *corev1.Node, machine string, open *brokerv1.Disruption, fn func(context.Context) (nodeResult, error)) {
		g.Go(func() error {
			res, err := fn(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.failed++
				log.FromContext(ctx).Error(err, "Bringing a node in step with its disruption", "node", klog.KObj(node),
					"machine", machine, "disruption", open.GetId())
			}
			if res.draining {
				out.draining++
				if out.nextDrain.IsZero() || res.next.Before(out.nextDrain) {
					out.nextDrain = res.next
				}
			}
			if res.overdue != nil {
				out.overdue = append(out.overdue, *res.overdue)
			}
			return nil
		})
	}
	for machine, node := range w.nodes {
		open := w.open[machine]
		if planNode(node, open).idle() {
			continue
		}
		ds := p.drainState(open, pending)
		run(node, machine, open, func(ctx context.Context) (nodeResult, error) { return p.syncNode(ctx, node, open, ds) })
	}
	for machine, open := range w.open {
		if _, ok := w.nodes[machine]; ok || open.GetState() != brokerv1.DisruptionState_DISRUPTION_STATE_PENDING {
			continue
		}
		ds := p.drainState(open, pending)
		run(nil, machine, open, func(ctx context.Context) (nodeResult, error) { return p.syncNodeless(ctx, open, ds) })
	}
	_ = g.Wait() // the workers return no error: each is logged and counted
	// The steps of every Node go to the broker in one transaction.
	if p.flush(ctx) {
		out.failed++
	}
	for id := range p.state.drains {
		if !pending[id] {
			delete(p.state.drains, id) // the drain is over
		}
	}
	slices.SortFunc(out.overdue, func(a, b overdueDrain) int { return strings.Compare(a.node, b.node) })
	return out
}

// drainState returns the pacing of a Pending disruption's drain, nil for
// any other.
func (p *clusterPass) drainState(open *brokerv1.Disruption, pending map[string]bool) *drainState {
	if open.GetState() != brokerv1.DisruptionState_DISRUPTION_STATE_PENDING {
		return nil
	}
	pending[open.GetId()] = true
	ds, ok := p.state.drains[open.GetId()]
	if !ok {
		ds = &drainState{}
		p.state.drains[open.GetId()] = ds
	}
	return ds
}

// syncNodeless handles a Pending disruption of a machine with no Node in the
// cache. The API server, not the cache, has the last word: a Node that
// exists (without the Pool label, or not in the cache yet) is drained.
func (p *clusterPass) syncNodeless(ctx context.Context, open *brokerv1.Disruption, ds *drainState) (nodeResult, error) {
	node := &corev1.Node{}
	err := p.rc.APIReader.Get(ctx, client.ObjectKey{Name: open.GetMachine()}, node)
	switch {
	case err == nil:
		return p.syncNode(ctx, node, open, ds)
	case !apierrors.IsNotFound(err):
		return nodeResult{}, fmt.Errorf("reading node %s: %w", open.GetMachine(), err)
	}
	p.approve(open, fmt.Sprintf("machine %s has no Node in cluster %s: nothing to drain", open.GetMachine(), p.cluster))
	return nodeResult{}, nil
}

// syncNode carries out the plan for one Node.
func (p *clusterPass) syncNode(ctx context.Context, node *corev1.Node, open *brokerv1.Disruption, ds *drainState) (nodeResult, error) {
	pl := planNode(node, open)
	if pl.uncordonFor != "" {
		return nodeResult{}, p.uncordon(ctx, node, pl.uncordonFor)
	}
	node, err := p.mark(ctx, node, open, pl)
	if err != nil || node == nil || !pl.drain {
		return nodeResult{}, err
	}
	return p.drain(ctx, node, open, ds)
}

// mark cordons the Node and records the drain's start, or clears the marks
// of a drain that is over, then records what it did. It returns the Node as
// written, or nil when the Node changed meanwhile (its event brings it back).
func (p *clusterPass) mark(ctx context.Context, node *corev1.Node, open *brokerv1.Disruption, pl plan) (*corev1.Node, error) {
	patched := node.DeepCopy()
	changed := false
	if pl.cordon || pl.takeOverFrom != "" {
		patched.Spec.Unschedulable = true
		changed = nodeutil.SetAnnotation(patched, fleetv1alpha1.CordonedForAnnotation, open.GetId()) || pl.cordon
	}
	if pl.startDrain {
		changed = nodeutil.SetAnnotation(patched, fleetv1alpha1.DrainStartedAnnotation, p.now.UTC().Format(time.RFC3339)) || changed
	}
	if pl.clearDrain {
		changed = nodeutil.SetAnnotation(patched, fleetv1alpha1.DrainStartedAnnotation, "") || changed
		changed = nodeutil.SetAnnotation(patched, fleetv1alpha1.DrainBlockedAnnotation, "") || changed
	}
	if !changed {
		return node, nil
	}
	if ok, err := p.patchNode(ctx, node, patched); !ok || err != nil {
		return nil, err
	}
	reason := reasonName(open.GetReason())
	switch {
	case pl.cordon:
		p.note(ctx, patched, open.GetId(), corev1.EventTypeNormal, "Cordoned", fmt.Sprintf("cordoned node %s for %s", node.Name, reason))
	case pl.takeOverFrom != "":
		p.note(ctx, patched, open.GetId(), corev1.EventTypeNormal, "Cordoned", fmt.Sprintf(
			"node %s stays cordoned, now for %s: Strata cordoned it for disruption %s, which is over", node.Name, reason, pl.takeOverFrom))
	case pl.foreignCordon:
		p.note(ctx, patched, open.GetId(), corev1.EventTypeNormal, "AlreadyCordoned", fmt.Sprintf(
			"node %s was already cordoned by someone else: draining it for %s without taking over that cordon, which Strata never undoes",
			node.Name, reason))
	}
	return patched, nil
}

// drain runs a drain pass when one is due, and approves the disruption once
// the Node is empty.
func (p *clusterPass) drain(ctx context.Context, node *corev1.Node, open *brokerv1.Disruption, ds *drainState) (nodeResult, error) {
	if p.now.Before(ds.next) {
		blocked := strings.Split(node.Annotations[fleetv1alpha1.DrainBlockedAnnotation], "\n")
		return nodeResult{draining: true, next: ds.next, overdue: p.overdue(ctx, node, open, ds, slices.DeleteFunc(blocked, isEmpty))}, nil
	}
	started, ok := drainStarted(node)
	pastDeadline := ok && p.now.Sub(started) >= p.deadline
	res, err := drain.Pass(ctx, p.rc.Client, node, p.now, pastDeadline)
	if ds.evicted == nil {
		ds.evicted = sets.New[types.UID]()
	}
	ds.evicted.Insert(res.EvictedPods...)
	reason := reasonName(open.GetReason())
	// Each non-interruptible pod is evicted once: afterwards it is leaving.
	for _, f := range res.Forced {
		p.note(ctx, node, open.GetId(), corev1.EventTypeWarning, NonInterruptibleEvictedReason, fmt.Sprintf(
			"evicted non-interruptible pod %s/%s (%s) from node %s for %s: the drain's deadline of %s passed",
			f.Namespace, f.Name, f.Whose(), node.Name, reason, p.deadline))
	}
	if err != nil {
		ds.next = p.now.Add(retryDelay)
		return nodeResult{draining: true, next: ds.next}, err
	}
	if res.Drained() {
		if !ds.drainedRecorded {
			p.note(ctx, node, open.GetId(), corev1.EventTypeNormal, "Drained",
				fmt.Sprintf("drained node %s for %s: evicted %d pods", node.Name, reason, ds.evicted.Len()))
			ds.drainedRecorded = true
		}
		p.approve(open, fmt.Sprintf("node %s is drained", node.Name))
		return nodeResult{}, nil
	}
	ds.pace(res, p.now)
	if deadline := started.Add(p.deadline); len(res.Waiting) > 0 && ok && deadline.Before(ds.next) {
		ds.next = deadline // the non-interruptible pods go then
	}
	blocked := p.describeBlocked(ctx, slices.Concat(res.Blocked, res.Waiting))
	out := nodeResult{draining: true, next: ds.next, overdue: p.overdue(ctx, node, open, ds, blocked)}
	if want := blockedAnnotation(blocked); node.Annotations[fleetv1alpha1.DrainBlockedAnnotation] != want {
		patched := node.DeepCopy()
		nodeutil.SetAnnotation(patched, fleetv1alpha1.DrainBlockedAnnotation, want)
		if _, err := p.patchNode(ctx, node, patched); err != nil {
			return out, err
		}
	}
	return out, nil
}

// describeBlocked says, for each refused eviction, which pod, whose it is
// (its controller, and the tenant of its namespace) and why, e.g. "kv/kv-0
// (StatefulApp kv; tenant: AppNamespace kv of app kv): <reason>", so that
// whoever reads a stalled drain knows whom to ask.
func (p *clusterPass) describeBlocked(ctx context.Context, blocked []drain.Blocked) []string {
	tenants := map[string]string{}
	out := make([]string, 0, len(blocked))
	for _, b := range blocked {
		t, ok := tenants[b.Namespace]
		if !ok {
			t = p.tenant(ctx, b.Namespace)
			tenants[b.Namespace] = t
		}
		out = append(out, fmt.Sprintf("%s/%s (%s; %s): %s", b.Namespace, b.Name, b.Whose(), t, b.Reason))
	}
	return out
}

// tenant names the tenant of a namespace: the AppNamespace the namespace
// was made for, and its app, from the labels the AppNamespace controller
// puts on it.
func (p *clusterPass) tenant(ctx context.Context, namespace string) string {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := p.rc.APIReader.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		log.FromContext(ctx).V(1).Info("Could not read the namespace of a pod that blocks a drain", "namespace", namespace, "error", err)
		return "tenant unknown: " + err.Error()
	}
	an := ns.Labels[appsv1alpha1.AppNamespaceLabel]
	if an == "" {
		return "namespace " + namespace + " is no AppNamespace's"
	}
	return fmt.Sprintf("tenant: AppNamespace %s of app %s", an, ns.Labels[appsv1alpha1.AppLabel])
}

// overdue says whether the Node's drain has run past the deadline, and
// records it the first time.
func (p *clusterPass) overdue(ctx context.Context, node *corev1.Node, open *brokerv1.Disruption, ds *drainState, blocked []string) *overdueDrain {
	started, ok := drainStarted(node)
	if !ok || p.now.Sub(started) < p.deadline {
		return nil
	}
	o := &overdueDrain{node: node.Name, disruption: open.GetId(), reason: reasonName(open.GetReason()), started: started, blocked: blocked}
	if !ds.overdueRecorded {
		why := "pods are still terminating"
		if len(blocked) > 0 {
			why = "evictions refused: " + strings.Join(blocked, "; ")
		}
		p.note(ctx, node, open.GetId(), corev1.EventTypeWarning, fleetv1alpha1.DrainDeadlineExceededReason, fmt.Sprintf(
			"the drain of node %s for %s has run past its deadline of %s (%s); the disruption stays Pending, nothing is forced",
			node.Name, o.reason, p.deadline, why))
		ds.overdueRecorded = true
	}
	return o
}

// uncordon undoes Strata's cordon of a Node whose disruption is over, and
// removes Strata's marks. A Node whose machine left its pool is left
// cordoned: the pool controller deletes it.
func (p *clusterPass) uncordon(ctx context.Context, node *corev1.Node, id string) error {
	m, err := p.broker.GetMachine(ctx, &brokerv1.GetMachineRequest{Id: nodeutil.Machine(node)})
	switch {
	case brokerapi.IsCode(err, codes.NotFound):
		return nil
	case err != nil:
		return fmt.Errorf("reading machine %s: %w", nodeutil.Machine(node), err)
	case m.GetMachine().GetPool() != node.Labels[fleetv1alpha1.PoolLabel]:
		return nil
	}
	over := "gone"
	reason := "a disruption"
	d, err := p.broker.GetDisruption(ctx, &brokerv1.GetDisruptionRequest{Id: id})
	switch {
	case err == nil:
		over = stateName(d.GetDisruption().GetState())
		reason = reasonName(d.GetDisruption().GetReason())
	case !brokerapi.IsCode(err, codes.NotFound):
		return fmt.Errorf("reading disruption %s: %w", id, err)
	}
	patched := node.DeepCopy()
	patched.Spec.Unschedulable = false
	for _, key := range []string{fleetv1alpha1.CordonedForAnnotation, fleetv1alpha1.DrainStartedAnnotation, fleetv1alpha1.DrainBlockedAnnotation} {
		nodeutil.SetAnnotation(patched, key, "")
	}
	if ok, err := p.patchNode(ctx, node, patched); !ok || err != nil {
		return err
	}
	msg := fmt.Sprintf("uncordoned node %s after %s: the disruption is %s", node.Name, reason, over)
	if !node.Spec.Unschedulable {
		msg = fmt.Sprintf("node %s was uncordoned by someone else before %s was over; the disruption is %s", node.Name, reason, over)
	}
	p.note(ctx, patched, id, corev1.EventTypeNormal, "Uncordoned", msg)
	return nil
}

// patchNode writes the Node's changes, on the version that was read. It
// returns false when the Node changed or went meanwhile.
func (p *clusterPass) patchNode(ctx context.Context, node, patched *corev1.Node) (bool, error) {
	err := p.rc.Client.Patch(ctx, patched, client.MergeFromWithOptions(node, client.MergeFromWithOptimisticLock{}))
	switch {
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("updating node %s: %w", node.Name, err)
	}
	return true, nil
}

// note records a step in the disruption's history, as an Event on the Node,
// and in the log.
func (p *clusterPass) note(ctx context.Context, node *corev1.Node, disruption, eventType, reason, message string) {
	log.FromContext(ctx).Info("Disruption step", "node", klog.KObj(node), "disruption", disruption, "step", reason, "message", message)
	p.record(disruption, message)
	now := metav1.NewTime(p.now)
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: eventNamespace, Name: fmt.Sprintf("%s.%x", node.Name, time.Now().UnixNano())},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
		},
		Reason: reason, Message: message + " (disruption " + disruption + ")", Type: eventType,
		Source:         corev1.EventSource{Component: "strata-" + strings.TrimSuffix(ActorPrefix, "/")},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	if err := p.rc.Client.Create(ctx, ev); err != nil {
		log.FromContext(ctx).V(1).Info("Could not write an event about a node", "node", klog.KObj(node), "error", err)
	}
}

// requeueAfter is when the cluster is looked at again without an event.
func (p *clusterPass) requeueAfter(out passResult) time.Duration {
	after := steadyInterval
	if !out.nextDrain.IsZero() {
		after = min(after, max(minInterval, out.nextDrain.Sub(p.now)))
	}
	p.state.mu.Lock()
	unrecorded := len(p.state.unrecorded) > 0
	p.state.mu.Unlock()
	if out.failed > 0 || unrecorded {
		after = min(after, retryDelay)
	}
	return after
}

func isEmpty(s string) bool { return s == "" }
