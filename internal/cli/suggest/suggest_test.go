package suggest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClosest(t *testing.T) {
	profiles := []string{"general", "highmem", "storage", "gpu-h100"}
	tests := []struct {
		name       string
		typed      string
		candidates []string
		want       []string
	}{
		{"one typo", "generl", profiles, []string{"general"}},
		{"a transposition", "hihgmem", profiles, []string{"highmem"}},
		{"case does not count", "General", profiles, []string{"general"}},
		{"a prefix", "gpu", profiles, []string{"gpu-h100"}},
		{"nothing close", "nope", profiles, []string{}},
		{"the name itself is no suggestion", "general", profiles, []string{}},
		{"only the nearest, by name", "workload-3", []string{"workload-2", "workload-1", "workload-10", "hub"},
			[]string{"workload-1", "workload-2"}},
		{"a typo is nearer than another word", "lst", []string{"get", "list"}, []string{"list"}},
		{"within two edits", "wrkld-1", []string{"workload-1"}, []string{}},
		{"at most three", "w", []string{"w1", "w2", "w3", "w4"}, []string{"w1", "w2", "w3"}},
		{"no candidates", "x", nil, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Closest(tc.typed, tc.candidates)); diff != "" {
				t.Errorf("Closest(%q) (-want +got):\n%s", tc.typed, diff)
			}
		})
	}
}

func TestDidYouMean(t *testing.T) {
	tests := []struct {
		typed      string
		candidates []string
		want       string
	}{
		{"generl", []string{"general", "highmem"}, `; did you mean "general"?`},
		{"workload-3", []string{"workload-1", "workload-2"}, `; did you mean "workload-1" or "workload-2"?`},
		{"nope", []string{"general"}, ""},
	}
	for _, tc := range tests {
		if got := DidYouMean(tc.typed, tc.candidates); got != tc.want {
			t.Errorf("DidYouMean(%q, %v) = %q, want %q", tc.typed, tc.candidates, got, tc.want)
		}
	}
}
