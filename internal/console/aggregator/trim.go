package aggregator

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/console/store"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// The rows of the store, computed from the objects watched: only what the
// console shows, so that neither the aggregator nor the store holds whole
// Pods or Nodes.

// podApp is the app a pod belongs to: its StatelessApp or StatefulApp (an
// application may have several in one namespace), else its
// apps.strata.dev/app label.
func podApp(labels map[string]string) string {
	for _, l := range []string{appsv1alpha1.StatelessAppLabel, appsv1alpha1.StatefulAppLabel, appsv1alpha1.AppLabel} {
		if v := labels[l]; v != "" {
			return v
		}
	}
	return ""
}

// podRow is a Pod's row.
func podRow(cluster string, p *corev1.Pod) store.Pod {
	row := store.Pod{
		Cluster: cluster, Namespace: p.Namespace, Name: p.Name,
		App: podApp(p.Labels), Version: p.Labels[appsv1alpha1.AppVersionLabel],
		Node: p.Spec.NodeName, Phase: string(p.Status.Phase),
		Created: p.CreationTimestamp.Time,
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			row.Ready = c.Status == corev1.ConditionTrue
		}
	}
	for _, s := range p.Status.InitContainerStatuses {
		row.Restarts += s.RestartCount
	}
	for _, s := range p.Status.ContainerStatuses {
		row.Restarts += s.RestartCount
	}
	if !row.Ready {
		row.Reason, row.Message = notReadyReason(p)
	}
	return row
}

// notReadyReason is the first reason a pod is not ready, in the order a
// person looks for one: a container waiting (CrashLoopBackOff,
// ImagePullBackOff: init containers first, as they run first), a container
// terminated, the pod unschedulable, then the pod's own reason (Evicted).
func notReadyReason(p *corev1.Pod) (reason, message string) {
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, s := range statuses {
		if w := s.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason, w.Message
		}
	}
	for _, s := range statuses {
		if t := s.State.Terminated; t != nil && t.Reason != "" {
			// A completed init container is how init containers end, not a reason.
			if t.ExitCode == 0 && isInit(p, s.Name) {
				continue
			}
			return t.Reason, t.Message
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return c.Reason, c.Message
		}
	}
	return p.Status.Reason, p.Status.Message
}

func isInit(p *corev1.Pod, container string) bool {
	for _, s := range p.Status.InitContainerStatuses {
		if s.Name == container {
			return true
		}
	}
	return false
}

// nodeRow is a Node's row: where it is (its fleet.strata.dev labels), and
// its conditions that are not as they should be, in words.
func nodeRow(cluster string, n *corev1.Node) store.Node {
	l := n.Labels
	zone, _ := strconv.Atoi(l[fleetv1alpha1.MaintenanceZoneLabel]) // 0 when missing or not a number
	row := store.Node{
		Cluster: cluster, Name: n.Name,
		Machine: l[fleetv1alpha1.MachineLabel], Datacenter: l[fleetv1alpha1.DatacenterLabel],
		MaintenanceZone: int32(zone), Rack: l[fleetv1alpha1.RackLabel], //nolint:gosec // a zone is 1..20
		Pool: l[fleetv1alpha1.PoolLabel], Profile: l[fleetv1alpha1.NodeProfileLabel],
		Unschedulable:  n.Spec.Unschedulable,
		KubeletVersion: n.Status.NodeInfo.KubeletVersion,
		Created:        n.CreationTimestamp.Time,
	}
	if cpu, ok := n.Status.Allocatable[corev1.ResourceCPU]; ok {
		row.CPUMilli = cpu.MilliValue()
	}
	if mem, ok := n.Status.Allocatable[corev1.ResourceMemory]; ok {
		row.MemoryBytes = mem.Value()
	}
	var problems []string
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			row.Ready = string(c.Status)
			if c.Status != corev1.ConditionTrue {
				problems = append(problems, condition(string(c.Type), string(c.Status), c.Reason, c.Message))
			}
			continue
		}
		// Every other condition (MemoryPressure, DiskPressure, PIDPressure,
		// NetworkUnavailable, node-problem-detector's) says a problem when True.
		if c.Status == corev1.ConditionTrue {
			problems = append(problems, condition(string(c.Type), string(c.Status), c.Reason, c.Message))
		}
	}
	row.Problems = strings.Join(problems, "; ")
	return row
}

// condition is a condition in words: "Ready=False: KubeletNotReady: message".
func condition(typ, status, reason, message string) string {
	s := typ + "=" + status
	if reason != "" {
		s += ": " + reason
	}
	if message != "" {
		s += ": " + message
	}
	return s
}

// The groups of Strata's objects, whose Events the store keeps.
var strataGroups = map[string]bool{appsv1alpha1.GroupVersion.Group: true, fleetv1alpha1.GroupVersion.Group: true}

