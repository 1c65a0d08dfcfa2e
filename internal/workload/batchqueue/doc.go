// Package batchqueue is the hub's BatchQueue controller: it writes each
// tenant's queue, quotas and parent into Kueue's objects on the hub (the
// MultiKueue manager, where the regional quota is held) and on every
// workload cluster, and reports their usage in the BatchQueue's status.
package batchqueue
