package refstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// Defaults of Options.
const (
	DefaultShards        = 30
	DefaultReplication   = 3
	DefaultMinInSync     = 2
	DefaultCatchUpBatch  = 256
	DefaultRestartHold   = 30 * time.Second
	DefaultApprovalGrace = 10 * time.Second
)

// reconcileInterval is how often the store looks again at its shards
// without being asked: approvals that lapse, leaders to move back.
const reconcileInterval = time.Second

// Options configure a Store.
type Options struct {
	// Namespace and App name the StatefulApp whose pods hold the replicas;
	// its pods are <App>-<ordinal>. App is required.
	Namespace, App string
	// Shards, Replication and MinInSync: a write is acknowledged once
	// MinInSync in-sync replicas of its shard hold it. Zero means the
	// default.
	Shards, Replication, MinInSync int
	// CatchUpBatch is how many entries a catching-up replica copies per
	// step; zero means DefaultCatchUpBatch.
	CatchUpBatch int
	// CatchUpDelay is a pause between steps, to watch replicas catch up.
	CatchUpDelay time.Duration
	// RestartHold: a store that finds pods already running when it starts
	// (a restart) approves no new operation on a running pod for this long,
	// so that a stop approved before the restart shows before it approves
	// another.
	RestartHold time.Duration
	// ApprovalGrace: an approved operation counts its pod out until its
	// deadline plus this margin (clock skew, watch delay).
	ApprovalGrace time.Duration
	// LeaderHandoff: how long a leader moved off a pod for an operation
	// takes to hand over before the operation is approved. The store's own
	// handoff is done under the shard's lock (no write is in flight on the
	// old leader once it is moved), so zero, the default, approves in the
	// answer that moves the leaders; more plays a data system whose
	// handoff takes time (the shard manager answers RETRY_AFTER for the
	// time left).
	LeaderHandoff time.Duration
	// Clock is the time source; nil means the real clock.
	Clock clock.WithTicker
	// Logger logs the store's changes.
	Logger logr.Logger
}

func (o *Options) defaults() {
	if o.Shards == 0 {
		o.Shards = DefaultShards
	}
	if o.Replication == 0 {
		o.Replication = DefaultReplication
	}
	if o.MinInSync == 0 {
		o.MinInSync = DefaultMinInSync
	}
	if o.CatchUpBatch == 0 {
		o.CatchUpBatch = DefaultCatchUpBatch
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
}

// Validate checks the options (after defaults).
func (o Options) Validate() error {
	var errs []error
	if o.App == "" {
		errs = append(errs, errors.New("app is required"))
	}
	if o.Shards < 1 || o.Shards > 10000 {
		errs = append(errs, fmt.Errorf("shards must be 1 to 10000, not %d", o.Shards))
	}
	if o.Replication < 1 || o.Replication > 100 {
		errs = append(errs, fmt.Errorf("replication must be 1 to 100, not %d", o.Replication))
	}
	if o.MinInSync < 1 || o.MinInSync > o.Replication {
		errs = append(errs, fmt.Errorf("min-in-sync must be 1 to the replication (%d), not %d", o.Replication, o.MinInSync))
	}
	if o.CatchUpBatch < 1 {
		errs = append(errs, fmt.Errorf("catch-up batch must be positive, not %d", o.CatchUpBatch))
	}
	for name, d := range map[string]time.Duration{"catch-up delay": o.CatchUpDelay, "restart hold": o.RestartHold, "approval grace": o.ApprovalGrace, "leader handoff": o.LeaderHandoff} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, not %s", name, d))
		}
	}
	return errors.Join(errs...)
}

// Pod is what the store knows of one pod of the app.
type Pod struct {
	Name    string
	Ordinal int
	Node    string
	// Up: the pod is Running and Ready (and not terminating); its replicas
	// serve.
	Up bool
	// Why the pod is not up, in words ("Pending", "not Ready",
	// "terminating"), for reasons shown to people.
	Why string
	// Volume identifies the pod's data volume (claim name and UID): the
	// replicas' data lives there. Required for Up.
	Volume string
	// StopApproved is the pod's stop-approved annotation, when it has one:
	// Strata's record of an approved EVICT, which a restarted store learns.
	StopApproved *StopApproval
}

// StopApproval is an approved operation as Strata records it on a pod.
type StopApproval struct {
	OperationID string
	Deadline    time.Time
}

// Snapshot is the app's pods as the watcher sees them.
type Snapshot struct {
	// Replicas is the StatefulApp's spec.replicas, nil when unknown (the
	// store then spreads shards over the highest ordinal seen).
	Replicas *int32
	Pods     []Pod
}

