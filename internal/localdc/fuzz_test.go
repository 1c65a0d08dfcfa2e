package localdc

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// FuzzLoadDatacenter feeds a home's datacenter file arbitrary bytes.
// Properties: a file that loads names distinct clusters, each a DNS label
// (each is a directory of the home), the hub first; gives every port to
// one component only; and saves to a file that loads to the same.
func FuzzLoadDatacenter(f *testing.F) {
	dc := &Datacenter{Kind: stateKind, KubernetesVersion: "v1.37.1", BrokerPort: 1, BrokerMetricsPort: 2,
		Clusters: []ClusterInfo{
			{Name: HubName, Ports: Ports{KubeAPIServer: 10, Etcd: 11, EtcdPeer: 12, KubeControllerManager: 13, KubeScheduler: 14, KwokController: 15}},
			{Name: WorkloadClusterName(1), Ports: Ports{KubeAPIServer: 20, Etcd: 21, EtcdPeer: 22, KubeControllerManager: 23, KubeScheduler: 24, KwokController: 25}},
		},
		Processes: map[string]ProcessPorts{"hub-1": {Health: 30, Metrics: 31}, "broker-2": {Metrics: 32, GRPC: 33}},
		Replicas:  2, BrokerReplicas: 2,
	}
	raw, err := yaml.Marshal(dc)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte("kind: LocalDatacenter\nkubernetesVersion: v1\nclusters: [{name: hub}, {name: w}]\nbrokerPort: 1\nbrokerMetricsPort: 1\n"))
	for _, name := range []string{"../../etc", HubName} { // a path out of the home; the hub twice
		bad := *dc
		bad.Clusters = append(slices.Clone(dc.Clusters), ClusterInfo{Name: name, Ports: Ports{KubeAPIServer: 40, Etcd: 41, EtcdPeer: 42, KubeControllerManager: 43, KubeScheduler: 44, KwokController: 45}})
		raw, err := yaml.Marshal(&bad)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("kind: LocalDatacenter\nunknown: 1\n"))
	f.Add([]byte("{"))
	// One home and one copy per fuzzing process, written over at each input:
	// a temporary directory per input would take most of the time.
	home, again := f.TempDir(), f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := os.WriteFile(filepath.Join(home, stateFile), raw, 0o600); err != nil {
			t.Fatal(err)
		}
		dc, err := loadDatacenter(home)
		if err != nil {
			return
		}
		names := map[string]bool{}
		for i, c := range dc.Clusters {
			if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
				t.Fatalf("cluster %d: name %q is not a DNS label: %v", i, c.Name, errs)
			}
			if names[c.Name] {
				t.Fatalf("cluster %q is listed twice", c.Name)
			}
			names[c.Name] = true
		}
		owners := map[uint32]string{}
		own := func(port uint32, who string) {
			if port == 0 {
				return
			}
			if other, ok := owners[port]; ok {
				t.Fatalf("port %d is both %s's and %s's", port, other, who)
			}
			owners[port] = who
		}
		own(dc.BrokerPort, "broker")
		own(dc.BrokerMetricsPort, "broker metrics")
		own(dc.WebhookPort, "webhook")
		for name, p := range dc.Processes {
			for _, cp := range p.byComponent(name) {
				own(cp.port, cp.component)
			}
		}
		for _, c := range dc.Clusters {
			for _, cp := range c.Ports.byComponent() {
				own(cp.port, c.Name+"/"+cp.component)
			}
		}
		if err := dc.save(again); err != nil {
			t.Fatalf("saving a datacenter that loaded: %v", err)
		}
		back, err := loadDatacenter(again)
		if err != nil {
			t.Fatalf("a saved datacenter does not load: %v", err)
		}
		if diff := cmp.Diff(dc, back); diff != "" {
			t.Fatalf("saved and loaded again differs (-loaded +again):\n%s", diff)
		}
	})
}
