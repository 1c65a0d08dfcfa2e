package localdc

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/metal/broker/brokerclient"
)

// componentsPerCluster is how many processes kwokctl runs for one cluster:
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok.
const componentsPerCluster = 5

// statusTimeout bounds each question that Status asks a cluster.
const statusTimeout = 3 * time.Second

// ClusterState is what `strata status` reports of one cluster.
type ClusterState struct {
	Name       string `json:"name"`
	Role       string `json:"role"`
	Kubeconfig string `json:"kubeconfig"`
	// Components counts the live processes of the cluster, of componentsPerCluster.
	Components int    `json:"components"`
	Version    string `json:"version,omitempty"`
	Nodes      int    `json:"nodes"`
	// Ready says whether the cluster serves; Reason says why not. For a
	// workload cluster it is the hub's view, its Cluster's Ready condition.
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
	// Restarts are the cluster's Kubernetes components that `strata up`
	// restarted since it started, by component name.
	Restarts map[string]Restart `json:"restarts,omitempty"`
}

// DatacenterState is what `strata status` reports.
type DatacenterState struct {
	Clusters []ClusterState `json:"clusters"`
	Broker   BrokerState    `json:"broker"`
	// Console is the fleet console's address.
	Console string `json:"console,omitempty"`
	// Components are Strata's component processes: broker, hub, apps,
	// webhook.
	Components []ComponentState `json:"components"`
}

