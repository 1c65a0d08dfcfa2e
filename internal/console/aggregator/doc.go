// Package aggregator is the leader-only work of `strata serve aggregator`:
// it copies what the fleet console shows into the fleet store
// (internal/console/store), trimmed, in near real time.
//
// What it watches: on the hub (cluster "hub"), Clusters, Pools,
// MaintenanceRollouts, AppNamespaces, StatelessApps and the Events of
// Strata's objects; on every workload cluster (one per hub Cluster, reached
// with the kubeconfig of its Secret), Nodes, Pods, StatelessApps,
// StatefulApps and the Events of Strata's objects and of Nodes; at the
// Compute Broker, pools, disruptions (with their history, from
// GetDisruption) and machines. Pods and Nodes are turned into rows as they
// arrive (a list page at a time): no cluster is ever held in memory.
//
// How it batches: every source sends its changes to one writer, which
// merges them (one change per row: the latest) and writes them at most
// every FlushInterval (200 ms), or at once past BatchSize rows, in one
// transaction at one new store revision; each kind changed gets that
// revision, which the console polls.
//
// How it resumes: each source stores the resourceVersion of its last event
// or bookmark. A new aggregator (another leader, a restart) watches from
// it; when it is too old (410 Gone), the source lists again, and the rows
// the list did not write again are deleted at its end. A kubeconfig that
// changed lists again too; a Cluster removed from the hub, even while no
// aggregator ran, has its rows and sources deleted.
//
// What "fresh" means: a source's last_seen is when it last heard from its
// server (a list page, an event or a bookmark, which the API server sends
// about every minute on a quiet watch); last_error says why a stream
// fails, since error_since. A cluster that cannot be reached keeps its
// rows: the console shows them as stale, as of last_seen.
package aggregator
