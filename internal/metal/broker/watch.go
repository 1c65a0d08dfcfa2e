package broker

import (
	"sync"

	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// watchBuffer is how many events a watcher may lag behind before it is cut
// off (and must watch again, which resends the current state).
const watchBuffer = 1024

// event is one change, for pool or disruption watchers.
type event struct {
	pool       *brokerv1.WatchPoolsResponse
	disruption *brokerv1.WatchDisruptionsResponse
}

// hub fans committed changes out to watch streams.
type hub struct {
	mu   sync.Mutex
	subs map[chan event]struct{}
}

func newHub() *hub {
	return &hub{subs: map[chan event]struct{}{}}
}

// subscribe returns a channel of events, closed if the watcher falls behind,
// and its cancel.
func (h *hub) subscribe() (<-chan event, func()) {
	ch := make(chan event, watchBuffer)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// publish sends events to every watcher without blocking: a watcher whose
// buffer is full is dropped rather than slowing the broker.
func (h *hub) publish(events []event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		for _, e := range events {
			select {
			case ch <- e:
			default:
				delete(h.subs, ch)
				close(ch)
			}
			if _, ok := h.subs[ch]; !ok {
				break
			}
		}
	}
}

func poolEvent(t brokerv1.EventType, p *brokerv1.Pool) event {
	return event{pool: &brokerv1.WatchPoolsResponse{Type: t, Pool: p}}
}

func disruptionEvent(t brokerv1.EventType, d *brokerv1.Disruption) event {
	return event{disruption: &brokerv1.WatchDisruptionsResponse{Type: t, Disruption: d}}
}
