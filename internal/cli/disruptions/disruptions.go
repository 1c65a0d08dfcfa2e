// Package disruptions holds `strata disruptions`: the broker's record of
// every operation on a machine.
package disruptions

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/strata-dev/strata/internal/cli/brokercli"
	"github.com/strata-dev/strata/internal/cli/globals"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// NewCommand returns `strata disruptions`.
func NewCommand(g *globals.Flags) *cobra.Command {
	return brokercli.NewGroup(g, "disruptions", "List and inspect disruptions of machines", newList, newGet)
}

func state(s brokerv1.DisruptionState) string {
	return brokercli.EnumName(s, "DISRUPTION_STATE_")
}

func age(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return duration.HumanDuration(time.Since(t.AsTime()))
}

func newList(f *brokercli.Flags) *cobra.Command {
	req := &brokerv1.ListDisruptionsRequest{}
	var states []string
	cmd := &cobra.Command{
		Use: "list", Short: "List disruptions with state, actor, reason and age", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range states {
				v, ok := brokerv1.DisruptionState_value["DISRUPTION_STATE_"+strings.ToUpper(strings.ReplaceAll(s, "-", "_"))]
				if !ok {
					return fmt.Errorf("--state %q is not one of pending, approved, in-progress, completed, cancelled", s)
				}
				req.States = append(req.States, brokerv1.DisruptionState(v))
			}
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.ListDisruptions(cmd.Context(), req)
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp, func(w io.Writer) {
					if len(resp.GetDisruptions()) == 0 {
						fmt.Fprintln(w, "No disruptions.")
						return
					}
					fmt.Fprintln(w, "ID\tMACHINE\tPOOL\tMZ\tREASON\tSTATE\tACTOR\tAGE")
					for _, d := range resp.GetDisruptions() {
						fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", d.GetId(), d.GetMachine(), brokercli.Dash(d.GetPool()),
							d.GetMaintenanceZone(), brokercli.EnumName(d.GetReason(), "DISRUPTION_REASON_"), state(d.GetState()),
							d.GetActor(), age(d.GetCreateTime()))
					}
				})
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&req.Machine, "machine", "", "only disruptions of this machine")
	fs.StringVar(&req.Pool, "pool", "", "only disruptions of this pool")
	fs.StringVar(&req.Datacenter, "datacenter", "", "only disruptions of this datacenter")
	fs.StringSliceVar(&states, "state", nil, "only disruptions in these states")
	return cmd
}

func newGet(f *brokercli.Flags) *cobra.Command {
	return &cobra.Command{
		Use: "get ID", Short: "Show a disruption and every step of its history", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.GetDisruption(cmd.Context(), &brokerv1.GetDisruptionRequest{Id: args[0]})
				if err != nil {
					return err
				}
				d := resp.GetDisruption()
				return f.Print(cmd.OutOrStdout(), d, func(w io.Writer) {
					fmt.Fprintf(w, "ID:\t%s\nMachine:\t%s (pool %s, %s MZ %d)\n", d.GetId(), d.GetMachine(), brokercli.Dash(d.GetPool()), d.GetDatacenter(), d.GetMaintenanceZone())
					fmt.Fprintf(w, "Reason:\t%s\nState:\t%s\nActor:\t%s\nMessage:\t%s\n\nHISTORY\n", brokercli.EnumName(d.GetReason(), "DISRUPTION_REASON_"),
						state(d.GetState()), d.GetActor(), brokercli.Dash(d.GetMessage()))
					fmt.Fprintln(w, "TIME\tFROM\tTO\tACTOR\tMESSAGE")
					for _, t := range d.GetHistory() {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.GetTime().AsTime().Format(time.RFC3339), brokercli.Dash(strings.TrimPrefix(state(t.GetFrom()), "unspecified")),
							state(t.GetTo()), t.GetActor(), brokercli.Dash(t.GetMessage()))
					}
				})
			})
		},
	}
}
