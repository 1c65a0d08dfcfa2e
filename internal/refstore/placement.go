package refstore

import "slices"

// Placement returns, for each of shards shards, the ordinals of the pods
// that hold its replicas, the preferred leader first. Each shard is on
// min(replication, pods) distinct pods. Shard s is led by pod s mod pods;
// its other replicas go, one round of shards at a time, to the pods that
// hold the fewest replicas so far (the nearest after the leader on a tie),
// so every pod holds the same number of replicas and leads the same number
// of shards, give or take one. It is a pure function of its arguments:
// every incarnation of the store places shards alike.
func Placement(shards, replication, pods int) [][]int {
	out := make([][]int, shards)
	if pods <= 0 || replication <= 0 {
		return out
	}
	load := make([]int, pods)
	for s := range out {
		out[s] = make([]int, 1, min(replication, pods))
		out[s][0] = s % pods
		load[s%pods]++
	}
	for range min(replication, pods) - 1 {
		for s := range out {
			best := -1
			for k := 1; k < pods; k++ {
				p := (out[s][0] + k) % pods
				if !slices.Contains(out[s], p) && (best < 0 || load[p] < load[best]) {
					best = p
				}
			}
			out[s] = append(out[s], best)
			load[best]++
		}
	}
	return out
}
