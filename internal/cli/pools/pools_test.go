package pools

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/testutil"
)

func TestParseCapacity(t *testing.T) {
	tests := []struct {
		in      string
		want    int32
		wantErr string
	}{
		{in: "40", want: 40},
		{in: "0", want: 0},
		{in: "-3", wantErr: "capacity must not be negative, got -3"},
		{in: "many", wantErr: `capacity "many" is not a whole number`},
		{in: "1.5", wantErr: `capacity "1.5" is not a whole number`},
		{in: "3000000000", wantErr: `capacity "3000000000" is not a whole number`},
	}
	for _, tc := range tests {
		got, err := parseCapacity(tc.in)
		switch {
		case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
			t.Errorf("parseCapacity(%q) = %d, %v; want error %q", tc.in, got, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("parseCapacity(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestScaleMessage(t *testing.T) {
	// pool is a Pool of capacity that holds allocated machines, nodes of
	// them Nodes.
	pool := func(capacity, allocated, nodes int32) *fleetv1alpha1.Pool {
		p := testutil.MakePool("web", "workload-1", capacity).Obj()
		p.Status = fleetv1alpha1.PoolStatus{Desired: capacity, Allocated: allocated, Nodes: nodes}
		return p
	}
	tests := map[string]struct {
		pool     *fleetv1alpha1.Pool
		capacity int32
		want     string
	}{
		"a Pool that never got its capacity releases what it holds above the new one": {
			pool: pool(3000, 78, 78), capacity: 40,
			want: "Pool web: capacity 3000 -> 40. 38 of its 78 machines are released, evenly across MZs, each once its Node is drained " +
				"(the Pool has 78 Nodes); `strata pools` shows the progress.",
		},
		"a full Pool, some machines not joined yet": {
			pool: pool(100, 100, 97), capacity: 60,
			want: "Pool web: capacity 100 -> 60. 40 of its 100 machines are released, evenly across MZs, each once its Node is drained " +
				"(the Pool has 97 Nodes); `strata pools` shows the progress.",
		},
		"down to no more than it holds: nothing released": {
			pool: pool(3000, 78, 78), capacity: 100,
			want: "Pool web: capacity 3000 -> 100. It holds 78 machines (78 Nodes), no more than that: none is released.",
		},
		"up": {
			pool: pool(40, 40, 40), capacity: 50,
			want: "Pool web: capacity 40 -> 50.",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, scaleMessage(tc.pool, tc.capacity)); diff != "" {
				t.Errorf("scaleMessage (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAsk(t *testing.T) {
	tests := []struct {
		answer  string
		wantErr string
	}{
		{answer: "yes\n"},
		{answer: "Y\n"},
		{answer: "no\n", wantErr: `not deleted: the answer was "no", not yes`},
		{answer: "\n", wantErr: `not deleted: the answer was "", not yes`},
		{answer: "", wantErr: `not deleted: the answer was "", not yes`}, // end of input
	}
	for _, tc := range tests {
		var prompt bytes.Buffer
		err := ask(strings.NewReader(tc.answer), &prompt, "Pool web holds 3 Nodes")
		if got := errString(err); got != tc.wantErr {
			t.Errorf("answer %q: error %q, want %q", tc.answer, got, tc.wantErr)
		}
		if want := "Pool web holds 3 Nodes.\nDelete it? Type yes to delete: "; prompt.String() != want {
			t.Errorf("prompt %q, want %q", prompt.String(), want)
		}
	}
}

// Only a terminal is asked; a pipe or a reader is a script's stdin.
func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = r.Close(), w.Close() })
	if isTerminal(r) {
		t.Error("a pipe is taken for a terminal")
	}
	if isTerminal(strings.NewReader("yes\n")) {
		t.Error("a strings.Reader is taken for a terminal")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
