package aggregator

import (
	"context"
	"fmt"
)

// A quiet source sends nothing: a cluster where nothing changes, a broker
// with no pool to resize. Its last_seen would age and the console would call
// a healthy view stale, while a silent stream is also what a hung server
// gives (a stopped API server keeps its connections open). So each cluster
// and the broker are probed every ProbeInterval: a probe answered in time
// refreshes the last_seen of their sources whose stream is open (an open
// stream of a server that answers delivers every change); a probe that fails
// marks them failed, with why.

// watching records whether a source's stream is open.
func (a *Aggregator) watching(k srcKey, open bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if open {
		a.open[k] = true
		return
	}
	delete(a.open, k)
}

// openSources are the sources of cluster whose stream is open.
func (a *Aggregator) openSources(cluster string) []srcKey {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []srcKey
	for k := range a.open {
		if k.cluster == cluster {
			out = append(out, k)
		}
	}
	return out
}

// probe asks a server whether it answers, every ProbeInterval until ctx
// ends, and says so in its open sources.
func (a *Aggregator) probe(ctx context.Context, cluster string, ask func(context.Context) error) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.opts.Clock.After(a.opts.ProbeInterval):
		}
		pctx, cancel := context.WithTimeout(ctx, a.opts.ProbeTimeout)
		err := ask(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := a.opts.Clock.Now()
		for _, k := range a.openSources(cluster) {
			u := update{src: k, at: now, seen: true}
			if err != nil {
				u = update{src: k, at: now, failed: fmt.Sprintf("%s does not answer: %v", cluster, err)}
			}
			a.send(ctx, u)
		}
	}
}
