package refstore

import (
	"context"
	"time"
)

// replicaProc is the goroutine of an up pod's replicas: it catches up the
// pod's replicas that are behind their leader, then rejoins them to their
// shards' in-sync sets.
type replicaProc struct {
	wake   chan struct{}
	cancel context.CancelFunc
}

// syncProcs runs a replica goroutine for each up pod and stops those of
// pods that are not up; it wakes them all to look for work. Called with
// s.mu held.
func (s *Store) syncProcs() {
	if s.runCtx == nil {
		return
	}
	for name, p := range s.procs {
		if !s.podUp(name) {
			p.cancel()
			delete(s.procs, name)
		}
	}
	for name := range s.pods {
		if !s.podUp(name) {
			continue
		}
		p := s.procs[name]
		if p == nil {
			ctx, cancel := context.WithCancel(s.runCtx)
			p = &replicaProc{wake: make(chan struct{}, 1), cancel: cancel}
			s.procs[name] = p
			s.procWG.Add(1)
			go func() {
				defer s.procWG.Done()
				s.runReplica(ctx, name, p.wake)
			}()
		}
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// runReplica catches up the pod's replicas until ctx ends.
func (s *Store) runReplica(ctx context.Context, pod string, wake <-chan struct{}) {
	for {
		more := s.catchUpPod(pod)
		if more && s.opts.CatchUpDelay <= 0 {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		var delay <-chan time.Time
		if more {
			delay = s.clock.After(s.opts.CatchUpDelay)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-delay:
		}
	}
}

// catchUpPod copies one batch into each of the pod's replicas that is up
// and behind a leader; a replica that holds its leader's whole log joins
// the in-sync set (under the shard's lock, so no write slips between). It
// reports whether some replica is still behind.
func (s *Store) catchUpPod(pod string) (more bool) {
	var joined []int
	for _, sh := range s.shards {
		sh.mu.Lock()
		m := sh.members[pod]
		leader := sh.members[sh.leader]
		if m == nil || !m.up || m.inSync || m.vol == nil || leader == nil || leader == m {
			sh.mu.Unlock()
			continue
		}
		if catchUp(leader.log(sh.id), m.log(sh.id), s.opts.CatchUpBatch) {
			m.inSync = true
			joined = append(joined, sh.id)
		} else {
			more = true
		}
		sh.mu.Unlock()
	}
	if len(joined) > 0 {
		s.log.Info("Replicas caught up and rejoined their in-sync sets", "pod", pod, "shards", joined)
		s.poke()
	}
	return more
}
