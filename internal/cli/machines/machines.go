// Package machines holds `strata machines`: the broker's inventory.
package machines

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-dev/strata/internal/cli/brokercli"
	"github.com/strata-dev/strata/internal/cli/globals"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// NewCommand returns `strata machines`.
func NewCommand(g *globals.Flags) *cobra.Command {
	return brokercli.NewGroup(g, "machines", "List and inspect the machines of the inventory", newList, newGet)
}

func newList(f *brokercli.Flags) *cobra.Command {
	req := &brokerv1.ListMachinesRequest{}
	var state string
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List machines, filtered by datacenter, MZ, state, SKU, pool or health",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state != "" {
				v, ok := brokerv1.MachineState_value["MACHINE_STATE_"+strings.ToUpper(state)]
				if !ok {
					return fmt.Errorf("--state %q is not one of available, allocated, disrupted, unhealthy, decommissioned", state)
				}
				req.State = brokerv1.MachineState(v)
			}
			return f.With(func(c *brokercli.Client) error {
				out := &brokerv1.ListMachinesResponse{}
				for {
					page, err := c.ListMachines(cmd.Context(), req)
					if err != nil {
						return err
					}
					out.Machines = append(out.Machines, page.GetMachines()...)
					out.NextPageToken = page.GetNextPageToken()
					if !all || out.NextPageToken == "" {
						break
					}
					req.PageToken = out.NextPageToken
				}
				return f.Print(cmd.OutOrStdout(), out, func(w io.Writer) {
					if len(out.GetMachines()) == 0 {
						fmt.Fprintln(w, "No machines match.")
						return
					}
					fmt.Fprintln(w, "ID\tDATACENTER\tMZ\tRACK\tSKU\tSTATE\tPROVISION\tPOOL\tNODE CONFIG\tHEALTH")
					for _, m := range out.GetMachines() {
						fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.GetId(), m.GetDatacenter(), m.GetMaintenanceZone(),
							m.GetRack(), m.GetSku().GetName(), brokercli.EnumName(m.GetState(), "MACHINE_STATE_"), provision(m),
							brokercli.Dash(m.GetPool()), brokercli.Dash(m.GetSoftware().GetNodeConfig()), health(m))
					}
					if out.GetNextPageToken() != "" {
						fmt.Fprintf(w, "(more: --all, or --page-token %s)\n", out.GetNextPageToken())
					}
				})
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&req.Datacenter, "datacenter", "", "only machines of this datacenter")
	fs.Int32Var(&req.MaintenanceZone, "mz", 0, "only machines of this maintenance zone")
	fs.StringVar(&state, "state", "", "only machines in this state")
	fs.StringVar(&req.Sku, "sku", "", "only machines of this SKU")
	fs.StringVar(&req.Pool, "pool", "", "only machines of this pool")
	fs.BoolVar(&req.UnhealthyOnly, "unhealthy", false, "only machines that are not healthy")
	fs.Int32Var(&req.PageSize, "page-size", 100, "machines per page (at most 1000)")
	fs.StringVar(&req.PageToken, "page-token", "", "page to start from")
	fs.BoolVar(&all, "all", false, "list every page")
	return cmd
}

// health is a machine's health for a table: healthy, or unhealthy and why;
// a healthy machine with a message (a join being retried) shows it too.
func health(m *brokerv1.Machine) string {
	h := "healthy"
	if !m.GetHealthy() {
		h = "unhealthy"
	}
	if msg := m.GetHealthMessage(); msg != "" {
		h += ": " + msg
	}
	return h
}

// provision is a machine's provision state for a table: clean, joining,
// joined or wiping.
func provision(m *brokerv1.Machine) string {
	if m.GetProvisionState() == brokerv1.ProvisionState_PROVISION_STATE_UNSPECIFIED {
		return "-" // a broker from before provision states
	}
	return brokercli.EnumName(m.GetProvisionState(), "PROVISION_STATE_")
}

func newGet(f *brokercli.Flags) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one machine",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.GetMachine(cmd.Context(), &brokerv1.GetMachineRequest{Id: args[0]})
				if err != nil {
					return err
				}
				m := resp.GetMachine()
				return f.Print(cmd.OutOrStdout(), m, func(w io.Writer) {
					s := m.GetSku()
					fmt.Fprintf(w, "ID:\t%s\nDatacenter:\t%s\nMaintenance zone:\t%d\nRack:\t%s\n", m.GetId(), m.GetDatacenter(), m.GetMaintenanceZone(), m.GetRack())
					fmt.Fprintf(w, "SKU:\t%s (%d cores, %d GiB, %d GPUs %s, %d GiB disk)\n", s.GetName(), s.GetCpuCores(), s.GetMemoryGib(), s.GetGpus(), s.GetGpuModel(), s.GetLocalDiskGib())
					fmt.Fprintf(w, "State:\t%s\nProvision:\t%s\nHealth:\t%s\nPool:\t%s\n", brokercli.EnumName(m.GetState(), "MACHINE_STATE_"),
						provision(m), health(m), brokercli.Dash(m.GetPool()))
					sw := m.GetSoftware()
					fmt.Fprintf(w, "Software:\tos %s, kernel %s, node config %s\n", sw.GetOsImage(), sw.GetKernel(), brokercli.Dash(sw.GetNodeConfig()))
				})
			})
		},
	}
}
