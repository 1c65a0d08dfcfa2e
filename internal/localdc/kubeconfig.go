package localdc

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// addWorkloadContexts adds to the hub's kubeconfig, the person's (the
// admin's, which kwokctl writes when it creates the hub), a context per
// workload cluster named after its Cluster, with that cluster's own admin
// credentials. `kubectl strata` reads a workload cluster with the caller's
// context for it, never with the hub's credentials, so KUBECONFIG=<the
// hub's kubeconfig> alone serves it, and `kubectl --context workload-1`
// too. The hub stays the current context. Rewritten at every start (kwokctl
// writes the file only at creation; the contexts are replaced, not added
// twice).
func addWorkloadContexts(home string, dc *Datacenter) error {
	hubPath := KubeconfigPath(home, HubName)
	hub, err := clientcmd.LoadFromFile(hubPath)
	if err != nil {
		return fmt.Errorf("reading the hub's kubeconfig: %w", err)
	}
	for _, c := range dc.WorkloadClusters() {
		wl, err := clientcmd.LoadFromFile(KubeconfigPath(home, c.Name))
		if err != nil {
			return fmt.Errorf("reading the kubeconfig of cluster %s: %w", c.Name, err)
		}
		current := wl.Contexts[wl.CurrentContext]
		if current == nil || wl.Clusters[current.Cluster] == nil || wl.AuthInfos[current.AuthInfo] == nil {
			return fmt.Errorf("the kubeconfig of cluster %s has no complete current context %q", c.Name, wl.CurrentContext)
		}
		// kwokctl names a cluster's entries kwok-<cluster>: they do not
		// collide with the hub's.
		hub.Clusters[current.Cluster] = wl.Clusters[current.Cluster]
		hub.AuthInfos[current.AuthInfo] = wl.AuthInfos[current.AuthInfo]
		hub.Contexts[c.Name] = &clientcmdapi.Context{Cluster: current.Cluster, AuthInfo: current.AuthInfo}
	}
	raw, err := clientcmd.Write(*hub)
	if err != nil {
		return fmt.Errorf("encoding the hub's kubeconfig: %w", err)
	}
	if err := writeFileAtomic(hubPath, raw); err != nil {
		return fmt.Errorf("adding the workload clusters' contexts to the hub's kubeconfig: %w", err)
	}
	return nil
}
