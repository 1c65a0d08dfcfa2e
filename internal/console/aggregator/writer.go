package aggregator

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/strata-dev/strata/internal/console/store"
)

// srcKey names a source: a cluster's kind, or the broker's (BrokerSource).
type srcKey struct{ cluster, kind string }

// update is what a source sends the writer: rows to write or delete, and
// what became of its stream. Updates of one source arrive in order.
type update struct {
	src srcKey
	at  time.Time // when the source received it
	// begin: a relist begins; the rows it writes from now on are the
	// source's whole content once end comes.
	begin bool
	// end: the relist is complete; the source is synced at rv.
	end bool
	// synced: the source has everything (for one that needs no relist end).
	synced  bool
	rows    []any
	deletes []store.Key
	// rv, when not "", is the resourceVersion to resume the watch from.
	rv string
	// seen: the source heard from its server (a list page, an event, a
	// bookmark, a watch opened).
	seen bool
	// failed: the stream failed with this message; ok: it works again.
	failed string
	ok     bool
	// forget: the cluster is gone; its rows and sources are deleted.
	forget bool
}

// writer is the store's one writer: it merges the updates of every source
// into a batch and writes it at most every interval, in one transaction.
type writer struct {
	store     *store.Store
	clock     clock.Clock
	log       logr.Logger
	interval  time.Duration
	batchSize int
	retry     time.Duration
	in        chan update

	mu      sync.Mutex // guards sources, read by the metrics' collector
	sources map[srcKey]*sourceState

	batch *store.Batch
	// begun are the sources whose relist began in the batch not yet written.
	begun map[srcKey]bool
}

// sourceState is a source's row and its relist.
type sourceState struct {
	store.Source
	// since is the revision the source's current relist began at (0 when
	// it began in the batch not yet written).
	since int64
}

func newWriter(s *store.Store, clk clock.Clock, log logr.Logger, interval time.Duration, batchSize int, loaded []store.Source) *writer {
	w := &writer{
		store: s, clock: clk, log: log, interval: interval, batchSize: batchSize, retry: time.Second,
		in: make(chan update, 1024), sources: map[srcKey]*sourceState{},
		batch: store.NewBatch(), begun: map[srcKey]bool{},
	}
	for _, src := range loaded {
		w.sources[srcKey{src.Cluster, src.Kind}] = &sourceState{Source: src}
	}
	return w
}

// snapshot copies the sources' states.
func (w *writer) snapshot() []store.Source {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]store.Source, 0, len(w.sources))
	for _, s := range w.sources {
		out = append(out, s.Source)
	}
	return out
}

// run writes until ctx ends, then writes what it holds with a short
// deadline of its own, so that nothing received is lost at a clean stop.
func (w *writer) run(ctx context.Context) {
	writersMu.Lock()
	writers[w] = true
	writersMu.Unlock()
	defer func() {
		writersMu.Lock()
		delete(writers, w)
		writersMu.Unlock()
	}()
	var (
		timer   <-chan time.Time
		failing bool
	)
	flush := func(ctx context.Context) {
		timer = nil
		if err := w.flush(ctx); err != nil {
			// The batch is kept, merges what comes meanwhile, and is
			// written again after a pause.
			w.log.Error(err, "Writing to the fleet store failed; writing again", "after", w.retry)
			failing, timer = true, w.clock.After(w.retry)
			return
		}
		failing = false
	}
	for {
		select {
		case u := <-w.in:
			w.add(u)
			switch {
			case w.batch.Rows() >= w.batchSize && !failing:
				flush(ctx)
			case timer == nil:
				timer = w.clock.After(w.interval)
			}
		case <-timer:
			flush(ctx)
		case <-ctx.Done():
		drain:
			for {
				select {
				case u := <-w.in:
					w.add(u)
				default:
					break drain
				}
			}
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := w.flush(final); err != nil {
				w.log.Error(err, "Writing the last batch to the fleet store failed")
			}
			return
		}
	}
}

// add merges an update into the batch.
func (w *writer) add(u update) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if u.forget {
		w.batch.Forget(u.src.cluster)
		for k := range w.sources {
			if k.cluster == u.src.cluster {
				delete(w.sources, k)
				delete(w.begun, k)
			}
		}
		return
	}
	st := w.sources[u.src]
	if st == nil {
		st = &sourceState{Source: store.Source{Cluster: u.src.cluster, Kind: u.src.kind}}
		w.sources[u.src] = st
	}
	if u.begin {
		// What the source sent before is superseded by the relist.
		w.batch.DropPending(u.src.cluster, u.src.kind)
		w.begun[u.src], st.since = true, 0
	}
	for _, row := range u.rows {
		put(w.batch, row)
	}
	for _, k := range u.deletes {
		w.batch.Delete(k)
	}
	if u.end {
		w.batch.EndRelist(u.src.cluster, u.src.kind, st.since)
		st.Synced = true
	}
	if u.synced {
		st.Synced = true
	}
	if u.rv != "" {
		st.ResourceVersion = u.rv
	}
	if u.seen {
		st.LastSeen = u.at
	}
	switch {
	case u.failed != "":
		if st.LastError == "" {
			st.ErrorSince = u.at
		}
		st.LastError = u.failed
	case u.ok || u.seen:
		st.LastError, st.ErrorSince = "", time.Time{}
	}
	w.batch.SetSource(st.Source)
}

func put(b *store.Batch, row any) {
	switch r := row.(type) {
	case store.Node:
		b.PutNode(r)
	case store.Pod:
		b.PutPod(r)
	case store.Object:
		b.PutObject(r)
	case store.Event:
		b.PutEvent(r)
	case store.Machine:
		b.PutMachine(r)
	case store.BrokerPool:
		b.PutBrokerPool(r)
	case store.Disruption:
		b.PutDisruption(r)
	}
}

// flush writes the batch; on success the relists begun in it have their
// revision.
func (w *writer) flush(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.batch.Len() == 0 {
		return nil
	}
	began := w.clock.Now()
	rev, err := w.store.Apply(ctx, w.batch)
	if err != nil {
		flushErrors.Inc()
		return err
	}
	flushDuration.Observe(w.clock.Since(began).Seconds())
	rowsWritten.Add(float64(w.batch.Rows()))
	for k := range w.begun {
		if st := w.sources[k]; st != nil {
			st.since = rev
		}
	}
	w.batch, w.begun = store.NewBatch(), map[srcKey]bool{}
	return nil
}

// send hands an update to the writer, or drops it when ctx ends.
func (w *writer) send(ctx context.Context, u update) {
	select {
	case w.in <- u:
	case <-ctx.Done():
	}
}
