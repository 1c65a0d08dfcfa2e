package aggregator

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"

	"github.com/strata-dev/strata/internal/console/store"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// brokerSource is one of the broker's watch streams. stream runs one
// stream until it fails; it calls established once the broker answered.
type brokerSource struct {
	key    srcKey
	stream func(ctx context.Context, established func()) error
}

// brokerSources are the broker's pools, disruptions and machines. updated
// is when each stored disruption was last updated (unix ms): a disruption
// whose update time is the stored one is not fetched again.
func (a *Aggregator) brokerSources(updated map[string]int64) []*brokerSource {
	d := &disruptions{a: a, updated: updated}
	return []*brokerSource{
		{key: srcKey{store.BrokerSource, store.KindBrokerPool}, stream: a.streamPools},
		{key: srcKey{store.BrokerSource, store.KindDisruption}, stream: d.stream},
		{key: srcKey{store.BrokerSource, store.KindMachine}, stream: a.streamMachines},
	}
}

// runBroker keeps a broker stream going until ctx ends. The streams wait
// for a serving replica (grpc.WaitForReady, as the hub's brokerwatch):
// when none answers within RequestTimeout, the source says so, and keeps
// waiting.
func (a *Aggregator) runBroker(ctx context.Context, s *brokerSource) {
	log := a.log.WithValues("cluster", s.key.cluster, "kind", s.key.kind)
	backoff := a.newBackoff()
	for ctx.Err() == nil {
		began := a.opts.Clock.Now()
		done := make(chan struct{})
		var once sync.Once
		established := func() {
			once.Do(func() { close(done) })
			a.settle(s.key)
			a.watching(s.key, true)
		}
		go func() {
			select {
			case <-done:
			case <-ctx.Done():
			case <-a.opts.Clock.After(a.opts.RequestTimeout):
				a.settle(s.key)
				a.send(ctx, update{src: s.key, failed: fmt.Sprintf("broker: no replica answered within %s", a.opts.RequestTimeout)})
			}
		}()
		err := s.stream(ctx, established)
		a.watching(s.key, false)
		once.Do(func() { close(done) })
		if ctx.Err() != nil {
			return
		}
		a.settle(s.key)
		a.send(ctx, update{src: s.key, failed: fmt.Sprintf("broker: %v", err)})
		if a.opts.Clock.Since(began) > healthyStream {
			backoff = a.newBackoff()
		}
		delay := backoff.Step()
		log.V(1).Info("Broker watch failed; watching again", "after", delay, "error", err)
		a.pause(ctx, delay)
	}
}

// streamPools mirrors the broker's pools. A new stream begins with every
// pool as ADDED but says nothing when that listing ends: the relist's
// listing is ListPools, asked once the stream is open, so that a pool
// deleted after it comes as DELETED on the stream.
func (a *Aggregator) streamPools(ctx context.Context, established func()) error {
	key := srcKey{store.BrokerSource, store.KindBrokerPool}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := a.opts.Broker.WatchPools(sctx, &brokerv1.WatchPoolsRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("watching pools: %w", err)
	}
	lctx, lcancel := context.WithTimeout(ctx, a.opts.RequestTimeout)
	list, err := a.opts.Broker.ListPools(lctx, &brokerv1.ListPoolsRequest{}, grpc.WaitForReady(true))
	lcancel()
	if err != nil {
		return fmt.Errorf("listing pools: %w", err)
	}
	established()
	rows := make([]any, 0, len(list.GetPools()))
	for _, p := range list.GetPools() {
		row, err := brokerPoolRow(p)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	a.send(ctx, update{src: key, begin: true})
	a.send(ctx, update{src: key, rows: rows, end: true, seen: true, ok: true})
	eventsReceived.WithLabelValues(key.cluster, key.kind, "LISTED").Add(float64(len(rows)))
	for {
		resp, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("watching pools: %w", err)
		}
		eventsReceived.WithLabelValues(key.cluster, key.kind, eventType(resp.GetType())).Inc()
		u := update{src: key, seen: true}
		switch resp.GetType() {
		case brokerv1.EventType_EVENT_TYPE_DELETED:
			u.deletes = []store.Key{{Kind: store.KindBrokerPool, Name: resp.GetPool().GetName()}}
		default:
			row, err := brokerPoolRow(resp.GetPool())
			if err != nil {
				return err
			}
			u.rows = []any{row}
		}
		a.send(ctx, u)
	}
}

// brokerAnswers asks the broker a small question (its SKUs), failing at
// once when no replica serves.
func (a *Aggregator) brokerAnswers(ctx context.Context) error {
	_, err := a.opts.Broker.ListSKUs(ctx, &brokerv1.ListSKUsRequest{})
	return err
}