// BrokerState says whether a Compute Broker replica answers its health
// check SERVING (leads), and which.
type BrokerState struct {
	// Address lists every replica's, comma-separated.
	Address string `json:"address"`
	Serving bool   `json:"serving"`
	// Replica is the broker process that serves, e.g. broker-2.
	Replica string `json:"replica,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// NotReady says, for a person, what is not ready: each cluster with its
// reason, and the broker.
func (s DatacenterState) NotReady() []string {
	var out []string
	for _, c := range s.Clusters {
		if !c.Ready {
			out = append(out, fmt.Sprintf("cluster %s (%s)", c.Name, c.Reason))
		}
	}
	if !s.Broker.Serving {
		out = append(out, fmt.Sprintf("the Compute Broker (%s)", s.Broker.Reason))
	}
	var running int
	for _, c := range s.Components {
		if c.Alive {
			running++
		}
	}
	// A stopped datacenter is said once, not process by process.
	if running == 0 && len(s.Components) > 0 {
		return append(out, "the component processes (none running: run `strata up`)")
	}
	for _, c := range s.Components {
		if !c.Ready {
			out = append(out, fmt.Sprintf("process %s (%s)", c.Name, c.Reason))
		}
	}
	return out
}

// Status reports each cluster of the home's datacenter, its broker and its
// component processes.
func Status(ctx context.Context, home string) (DatacenterState, error) {
	home, err := filepath.Abs(home)
	if err != nil {
		return DatacenterState{}, err
	}
	dc, err := loadDatacenter(home)
	if err != nil {
		return DatacenterState{}, err
	}
	restarts := loadRestarts(home)
	clusters := clusterStates(ctx, home, dc)
	for i := range clusters {
		for _, name := range clusterComponentNames {
			if r, ok := restarts[clusters[i].Name+"/"+name]; ok {
				if clusters[i].Restarts == nil {
					clusters[i].Restarts = map[string]Restart{}
				}
				clusters[i].Restarts[name] = r
			}
		}
	}
	components := componentStates(ctx, home, dc)
	for i := range components {
		if r, ok := restarts[components[i].Name]; ok {
			components[i].Restarts = &r
		}
	}
	return DatacenterState{
		Clusters: clusters, Broker: brokerState(ctx, home, dc), Console: dc.ConsoleURL(),
		Components: components,
	}, nil
}

// brokerState asks each broker replica's gRPC health service: the one that
// says SERVING leads.
func brokerState(ctx context.Context, home string, dc *Datacenter) BrokerState {
	s := BrokerState{Address: strings.Join(dc.BrokerAddresses(), ",")}
	var reasons []string
	for _, p := range dc.ComponentProcesses() {
		if p.Component != ComponentBroker {
			continue
		}
		serving, reason := brokerHealth(ctx, home, loopback(p.Ports.GRPC))
		if serving {
			s.Serving, s.Replica = true, p.Name
			return s
		}
		reasons = append(reasons, p.Name+": "+reason)
	}
	if len(reasons) == 1 {
		_, reasons[0], _ = strings.Cut(reasons[0], ": ")
	}
	s.Reason = strings.Join(reasons, "; ")
	return s
}

// brokerHealth asks one broker replica's gRPC health service whether it
// serves, and if not, why. Health checks need no identity, only the CA of
// a broker that serves TLS (one made before the home had a CA does not).
func brokerHealth(ctx context.Context, home, addr string) (bool, string) {
	creds := insecure.NewCredentials()
	if pool, err := brokerclient.LoadCAPool(PKIPath(home, "ca.crt")); err == nil {
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return false, err.Error()
	}
	defer conn.Close() //nolint:errcheck // a probe's connection
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	switch {
	case err != nil:
		return false, "not reachable: run `strata up`"
	case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
		return false, "health check says " + resp.GetStatus().String()
	}
	return true, ""
}

func clusterStates(ctx context.Context, home string, dc *Datacenter) []ClusterState {
	var hub client.Client
	states := make([]ClusterState, 0, len(dc.Clusters))
	for i, c := range dc.Clusters {
		s := ClusterState{
			Name:       c.Name,
			Role:       "workload",
			Kubeconfig: KubeconfigPath(home, c.Name),
			Components: len(runningComponents(ClusterDir(home, c.Name))),
		}
		if i == 0 {
			s.Role = "hub"
		}
		probeCluster(ctx, &s)
		if i == 0 && s.Ready {
			hub, _ = newClient(s.Kubeconfig)
		}
		if i > 0 && s.Ready {
			hubView(ctx, hub, &s)
		}
		states = append(states, s)
	}
	return states
}

// probeCluster asks a cluster's API server for its version and nodes.
func probeCluster(ctx context.Context, s *ClusterState) {
	if s.Components == 0 {
		s.Reason = "stopped: run `strata up`"
		return
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		s.Reason = err.Error()
		return
	}
	cfg.Timeout = statusTimeout
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		s.Reason = err.Error()
		return
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		s.Reason = fmt.Sprintf("API server not ready: %v", err)
		return
	}
	if v, err := cs.Discovery().ServerVersion(); err == nil {
		s.Version = v.GitVersion
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		s.Reason = fmt.Sprintf("listing nodes: %v", err)
		return
	}
	s.Nodes = len(nodes.Items)
	s.Ready = s.Components == componentsPerCluster
	if !s.Ready {
		s.Reason = fmt.Sprintf("%d of %d components running", s.Components, componentsPerCluster)
	}
}

// hubView replaces a workload cluster's readiness by the hub's judgement.
func hubView(ctx context.Context, hub client.Client, s *ClusterState) {
	if hub == nil {
		s.Ready, s.Reason = false, "the hub is not ready"
		return
	}
	cluster := &fleetv1alpha1.Cluster{}
	if err := hub.Get(ctx, client.ObjectKey{Name: s.Name}, cluster); err != nil {
		s.Ready, s.Reason = false, fmt.Sprintf("not registered on the hub: %v", err)
		return
	}
	cond := meta.FindStatusCondition(cluster.Status.Conditions, fleetv1alpha1.ClusterReadyCondition)
	switch {
	case cond == nil:
		s.Ready, s.Reason = false, "the hub has not probed it yet"
	case cond.Status != "True":
		s.Ready, s.Reason = false, cond.Reason+": "+cond.Message
	}
}

func newClient(kubeconfig string) (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = statusTimeout
	return client.New(cfg, client.Options{Scheme: Scheme()})
}
