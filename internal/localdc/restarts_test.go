package localdc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
)

func TestRestartLog(t *testing.T) {
	home := t.TempDir()
	l, err := newRestartLog(home)
	if err != nil {
		t.Fatal(err)
	}
	if got := loadRestarts(home); len(got) != 0 {
		t.Errorf("a new count holds %v, want nothing", got)
	}
	l.record("workload-1/kube-scheduler", "exited", logr.Discard())
	l.record("workload-1/kube-scheduler", "exited again", logr.Discard())
	l.record("hub-1", "signal: killed", logr.Discard())
	got := loadRestarts(home)
	if r := got["workload-1/kube-scheduler"]; r.Count != 2 || r.Reason != "exited again" || r.Last.IsZero() {
		t.Errorf("kube-scheduler: %+v, want 2 restarts, the last reason and time", r)
	}
	if r := got["hub-1"]; r.Count != 1 {
		t.Errorf("hub-1: %+v, want 1 restart", r)
	}
	// A new strata up counts afresh.
	if _, err := newRestartLog(home); err != nil {
		t.Fatal(err)
	}
	if got := loadRestarts(home); len(got) != 0 {
		t.Errorf("after a new start: %v, want nothing", got)
	}
	var none *restartLog
	none.record("x", "y", logr.Discard()) // counts nothing, does not panic
}

func TestLastLogLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	long := strings.Repeat("x", 5000)
	for _, tc := range []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "nope.log"), "no log"},
		{"empty", write("empty.log", ""), "nothing in its log"},
		{"last line", write("a.log", "first\nE1207 leaderelection lost\n\n"), `"E1207 leaderelection lost"`},
		{"long", write("long.log", "a\n"+long), `"` + strings.Repeat("x", 300) + `..."`},
	} {
		if got := lastLogLine(tc.path); got != tc.want {
			t.Errorf("%s: lastLogLine = %.80q, want %.80q", tc.name, got, tc.want)
		}
	}
}
