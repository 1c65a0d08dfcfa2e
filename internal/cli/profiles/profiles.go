// Package profiles holds `strata profiles`: the broker's node profiles.
package profiles

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/strata-dev/strata/internal/cli/brokercli"
	"github.com/strata-dev/strata/internal/cli/globals"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// NewCommand returns `strata profiles`.
func NewCommand(g *globals.Flags) *cobra.Command {
	return brokercli.NewGroup(g, "profiles", "Manage node profiles: a minimum machine and a node config", newList, newGet, newCreate, newDelete)
}

func table(w io.Writer, profiles ...*brokerv1.NodeProfile) {
	fmt.Fprintln(w, "NAME\tMIN CPU\tMIN MEMORY GIB\tMIN GPUS\tGPU MODEL\tMIN DISK GIB\tNODE CONFIG")
	for _, p := range profiles {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%d\t%s\n", p.GetName(), p.GetMinCpuCores(), p.GetMinMemoryGib(),
			p.GetMinGpus(), brokercli.Dash(p.GetGpuModel()), p.GetMinLocalDiskGib(), p.GetNodeConfig())
	}
}

func newList(f *brokercli.Flags) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List node profiles", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.ListNodeProfiles(cmd.Context(), &brokerv1.ListNodeProfilesRequest{})
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp, func(w io.Writer) {
					if len(resp.GetProfiles()) == 0 {
						fmt.Fprintln(w, "No node profiles. Create one: strata profiles create NAME --node-config CONFIG --min-cpu N --min-memory-gib N")
						return
					}
					table(w, resp.GetProfiles()...)
				})
			})
		},
	}
}

func newGet(f *brokercli.Flags) *cobra.Command {
	return &cobra.Command{
		Use: "get NAME", Short: "Show a node profile", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.GetNodeProfile(cmd.Context(), &brokerv1.GetNodeProfileRequest{Name: args[0]})
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp.GetProfile(), func(w io.Writer) { table(w, resp.GetProfile()) })
			})
		},
	}
}

func newCreate(f *brokercli.Flags) *cobra.Command {
	p := &brokerv1.NodeProfile{}
	cmd := &cobra.Command{
		Use:   "create NAME --node-config CONFIG [--min-cpu N] [--min-memory-gib N] [--min-gpus N --gpu-model M] [--min-disk-gib N]",
		Short: "Create a node profile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Name = args[0]
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.CreateNodeProfile(cmd.Context(), &brokerv1.CreateNodeProfileRequest{Profile: p})
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp.GetProfile(), func(w io.Writer) { table(w, resp.GetProfile()) })
			})
		},
	}
	fs := cmd.Flags()
	fs.Int32Var(&p.MinCpuCores, "min-cpu", 0, "minimum CPU cores")
	fs.Int32Var(&p.MinMemoryGib, "min-memory-gib", 0, "minimum memory in GiB")
	fs.Int32Var(&p.MinGpus, "min-gpus", 0, "minimum GPUs")
	fs.StringVar(&p.GpuModel, "gpu-model", "", "the only GPU model accepted")
	fs.Int32Var(&p.MinLocalDiskGib, "min-disk-gib", 0, "minimum local disk in GiB")
	fs.StringVar(&p.NodeConfig, "node-config", "", "node configuration the machines run (required)")
	return cmd
}

func newDelete(f *brokercli.Flags) *cobra.Command {
	return &cobra.Command{
		Use: "delete NAME", Short: "Delete a node profile that no pool uses", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.With(func(c *brokercli.Client) error {
				if _, err := c.DeleteNodeProfile(cmd.Context(), &brokerv1.DeleteNodeProfileRequest{Name: args[0]}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted node profile %s.\n", args[0])
				return nil
			})
		},
	}
}
