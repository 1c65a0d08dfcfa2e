package manager

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/brokerapi"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// openStates are the states of a disruption the protocol is not done with.
var openStates = []brokerv1.DisruptionState{
	brokerv1.DisruptionState_DISRUPTION_STATE_PENDING,
	brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED,
	brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS,
}

// clusterPools names the broker pools whose machines join the cluster: the
// broker's join target, not the hub's Pools, says where a machine's Node is,
// so a Pool whose broker pool belongs elsewhere never gets its machines
// approved here.
func (p *clusterPass) clusterPools(ctx context.Context) (map[string]bool, error) {
	resp, err := p.broker.ListPools(ctx, &brokerv1.ListPoolsRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing the broker's pools: %w", err)
	}
	pools := map[string]bool{}
	for _, bp := range resp.GetPools() {
		if bp.GetJoinTarget().GetCluster() == p.cluster {
			pools[bp.GetName()] = true
		}
	}
	return pools, nil
}

// openDisruptions lists the open disruptions of the machines of the
// cluster's pools, by machine.
func (p *clusterPass) openDisruptions(ctx context.Context, datacenter string, pools map[string]bool) (map[string]*brokerv1.Disruption, error) {
	resp, err := p.broker.ListDisruptions(ctx, &brokerv1.ListDisruptionsRequest{Datacenter: datacenter, States: openStates})
	if err != nil {
		return nil, fmt.Errorf("listing the open disruptions of datacenter %s: %w", datacenter, err)
	}
	open := map[string]*brokerv1.Disruption{}
	for _, d := range resp.GetDisruptions() {
		if pools[d.GetPool()] {
			open[d.GetMachine()] = d
		}
	}
	return open, nil
}

// approve tells the broker the machine may be disrupted: its Node is
// drained or there is none. The approval is sent with the pass's other
// steps, after the steps recorded before it (see flush).
func (p *clusterPass) approve(d *brokerv1.Disruption, message string) {
	p.journal.add(update{
		DisruptionUpdate: &brokerv1.DisruptionUpdate{
			Id: d.GetId(), Action: brokerv1.DisruptionAction_DISRUPTION_ACTION_APPROVE, OnBehalfOf: p.actor, Message: message,
		},
		machine: d.GetMachine(), reason: d.GetReason(),
	})
}

// update is one step the manager sends the broker: a recorded step of a
// disruption's history, or its approval.
type update struct {
	*brokerv1.DisruptionUpdate
	// machine and reason, of an approval, are for the log.
	machine string
	reason  brokerv1.DisruptionReason
}

// journal collects the steps the workers of a pass take, in the order each
// worker takes them, for one broker call at the end of the pass.
type journal struct {
	mu      sync.Mutex
	updates []update
}

func (j *journal) add(u update) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.updates = append(j.updates, u)
}

// record adds a step to a disruption's history, with the pass's other steps.
func (p *clusterPass) record(disruption, message string) {
	p.journal.add(update{DisruptionUpdate: &brokerv1.DisruptionUpdate{
		Id: disruption, Action: brokerv1.DisruptionAction_DISRUPTION_ACTION_RECORD_STEP, OnBehalfOf: p.actor, Message: message,
	}})
}

// flush sends the pass's steps and approvals to the broker in one batch (in
// order: a Node's cordon and drain steps before its approval). When the
// broker does not take the batch, the recorded steps are kept and sent
// first with the next pass's; an approval is not kept: the next pass finds
// the disruption still Pending, the Node drained, and approves it again.
// It reports whether anything failed.
func (p *clusterPass) flush(ctx context.Context) bool {
	p.journal.mu.Lock()
	pending := p.journal.updates
	p.journal.updates = nil
	p.journal.mu.Unlock()
	if len(pending) == 0 {
		return false
	}
	batch := make([]*brokerv1.DisruptionUpdate, len(pending))
	for i, u := range pending {
		batch[i] = u.DisruptionUpdate
	}
	results, err := brokerapi.UpdateDisruptions(ctx, p.broker, batch)
	failed := false
	for i, u := range pending {
		var res brokerapi.Result
		switch {
		case i < len(results):
			res = results[i]
		case u.GetAction() == brokerv1.DisruptionAction_DISRUPTION_ACTION_RECORD_STEP:
			p.keep(u)
			failed = true
			continue
		default:
			failed = true
			continue
		}
		approval := u.GetAction() == brokerv1.DisruptionAction_DISRUPTION_ACTION_APPROVE
		switch {
		case brokerapi.IsCode(res.Err, codes.NotFound), approval && brokerapi.IsCode(res.Err, codes.FailedPrecondition):
			// gone, or approved or cancelled meanwhile
		case res.Err != nil:
			failed = true
			log.FromContext(ctx).Error(res.Err, "The broker refused a disruption step", "disruption", u.GetId(), "action", u.GetAction().String())
		case approval:
			log.FromContext(ctx).Info("Approved disruption", "disruption", u.GetId(), "machine", u.machine, "reason", reasonName(u.reason), "message", u.GetMessage())
		}
	}
	if err != nil {
		log.FromContext(ctx).Error(err, "Sending disruption steps to the broker; trying again on the next pass", "steps", len(pending)-len(results))
	}
	return failed
}

// keep holds a step the broker did not take for the next pass.
func (p *clusterPass) keep(u update) {
	p.state.mu.Lock()
	defer p.state.mu.Unlock()
	p.state.unrecorded = append(p.state.unrecorded, u)
}

// takeUnrecorded starts the pass's journal with the steps earlier passes
// could not send.
func (p *clusterPass) takeUnrecorded() {
	p.state.mu.Lock()
	kept := p.state.unrecorded
	p.state.unrecorded = nil
	p.state.mu.Unlock()
	for _, u := range kept {
		p.journal.add(u)
	}
}

// poolOf maps a disruption to its pool (by name), so a new or finished
// disruption is acted on at once.
func poolOf(e *brokerv1.WatchDisruptionsResponse) client.Object {
	if e.GetDisruption().GetPool() == "" {
		return nil
	}
	return &fleetv1alpha1.Pool{ObjectMeta: metav1.ObjectMeta{Name: e.GetDisruption().GetPool()}}
}
