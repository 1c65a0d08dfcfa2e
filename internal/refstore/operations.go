package refstore

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// How long the shard manager asks Strata to wait before asking again.
const (
	// retryStuckLeaders: a leader found no replica to move to.
	retryStuckLeaders = time.Second
	// retryCatchingUp: a replica elsewhere is catching up, and a pod
	// elsewhere is down or under an operation too.
	retryCatchingUp = 2 * time.Second
	// retryCaughtUpSoon is the least wait for replicas elsewhere to catch
	// up, when that is all that is missing: the time their pod takes to
	// be seen up and copy the entries they lack.
	retryCaughtUpSoon = 200 * time.Millisecond
	// retryBlocked: replicas elsewhere are down or under operations.
	retryBlocked = 10 * time.Second
	// retryLearning: the shard manager has not seen the pods yet, or holds
	// approvals after a restart.
	retryLearning = 5 * time.Second
	// forgetAfter: operations lapsed this long ago, and ids completed or
	// cancelled this long ago, are forgotten.
	forgetAfter = time.Hour
)

// opState is where an operation is in the shard manager.
type opState string

const (
	// opDenied: asked, not approved (denied or waiting).
	opDenied opState = "Denied"
	// opPreparing: approvable once the leaders moved off the pod have
	// handed over (Options.LeaderHandoff).
	opPreparing opState = "Preparing"
	// opApproved: approved; the pod counts as out until the deadline (and
	// the grace) or completion.
	opApproved opState = "Approved"
)

// operation is an operation the shard manager knows.
type operation struct {
	op    *shardmanagerv1.Operation
	state opState
	// deadline: an approval holds until it.
	deadline time.Time
	// handedOff: when the leaders last moved off the pod for it (the
	// shards moved) have handed over: their move plus Options.LeaderHandoff.
	handedOff time.Time
	moved     []int
}

// Decision is the shard manager's answer to a RequestOperation.
type Decision struct {
	Decision   shardmanagerv1.Decision
	Reason     string
	RetryAfter time.Duration
}

func approved(reason string) Decision {
	return Decision{Decision: shardmanagerv1.Decision_DECISION_APPROVED, Reason: reason}
}

func denied(reason string, after time.Duration) Decision {
	return Decision{Decision: shardmanagerv1.Decision_DECISION_DENIED, Reason: reason, RetryAfter: after}
}

func retryAfter(reason string, after time.Duration) Decision {
	return Decision{Decision: shardmanagerv1.Decision_DECISION_RETRY_AFTER, Reason: reason, RetryAfter: after}
}

// checkApp refuses a request for another StatefulApp than the store's.
func (s *Store) checkApp(namespace, app string) error {
	if (namespace != "" && s.opts.Namespace != "" && namespace != s.opts.Namespace) || (app != "" && app != s.opts.App) {
		return status.Errorf(codes.NotFound, "this shard manager serves StatefulApp %s/%s, not %s/%s", s.opts.Namespace, s.opts.App, namespace, app)
	}
	return nil
}

func (s *Store) validateOperation(op *shardmanagerv1.Operation) error {
	switch {
	case op == nil:
		return status.Error(codes.InvalidArgument, "operation is required")
	case op.GetOperationId() == "":
		return status.Error(codes.InvalidArgument, "operation.operation_id is required")
	case op.GetPod() == "":
		return status.Error(codes.InvalidArgument, "operation.pod is required")
	case op.GetKind() == shardmanagerv1.OperationKind_OPERATION_KIND_UNSPECIFIED:
		return status.Error(codes.InvalidArgument, "operation.kind is required")
	case shardmanagerv1.OperationKind_name[int32(op.GetKind())] == "":
		return status.Errorf(codes.InvalidArgument, "operation.kind %d is not an OperationKind", op.GetKind())
	case op.GetDeadline() == nil:
		return status.Error(codes.InvalidArgument, "operation.deadline is required")
	}
	if err := op.GetDeadline().CheckValid(); err != nil {
		return status.Errorf(codes.InvalidArgument, "operation.deadline: %v", err)
	}
	if _, ok := s.Ordinal(op.GetPod()); !ok {
		return status.Errorf(codes.InvalidArgument, "operation.pod %q is not a pod of StatefulApp %s (%s-<ordinal>)", op.GetPod(), s.opts.App, s.opts.App)
	}
	return s.checkApp(op.GetNamespace(), op.GetApp())
}

