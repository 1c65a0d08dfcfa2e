// Package pools holds `strata pools`: the hub's Pools (Nodes of a workload
// cluster) beside the broker's machine pools.
package pools

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cli/brokercli"
	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/cli/hubcli"
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
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Name = args[0]
			if cluster != "" {
				return hub.create(cmd.Context(), cmd.OutOrStdout(), &fleetv1alpha1.Pool{
					ObjectMeta: metav1.ObjectMeta{Name: p.Name},
					Spec:       fleetv1alpha1.PoolSpec{Cluster: cluster, NodeProfile: p.NodeProfile, Capacity: p.Capacity},
				})
			}
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.CreatePool(cmd.Context(), &brokerv1.CreatePoolRequest{Pool: p})
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

func newScale(f *brokercli.Flags, hub *hubFlags) *cobra.Command {
	return &cobra.Command{
		Use: "scale NAME CAPACITY", Short: "Set a pool's capacity (the hub's Pool when there is one)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			capacity, err := strconv.ParseInt(args[1], 10, 32)
			if err != nil {
				return fmt.Errorf("capacity %q is not a number", args[1])
			}
			hubPool, err := hub.get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if hubPool != nil {
				return hub.scale(cmd.Context(), cmd.OutOrStdout(), hubPool, int32(capacity))
			}
			return f.With(func(c *brokercli.Client) error {
				resp, err := c.UpdatePool(cmd.Context(), &brokerv1.UpdatePoolRequest{Name: args[0], Capacity: int32(capacity)})
				if err != nil {
					return err
				}
				return f.Print(cmd.OutOrStdout(), resp.GetPool(), func(w io.Writer) { detail(w, resp.GetPool(), nil) })
			})
		},
	}
}

func newDelete(f *brokercli.Flags, hub *hubFlags) *cobra.Command {
	return &cobra.Command{
		Use: "delete NAME", Short: "Drain and release a pool's machines and remove it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hubPool, err := hub.get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if hubPool != nil {
				return hub.delete(cmd.Context(), cmd.OutOrStdout(), hubPool)
			}
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
