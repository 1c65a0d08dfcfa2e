package cli

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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

// TestRun checks what scripts rely on: the exit code, the error, and the
// usage line after a mistake in the command line. None of these reach a
// hub or a broker: the command line is refused first.
func TestRun(t *testing.T) {
	tests := []struct {
		name   string
		argv0  string
		args   []string
		code   int
		stderr []string // each must appear, in this order
		stdout string   // must appear
	}{
		{
			name: "unknown subcommand of a group", args: []string{"machines", "lst"}, code: 1,
			stderr: []string{`Error: unknown command "lst" for "strata machines"`, "Did you mean this?\n\tlist",
				"Usage: strata machines COMMAND (`strata machines --help` lists them)"},
		},
		{
			name: "unknown subcommand of a group that runs alone", args: []string{"pools", "lst"}, code: 1,
			stderr: []string{`unknown command "lst" for "strata pools"`, "Did you mean this?\n\tlist"},
		},
		{
			name: "unknown subcommand two levels down", args: []string{"sim", "heal", "machin", "m1"}, code: 1,
			stderr: []string{`unknown command "machin" for "strata sim heal"`, "Did you mean this?\n\tmachine"},
		},
		{
			name: "unknown command", args: []string{"stauts"}, code: 1,
			stderr: []string{`unknown command "stauts" for "strata"`, "Did you mean this?\n\tstatus"},
		},
		{
			name: "unknown command of the kubectl plugin", argv0: "kubectl-strata", args: []string{"stauts"}, code: 1,
			stderr: []string{`unknown command "stauts" for "kubectl strata"`, "Did you mean this?\n\tstatus"},
		},
		{
			name: "a group alone shows its commands", args: []string{"machines"}, code: 0,
			stdout: "Available Commands:",
		},
		{
			name: "a negative number is a number", args: []string{"pools", "scale", "web", "-3"}, code: 1,
			stderr: []string{"Error: capacity must not be negative, got -3\n", "Usage: strata pools scale NAME CAPACITY [flags]\n"},
		},
		{
			name: "a negative number among flags", args: []string{"pools", "scale", "web", "-3", "-o", "json"}, code: 1,
			stderr: []string{"Error: capacity must not be negative, got -3\n"},
		},
		{
			name: "not a number", args: []string{"pools", "scale", "web", "many"}, code: 1,
			stderr: []string{`Error: capacity "many" is not a whole number`, "Usage: strata pools scale NAME CAPACITY [flags]\n"},
		},
		{
			name: "an argument missing", args: []string{"pools", "scale", "web"}, code: 1,
			stderr: []string{"Error: accepts 2 arg(s), received 1\n", "Usage: strata pools scale NAME CAPACITY [flags]\n"},
		},
		{
			name: "a negative flag value", args: []string{"pools", "create", "web", "--profile", "general", "--capacity", "-3"}, code: 1,
			stderr: []string{"Error: capacity must not be negative, got -3\n", "Usage: strata pools create NAME"},
		},
		{
			name: "a required flag missing", args: []string{"pools", "create", "web", "--capacity", "3"}, code: 1,
			stderr: []string{"Error: --profile is required", "Usage: strata pools create NAME"},
		},
		{
			name: "an unknown flag", args: []string{"pools", "list", "--nope"}, code: 1,
			stderr: []string{"Error: unknown flag: --nope\n", "Usage: strata pools list [flags]\n"},
		},
		{
			name: "version", args: []string{"version"}, code: 0,
			stdout: "strata ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			argv0 := tc.argv0
			if argv0 == "" {
				argv0 = "strata"
			}
			root := CommandFor(argv0)
			var stdout, stderr bytes.Buffer
			root.SetOut(&stdout)
			code := Run(t.Context(), root, tc.args, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			rest := stderr.String()
			for _, want := range tc.stderr {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Errorf("stderr lacks %q (in this order):\n%s", want, stderr.String())
					break
				}
				rest = rest[i+len(want):]
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, stdout.String())
			}
		})
	}
}

func TestNumbersAsArguments(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"pools", "scale", "web", "-3"}, []string{"pools", "scale", "web", "--", "-3"}},
		{[]string{"pools", "scale", "web", "-3", "-o", "json"}, []string{"pools", "scale", "web", "-o", "json", "--", "-3"}},
		{[]string{"pools", "scale", "-o", "json", "web", "-3", "--broker", "b:1", "--home=h"},
			[]string{"pools", "scale", "-o", "json", "web", "--broker", "b:1", "--home=h", "--", "-3"}},
		{[]string{"pools", "scale", "-ojson", "web", "-3.5"}, []string{"pools", "scale", "-ojson", "web", "--", "-3.5"}},
		{[]string{"pools", "scale", "-3", "web"}, []string{"pools", "scale", "--", "-3", "web"}},
		{[]string{"pools", "scale", "web", "-3", "--", "-x"}, []string{"pools", "scale", "web", "--", "-3", "-x"}},
		// Unchanged: no negative number, or one that is a flag's value or after --.
		{[]string{"pools", "scale", "web", "3"}, []string{"pools", "scale", "web", "3"}},
		{[]string{"pools", "create", "web", "--capacity", "-3"}, []string{"pools", "create", "web", "--capacity", "-3"}},
		{[]string{"pools", "create", "web", "--capacity=-3"}, []string{"pools", "create", "web", "--capacity=-3"}},
		{[]string{"machines", "list", "--mz", "-1"}, []string{"machines", "list", "--mz", "-1"}},
		{[]string{"pools", "scale", "web", "--", "-3"}, []string{"pools", "scale", "web", "--", "-3"}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, numbersAsArguments(NewRootCommand(), tc.args)); diff != "" {
			t.Errorf("numbersAsArguments(%q) (-want +got):\n%s", tc.args, diff)
		}
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