// shard is one shard: its replicas (members, by pod), leader and
// acknowledged writes.
type shard struct {
	id int

	mu sync.Mutex
	// members are the shard's replicas by pod name. The members map is
	// changed only under both the store's and the shard's lock.
	members map[string]*member
	// target are the pods placement puts the shard on, the preferred leader
	// first.
	target []string
	// leader is the pod of the leading replica, "" when none leads.
	leader string
	// epoch counts leader changes.
	epoch int64
	// acked counts the shard's acknowledged writes: the leader's log length.
	acked int
}

// member is a replica of a shard on a pod.
type member struct {
	pod     string
	ordinal int
	// vol is the volume the replica's data is on; nil before its pod was
	// first up.
	vol *volume
	// up: the pod is up on vol.
	up bool
	// inSync: the replica holds every acknowledged write of the shard. A
	// replica that goes down leaves the in-sync set, unless it is the last
	// one in it (then the shard waits for it).
	inSync bool
}

func (m *member) log(shard int) *replicaLog { return m.vol.logs[shard] }

// serving: the replica is up and in sync; it takes every write.
func (m *member) serving() bool { return m.up && m.inSync }

// Store is the reference data system: shards replicated over the app's
// pods, and its shard manager. It is safe for concurrent use.
type Store struct {
	opts   Options
	clock  clock.WithTicker
	log    logr.Logger
	shards []*shard
	// kick asks Run to reconcile now.
	kick chan struct{}

	mu sync.Mutex
	// synced: the store has seen the pods once.
	synced bool
	// holdUntil: no new operation on a running pod is approved before it.
	holdUntil time.Time
	pods      map[string]Pod
	// replicas is the app's spec.replicas when known, else -1; maxOrdinal
	// the highest ordinal ever seen.
	replicas, maxOrdinal int
	// size is the number of pods placement spreads shards over.
	size     int
	volumes  map[string]*volume
	ops      map[string]*operation
	finished map[string]time.Time
	// procs are the replica goroutines of up pods; runCtx is Run's context.
	procs  map[string]*replicaProc
	runCtx context.Context
	procWG sync.WaitGroup
}

// New returns a store with no pods yet: Observe tells it about them, Run
// runs its replicas.
func New(opts Options) (*Store, error) {
	opts.defaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Store{
		opts: opts, clock: opts.Clock, log: opts.Logger,
		kick:     make(chan struct{}, 1),
		pods:     map[string]Pod{},
		replicas: -1, maxOrdinal: -1,
		volumes:  map[string]*volume{},
		ops:      map[string]*operation{},
		finished: map[string]time.Time{},
		procs:    map[string]*replicaProc{},
	}
	for i := range opts.Shards {
		s.shards = append(s.shards, &shard{id: i, members: map[string]*member{}})
	}
	return s, nil
}

// Options returns the store's options, defaults applied.
func (s *Store) Options() Options { return s.opts }

// PodName is the name of the app's pod of an ordinal.
func (s *Store) PodName(ordinal int) string { return fmt.Sprintf("%s-%d", s.opts.App, ordinal) }

// Ordinal parses a pod name of the app, <app>-<ordinal>.
func (s *Store) Ordinal(pod string) (int, bool) {
	rest, ok := strings.CutPrefix(pod, s.opts.App+"-")
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// ShardOf is the shard of a key.
func (s *Store) ShardOf(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(len(s.shards)))
}

// Observe tells the store the app's pods now. The store brings replicas up
// and down with them: a replica whose pod is not up leaves its shards'
// in-sync sets, a leader that goes down hands over to an in-sync follower,
// a replica that comes back catches up before it rejoins.
func (s *Store) Observe(snap Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	pods := make(map[string]Pod, len(snap.Pods))
	for _, p := range snap.Pods {
		pods[p.Name] = p
		s.maxOrdinal = max(s.maxOrdinal, p.Ordinal)
		old, known := s.pods[p.Name]
		switch {
		case p.Up && (!known || !old.Up):
			s.log.Info("Replica pod is up", "pod", p.Name, "node", p.Node, "volume", p.Volume)
		case !p.Up && known && old.Up:
			s.log.Info("Replica pod is down", "pod", p.Name, "why", p.Why)
		}
	}
	for name, old := range s.pods {
		if _, ok := pods[name]; !ok && old.Up {
			s.log.Info("Replica pod is gone", "pod", name)
		}
	}
	if !s.synced {
		s.synced = true
		if len(snap.Pods) > 0 && s.opts.RestartHold > 0 {
			s.holdUntil = now.Add(s.opts.RestartHold)
			s.log.Info("Found pods running at start: approving no new operation on a running pod for a while",
				"pods", len(snap.Pods), "until", s.holdUntil)
		}
	}
	s.pods = pods
	if snap.Replicas != nil {
		s.replicas = int(*snap.Replicas)
	}
	size := s.replicas
	if size < 0 {
		size = s.maxOrdinal + 1
	}
	if size != s.size {
		s.resize(size)
	}
	s.learnApprovals(now)
	s.reconcile(now)
}

