package manager

import (
	"context"
	"fmt"

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
// drained or there is none.
func (p *clusterPass) approve(ctx context.Context, d *brokerv1.Disruption, message string) error {
	_, err := p.broker.ApproveDisruption(ctx, &brokerv1.ApproveDisruptionRequest{Id: d.GetId(), OnBehalfOf: p.actor, Message: message})
	switch {
	case brokerapi.IsCode(err, codes.FailedPrecondition), brokerapi.IsCode(err, codes.NotFound):
		return nil // approved, cancelled or gone meanwhile
	case err != nil:
		return fmt.Errorf("approving disruption %s of machine %s: %w", d.GetId(), d.GetMachine(), err)
	}
	log.FromContext(ctx).Info("Approved disruption", "disruption", d.GetId(), "machine", d.GetMachine(), "reason", reasonName(d.GetReason()), "message", message)
	return nil
}

// step is one entry of a disruption's history the manager writes.
type step struct {
	disruption string
	message    string
}

// record adds a step to a disruption's history. A step the broker did not
// take is kept and tried again at the start of the next pass.
func (p *clusterPass) record(ctx context.Context, disruption, message string) {
	if err := p.recordStep(ctx, step{disruption, message}); err != nil {
		log.FromContext(ctx).Error(err, "Recording a disruption step; trying again on the next pass", "disruption", disruption)
		p.state.mu.Lock()
		p.state.unrecorded = append(p.state.unrecorded, step{disruption, message})
		p.state.mu.Unlock()
	}
}

func (p *clusterPass) recordStep(ctx context.Context, s step) error {
	_, err := p.broker.RecordDisruptionStep(ctx, &brokerv1.RecordDisruptionStepRequest{Id: s.disruption, OnBehalfOf: p.actor, Message: s.message})
	if err != nil && !brokerapi.IsCode(err, codes.NotFound) {
		return fmt.Errorf("recording step %q of disruption %s: %w", s.message, s.disruption, err)
	}
	return nil
}

// flushRecords tries again the steps the broker did not take.
func (p *clusterPass) flushRecords(ctx context.Context) {
	p.state.mu.Lock()
	pending := p.state.unrecorded
	p.state.unrecorded = nil
	p.state.mu.Unlock()
	for _, s := range pending {
		if err := p.recordStep(ctx, s); err != nil {
			log.FromContext(ctx).Error(err, "Recording a disruption step; trying again on the next pass", "disruption", s.disruption)
			p.state.mu.Lock()
			p.state.unrecorded = append(p.state.unrecorded, s)
			p.state.mu.Unlock()
		}
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
