// Package suggest finds the names a person probably meant: "generl" ->
// "general". The commands use it for the names they look up (node
// profiles, clusters) and for subcommands: cobra's own suggestions list
// every command two edits away, the nearest not first ("get" and "list"
// for "lst").
package suggest

import (
	"fmt"
	"slices"
	"strings"
)

// maxDistance is how many edits away a name may be and still be suggested,
// as in cobra's suggestions: two typos, or a transposition.
const maxDistance = 2

// Closest returns the candidates nearest to name, by name: those the
// fewest edits away, at most maxDistance; a candidate that name begins
// counts as one edit away ("gpu" -> "gpu-h100"). At most three.
func Closest(name string, candidates []string) []string {
	lower := strings.ToLower(name)
	best, out := maxDistance+1, []string{}
	for _, c := range slices.Sorted(slices.Values(candidates)) {
		if c == name || slices.Contains(out, c) {
			continue
		}
		d := Distance(lower, strings.ToLower(c))
		if lower != "" && strings.HasPrefix(strings.ToLower(c), lower) {
			d = min(d, 1)
		}
		switch {
		case d > maxDistance:
		case d < best:
			best, out = d, []string{c}
		case d == best:
			out = append(out, c)
		}
	}
	return out[:min(len(out), 3)]
}

// DidYouMean returns `; did you mean "x"?` (or `"x" or "y"`) for the close
// candidates of name, and "" when none is close.
func DidYouMean(name string, candidates []string) string {
	closest := Closest(name, candidates)
	if len(closest) == 0 {
		return ""
	}
	quoted := make([]string, len(closest))
	for i, c := range closest {
		quoted[i] = fmt.Sprintf("%q", c)
	}
	return "; did you mean " + strings.Join(quoted, " or ") + "?"
}

// Distance is the Levenshtein distance of a and b, by runes.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
