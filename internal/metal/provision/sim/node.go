package sim

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	kubeletapis "k8s.io/kubelet/pkg/apis"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/metal/provision"
)

// What the simulated kubelet reports beside the machine's own facts.
const (
	// MaxPods is the kubelet's default --max-pods.
	MaxPods = 110
	// GPUResource is the extended resource of the NVIDIA device plugin.
	GPUResource corev1.ResourceName = "nvidia.com/gpu"
	// ContainerRuntimeVersion is the runtime the node image ships.
	ContainerRuntimeVersion = "containerd://2.1.4"
	// ProviderIDPrefix starts every Node's spec.providerID:
	// strata://<datacenter>/<machine>.
	ProviderIDPrefix = "strata://"
)

const fieldManager = UserAgent

// desiredNode is the Node a kubelet on m registers in target's cluster.
//
// Labels: the machine's (fleet.strata.dev/machine, datacenter,
// maintenance-zone, rack, sku, node-config; node.kubernetes.io/instance-type;
// kubernetes.io/arch, os and hostname) over target.NodeLabels, so a pool
// cannot misstate where a machine is. A pool label that NodeRestriction
// would refuse a kubelet (under kubernetes.io or k8s.io, other than the
// kubelet's own, e.g. node-role.kubernetes.io/...) is left out, as a
// kubelet refuses it in --node-labels: the pool controller sets it with
// its own credential. Taints: target.NodeTaints, as
// --register-with-taints. Capacity from the SKU; allocatable is capacity
// minus kubeReserved.
func desiredNode(m provision.Machine, target provision.Target, kubeletVersion string, now time.Time) *corev1.Node {
	labels := map[string]string{}
	for k, v := range target.NodeLabels {
		if kubeletMaySet(k) {
			labels[k] = v
		}
	}
	maps.Copy(labels, map[string]string{
		fleetv1alpha1.MachineLabel:         m.ID,
		fleetv1alpha1.DatacenterLabel:      m.Datacenter,
		fleetv1alpha1.MaintenanceZoneLabel: strconv.Itoa(int(m.MaintenanceZone)),
		fleetv1alpha1.RackLabel:            m.Rack,
		fleetv1alpha1.SKULabel:             m.SKU.Name,
		fleetv1alpha1.NodeConfigLabel:      m.NodeConfig,
		corev1.LabelInstanceTypeStable:     m.SKU.Name,
		corev1.LabelArchStable:             m.SKU.Arch,
		corev1.LabelOSStable:               "linux",
		corev1.LabelHostname:               m.ID,
	})
	capacity := nodeCapacity(m.SKU)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: m.ID, Labels: labels},
		Spec: corev1.NodeSpec{
			ProviderID: ProviderIDPrefix + m.Datacenter + "/" + m.ID,
			Taints:     append([]corev1.Taint(nil), target.NodeTaints...),
		},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: allocatable(capacity, kubeReserved(m.SKU)),
			Conditions:  conditions(now),
			Addresses:   []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: m.ID}},
			NodeInfo: corev1.NodeSystemInfo{
				MachineID: m.ID, SystemUUID: m.ID, KernelVersion: m.Kernel, OSImage: m.OSImage,
				ContainerRuntimeVersion: ContainerRuntimeVersion, KubeletVersion: kubeletVersion,
				OperatingSystem: "linux", Architecture: m.SKU.Arch,
			},
		},
	}
}

func nodeCapacity(sku inventory.SKU) corev1.ResourceList {
	rl := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(sku.CPUCores), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(int64(sku.MemoryGiB)<<30, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(MaxPods, resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(int64(sku.LocalDiskGiB)<<30, resource.BinarySI),
	}
	if sku.GPUs > 0 {
		rl[GPUResource] = *resource.NewQuantity(int64(sku.GPUs), resource.DecimalSI)
	}
	return rl
}

// kubeReserved is what the node keeps for the kubelet, the runtime and the
// OS, on the tiers managed Kubernetes services use:
//
//   - cpu: 6% of the first core, 1% of the second, 0.5% of the next two,
//     0.25% of every core above four;
//   - memory: 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8,
//     6% of the next 112, 2% above 128 GiB, plus the 100 MiB hard eviction
//     threshold;
//   - ephemeral-storage: 10%, the nodefs.available eviction threshold.
//
// A 32-core, 128 GiB machine keeps 150m of CPU and about 9.4 GiB.
func kubeReserved(sku inventory.SKU) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewMilliQuantity(tiered(int64(sku.CPUCores)*1000, cpuTiers), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(tiered(int64(sku.MemoryGiB)<<30, memoryTiers)+100<<20, resource.BinarySI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity((int64(sku.LocalDiskGiB)<<30)/10, resource.BinarySI),
	}
}

// tier reserves perTenThousand/10000 of the amount up to upTo (0: no limit)
// not covered by the tiers before it.
type tier struct{ upTo, perTenThousand int64 }

var (
	cpuTiers    = []tier{{1000, 600}, {2000, 100}, {4000, 50}, {0, 25}}
	memoryTiers = []tier{{4 << 30, 2500}, {8 << 30, 2000}, {16 << 30, 1000}, {128 << 30, 600}, {0, 200}}
)

func tiered(amount int64, tiers []tier) int64 {
	var reserved, below int64
	for _, t := range tiers {
		top := amount
		if t.upTo > 0 {
			top = min(amount, t.upTo)
		}
		if top > below {
			reserved += (top - below) * t.perTenThousand / 10000
		}
		if t.upTo == 0 || amount <= t.upTo {
			break
		}
		below = t.upTo
	}
	return reserved
}

func allocatable(capacity, reserved corev1.ResourceList) corev1.ResourceList {
	out := capacity.DeepCopy()
	for name, r := range reserved {
		if q, ok := out[name]; ok {
			q.Sub(r)
			out[name] = q
		}
	}
	return out
}

// conditions are what a healthy kubelet posts.
func conditions(now time.Time) []corev1.NodeCondition {
	t := metav1.NewTime(now)
	cond := func(typ corev1.NodeConditionType, status corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: typ, Status: status, Reason: reason, Message: msg, LastHeartbeatTime: t, LastTransitionTime: t}
	}
	return []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
	}
}

