package e2e

import (
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// `make test` runs the end-to-end tests beside the unit and integration
// tests, then alone. Beside them, one at a time keeps a 2-core machine's load
// where the controllers' timings hold; alone, two at a time fit. go test
// fixes -parallel when the binary starts, so hack/test.sh runs it with a
// -parallel larger than the number of tests and each top-level test waits
// here for a slot, right after t.Parallel():
//
//	t.Parallel()
//	waitForSlot(t)
//
// While the file named by STRATA_E2E_NARROW exists (hack/test.sh removes it
// when the integration tests are done), E2E_PARALLEL tests (default 1) hold a
// slot; after, E2E_PARALLEL_LATE (default 2, never fewer than E2E_PARALLEL).
// Without STRATA_E2E_NARROW (go test ./test/e2e by hand) there is no gate:
// -parallel alone says how many run at once.

// slotOrder ranks the top-level end-to-end tests: a free slot goes to the
// waiting test ranked first; tests not listed come last, in the order they
// joined. The longest takes the one early slot; of the rest, the longest
// (TestLocalDatacenter) should start about when the second slot opens (warm:
// the unit and integration tests end some 600 s in), so the shorter
// TestMultiCluster goes before it and TestStatefulApps after. With the warm
// times of issue 19 (Maintenance 324 s, Apps 210, MultiCluster 141,
// LocalDatacenter 211, StatefulApps 135) they end some 810 s in;
// LocalDatacenter third, as before, 880.
var slotOrder = []string{
	"TestMaintenance",
	"TestApps",
	"TestMultiCluster",
	"TestLocalDatacenter",
	"TestStatefulApps",
}

// slotPoll is how often a waiting test looks at the marker and the slots.
const slotPoll = time.Second

// e2eSlots are the slots of this test binary's end-to-end tests.
var e2eSlots slots

// waitForSlot blocks until the test holds one of the end-to-end slots, and
// gives it back when the test ends. Call it right after t.Parallel() in every
// top-level end-to-end test.
func waitForSlot(t *testing.T) {
	t.Helper()
	marker := os.Getenv("STRATA_E2E_NARROW")
	if marker == "" {
		return
	}
	narrow, late := slotLimit(t, "E2E_PARALLEL", 1), slotLimit(t, "E2E_PARALLEL_LATE", 2)
	late = max(late, narrow) // alone, never fewer than beside the others
	start := time.Now()
	e2eSlots.join(t.Name())
	for {
		// Sleep first: by then every test that called t.Parallel() has
		// joined, so the first slot goes by rank too.
		time.Sleep(slotPoll)
		limit := late
		if _, err := os.Stat(marker); err == nil {
			limit = narrow
		}
		if e2eSlots.take(t.Name(), limit) {
			break
		}
	}
	t.Cleanup(e2eSlots.release)
	// The test's time (--- PASS: TestX (Ns)) includes this wait.
	t.Logf("took an end-to-end slot after waiting %s", time.Since(start).Round(time.Second))
}

func slotLimit(t *testing.T, env string, def int) int {
	t.Helper()
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a number of tests, 1 or more", env, s)
	}
	return n
}

// slots counts the held slots and keeps the waiting tests in the order they
// joined.
type slots struct {
	mu      sync.Mutex
	held    int
	waiting []string
}

func (s *slots) join(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiting = append(s.waiting, name)
}

// take gives name a slot if fewer than limit are held and no more waiting
// tests rank before it than there are free slots.
func (s *slots) take(name string, limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !mayTake(name, s.waiting, limit-s.held) {
		return false
	}
	i := slices.Index(s.waiting, name)
	s.waiting = slices.Delete(s.waiting, i, i+1)
	s.held++
	return true
}

func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held--
}

// mayTake says whether name, one of waiting, is among the first `free` of
// waiting by rank (ties: the one that joined first).
func mayTake(name string, waiting []string, free int) bool {
	i := slices.Index(waiting, name)
	if i < 0 || free < 1 {
		return false
	}
	ahead := 0
	for j, w := range waiting {
		if r, mine := slotRank(w), slotRank(name); r < mine || (r == mine && j < i) {
			ahead++
		}
	}
	return ahead < free
}

// slotRank is the test's place in slotOrder; tests not listed share the last.
func slotRank(name string) int {
	if i := slices.Index(slotOrder, name); i >= 0 {
		return i
	}
	return len(slotOrder)
}

// TestSlots plays the gate's decisions through `make test`'s run: one slot
// until the integration tests end, then two.
func TestSlots(t *testing.T) {
	var s slots
	// In the order go test declares them (files by name), and one not listed.
	for _, name := range []string{"TestApps", "TestLocalDatacenter", "TestMaintenance", "TestMultiCluster", "TestZ", "TestStatefulApps"} {
		s.join(name)
	}
	// takeAll asks for every waiting test, the way the polls do, and says
	// which took a slot. It asks the last to join first: rank decides, not
	// who asks first.
	takeAll := func(limit int) []string {
		var took []string
		for _, name := range slices.Backward(slices.Clone(s.waiting)) {
			if s.take(name, limit) {
				took = append(took, name)
			}
		}
		return took
	}
	step := func(what string, limit int, want ...string) {
		t.Helper()
		if got := takeAll(limit); !slices.Equal(got, want) {
			t.Fatalf("%s: took slots %q, want %q", what, got, want)
		}
	}

	step("narrow, at the start", 1, "TestMaintenance")
	step("narrow, all slots held", 1)
	s.release()
	step("narrow, TestMaintenance done", 1, "TestApps")
	s.release()
	step("narrow, TestApps done", 1, "TestMultiCluster")
	step("late, the integration tests done", 2, "TestLocalDatacenter")
	step("late, both slots held", 2)
	s.release()
	step("late, one done", 2, "TestStatefulApps")
	s.release()
	s.release()
	step("late, both done", 2, "TestZ")
	if len(s.waiting) != 0 || s.held != 1 {
		t.Fatalf("waiting %q, %d held; want none waiting, 1 held", s.waiting, s.held)
	}

	// Two free slots at once go to the two ranked first, whichever asks first.
	if mayTake("TestStatefulApps", []string{"TestStatefulApps", "TestApps", "TestMaintenance"}, 2) {
		t.Error("TestStatefulApps took one of two free slots before TestMaintenance and TestApps")
	}
	if !mayTake("TestApps", []string{"TestStatefulApps", "TestApps", "TestMaintenance"}, 2) {
		t.Error("TestApps did not take one of two free slots, ranked second")
	}
	if mayTake("TestApps", []string{"TestApps"}, 0) {
		t.Error("TestApps took a slot with none free")
	}
}
