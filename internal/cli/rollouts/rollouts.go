// Package rollouts holds `strata rollouts`: the hub's MaintenanceRollouts,
// listed, inspected, paused and resumed.
package rollouts

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/cli/hubcli"
)

// flags are the group's: the hub and the output format.
type flags struct {
	hub    hubcli.Flags
	output string
}

// NewCommand returns `strata rollouts`.
func NewCommand(g *globals.Flags) *cobra.Command {
	f := &flags{hub: hubcli.Flags{Global: g}}
	cmd := &cobra.Command{
		Use:   "rollouts",
		Short: "List, inspect, pause and resume MaintenanceRollouts on the hub",
		Long: `MaintenanceRollouts move the machines of a set of Pools to new node software,
one maintenance zone at a time. Create one with kubectl apply (see
docs/rollouts.md); these verbs follow and steer it.`,
		Args: cobra.NoArgs,
	}
	f.hub.AddTo(cmd.PersistentFlags())
	cmd.PersistentFlags().StringVarP(&f.output, "output", "o", "", "output format: table (default), json or yaml")
	list := newList(f)
	cmd.AddCommand(list, newGet(f), newPause(f, true), newPause(f, false))
	// `strata rollouts` alone lists them.
	cmd.RunE = list.RunE
	return cmd
}

func (f *flags) validate() error {
	switch f.output {
	case "", "table", "json", "yaml":
		return nil
	}
	return fmt.Errorf("--output %q is not one of table, json, yaml", f.output)
}

// print writes obj as JSON or YAML, or calls table.
func (f *flags) print(out io.Writer, obj runtime.Object, table func(w io.Writer)) error {
	switch f.output {
	case "json", "yaml":
		raw, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		if f.output == "json" {
			if raw, err = yaml.YAMLToJSONStrict(raw); err != nil {
				return err
			}
		}
		_, err = fmt.Fprintln(out, strings.TrimSpace(string(raw)))
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func (f *flags) get(ctx context.Context, c client.Client, name string) (*fleetv1alpha1.MaintenanceRollout, error) {
	ro := &fleetv1alpha1.MaintenanceRollout{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, ro); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("rollout %q does not exist on the hub (strata rollouts lists those that do)", name)
		}
		return nil, fmt.Errorf("reading rollout %s: %w (%s)", name, err, hubcli.Hint)
	}
	ro.SetManagedFields(nil)
	return ro, nil
}

func newList(f *flags) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List rollouts with their progress", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			c, err := f.hub.MustClient()
			if err != nil {
				return err
			}
			list := &fleetv1alpha1.MaintenanceRolloutList{}
			if err := c.List(cmd.Context(), list); err != nil {
				return fmt.Errorf("listing rollouts: %w (%s)", err, hubcli.Hint)
			}
			for i := range list.Items {
				list.Items[i].SetManagedFields(nil)
			}
			list.SetGroupVersionKind(fleetv1alpha1.GroupVersion.WithKind("MaintenanceRolloutList"))
			return f.print(cmd.OutOrStdout(), list, func(w io.Writer) {
				if len(list.Items) == 0 {
					fmt.Fprintln(w, "No rollouts.")
					return
				}
				fmt.Fprintln(w, "NAME\tPOOLS\tNODE CONFIG\tZONE\tUPDATED\tIN PROGRESS\tFAILED\tPAUSED\tSTATUS\tAGE")
				for i := range list.Items {
					ro := &list.Items[i]
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d/%d\t%d\t%d\t%t\t%s\t%s\n", ro.Name, strings.Join(ro.Spec.Pools, ","),
						ro.Spec.NodeConfig, zone(ro.Status.CurrentZone), ro.Status.Updated, ro.Status.Machines, ro.Status.InProgress,
						ro.Status.Failed, ro.Spec.Paused, reason(ro, fleetv1alpha1.RolloutProgressingCondition),
						duration.HumanDuration(time.Since(ro.CreationTimestamp.Time)))
				}
			})
		},
	}
}

func newGet(f *flags) *cobra.Command {
	return &cobra.Command{
		Use: "get NAME", Short: "Show a rollout: conditions, progress per maintenance zone, failures", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			c, err := f.hub.MustClient()
			if err != nil {
				return err
			}
			ro, err := f.get(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			ro.SetGroupVersionKind(fleetv1alpha1.GroupVersion.WithKind("MaintenanceRollout"))
			return f.print(cmd.OutOrStdout(), ro, func(w io.Writer) { describe(w, ro) })
		},
	}
}

