package cli

import "testing"

func TestCommandFor(t *testing.T) {
	tests := []struct{ argv0, want string }{
		{"strata", "strata"},
		{"/work/bin/strata", "strata"},
		{"/work/bin/kubectl-strata", "kubectl-strata"},
		{"kubectl-strata", "kubectl-strata"},
		{"kubectl-strata.exe", "kubectl-strata"},
	}
	for _, tc := range tests {
		if got := CommandFor(tc.argv0).Name(); got != tc.want {
			t.Errorf("CommandFor(%q) = %s, want %s", tc.argv0, got, tc.want)
		}
	}
	plugin := CommandFor("kubectl-strata")
	for _, verb := range [][]string{{"status"}, {"get", "apps"}, {"logs"}, {"version"}} {
		if c, _, err := plugin.Find(verb); err != nil || c.Name() != verb[len(verb)-1] {
			t.Errorf("kubectl strata %v: %v", verb, err)
		}
	}
	if c, _, err := CommandFor("strata").Find([]string{"apps", "status"}); err != nil || c.Name() != "status" {
		t.Errorf("strata apps status: %v", err)
	}
}
