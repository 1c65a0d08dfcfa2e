package appscli

import (
	"cmp"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// FuzzDescribeShards feeds `kubectl strata status` a shard manager's
// DescribeShards answer (the app's owner runs the shard manager).
// Properties: every pod and replica and operation is kept, each pod's
// replicas are in shard order, and the summaries are written without a
// panic.
func FuzzDescribeShards(f *testing.F) {
	seed := func(resp *shardmanagerv1.DescribeShardsResponse) {
		raw, err := proto.Marshal(resp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	seed(&shardmanagerv1.DescribeShardsResponse{Shards: 3, ReplicationFactor: 3, MinInSync: 2,
		Pods: []*shardmanagerv1.PodShards{{Pod: "kv-0", Available: true, Replicas: []*shardmanagerv1.Replica{
			{Shard: 2, Role: shardmanagerv1.ReplicaRole_REPLICA_ROLE_LEADER, InSync: true},
			{Shard: 0, Role: shardmanagerv1.ReplicaRole_REPLICA_ROLE_FOLLOWER},
		}}},
		Operations: []*shardmanagerv1.Operation{{OperationId: "ns/kv/kv-0/Evict/0a1b2c3d-1", Pod: "kv-0", Kind: shardmanagerv1.OperationKind_OPERATION_KIND_EVICT}},
	})
	// Shard ids far apart: their difference does not fit an int32.
	seed(&shardmanagerv1.DescribeShardsResponse{Shards: -1, MinInSync: 1 << 30,
		Pods: []*shardmanagerv1.PodShards{{Pod: "kv-1", Replicas: []*shardmanagerv1.Replica{{Shard: 2147483647}, {Shard: -2}, {Shard: 5}}}}})
	f.Add([]byte{0x22, 0x02, 0x08, 0xff})
	f.Fuzz(func(t *testing.T, raw []byte) {
		resp := &shardmanagerv1.DescribeShardsResponse{}
		if proto.Unmarshal(raw, resp) != nil {
			return // gRPC refuses it before status sees it
		}
		s := fromProto(resp)
		if len(s.Pods) != len(resp.GetPods()) || len(s.Operations) != len(resp.GetOperations()) {
			t.Fatalf("%d pods and %d operations, the answer has %d and %d", len(s.Pods), len(s.Operations), len(resp.GetPods()), len(resp.GetOperations()))
		}
		for i, p := range s.Pods {
			if len(p.Replicas) != len(resp.GetPods()[i].GetReplicas()) {
				t.Fatalf("pod %q: %d replicas, the answer has %d", p.Pod, len(p.Replicas), len(resp.GetPods()[i].GetReplicas()))
			}
			if !slices.IsSortedFunc(p.Replicas, func(a, b Replica) int { return cmp.Compare(a.Shard, b.Shard) }) {
				t.Fatalf("pod %q: replicas not in shard order: %+v", p.Pod, p.Replicas)
			}
			_ = podShardsLine(&s.Pods[i])
		}
		_ = appShardsLine(s)
	})
}
