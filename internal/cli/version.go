package cli

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version and commit are stamped by `make build` (-ldflags -X) from `git
// describe --tags --always --dirty` and `git rev-parse --short HEAD`: the
// build machine sets GOFLAGS=-buildvcs=false, so the binary carries no VCS
// data of its own. Empty outside a git checkout.
var (
	version string
	commit  string
)

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of strata and the commit it was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, _ := debug.ReadBuildInfo()
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "strata", versionString(version, commit, info))
			return err
		},
	}
}

// versionString says which strata this is: the stamped version and commit;
// else what Go recorded (the module version of a `go install ...@v1.2.0`,
// the VCS revision of a build with -buildvcs); else "(devel)".
func versionString(version, commit string, info *debug.BuildInfo) string {
	if info != nil {
		if version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && commit == "" {
				commit = s.Value[:min(len(s.Value), 12)]
			}
		}
	}
	switch {
	case version == "" && commit == "":
		return "(devel)"
	case version == "":
		return "(devel) commit " + commit
	case commit == "" || strings.Contains(version, commit):
		// `git describe` of an untagged tree is the commit itself.
		return version
	}
	return version + " commit " + commit
}
