package cli

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

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

// A back-quoted word in a flag's usage is taken by pflag for the value's
// name: `--bin-dir make tools` in the help.
func TestFlagUsagesNameTheirType(t *testing.T) {
	var visit func(*cobra.Command)
	visit = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.LocalFlags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if name, _ := pflag.UnquoteUsage(f); strings.Contains(f.Usage, "`") {
					t.Errorf("%s --%s: the help shows %q as its type: %q", c.CommandPath(), f.Name, name, f.Usage)
				}
			})
		}
		for _, sub := range c.Commands() {
			visit(sub)
		}
	}
	visit(NewRootCommand())
	visit(NewPluginCommand())
}

func TestVersionString(t *testing.T) {
	buildInfo := func(version string, settings ...debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Version: version}, Settings: settings}
	}
	revision := debug.BuildSetting{Key: "vcs.revision", Value: "90c837f1e2d3c4b5a6978877665544332211aabb"}
	tests := []struct {
		name            string
		version, commit string
		info            *debug.BuildInfo
		want            string
	}{
		{"stamped by make build on a tag", "v0.3.0", "90c837f", buildInfo("(devel)"), "v0.3.0 commit 90c837f"},
		{"stamped past a tag: describe names the commit", "v0.3.0-4-g90c837f-dirty", "90c837f", buildInfo("(devel)"), "v0.3.0-4-g90c837f-dirty"},
		{"stamped without tags: describe is the commit", "90c837f-dirty", "90c837f", buildInfo("(devel)"), "90c837f-dirty"},
		{"go install of a version", "", "", buildInfo("v0.3.0"), "v0.3.0"},
		{"go build with VCS data", "", "", buildInfo("(devel)", revision), "(devel) commit 90c837f1e2d3"},
		{"nothing known", "", "", buildInfo("(devel)"), "(devel)"},
		{"no build info", "", "", nil, "(devel)"},
	}
	for _, tc := range tests {
		if got := versionString(tc.version, tc.commit, tc.info); got != tc.want {
			t.Errorf("%s: versionString = %q, want %q", tc.name, got, tc.want)
		}
	}
}
