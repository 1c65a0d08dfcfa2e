package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/strata-dev/strata/internal/metal/provision"
)

// Simulated hardware faults. A faulted machine is reported by Faults (the
// broker marks it unhealthy), does not boot (Join fails), fails every
// Maintain but the operations that fix its fault, and its Node, in whichever
// cluster it is, goes NotReady: the Node gets FaultLabel, which the local
// datacenter's kwok does not manage (--manage-nodes-with-label-selector
// !FaultLabel), so nothing heart-beats it, and its Ready condition is False
// with FaultReason. Healing, by Heal or an operation that fixes the fault,
// removes the label and sets Ready again; kwok manages the Node again.
const (
	// FaultLabel marks the Node of a faulted machine; its value is the
	// Fix. kwok leaves Nodes with it alone.
	FaultLabel = "sim.strata.dev/fault"
	// FaultReason is the reason of the Ready condition of a faulted
	// machine's Node.
	FaultReason = "SimulatedHardwareFault"
	// faultResync is how often the Nodes of faulted machines are checked
	// and put right (kwok may have written one last heartbeat).
	faultResync = 5 * time.Second
)

// Fix is the operation that fixes a simulated fault.
type Fix string

// Fixes of a fault.
const (
	// FixReboot: a reboot fixes it, and so does a reimage (which reboots).
	FixReboot Fix = "reboot"
	// FixReimage: only a reimage fixes it.
	FixReimage Fix = "reimage"
	// FixNever: no operation fixes it; the machine must be replaced.
	FixNever Fix = "never"
)

// Fixes lists every fix.
var Fixes = []Fix{FixReboot, FixReimage, FixNever}

// ParseFix reads a fix by name.
func ParseFix(s string) (Fix, error) {
	if f := Fix(s); slices.Contains(Fixes, f) {
		return f, nil
	}
	return "", fmt.Errorf("%q is not one of reboot, reimage, never", s)
}

// fixes says whether an operation of kind k fixes a fault fixed by f.
func (f Fix) fixes(k provision.OperationKind) bool {
	switch f {
	case FixReboot:
		return k == provision.Reboot || k == provision.Reimage
	case FixReimage:
		return k == provision.Reimage
	}
	return false
}

// Fault is a simulated hardware fault of one machine.
type Fault struct {
	Machine string    `json:"machine"`
	FixedBy Fix       `json:"fixedBy"`
	Since   time.Time `json:"since"`
}

// Message is what the provisioner reports to the broker.
func (f Fault) Message() string {
	switch f.FixedBy {
	case FixReboot:
		return "simulated hardware fault: a reboot fixes it"
	case FixReimage:
		return "simulated hardware fault: only a reimage fixes it"
	}
	return "simulated hardware fault: no operation fixes it, replace the machine"
}

// faultsFile is the JSON document of FaultsFile.
type faultsFile struct {
	Faults []Fault `json:"faults"`
}

// loadFaults reads the faults a previous run kept; a missing file is none.
func loadFaults(path string) (map[string]Fault, error) {
	faults := map[string]Fault{}
	if path == "" {
		return faults, nil
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return faults, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading simulated faults: %w", err)
	}
	var doc faultsFile
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("reading simulated faults from %s: %w", path, err)
	}
	for _, f := range doc.Faults {
		if _, err := ParseFix(string(f.FixedBy)); err != nil || f.Machine == "" {
			return nil, fmt.Errorf("reading simulated faults from %s: fault %+v is not valid", path, f)
		}
		faults[f.Machine] = f
	}
	return faults, nil
}

// saveFaults writes the faults atomically; p.mu is held.
func (p *Provisioner) saveFaults() error {
	if p.faultsFile == "" {
		return nil
	}
	doc := faultsFile{Faults: []Fault{}}
	for _, id := range slices.Sorted(maps.Keys(p.faults)) {
		doc.Faults = append(doc.Faults, p.faults[id])
	}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.faultsFile), ".faults-*")
	if err != nil {
		return fmt.Errorf("writing simulated faults: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing simulated faults: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing simulated faults: %w", err)
	}
	if err := os.Rename(tmp.Name(), p.faultsFile); err != nil {
		return fmt.Errorf("writing simulated faults: %w", err)
	}
	return nil
}

