package serve

import (
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/metal/provision/sim"
)

func TestProvisionerFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantSim bool
		wantErr string
	}{
		{name: "default", wantSim: true},
		{name: "sim with durations", args: []string{"--sim-join-duration=500ms", "--sim-wipe-duration=1s", "--sim-maintenance-duration=10s"}, wantSim: true},
		{name: "instant maintenance", args: []string{"--sim-maintenance-duration=0s"}, wantSim: true},
		{name: "negative maintenance", args: []string{"--sim-maintenance-duration=-1s"}, wantErr: "--sim-maintenance-duration must not be negative, not -1s"},
		{name: "maintenance without sim", args: []string{"--provisioner=none", "--sim-maintenance-duration=1s"},
			wantErr: "--sim-maintenance-duration applies to --provisioner sim, not none"},
		{name: "none", args: []string{"--provisioner=none"}},
		{name: "unknown", args: []string{"--provisioner=ironic"}, wantErr: `--provisioner "ironic" is not one of sim, none`},
		{name: "zero duration", args: []string{"--sim-join-duration=0s"}, wantErr: "--sim-join-duration must be positive, not 0s"},
		{name: "negative duration", args: []string{"--sim-wipe-duration=-1s"}, wantErr: "--sim-wipe-duration must be positive, not -1s"},
		{name: "sim flag without sim", args: []string{"--provisioner=none", "--sim-wipe-duration=1s"},
			wantErr: "--sim-wipe-duration applies to --provisioner sim, not none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newBroker()
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			f := provisionerFlags{}
			f.kind, _ = cmd.Flags().GetString("provisioner")
			f.join, _ = cmd.Flags().GetDuration("sim-join-duration")
			f.wipe, _ = cmd.Flags().GetDuration("sim-wipe-duration")
			f.maintain, _ = cmd.Flags().GetDuration("sim-maintenance-duration")
			p, err := f.build(cmd.Flags())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("build = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, isSim := p.(*sim.Provisioner); isSim != tc.wantSim {
				t.Errorf("provisioner = %T, want sim: %t", p, tc.wantSim)
			}
		})
	}
}