func eventType(t brokerv1.EventType) string {
	return enum(t.String(), "EVENT_TYPE_")
}

// disruptions mirrors the broker's disruptions with their history, which
// only GetDisruption carries: it is fetched for every disruption whose
// update time changed. Disruptions are never deleted, so a new stream
// needs no relist: its listing is written as any event.
type disruptions struct {
	a       *Aggregator
	updated map[string]int64 // by id, the update time written (unix ms); the stream's own
}

func (d *disruptions) stream(ctx context.Context, established func()) error {
	a := d.a
	key := srcKey{store.BrokerSource, store.KindDisruption}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := a.opts.Broker.WatchDisruptions(sctx, &brokerv1.WatchDisruptionsRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("watching disruptions: %w", err)
	}
	lctx, lcancel := context.WithTimeout(ctx, a.opts.RequestTimeout)
	list, err := a.opts.Broker.ListDisruptions(lctx, &brokerv1.ListDisruptionsRequest{}, grpc.WaitForReady(true))
	lcancel()
	if err != nil {
		return fmt.Errorf("listing disruptions: %w", err)
	}
	established()
	var rows []any
	for _, dis := range list.GetDisruptions() {
		row, changed, err := d.row(ctx, dis)
		if err != nil {
			return err
		}
		if changed {
			rows = append(rows, row)
		}
	}
	eventsReceived.WithLabelValues(key.cluster, key.kind, "LISTED").Add(float64(len(list.GetDisruptions())))
	a.send(ctx, update{src: key, rows: rows, synced: true, seen: true, ok: true})
	for {
		resp, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("watching disruptions: %w", err)
		}
		eventsReceived.WithLabelValues(key.cluster, key.kind, eventType(resp.GetType())).Inc()
		u := update{src: key, seen: true}
		row, changed, err := d.row(ctx, resp.GetDisruption())
		if err != nil {
			return err
		}
		if changed {
			u.rows = []any{row}
		}
		a.send(ctx, u)
	}
}

// row is a disruption's row with its history, or false when the row
// written has the same update time.
func (d *disruptions) row(ctx context.Context, dis *brokerv1.Disruption) (store.Disruption, bool, error) {
	updated := dis.GetUpdateTime().AsTime().UnixMilli()
	if dis.GetUpdateTime() != nil && d.updated[dis.GetId()] == updated {
		return store.Disruption{}, false, nil
	}
	gctx, cancel := context.WithTimeout(ctx, d.a.opts.RequestTimeout)
	defer cancel()
	resp, err := d.a.opts.Broker.GetDisruption(gctx, &brokerv1.GetDisruptionRequest{Id: dis.GetId()}, grpc.WaitForReady(true))
	if err != nil {
		return store.Disruption{}, false, fmt.Errorf("reading the history of disruption %s: %w", dis.GetId(), err)
	}
	full := resp.GetDisruption()
	d.updated[full.GetId()] = full.GetUpdateTime().AsTime().UnixMilli()
	return disruptionRow(full), true, nil
}

// machinePage is how many machines of a listing go to the writer at once.
const machinePage = 500

// streamMachines mirrors the broker's machines: a stream sends every
// machine as ADDED, then a synced marker (the relist's end), then every
// change as MODIFIED. Machines are never deleted.
func (a *Aggregator) streamMachines(ctx context.Context, established func()) error {
	key := srcKey{store.BrokerSource, store.KindMachine}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := a.opts.Broker.WatchMachines(sctx, &brokerv1.WatchMachinesRequest{Datacenter: a.opts.Datacenter}, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("watching machines: %w", err)
	}
	listing := true
	var rows []any
	for {
		resp, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("watching machines: %w", err)
		}
		if listing && rows == nil {
			established()
			a.send(ctx, update{src: key, begin: true, ok: true, seen: true})
			rows = []any{}
		}
		switch {
		case resp.GetSynced():
			if !listing {
				return errors.New("watching machines: a second synced marker")
			}
			a.send(ctx, update{src: key, rows: rows, end: true, seen: true})
			listing, rows = false, nil
		case resp.GetMachine() == nil:
			continue
		case listing:
			eventsReceived.WithLabelValues(key.cluster, key.kind, "LISTED").Inc()
			rows = append(rows, machineRow(resp.GetMachine()))
			if len(rows) >= machinePage {
				a.send(ctx, update{src: key, rows: rows, seen: true})
				rows = []any{}
			}
		default:
			eventsReceived.WithLabelValues(key.cluster, key.kind, eventType(resp.GetType())).Inc()
			a.send(ctx, update{src: key, rows: []any{machineRow(resp.GetMachine())}, seen: true})
		}
	}
}
