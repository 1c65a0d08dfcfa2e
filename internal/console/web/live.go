package web

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Live updates: one poller per server reads the store's revisions every
// PollInterval and tells every open event stream which kinds changed. A
// page names the kinds it shows (data-kinds on <main>); its script
// re-fetches the page's <main> when one of them changes.
//
// The stream (GET /events, text/event-stream) sends
//
//	event: hello    data: {"rev":N}                 on connect
//	event: change   data: {"rev":N,"kinds":[...]}   when kinds changed
//
// and a comment every keepAlive so proxies keep it open.

// keepAlive is how often an idle stream sends a comment.
const keepAlive = 15 * time.Second

type liveMessage struct {
	Rev   int64    `json:"rev"`
	Kinds []string `json:"kinds,omitempty"`
}

// subscriber is one open stream: changes merge while it writes, so a
// slow browser gets one message with every kind rather than a queue.
type subscriber struct {
	mu      sync.Mutex
	rev     int64
	kinds   map[string]bool
	changed chan struct{} // capacity 1: a pending wake-up
}

func (sub *subscriber) take() liveMessage {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	m := liveMessage{Rev: sub.rev, Kinds: slices.Sorted(maps.Keys(sub.kinds))}
	clear(sub.kinds)
	return m
}

// broadcaster holds the open streams and the last revisions read.
type broadcaster struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
	revs map[string]int64
	// ready is closed once the first revisions are read.
	ready chan struct{}
}

func newBroadcaster() *broadcaster {
	return &broadcaster{subs: map[*subscriber]struct{}{}, ready: make(chan struct{})}
}

func (b *broadcaster) subscribe() *subscriber {
	b.mu.Lock()
	defer b.mu.Unlock()
	sub := &subscriber{kinds: map[string]bool{}, changed: make(chan struct{}, 1), rev: b.revs[""]}
	b.subs[sub] = struct{}{}
	return sub
}

func (b *broadcaster) unsubscribe(sub *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, sub)
}

// update takes newly read revisions and tells the streams what changed.
func (b *broadcaster) update(revs map[string]int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	first := b.revs == nil
	var changed []string
	for kind, rev := range revs {
		if kind != "" && !first && b.revs[kind] != rev {
			changed = append(changed, kind)
		}
	}
	b.revs = revs
	if first {
		close(b.ready)
		return
	}
	if len(changed) == 0 {
		return
	}
	for sub := range b.subs {
		sub.mu.Lock()
		sub.rev = revs[""]
		for _, k := range changed {
			sub.kinds[k] = true
		}
		sub.mu.Unlock()
		select {
		case sub.changed <- struct{}{}:
		default:
		}
	}
}

func (b *broadcaster) rev() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.revs[""]
}

// startPoller starts the server's poller once, on the first stream.
func (s *Server) startPoller() {
	s.pollOnce.Do(func() {
		go s.poll()
	})
}

func (s *Server) poll() {
	ticker := s.clock.NewTicker(s.opts.PollInterval)
	defer ticker.Stop()
	failing := false
	for {
		revs, err := s.store.Revisions(s.ctx)
		switch {
		case err != nil && s.ctx.Err() == nil:
			// Logged once per outage: the poller keeps trying.
			if !failing {
				s.log.Error(err, "Reading the fleet store's revisions for live updates")
			}
			failing = true
		case err == nil:
			if failing {
				s.log.Info("Reading the fleet store's revisions again")
			}
			failing = false
			s.live.update(revs)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

// serveEvents streams changes to a browser.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported", http.StatusInternalServerError)
		return
	}
	s.startPoller()
	sub := s.live.subscribe()
	defer s.live.unsubscribe(sub)
	select {
	case <-s.live.ready:
	case <-r.Context().Done():
		return
	case <-s.ctx.Done():
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// retry: how soon EventSource reconnects after the stream breaks.
	if err := writeEvent(w, "hello", liveMessage{Rev: s.live.rev()}, "retry: 1000\n"); err != nil {
		return
	}
	flusher.Flush()
	alive := s.clock.NewTicker(keepAlive)
	defer alive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case <-alive.C():
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-sub.changed:
			m := sub.take()
			if len(m.Kinds) == 0 {
				continue
			}
			if err := writeEvent(w, "change", m, ""); err != nil {
				return
			}
		}
		flusher.Flush()
	}
}

func writeEvent(w http.ResponseWriter, name string, m liveMessage, prefix string) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding a %s event: %w", name, err)
	}
	if _, err := fmt.Fprintf(w, "%sevent: %s\ndata: %s\n\n", prefix, name, data); err != nil {
		return fmt.Errorf("writing a %s event: %w", name, err)
	}
	return nil
}
