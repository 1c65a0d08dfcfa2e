package web

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/strata-dev/strata/internal/console/store/storetest"
)

// TestEvents reads the event stream: hello with the store's revision,
// then a change naming the kinds whose revision moved, and nothing for a
// write that moved no kind.
func TestEvents(t *testing.T) {
	st, dsn := storetest.Open(t, "", storetest.FleetSQL(t))
	srv, err := New(Options{Store: st, Logger: testr.New(t), PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close() //nolint:errcheck // test
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	lines := bufio.NewScanner(res.Body)
	next := func() string {
		t.Helper()
		var ev []string
		for lines.Scan() {
			l := lines.Text()
			if l == "" && len(ev) > 0 {
				return strings.Join(ev, "|")
			}
			if l != "" && !strings.HasPrefix(l, ":") && !strings.HasPrefix(l, "retry:") {
				ev = append(ev, l)
			}
		}
		t.Fatalf("the stream ended: %v", lines.Err())
		return ""
	}
	if got, want := next(), `event: hello|data: {"rev":1}`; got != want {
		t.Errorf("first event = %q, want %q", got, want)
	}
	storetest.Exec(t, dsn, "UPDATE revisions SET rev = 2 WHERE kind = '';\n")
	storetest.Exec(t, dsn, "UPDATE revisions SET rev = 3 WHERE kind IN ('', 'BrokerMachine', 'Node');\n")
	if got, want := next(), `event: change|data: {"rev":3,"kinds":["BrokerMachine","Node"]}`; got != want {
		t.Errorf("after the change: %q, want %q", got, want)
	}
}
