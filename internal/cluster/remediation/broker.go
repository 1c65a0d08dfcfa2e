package remediation

import (
	"context"
	"fmt"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/cluster/brokerapi"
	"github.com/strata-dev/strata/internal/cluster/brokerwatch"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// machineDisruptions lists every disruption of a machine, oldest first.
func (r *Reconciler) machineDisruptions(ctx context.Context, machine string) ([]*brokerv1.Disruption, error) {
	resp, err := r.broker.ListDisruptions(ctx, &brokerv1.ListDisruptionsRequest{Machine: machine})
	if err != nil {
		return nil, fmt.Errorf("listing the disruptions of machine %s: %w", machine, err)
	}
	return resp.GetDisruptions(), nil
}

// brokerEvents maps the broker's streams to Pools: a change in a pool's
// count of unhealthy machines, a remediation disruption's every step, and
// the end of any disruption (its machine is judged again, and the budget has
// room).
type brokerEvents struct {
	mu        sync.Mutex
	unhealthy map[string]int32 // per pool, as last seen
}

// pool maps a pool event to its Pool when its unhealthy count changed.
func (b *brokerEvents) pool(e *brokerv1.WatchPoolsResponse) client.Object {
	p := e.GetPool()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.unhealthy == nil {
		b.unhealthy = map[string]int32{}
	}
	n, seen := b.unhealthy[p.GetName()]
	b.unhealthy[p.GetName()] = p.GetStatus().GetUnhealthy()
	if seen && n == p.GetStatus().GetUnhealthy() {
		return nil
	}
	return brokerwatch.Pool(p.GetName())
}

// disruption maps a disruption event to its Pool when it concerns
// remediation.
func (b *brokerEvents) disruption(e *brokerv1.WatchDisruptionsResponse) client.Object {
	if !relevant(e) {
		return nil
	}
	return brokerwatch.Pool(e.GetDisruption().GetPool())
}

// relevant says whether a disruption event concerns remediation: every step
// of a remediation disruption, and the end of any other (its machine is
// judged again, and the budget has room). The history a new stream starts
// with is left out, but for what is still open.
func relevant(e *brokerv1.WatchDisruptionsResponse) bool {
	d := e.GetDisruption()
	switch {
	case d.GetPool() == "":
		return false
	case isRemediation(d):
		return e.GetType() != brokerv1.EventType_EVENT_TYPE_ADDED || brokerapi.Open(d)
	}
	return e.GetType() == brokerv1.EventType_EVENT_TYPE_MODIFIED && !brokerapi.Open(d)
}