// Fail faults machines; a machine already faulted gets the new fix and
// keeps its start. Their Nodes go NotReady now, or at the next resync when a
// cluster cannot be reached.
func (p *Provisioner) Fail(ctx context.Context, machines []string, fix Fix) ([]Fault, error) {
	if _, err := ParseFix(string(fix)); err != nil {
		return nil, fmt.Errorf("fix %w", err)
	}
	now := p.clock.Now()
	p.mu.Lock()
	out := make([]Fault, 0, len(machines))
	for _, id := range machines {
		f, ok := p.faults[id]
		if !ok {
			f = Fault{Machine: id, Since: now}
		}
		f.FixedBy = fix
		p.faults[id] = f
		delete(p.healing, id)
		out = append(out, f)
	}
	err := p.saveFaults()
	p.mu.Unlock()
	p.signal()
	if err != nil {
		return nil, err
	}
	p.reconcileNodes(ctx, machines)
	return out, nil
}

// Heal clears the faults of machines and reports the machines that had
// one; their Nodes are Ready again.
func (p *Provisioner) Heal(ctx context.Context, machines []string) ([]string, error) {
	p.mu.Lock()
	var healed []string
	for _, id := range machines {
		if _, ok := p.faults[id]; ok {
			delete(p.faults, id)
			p.healing[id] = true
			healed = append(healed, id)
		}
	}
	err := p.saveFaults()
	p.mu.Unlock()
	if len(healed) == 0 {
		return nil, err
	}
	p.signal()
	if err != nil {
		return nil, err
	}
	p.reconcileNodes(ctx, healed)
	return healed, nil
}

// StartTerm implements provision.TermStarter: it reads the faults file
// again, for a broker replica that takes over from another: the faults that
// one kept become this one's, and a machine it knew as faulted that the
// file no longer lists is healed.
func (p *Provisioner) StartTerm() error {
	faults, err := loadFaults(p.faultsFile)
	if err != nil {
		return err
	}
	p.mu.Lock()
	for id := range p.faults {
		if _, ok := faults[id]; !ok {
			p.healing[id] = true
		}
	}
	for id := range faults {
		delete(p.healing, id)
	}
	p.faults = faults
	p.mu.Unlock()
	p.signal()
	return nil
}

// ListFaults returns the faults by machine.
func (p *Provisioner) ListFaults() []Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Fault, 0, len(p.faults))
	for _, id := range slices.Sorted(maps.Keys(p.faults)) {
		out = append(out, p.faults[id])
	}
	return out
}

// Faults implements provision.HealthChecker.
func (p *Provisioner) Faults(context.Context) (map[string]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]string, len(p.faults))
	for id, f := range p.faults {
		out[id] = f.Message()
	}
	return out, nil
}

// FaultsChanged implements provision.HealthChecker.
func (p *Provisioner) FaultsChanged() <-chan struct{} {
	return p.changed
}

func (p *Provisioner) signal() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// fault returns the fault of a machine, if it has one.
func (p *Provisioner) fault(id string) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.faults[id]
	return f, ok
}

// fixed clears a fault an operation fixed.
func (p *Provisioner) fixed(ctx context.Context, id string) error {
	if _, err := p.Heal(ctx, []string{id}); err != nil {
		return fmt.Errorf("clearing the fault of machine %s: %w", id, err)
	}
	return nil
}

