// Package refstore is Strata's reference data system: a small replicated
// key-value store with shards, replicas and leaders, and its shard manager,
// which implements the shard-manager protocol (strata.shardmanager.v1) that
// Strata asks before it stops a pod of a StatefulApp.
//
// Kwok pods run no code, so the store runs every replica inside one process
// (`strata refstore serve`) and maps replicas to the app's pods: a replica is
// up while its pod is Running and Ready, and its data belongs to the pod's
// PersistentVolumeClaim. The pieces:
//
//   - Placement puts each shard on replication distinct pods, balanced.
//   - Store holds the shards: leaders, in-sync sets, per-volume logs;
//     synchronous replication (Put), reads from the leader (Get), catch-up of
//     replicas that come back, and the shard manager's decisions
//     (RequestOperation and friends).
//   - Watcher feeds the store from the pods of the app (client-go informers).
//   - Server serves ShardManagerService and RefStoreService on one port.
//
// docs/refstore.md describes the store; docs/shard-manager-protocol.md the
// protocol.
package refstore
