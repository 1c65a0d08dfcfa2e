package serve

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/cluster"
	"github.com/strata-dev/strata/internal/cluster/manager"
	"github.com/strata-dev/strata/internal/cluster/pool"
	"github.com/strata-dev/strata/internal/cluster/remediation"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/cluster/rollout"
	"github.com/strata-dev/strata/internal/console/aggregator"
	"github.com/strata-dev/strata/internal/console/web"
	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/provision/sim"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
	simv1 "github.com/strata-dev/strata/proto/strata/sim/v1"
)

// TestConfigDefaultsAgree: the configuration kinds' defaults are the ones
// the components' packages apply to options left empty, so a component
// built from a defaulted configuration behaves as one built by hand.
func TestConfigDefaultsAgree(t *testing.T) {
	cases := []struct {
		name        string
		config, pkg any
	}{
		{"broker listen", configv1alpha1.DefaultBrokerListen, broker.DefaultAddress},
		{"max planned zones", int(configv1alpha1.DefaultMaxPlannedZones), broker.DefaultBudget.MaxPlannedZones},
		{"max pool disrupted percent", int(configv1alpha1.DefaultMaxPoolDisruptedPercent), broker.DefaultBudget.MaxPoolDisruptedPercent},
		{"sim join", configv1alpha1.DefaultSimJoinDuration, sim.DefaultJoinDuration},
		{"sim wipe", configv1alpha1.DefaultSimWipeDuration, sim.DefaultWipeDuration},
		{"sim maintenance", configv1alpha1.DefaultSimMaintenanceDuration, sim.DefaultMaintenanceDuration},
		{"broker leader retry period", configv1alpha1.DefaultBrokerLeaderRetryPeriod, broker.DefaultLeaderRetryPeriod},
		{"probe interval", configv1alpha1.DefaultProbeInterval, cluster.DefaultProbeInterval},
		{"bootstrap token TTL", configv1alpha1.DefaultBootstrapTokenTTL, pool.DefaultTokenTTL},
		{"drain deadline", configv1alpha1.DefaultDrainDeadline, manager.DefaultDrainDeadline},
		{"not ready threshold", configv1alpha1.DefaultNotReadyThreshold, remediation.DefaultNotReadyThreshold},
		{"fault hold-off", configv1alpha1.DefaultFaultHoldOff, remediation.DefaultFaultHoldOff},
		{"remediation resync", configv1alpha1.DefaultRemediationResync, remediation.DefaultResyncInterval},
		{"rollout active interval", configv1alpha1.DefaultActiveInterval, rollout.DefaultActiveInterval},
		{"workload cluster request timeout", configv1alpha1.DefaultClusterRequestTimeout, remote.DefaultRequestTimeout},
		{"workload cluster connect timeout", configv1alpha1.DefaultClusterConnectTimeout, remote.DefaultConnectTimeout},
		{"workload cluster probe interval", configv1alpha1.DefaultClusterProbeInterval, remote.DefaultProbeInterval},
		{"workload cluster probe failures", int(configv1alpha1.DefaultClusterProbeFailureThreshold), remote.DefaultProbeFailureThreshold},
		{"workload cluster qps", configv1alpha1.DefaultQPS, float32(remote.DefaultQPS)},
		{"workload cluster burst", int(configv1alpha1.DefaultBurst), remote.DefaultBurst},
		{"aggregator flush interval", configv1alpha1.DefaultAggregatorFlushInterval, aggregator.DefaultFlushInterval},
		{"aggregator request timeout", configv1alpha1.DefaultAggregatorRequestTimeout, aggregator.DefaultRequestTimeout},
		{"aggregator qps", configv1alpha1.DefaultAggregatorQPS, float32(aggregator.DefaultQPS)},
		{"aggregator burst", int(configv1alpha1.DefaultAggregatorBurst), aggregator.DefaultBurst},
		{"console listen", configv1alpha1.DefaultConsoleListen, web.DefaultAddress},
		{"console poll interval", configv1alpha1.DefaultConsolePollInterval, web.DefaultPollInterval},
	}
	for _, tc := range cases {
		if tc.config != tc.pkg {
			t.Errorf("%s: the configuration's default is %v, the package's %v", tc.name, tc.config, tc.pkg)
		}
	}
}