// Run keeps the Nodes of faulted machines NotReady, and those of healed
// machines Ready, until ctx ends: kwok may heart-beat a Node once more after
// it was labelled, and a cluster may be unreachable when a fault is played.
// At the same pace it cleans the local volumes that their claims released
// and offers them again (volumes.go).
func (p *Provisioner) Run(ctx context.Context) error {
	t := p.clock.NewTicker(faultResync)
	defer t.Stop()
	for {
		p.mu.Lock()
		ids := slices.Concat(slices.Collect(maps.Keys(p.faults)), slices.Collect(maps.Keys(p.healing)))
		p.mu.Unlock()
		p.reconcileNodes(ctx, ids)
		p.recycleLocalVolumes(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// reconcileNodes puts the Nodes of machines as their faults say, in every
// cluster the provisioner knows. A healed machine is forgotten once its Node
// was put right (or no cluster has one).
func (p *Provisioner) reconcileNodes(ctx context.Context, machines []string) {
	if len(machines) == 0 {
		return
	}
	kubes, reachable := p.knownClusters(ctx)
	for _, id := range machines {
		f, faulted := p.fault(id)
		done := reachable
		for _, kube := range kubes {
			var want *Fault
			if faulted {
				want = &f
			}
			if err := p.applyFault(ctx, kube, id, want); err != nil {
				done = false
			}
		}
		if done && !faulted {
			p.mu.Lock()
			delete(p.healing, id)
			p.mu.Unlock()
		}
	}
}

// knownClusters returns a client of every cluster the sim holds a
// credential of its own for (Options.Clusters), and whether all of them
// were reached. Playing faults on Nodes is not a kubelet's job, so it is
// done with that credential, not the machines'.
func (p *Provisioner) knownClusters(ctx context.Context) ([]kubernetes.Interface, bool) {
	var kubes []kubernetes.Interface
	all := true
	for _, name := range p.ownClusters() {
		c, err := p.ownCluster(ctx, name)
		if err != nil {
			all = false
			continue
		}
		kubes = append(kubes, c.kube)
	}
	return kubes, all
}

// ownClusters names the clusters of Options.Clusters, sorted.
func (p *Provisioner) ownClusters() []string {
	return slices.Sorted(maps.Keys(p.kubeconfigs))
}

// applyFault makes a machine's Node in one cluster show fault (nil: none),
// writing only what differs. A machine without a Node there is left alone.
func (p *Provisioner) applyFault(ctx context.Context, kube kubernetes.Interface, id string, fault *Fault) error {
	nodes := kube.CoreV1().Nodes()
	node, err := nodes.Get(ctx, id, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	label, labelled := node.Labels[FaultLabel]
	var labels map[string]any
	switch {
	case fault != nil && label != string(fault.FixedBy):
		labels = map[string]any{FaultLabel: string(fault.FixedBy)}
	case fault == nil && labelled:
		labels = map[string]any{FaultLabel: nil}
	}
	if labels != nil {
		// The label first: kwok stops heart-beating before Ready is set.
		if err := patch(ctx, nodes, id, map[string]any{"metadata": map[string]any{"labels": labels}}, types.MergePatchType, ""); err != nil {
			return fmt.Errorf("labelling Node %s: %w", id, err)
		}
	}
	ready := readyCondition(node)
	var cond *corev1.NodeCondition
	now := metav1.NewTime(p.clock.Now())
	switch {
	case fault != nil && (ready == nil || ready.Status != corev1.ConditionFalse || ready.Reason != FaultReason):
		cond = &corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: FaultReason,
			Message: "kubelet stopped posting status: " + fault.Message() + " (strata sim heal)", LastHeartbeatTime: now, LastTransitionTime: now}
	case fault == nil && ready != nil && ready.Reason == FaultReason:
		cond = &corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}
	}
	if cond != nil {
		// A strategic merge patch replaces the condition of its type only.
		body := map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{*cond}}}
		if err := patch(ctx, nodes, id, body, types.StrategicMergePatchType, "status"); err != nil {
			return fmt.Errorf("setting the Ready condition of Node %s: %w", id, err)
		}
	}
	return nil
}

func patch(ctx context.Context, nodes corev1client.NodeInterface, name string, body any, pt types.PatchType, subresource string) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var sub []string
	if subresource != "" {
		sub = []string{subresource}
	}
	_, err = nodes.Patch(ctx, name, pt, raw, metav1.PatchOptions{FieldManager: fieldManager}, sub...)
	return err
}

// readyCondition is a Node's Ready condition, nil when it has none.
func readyCondition(node *corev1.Node) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}
