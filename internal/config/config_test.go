package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
)

const header = "apiVersion: config.strata.dev/v1alpha1\n"

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func defaultManager(lease string) configv1alpha1.ControllerManager {
	return configv1alpha1.ControllerManager{
		Health:  configv1alpha1.HealthConfiguration{BindAddress: ":8081"},
		Metrics: configv1alpha1.MetricsConfiguration{BindAddress: ":8080"},
		LeaderElection: configv1alpha1.LeaderElection{
			LeaderElect: ptr.To(true), ResourceName: lease, ResourceNamespace: "strata-system",
			LeaseDuration: dur(15 * time.Second), RenewDeadline: dur(10 * time.Second), RetryPeriod: dur(2 * time.Second),
		},
		ClientConnection: configv1alpha1.ClientConnection{QPS: ptr.To[float32](200), Burst: ptr.To[int32](400)},
	}
}

// TestLoadDefaults: a file with only the required fields is completed with
// the defaults, and what a file says is kept.
func TestLoadDefaults(t *testing.T) {
	typeMeta := func(kind string) metav1.TypeMeta {
		return metav1.TypeMeta{APIVersion: "config.strata.dev/v1alpha1", Kind: kind}
	}
	cases := []struct {
		name string
		file string
		into Object
		want Object
	}{{
		name: "hub",
		file: header + "kind: HubConfiguration\nbroker:\n  addresses: [dns:///strata-broker.strata-system.svc:9090]\n",
		into: &configv1alpha1.HubConfiguration{},
		want: &configv1alpha1.HubConfiguration{
			TypeMeta: typeMeta("HubConfiguration"), ControllerManager: defaultManager("strata-hub"),
			Broker:         configv1alpha1.BrokerClient{Addresses: []string{"dns:///strata-broker.strata-system.svc:9090"}, Timeout: dur(30 * time.Second)},
			Cluster:        configv1alpha1.ClusterController{ProbeInterval: dur(30 * time.Second)},
			Pool:           configv1alpha1.PoolController{BootstrapTokenTTL: dur(24 * time.Hour)},
			ClusterManager: configv1alpha1.ClusterManagerController{DrainDeadline: dur(10 * time.Minute)},
			Remediation: configv1alpha1.RemediationController{
				NotReadyThreshold: dur(2 * time.Minute), FaultHoldOff: dur(time.Minute), ResyncInterval: dur(30 * time.Second),
			},
			Rollout: configv1alpha1.RolloutController{ActiveInterval: dur(2 * time.Second)},
			WorkloadClusters: configv1alpha1.WorkloadClusters{
				RequestTimeout: dur(10 * time.Second), ConnectTimeout: dur(30 * time.Second), ProbeInterval: dur(10 * time.Second),
				ProbeFailureThreshold: ptr.To[int32](3), QPS: ptr.To[float32](200), Burst: ptr.To[int32](400),
			},
			Jobs: configv1alpha1.JobsController{Dispatcher: configv1alpha1.StrataDispatcher},
		},
	}, {
		name: "apps, with what the file says kept",
		file: header + "kind: AppsConfiguration\nclusterName: wc1\nleaderElection:\n  leaderElect: false\n  leaseDuration: 30s\nclientConnection:\n  qps: 50\nhealth:\n  bindAddress: 127.0.0.1:0\n",
		into: &configv1alpha1.AppsConfiguration{},
		want: func() *configv1alpha1.AppsConfiguration {
			m := defaultManager("strata-apps")
			m.LeaderElection.LeaderElect = ptr.To(false)
			m.LeaderElection.LeaseDuration = dur(30 * time.Second)
			m.ClientConnection.QPS = ptr.To[float32](50)
			m.Health.BindAddress = "127.0.0.1:0"
			return &configv1alpha1.AppsConfiguration{TypeMeta: typeMeta("AppsConfiguration"), ControllerManager: m, ClusterName: "wc1"}
		}(),
	}, {
		name: "webhook",
		file: header + "kind: WebhookConfiguration\nclusterName: hub\n",
		into: &configv1alpha1.WebhookConfiguration{},
		want: &configv1alpha1.WebhookConfiguration{
			TypeMeta: typeMeta("WebhookConfiguration"), ClusterName: "hub", Port: ptr.To[int32](9443), CertDir: "/etc/strata/webhook-certs",
			Health: configv1alpha1.HealthConfiguration{BindAddress: ":8081"}, Metrics: configv1alpha1.MetricsConfiguration{BindAddress: ":8080"},
			ClientConnection: configv1alpha1.ClientConnection{QPS: ptr.To[float32](200), Burst: ptr.To[int32](400)},
		},
	}, {
		name: "broker",
		file: header + "kind: BrokerConfiguration\ndatabase:\n  dsnFile: /etc/strata/db/dsn\n",
		into: &configv1alpha1.BrokerConfiguration{},
		want: &configv1alpha1.BrokerConfiguration{
			TypeMeta: typeMeta("BrokerConfiguration"), Database: configv1alpha1.Database{DSNFile: "/etc/strata/db/dsn"},
			Listen: "127.0.0.1:7443", MetricsListen: "127.0.0.1:9443",
			Budget: configv1alpha1.Budget{MaxPlannedZones: ptr.To[int32](1), MaxPoolDisruptedPercent: ptr.To[int32](10)},
			Provisioner: configv1alpha1.Provisioner{Kind: configv1alpha1.ProvisionerSim, Sim: &configv1alpha1.SimProvisioner{
				JoinDuration: dur(2 * time.Second), WipeDuration: dur(5 * time.Second), MaintenanceDuration: dur(3 * time.Second),
			}},
			LeaderElection: configv1alpha1.BrokerLeaderElection{LeaderElect: ptr.To(true), RetryPeriod: dur(2 * time.Second)},
		},
	}, {
		name: "broker of a local datacenter: faults file and known clusters",
		file: header + "kind: BrokerConfiguration\ndatabase:\n  dsn: /home/broker.db\nprovisioner:\n  sim:\n    faultsFile: /home/sim-faults.json\n" +
			"    clusters:\n    - name: workload-1\n      kubeconfig: /home/workload-1.kubeconfig\n      kubeletPort: 10250\n",
		into: &configv1alpha1.BrokerConfiguration{},
		want: &configv1alpha1.BrokerConfiguration{
			TypeMeta: typeMeta("BrokerConfiguration"), Database: configv1alpha1.Database{DSN: "/home/broker.db"},
			Listen: "127.0.0.1:7443", MetricsListen: "127.0.0.1:9443",
			Budget: configv1alpha1.Budget{MaxPlannedZones: ptr.To[int32](1), MaxPoolDisruptedPercent: ptr.To[int32](10)},
			Provisioner: configv1alpha1.Provisioner{Kind: configv1alpha1.ProvisionerSim, Sim: &configv1alpha1.SimProvisioner{
				JoinDuration: dur(2 * time.Second), WipeDuration: dur(5 * time.Second), MaintenanceDuration: dur(3 * time.Second),
				FaultsFile: "/home/sim-faults.json",
				Clusters:   []configv1alpha1.SimCluster{{Name: "workload-1", Kubeconfig: "/home/workload-1.kubeconfig", KubeletPort: 10250}},
			}},
			LeaderElection: configv1alpha1.BrokerLeaderElection{LeaderElect: ptr.To(true), RetryPeriod: dur(2 * time.Second)},
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := Load(writeFile(t, tc.file), tc.into); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, tc.into); diff != "" {
				t.Errorf("loaded configuration (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadRefused: a file with an unknown field, a value of the wrong type
// or an invalid value is refused, and the error names the field.
func TestLoadRefused(t *testing.T) {
	const hub = header + "kind: HubConfiguration\nbroker:\n  addresses: [localhost:7443]\n"
	cases := []struct {
		name string
		file string
		// wantErr: every string is in the error.
		wantErr []string
	}{
		{name: "unknown field", file: hub + "leaderElection:\n  leaseDurtion: 15s\n",
			wantErr: []string{`unknown field "leaderElection.leaseDurtion"`}},
		{name: "unknown top-level field", file: hub + "replicas: 2\n", wantErr: []string{`unknown field "replicas"`}},
		{name: "wrong type", file: hub + "clientConnection:\n  qps: fast\n", wantErr: []string{"clientConnection.qps", "cannot unmarshal string"}},
		{name: "a duration that does not parse", file: hub + "rollout:\n  activeInterval: 2 seconds\n",
			wantErr: []string{"rollout.activeInterval", `unknown unit " seconds"`}},
		{name: "a duration that does not parse, beside good ones", file: hub + "remediation:\n  faultHoldOff: 1m\nclusterManager:\n  drainDeadline: soon\n",
			wantErr: []string{"clusterManager.drainDeadline", "invalid duration"}},
		{name: "no broker", file: header + "kind: HubConfiguration\n",
			wantErr: []string{"broker.addresses: Required value"}},
		{name: "negative duration", file: hub + "remediation:\n  faultHoldOff: -1s\n",
			wantErr: []string{`remediation.faultHoldOff: Invalid value: "-1s": must be positive`}},
		{name: "a bootstrap token too short-lived to join with", file: hub + "pool:\n  bootstrapTokenTTL: 1m\n",
			wantErr: []string{`pool.bootstrapTokenTTL: Invalid value: "1m0s": must be at least 10m0s`}},
		{name: "renew deadline past the lease", file: hub + "leaderElection:\n  renewDeadline: 20s\n",
			wantErr: []string{`leaderElection.renewDeadline: Invalid value: "20s": must be less than leaseDuration 15s`}},
		{name: "retry past renew", file: hub + "leaderElection:\n  retryPeriod: 10s\n",
			wantErr: []string{`leaderElection.retryPeriod: Invalid value: "10s": must be less than renewDeadline 10s`}},
		{name: "bad lease name", file: hub + "leaderElection:\n  resourceName: Strata_Hub\n",
			wantErr: []string{`leaderElection.resourceName: Invalid value: "Strata_Hub"`}},
		{name: "bad bind address", file: hub + "health:\n  bindAddress: \"8081\"\n",
			wantErr: []string{`health.bindAddress: Invalid value: "8081": must be host:port`}},
		{name: "zero qps", file: hub + "clientConnection:\n  qps: 0\n",
			wantErr: []string{`clientConnection.qps: Invalid value: 0: must be positive`}},
		{name: "unknown dispatcher", file: hub + "jobs:\n  dispatcher: RoundRobin\n",
			wantErr: []string{`jobs.dispatcher: Unsupported value: "RoundRobin": supported values: "Strata", "KueueAllAtOnce", "KueueIncremental"`}},
		{name: "two errors at once", file: hub + "clientConnection:\n  burst: 0\nrollout:\n  activeInterval: 0s\n",
			wantErr: []string{"clientConnection.burst: Invalid value: 0", "rollout.activeInterval: Invalid value: \"0s\""}},
		{name: "another kind", file: header + "kind: AppsConfiguration\nclusterName: wc1\n",
			wantErr: []string{"the file holds config.strata.dev/v1alpha1, Kind=AppsConfiguration, want config.strata.dev/v1alpha1, Kind=HubConfiguration"}},
		{name: "another version", file: "apiVersion: config.strata.dev/v1\nkind: HubConfiguration\n",
			wantErr: []string{`no kind "HubConfiguration" is registered for version "config.strata.dev/v1"`}},
		{name: "no kind", file: "broker:\n  addresses: [localhost:7443]\n",
			wantErr: []string{"apiVersion and kind are required: apiVersion: config.strata.dev/v1alpha1, kind: HubConfiguration"}},
		{name: "not YAML", file: "{", wantErr: []string{"yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.file)
			err := Load(path, &configv1alpha1.HubConfiguration{})
			if err == nil {
				t.Fatalf("Load(%q) = nil, want an error", tc.file)
			}
			for _, want := range append(tc.wantErr, path) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Load = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

// TestValidate covers the rules of the other kinds, field by field.
func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Object
		want []string
	}{
		{name: "apps without a cluster", cfg: &configv1alpha1.AppsConfiguration{}, want: []string{"clusterName: Required value: the cluster's name, as registered on the hub"}},
		{name: "apps with a bad cluster name", cfg: &configv1alpha1.AppsConfiguration{ClusterName: "WC 1"}, want: []string{`clusterName: Invalid value: "WC 1"`}},
		{name: "webhook port", cfg: &configv1alpha1.WebhookConfiguration{ClusterName: "hub", Port: ptr.To[int32](70000)},
			want: []string{"port: Invalid value: 70000: must be a port, 1 to 65535"}},
		{name: "webhook configuration name", cfg: &configv1alpha1.WebhookConfiguration{ClusterName: "hub", ValidatingWebhookConfigurations: []string{"ok", "Not OK"}},
			want: []string{`validatingWebhookConfigurations[1]: Invalid value: "Not OK"`}},
		{name: "broker without database", cfg: &configv1alpha1.BrokerConfiguration{}, want: []string{"database: Required value"}},
		{name: "broker with both", cfg: &configv1alpha1.BrokerConfiguration{Database: configv1alpha1.Database{DSN: "a", DSNFile: "b"}},
			want: []string{"database.dsnFile: Forbidden: give dsn or dsnFile, not both"}},
		{name: "broker budget", cfg: &configv1alpha1.BrokerConfiguration{Database: configv1alpha1.Database{DSN: "a"},
			Budget: configv1alpha1.Budget{MaxPoolDisruptedPercent: ptr.To[int32](0)}},
			want: []string{"budget.maxPoolDisruptedPercent: Invalid value: 0: must be within 1..100"}},
		{name: "broker provisioner", cfg: &configv1alpha1.BrokerConfiguration{Database: configv1alpha1.Database{DSN: "a"},
			Provisioner: configv1alpha1.Provisioner{Kind: "ironic"}},
			want: []string{`provisioner.kind: Unsupported value: "ironic": supported values: "sim", "none"`}},
		{name: "sim settings without sim", cfg: &configv1alpha1.BrokerConfiguration{Database: configv1alpha1.Database{DSN: "a"},
			Provisioner: configv1alpha1.Provisioner{Kind: "none", Sim: &configv1alpha1.SimProvisioner{}}},
			want: []string{"provisioner.sim: Forbidden: applies to kind sim, not none"}},
		{name: "sim durations", cfg: &configv1alpha1.BrokerConfiguration{Database: configv1alpha1.Database{DSN: "a"},
			Provisioner: configv1alpha1.Provisioner{Sim: &configv1alpha1.SimProvisioner{JoinDuration: dur(0), MaintenanceDuration: dur(-time.Second)}}},
			want: []string{`provisioner.sim.joinDuration: Invalid value: "0s": must be positive`, `provisioner.sim.maintenanceDuration: Invalid value: "-1s": must not be negative`}},
		{name: "sim clusters", cfg: &configv1alpha1.BrokerConfiguration{Database: configv1alpha1.Database{DSN: "a"},
			Provisioner: configv1alpha1.Provisioner{Sim: &configv1alpha1.SimProvisioner{Clusters: []configv1alpha1.SimCluster{
				{Name: "workload-1", Kubeconfig: "/k1", KubeletPort: 10250},
				{Name: "workload-1", Kubeconfig: "/k2"},
				{Name: "", KubeletPort: 70000},
			}}}},
			want: []string{
				`provisioner.sim.clusters[1].name: Duplicate value: "workload-1"`,
				"provisioner.sim.clusters[2].name: Required value",
				"provisioner.sim.clusters[2].kubeconfig: Required value: the path of the cluster's kubeconfig",
				"provisioner.sim.clusters[2].kubeletPort: Invalid value: 70000: must be a port",
			}},
		{name: "broker TLS half", cfg: &configv1alpha1.BrokerConfiguration{Database: configv1alpha1.Database{DSN: "a"}, TLS: configv1alpha1.TLS{CertFile: "c"}},
			want: []string{"tls: Required value: certFile and keyFile go together"}},
		{name: "broker metrics off", cfg: &configv1alpha1.BrokerConfiguration{Database: configv1alpha1.Database{DSN: "a"}, MetricsListen: "0"}},
		{name: "broker client CA without TLS", cfg: &configv1alpha1.BrokerConfiguration{Database: configv1alpha1.Database{DSN: "a"}, TLS: configv1alpha1.TLS{ClientCAFile: "ca"}},
			want: []string{"tls.certFile: Required value: tls.clientCAFile needs a serving certificate"}},
		{name: "broker token in plaintext beyond loopback", cfg: &configv1alpha1.BrokerConfiguration{Database: configv1alpha1.Database{DSN: "a"}, Listen: "10.0.0.7:7443", TokenFile: "/t"},
			want: []string{`tokenFile: Invalid value: "/t": a bearer token over plaintext to non-loopback address 10.0.0.7:7443`}},
		{name: "broker token and insecure", cfg: &configv1alpha1.BrokerConfiguration{Database: configv1alpha1.Database{DSN: "a"}, TokenFile: "/t", Insecure: true},
			want: []string{"insecure: Forbidden: not with tokenFile"}},
		{name: "broker token on loopback", cfg: &configv1alpha1.BrokerConfiguration{Database: configv1alpha1.Database{DSN: "a"}, TokenFile: "/t"}},
		{name: "hub token in plaintext beyond loopback", cfg: &configv1alpha1.HubConfiguration{Broker: configv1alpha1.BrokerClient{
			Addresses: []string{"127.0.0.1:7443", "dns:///strata-broker:9090"}, TokenFile: "/t"}},
			want: []string{`broker.addresses[1]: Invalid value: "dns:///strata-broker:9090": is not a loopback address, and a bearer token (tokenFile) sent there in plaintext`}},
		{name: "hub client certificates without CA", cfg: &configv1alpha1.HubConfiguration{Broker: configv1alpha1.BrokerClient{
			Addresses: []string{"b:1"}, ClientCertDir: "/certs"}},
			want: []string{"broker.tlsCAFile: Required value: clientCertDir needs it"}},
		{name: "aggregator without database", cfg: &configv1alpha1.AggregatorConfiguration{}, want: []string{"database: Required value"}},
		{name: "aggregator", cfg: &configv1alpha1.AggregatorConfiguration{Database: configv1alpha1.Database{DSN: "/fleet.db"},
			Broker:           &configv1alpha1.BrokerClient{Addresses: []string{"b:1"}, ClientCertDir: "/certs"},
			WorkloadClusters: configv1alpha1.AggregatorClusters{KubeconfigSecretSuffix: "_Reader", QPS: ptr.To[float32](0)}, FlushInterval: dur(0)},
			want: []string{
				"broker.tlsCAFile: Required value: clientCertDir needs it",
				`flushInterval: Invalid value: "0s": must be positive`,
				`workloadClusters.kubeconfigSecretSuffix: Invalid value: "_Reader": a cluster's name with it must be a Secret's name`,
				"workloadClusters.qps: Invalid value: 0",
			}},
		{name: "console on loopback", cfg: &configv1alpha1.ConsoleConfiguration{Database: configv1alpha1.Database{DSN: "/fleet.db"}}},
		{name: "console beyond loopback without TLS", cfg: &configv1alpha1.ConsoleConfiguration{Database: configv1alpha1.Database{DSN: "/fleet.db"}, Listen: ":8443"},
			want: []string{"tls.certFile: Required value: listen :8443 is not a loopback address"}},
		{name: "console with client CA", cfg: &configv1alpha1.ConsoleConfiguration{Database: configv1alpha1.Database{DSNFile: "/dsn"}, Listen: "0.0.0.0:8443",
			TLS: configv1alpha1.TLS{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}},
			want: []string{"tls.clientCAFile: Forbidden: the console signs people in with bearer tokens"}},
		{name: "policy defaults", cfg: &configv1alpha1.BrokerPolicy{}},
		{name: "policy roles", cfg: &configv1alpha1.BrokerPolicy{Roles: []configv1alpha1.BrokerRole{
			{Name: "viewer", RPCs: []string{"ListPools"}},
			{Name: "", RPCs: []string{"list pools", "strata.sim.v1.SimService/FailZone", "*"}},
			{Name: "drainer", DisruptionReasons: []string{"pool-shrink"}},
			{Name: "drainer", RPCs: []string{"ListPools"}},
		}, Bindings: []configv1alpha1.BrokerRoleBinding{{Role: "drainer"}}},
			want: []string{
				`roles[0].name: Invalid value: "viewer": is a built-in role`,
				"roles[1].name: Required value",
				`roles[1].rpcs[0]: Invalid value: "list pools": must be a BrokerService method`,
				"roles[2].rpcs: Required value",
				`roles[2].disruptionReasons[0]: Unsupported value: "pool-shrink"`,
				`roles[3].name: Duplicate value: "drainer"`,
				"bindings[0]: Required value: users or groups to give the role to",
			}},
		{name: "policy bindings", cfg: &configv1alpha1.BrokerPolicy{Bindings: []configv1alpha1.BrokerRoleBinding{
			{Role: "root", Users: []string{"alice"}}, {Groups: []string{""}},
		}},
			want: []string{
				`bindings[0].role: Invalid value: "root": is neither a built-in role`,
				"bindings[1].role: Required value",
				"bindings[1].groups[0]: Required value",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Default()
			var got []string
			for _, e := range tc.cfg.Validate() {
				got = append(got, e.Error())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Validate = %q, want %d errors: %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("error %d = %q, want it to start with %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