// RequestOperation decides whether an operation on a pod may start now.
// It is idempotent by operation id: asking again returns the current
// answer for the same operation. It approves only when every shard with a
// replica on the pod keeps at least min-in-sync in-sync replicas on other
// pods that are up and not under another approved operation, so it
// approves several operations at once when their pods share no shard that
// would fall below its minimum (each approved pod counts as out for the
// next). Before it approves, it moves the pod's leaders elsewhere: the
// move is done under the shards' locks, so the same answer approves; with
// Options.LeaderHandoff it answers RETRY_AFTER for the time left until the
// handoff is over. A shard short only of replicas that are catching up is
// answered RETRY_AFTER for about the time they take, not DENIED.
func (s *Store) RequestOperation(op *shardmanagerv1.Operation) (Decision, error) {
	if err := s.validateOperation(op); err != nil {
		return Decision{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	id := op.GetOperationId()
	o := s.ops[id]
	if o != nil && (o.op.GetPod() != op.GetPod() || o.op.GetKind() != op.GetKind()) {
		return Decision{}, status.Errorf(codes.FailedPrecondition, "operation %s is a %s of %s, not a %s of %s: operation ids are unique per operation",
			id, kindName(o.op.GetKind()), o.op.GetPod(), kindName(op.GetKind()), op.GetPod())
	}
	if !s.synced {
		return retryAfter(fmt.Sprintf("the shard manager is still learning the pods of %s", s.opts.App), retryLearning), nil
	}
	deadline := op.GetDeadline().AsTime()
	if !now.Before(deadline) {
		return denied(fmt.Sprintf("the deadline %s has passed: ask with a later one", deadline.Format(time.RFC3339)), 0), nil
	}
	if o == nil {
		o = &operation{op: op, state: opDenied, deadline: deadline}
		s.ops[id] = o
		s.log.Info("Operation requested", "operation", id, "pod", op.GetPod(), "kind", kindName(op.GetKind()),
			"reason", op.GetReason(), "deadline", deadline)
	}
	wasApproved := o.state == opApproved && !s.lapsed(o, now)
	if !wasApproved {
		o.state = opDenied // decide makes it Preparing while it moves leaders
	}
	d := s.decide(o, deadline, now)
	switch {
	case d.Decision == shardmanagerv1.Decision_DECISION_APPROVED:
		o.op = op
		if wasApproved {
			deadline = later(o.deadline, deadline)
		}
		o.deadline = deadline
		if !wasApproved {
			s.log.Info("Operation approved", "operation", id, "pod", op.GetPod(), "until", o.deadline, "why", d.Reason)
		}
		o.state = opApproved
	case wasApproved:
		// An approval given stands until its deadline: Strata may be acting
		// on it. The answer says whether it would be given again now.
	default:
		o.op, o.deadline = op, deadline
		s.log.V(1).Info("Operation not approved yet", "operation", id, "decision", d.Decision, "why", d.Reason)
	}
	return d, nil
}

// decide is RequestOperation's decision for an operation asked with a
// deadline, given the shards now; it moves leaders off the pod when that is
// all that is missing.
func (s *Store) decide(o *operation, deadline, now time.Time) Decision {
	pod := o.op.GetPod()
	var onPod []*shard
	for _, sh := range s.shards {
		if sh.members[pod] != nil {
			onPod = append(onPod, sh)
		}
	}
	if len(onPod) == 0 {
		return approved(fmt.Sprintf("%s holds no replica", pod))
	}
	if !s.podUp(pod) {
		return s.decideDown(o, onPod)
	}
	held := o.state == opApproved && !s.lapsed(o, now)
	if now.Before(s.holdUntil) && !held {
		return retryAfter(fmt.Sprintf("the shard manager restarted; until %s it approves no new stop of a running pod, in case one approved before the restart is still under way",
			s.holdUntil.Format(time.RFC3339)), s.holdUntil.Sub(now))
	}
	out := s.outPods(now, o)
	var short []shortfall
	for _, sh := range onPod {
		if f, ok := s.shortfall(sh, pod, out); !ok {
			short = append(short, f)
		}
	}
	if len(short) > 0 {
		if wait, ok := s.catchUpWait(short); ok {
			return retryAfter(describeShortfalls(short, pod, s.opts.MinInSync), wait)
		}
		after := retryBlocked
		for _, f := range short {
			if f.catchingUp > 0 {
				after = retryCatchingUp
			}
		}
		return denied(describeShortfalls(short, pod, s.opts.MinInSync), after)
	}
	pending := s.pendingPods(now)
	pending[pod] = true
	var moved, stuck []int
	for _, sh := range onPod {
		sh.mu.Lock()
		if sh.leader == pod {
			if s.moveLeader(sh, pod, pending, out) {
				moved = append(moved, sh.id)
			} else {
				stuck = append(stuck, sh.id)
			}
		}
		sh.mu.Unlock()
	}
	if len(moved) > 0 {
		s.log.Info("Moved leaders off a pod for an operation", "pod", pod, "operation", o.op.GetOperationId(), "shards", moved)
		o.handedOff, o.moved = now.Add(s.opts.LeaderHandoff), moved
	}
	if held {
		return approved(fmt.Sprintf("approved until %s", later(o.deadline, deadline).Format(time.RFC3339)))
	}
	if len(stuck) > 0 {
		o.state = opPreparing
		return retryAfter(fmt.Sprintf("moving leaders of %s off %s", shardList(append(moved, stuck...)), pod), retryStuckLeaders)
	}
	if now.Before(o.handedOff) {
		// The leaders moved (now or at an earlier ask) and are handing
		// over: ask again when they are done, not on a fixed period.
		o.state = opPreparing
		what := "moving the leaders of %s off %s: handed over at %s"
		if len(moved) == 0 {
			what = "the leaders of %s moved off %s, handed over at %s"
		}
		return retryAfter(fmt.Sprintf(what, shardList(o.moved), pod, o.handedOff.Format(time.RFC3339Nano)), o.handedOff.Sub(now))
	}
	why := fmt.Sprintf("every shard on %s (%s) keeps %d or more in-sync replicas on other pods, and %s leads none",
		pod, plural(len(onPod), "shard"), s.opts.MinInSync, pod)
	if len(moved) > 0 {
		why = fmt.Sprintf("moved the leaders of %s off %s; ", shardList(moved), pod) + why
	}
	return approved(why)
}

// catchUpWait: when every shortfall would be made up by replicas that are
// catching up (they are up on their data and copy what they lack), how
// long that takes, about: the batches of the furthest behind, at the
// catch-up delay each, and at least retryCaughtUpSoon.
func (s *Store) catchUpWait(short []shortfall) (time.Duration, bool) {
	behind := 0
	for _, f := range short {
		if f.count+f.catchingUp < s.opts.MinInSync {
			return 0, false
		}
		behind = max(behind, f.behind)
	}
	steps := (behind + s.opts.CatchUpBatch - 1) / s.opts.CatchUpBatch
	return retryCaughtUpSoon + time.Duration(steps)*s.opts.CatchUpDelay, true
}

// decideDown decides an operation on a pod that is not up: it is out
// already, stopping it changes no in-sync set. But while a replica there
// is a shard's last in-sync one, an operation that may take its data away
// is refused: a MOVE or REMOVE deletes it, and an EVICT strands it on a
// pod made again only when its Node is back (after which a MOVE would
// stay refused). A RESTART keeps the pod where its data is.
func (s *Store) decideDown(o *operation, onPod []*shard) Decision {
	pod := o.op.GetPod()
	if k := o.op.GetKind(); k != shardmanagerv1.OperationKind_OPERATION_KIND_RESTART {
		var last []int
		for _, sh := range onPod {
			sh.mu.Lock()
			if m := sh.members[pod]; m.inSync && !s.otherInSync(sh, m) {
				last = append(last, sh.id)
			}
			sh.mu.Unlock()
		}
		if len(last) > 0 {
			what := "a " + kindName(k) + " would lose its acknowledged writes"
			if k == shardmanagerv1.OperationKind_OPERATION_KIND_EVICT {
				what = "an EVICT would strand its acknowledged writes on a pod that waits for its Node"
			}
			return denied(fmt.Sprintf("the only in-sync replica of %s is on %s, which is down: %s; bring %s back first",
				shardList(last), pod, what, pod), retryBlocked)
		}
	}
	why := "down"
	if p, ok := s.pods[pod]; ok && p.Why != "" {
		why = p.Why
	} else if !ok {
		why = "gone"
	}
	return approved(fmt.Sprintf("%s is %s already: its replicas are out of their in-sync sets", pod, why))
}

// shortfall is a shard that would have too few in-sync replicas.
type shortfall struct {
	shard int
	count int
	// catchingUp counts the replicas elsewhere that are catching up;
	// behind is how many entries the furthest of them lacks.
	catchingUp, behind int
	others             string
}

// shortfall counts the shard's in-sync replicas on pods other than pod
// that are up and not out; ok when there are min-in-sync of them.
func (s *Store) shortfall(sh *shard, pod string, out map[string]bool) (shortfall, bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	f := shortfall{shard: sh.id}
	var notes []string
	for _, m := range sortedMembers(sh) {
		switch {
		case m.pod == pod:
		case out[m.pod]:
			notes = append(notes, fmt.Sprintf("%s under operation %s", m.pod, s.opOn(m.pod)))
		case !m.up:
			why := "down"
			if p, ok := s.pods[m.pod]; !ok {
				why = "gone"
			} else if p.Why != "" {
				why = p.Why
			}
			notes = append(notes, fmt.Sprintf("%s %s", m.pod, why))
		case !m.inSync && sh.leader == "":
			notes = append(notes, fmt.Sprintf("%s waiting for a leader", m.pod))
		case !m.inSync:
			notes = append(notes, fmt.Sprintf("%s catching up", m.pod))
			f.catchingUp++
			if leader := sh.members[sh.leader]; leader != nil && leader.vol != nil && m.vol != nil {
				f.behind = max(f.behind, leader.log(sh.id).len()-m.log(sh.id).len())
			}
		default:
			f.count++
		}
	}
	if len(notes) == 0 {
		notes = append(notes, "no other replica")
	}
	f.others = strings.Join(notes, ", ")
	return f, f.count >= s.opts.MinInSync
}

// describeShortfalls says which shards would be short, shards in the same
// situation together: "shards 3, 7 have 1 in-sync replica besides kv-1
// (kv-2 catching up); 2 needed".
func describeShortfalls(short []shortfall, pod string, need int) string {
	type group struct {
		f      shortfall
		shards []int
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, f := range short {
		key := strconv.Itoa(f.count) + "|" + f.others
		g := byKey[key]
		if g == nil {
			g = &group{f: f}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.shards = append(g.shards, f.shard)
	}
	const shown = 3
	var parts []string
	for _, g := range groups[:min(len(groups), shown)] {
		verb := "has"
		if len(g.shards) > 1 {
			verb = "have"
		}
		parts = append(parts, fmt.Sprintf("%s %s %s besides %s (%s)", shardList(g.shards), verb, plural(g.f.count, "in-sync replica"), pod, g.f.others))
	}
	if rest := len(groups) - shown; rest > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", rest))
	}
	return fmt.Sprintf("%s; %d needed", strings.Join(parts, "; "), need)
}

func shardList(ids []int) string {
	ids = slices.Sorted(slices.Values(ids))
	strs := make([]string, len(ids))
	for i, id := range ids {
		strs[i] = strconv.Itoa(id)
	}
	if len(ids) == 1 {
		return "shard " + strs[0]
	}
	return "shards " + strings.Join(strs, ", ")
}

// lapsed: the approval no longer holds, deadline and grace passed.
func (s *Store) lapsed(o *operation, now time.Time) bool {
	return now.After(o.deadline.Add(s.opts.ApprovalGrace))
}

// outPods are the pods under an approved operation that has not lapsed,
// but for the operation except.
func (s *Store) outPods(now time.Time, except *operation) map[string]bool {
	out := map[string]bool{}
	for _, o := range s.ops {
		if o != except && o.state == opApproved && !s.lapsed(o, now) {
			out[o.op.GetPod()] = true
		}
	}
	return out
}

// pendingPods are the pods under an approved operation or one being
// prepared: no leadership goes there.
func (s *Store) pendingPods(now time.Time) map[string]bool {
	out := s.outPods(now, nil)
	for _, o := range s.ops {
		if o.state == opPreparing && now.Before(o.deadline) {
			out[o.op.GetPod()] = true
		}
	}
	return out
}

// opOn names the approved operation on a pod.
func (s *Store) opOn(pod string) string {
	ids := slices.Sorted(maps.Keys(s.ops))
	for _, id := range ids {
		if o := s.ops[id]; o.state == opApproved && o.op.GetPod() == pod {
			return id
		}
	}
	return "?"
}

// CompleteOperation says the operation is over; the pod's replicas rejoin
// their in-sync sets once caught up. Completing an unknown operation
// succeeds.
func (s *Store) CompleteOperation(id string) error {
	return s.finish(id, "completed")
}

// CancelOperation withdraws an operation. Idempotent.
func (s *Store) CancelOperation(id string) error {
	return s.finish(id, "cancelled")
}

func (s *Store) finish(id, how string) error {
	if id == "" {
		return status.Error(codes.InvalidArgument, "operation_id is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if o := s.ops[id]; o != nil {
		delete(s.ops, id)
		s.log.Info("Operation "+how, "operation", id, "pod", o.op.GetPod(), "state", o.state)
	}
	s.finished[id] = now
	s.poke()
	return nil
}

// learnApprovals takes up approvals Strata recorded on pods (the
// stop-approved annotation of an EVICT) that the store does not know: a
// restarted shard manager then counts those pods out until the deadline.
func (s *Store) learnApprovals(now time.Time) {
	for _, p := range s.pods {
		a := p.StopApproved
		if a == nil || a.OperationID == "" || s.ops[a.OperationID] != nil {
			continue
		}
		if _, done := s.finished[a.OperationID]; done || now.After(a.Deadline.Add(s.opts.ApprovalGrace)) {
			continue
		}
		s.ops[a.OperationID] = &operation{
			op: &shardmanagerv1.Operation{
				OperationId: a.OperationID, Namespace: s.opts.Namespace, App: s.opts.App, Pod: p.Name, Node: p.Node,
				Kind: shardmanagerv1.OperationKind_OPERATION_KIND_EVICT, Reason: "approval recorded on the pod (stop-approved)",
				Deadline: timestamppb.New(a.Deadline),
			},
			state: opApproved, deadline: a.Deadline,
		}
		s.log.Info("Learned an approved operation from its pod", "operation", a.OperationID, "pod", p.Name, "until", a.Deadline)
	}
}

// expire forgets operations that lapsed long ago and ids finished long ago.
func (s *Store) expire(now time.Time) {
	for id, o := range s.ops {
		if now.After(o.deadline.Add(s.opts.ApprovalGrace + forgetAfter)) {
			delete(s.ops, id)
		}
	}
	for id, t := range s.finished {
		if now.Sub(t) > forgetAfter {
			delete(s.finished, id)
		}
	}
}

// DescribeShards reports the replicas of each pod and the operations the
// shard manager holds.
func (s *Store) DescribeShards(namespace, app string) (*shardmanagerv1.DescribeShardsResponse, error) {
	if err := s.checkApp(namespace, app); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	resp := &shardmanagerv1.DescribeShardsResponse{
		Shards: int32(len(s.shards)), ReplicationFactor: int32(s.opts.Replication), MinInSync: int32(s.opts.MinInSync), //nolint:gosec // validated
	}
	byPod := map[string]*shardmanagerv1.PodShards{}
	podOf := func(name string) *shardmanagerv1.PodShards {
		ps := byPod[name]
		if ps == nil {
			ps = &shardmanagerv1.PodShards{Pod: name, Available: s.podUp(name)}
			byPod[name] = ps
		}
		return ps
	}
	for name := range s.pods {
		podOf(name)
	}
	for _, sh := range s.shards {
		sh.mu.Lock()
		for _, m := range sortedMembers(sh) {
			role := shardmanagerv1.ReplicaRole_REPLICA_ROLE_FOLLOWER
			if sh.leader == m.pod {
				role = shardmanagerv1.ReplicaRole_REPLICA_ROLE_LEADER
			}
			ps := podOf(m.pod)
			ps.Replicas = append(ps.Replicas, &shardmanagerv1.Replica{Shard: int32(sh.id), Role: role, InSync: m.inSync}) //nolint:gosec // small
		}
		sh.mu.Unlock()
	}
	for _, ps := range byPod {
		resp.Pods = append(resp.Pods, ps)
	}
	slices.SortFunc(resp.Pods, func(a, b *shardmanagerv1.PodShards) int {
		oa, _ := s.Ordinal(a.GetPod())
		ob, _ := s.Ordinal(b.GetPod())
		return cmp.Or(cmp.Compare(oa, ob), cmp.Compare(a.GetPod(), b.GetPod()))
	})
	for _, id := range slices.Sorted(maps.Keys(s.ops)) {
		o := s.ops[id]
		if (o.state == opApproved && !s.lapsed(o, now)) || (o.state == opPreparing && now.Before(o.deadline)) {
			op := cloneOp(o.op)
			op.Deadline = timestamppb.New(o.deadline)
			resp.Operations = append(resp.Operations, op)
		}
	}
	return resp, nil
}

func cloneOp(op *shardmanagerv1.Operation) *shardmanagerv1.Operation {
	return &shardmanagerv1.Operation{
		OperationId: op.GetOperationId(), Namespace: op.GetNamespace(), App: op.GetApp(), Pod: op.GetPod(),
		Node: op.GetNode(), Kind: op.GetKind(), Reason: op.GetReason(), Deadline: op.GetDeadline(),
	}
}

// kindName is RESTART for OPERATION_KIND_RESTART.
func kindName(k shardmanagerv1.OperationKind) string {
	return strings.TrimPrefix(k.String(), "OPERATION_KIND_")
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
