package serve

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServePprof: --pprof-bind-address serves net/http/pprof beside a
// component while it runs (here the console, which needs no cluster), and
// an address beyond loopback is refused before the component starts.
func TestServePprof(t *testing.T) {
	dir := t.TempDir()
	web := freeAddr(t)
	cfg := filepath.Join(dir, "console.yaml")
	body := fmt.Sprintf("apiVersion: config.strata.dev/v1alpha1\nkind: ConsoleConfiguration\nlisten: %s\ndatabase: {dsn: %s}\nhealth: {bindAddress: \"0\"}\nmetrics: {bindAddress: \"0\"}\n",
		web, filepath.Join(dir, "fleet.db"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	execute := func(ctx context.Context, args ...string) error {
		cmd := NewCommand()
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		return cmd.ExecuteContext(ctx)
	}

	err := execute(t.Context(), "console", "--config", cfg, "--pprof-bind-address", "0.0.0.0:6060")
	if err == nil || !strings.Contains(err.Error(), "loopback only") {
		t.Errorf("strata serve console --pprof-bind-address 0.0.0.0:6060 = %v, want it refused: loopback only", err)
	}

	pprof := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- execute(ctx, "console", "--config", cfg, "--pprof-bind-address", pprof) }()
	var code int
	var got string
	for end := time.Now().Add(20 * time.Second); code != http.StatusOK; {
		if time.Now().After(end) {
			t.Fatalf("/debug/pprof/heap answered %d, want 200", code)
		}
		resp, err := http.Get("http://" + pprof + "/debug/pprof/heap?debug=1") //nolint:gosec,noctx // the test's own address
		if err == nil {
			code = resp.StatusCode
			raw, _ := io.ReadAll(resp.Body)
			got = string(raw)
			_ = resp.Body.Close()
		}
		time.Sleep(50 * time.Millisecond) // polling a starting server with a deadline
	}
	if !strings.Contains(got, "heap profile") {
		t.Errorf("/debug/pprof/heap?debug=1 is not a heap profile:\n%.300s", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("strata serve console --pprof-bind-address ended with %v", err)
	}
	if _, err := http.Get("http://" + pprof + "/debug/pprof/"); err == nil { //nolint:bodyclose,noctx // must not answer
		t.Errorf("the profiles are still served after the component ended")
	}
}
