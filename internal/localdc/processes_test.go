package localdc

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/config"
)

func processNamesOf(procs []ComponentProcess) []string {
	var out []string
	for _, p := range procs {
		out = append(out, p.Name)
	}
	return out
}

// TestPlanProcesses: each process gets its ports once; a start with more
// replicas adds processes and keeps the ports of the others; a home made
// before processes gets them at its next start; the first broker keeps the
// ports the home had when the broker ran inside `strata up`.
func TestPlanProcesses(t *testing.T) {
	home := t.TempDir()
	dc, err := newDatacenter("v1.37.1", 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.save(home); err != nil {
		t.Fatal(err)
	}
	// A home of before: no processes.
	dc, err = loadDatacenter(home)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := dc.planProcesses(1, 1, false)
	if err != nil || !changed {
		t.Fatalf("planProcesses(1, 1) of a home without processes = %t, %v; want changed", changed, err)
	}
	want := []string{"broker-1", "hub-1", "aggregator-1", "console", "apps-workload-1-1", "apps-workload-2-1", "webhook-hub", "webhook-workload-1", "webhook-workload-2"}
	if diff := cmp.Diff(want, processNamesOf(dc.ComponentProcesses())); diff != "" {
		t.Errorf("processes (-want +got):\n%s", diff)
	}
	first := dc.Processes["hub-1"]
	if err := dc.save(home); err != nil {
		t.Fatal(err)
	}
	if changed, err := dc.planProcesses(1, 1, false); err != nil || changed {
		t.Errorf("planProcesses(1, 1) again = %t, %v; want nothing changed", changed, err)
	}
	if changed, err := dc.planProcesses(2, 2, false); err != nil || !changed {
		t.Fatalf("planProcesses(2, 2) = %t, %v; want changed", changed, err)
	}
	if err := dc.save(home); err != nil {
		t.Fatal(err)
	}
	dc, err = loadDatacenter(home)
	if err != nil {
		t.Fatalf("the datacenter with two replicas does not load: %v", err)
	}
	if got := dc.Processes["hub-1"]; got != first {
		t.Errorf("hub-1's ports changed from %+v to %+v", first, got)
	}
	procs := dc.ComponentProcesses()
	if len(procs) != 14 {
		t.Errorf("two replicas: %d processes, want 14: %v", len(procs), processNamesOf(procs))
	}
	for _, p := range procs {
		isBroker := p.Component == ComponentBroker
		if (p.Ports.Health == 0) != isBroker || (p.Ports.GRPC == 0) == isBroker || p.Ports.Metrics == 0 ||
			(p.Component == ComponentWebhook) != (p.Ports.Webhook != 0) || (p.Component == ComponentConsole) != (p.Ports.Console != 0) {
			t.Errorf("process %s has ports %+v", p.Name, p.Ports)
		}
	}
	wantBrokers := []string{loopback(dc.BrokerPort), loopback(dc.Processes["broker-2"].GRPC)}
	if diff := cmp.Diff(wantBrokers, dc.BrokerAddresses()); diff != "" {
		t.Errorf("broker addresses (-want +got):\n%s", diff)
	}
	if _, ok := dc.Processes["broker-1"]; ok {
		t.Errorf("broker-1 got ports of its own, %+v, beside the home's brokerPort", dc.Processes["broker-1"])
	}
	got, err := BrokerAddress(home)
	if want := loopback(dc.BrokerPort) + "," + loopback(dc.Processes["broker-2"].GRPC); err != nil || got != want {
		t.Errorf("BrokerAddress = %q, %v; want %q", got, err, want)
	}

	// With jobs, a Kueue per cluster, with a webhook port; without, none
	// runs, and its ports are kept for the next start with jobs.
	if changed, err := dc.planProcesses(2, 2, true); err != nil || !changed {
		t.Fatalf("planProcesses(2, 2, true) = %t, %v; want changed", changed, err)
	}
	var kueues []string
	for _, p := range dc.ComponentProcesses() {
		if p.Component != ComponentKueue {
			continue
		}
		kueues = append(kueues, p.Name)
		if p.Ports.Health == 0 || p.Ports.Metrics == 0 || p.Ports.Webhook == 0 || p.identity() != kueueIdentity(p.Cluster) {
			t.Errorf("process %s has ports %+v, identity %s", p.Name, p.Ports, p.identity())
		}
	}
	if diff := cmp.Diff([]string{"kueue-hub", "kueue-workload-1", "kueue-workload-2"}, kueues); diff != "" {
		t.Errorf("Kueue processes (-want +got):\n%s", diff)
	}
	if err := dc.validate(); err != nil {
		t.Errorf("the datacenter with Kueue does not validate: %v", err)
	}
	kueueHub := dc.Processes["kueue-hub"]
	if changed, err := dc.planProcesses(2, 2, false); err != nil || !changed {
		t.Fatalf("planProcesses(2, 2, false) = %t, %v; want changed", changed, err)
	}
	if len(dc.ComponentProcesses()) != 14 || dc.Processes["kueue-hub"] != kueueHub {
		t.Errorf("without jobs: processes %v, kueue-hub's ports %+v (were %+v)", processNamesOf(dc.ComponentProcesses()), dc.Processes["kueue-hub"], kueueHub)
	}
}

func TestValidateProcessPorts(t *testing.T) {
	dc, err := newDatacenter("v1.37.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	dc.Processes = map[string]ProcessPorts{"hub-1": {Health: dc.BrokerPort, Metrics: 1}}
	if err := dc.validate(); err == nil {
		t.Error("a process's port that is the broker's: no error")
	}
}

// TestProcessConfig: the files written for the processes load with the
// strict loader of `strata serve`, with leader election on, the local
// ports and the thresholds of `strata up`.
func TestProcessConfig(t *testing.T) {
	home := t.TempDir()
	dc, err := newDatacenter("v1.37.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.planProcesses(2, 2, false); err != nil {
		t.Fatal(err)
	}
	const dsn = "postgres://strata@127.0.0.1:5432/strata"
	r := &Running{Datacenter: dc, opts: Options{
		Home: home, Executable: "/bin/strata", NotReadyThreshold: 10 * time.Second, FaultHoldOff: 3 * time.Second, DB: dsn,
		JoinDuration: time.Second, BinDir: "/bin",
	}}
	for _, cp := range dc.ComponentProcesses() {
		p, err := r.writeProcessConfig(cp)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Component == ComponentKueue {
			// TestKueueConfig checks the file.
			want := Process{Name: cp.Name, Path: "/bin/kueue", Args: []string{"--config", cp.ConfigPath(home), "--kubeconfig", IdentityKubeconfigPath(home, kueueIdentity(cp.Cluster))},
				Env: []string{"KUEUE_METRICS_CERT_DIR=" + PKIPath(home, "kueue")}}
			if diff := cmp.Diff(want, p); diff != "" {
				t.Errorf("%s (-want +got):\n%s", cp.Name, diff)
			}
			continue
		}
		wantArgs := []string{"serve", cp.Component, "--config", cp.ConfigPath(home), "--kubeconfig", IdentityKubeconfigPath(home, cp.identity())}
		if cp.Component == ComponentBroker {
			wantArgs = wantArgs[:4] // it reaches no cluster as a ServiceAccount
		}
		if diff := cmp.Diff(wantArgs, p.Args); diff != "" {
			t.Errorf("%s: args (-want +got):\n%s", cp.Name, diff)
		}
		if _, err := os.Stat(cp.ConfigPath(home)); err != nil {
			t.Fatal(err)
		}
		switch cp.Component {
		case ComponentBroker:
			c := &configv1alpha1.BrokerConfiguration{}
			if err := config.Load(cp.ConfigPath(home), c); err != nil {
				t.Fatalf("%s: %v", cp.Name, err)
			}
			wc := dc.WorkloadClusters()[0]
			got := []any{c.Database.DSN, c.Listen, c.MetricsListen, c.Provisioner.Kind, c.Provisioner.Sim.JoinDuration.Duration,
				c.Provisioner.Sim.MaintenanceDuration.Duration, c.Provisioner.Sim.FaultsFile, c.Provisioner.Sim.Clusters}
			want := []any{dsn, loopback(cp.Ports.GRPC), loopback(cp.Ports.Metrics), configv1alpha1.ProvisionerSim, time.Second,
				time.Duration(0), filepath.Join(home, FaultsFile), []configv1alpha1.SimCluster{{
					Name: wc.Name, Kubeconfig: KubeconfigPath(home, wc.Name), KubeletPort: int32(wc.Ports.KwokController), //nolint:gosec // a TCP port
				}}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", cp.Name, diff)
			}
		case ComponentHub:
			c := &configv1alpha1.HubConfiguration{}
			if err := config.Load(cp.ConfigPath(home), c); err != nil {
				t.Fatalf("%s: %v", cp.Name, err)
			}
			got := []any{*c.LeaderElection.LeaderElect, c.LeaderElection.ResourceName, c.Health.BindAddress, c.Metrics.BindAddress,
				c.Broker.Addresses, c.Remediation.NotReadyThreshold.Duration, c.Remediation.FaultHoldOff.Duration}
			want := []any{true, "strata-hub", loopback(cp.Ports.Health), loopback(cp.Ports.Metrics),
				dc.BrokerAddresses(), 10 * time.Second, 3 * time.Second}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", cp.Name, diff)
			}
		case ComponentApps:
			c := &configv1alpha1.AppsConfiguration{}
			if err := config.Load(cp.ConfigPath(home), c); err != nil {
				t.Fatalf("%s: %v", cp.Name, err)
			}
			if !*c.LeaderElection.LeaderElect || c.LeaderElection.ResourceName != "strata-apps" || c.ClusterName != cp.Cluster {
				t.Errorf("%s: %+v", cp.Name, c)
			}
		case ComponentWebhook:
			c := &configv1alpha1.WebhookConfiguration{}
			if err := config.Load(cp.ConfigPath(home), c); err != nil {
				t.Fatalf("%s: %v", cp.Name, err)
			}
			if *c.Port != int32(cp.Ports.Webhook) || c.CertDir != filepath.Join(home, webhookDir) || c.ClusterName != cp.Cluster { //nolint:gosec // a TCP port
				t.Errorf("%s: %+v", cp.Name, c)
			}
		}
	}
}

func TestLeaderGauge(t *testing.T) {
	cases := map[string]struct {
		metrics string
		gauge   string
		want    bool
		wantErr bool
	}{
		"leads":          {metrics: "# HELP strata_leader x\n# TYPE strata_leader gauge\nstrata_leader{component=\"hub\"} 1\n", want: true},
		"stands by":      {metrics: "strata_leader_other 1\nstrata_leader{component=\"apps\"} 0\n"},
		"no gauge":       {metrics: "controller_runtime_x 1\n", wantErr: true},
		"a broker":       {metrics: "strata_broker_leader 1\n", gauge: "strata_broker_leader", want: true},
		"not a broker's": {metrics: "strata_leader 1\n", gauge: "strata_broker_leader", wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			gauge := tc.gauge
			if gauge == "" {
				gauge = "strata_leader"
			}
			got, err := leaderGauge(tc.metrics, gauge)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("leaderGauge = %t, %v; want %t, error %t", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