// eventRow is an Event's row, or false for an Event the store does not keep:
// only those of Strata's objects, and of Nodes when nodes.
func eventRow(cluster string, e *corev1.Event, nodes bool) (store.Event, bool) {
	gv, err := schema.ParseGroupVersion(e.InvolvedObject.APIVersion)
	keep := err == nil && strataGroups[gv.Group] || nodes && e.InvolvedObject.Kind == "Node" && gv.Group == ""
	if !keep {
		return store.Event{}, false
	}
	row := store.Event{
		Cluster: cluster, Namespace: e.Namespace, Name: e.Name,
		ObjectKind: e.InvolvedObject.Kind, ObjectName: e.InvolvedObject.Name,
		Type: e.Type, Reason: e.Reason, Message: e.Message,
		Count: max(e.Count, 1),
	}
	var last time.Time
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		row.Count, last = max(e.Series.Count, 1), e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		last = e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		last = e.EventTime.Time
	default:
		last = e.CreationTimestamp.Time
	}
	row.LastSeen = last
	return row, true
}

// objectRow is one of Strata's objects as stored: its JSON without
// managedFields and without the last-applied annotation, which are most of
// its size and none of what the console shows.
func objectRow(cluster, kind string, u *unstructured.Unstructured) (store.Object, error) {
	obj := u.DeepCopy()
	unstructured.RemoveNestedField(obj.Object, "metadata", "managedFields")
	if ann := obj.GetAnnotations(); ann != nil {
		delete(ann, corev1.LastAppliedConfigAnnotation)
		if len(ann) == 0 {
			unstructured.RemoveNestedField(obj.Object, "metadata", "annotations")
		} else {
			obj.SetAnnotations(ann)
		}
	}
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return store.Object{}, fmt.Errorf("encoding %s %s/%s: %w", kind, u.GetNamespace(), u.GetName(), err)
	}
	return store.Object{Cluster: cluster, Kind: kind, Namespace: u.GetNamespace(), Name: u.GetName(), Data: data}, nil
}

// enum is a broker enum value as stored: its name without the prefix, in
// lower case with dashes (DISRUPTION_STATE_IN_PROGRESS -> in-progress);
// "" for the unspecified value.
func enum(name, prefix string) string {
	s := strings.TrimPrefix(name, prefix)
	if s == "UNSPECIFIED" {
		return ""
	}
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

func machineRow(m *brokerv1.Machine) store.Machine {
	return store.Machine{
		ID: m.GetId(), Datacenter: m.GetDatacenter(), MaintenanceZone: m.GetMaintenanceZone(), Rack: m.GetRack(),
		SKU:     m.GetSku().GetName(),
		State:   enum(m.GetState().String(), "MACHINE_STATE_"),
		Healthy: m.GetHealthy(), HealthMessage: m.GetHealthMessage(), Pool: m.GetPool(),
		Provision: enum(m.GetProvisionState().String(), "PROVISION_STATE_"),
		OSImage:   m.GetSoftware().GetOsImage(), Kernel: m.GetSoftware().GetKernel(), NodeConfig: m.GetSoftware().GetNodeConfig(),
		Updated: timestamp(m.GetUpdateTime().AsTime(), m.GetUpdateTime() != nil),
	}
}

func brokerPoolRow(p *brokerv1.Pool) (store.BrokerPool, error) {
	data, err := protojson.Marshal(p)
	if err != nil {
		return store.BrokerPool{}, fmt.Errorf("encoding broker pool %q: %w", p.GetName(), err)
	}
	return store.BrokerPool{Name: p.GetName(), Datacenter: p.GetDatacenter(), Profile: p.GetNodeProfile(),
		Capacity: p.GetCapacity(), Data: data}, nil
}

// disruptionRow is a disruption's row; its history is d's (GetDisruption's).
func disruptionRow(d *brokerv1.Disruption) store.Disruption {
	row := store.Disruption{
		ID: d.GetId(), Machine: d.GetMachine(), Pool: d.GetPool(), Datacenter: d.GetDatacenter(),
		MaintenanceZone: d.GetMaintenanceZone(),
		Reason:          enum(d.GetReason().String(), "DISRUPTION_REASON_"),
		State:           enum(d.GetState().String(), "DISRUPTION_STATE_"),
		Actor:           d.GetActor(), OnBehalfOf: d.GetOnBehalfOf(), Message: d.GetMessage(),
		Created: timestamp(d.GetCreateTime().AsTime(), d.GetCreateTime() != nil),
		Updated: timestamp(d.GetUpdateTime().AsTime(), d.GetUpdateTime() != nil),
		History: []store.Transition{},
	}
	for _, t := range d.GetHistory() {
		row.History = append(row.History, store.Transition{
			From: enum(t.GetFrom().String(), "DISRUPTION_STATE_"), To: enum(t.GetTo().String(), "DISRUPTION_STATE_"),
			Actor: t.GetActor(), OnBehalfOf: t.GetOnBehalfOf(), Message: t.GetMessage(),
			Time: timestamp(t.GetTime().AsTime(), t.GetTime() != nil),
		})
	}
	return row
}

// timestamp is t in UTC, or the zero time when the message had none.
func timestamp(t time.Time, set bool) time.Time {
	if !set {
		return time.Time{}
	}
	return t.UTC()
}
