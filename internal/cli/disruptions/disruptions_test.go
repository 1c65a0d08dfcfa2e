package disruptions

import (
	"testing"

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
