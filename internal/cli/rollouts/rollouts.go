// Package rollouts holds `strata rollouts`: the hub's MaintenanceRollouts,
// listed, inspected, paused and resumed.
package rollouts

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
		Short: "Create, list, inspect, pause and resume MaintenanceRollouts on the hub",
		Long: `MaintenanceRollouts move the machines of a set of Pools to new node software,
one maintenance zone at a time, while every one of the Pools states that node
config in its spec.nodeConfig (set by the Pool's owner, in Git or with kubectl;
the rollout never writes it). Create one here or with kubectl apply (see
docs/rollouts.md); these verbs follow and steer it.`,
		Args: cobra.NoArgs,
	}
	f.hub.AddTo(cmd.PersistentFlags())
	cmd.PersistentFlags().StringVarP(&f.output, "output", "o", "", "output format: table (default), json or yaml")
	list := newList(f)
	cmd.AddCommand(list, newGet(f), newCreate(f), newPause(f, true), newPause(f, false))
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
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d/%d\t%d\t%d\t%s\t%s\t%s\n", ro.Name, strings.Join(ro.Spec.Pools, ","),
						ro.Spec.NodeConfig, zone(ro.Status.CurrentZone), ro.Status.Updated, ro.Status.Machines, ro.Status.InProgress,
						ro.Status.Failed, paused(ro), reason(ro, fleetv1alpha1.RolloutProgressingCondition),
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
	fmt.Fprintf(w, "Paused:\t%t (spec.paused)\n", ro.Spec.Paused)
	fmt.Fprintf(w, "Tolerated failures:\t%d\n", ro.Spec.ToleratedFailures)
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

// createFlags are `strata rollouts create`'s.
type createFlags struct {
	pools             []string
	nodeConfig        string
	osImage           string
	zoneOrder         []int32
	toleratedFailures int32
}

func newCreate(f *flags) *cobra.Command {
	cf := &createFlags{}
	cmd := &cobra.Command{
		Use:   "create NAME --pools POOL[,POOL...] --node-config CONFIG",
		Short: "Create a rollout, and say which Pools must state its node config before it moves a machine",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(cf.pools) == 0:
				return errors.New("--pools is required: the Pools whose machines move to the node config")
			case cf.nodeConfig == "":
				return errors.New("--node-config is required: the node software every machine ends on")
			case cf.toleratedFailures < 0:
				return fmt.Errorf("--tolerated-failures %d must not be negative", cf.toleratedFailures)
			}
			c, err := f.hub.MustClient()
			if err != nil {
				return err
			}
			ro := &fleetv1alpha1.MaintenanceRollout{
				ObjectMeta: metav1.ObjectMeta{Name: args[0]},
				Spec: fleetv1alpha1.MaintenanceRolloutSpec{Pools: cf.pools, NodeConfig: cf.nodeConfig, OSImage: cf.osImage,
					ZoneOrder: cf.zoneOrder, ToleratedFailures: cf.toleratedFailures},
			}
			return createRollout(cmd.Context(), cmd.OutOrStdout(), c, ro)
		},
	}
	cmd.Flags().StringSliceVar(&cf.pools, "pools", nil, "the Pools whose machines move to the node config")
	cmd.Flags().StringVar(&cf.nodeConfig, "node-config", "", "the node software every machine of the pools ends on")
	cmd.Flags().StringVar(&cf.osImage, "os-image", "", "the OS image every machine is reimaged with (default: each machine's)")
	cmd.Flags().Int32SliceVar(&cf.zoneOrder, "zone-order", nil, "maintenance zones first in this order, the rest ascending")
	cmd.Flags().Int32Var(&cf.toleratedFailures, "tolerated-failures", 0, "machines that may fail their maintenance before the rollout halts")
	return cmd
}

