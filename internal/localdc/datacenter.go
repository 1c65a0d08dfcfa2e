// Package localdc is the local datacenter behind `strata up`: a hub cluster and
// workload clusters, each a real Kubernetes control plane with kwok playing
// the kubelets, and the wiring of Strata's components against them.
package localdc

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// HubName is the name of the hub cluster.
const HubName = "hub"

// stateFile is the file under the home that says what datacenter lives there.
const stateFile = "datacenter.yaml"

// stateKind marks a state file as Strata's, so `strata down` never removes a
// directory that is not a strata home.
const stateKind = "LocalDatacenter"

// Datacenter is what a strata home holds: which clusters, which Kubernetes
// version, which ports. It is written once, when the datacenter is created.
type Datacenter struct {
	Kind string `json:"kind"`
	// KubernetesVersion is the version of the binaries that created it.
	KubernetesVersion string `json:"kubernetesVersion"`
	// Clusters are the hub first, then the workload clusters.
	Clusters []ClusterInfo `json:"clusters"`
	// BrokerPort and BrokerMetricsPort are the loopback ports of the first
	// Compute Broker process (broker-1): its gRPC API, and its metrics and
	// probes. The other replicas' are in Processes.
	BrokerPort        uint32 `json:"brokerPort"`
	BrokerMetricsPort uint32 `json:"brokerMetricsPort"`
	// WebhookPort is the loopback HTTPS port of the guardrails' admission
	// webhook of homes made when one webhook served every cluster; each
	// cluster's webhook now has its own, in Processes. Kept so those homes
	// load.
	WebhookPort uint32 `json:"webhookPort,omitempty"`
	// Processes are the loopback ports of Strata's component processes, by
	// process name ("hub-1", "apps-workload-1-1", "webhook-hub"). A process
	// gets its ports at the first start that runs it (homes made before,
	// or a larger --replicas), and keeps them.
	Processes map[string]ProcessPorts `json:"processes,omitempty"`
	// Replicas is how many processes of hub, and of each cluster's apps,
	// the last start runs; zero means one.
	Replicas int `json:"replicas,omitempty"`
	// BrokerReplicas is how many broker processes the last start runs:
	// Replicas over PostgreSQL, one over SQLite (single-replica); zero
	// means one.
	BrokerReplicas int `json:"brokerReplicas,omitempty"`
	// Jobs says whether the last start ran Kueue (a kueue-<cluster>
	// process per cluster), the batch system of the jobs platform.
	Jobs bool `json:"jobs,omitempty"`
}

// ProcessPorts are the loopback ports of one component process.
type ProcessPorts struct {
	// Health serves /healthz and /readyz, Metrics serves /metrics. A
	// broker serves all three on Metrics, and has no Health.
	Health  uint32 `json:"health,omitempty"`
	Metrics uint32 `json:"metrics"`
	// GRPC is the gRPC API of a broker process.
	GRPC uint32 `json:"grpc,omitempty"`
	// Webhook is the HTTPS port of a webhook process.
	Webhook uint32 `json:"webhook,omitempty"`
	// Console is the web port of the console process.
	Console uint32 `json:"console,omitempty"`
}

// ClusterInfo is one cluster of the local datacenter and the ports its
// components listen on (pinned at creation so clusters can be created at once
// and a port taken by another process is found before a restart).
type ClusterInfo struct {
	Name  string `json:"name"`
	Ports Ports  `json:"ports"`
}

// Ports are the loopback ports of one cluster's components.
type Ports struct {
	KubeAPIServer         uint32 `json:"kubeApiserver"`
	Etcd                  uint32 `json:"etcd"`
	EtcdPeer              uint32 `json:"etcdPeer"`
	KubeControllerManager uint32 `json:"kubeControllerManager"`
	KubeScheduler         uint32 `json:"kubeScheduler"`
	KwokController        uint32 `json:"kwokController"`
}

// BrokerAddress is the address of every broker replica of the home's
// datacenter, a comma-separated list (brokerclient.ParseAddresses): the
// client follows the replicas' gRPC health to the leader.
func BrokerAddress(home string) (string, error) {
	dc, err := loadDatacenter(home)
	if err != nil {
		return "", err
	}
	return strings.Join(dc.BrokerAddresses(), ","), nil
}

// ConsoleURL is the address of the home's fleet console (see
// Datacenter.ConsoleURL).
func ConsoleURL(home string) (string, error) {
	dc, err := loadDatacenter(home)
	if err != nil {
		return "", err
	}
	return dc.ConsoleURL(), nil
}

// BrokerAddresses are the gRPC addresses of the broker processes the last
// start planned.
func (d *Datacenter) BrokerAddresses() []string {
	var out []string
	for _, p := range d.ComponentProcesses() {
		if p.Component == ComponentBroker {
			out = append(out, loopback(p.Ports.GRPC))
		}
	}
	return out
}

// byComponent lists the ports with the component that owns each.
func (p Ports) byComponent() []componentPort {
	return []componentPort{
		{"kube-apiserver", p.KubeAPIServer},
		{"etcd", p.Etcd},
		{"etcd (peer)", p.EtcdPeer},
		{"kube-controller-manager", p.KubeControllerManager},
		{"kube-scheduler", p.KubeScheduler},
		{"kwok-controller", p.KwokController},
	}
}

// byComponent lists a process's ports, each named for a person.
func (p ProcessPorts) byComponent(process string) []componentPort {
	out := []componentPort{{process + " metrics", p.Metrics}}
	if p.Health != 0 {
		out = append(out, componentPort{process + " health", p.Health})
	}
	if p.GRPC != 0 {
		out = append(out, componentPort{process + " gRPC", p.GRPC})
	}
	if p.Webhook != 0 {
		out = append(out, componentPort{process + " webhook", p.Webhook})
	}
	if p.Console != 0 {
		out = append(out, componentPort{process + " web", p.Console})
	}
	return out
}

