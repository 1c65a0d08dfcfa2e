package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// seeded is how many machines each broker of these tests starts with.
const seeded = 20

// TestServeBroker runs `strata serve broker` itself, in process, as main
// runs it (cobra parses the flags, RunE builds everything from them), so a
// flag wired to the wrong field, or not at all, fails: the flags that are
// refused are refused with the flag's name, and a broker that starts serves
// its seeded inventory and performs operations only with a provisioner.
func TestServeBroker(t *testing.T) {
	cases := []struct {
		name string
		args []string
		// wantErr: the command ends at once with this error.
		wantErr string
		// wantProvisioner: the broker performs operations (a provisioner runs).
		wantProvisioner bool
	}{
		{name: "default: sim", wantProvisioner: true},
		{name: "sim with durations", args: []string{"--sim-join-duration=500ms", "--sim-wipe-duration=1s", "--sim-maintenance-duration=10s"}, wantProvisioner: true},
		{name: "instant maintenance", args: []string{"--sim-maintenance-duration=0s"}, wantProvisioner: true},
		{name: "none", args: []string{"--provisioner=none"}},
		{name: "negative maintenance", args: []string{"--sim-maintenance-duration=-1s"}, wantErr: "--sim-maintenance-duration must not be negative, not -1s"},
		{name: "maintenance without sim", args: []string{"--provisioner=none", "--sim-maintenance-duration=1s"},
			wantErr: "--sim-maintenance-duration applies to --provisioner sim, not none"},
		{name: "unknown", args: []string{"--provisioner=ironic"}, wantErr: `--provisioner "ironic" is not one of sim, none`},
		{name: "zero duration", args: []string{"--sim-join-duration=0s"}, wantErr: "--sim-join-duration must be positive, not 0s"},
		{name: "negative duration", args: []string{"--sim-wipe-duration=-1s"}, wantErr: "--sim-wipe-duration must be positive, not -1s"},
		{name: "sim flag without sim", args: []string{"--provisioner=none", "--sim-wipe-duration=1s"},
			wantErr: "--sim-wipe-duration applies to --provisioner sim, not none"},
		{name: "a budget out of range", args: []string{"--max-pool-disrupted-percent=0"},
			wantErr: "the budget's max pool disrupted percent must be within 1..100, not 0"},
		{name: "a non-loopback address without TLS", args: []string{"--listen=0.0.0.0:0"},
			wantErr: "--listen 0.0.0.0:0 is not a loopback address"},
		{name: "SQLite ignores leader election: always the leader", args: []string{"--leader-elect=true"}, wantProvisioner: true},
		{name: "a zero leader retry period", args: []string{"--leader-retry-period=0s"},
			wantErr: "--leader-retry-period must be positive, not 0s"},
		{name: "an argument", args: []string{"extra"}, wantErr: `unknown command "extra"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t, tc.args...)
			if tc.wantErr != "" {
				err := b.wait(t)
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("strata serve broker %s = %v, want an error with %q", strings.Join(tc.args, " "), err, tc.wantErr)
				}
				return
			}
			grpcAddr, metricsAddr := b.addresses(t)
			conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close() //nolint:errcheck // test connection
			c := brokerv1.NewBrokerServiceClient(conn)

			// The probes Kubernetes uses: alive, and ready once the broker
			// knows its role (over SQLite it always leads).
			for _, path := range []string{"/healthz", "/readyz"} {
				waitHTTPOK(t, "http://"+metricsAddr+path)
			}

			// --db and --seed-simulated: the inventory it serves.
			machines, err := c.ListMachines(t.Context(), &brokerv1.ListMachinesRequest{PageSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(machines.GetMachines()); n != seeded {
				t.Fatalf("the broker serves %d machines, want the %d seeded", n, seeded)
			}
			// --provisioner: a disruption with an operation is taken only
			// when a provisioner will perform it.
			_, err = c.CreateDisruption(t.Context(), &brokerv1.CreateDisruptionRequest{
				Machine: machines.GetMachines()[0].GetId(), Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR,
				OnBehalfOf: "test", Operation: &brokerv1.Operation{Kind: brokerv1.OperationKind_OPERATION_KIND_REBOOT},
			})
			switch {
			case tc.wantProvisioner && err != nil:
				t.Errorf("a reboot disruption: %v, want it taken (a provisioner runs)", err)
			case !tc.wantProvisioner && (status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "without a provisioner")):
				t.Errorf("a reboot disruption: %v, want FailedPrecondition: no provisioner", err)
			}

			// A cancelled context is a clean shutdown.
			b.cancel()
			if err := b.wait(t); err != nil {
				t.Errorf("strata serve broker after its context ended: %v", err)
			}
		})
	}
}

// runningBroker is `strata serve broker` running in the test's process.
type runningBroker struct {
	cancel context.CancelFunc
	// done is closed when the command returned, err.
	done chan struct{}
	err  error
	logs *logLines
}

// startBroker runs `strata serve broker` over a new SQLite inventory of
// seeded machines, on a free loopback port, with args after the defaults.
func startBroker(t *testing.T, args ...string) *runningBroker {
	t.Helper()
	return runBroker(t, append([]string{"--db", filepath.Join(t.TempDir(), "inventory.db"),
		"--seed-simulated", strconv.Itoa(seeded), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, args...)...)
}

// runBroker runs `strata serve broker` with args alone.
func runBroker(t *testing.T, args ...string) *runningBroker {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	b := &runningBroker{cancel: cancel, done: make(chan struct{}), logs: newLogLines()}
	cmd := NewCommand()
	cmd.SetOut(io.Discard)
	cmd.SetErr(b.logs)
	cmd.SilenceUsage = true
	cmd.SetArgs(append([]string{"broker"}, args...))
	go func() {
		defer close(b.done)
		b.err = cmd.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-b.done
	})
	return b
}

// address waits until the broker says it serves, and returns where.
func (b *runningBroker) address(t *testing.T) string {
	t.Helper()
	grpcAddr, _ := b.addresses(t)
	return grpcAddr
}

// addresses waits for the broker to serve and returns its gRPC and metrics
// addresses.
func (b *runningBroker) addresses(t *testing.T) (grpcAddr, metricsAddr string) {
	t.Helper()
	giveUp := time.After(time.Minute) // a bound on the wait, not a speed target
	for {
		select {
		case line := <-b.logs.lines:
			var entry struct {
				Msg     string `json:"msg"`
				Address string `json:"address"`
				Metrics string `json:"metrics"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "Serving the Compute Broker" {
				return entry.Address, entry.Metrics
			}
		case <-b.done:
			t.Fatalf("strata serve broker ended before serving: %v", b.err)
		case <-giveUp:
			t.Fatal("strata serve broker never said where it serves (its log goes to the command's stderr)")
		}
	}
}

// wait waits for the command to end and returns its error.
func (b *runningBroker) wait(t *testing.T) error {
	t.Helper()
	<-b.done
	return b.err
}

// logLines is the command's stderr, line by line: the lines nobody waits
// for are dropped.
type logLines struct {
	mu      sync.Mutex
	partial []byte
	lines   chan string
}

func newLogLines() *logLines {
	return &logLines{lines: make(chan string, 100)}
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case l.lines <- string(l.partial[:i]):
		default:
		}
		l.partial = l.partial[i+1:]
	}
}

// waitHTTPOK waits for url to answer 200 OK.
func waitHTTPOK(t *testing.T, url string) {
	t.Helper()
	giveUp := time.Now().Add(time.Minute) // a bound on the wait, not a speed target
	for {
		resp, err := http.Get(url) //nolint:gosec,noctx // the test's own server
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(giveUp) {
			t.Fatalf("GET %s: %v (status %v), want 200 OK", url, err, resp)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
