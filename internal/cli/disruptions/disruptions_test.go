package disruptions

import (
	"bytes"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/testutil/testbroker"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

func TestOperation(t *testing.T) {
	tests := []struct {
		op   *brokerv1.Operation
		want string
	}{
		{nil, "-"},
		{&brokerv1.Operation{Kind: brokerv1.OperationKind_OPERATION_KIND_REBOOT}, "reboot"},
		{&brokerv1.Operation{Kind: brokerv1.OperationKind_OPERATION_KIND_REIMAGE, Software: &brokerv1.Software{NodeConfig: "general-v2"}}, "reimage general-v2"},
		{&brokerv1.Operation{Kind: brokerv1.OperationKind_OPERATION_KIND_REIMAGE, Software: &brokerv1.Software{NodeConfig: "general-v2", OsImage: "os-2026.12"}}, "reimage general-v2,os-2026.12"},
		{&brokerv1.Operation{Kind: brokerv1.OperationKind_OPERATION_KIND_REPLACE}, "replace"},
	}
	for _, tc := range tests {
		if got := operation(tc.op); got != tc.want {
			t.Errorf("operation(%v) = %q, want %q", tc.op, got, tc.want)
		}
	}
}

func TestStep(t *testing.T) {
	const (
		unspecified = brokerv1.DisruptionState_DISRUPTION_STATE_UNSPECIFIED
		pending     = brokerv1.DisruptionState_DISRUPTION_STATE_PENDING
		approved    = brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED
		inProgress  = brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS
		failed      = brokerv1.DisruptionState_DISRUPTION_STATE_FAILED
	)
	tests := []struct {
		from, to brokerv1.DisruptionState
		want     string
	}{
		{unspecified, pending, "created pending"},
		{pending, pending, "pending (step)"},
		{pending, approved, "pending -> approved"},
		{inProgress, failed, "in-progress -> failed"},
		{failed, failed, "failed (step)"},
	}
	for _, tc := range tests {
		if got := step(&brokerv1.DisruptionTransition{From: tc.from, To: tc.to}); got != tc.want {
			t.Errorf("step(%s -> %s) = %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
}

// TestCreateAsViewer: `strata disruptions create` with a viewer's
// certificate is refused with a message that names who and what; an
// admin's is created, its actor the certificate's name and the --for
// beside it.
func TestCreateAsViewer(t *testing.T) {
	ca := testbroker.NewPKI(t)
	addr, _, _ := testbroker.StartServerWith(t, 20, 0, ca.ServerOptions())
	run := func(name, group string, args ...string) (string, error) {
		cert, key := ca.Client(name, group)
		cmd := NewCommand(&globals.Flags{Home: t.TempDir()})
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append(args, "--broker", addr, "--tls-ca", ca.CAFile, "--tls-cert", cert, "--tls-key", key))
		err := cmd.ExecuteContext(t.Context())
		return out.String(), err
	}
	if out, err := run("alice", "strata:viewer", "list"); err != nil {
		t.Fatalf("a viewer lists disruptions: %v\n%s", err, out)
	}
	_, err := run("alice", "strata:viewer", "create", "dc1-r001-u01", "--reason", "hardware-repair")
	want := "the broker refused: alice (groups strata:viewer) may not call CreateDisruption: no role of it allows it (docs/broker.md)"
	if err == nil || err.Error() != want {
		t.Errorf("create as a viewer = %v, want %q", err, want)
	}
	out, err := run("root", "strata:admin", "create", "dc1-r001-u01", "--reason", "hardware-repair", "--for", "ticket-42")
	if err != nil {
		t.Fatalf("create as an admin: %v\n%s", err, out)
	}
	if !strings.Contains(out, "pending, by root (for ticket-42)") {
		t.Errorf("create as an admin said %q, want the disruption pending by root (for ticket-42)", out)
	}
}
