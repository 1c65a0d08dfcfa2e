package appscli

import (
	"slices"
	"testing"

	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// TestFromProtoShardOrder: replicas are listed in shard order even when
// two shard ids are further apart than an int32 holds (found by
// FuzzDescribeShards: the comparison subtracted them).
func TestFromProtoShardOrder(t *testing.T) {
	resp := &shardmanagerv1.DescribeShardsResponse{Pods: []*shardmanagerv1.PodShards{{Pod: "kv-1",
		Replicas: []*shardmanagerv1.Replica{{Shard: 2147483647}, {Shard: -2}, {Shard: 5}}}}}
	var got []int32
	for _, r := range fromProto(resp).Pods[0].Replicas {
		got = append(got, r.Shard)
	}
	if want := []int32{-2, 5, 2147483647}; !slices.Equal(got, want) {
		t.Errorf("shards in order %v, want %v", got, want)
	}
}
