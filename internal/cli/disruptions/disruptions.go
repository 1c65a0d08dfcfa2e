// Package disruptions holds `strata disruptions`: the broker's record of
// every operation on a machine.
package disruptions

import (
	"fmt"
	"io"
	"os/user"
	"slices"
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
	return brokercli.NewGroup(g, "disruptions", "List, inspect, ask for and cancel disruptions of machines", newList, newGet, newCreate, newCancel)
}

// currentUser is who runs the command, the default of --for.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

func newCreate(f *brokercli.Flags) *cobra.Command {
	req := &brokerv1.CreateDisruptionRequest{}
	var reason string
	cmd := &cobra.Command{
		Use: "create MACHINE --reason REASON", Short: "Ask the broker to disrupt a machine", Args: cobra.ExactArgs(1),
		Long: `Ask the broker to disrupt a machine: a Pending disruption, within the
budget. Its actor is your identity at the broker (your client certificate's
name); --for adds whom you act for as detail, by default your user name.
Your role must allow creating disruptions of the reason given.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, ok := enumValue(brokerv1.DisruptionReason_value, "DISRUPTION_REASON_", reason)
			if !ok || v == 0 || reason == "pool-shrink" {
				return fmt.Errorf("--reason %q is not one of %s", reason, strings.Join(reasons[:len(reasons)-1], ", "))
			}
			req.Machine, req.Reason = args[0], brokerv1.DisruptionReason(v)
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.CreateDisruption(cmd.Context(), req)
				if err != nil {
					return err
				}
				d := resp.GetDisruption()
				return f.Print(cmd.OutOrStdout(), d, func(w io.Writer) {
					fmt.Fprintf(w, "Disruption %s of machine %s: %s, by %s\n", d.GetId(), d.GetMachine(), state(d.GetState()), brokercli.Actor(d.GetActor(), d.GetOnBehalfOf()))
				})
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&reason, "reason", "", "why: "+strings.Join(reasons[:len(reasons)-1], ", "))
	fs.StringVar(&req.Message, "message", "", "what is to be done, for the record")
	fs.StringVar(&req.OnBehalfOf, "for", currentUser(), "whom you act for, recorded beside your identity")
	return cmd
}

func newCancel(f *brokercli.Flags) *cobra.Command {
	req := &brokerv1.CancelDisruptionRequest{}
	cmd := &cobra.Command{
		Use: "cancel ID", Short: "Cancel an open disruption", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Id = args[0]
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.CancelDisruption(cmd.Context(), req)
				if err != nil {
					return err
				}
				d := resp.GetDisruption()
				return f.Print(cmd.OutOrStdout(), d, func(w io.Writer) {
					fmt.Fprintf(w, "Disruption %s of machine %s: %s\n", d.GetId(), d.GetMachine(), state(d.GetState()))
				})
			})
		},
	}
	cmd.Flags().StringVar(&req.Message, "message", "", "why, for the record")
	cmd.Flags().StringVar(&req.OnBehalfOf, "for", currentUser(), "whom you act for, recorded beside your identity")
	return cmd
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

// reasons are the names --reason accepts, as the table shows them.
var reasons = []string{"planned-upgrade", "hardware-repair", "decommission", "remediation", "pool-shrink"}

// states are the names --state accepts.
var states = []string{"pending", "approved", "in-progress", "completed", "cancelled", "failed"}

// operation is a disruption's operation for a table: "-" when its actor
// performs it, "reimage general-v2" for a reimage to a node config.
func operation(op *brokerv1.Operation) string {
	if op == nil {
		return "-"
	}
	out := brokercli.EnumName(op.GetKind(), "OPERATION_KIND_")
	if sw := op.GetSoftware(); sw != nil {
		var parts []string
		for _, v := range []string{sw.GetNodeConfig(), sw.GetOsImage(), sw.GetKernel()} {
			if v != "" {
				parts = append(parts, v)
			}
		}
		if len(parts) > 0 {
			out += " " + strings.Join(parts, ",")
		}
	}
	return out
}

func enumValue(values map[string]int32, prefix, name string) (int32, bool) {
	v, ok := values[prefix+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))]
	return v, ok
}

func newList(f *brokercli.Flags) *cobra.Command {
	req := &brokerv1.ListDisruptionsRequest{}
	var stateNames, reasonNames []string
	cmd := &cobra.Command{
		Use: "list", Short: "List disruptions with state, actor, reason, operation and age", Args: cobra.NoArgs,
		Long: `List disruptions with state, actor, reason, operation and age. Reason
pool-shrink is the broker asking to release a machine from a pool that joins a
cluster: the pool's cluster approves it once the machine's Node is drained. A
disruption with an operation (reboot, reimage, replace) is performed and
completed by the broker once started; failed means the machine did not come
back from it.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range stateNames {
				v, ok := enumValue(brokerv1.DisruptionState_value, "DISRUPTION_STATE_", s)
				if !ok || v == 0 {
					return fmt.Errorf("--state %q is not one of %s", s, strings.Join(states, ", "))
				}
				req.States = append(req.States, brokerv1.DisruptionState(v))
			}
			keep := map[brokerv1.DisruptionReason]bool{}
			for _, r := range reasonNames {
				v, ok := enumValue(brokerv1.DisruptionReason_value, "DISRUPTION_REASON_", r)
				if !ok || v == 0 {
					return fmt.Errorf("--reason %q is not one of %s", r, strings.Join(reasons, ", "))
				}
				keep[brokerv1.DisruptionReason(v)] = true
			}
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.ListDisruptions(cmd.Context(), req)
				if err != nil {
					return err
				}
				if len(keep) > 0 { // the API filters by state, not reason
					resp.Disruptions = slices.DeleteFunc(resp.Disruptions, func(d *brokerv1.Disruption) bool { return !keep[d.GetReason()] })
				}
				return f.Print(cmd.OutOrStdout(), resp, func(w io.Writer) {
					if len(resp.GetDisruptions()) == 0 {
						fmt.Fprintln(w, "No disruptions.")
						return
					}
					fmt.Fprintln(w, "ID\tMACHINE\tPOOL\tMZ\tREASON\tOPERATION\tSTATE\tACTOR\tAGE")
					for _, d := range resp.GetDisruptions() {
						fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", d.GetId(), d.GetMachine(), brokercli.Dash(d.GetPool()),
							d.GetMaintenanceZone(), brokercli.EnumName(d.GetReason(), "DISRUPTION_REASON_"), operation(d.GetOperation()),
							state(d.GetState()), brokercli.Actor(d.GetActor(), d.GetOnBehalfOf()), age(d.GetCreateTime()))
					}
				})
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&req.Machine, "machine", "", "only disruptions of this machine")
	fs.StringVar(&req.Pool, "pool", "", "only disruptions of this pool")
	fs.StringVar(&req.Datacenter, "datacenter", "", "only disruptions of this datacenter")
	fs.StringSliceVar(&stateNames, "state", nil, "only disruptions in these states: "+strings.Join(states, ", "))
	fs.StringSliceVar(&reasonNames, "reason", nil, "only disruptions for these reasons: "+strings.Join(reasons, ", "))
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
					fmt.Fprintf(w, "Reason:\t%s\nOperation:\t%s\nState:\t%s\nActor:\t%s\nMessage:\t%s\n\nHISTORY\n", brokercli.EnumName(d.GetReason(), "DISRUPTION_REASON_"),
						operation(d.GetOperation()), state(d.GetState()), brokercli.Actor(d.GetActor(), d.GetOnBehalfOf()), brokercli.Dash(d.GetMessage()))
					fmt.Fprintln(w, "TIME\tSTEP\tACTOR\tMESSAGE")
					for _, t := range d.GetHistory() {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.GetTime().AsTime().Format(time.RFC3339), step(t), brokercli.Actor(t.GetActor(), t.GetOnBehalfOf()), brokercli.Dash(t.GetMessage()))
					}
				})
			})
		},
	}
}

// step names one step of a history: "created pending", "pending -> approved",
// or "approved (step)" for a step recorded without a change of state.
func step(t *brokerv1.DisruptionTransition) string {
	switch {
	case t.GetFrom() == brokerv1.DisruptionState_DISRUPTION_STATE_UNSPECIFIED:
		return "created " + state(t.GetTo())
	case t.GetFrom() == t.GetTo():
		return state(t.GetTo()) + " (step)"
	}
	return state(t.GetFrom()) + " -> " + state(t.GetTo())
}
