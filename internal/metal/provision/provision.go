// Package provision is the metal layer's boundary to the physical world: it
// images a machine with a node configuration so that its kubelet registers a
// Node in a cluster, reboots and reimages machines under maintenance, wipes a
// machine its pool released, and may report hardware faults. The broker
// drives it (see broker.Options.Provisioner); the sim package backs the local
// datacenter, and a Redfish, Ironic or Metal3 implementation would back real
// machines.
package provision

import (
	"context"
	"errors"

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
	// image the machine with for Join, what it runs now for Maintain; ""
	// for Wipe.
	NodeConfig string
	// Pool is the broker pool the machine joins for, or is in for Maintain;
	// "" for Wipe.
	Pool string
}

// Target is the cluster a machine joins, and how its Node registers.
type Target struct {
	// Cluster names the workload cluster.
	Cluster string
	// APIServer is the https:// URL of the cluster's API server, CABundle
	// the PEM CAs of its serving certificate.
	APIServer string
	CABundle  []byte
	// BootstrapToken (<token-id>.<token-secret>) is what the kubelet
	// bootstraps with, as kubeadm join does: it may only ask for a client
	// certificate of its own (system:node:<name>), with which it registers
	// its Node. A token the API server refuses (expired, deleted, of
	// another cluster) fails the join with ErrBootstrapTokenRefused.
	BootstrapToken string
	// NodeLabels are set at registration (the kubelet's --node-labels),
	// beside the labels the machine itself carries.
	NodeLabels map[string]string
	// NodeTaints are set at registration (--register-with-taints).
	NodeTaints []corev1.Taint
}

// OperationKind is what Maintain does to a machine.
type OperationKind = inventory.OperationKind

// The operations a provisioner performs. Replacing a machine is the broker's
// own work (the machine leaves its pool and is wiped), not the provisioner's.
const (
	// Reboot power-cycles the machine; its software stays and its kubelet
	// comes back with the same Node.
	Reboot = inventory.OperationReboot
	// Reimage writes the machine's disk with Operation.Software and starts
	// its kubelet again: the Node comes back with the new node config.
	Reimage = inventory.OperationReimage
)

// Operation is maintenance the broker asks for.
type Operation struct {
	Kind OperationKind
	// Software is what the machine runs afterwards, every field set: for
	// Reboot what it runs now, for Reimage the new software.
	Software inventory.Software
}

// ErrMachineFault is wrapped by the error of an operation that failed because
// of the machine: it did not come back. Retrying does not help, so the broker
// fails the disruption and marks the machine unhealthy. Any other error is
// taken as transient (the management network, the BMC, the cluster's API
// server) and the operation is retried with backoff.
var ErrMachineFault = errors.New("machine fault")

// ErrBootstrapTokenRefused is wrapped by the error of a join whose
// bootstrap token the cluster's API server refused: expired, revoked
// (its Secret deleted) or of another cluster. The broker retries it like
// any failed join: the pool controller hands the pool a fresh token.
var ErrBootstrapTokenRefused = errors.New("bootstrap token refused")

// Provisioner acts on machines. Every method blocks until done or ctx ends,
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
	// Maintain performs op on a machine whose Node was drained, and returns
	// once the machine is back: for a machine that joined a cluster, once
	// its kubelet registered the Node again with target (a reimaged machine
	// re-registers with op.Software.NodeConfig). target is the machine's
	// pool's join target, zero when the machine has not joined a cluster.
	// An error wrapping ErrMachineFault means the machine did not come
	// back. Idempotent: after a restart the broker performs an operation it
	// had started again.
	Maintain(ctx context.Context, m Machine, op Operation, target Target) error
}

// HealthChecker is what a provisioner implements when it knows of machine
// faults (a BMC's sensors, a hardware monitor). The broker polls Faults and
// marks the machines it names unhealthy, with the message, and healthy
// again once they are no longer named.
type HealthChecker interface {
	// Faults returns the machines that have a hardware fault now, by ID,
	// each with what is wrong.
	Faults(ctx context.Context) (map[string]string, error)
	// FaultsChanged receives a value when the faults may have changed, so
	// the broker polls at once rather than at its next interval.
	FaultsChanged() <-chan struct{}
}

// TermStarter is what a provisioner implements when it keeps state of its
// own that a broker replica must take over from the previous leader (the
// simulator's faults file). The broker calls StartTerm before its term is
// visible: before it answers as leader or reports SERVING.
type TermStarter interface {
	StartTerm() error
}
