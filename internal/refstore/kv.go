package refstore

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	refstorev1 "github.com/strata-dev/strata/proto/strata/refstore/v1"
)

// Limits of keys and values.
const (
	maxKeyBytes   = 1024
	maxValueBytes = 1 << 20
)

// PutResult says where a write went.
type PutResult struct {
	Shard    int
	Offset   int
	Replicas int
}

// Put writes a key through its shard's leader to every in-sync replica
// that is up, synchronously, and acknowledges it once they hold it. It
// fails with Unavailable, before writing anything, when the shard has no
// leader or fewer than min-in-sync in-sync replicas up: a write is never
// acknowledged and then lost.
func (s *Store) Put(key string, value []byte) (PutResult, error) {
	if err := checkKey(key); err != nil {
		return PutResult{}, err
	}
	if len(value) > maxValueBytes {
		return PutResult{}, status.Errorf(codes.InvalidArgument, "value is %d bytes, more than %d", len(value), maxValueBytes)
	}
	sh := s.shards[s.ShardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.leader == "" {
		return PutResult{}, status.Errorf(codes.Unavailable, "shard %d has no leader: none of its in-sync replicas is up", sh.id)
	}
	var targets []*member
	for _, m := range sortedMembers(sh) {
		if m.serving() {
			targets = append(targets, m)
		}
	}
	if len(targets) < s.opts.MinInSync {
		return PutResult{}, status.Errorf(codes.Unavailable, "shard %d has %s up (%s), %d needed",
			sh.id, plural(len(targets), "in-sync replica"), podList(targets), s.opts.MinInSync)
	}
	e := entry{epoch: sh.epoch, key: key, value: slices.Clone(value)}
	for _, m := range targets {
		m.log(sh.id).append(e)
	}
	sh.acked++
	return PutResult{Shard: sh.id, Offset: sh.acked - 1, Replicas: len(targets)}, nil
}

// GetResult is a read.
type GetResult struct {
	Found  bool
	Value  []byte
	Shard  int
	Offset int
}

// Get reads a key from its shard's leader.
func (s *Store) Get(key string) (GetResult, error) {
	if err := checkKey(key); err != nil {
		return GetResult{}, err
	}
	sh := s.shards[s.ShardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	leader := sh.members[sh.leader]
	if leader == nil {
		return GetResult{}, status.Errorf(codes.Unavailable, "shard %d has no leader: none of its in-sync replicas is up", sh.id)
	}
	e, off, ok := leader.log(sh.id).get(key)
	return GetResult{Found: ok, Value: slices.Clone(e.value), Shard: sh.id, Offset: off}, nil
}

func checkKey(key string) error {
	if key == "" || len(key) > maxKeyBytes {
		return status.Errorf(codes.InvalidArgument, "key must be 1 to %d bytes, not %d", maxKeyBytes, len(key))
	}
	return nil
}

// Sample reports each shard's leader and in-sync replicas that are up.
func (s *Store) Sample() *refstorev1.SampleResponse {
	resp := &refstorev1.SampleResponse{MinInSync: int32(s.opts.MinInSync), Time: timestamppb.New(s.clock.Now())}
	for _, sh := range s.shards {
		sh.mu.Lock()
		smp := &refstorev1.ShardSample{
			Shard: int32(sh.id), Leader: sh.leader,
			Replicas: int32(len(sh.members)), Offset: int64(sh.acked),
		}
		for _, m := range sortedMembers(sh) {
			if m.serving() {
				smp.InSyncPods = append(smp.InSyncPods, m.pod)
			}
		}
		smp.InSync = int32(len(smp.InSyncPods))
		sh.mu.Unlock()
		resp.Shards = append(resp.Shards, smp)
	}
	return resp
}

func plural(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func podList(ms []*member) string {
	if len(ms) == 0 {
		return "none"
	}
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.pod
	}
	return strings.Join(names, ", ")
}
