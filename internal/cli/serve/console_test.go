package serve

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// freeAddr is a loopback address with a port free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() //nolint:errcheck // only its port is wanted
	return l.Addr().String()
}

// TestServeConsole: strata serve console serves the console, /readyz and
// /metrics on loopback from its configuration, and refuses a configuration
// that would serve sign-ins in plaintext or has no store, saying which
// field is wrong.
func TestServeConsole(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("apiVersion: config.strata.dev/v1alpha1\nkind: ConsoleConfiguration\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct{ name, body, wantErr string }{
		{"no store", "listen: 127.0.0.1:0\n", "database: Required value"},
		{"plaintext beyond loopback", "listen: 0.0.0.0:8443\ndatabase: {dsn: " + filepath.Join(dir, "x.db") + "}\n",
			"tls.certFile: Required value: listen 0.0.0.0:8443 is not a loopback address"},
		{"a misspelt field", "listn: 127.0.0.1:0\n", `unknown field "listn"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := NewCommand()
			cmd.SetArgs([]string{"console", "--config", write(tc.name+".yaml", tc.body)})
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.ExecuteContext(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("strata serve console = %v, want an error with %q", err, tc.wantErr)
			}
		})
	}

	web, health, metrics := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := write("console.yaml", fmt.Sprintf("listen: %s\ndatabase: {dsn: %s}\nhealth: {bindAddress: %q}\nmetrics: {bindAddress: %q}\n",
		web, filepath.Join(dir, "fleet.db"), health, metrics))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		cmd := NewCommand()
		cmd.SetArgs([]string{"console", "--config", cfg})
		cmd.SetOut(io.Discard)
		// Not a buffer: the command makes its logger controller-runtime's,
		// which other tests' components write to later, concurrently.
		cmd.SetErr(io.Discard)
		done <- cmd.ExecuteContext(ctx)
	}()
	for _, url := range []string{"http://" + health + "/readyz", "http://" + web + "/clusters", "http://" + metrics + "/metrics"} {
		var code int
		for end := time.Now().Add(20 * time.Second); code != http.StatusOK; {
			if time.Now().After(end) {
				t.Fatalf("%s answered %d, want 200", url, code)
			}
			resp, err := http.Get(url) //nolint:gosec,noctx // the test's own address
			if err == nil {
				code = resp.StatusCode
				_ = resp.Body.Close()
			}
			time.Sleep(50 * time.Millisecond) // polling a starting server with a deadline
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("strata serve console ended with %v", err)
	}
}
