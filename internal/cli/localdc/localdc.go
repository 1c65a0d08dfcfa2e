// Package localdc holds the commands of the local datacenter: up, down, status.
package localdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/cli/brokercli"
	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/cluster/remediation"
	"github.com/strata-dev/strata/internal/localdc"
	"github.com/strata-dev/strata/internal/metal/provision/sim"
)

// stopTimeout bounds the clean stop after Ctrl-C.
const stopTimeout = time.Minute

// NewUpCommand returns `strata up`.
func NewUpCommand(g *globals.Flags) *cobra.Command {
	var workloads, replicas int
	var verbose bool
	jobs := true
	jobsDispatcher := string(configv1alpha1.StrataDispatcher)
	var db string
	var machines int
	var seed int64
	var poolCapacity int32
	var joinDuration, wipeDuration, notReadyThreshold, faultHoldOff time.Duration
	readyTimeout := localdc.DefaultReadyTimeout
	maintenanceDuration := sim.DefaultMaintenanceDuration
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the local datacenter in the foreground",
		Long: `Run the local datacenter: a hub cluster and workload clusters, each a real
Kubernetes control plane with kwok simulating the kubelets, and Strata's
components against them, in production's shape: the Compute Broker (with
the simulator that plays the machines), the hub's controllers, each
workload cluster's app controllers and each cluster's admission webhook
run as their own 'strata serve' processes, and (with --jobs, the default)
each cluster's Kueue, the jobs platform's batch system, runs from
bin/kueue, all restarted if they die, logging to HOME/logs. Over SQLite (the default) one broker runs; with --db
postgres://..., --replicas of them, one leading. The first run creates the
datacenter in the home directory; later runs bring back the same clusters
and objects. Ctrl-C stops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUp(cmd.Context(), cmd.OutOrStdout(), g, verbose, localdc.Options{
				Home: g.Home, BinDir: g.BinDir, WorkloadClusters: workloads, DB: db, Machines: machines, Seed: seed,
				DefaultPoolCapacity: poolCapacity, JoinDuration: joinDuration, WipeDuration: wipeDuration,
				MaintenanceDuration: maintenanceDuration, NotReadyThreshold: notReadyThreshold, FaultHoldOff: faultHoldOff,
				ReadyTimeout: readyTimeout, Replicas: replicas, Jobs: jobs,
				JobsDispatcher: configv1alpha1.JobsDispatcher(jobsDispatcher),
			})
		},
	}
	cmd.Flags().IntVar(&workloads, "workload-clusters", 0,
		fmt.Sprintf("number of workload clusters of a new datacenter (default %d)", localdc.DefaultWorkloadClusters))
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also write the components' logs to stderr")
	cmd.Flags().StringVar(&db, "db", "", "the broker's inventory database: postgres://... (default: SQLite in the home)")
	cmd.Flags().IntVar(&machines, "machines", 0, "machines of the simulated datacenter, seeded on first start (default 2000)")
	cmd.Flags().Int64Var(&seed, "seed", 1, "seed of the simulated datacenter: the same seed, the same machines")
	cmd.Flags().Int32Var(&poolCapacity, "pool-capacity", 40,
		"Nodes of the general Pool that a new datacenter gets in each workload cluster (0: no Pool)")
	cmd.Flags().DurationVar(&joinDuration, "join-duration", 0, "how long the sim provisioner takes to join a machine as a Node (default 2s)")
	cmd.Flags().DurationVar(&wipeDuration, "wipe-duration", 0, "how long the sim provisioner takes to wipe a released machine (default 5s)")
	cmd.Flags().DurationVar(&maintenanceDuration, "maintenance-duration", maintenanceDuration,
		"how long the sim provisioner takes to reboot or reimage a machine under maintenance (0: instant)")
	cmd.Flags().DurationVar(&notReadyThreshold, "not-ready-threshold", 0,
		fmt.Sprintf("how long a Node must be NotReady before remediation acts (default %s)", remediation.DefaultNotReadyThreshold))
	cmd.Flags().DurationVar(&faultHoldOff, "fault-hold-off", 0,
		fmt.Sprintf("how long a machine must be reported faulty before remediation acts (default %s)", remediation.DefaultFaultHoldOff))
	cmd.Flags().IntVar(&replicas, "replicas", 1,
		"processes of the hub's controllers, of each workload cluster's app controllers and (with --db postgres://...) of the broker; one leads, the others stand by")
	cmd.Flags().BoolVar(&jobs, "jobs", jobs,
		"run Kueue in every cluster (the hub's the MultiKueue manager), the jobs platform's batch system; --jobs=false spares its CPU")
	cmd.Flags().StringVar(&jobsDispatcher, "jobs-dispatcher", jobsDispatcher,
		"who sends each admitted job to a workload cluster: Strata (filter and score by room, readiness and maintenance), or Kueue's own KueueAllAtOnce or KueueIncremental, to compare")
	cmd.Flags().DurationVar(&readyTimeout, "timeout", readyTimeout,
		"how long the clusters may take to become ready at start; raise it on a busy machine")
	return cmd
}

func runUp(ctx context.Context, out io.Writer, g *globals.Flags, verbose bool, opts localdc.Options) error {
	startLog := logr.Discard()
	if verbose {
		startLog = zap.New(zap.WriteTo(os.Stderr))
	}
	began := time.Now()
	// The components' logger is set before the start, which may take long
	// enough (a restart after a crash) for controller-runtime to complain
	// that none was.
	if err := os.MkdirAll(g.Home, 0o750); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(g.Home, "strata.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close() //nolint:errcheck // log file, closed at exit
	var logOut io.Writer = logFile
	if verbose {
		logOut = io.MultiWriter(logFile, os.Stderr)
	}
	logger := zap.New(zap.WriteTo(logOut))
	klog.SetLogger(logger)
	ctrllog.SetLogger(logger)
	opts.Logger, opts.Progress = startLog, out
	dc, err := localdc.Start(ctx, opts)
	if err != nil {
		return err
	}

	printSummary(out, g.Home, dc, time.Since(began))
	runErr := dc.Run(logr.NewContext(ctx, logger))
	fmt.Fprintln(out, "\nStopping the local datacenter ...")
	stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := dc.Stop(stopCtx); err != nil {
		return errors.Join(runErr, err)
	}
	fmt.Fprintf(out, "Stopped. `strata up --home %s` brings it back; `strata down --home %s` removes it.\n", g.Home, g.Home)
	return runErr
}

func printSummary(out io.Writer, home string, dc *localdc.Running, took time.Duration) {
	verb := "Restarted"
	if dc.Created {
		verb = "Created"
	}
	fmt.Fprintf(out, "%s the local datacenter (Kubernetes %s) in %s.\n\n",
		verb, dc.Datacenter.KubernetesVersion, took.Round(100*time.Millisecond))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  CLUSTER\tROLE\tKUBECONFIG")
	for i, c := range dc.Datacenter.Clusters {
		role := "workload"
		if i == 0 {
			role = "hub"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Name, role, relative(localdc.KubeconfigPath(dc.Home(), c.Name)))
	}
	_ = tw.Flush()
	if url := dc.Datacenter.ConsoleURL(); url != "" {
		fmt.Fprintf(out, "\nConsole: %s (the fleet map, clusters and pools, rollouts, apps; live)\n", url)
	}
	hub := relative(localdc.KubeconfigPath(dc.Home(), localdc.HubName))
	wl := relative(localdc.KubeconfigPath(dc.Home(), dc.Datacenter.WorkloadClusters()[0].Name))
	fmt.Fprintf(out, `
Try:
  bin/kubectl --kubeconfig %s get clusters,pools
  bin/kubectl --kubeconfig %s get nodes
  bin/strata pools --home %s

Logs: %s (this process), %s (each component process, the broker's too)
and each cluster's logs/ folder. 'strata status' shows each process.
Press Ctrl-C to stop; the clusters and their objects are kept for the next 'strata up'.
`, hub, wl, home, relative(filepath.Join(dc.Home(), "strata.log")), relative(filepath.Join(dc.Home(), "logs"))+"/")
}

// relative shortens a path below the working directory for display.
func relative(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

// NewDownCommand returns `strata down`.
func NewDownCommand(g *globals.Flags) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Delete the local datacenter and its home directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			removed, err := localdc.Down(cmd.Context(), localdc.Options{Home: g.Home, BinDir: g.BinDir, Logger: logr.Discard()})
			if err != nil {
				return err
			}
			if !removed {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "No local datacenter in %s: nothing to remove.\n", g.Home)
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Removed the local datacenter and %s.\n", g.Home)
			return err
		},
	}
}

// NewStatusCommand returns `strata status`.
func NewStatusCommand(g *globals.Flags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the local datacenter's clusters and whether each is ready",
		Long: `Print the local datacenter's clusters and whether each is ready, and whether
the Compute Broker serves. It exits non-zero when any of them is not ready.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch output {
			case "table", "json", "yaml":
			default:
				return fmt.Errorf("--output must be table, json or yaml, not %q", output)
			}
			state, err := localdc.Status(cmd.Context(), g.Home)
			if errors.Is(err, localdc.ErrNoDatacenter) {
				return fmt.Errorf("%w: run `strata up --home %s` to create one", err, g.Home)
			}
			if err != nil {
				return err
			}
			if err := printStatus(cmd.OutOrStdout(), output, state); err != nil {
				return err
			}
			// Scripts wait on the exit code: what is not ready fails it.
			if notReady := state.NotReady(); len(notReady) > 0 {
				return fmt.Errorf("the local datacenter is not ready: %s", strings.Join(notReady, "; "))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

func printStatus(out io.Writer, output string, state localdc.DatacenterState) error {
	switch output {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(state)
	case "yaml":
		raw, err := yaml.Marshal(state)
		if err != nil {
			return err
		}
		_, err = out.Write(raw)
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	now := time.Now()
	fmt.Fprintln(tw, "CLUSTER\tROLE\tREADY\tVERSION\tNODES\tRESTARTS\tKUBECONFIG\tREASON")
	for _, s := range state.Clusters {
		ready := "False"
		if s.Ready {
			ready = "True"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", s.Name, s.Role, ready, brokercli.Dash(s.Version), s.Nodes,
			clusterRestarts(s.Restarts, now), relative(s.Kubeconfig), s.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b := state.Broker
	broker := b.Reason
	if b.Serving {
		broker = "serving"
	}
	if b.Serving && b.Replica != "" {
		broker = "serving (" + b.Replica + " leads)"
	}
	if _, err := fmt.Fprintf(out, "\nCompute Broker at %s: %s\n", b.Address, broker); err != nil {
		return err
	}
	if state.Console != "" {
		if _, err := fmt.Fprintf(out, "Console: %s\n", state.Console); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintln(out); err != nil {
		return err
	}
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tCOMPONENT\tCLUSTER\tPID\tREADY\tLEADER\tRESTARTS\tLOG\tREASON")
	for _, c := range state.Components {
		pid := "-"
		if c.Alive {
			pid = strconv.Itoa(c.PID)
		}
		leader := "-"
		if c.Leader != nil {
			leader = strconv.FormatBool(*c.Leader)
		}
		restarts := "0"
		if c.Restarts != nil {
			restarts = restartString(*c.Restarts, now)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Component, c.Cluster, pid, boolString(c.Ready), leader, restarts, relative(c.Log), c.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printRestartReasons(out, state, now)
}

// restartString is a restart count with how long ago the last one was.
func restartString(r localdc.Restart, now time.Time) string {
	return fmt.Sprintf("%d (%s ago)", r.Count, now.Sub(r.Last).Round(time.Second))
}

// clusterRestarts names the cluster's components that were restarted.
func clusterRestarts(restarts map[string]localdc.Restart, now time.Time) string {
	if len(restarts) == 0 {
		return "0"
	}
	names := slices.Sorted(maps.Keys(restarts))
	parts := make([]string, 0, len(names))
	for _, name := range names {
		parts = append(parts, name+" "+restartString(restarts[name], now))
	}
	return strings.Join(parts, ", ")
}

// printRestartReasons says why each restarted process was restarted last.
func printRestartReasons(out io.Writer, state localdc.DatacenterState, now time.Time) error {
	var lines []string
	for _, s := range state.Clusters {
		for _, name := range slices.Sorted(maps.Keys(s.Restarts)) {
			r := s.Restarts[name]
			lines = append(lines, fmt.Sprintf("  %s/%s, %s ago: %s", s.Name, name, now.Sub(r.Last).Round(time.Second), r.Reason))
		}
	}
	for _, c := range state.Components {
		if c.Restarts != nil {
			lines = append(lines, fmt.Sprintf("  %s, %s ago: %s", c.Name, now.Sub(c.Restarts.Last).Round(time.Second), c.Restarts.Reason))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	_, err := fmt.Fprintf(out, "\nRestarted by strata up (the last time, and why):\n%s\n", strings.Join(lines, "\n"))
	return err
}

func boolString(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
