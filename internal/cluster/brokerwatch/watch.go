// Package brokerwatch turns the Compute Broker's watch streams into
// controller-runtime events, so that a hub controller reacts to a broker
// change at once instead of at its next requeue.
package brokerwatch

import (
	"context"
	"time"

	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// eventBuffer is how many events wait for the controller before the stream
// waits for it.
const eventBuffer = 1024

// healthyStream is how long a stream must have run for its next break to
// start the backoff over.
const healthyStream = time.Minute

// Watch is a manager.Runnable that keeps one broker stream open,
// reconnecting with backoff, and sends an event for every object received
// that the controller cares about. A stream ends when its broker replica
// stops leading (or dies); the next one waits for a replica that reports
// SERVING on the gRPC health service (the new leader, with a client from
// brokerclient) instead of failing at once and backing off further, and
// starts with every object as ADDED: the re-list that covers what changed
// meanwhile. Add it to the manager and pass Events to
// source.Channel.
type Watch struct {
	name   string
	recv   func(ctx context.Context, send func(client.Object)) error
	events chan event.GenericEvent
}

// Disruptions watches every disruption; object maps an event to the object
// to reconcile, or nil to ignore it. A new stream starts with every
// disruption as ADDED.
func Disruptions(broker brokerv1.BrokerServiceClient, object func(*brokerv1.WatchDisruptionsResponse) client.Object) *Watch {
	return &Watch{name: "disruptions", events: make(chan event.GenericEvent, eventBuffer),
		recv: func(ctx context.Context, send func(client.Object)) error {
			stream, err := broker.WatchDisruptions(ctx, &brokerv1.WatchDisruptionsRequest{}, grpc.WaitForReady(true))
			if err != nil {
				return err
			}
			for {
				resp, err := stream.Recv()
				if err != nil {
					return err
				}
				send(object(resp))
			}
		}}
}

// Pools watches every pool; object maps an event to the object to
// reconcile, or nil to ignore it. A new stream starts with every pool as
// ADDED.
func Pools(broker brokerv1.BrokerServiceClient, object func(*brokerv1.WatchPoolsResponse) client.Object) *Watch {
	return &Watch{name: "pools", events: make(chan event.GenericEvent, eventBuffer),
		recv: func(ctx context.Context, send func(client.Object)) error {
			stream, err := broker.WatchPools(ctx, &brokerv1.WatchPoolsRequest{}, grpc.WaitForReady(true))
			if err != nil {
				return err
			}
			for {
				resp, err := stream.Recv()
				if err != nil {
					return err
				}
				send(object(resp))
			}
		}}
}

// Events are the events to pass to source.Channel.
func (w *Watch) Events() <-chan event.GenericEvent {
	return w.events
}

// Start implements manager.Runnable: it watches until ctx ends.
func (w *Watch) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("broker-watch").WithValues("stream", w.name)
	newBackoff := func() wait.Backoff {
		return wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Steps: 7, Cap: 30 * time.Second}
	}
	backoff := newBackoff()
	send := func(obj client.Object) {
		if obj == nil {
			return
		}
		select {
		case w.events <- event.GenericEvent{Object: obj}:
		case <-ctx.Done():
		}
	}
	for ctx.Err() == nil {
		began := time.Now()
		err := w.recv(ctx, send)
		if ctx.Err() != nil {
			break
		}
		if time.Since(began) > healthyStream {
			backoff = newBackoff()
		}
		delay := backoff.Step()
		logger.V(1).Info("Broker watch broke; watching again", "after", delay, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
	return nil
}

// Pool is the Pool to reconcile for a broker pool's name, nil for none.
func Pool(name string) client.Object {
	if name == "" {
		return nil
	}
	return &fleetv1alpha1.Pool{ObjectMeta: metav1.ObjectMeta{Name: name}}
}
