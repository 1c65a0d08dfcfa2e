// Package pools holds `strata pools`: the hub's Pools (Nodes of a workload
// cluster) beside the broker's machine pools.
package pools

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cli/brokercli"
	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/cli/hubcli"
	"github.com/strata-dev/strata/internal/cli/suggest"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// NewCommand returns `strata pools`.
func NewCommand(g *globals.Flags) *cobra.Command {
	hub := &hubFlags{hubcli.Flags{Global: g}}
	withHub := func(verb func(*brokercli.Flags, *hubFlags) *cobra.Command) func(*brokercli.Flags) *cobra.Command {
		return func(f *brokercli.Flags) *cobra.Command { return verb(f, hub) }
	}
	cmd := brokercli.NewGroup(g, "pools", "Show and manage pools: the hub's Pools and the broker's machine pools",
		withHub(newList), withHub(newGet), withHub(newCreate), withHub(newScale), withHub(newDelete))
	hub.AddTo(cmd.PersistentFlags())
	// `strata pools` alone lists them.
	cmd.Args, cmd.RunE = cobra.NoArgs, func(c *cobra.Command, args []string) error {
		list, _, err := c.Find([]string{"list"})
		if err != nil {
			return err
		}
		return list.RunE(c, args)
	}
	return cmd
}

// row is one pool as `strata pools` shows it: the hub's Pool, when there is
// one, beside the broker's pool of the same name.
type row struct {
	Name      string `json:"name"`
	Cluster   string `json:"cluster,omitempty"`
	Profile   string `json:"profile"`
	Capacity  int32  `json:"capacity"`
	Allocated int32  `json:"allocated"`
	Releasing int32  `json:"releasing"`
	// Nodes and Ready are the hub Pool's counts, nil for a broker-only pool.
	Nodes  *int32 `json:"nodes,omitempty"`
	Ready  *int32 `json:"ready,omitempty"`
	Status string `json:"status"`
	// Message says why the pool is not Ready or Satisfied.
	Message string `json:"message,omitempty"`
}

// rows joins the hub's Pools with the broker's pools, by name.
func rows(hubPools []fleetv1alpha1.Pool, brokerPools []*brokerv1.Pool) []row {
	byName := map[string]*brokerv1.Pool{}
	for _, bp := range brokerPools {
		byName[bp.GetName()] = bp
	}
	var out []row
	for i := range hubPools {
		p := &hubPools[i]
		r := row{Name: p.Name, Cluster: p.Spec.Cluster, Profile: p.Spec.NodeProfile, Capacity: p.Spec.Capacity,
			Nodes: &p.Status.Nodes, Ready: &p.Status.Ready}
		if bp := byName[p.Name]; bp != nil {
			r.Allocated, r.Releasing = bp.GetStatus().GetAllocated(), bp.GetStatus().GetReleasing()
			delete(byName, p.Name)
		}
		if c := meta.FindStatusCondition(p.Status.Conditions, fleetv1alpha1.PoolReadyCondition); c != nil {
			r.Status, r.Message = c.Reason, c.Message
			if c.Status == metav1.ConditionTrue {
				r.Message = ""
			}
		}
		out = append(out, r)
	}
	for _, bp := range brokerPools {
		if byName[bp.GetName()] == nil {
			continue // shown with its hub Pool
		}
		r := row{Name: bp.GetName(), Cluster: bp.GetJoinTarget().GetCluster(), Profile: bp.GetNodeProfile(),
			Capacity: bp.GetCapacity(), Allocated: bp.GetStatus().GetAllocated(), Releasing: bp.GetStatus().GetReleasing()}
		for _, c := range bp.GetStatus().GetConditions() {
			r.Status = c.GetReason()
			if c.GetStatus() != "True" {
				r.Message = c.GetMessage()
			}
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b row) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func rowTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "NAME\tCLUSTER\tPROFILE\tCAPACITY\tALLOCATED\tRELEASING\tNODES\tREADY\tSTATUS")
	count := func(n *int32) string {
		if n == nil {
			return "-"
		}
		return strconv.Itoa(int(*n))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", r.Name, brokercli.Dash(r.Cluster), r.Profile,
			r.Capacity, r.Allocated, r.Releasing, count(r.Nodes), count(r.Ready), brokercli.Dash(r.Status))
	}
}

