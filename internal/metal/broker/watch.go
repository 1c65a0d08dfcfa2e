package broker

import (
	"context"
	"sync"
	"time"

	"github.com/strata-dev/strata/internal/metal/inventory"
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

// DefaultMachineWatchInterval is how often a WatchMachines stream reads the
// machines written since its last read.
const DefaultMachineWatchInterval = 500 * time.Millisecond

// machineWatchSlack is how far before its high-water mark a machine watch
// reads again. A machine's updated_at is stamped when it is written, not
// when the write commits, so a write may become visible after one stamped
// later was read. The broker serializes its writes (Broker.write), so that
// takes a clock set back, or two replicas' clocks that disagree around a
// failover: up to machineWatchSlack of either loses no change.
const machineWatchSlack = 2 * time.Second

// machineWatchPage is how many machines a machine watch reads at once.
const machineWatchPage = maxPageSize

// machineWatch is one WatchMachines stream. It lists the machines, then
// reads again every machinePoll those written since its high-water mark
// less machineWatchSlack, and sends those it has not sent as they are.
// Machines change in many places (allocation, release, provisioning,
// health, disruptions), some of them with no event of the hub, but every
// write stamps the machine's updated_at: the inventory is the only place
// to learn about all of them.
type machineWatch struct {
	b  *Broker
	dc string
	// page is how many machines one transaction reads.
	page int
	send func(*brokerv1.WatchMachinesResponse) error
	// mark is the latest update of any machine when the last read began:
	// what is written after it is stamped at or after mark, but for the
	// slack.
	mark time.Time
	// sent is the update time of each machine sent with an update at or
	// after since(): the ones a read returns again.
	sent map[string]time.Time
}

// since is where the next read starts: the mark less the slack, and never
// before the epoch (no machine at all: the mark is zero).
func (w *machineWatch) since() time.Time {
	epoch := time.Unix(0, 0).UTC()
	if s := w.mark.Add(-machineWatchSlack); s.After(epoch) {
		return s
	}
	return epoch
}

// fresh says whether m is not the machine as it was last sent.
func (w *machineWatch) fresh(m inventory.Machine) bool {
	at, ok := w.sent[m.ID]
	return !ok || !at.Equal(m.UpdatedAt)
}

// record notes m as sent, when a read from since() may return it again.
func (w *machineWatch) record(m inventory.Machine) {
	if !m.UpdatedAt.Before(w.since()) {
		w.sent[m.ID] = m.UpdatedAt
	}
}

// advance moves the mark to the latest update seen at the beginning of the
// read that ended, and forgets the machines the next read cannot return.
// The mark may move back (a clock set back, a machine written since with
// an earlier stamp): reading more is safe, reading less is not.
func (w *machineWatch) advance(mark time.Time) {
	w.mark = mark
	for id, at := range w.sent {
		if at.Before(w.since()) {
			delete(w.sent, id)
		}
	}
}

// run sends the listing, the synced marker and then the changes, until the
// client leaves or the term ends (the stream's context ends with it).
func (w *machineWatch) run(ctx context.Context) error {
	if err := w.list(ctx); err != nil {
		return w.stopped(ctx, err)
	}
	if err := w.send(&brokerv1.WatchMachinesResponse{Synced: true}); err != nil {
		return err
	}
	for {
		timer := w.b.clock.NewTimer(w.b.machinePoll)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C():
		}
		if err := w.poll(ctx); err != nil {
			return w.stopped(ctx, err)
		}
	}
}

// stopped is the stream's end for err: none when the client left or the
// term ended (the gate then says so).
func (w *machineWatch) stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// list sends every machine as ADDED. The mark is the latest update before
// the first page: what changes from then on, the pages read already
// included, the first read after the listing finds.
func (w *machineWatch) list(ctx context.Context) error {
	return w.read(ctx, inventory.MachineFilter{}, func(mark time.Time) { w.mark = mark },
		func(m inventory.Machine, api *brokerv1.Machine) error {
			w.record(m)
			return w.send(&brokerv1.WatchMachinesResponse{Type: brokerv1.EventType_EVENT_TYPE_ADDED, Machine: api})
		})
}

// poll sends every machine written since since() that was not sent as it
// is, MODIFIED, by update time.
func (w *machineWatch) poll(ctx context.Context) error {
	var mark time.Time
	err := w.read(ctx, inventory.MachineFilter{UpdatedSince: w.since()}, func(m time.Time) { mark = m },
		func(m inventory.Machine, api *brokerv1.Machine) error {
			if !w.fresh(m) {
				return nil
			}
			w.record(m)
			return w.send(&brokerv1.WatchMachinesResponse{Type: brokerv1.EventType_EVENT_TYPE_MODIFIED, Machine: api})
		})
	if err != nil {
		return err
	}
	w.advance(mark)
	return nil
}

// read calls each for the watched machines that match f, a page at a
// time, each page in a read transaction of its own and sent outside it (a
// slow client holds no transaction open). The first page's transaction
// also reads the machines' latest update, handed to began before any
// machine.
func (w *machineWatch) read(ctx context.Context, f inventory.MachineFilter, began func(mark time.Time),
	each func(m inventory.Machine, api *brokerv1.Machine) error) error {
	f.Datacenter, f.Limit = w.dc, w.page
	for first := true; ; first = false {
		var (
			ms   []inventory.Machine
			skus map[string]inventory.SKU
			mark time.Time
		)
		if err := w.b.inTx(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
			var err error
			if first {
				if mark, err = tx.LastMachineUpdate(ctx); err != nil {
					return err
				}
			}
			if ms, err = tx.ListMachines(ctx, f); err != nil {
				return err
			}
			skus, err = skuIndex(ctx, tx)
			return err
		}); err != nil {
			return err
		}
		if first {
			began(mark)
		}
		for _, m := range ms {
			if err := each(m, machineToAPI(m, skus)); err != nil {
				return err
			}
		}
		if len(ms) < f.Limit {
			return nil
		}
		// The next page: after the last machine, in the order of the
		// listing (by ID) or of the changes (by update, then ID).
		last := ms[len(ms)-1]
		f.AfterID = last.ID
		if !f.UpdatedSince.IsZero() {
			f.UpdatedSince = last.UpdatedAt
		}
	}
}