// describe writes a rollout for a person.
func describe(w io.Writer, ro *fleetv1alpha1.MaintenanceRollout) {
	s := &ro.Status
	fmt.Fprintf(w, "Name:\t%s\n", ro.Name)
	fmt.Fprintf(w, "Pools:\t%s\n", strings.Join(ro.Spec.Pools, ", "))
	fmt.Fprintf(w, "Node config:\t%s\n", ro.Spec.NodeConfig)
	if ro.Spec.OSImage != "" {
		fmt.Fprintf(w, "OS image:\t%s\n", ro.Spec.OSImage)
	}
	fmt.Fprintf(w, "Paused:\t%t\n", ro.Spec.Paused)
	fmt.Fprintf(w, "Machines:\t%d updated of %d, %d in progress, %d failed, %d skipped (unhealthy)\n",
		s.Updated, s.Machines, s.InProgress, s.Failed, s.Skipped)
	if s.StartTime != nil {
		took := time.Since(s.StartTime.Time)
		if s.CompletionTime != nil {
			took = s.CompletionTime.Sub(s.StartTime.Time)
		}
		fmt.Fprintf(w, "Running for:\t%s\n", took.Round(time.Second))
	}
	fmt.Fprintln(w, "\nCONDITION\tSTATUS\tREASON\tMESSAGE")
	for _, c := range s.Conditions {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	if len(s.Zones) > 0 {
		fmt.Fprintln(w, "\nMZ\tPHASE\tMACHINES\tUPDATED\tIN PROGRESS\tFAILED\tSKIPPED")
		for _, z := range s.Zones {
			fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%d\t%d\t%d\n", z.MaintenanceZone, z.Phase, z.Machines, z.Updated, z.InProgress, z.Failed, z.Skipped)
		}
	}
	if len(s.Failures) > 0 {
		fmt.Fprintln(w, "\nFAILED MACHINE\tDISRUPTION\tWHEN\tWHY")
		for _, f := range s.Failures {
			when := "-"
			if f.Time != nil {
				when = duration.HumanDuration(time.Since(f.Time.Time)) + " ago"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", f.Machine, f.Disruption, when, f.Message)
		}
	}
}

func newPause(f *flags, pause bool) *cobra.Command {
	use, short := "resume NAME", "Resume a paused rollout"
	if pause {
		use, short = "pause NAME", "Pause a rollout: open disruptions finish, no new machine is disrupted"
	}
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.hub.MustClient()
			if err != nil {
				return err
			}
			ro, err := f.get(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if ro.Spec.Paused == pause {
				_, err := fmt.Fprintf(out, "Rollout %s is already %s.\n", ro.Name, pausedWord(pause))
				return err
			}
			patch := client.MergeFrom(ro.DeepCopy())
			ro.Spec.Paused = pause
			if err := c.Patch(cmd.Context(), ro, patch); err != nil {
				return fmt.Errorf("setting spec.paused of rollout %s: %w", ro.Name, err)
			}
			if pause {
				_, err = fmt.Fprintf(out, "Rollout %s paused: disruptions already open finish, no new machine is disrupted.\n", ro.Name)
				return err
			}
			if c := meta.FindStatusCondition(ro.Status.Conditions, fleetv1alpha1.RolloutPausedCondition); c != nil && c.Status == "True" &&
				c.Reason != fleetv1alpha1.RolloutPausedByUserReason {
				fmt.Fprintf(out, "It had paused itself (%s): %s\n", c.Reason, c.Message)
			}
			_, err = fmt.Fprintf(out, "Rollout %s resumed.\n", ro.Name)
			return err
		},
	}
}

func pausedWord(paused bool) string {
	if paused {
		return "paused"
	}
	return "running"
}

func zone(z int32) string {
	if z == 0 {
		return "-"
	}
	return fmt.Sprint(z)
}

func reason(ro *fleetv1alpha1.MaintenanceRollout, typ string) string {
	if c := meta.FindStatusCondition(ro.Status.Conditions, typ); c != nil {
		return c.Reason
	}
	return "-"
}
