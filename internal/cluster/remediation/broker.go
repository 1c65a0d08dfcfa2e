package remediation

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// brokerPageSize is the largest page ListMachines serves.
const brokerPageSize = 1000

func isCode(err error, code codes.Code) bool {
	return err != nil && status.Code(err) == code
}

// overBudget says whether the broker refused a disruption because the
// budget is spent: the only refusal that means "try again later".
func overBudget(err error) bool {
	return isCode(err, codes.FailedPrecondition) && strings.HasPrefix(statusMessage(err), "over budget")
}

func statusMessage(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// poolMachines lists the broker's machines of a pool.
func (r *Reconciler) poolMachines(ctx context.Context, pool string) ([]*brokerv1.Machine, error) {
	var machines []*brokerv1.Machine
	req := &brokerv1.ListMachinesRequest{Pool: pool, PageSize: brokerPageSize}
	for {
		resp, err := r.broker.ListMachines(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("listing the machines of broker pool %s: %w", pool, err)
		}
		machines = append(machines, resp.GetMachines()...)
		if resp.GetNextPageToken() == "" {
			return machines, nil
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// openDisruptions lists a pool's open disruptions, by machine.
func (r *Reconciler) openDisruptions(ctx context.Context, pool string) (map[string]*brokerv1.Disruption, error) {
	resp, err := r.broker.ListDisruptions(ctx, &brokerv1.ListDisruptionsRequest{Pool: pool, States: []brokerv1.DisruptionState{
		brokerv1.DisruptionState_DISRUPTION_STATE_PENDING,
		brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED,
		brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS,
	}})
	if err != nil {
		return nil, fmt.Errorf("listing the open disruptions of broker pool %s: %w", pool, err)
	}
	open := make(map[string]*brokerv1.Disruption, len(resp.GetDisruptions()))
	for _, d := range resp.GetDisruptions() {
		open[d.GetMachine()] = d
	}
	return open, nil
}

// machineDisruptions lists every disruption of a machine, oldest first.
func (r *Reconciler) machineDisruptions(ctx context.Context, machine string) ([]*brokerv1.Disruption, error) {
	resp, err := r.broker.ListDisruptions(ctx, &brokerv1.ListDisruptionsRequest{Machine: machine})
	if err != nil {
		return nil, fmt.Errorf("listing the disruptions of machine %s: %w", machine, err)
	}
	return resp.GetDisruptions(), nil
}

// brokerWatch turns the broker's streams into Pool events: a change in a
// pool's count of unhealthy machines, a remediation disruption's every step,
// and the end of any disruption (its machine is judged again, and the budget
// has room).
type brokerWatch struct {
	broker brokerv1.BrokerServiceClient
	events chan<- event.GenericEvent

	mu        sync.Mutex
	unhealthy map[string]int32 // per pool, as last seen
}

// Start implements manager.Runnable: it watches until ctx ends, reconnecting
// with backoff when a stream breaks.
func (w *brokerWatch) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("remediation-broker-watch")
	watch := func(name string, run func(context.Context) error) {
		newBackoff := func() wait.Backoff {
			return wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Steps: 7, Cap: 30 * time.Second}
		}
		backoff := newBackoff()
		for ctx.Err() == nil {
			began := time.Now()
			err := run(ctx)
			if ctx.Err() != nil {
				return
			}
			if time.Since(began) > time.Minute {
				backoff = newBackoff() // the stream was healthy: start over
			}
			delay := backoff.Step()
			logger.V(1).Info("Broker watch broke; watching again", "stream", name, "after", delay, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); watch("disruptions", w.disruptions) }()
	watch("pools", w.pools)
	<-done
	return nil
}

func (w *brokerWatch) pools(ctx context.Context) error {
	stream, err := w.broker.WatchPools(ctx, &brokerv1.WatchPoolsRequest{})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		if w.unhealthyChanged(resp.GetPool()) {
			w.send(ctx, resp.GetPool().GetName())
		}
	}
}

// unhealthyChanged says whether a pool's count of unhealthy machines is not
// the one last seen, and remembers it.
func (w *brokerWatch) unhealthyChanged(p *brokerv1.Pool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.unhealthy == nil {
		w.unhealthy = map[string]int32{}
	}
	n, seen := w.unhealthy[p.GetName()]
	w.unhealthy[p.GetName()] = p.GetStatus().GetUnhealthy()
	return !seen || n != p.GetStatus().GetUnhealthy()
}

func (w *brokerWatch) disruptions(ctx context.Context) error {
	stream, err := w.broker.WatchDisruptions(ctx, &brokerv1.WatchDisruptionsRequest{})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		if relevant(resp) {
			w.send(ctx, resp.GetDisruption().GetPool())
		}
	}
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
		return e.GetType() != brokerv1.EventType_EVENT_TYPE_ADDED || isOpen(d)
	}
	return e.GetType() == brokerv1.EventType_EVENT_TYPE_MODIFIED && !isOpen(d)
}

func (w *brokerWatch) send(ctx context.Context, pool string) {
	select {
	case w.events <- event.GenericEvent{Object: &fleetv1alpha1.Pool{ObjectMeta: metav1.ObjectMeta{Name: pool}}}:
	case <-ctx.Done():
	}
}