// resize places the shards over size pods: each shard gains members on
// the pods placement now puts it on. Members off the placement stay until
// the shard's placed replicas are in sync and enough of them are under no
// operation (reconcile retires them).
func (s *Store) resize(size int) {
	s.log.Info("Placing shards", "pods", size, "shards", len(s.shards), "replication", s.opts.Replication)
	s.size = size
	placement := Placement(len(s.shards), s.opts.Replication, size)
	for i, sh := range s.shards {
		sh.mu.Lock()
		sh.target = sh.target[:0]
		for _, ord := range placement[i] {
			name := s.PodName(ord)
			sh.target = append(sh.target, name)
			if sh.members[name] == nil {
				sh.members[name] = &member{pod: name, ordinal: ord}
			}
		}
		sh.mu.Unlock()
	}
}

// volume returns the volume of a key, new and empty the first time.
func (s *Store) volume(key string) *volume {
	v := s.volumes[key]
	if v == nil {
		v = newVolume(key, len(s.shards))
		s.volumes[key] = v
	}
	return v
}

// podUp: the pod is up on a volume.
func (s *Store) podUp(name string) bool {
	p, ok := s.pods[name]
	return ok && p.Up && p.Volume != ""
}

// changes collects what a reconcile changed, to log it once.
type changes struct {
	leaders    map[string][]int // new leader -> shards
	leaderless []int
	lost       []int
	retired    map[string][]int // pod -> shards
}

// reconcile brings every shard in line with the pods and operations: up
// and down replicas, leaders, retired replicas; then the replica
// goroutines.
func (s *Store) reconcile(now time.Time) {
	s.expire(now)
	pending := s.pendingPods(now)
	ch := &changes{leaders: map[string][]int{}, retired: map[string][]int{}}
	for _, sh := range s.shards {
		sh.mu.Lock()
		for _, m := range sortedMembers(sh) {
			s.syncMember(sh, m, ch)
		}
		s.electLeader(sh, pending, ch)
		s.retire(sh, pending, ch)
		sh.mu.Unlock()
	}
	for pod, shards := range ch.leaders {
		s.log.Info("Shards have a new leader", "leader", pod, "shards", shards)
	}
	if len(ch.leaderless) > 0 {
		s.log.Info("Shards have no leader: no in-sync replica is up", "shards", ch.leaderless)
	}
	if len(ch.lost) > 0 {
		s.log.Error(nil, "Shards lost their last in-sync replica: their acknowledged writes are gone until it comes back on its volume", "shards", ch.lost)
	}
	for pod, shards := range ch.retired {
		s.log.Info("Retired replicas off the placement", "pod", pod, "shards", shards)
	}
	s.syncProcs()
}

// syncMember follows the member's pod: up or down, and on which volume.
func (s *Store) syncMember(sh *shard, m *member, ch *changes) {
	p, ok := s.pods[m.pod]
	up := ok && p.Up && p.Volume != ""
	if up && m.vol != nil && m.vol.key != p.Volume {
		// The pod is back on another volume: the replica's data is out of
		// reach, it starts over on the new one.
		if m.inSync && !s.otherInSync(sh, m) {
			ch.lost = append(ch.lost, sh.id)
		}
		m.inSync = false
		m.up = false
		m.vol = nil
		if sh.leader == m.pod {
			sh.leader = ""
		}
	}
	if up && m.vol == nil {
		m.vol = s.volume(p.Volume)
		m.inSync = false
	}
	switch {
	case m.up && !up:
		m.up = false
		if m.inSync && s.otherInSync(sh, m) {
			m.inSync = false
		}
		if sh.leader == m.pod {
			sh.leader = ""
		}
	case !m.up && up:
		m.up = true
	}
}

// otherInSync: another replica of the shard is in sync.
func (s *Store) otherInSync(sh *shard, m *member) bool {
	for _, o := range sh.members {
		if o != m && o.inSync {
			return true
		}
	}
	return false
}