// TestServeBrokerConfig runs `strata serve broker --config`: the file's
// settings are used (the DSN from a file, the provisioner), a flag given
// on the command line overrides the file, and a bad file is refused with
// the field named.
func TestServeBrokerConfig(t *testing.T) {
	cases := []struct {
		name string
		file string
		args []string
		// wantProvisioner: the broker performs operations.
		wantProvisioner bool
		// wantFaultsFile: it serves strata.sim.v1, and a fault lands in
		// DIR/faults.json.
		wantFaultsFile bool
		wantErr        string
	}{
		{name: "provisioner none from the file", file: "provisioner:\n  kind: none\n"},
		{name: "sim from the file", file: "provisioner:\n  kind: sim\n  sim: {joinDuration: 1s}\n", wantProvisioner: true},
		{name: "a flag overrides the file", file: "provisioner:\n  kind: none\n", args: []string{"--provisioner=sim"}, wantProvisioner: true},
		{name: "an unknown field", file: "provisioner:\n  knid: none\n", wantErr: `unknown field "provisioner.knid"`},
		{name: "a wrong type", file: "budget:\n  maxPlannedZones: one\n", wantErr: "budget.maxPlannedZones"},
		{name: "an invalid value", file: "budget:\n  maxPoolDisruptedPercent: 101\n",
			wantErr: "budget.maxPoolDisruptedPercent: Invalid value: 101: must be within 1..100"},
		{name: "an unknown provisioner", file: "provisioner:\n  kind: ironic\n", wantErr: `provisioner.kind: Unsupported value: "ironic"`},
		{name: "sim faults kept in the file's faultsFile", file: "provisioner:\n  sim:\n    faultsFile: DIR/faults.json\n",
			wantProvisioner: true, wantFaultsFile: true},
		{name: "a sim cluster whose kubeconfig is missing", file: "provisioner:\n  sim:\n    clusters:\n    - {name: workload-1, kubeconfig: DIR/missing}\n",
			wantErr: "reading the kubeconfig of sim cluster workload-1 (provisioner.sim.clusters)"},
		{name: "a sim cluster without a kubeconfig", file: "provisioner:\n  sim:\n    clusters:\n    - {name: workload-1}\n",
			wantErr: "provisioner.sim.clusters[0].kubeconfig: Required value"},
		{name: "--db beside the file's dsnFile", file: "", args: []string{"--db", "x.db"}, wantErr: "--db and --db-file go alone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dsnFile := filepath.Join(dir, "dsn")
			if err := os.WriteFile(dsnFile, []byte(filepath.Join(dir, "inventory.db")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "broker.yaml")
			file := "apiVersion: config.strata.dev/v1alpha1\nkind: BrokerConfiguration\ndatabase:\n  dsnFile: " + dsnFile +
				"\nlisten: 127.0.0.1:0\nmetricsListen: \"0\"\n" + strings.ReplaceAll(tc.file, "DIR", dir)
			if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
				t.Fatal(err)
			}
			b := runBroker(t, append([]string{"--config", path, "--seed-simulated", strconv.Itoa(seeded)}, tc.args...)...)
			if tc.wantErr != "" {
				if err := b.wait(t); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("strata serve broker --config = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			conn, err := grpc.NewClient(b.address(t), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close() //nolint:errcheck // test connection
			c := brokerv1.NewBrokerServiceClient(conn)
			machines, err := c.ListMachines(t.Context(), &brokerv1.ListMachinesRequest{PageSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(machines.GetMachines()); n != seeded {
				t.Fatalf("the broker serves %d machines, want the %d seeded into the database the DSN file names", n, seeded)
			}
			_, err = c.CreateDisruption(t.Context(), &brokerv1.CreateDisruptionRequest{
				Machine: machines.GetMachines()[0].GetId(), Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR,
				OnBehalfOf: "test", Operation: &brokerv1.Operation{Kind: brokerv1.OperationKind_OPERATION_KIND_REBOOT},
			})
			switch {
			case tc.wantProvisioner && err != nil:
				t.Errorf("a reboot disruption: %v, want it taken (a provisioner runs)", err)
			case !tc.wantProvisioner && status.Code(err) != codes.FailedPrecondition:
				t.Errorf("a reboot disruption: %v, want FailedPrecondition: no provisioner", err)
			}
			if tc.wantFaultsFile {
				id := machines.GetMachines()[1].GetId()
				if _, err := simv1.NewSimServiceClient(conn).FailMachines(t.Context(), &simv1.FailMachinesRequest{
					Machines: []string{id}, FixedBy: simv1.FaultFix_FAULT_FIX_NEVER,
				}); err != nil {
					t.Fatalf("faulting a machine through strata.sim.v1: %v", err)
				}
				raw, err := os.ReadFile(filepath.Join(dir, "faults.json"))
				if err != nil || !strings.Contains(string(raw), id) {
					t.Errorf("the faults file after a fault: %q, %v; want it to name %s", raw, err, id)
				}
			}
		})
	}
}