// table prints broker pools, as the broker sees them.
func table(w io.Writer, pools ...*brokerv1.Pool) {
	fmt.Fprintln(w, "NAME\tDATACENTER\tPROFILE\tCAPACITY\tALLOCATED\tJOINED\tRELEASING\tSATISFIED\tREASON")
	for _, p := range pools {
		st := p.GetStatus()
		cond := &brokerv1.Condition{}
		if len(st.GetConditions()) > 0 {
			cond = st.GetConditions()[0]
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", p.GetName(), p.GetDatacenter(), p.GetNodeProfile(),
			p.GetCapacity(), st.GetAllocated(), st.GetJoined(), st.GetReleasing(), cond.GetStatus(), cond.GetReason())
	}
}

// detail prints one broker pool with its zones and condition message, and
// the hub Pool's conditions when there is one.
func detail(w io.Writer, p *brokerv1.Pool, hubPool *fleetv1alpha1.Pool) {
	table(w, p)
	var zones []string
	for _, z := range p.GetStatus().GetZones() {
		zones = append(zones, fmt.Sprintf("mz%d=%d", z.GetMaintenanceZone(), z.GetMachines()))
	}
	fmt.Fprintf(w, "\nPer MZ:\t%s\n", brokercli.Dash(strings.Join(zones, " ")))
	if jt := p.GetJoinTarget(); jt != nil {
		fmt.Fprintf(w, "Joins:\tcluster %s\n", jt.GetCluster())
	}
	for _, c := range p.GetStatus().GetConditions() {
		fmt.Fprintf(w, "%s:\t%s (%s): %s\n", c.GetType(), c.GetStatus(), c.GetReason(), c.GetMessage())
	}
	if hubPool == nil {
		return
	}
	fmt.Fprintf(w, "Hub Pool:\t%d Nodes, %d ready\n", hubPool.Status.Nodes, hubPool.Status.Ready)
	for _, c := range hubPool.Status.Conditions {
		fmt.Fprintf(w, "%s:\t%s (%s): %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
}

func newList(f *brokercli.Flags, hub *hubFlags) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List the hub's Pools and the broker's pools with their machine and Node counts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hubPools, err := hub.list(cmd.Context())
			if err != nil {
				return err
			}
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.ListPools(cmd.Context(), &brokerv1.ListPoolsRequest{})
				if err != nil {
					return err
				}
				all := rows(hubPools, resp.GetPools())
				return printRows(cmd.OutOrStdout(), f.Output, all)
			})
		},
	}
}

func printRows(out io.Writer, output string, all []row) error {
	if output != "table" {
		raw, err := json.MarshalIndent(all, "", "  ")
		if err != nil {
			return err
		}
		if output == "yaml" {
			if raw, err = yaml.JSONToYAML(raw); err != nil {
				return err
			}
		}
		_, err = fmt.Fprintln(out, strings.TrimSpace(string(raw)))
		return err
	}
	if len(all) == 0 {
		fmt.Fprintln(out, "No pools. Create one: strata pools create NAME --cluster CLUSTER --profile PROFILE --capacity N")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	rowTable(tw, all)
	return tw.Flush()
}

func newGet(f *brokercli.Flags, hub *hubFlags) *cobra.Command {
	return &cobra.Command{
		Use: "get NAME", Short: "Show a pool, its machines per MZ and why it is not ready", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hubPool, err := hub.get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.GetPool(cmd.Context(), &brokerv1.GetPoolRequest{Name: args[0]})
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp.GetPool(), func(w io.Writer) { detail(w, resp.GetPool(), hubPool) })
			})
		},
	}
}