// createRollout creates ro and says, for each of its pools that does not
// state its node config, what the pool's owner does next: the rollout
// moves no machine until then, and this command does not change the pool.
func createRollout(ctx context.Context, out io.Writer, c client.Client, ro *fleetv1alpha1.MaintenanceRollout) error {
	if err := c.Create(ctx, ro); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("rollout %q exists already (strata rollouts get %s shows it)", ro.Name, ro.Name)
		}
		return fmt.Errorf("creating rollout %s: %w", ro.Name, err)
	}
	fmt.Fprintf(out, "Created rollout %s: pools %s to node config %s.\n", ro.Name, strings.Join(ro.Spec.Pools, ", "), ro.Spec.NodeConfig)
	var next []string
	for _, name := range ro.Spec.Pools {
		pool := &fleetv1alpha1.Pool{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, pool); err != nil {
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("reading pool %s: %w", name, err)
			}
			next = append(next, fmt.Sprintf("Pool %s does not exist on the hub: the rollout waits for it (kubectl get pools lists those that do).", name))
			continue
		}
		if pool.Spec.NodeConfig != ro.Spec.NodeConfig {
			next = append(next, fmt.Sprintf("Pool %s states node config %s: state %s in the Pool where it is kept (Git), or\n"+
				"  kubectl patch pool %s --type merge -p '{\"spec\":{\"nodeConfig\":\"%s\"}}'",
				name, cmp.Or(pool.Spec.NodeConfig, `"" (its node profile's)`), ro.Spec.NodeConfig, name, ro.Spec.NodeConfig))
		}
	}
	if len(next) > 0 {
		fmt.Fprintln(out, "It moves no machine until every pool states that node config (the rollout never changes a Pool). Next:")
		for _, n := range next {
			fmt.Fprintln(out, "- "+n)
		}
	}
	_, err := fmt.Fprintf(out, "strata rollouts get %s follows it.\n", ro.Name)
	return err
}

func newPause(f *flags, pause bool) *cobra.Command {
	use, short := "resume NAME", "Resume a rollout paused by a person or halted by failed machines (which it then tolerates)"
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
			if pause {
				return pauseRollout(cmd.Context(), cmd.OutOrStdout(), c, ro)
			}
			return resumeRollout(cmd.Context(), cmd.OutOrStdout(), c, ro)
		},
	}
}

// pauseRollout sets spec.paused.
func pauseRollout(ctx context.Context, out io.Writer, c client.Client, ro *fleetv1alpha1.MaintenanceRollout) error {
	if ro.Spec.Paused {
		_, err := fmt.Fprintf(out, "Rollout %s is already paused.\n", ro.Name)
		return err
	}
	patch := client.MergeFrom(ro.DeepCopy())
	ro.Spec.Paused = true
	if err := c.Patch(ctx, ro, patch); err != nil {
		return fmt.Errorf("setting spec.paused of rollout %s: %w", ro.Name, err)
	}
	_, err := fmt.Fprintf(out, "Rollout %s paused: disruptions already open finish, no new machine is disrupted.\n", ro.Name)
	return err
}

// resumeRollout clears spec.paused and, when more machines failed their
// maintenance than the rollout tolerates, raises spec.toleratedFailures to
// their number: the person's decision to go on despite them, in the spec
// where the rollout reads it.
func resumeRollout(ctx context.Context, out io.Writer, c client.Client, ro *fleetv1alpha1.MaintenanceRollout) error {
	failed := ro.Status.Failures
	halted := int32(len(failed)) > ro.Spec.ToleratedFailures
	if !ro.Spec.Paused && !halted {
		_, err := fmt.Fprintf(out, "Rollout %s is not paused, and no more machines failed than it tolerates (%d).\n", ro.Name, ro.Spec.ToleratedFailures)
		return err
	}
	// Optimistic lock: the count tolerated is the one this person saw.
	patch := client.MergeFromWithOptions(ro.DeepCopy(), client.MergeFromWithOptimisticLock{})
	ro.Spec.Paused = false
	if halted {
		ro.Spec.ToleratedFailures = int32(len(failed))
	}
	if err := c.Patch(ctx, ro, patch); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("rollout %s changed while it was read (strata rollouts get %s shows it now); run resume again", ro.Name, ro.Name)
		}
		return fmt.Errorf("resuming rollout %s: %w", ro.Name, err)
	}
	if halted {
		var names []string
		for _, f := range failed {
			names = append(names, f.Machine)
		}
		what := fmt.Sprintf("the %d machines that failed their maintenance", len(failed))
		if len(failed) == 1 {
			what = "the machine that failed its maintenance"
		}
		fmt.Fprintf(out, "Rollout %s tolerates %s (%s): spec.toleratedFailures is now %d; one more failure halts it again.\n",
			ro.Name, what, strings.Join(names, ", "), ro.Spec.ToleratedFailures)
	}
	_, err := fmt.Fprintf(out, "Rollout %s resumed.\n", ro.Name)
	return err
}

// paused is the PAUSED column: the Paused condition's reason when it holds
// the rollout (a person, or failed machines), else false.
func paused(ro *fleetv1alpha1.MaintenanceRollout) string {
	if c := meta.FindStatusCondition(ro.Status.Conditions, fleetv1alpha1.RolloutPausedCondition); c != nil && c.Status == metav1.ConditionTrue {
		return c.Reason
	}
	if ro.Spec.Paused {
		return fleetv1alpha1.RolloutPausedByUserReason
	}
	return "false"
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