// rank orders the candidates to lead a shard: pods under no operation
// first, then placement order (the preferred leader first), then ordinal.
func rank(sh *shard, pending map[string]bool) func(a, b *member) int {
	return func(a, b *member) int {
		if c := cmp.Compare(boolInt(pending[a.pod]), boolInt(pending[b.pod])); c != 0 {
			return c
		}
		if c := cmp.Compare(targetIndex(sh, a.pod), targetIndex(sh, b.pod)); c != 0 {
			return c
		}
		return cmp.Compare(a.ordinal, b.ordinal)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func targetIndex(sh *shard, pod string) int {
	if i := slices.Index(sh.target, pod); i >= 0 {
		return i
	}
	return len(sh.target)
}

// electLeader gives a leaderless shard a leader, an in-sync replica that
// is up, and moves leadership to a better one: off a pod under an
// operation, back to the preferred leader.
func (s *Store) electLeader(sh *shard, pending map[string]bool, ch *changes) {
	var cands []*member
	for _, m := range sh.members {
		// A shard that never acknowledged a write may start on any replica.
		if m.up && m.vol != nil && (m.inSync || (sh.acked == 0 && sh.leader == "")) {
			cands = append(cands, m)
		}
	}
	if len(cands) == 0 {
		if sh.leader == "" && sh.acked > 0 {
			ch.leaderless = append(ch.leaderless, sh.id)
		}
		return
	}
	best := slices.MinFunc(cands, rank(sh, pending))
	if cur := sh.members[sh.leader]; cur != nil && (best == cur || rank(sh, pending)(cur, best) <= 0) {
		return
	}
	if !best.inSync { // a new shard: every replica is empty
		best.log(sh.id).truncate(0)
		best.inSync = true
	}
	sh.leader = best.pod
	sh.epoch++
	ch.leaders[best.pod] = append(ch.leaders[best.pod], sh.id)
}

// moveLeader hands the shard's leadership off pod to the best in-sync
// replica elsewhere that is not out; it reports whether it did.
func (s *Store) moveLeader(sh *shard, pod string, pending, out map[string]bool) bool {
	var cands []*member
	for _, m := range sh.members {
		if m.pod != pod && m.serving() && !out[m.pod] {
			cands = append(cands, m)
		}
	}
	if len(cands) == 0 {
		return false
	}
	best := slices.MinFunc(cands, rank(sh, pending))
	sh.leader = best.pod
	sh.epoch++
	return true
}

// retire drops the replicas placement no longer puts on their pod, once
// every placed replica is in sync and up (and a placed one leads), but
// never one whose going would leave the shard fewer than min-in-sync
// in-sync replicas on pods that are up and under no operation (approved or
// being prepared): such a pod may stop any moment, and the shard must
// still have min-in-sync in-sync replicas when it does. Those old replicas
// stay (they take every write) until the placed ones suffice; with fewer
// placed pods than min-in-sync, enough of them stay for good. Replicas
// that do not count go first, then the highest ordinals.
func (s *Store) retire(sh *shard, pending map[string]bool, ch *changes) {
	if len(sh.target) == 0 {
		return
	}
	for _, pod := range sh.target {
		if m := sh.members[pod]; m == nil || !m.serving() {
			return
		}
	}
	counts := func(m *member) bool { return m.serving() && !pending[m.pod] }
	var drop []*member
	n := 0
	for pod, m := range sh.members {
		if counts(m) {
			n++
		}
		if !slices.Contains(sh.target, pod) && pod != sh.leader {
			drop = append(drop, m)
		}
	}
	slices.SortFunc(drop, func(a, b *member) int {
		return cmp.Or(cmp.Compare(boolInt(counts(a)), boolInt(counts(b))), cmp.Compare(b.ordinal, a.ordinal))
	})
	for _, m := range drop {
		if counts(m) {
			if n <= s.opts.MinInSync {
				return
			}
			n--
		}
		delete(sh.members, m.pod)
		ch.retired[m.pod] = append(ch.retired[m.pod], sh.id)
	}
}

func sortedMembers(sh *shard) []*member {
	ms := make([]*member, 0, len(sh.members))
	for _, m := range sh.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.ordinal, b.ordinal) })
	return ms
}

// Run runs the replicas' catch-up and looks at the shards again every
// second (approvals that lapse, leaders to move back) until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	s.mu.Lock()
	s.runCtx = ctx
	s.syncProcs()
	s.mu.Unlock()
	ticker := s.clock.NewTicker(reconcileInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for name, p := range s.procs {
				p.cancel()
				delete(s.procs, name)
			}
			s.runCtx = nil
			s.mu.Unlock()
			s.procWG.Wait()
			return nil
		case <-ticker.C():
		case <-s.kick:
		}
		s.mu.Lock()
		s.reconcile(s.clock.Now())
		s.mu.Unlock()
	}
}

// poke asks Run to reconcile soon.
func (s *Store) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}
