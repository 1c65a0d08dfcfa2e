// Package pools holds `strata pools`: the broker's machine pools.
package pools

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-dev/strata/internal/cli/brokercli"
	"github.com/strata-dev/strata/internal/cli/globals"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// NewCommand returns `strata pools`.
func NewCommand(g *globals.Flags) *cobra.Command {
	return brokercli.NewGroup(g, "pools", "Manage broker pools: a capacity of machines of one profile", newList, newGet, newCreate, newScale, newDelete)
}

func table(w io.Writer, pools ...*brokerv1.Pool) {
	fmt.Fprintln(w, "NAME\tDATACENTER\tPROFILE\tCAPACITY\tALLOCATED\tDISRUPTED\tSATISFIED\tREASON")
	for _, p := range pools {
		st := p.GetStatus()
		cond := &brokerv1.Condition{}
		if len(st.GetConditions()) > 0 {
			cond = st.GetConditions()[0]
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", p.GetName(), p.GetDatacenter(), p.GetNodeProfile(),
			p.GetCapacity(), st.GetAllocated(), st.GetDisrupted(), cond.GetStatus(), cond.GetReason())
	}
}

// detail prints one pool with its zones and condition message.
func detail(w io.Writer, p *brokerv1.Pool) {
	table(w, p)
	var zones []string
	for _, z := range p.GetStatus().GetZones() {
		zones = append(zones, fmt.Sprintf("mz%d=%d", z.GetMaintenanceZone(), z.GetMachines()))
	}
	fmt.Fprintf(w, "\nPer MZ:\t%s\n", brokercli.Dash(strings.Join(zones, " ")))
	for _, c := range p.GetStatus().GetConditions() {
		fmt.Fprintf(w, "%s:\t%s (%s): %s\n", c.GetType(), c.GetStatus(), c.GetReason(), c.GetMessage())
	}
}

func newList(f *brokercli.Flags) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List pools with their allocation", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.ListPools(cmd.Context(), &brokerv1.ListPoolsRequest{})
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp, func(w io.Writer) {
					if len(resp.GetPools()) == 0 {
						fmt.Fprintln(w, "No pools. Create one: strata pools create NAME --profile PROFILE --capacity N")
						return
					}
					table(w, resp.GetPools()...)
				})
			})
		},
	}
}

func newGet(f *brokercli.Flags) *cobra.Command {
	return &cobra.Command{
		Use: "get NAME", Short: "Show a pool, its machines per MZ and why it is not satisfied", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.GetPool(cmd.Context(), &brokerv1.GetPoolRequest{Name: args[0]})
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp.GetPool(), func(w io.Writer) { detail(w, resp.GetPool()) })
			})
		},
	}
}

func newCreate(f *brokercli.Flags) *cobra.Command {
	p := &brokerv1.Pool{}
	cmd := &cobra.Command{
		Use: "create NAME --profile PROFILE --capacity N [--datacenter DC]", Short: "Create a pool; the broker allocates its machines",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Name = args[0]
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.CreatePool(cmd.Context(), &brokerv1.CreatePoolRequest{Pool: p})
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp.GetPool(), func(w io.Writer) { detail(w, resp.GetPool()) })
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&p.Datacenter, "datacenter", "dc1", "datacenter to draw machines from")
	fs.StringVar(&p.NodeProfile, "profile", "", "node profile of the pool's machines (required)")
	fs.Int32Var(&p.Capacity, "capacity", 0, "number of machines")
	return cmd
}

func newScale(f *brokercli.Flags) *cobra.Command {
	return &cobra.Command{
		Use: "scale NAME CAPACITY", Short: "Set a pool's capacity", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			capacity, err := strconv.ParseInt(args[1], 10, 32)
			if err != nil {
				return fmt.Errorf("capacity %q is not a number", args[1])
			}
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.UpdatePool(cmd.Context(), &brokerv1.UpdatePoolRequest{Name: args[0], Capacity: int32(capacity)})
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp.GetPool(), func(w io.Writer) { detail(w, resp.GetPool()) })
			})
		},
	}
}

func newDelete(f *brokercli.Flags) *cobra.Command {
	return &cobra.Command{
		Use: "delete NAME", Short: "Release a pool's machines and remove it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.With(func(c *brokercli.Client) error {
				if _, err := c.DeletePool(cmd.Context(), &brokerv1.DeletePoolRequest{Name: args[0]}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted pool %s: its machines are released (those under maintenance once it ends).\n", args[0])
				return nil
			})
		},
	}
}
