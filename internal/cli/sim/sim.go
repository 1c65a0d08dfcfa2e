// Package sim holds `strata sim`: simulated hardware faults in the local
// datacenter, to watch remediation and maintenance deal with them.
package sim

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/strata-dev/strata/internal/cli/brokercli"
	"github.com/strata-dev/strata/internal/cli/globals"
	simv1 "github.com/strata-dev/strata/proto/strata/sim/v1"
)

// NewCommand returns `strata sim`.
func NewCommand(g *globals.Flags) *cobra.Command {
	cmd := brokercli.NewGroup(g, "sim", "Play hardware faults in the local datacenter", newFail, newHeal, newFaults)
	cmd.Long = `Play hardware faults on the simulated machines of the local datacenter
(strata up). A faulted machine is reported unhealthy to the broker, its Node
goes NotReady (kwok stops playing its kubelet), and the broker's operations on
it fail until one that fixes the fault runs: --until says which (reboot: a
reboot or a reimage; reimage: only a reimage; never: none, the machine must be
replaced). Faults survive a restart of strata up; heal them with strata sim heal.`
	return cmd
}

// fixes are the values of --until, in the API's terms.
var fixes = map[string]simv1.FaultFix{
	"reboot":  simv1.FaultFix_FAULT_FIX_REBOOT,
	"reimage": simv1.FaultFix_FAULT_FIX_REIMAGE,
	"never":   simv1.FaultFix_FAULT_FIX_NEVER,
}

func parseFix(s string) (simv1.FaultFix, error) {
	f, ok := fixes[s]
	if !ok {
		return 0, fmt.Errorf("--until %q is not one of reboot, reimage, never", s)
	}
	return f, nil
}

// parseZone reads <datacenter>/<maintenance zone>.
func parseZone(s string) (string, int32, error) {
	dc, mz, ok := strings.Cut(s, "/")
	n, err := strconv.ParseInt(mz, 10, 32)
	if !ok || dc == "" || err != nil || n < 1 {
		return "", 0, fmt.Errorf("zone %q is not <datacenter>/<maintenance zone>, e.g. dc1/7", s)
	}
	return dc, int32(n), nil
}

// with calls fn with a client of the sim service behind the broker's
// address, and says so when the broker does not serve it.
func with(f *brokercli.Flags, fn func(c simv1.SimServiceClient) error) error {
	return f.With(func(c *brokercli.Client) error {
		err := fn(simv1.NewSimServiceClient(c.Conn()))
		if status.Code(err) == codes.Unimplemented {
			return fmt.Errorf("this broker does not simulate faults, only the local datacenter's does (strata up): %s", status.Convert(err).Message())
		}
		return err
	})
}

func faultTable(w io.Writer, faults []*simv1.Fault) {
	if len(faults) == 0 {
		fmt.Fprintln(w, "No simulated faults.")
		return
	}
	fmt.Fprintln(w, "MACHINE\tUNTIL\tAGE\tMESSAGE")
	for _, f := range faults {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", f.GetMachine(), brokercli.EnumName(f.GetFixedBy(), "FAULT_FIX_"),
			age(f.GetSince()), f.GetMessage())
	}
}

func age(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return duration.HumanDuration(time.Since(t.AsTime()))
}

func newFail(f *brokercli.Flags) *cobra.Command {
	var until string
	cmd := &cobra.Command{
		Use:   "fail",
		Short: "Fault machines, or every machine of a maintenance zone",
		Example: `  strata sim fail machine dc1-r004-u17 --until reimage
  strata sim fail zone dc1/7`,
	}
	cmd.PersistentFlags().StringVar(&until, "until", "never", "the operation that fixes the fault: reboot, reimage or never")
	cmd.AddCommand(&cobra.Command{
		Use: "machine ID...", Short: "Fault machines", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fix, err := parseFix(until)
			if err != nil {
				return err
			}
			return with(f, func(c simv1.SimServiceClient) error {
				resp, err := c.FailMachines(cmd.Context(), &simv1.FailMachinesRequest{Machines: args, FixedBy: fix})
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp, func(w io.Writer) { faultTable(w, resp.GetFaults()) })
			})
		},
	}, &cobra.Command{
		Use: "zone DATACENTER/MZ", Short: "Fault every machine of a maintenance zone", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fix, err := parseFix(until)
			if err != nil {
				return err
			}
			dc, mz, err := parseZone(args[0])
			if err != nil {
				return err
			}
			return with(f, func(c simv1.SimServiceClient) error {
				resp, err := c.FailZone(cmd.Context(), &simv1.FailZoneRequest{Datacenter: dc, MaintenanceZone: mz, FixedBy: fix})
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp, func(w io.Writer) {
					fmt.Fprintf(w, "Faulted %d machines of %s MZ %d (until %s).\n", len(resp.GetFaults()), dc, mz, until)
				})
			})
		},
	})
	return cmd
}

func newHeal(f *brokercli.Flags) *cobra.Command {
	var all bool
	heal := func(cmd *cobra.Command, req *simv1.HealRequest) error {
		return with(f, func(c simv1.SimServiceClient) error {
			resp, err := c.Heal(cmd.Context(), req)
			if err != nil {
				return err
			}
			return f.Print(cmd.OutOrStdout(), resp, func(w io.Writer) {
				if len(resp.GetHealed()) == 0 {
					fmt.Fprintln(w, "Nothing to heal: no fault matched.")
					return
				}
				fmt.Fprintf(w, "Healed %d machines: %s\n", len(resp.GetHealed()), strings.Join(resp.GetHealed(), ", "))
			})
		})
	}
	cmd := &cobra.Command{
		Use:   "heal (machine ID... | zone DATACENTER/MZ | --all)",
		Short: "Clear simulated faults",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !all {
				return fmt.Errorf("say what to heal: strata sim heal machine ID..., zone DATACENTER/MZ, or --all")
			}
			return heal(cmd, &simv1.HealRequest{All: true})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "heal every faulted machine")
	cmd.AddCommand(&cobra.Command{
		Use: "machine ID...", Short: "Heal machines", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return heal(cmd, &simv1.HealRequest{Machines: args})
		},
	}, &cobra.Command{
		Use: "zone DATACENTER/MZ", Short: "Heal every machine of a maintenance zone", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dc, mz, err := parseZone(args[0])
			if err != nil {
				return err
			}
			return heal(cmd, &simv1.HealRequest{Datacenter: dc, MaintenanceZone: mz})
		},
	})
	return cmd
}

func newFaults(f *brokercli.Flags) *cobra.Command {
	return &cobra.Command{
		Use: "faults", Short: "List the simulated faults", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return with(f, func(c simv1.SimServiceClient) error {
				resp, err := c.ListFaults(cmd.Context(), &simv1.ListFaultsRequest{})
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp, func(w io.Writer) { faultTable(w, resp.GetFaults()) })
			})
		},
	}
}
