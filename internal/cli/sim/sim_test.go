package sim

import (
	"strings"
	"testing"

	simv1 "github.com/strata-dev/strata/proto/strata/sim/v1"
)

func TestParseZone(t *testing.T) {
	tests := []struct {
		in      string
		dc      string
		mz      int32
		wantErr bool
	}{
		{in: "dc1/7", dc: "dc1", mz: 7},
		{in: "dc-west/20", dc: "dc-west", mz: 20},
		{in: "dc1", wantErr: true},
		{in: "dc1/0", wantErr: true},
		{in: "dc1/-3", wantErr: true},
		{in: "/7", wantErr: true},
		{in: "dc1/seven", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			dc, mz, err := parseZone(tc.in)
			switch {
			case tc.wantErr && (err == nil || !strings.Contains(err.Error(), "is not <datacenter>/<maintenance zone>")):
				t.Errorf("parseZone(%q) = %v, want an error saying what a zone is", tc.in, err)
			case !tc.wantErr && (err != nil || dc != tc.dc || mz != tc.mz):
				t.Errorf("parseZone(%q) = %q, %d, %v; want %q, %d", tc.in, dc, mz, err, tc.dc, tc.mz)
			}
		})
	}
}

func TestParseFix(t *testing.T) {
	for in, want := range map[string]simv1.FaultFix{
		"reboot": simv1.FaultFix_FAULT_FIX_REBOOT, "reimage": simv1.FaultFix_FAULT_FIX_REIMAGE, "never": simv1.FaultFix_FAULT_FIX_NEVER,
	} {
		if got, err := parseFix(in); err != nil || got != want {
			t.Errorf("parseFix(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseFix("replace"); err == nil || !strings.Contains(err.Error(), `--until "replace" is not one of reboot, reimage, never`) {
		t.Errorf("parseFix(replace) = %v", err)
	}
}
