package aggregator

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"k8s.io/client-go/tools/clientcmd"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/console/store"
)

// connection is one workload cluster's running sources.
type connection struct {
	kubeconfig []byte
	cancel     context.CancelFunc
	done       sync.WaitGroup
}

func (c *connection) stop() {
	c.cancel()
	c.done.Wait()
}

// clustersChanged asks manageClusters to read the Clusters again.
func (a *Aggregator) clustersChanged() {
	select {
	case a.clusters <- struct{}{}:
	default:
	}
}

// workloadKinds are the kinds of every workload cluster's sources.
var workloadKinds = []string{store.KindNode, store.KindPod, store.KindStatelessApp, store.KindStatefulApp, store.KindEvent}

// manageClusters runs the sources of every Cluster on the hub, reading the
// Clusters and their kubeconfigs when one changes and every ClusterResync
// (a kubeconfig Secret rotated without a Cluster change is seen then). A
// Cluster added starts its sources, from the resourceVersions stored for
// them (resume); one removed stops them and forgets its rows; one whose
// kubeconfig changed starts them again with a relist, as it may name
// another API server.
func (a *Aggregator) manageClusters(ctx context.Context, resume map[srcKey]string) {
	conns := map[string]*connection{}
	defer func() {
		for _, c := range conns {
			c.stop()
		}
	}()
	// The workload clusters of the store when the aggregator started: those
	// that are no longer on the hub are forgotten once the Clusters are read.
	stored := map[string]bool{}
	for k := range resume {
		if k.cluster != store.HubCluster && k.cluster != store.BrokerSource {
			stored[k.cluster] = true
		}
	}
	for {
		if a.syncClusters(ctx, conns, resume) {
			for name := range stored {
				if _, ok := conns[name]; !ok {
					a.log.Info("Forgetting a cluster removed while the aggregator was away", "cluster", name)
					a.send(ctx, update{src: srcKey{cluster: name}, forget: true})
				}
			}
			stored = nil
			a.mu.Lock()
			a.listed = true
			a.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-a.clusters:
		case <-a.opts.Clock.After(a.opts.ClusterResync):
		}
	}
}

// kubeconfigOf is the Cluster whose kubeconfig Secret the aggregator
// reads: the Cluster itself, or with KubeconfigSecretSuffix, the same
// Cluster pointing at the aggregator's own Secret.
func (a *Aggregator) kubeconfigOf(c *fleetv1alpha1.Cluster) *fleetv1alpha1.Cluster {
	if a.opts.KubeconfigSecretSuffix == "" {
		return c
	}
	own := c.DeepCopy()
	own.Spec.KubeconfigSecretRef = fleetv1alpha1.SecretKeyReference{
		Namespace: c.Spec.KubeconfigSecretRef.Namespace, Name: c.Name + a.opts.KubeconfigSecretSuffix,
	}
	return own
}

// syncClusters starts, restarts and stops the clusters' sources to match
// the hub; it says whether it could read the Clusters.
func (a *Aggregator) syncClusters(ctx context.Context, conns map[string]*connection, resume map[srcKey]string) bool {
	list := &fleetv1alpha1.ClusterList{}
	lctx, cancel := context.WithTimeout(ctx, a.opts.RequestTimeout)
	defer cancel()
	if err := a.hub.List(lctx, list); err != nil {
		if ctx.Err() != nil {
			return false
		}
		a.log.Error(err, "Listing the hub's Clusters failed; keeping the clusters watched")
		return false
	}
	seen := map[string]bool{}
	for i := range list.Items {
		c := &list.Items[i]
		seen[c.Name] = true
		kubeconfig, err := remote.Kubeconfig(lctx, a.hub, a.kubeconfigOf(c))
		if err != nil {
			if conns[c.Name] == nil {
				a.failCluster(ctx, c.Name, fmt.Errorf("reading its kubeconfig: %w", err))
			}
			continue // a running connection keeps its kubeconfig until a new one can be read
		}
		old := conns[c.Name]
		if old != nil && bytes.Equal(old.kubeconfig, kubeconfig) {
			continue
		}
		if old != nil {
			a.log.Info("Kubeconfig of cluster changed; watching it again", "cluster", c.Name)
			old.stop()
			delete(conns, c.Name)
			for _, kind := range workloadKinds {
				delete(resume, srcKey{c.Name, kind}) // another API server's resourceVersions mean nothing
			}
		}
		conn, err := a.connect(ctx, c.Name, kubeconfig, resume)
		if err != nil {
			a.failCluster(ctx, c.Name, err)
			continue
		}
		conns[c.Name] = conn
	}
	for name, conn := range conns {
		if seen[name] {
			continue
		}
		a.log.Info("Cluster removed from the hub; forgetting it", "cluster", name)
		conn.stop()
		delete(conns, name)
		// The sources have stopped: nothing of the cluster follows the forget.
		a.send(ctx, update{src: srcKey{cluster: name}, forget: true})
		a.unregister(name)
	}
	return true
}

// failCluster records on a cluster's sources why they cannot run.
func (a *Aggregator) failCluster(ctx context.Context, cluster string, err error) {
	a.log.Error(err, "Cannot watch cluster", "cluster", cluster)
	for _, kind := range workloadKinds {
		a.send(ctx, update{src: srcKey{cluster, kind}, failed: fmt.Sprintf("cluster %s: %v", cluster, err)})
	}
}

// connect starts a cluster's sources.
func (a *Aggregator) connect(ctx context.Context, cluster string, kubeconfig []byte, resume map[srcKey]string) (*connection, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading its kubeconfig: %w", err)
	}
	c, err := a.newClients(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	conn := &connection{kubeconfig: kubeconfig, cancel: cancel}
	a.log.Info("Watching cluster", "cluster", cluster, "server", cfg.Host)
	for _, s := range workloadSources(cluster, c) {
		rv := resume[s.key()]
		delete(resume, s.key()) // used once: a cluster removed and added again lists anew
		a.register(s.key())
		conn.done.Go(func() { a.runKube(cctx, s, rv) })
	}
	conn.done.Go(func() { a.probe(cctx, cluster, c.readyz) })
	return conn, nil
}
