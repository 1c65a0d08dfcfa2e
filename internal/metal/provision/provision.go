// Package provision is the metal layer's boundary to the physical world: it
// images a machine with a node configuration so that its kubelet registers a
// Node in a cluster, and wipes a machine its pool released. The broker drives
// it (see broker.Options.Provisioner); the sim package backs the local
// datacenter, and a Redfish, Ironic or Metal3 implementation would back real
// machines.
package provision

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/strata-dev/strata/internal/metal/inventory"
)

// Machine is what a provisioner is told about the machine it works on.
type Machine struct {
	ID         string
	Datacenter string
	// MaintenanceZone is 1..20 in a datacenter of 20 MZs.
	MaintenanceZone int32
	Rack            string
	SKU             inventory.SKU
	// OSImage and Kernel are what the machine runs.
	OSImage, Kernel string
	// NodeConfig is the node configuration (kubelet and its settings) to
	// image the machine with; "" for Wipe.
	NodeConfig string
	// Pool is the broker pool the machine joins for; "" for Wipe.
	Pool string
}

// Target is the cluster a machine joins, and how its Node registers.
type Target struct {
	// Cluster names the workload cluster.
	Cluster string
	// BootstrapKubeconfig is what the kubelet registers with.
	BootstrapKubeconfig []byte
	// NodeLabels are set at registration (the kubelet's --node-labels),
	// beside the labels the machine itself carries.
	NodeLabels map[string]string
	// NodeTaints are set at registration (--register-with-taints).
	NodeTaints []corev1.Taint
}

// Provisioner acts on machines. Both methods block until done or ctx ends,
// and may be called again for the same machine after a failure or a restart:
// the broker retries failures with backoff and runs many machines at once.
type Provisioner interface {
	// Join images the machine with m.NodeConfig and starts its kubelet
	// against target; it returns once the Node is registered. Idempotent: a
	// machine that joined already has its Node brought up to date.
	Join(ctx context.Context, m Machine, target Target) error
	// Wipe erases the machine after its pool released it; it returns once
	// the machine is clean. It does not touch the cluster: the cluster layer
	// deletes a released machine's Node.
	Wipe(ctx context.Context, m Machine) error
}
