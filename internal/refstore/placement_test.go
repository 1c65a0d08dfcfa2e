package refstore

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlacement(t *testing.T) {
	cases := []struct {
		name                      string
		shards, replication, pods int
		want                      [][]int // checked when set
	}{
		{name: "three pods, every shard everywhere", shards: 4, replication: 3, pods: 3,
			want: [][]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 1, 2}}},
		{name: "five pods", shards: 5, replication: 3, pods: 5,
			want: [][]int{{0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 0}, {4, 0, 1}}},
		{name: "fewer pods than replication", shards: 3, replication: 3, pods: 2,
			want: [][]int{{0, 1}, {1, 0}, {0, 1}}},
		{name: "no pods", shards: 2, replication: 3, pods: 0, want: [][]int{nil, nil}},
		{name: "reference store on three pods", shards: 30, replication: 3, pods: 3},
		{name: "reference store on four pods", shards: 30, replication: 3, pods: 4},
		{name: "reference store on seven pods", shards: 30, replication: 3, pods: 7},
		{name: "many pods", shards: 30, replication: 3, pods: 50},
		{name: "replication one", shards: 10, replication: 1, pods: 4},
	}
	for shards := 1; shards <= 40; shards += 3 {
		for pods := 1; pods <= 12; pods++ {
			for replication := 1; replication <= 5; replication++ {
				cases = append(cases, struct {
					name                      string
					shards, replication, pods int
					want                      [][]int
				}{name: fmt.Sprintf("%d shards of %d on %d pods", shards, replication, pods), shards: shards, replication: replication, pods: pods})
			}
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Placement(tc.shards, tc.replication, tc.pods)
			if tc.want != nil {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Fatalf("Placement (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(got, Placement(tc.shards, tc.replication, tc.pods)); diff != "" {
				t.Fatalf("Placement is not deterministic (-first +second):\n%s", diff)
			}
			if len(got) != tc.shards {
				t.Fatalf("%d shards placed, want %d", len(got), tc.shards)
			}
			if tc.pods == 0 {
				return
			}
			replicas := make([]int, tc.pods)
			leaders := make([]int, tc.pods)
			for s, pods := range got {
				if len(pods) != min(tc.replication, tc.pods) {
					t.Errorf("shard %d on %d pods, want %d", s, len(pods), min(tc.replication, tc.pods))
				}
				distinct := slices.Compact(slices.Sorted(slices.Values(pods)))
				if len(distinct) != len(pods) {
					t.Errorf("shard %d on %v: a pod twice", s, pods)
				}
				for _, p := range pods {
					if p < 0 || p >= tc.pods {
						t.Errorf("shard %d on pod %d of %d", s, p, tc.pods)
					}
					replicas[p]++
				}
				leaders[pods[0]]++
			}
			for what, counts := range map[string][]int{"replicas": replicas, "leaders": leaders} {
				if lo, hi := slices.Min(counts), slices.Max(counts); hi-lo > 1 {
					t.Errorf("%s per pod %v: not balanced (%d to %d)", what, counts, lo, hi)
				}
			}
		})
	}
}