func newCreate(f *brokercli.Flags, hub *hubFlags) *cobra.Command {
	p := &brokerv1.Pool{}
	var cluster string
	cmd := &cobra.Command{
		Use:   "create NAME --profile PROFILE --capacity N [--cluster CLUSTER | --datacenter DC]",
		Short: "Create a Pool of Nodes in a cluster (--cluster), or a bare broker pool of machines",
		// The flags are checked with the arguments: a mistake in the
		// command line gets the usage line, before the hub or broker is asked.
		Args: cobra.MatchAll(cobra.ExactArgs(1), func(*cobra.Command, []string) error {
			switch {
			case p.NodeProfile == "":
				return errors.New("--profile is required: the node profile of the pool's machines (strata profiles lists them)")
			case p.Capacity < 0:
				return fmt.Errorf("capacity must not be negative, got %d", p.Capacity)
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Name = args[0]
			if cluster != "" {
				return createHubPool(cmd, f, hub, &fleetv1alpha1.Pool{
					ObjectMeta: metav1.ObjectMeta{Name: p.Name},
					Spec:       fleetv1alpha1.PoolSpec{Cluster: cluster, NodeProfile: p.NodeProfile, Capacity: p.Capacity},
				})
			}
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.CreatePool(cmd.Context(), &brokerv1.CreatePoolRequest{Pool: p})
				if status.Code(err) == codes.InvalidArgument {
					// The broker names an unknown profile; add the close ones.
					if names, lerr := profileNames(cmd.Context(), c); lerr == nil && !slices.Contains(names, p.NodeProfile) {
						return errors.New(brokercli.Explain(err).Error() + suggest.DidYouMean(p.NodeProfile, names))
					}
				}
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp.GetPool(), func(w io.Writer) { detail(w, resp.GetPool(), nil) })
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cluster, "cluster", "", "workload cluster whose Nodes the machines become: creates a Pool on the hub")
	fs.StringVar(&p.Datacenter, "datacenter", "dc1", "datacenter to draw machines from (a bare broker pool)")
	fs.StringVar(&p.NodeProfile, "profile", "", "node profile of the pool's machines (required)")
	fs.Int32Var(&p.Capacity, "capacity", 0, "number of machines")
	return cmd
}

// createHubPool creates a Pool on the hub once the hub knows its cluster
// and the broker its node profile: the pool controller would only say so
// later, in the Pool's status, after the command had said "Created".
func createHubPool(cmd *cobra.Command, f *brokercli.Flags, hub *hubFlags, pool *fleetv1alpha1.Pool) error {
	if err := hub.checkCluster(cmd.Context(), pool.Spec.Cluster); err != nil {
		return err
	}
	var profiles []string
	if err := f.With(func(c *brokercli.Client) (err error) {
		profiles, err = profileNames(cmd.Context(), c)
		return err
	}); err != nil {
		return fmt.Errorf("checking node profile %q at the broker: %w", pool.Spec.NodeProfile, err)
	}
	if !slices.Contains(profiles, pool.Spec.NodeProfile) {
		return fmt.Errorf("node profile %q does not exist at the broker%s (strata profiles lists them)",
			pool.Spec.NodeProfile, suggest.DidYouMean(pool.Spec.NodeProfile, profiles))
	}
	return hub.create(cmd.Context(), cmd.OutOrStdout(), pool)
}

// profileNames lists the names of the broker's node profiles.
func profileNames(ctx context.Context, c *brokercli.Client) ([]string, error) {
	resp, err := c.ListNodeProfiles(ctx, &brokerv1.ListNodeProfilesRequest{})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(resp.GetProfiles()))
	for _, p := range resp.GetProfiles() {
		names = append(names, p.GetName())
	}
	return names, nil
}

// parseCapacity reads a pool's capacity from the command line.
func parseCapacity(s string) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	switch {
	case err != nil:
		return 0, fmt.Errorf("capacity %q is not a whole number", s)
	case n < 0:
		return 0, fmt.Errorf("capacity must not be negative, got %d", n)
	}
	return int32(n), nil
}

