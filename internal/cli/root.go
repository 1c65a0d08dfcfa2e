// Package cli builds the strata command tree; each command group lives in a
// package of its own below this one.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/strata-dev/strata/internal/cli/appscli"
	"github.com/strata-dev/strata/internal/cli/bench"
	"github.com/strata-dev/strata/internal/cli/certs"
	"github.com/strata-dev/strata/internal/cli/disruptions"
	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/cli/localdc"
	"github.com/strata-dev/strata/internal/cli/machines"
	"github.com/strata-dev/strata/internal/cli/pools"
	"github.com/strata-dev/strata/internal/cli/profiles"
	"github.com/strata-dev/strata/internal/cli/refstorecli"
	"github.com/strata-dev/strata/internal/cli/rollouts"
	"github.com/strata-dev/strata/internal/cli/serve"
	"github.com/strata-dev/strata/internal/cli/sim"
)

// NewRootCommand returns the strata command with every subcommand.
func NewRootCommand() *cobra.Command {
	g := &globals.Flags{}
	root := &cobra.Command{
		Use:   "strata",
		Short: "Strata takes a fleet from bare-metal machines to running applications",
		Long: `Strata is a compute platform built on Kubernetes: a datacenter inventory and
Compute Broker (metal), a hub of KRM APIs that turns machines into Nodes of
workload clusters (cluster), and app onboarding and guardrails (workload).

Start with 'strata up', which runs a local datacenter of real Kubernetes
clusters with simulated machines.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g.AddTo(root.PersistentFlags())
	root.AddCommand(
		localdc.NewUpCommand(g),
		localdc.NewDownCommand(g),
		localdc.NewStatusCommand(g),
		machines.NewCommand(g),
		profiles.NewCommand(g),
		pools.NewCommand(g),
		disruptions.NewCommand(g),
		certs.NewCommand(g),
		rollouts.NewCommand(g),
		appscli.NewCommand(g),
		sim.NewCommand(g),
		bench.NewCommand(),
		serve.NewCommand(),
		refstorecli.NewCommand(),
		newVersionCommand(),
	)
	strict(root)
	return root
}

// NewPluginCommand returns `kubectl strata`, the kubectl plugin.
func NewPluginCommand() *cobra.Command {
	root := appscli.NewPluginCommand()
	root.AddCommand(newVersionCommand())
	strict(root)
	return root
}

// CommandFor returns the command tree the binary serves under the name it
// was run as (argv[0]): the kubectl plugin as kubectl-strata (kubectl runs
// plugins found on PATH by that name; `make build` links it to strata),
// else strata.
func CommandFor(argv0 string) *cobra.Command {
	if strings.TrimSuffix(filepath.Base(argv0), ".exe") == appscli.PluginName {
		return NewPluginCommand()
	}
	return NewRootCommand()
}

// Execute runs the command line and returns the process's exit code.
func Execute() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, CommandFor(os.Args[0]), os.Args[1:], os.Stderr)
}

// Run runs root with args and returns the exit code: 0, or 1 once the
// error is printed to stderr, with the usage line when the command line
// itself is wrong (an unknown command or flag, a missing or bad argument).
func Run(ctx context.Context, root *cobra.Command, args []string, stderr io.Writer) int {
	root.SetArgs(numbersAsArguments(root, args))
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "Error:", err)
	if _, ok := errors.AsType[usageError](err); ok {
		fmt.Fprintln(stderr, "Usage:", usageLine(cmd))
	}
	return 1
}
