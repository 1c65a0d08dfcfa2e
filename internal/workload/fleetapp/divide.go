package fleetapp

import (
	"fmt"
	"slices"
	"strings"
)

// divide splits replicas over clusters by weight, by largest remainder (ties
// to the first name): a cluster not in weights weighs 1. While there are at
// least as many replicas as clusters of weight above zero, each of those
// gets one or more, so that no cluster that has the app is left with none
// unless its weight says so. It fails when the weights of the clusters sum
// to zero.
func divide(replicas int32, clusters []string, weights map[string]int32) (map[string]int32, error) {
	names := slices.Sorted(slices.Values(clusters))
	weight := func(c string) int64 {
		if w, ok := weights[c]; ok {
			return int64(w)
		}
		return 1
	}
	var total int64
	for _, c := range names {
		total += weight(c)
	}
	shares := make(map[string]int32, len(names))
	if len(names) == 0 {
		return shares, nil
	}
	if total == 0 {
		return nil, fmt.Errorf("spec.fleet.weights give the app's clusters (%s) a weight of 0 in all: give one of them a weight above 0", strings.Join(names, ", "))
	}
	type rest struct {
		name string
		frac int64
	}
	var (
		given int32
		rests []rest
	)
	for _, c := range names {
		exact := int64(replicas) * weight(c)
		shares[c] = int32(exact / total)
		given += shares[c]
		rests = append(rests, rest{c, exact % total})
	}
	slices.SortStableFunc(rests, func(a, b rest) int {
		switch {
		case a.frac > b.frac:
			return -1
		case a.frac < b.frac:
			return 1
		}
		return 0
	})
	for i := 0; given < replicas; i++ {
		shares[rests[i%len(rests)].name]++
		given++
	}

	// One each for the clusters of weight above zero left with none, taken
	// from the largest shares.
	var weighted []string
	for _, c := range names {
		if weight(c) > 0 {
			weighted = append(weighted, c)
		}
	}
	if int(replicas) < len(weighted) {
		return shares, nil
	}
	for _, c := range weighted {
		if shares[c] > 0 {
			continue
		}
		largest := ""
		for _, d := range names {
			if largest == "" || shares[d] > shares[largest] {
				largest = d
			}
		}
		shares[largest]--
		shares[c]++
	}
	return shares, nil
}