func newScale(f *brokercli.Flags, hub *hubFlags) *cobra.Command {
	return &cobra.Command{
		Use: "scale NAME CAPACITY", Short: "Set a pool's capacity (the hub's Pool when there is one)",
		Args: cobra.MatchAll(cobra.ExactArgs(2), func(_ *cobra.Command, args []string) error {
			_, err := parseCapacity(args[1])
			return err
		}),
		RunE: func(cmd *cobra.Command, args []string) error {
			capacity, err := parseCapacity(args[1])
			if err != nil {
				return err
			}
			hubPool, err := hub.get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if hubPool != nil {
				return hub.scale(cmd.Context(), cmd.OutOrStdout(), hubPool, capacity)
			}
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.UpdatePool(cmd.Context(), &brokerv1.UpdatePoolRequest{Name: args[0], Capacity: capacity})
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp.GetPool(), func(w io.Writer) { detail(w, resp.GetPool(), nil) })
			})
		},
	}
}

func newDelete(f *brokercli.Flags, hub *hubFlags) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete NAME [--force]",
		Short: "Drain and release a pool's machines and remove it; asks first, unless --force",
		Long: `Deleting a pool drains its Nodes and gives its machines back to the broker.
The hub protects Pools against deletion (the delete-protection guardrail);
this command overrides that by annotating the Pool strata.dev/allow-delete=true
before it deletes it. So it asks first on a terminal, and elsewhere (a script,
a pipe) deletes only with --force.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hubPool, err := hub.get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if hubPool != nil {
				what := fmt.Sprintf("Pool %s holds %d Nodes of cluster %s: deleting it drains them and releases their machines. "+
					"It is protected against deletion; this annotates it %s=true, the guardrail's override, and deletes it",
					hubPool.Name, hubPool.Status.Nodes, hubPool.Spec.Cluster, appsv1alpha1.AllowDeleteAnnotation)
				if err := confirm(cmd, force, what); err != nil {
					return err
				}
				return hub.delete(cmd.Context(), cmd.OutOrStdout(), hubPool)
			}
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.GetPool(cmd.Context(), &brokerv1.GetPoolRequest{Name: args[0]})
				if err != nil {
					return err
				}
				what := fmt.Sprintf("Broker pool %s holds %d machines: deleting it releases them",
					args[0], resp.GetPool().GetStatus().GetAllocated())
				if err := confirm(cmd, force, what); err != nil {
					return err
				}
				if _, err := c.DeletePool(cmd.Context(), &brokerv1.DeletePoolRequest{Name: args[0]}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted pool %s: its machines are released (those under maintenance once it ends).\n", args[0])
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "delete without asking (and, for a hub Pool, write the delete-protection override)")
	return cmd
}

// confirm lets a delete go ahead: with --force, or when a person at a
// terminal answers yes. Without a terminal nobody can answer, and a script
// must say --force.
func confirm(cmd *cobra.Command, force bool, what string) error {
	switch {
	case force:
		return nil
	case !isTerminal(cmd.InOrStdin()):
		return fmt.Errorf("%s. Not deleted: --force deletes it", what)
	}
	return ask(cmd.InOrStdin(), cmd.ErrOrStderr(), what)
}

// ask says what a delete does and reads the answer: yes, or nothing happens.
func ask(in io.Reader, out io.Writer, what string) error {
	fmt.Fprintf(out, "%s.\nDelete it? Type yes to delete: ", what)
	answer, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "yes" && a != "y" {
		return fmt.Errorf("not deleted: the answer was %q, not yes", strings.TrimSpace(answer))
	}
	return nil
}

// isTerminal says whether r is a terminal (a character device) a person
// can answer from.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