// register creates the Node, or, when it exists (the machine joined before
// and restarted, or was reimaged), brings its labels, capacity and
// conditions up to date and keeps what others added: labels of other keys,
// taints, addresses, other conditions. As a kubelet, it sets taints only
// when it creates the Node (--register-with-taints): NodeRestriction
// forbids a Node to change its taints, and the pool controller keeps the
// Pool's taints on it.
func register(ctx context.Context, kube kubernetes.Interface, want *corev1.Node) error {
	nodes := kube.CoreV1().Nodes()
	_, err := nodes.Create(ctx, want, metav1.CreateOptions{FieldManager: fieldManager})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	var current *corev1.Node
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := nodes.Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if mergeSpec(node, want) {
			if node, err = nodes.Update(ctx, node, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
				return err
			}
		}
		current = node
		return nil
	})
	if err != nil {
		return fmt.Errorf("updating the Node: %w", err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		mergeStatus(current, want)
		_, err := nodes.UpdateStatus(ctx, current, metav1.UpdateOptions{FieldManager: fieldManager})
		if apierrors.IsConflict(err) {
			if node, getErr := nodes.Get(ctx, want.Name, metav1.GetOptions{}); getErr == nil {
				current = node
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("updating the Node's status: %w", err)
	}
	return nil
}

// mergeSpec sets want's labels and, when the Node has none, its provider
// ID on node, and reports whether it changed.
func mergeSpec(node, want *corev1.Node) bool {
	changed := false
	if node.Labels == nil {
		node.Labels = map[string]string{}
	}
	for k, v := range want.Labels {
		if old, ok := node.Labels[k]; !ok || old != v {
			node.Labels[k] = v
			changed = true
		}
	}
	if node.Spec.ProviderID == "" {
		node.Spec.ProviderID = want.Spec.ProviderID
		changed = true
	}
	return changed
}

// mergeStatus sets want's capacity, allocatable, node info and conditions
// on node, keeping its other conditions and its addresses when it has some.
func mergeStatus(node, want *corev1.Node) {
	node.Status.Capacity = want.Status.Capacity
	node.Status.Allocatable = want.Status.Allocatable
	node.Status.NodeInfo = want.Status.NodeInfo
	if len(node.Status.Addresses) == 0 {
		node.Status.Addresses = want.Status.Addresses
	}
	if want.Status.DaemonEndpoints.KubeletEndpoint.Port != 0 {
		node.Status.DaemonEndpoints = want.Status.DaemonEndpoints
	}
	for _, c := range want.Status.Conditions {
		replaced := false
		for i := range node.Status.Conditions {
			if node.Status.Conditions[i].Type == c.Type {
				if node.Status.Conditions[i].Status == c.Status {
					c.LastTransitionTime = node.Status.Conditions[i].LastTransitionTime
				}
				node.Status.Conditions[i] = c
				replaced = true
			}
		}
		if !replaced {
			node.Status.Conditions = append(node.Status.Conditions, c)
		}
	}
}

// kubeletMaySet says whether NodeRestriction lets a Node set a label on
// itself: any outside the kubernetes.io and k8s.io namespaces, and the
// kubelet's own inside them (hostname, arch, os, instance type, zone,
// node.kubernetes.io/..., kubelet.kubernetes.io/...).
func kubeletMaySet(key string) bool {
	namespace, _, ok := strings.Cut(key, "/")
	if !ok {
		return true
	}
	for _, reserved := range []string{"kubernetes.io", "k8s.io"} {
		if namespace == reserved || strings.HasSuffix(namespace, "."+reserved) {
			return kubeletapis.IsKubeletLabel(key)
		}
	}
	return true
}
