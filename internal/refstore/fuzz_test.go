package refstore

import (
	"testing"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// FuzzRequestOperation plays the shard-manager protocol against the
// reference store: a program of requests, completions, cancellations, pods
// going down and up, and time passing, each step three bytes. The property
// is the protocol's promise (checkApproval): an approval never takes a
// shard below MinInSync serving replicas, nor its last in-sync one. And a
// request is
// answered with a decision or a status error the protocol names, never
// another error.
func FuzzRequestOperation(f *testing.F) {
	// Restart kv-0 (asked until approved: leaders move first), then kv-1
	// while kv-0 is out, then complete kv-0 and ask for kv-1 again.
	f.Add([]byte{0, 0, 60, 0, 0, 60, 0, 0, 60, 0, 1, 60, 0, 1, 60, 1, 0, 0, 4, 5, 0, 0, 1, 60, 0, 1, 60})
	f.Add([]byte{4, 255, 0, 0, 0, 60, 0, 0, 60, 0, 0, 60, 3, 1, 0, 0, 2, 60, 0, 2, 60, 0, 2, 60})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 4, 20, 0, 0, 2, 2})
	f.Add([]byte{3, 1, 0, 0, 0, 2, 0, 0, 2, 3, 1, 0, 0, 0, 2})
	f.Add([]byte{0, 3, 9, 0, 0, 255, 4, 200, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0})
	f.Fuzz(func(t *testing.T, program []byte) {
		if len(program) > 300 {
			return // a few dozen steps find what a hundred do
		}
		fx := newFixture(t, func(o *Options) { o.Logger = logr.Discard() })
		fx.start()
		pods := []string{"kv-0", "kv-1", "kv-2", "kv-3"} // kv-3 is not a pod of the app
		kinds := []shardmanagerv1.OperationKind{restart, evict, move, remove, 9}
		for i := 0; i+2 < len(program); i += 3 {
			action, a, b := program[i]%5, int(program[i+1]), int(program[i+2])
			pod := pods[a%len(pods)]
			kind := kinds[b%len(kinds)]
			id := "shop/kv/" + pod + "/" + kindName(kind)
			switch action {
			case 0:
				op := &shardmanagerv1.Operation{OperationId: id, Namespace: "shop", App: "kv", Pod: pod, Kind: kind,
					Deadline: timestamppb.New(fx.clock.Now().Add(time.Duration(b-32) * 10 * time.Second))}
				d, err := fx.s.RequestOperation(op)
				if err != nil {
					if c := status.Code(err); c != codes.InvalidArgument && c != codes.FailedPrecondition && c != codes.NotFound {
						t.Fatalf("step %d: RequestOperation(%s): %v", i/3, id, err)
					}
					continue
				}
				if d.Decision == shardmanagerv1.Decision_DECISION_APPROVED {
					checkApproval(t, fx.s, op, i/3)
				}
			case 1:
				_ = fx.s.CompleteOperation(id)
			case 2:
				_ = fx.s.CancelOperation(id)
			case 3:
				if pod == "kv-3" {
					continue
				}
				if fx.pods[pod].Up {
					fx.down(pod, "terminating")
				} else {
					fx.up(pod)
				}
			case 4:
				fx.clock.Step(time.Duration(a) * time.Second)
				fx.settle()
			}
		}
	})
}

// checkApproval: stopping a running pod leaves every shard it holds a
// replica of with MinInSync serving replicas elsewhere, on pods under no
// other approval that holds. A pod that is down is out of its shards'
// in-sync sets already, so stopping it changes none; but an operation that
// may take its data away (all but RESTART) must not take a shard's last
// in-sync replica.
func checkApproval(t *testing.T, s *Store, op *shardmanagerv1.Operation, step int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	pod := op.GetPod()
	running := s.pods[pod].Up && s.pods[pod].Volume != ""
	out := map[string]bool{}
	for id, o := range s.ops {
		if id != op.GetOperationId() && o.state == opApproved && !s.lapsed(o, now) {
			out[o.op.GetPod()] = true
		}
	}
	for _, sh := range s.shards {
		sh.mu.Lock()
		mine, held := sh.members[pod]
		serving, inSyncElsewhere := 0, false
		for other, m := range sh.members {
			if other == pod {
				continue
			}
			inSyncElsewhere = inSyncElsewhere || m.inSync
			if !out[other] && m.serving() {
				serving++
			}
		}
		sh.mu.Unlock()
		switch {
		case !held:
		case running && serving < s.opts.MinInSync:
			t.Fatalf("step %d: approved %s, leaving shard %d with %d serving replicas elsewhere (pods out: %v), want %d",
				step, op.GetOperationId(), sh.id, serving, out, s.opts.MinInSync)
		case !running && op.GetKind() != restart && mine.inSync && !inSyncElsewhere:
			t.Fatalf("step %d: approved %s of a down pod that holds the last in-sync replica of shard %d", step, op.GetOperationId(), sh.id)
		}
	}
}