type componentPort struct {
	component string
	port      uint32
}

// WorkloadClusterName is the name of the i-th workload cluster, from 1.
func WorkloadClusterName(i int) string {
	return "workload-" + strconv.Itoa(i)
}

// WorkloadClusters returns the clusters other than the hub.
func (d *Datacenter) WorkloadClusters() []ClusterInfo {
	return d.Clusters[1:]
}

// newDatacenter plans a datacenter of a hub and n workload clusters, with
// free loopback ports for every component.
func newDatacenter(kubeVersion string, workloads int) (*Datacenter, error) {
	names := []string{HubName}
	for i := 1; i <= workloads; i++ {
		names = append(names, WorkloadClusterName(i))
	}
	perCluster := len(Ports{}.byComponent())
	ports, err := freePorts(len(names)*perCluster + 2)
	if err != nil {
		return nil, err
	}
	dc := &Datacenter{
		Kind: stateKind, KubernetesVersion: kubeVersion,
		BrokerPort: ports[len(ports)-2], BrokerMetricsPort: ports[len(ports)-1],
	}
	for i, name := range names {
		p := ports[i*6 : i*6+6]
		dc.Clusters = append(dc.Clusters, ClusterInfo{Name: name, Ports: Ports{
			KubeAPIServer: p[0], Etcd: p[1], EtcdPeer: p[2],
			KubeControllerManager: p[3], KubeScheduler: p[4], KwokController: p[5],
		}})
	}
	return dc, nil
}

// freePorts asks the kernel for n distinct free loopback ports. All listeners
// are held until every port is chosen so none is handed out twice.
func freePorts(n int) ([]uint32, error) {
	var ports []uint32
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free loopback port: %w", err)
		}
		defer l.Close() //nolint:errcheck // closing a probe listener
		ports = append(ports, uint32(l.Addr().(*net.TCPAddr).Port))
	}
	return ports, nil
}

// ErrNoDatacenter is returned when a home holds no datacenter.
var ErrNoDatacenter = errors.New("no local datacenter")

// loadDatacenter reads the datacenter of a home. It returns ErrNoDatacenter
// when there is none, and an error naming the problem when the file is broken.
func loadDatacenter(home string) (*Datacenter, error) {
	path := filepath.Join(home, stateFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrNoDatacenter, home)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	dc := &Datacenter{}
	if err := yaml.UnmarshalStrict(raw, dc); err != nil {
		return nil, fmt.Errorf("%s is not a strata datacenter file: %w", path, err)
	}
	if err := dc.validate(); err != nil {
		return nil, fmt.Errorf("%s is broken: %w", path, err)
	}
	return dc, nil
}

func (d *Datacenter) validate() error {
	if d.Kind != stateKind {
		return fmt.Errorf("kind is %q, want %q", d.Kind, stateKind)
	}
	if d.KubernetesVersion == "" {
		return errors.New("kubernetesVersion is empty")
	}
	if len(d.Clusters) < 2 || d.Clusters[0].Name != HubName {
		return errors.New("clusters must list the hub first and at least one workload cluster")
	}
	if d.BrokerPort == 0 || d.BrokerMetricsPort == 0 {
		return errors.New("brokerPort and brokerMetricsPort are required")
	}
	seen := map[uint32]string{d.BrokerPort: "broker", d.BrokerMetricsPort: "broker metrics"}
	if d.WebhookPort != 0 {
		if other, dup := seen[d.WebhookPort]; dup {
			return fmt.Errorf("port %d is given to both %s and the admission webhook", d.WebhookPort, other)
		}
		seen[d.WebhookPort] = "admission webhook"
	}
	for name, p := range d.Processes {
		for _, cp := range p.byComponent(name) {
			if other, dup := seen[cp.port]; dup && cp.port != 0 {
				return fmt.Errorf("port %d is given to both %s and %s", cp.port, other, cp.component)
			}
			seen[cp.port] = cp.component
		}
		if p.Metrics == 0 || (p.Health == 0 && p.GRPC == 0) {
			return fmt.Errorf("process %q has no health or metrics port", name)
		}
	}
	if d.Replicas < 0 {
		return fmt.Errorf("replicas is %d, want 1 or more", d.Replicas)
	}
	if d.BrokerReplicas < 0 {
		return fmt.Errorf("brokerReplicas is %d, want 1 or more", d.BrokerReplicas)
	}
	names := map[string]bool{}
	for i, c := range d.Clusters {
		// Each names a directory of the home (ClusterDir) and a kubeconfig
		// context: a DNS label, once.
		if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
			return fmt.Errorf("clusters[%d]: name %q is not a DNS label: %s", i, c.Name, strings.Join(errs, "; "))
		}
		if names[c.Name] {
			return fmt.Errorf("clusters[%d]: cluster %q is listed twice", i, c.Name)
		}
		names[c.Name] = true
		for _, cp := range c.Ports.byComponent() {
			if cp.port == 0 {
				return fmt.Errorf("cluster %q has no port for %s", c.Name, cp.component)
			}
			if other, dup := seen[cp.port]; dup {
				return fmt.Errorf("port %d is given to both %s and %s/%s", cp.port, other, c.Name, cp.component)
			}
			seen[cp.port] = c.Name + "/" + cp.component
		}
	}
	return nil
}

func (d *Datacenter) save(home string) error {
	raw, err := yaml.Marshal(d)
	if err != nil {
		return err
	}
	path := filepath.Join(home, stateFile)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
