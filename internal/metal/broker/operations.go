package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/metal/provision"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// The operations the broker performs itself once a disruption with one is
// started, and machine health:
//
//	REBOOT, REIMAGE: the provisioning loop calls the provisioner's Maintain
//	  (retrying transient errors), then completes the disruption (the machine
//	  runs the new software) or, when the machine did not come back
//	  (provision.ErrMachineFault), fails it and marks the machine unhealthy.
//	REPLACE: done when the disruption starts, in the same transaction: the
//	  machine leaves its pool and the pool takes a spare.
//
// A machine's health has two sources, each of which clears only its own
// message: the provisioner's fault report (hardwarePrefix, which wins over
// the other) and failed operations (maintenanceFailedPrefix).
const (
	hardwarePrefix          = "hardware: "
	maintenanceFailedPrefix = "maintenance failed: "
	// maxHealthText bounds the text a health message carries.
	maxHealthText = 400
	// faultsTimeout bounds one poll of the provisioner's faults.
	faultsTimeout = 10 * time.Second
)

// restState is the state of a machine that is under no disruption: in its
// pool, or outside any, available when healthy and unhealthy otherwise.
func restState(m inventory.Machine) inventory.MachineState {
	switch {
	case m.Pool != "":
		return inventory.MachineAllocated
	case !m.Healthy:
		return inventory.MachineUnhealthy
	}
	return inventory.MachineAvailable
}

func truncate(text string) string {
	if len(text) > maxHealthText {
		return text[:maxHealthText] + "..."
	}
	return text
}

// resolveOperation is what the provisioner is asked to do: the software
// the machine runs afterwards has every field set, from the operation's or
// what the machine runs now.
func resolveOperation(op inventory.Operation, current inventory.Software) provision.Operation {
	out := provision.Operation{Kind: op.Kind, Software: current}
	if op.Kind == inventory.OperationReimage {
		out.Software.OSImage = cmp.Or(op.Software.OSImage, current.OSImage)
		out.Software.Kernel = cmp.Or(op.Software.Kernel, current.Kernel)
		out.Software.NodeConfig = cmp.Or(op.Software.NodeConfig, current.NodeConfig)
	}
	return out
}

// maintenanceOp is the provisioning loop's operation for a disruption
// InProgress with a reboot or reimage, or nil when its machine is not ready
// for it. target is the join target of the machine's pool, if it joined.
func maintenanceOp(ctx context.Context, tx inventory.Tx, d inventory.Disruption, specs map[string]joinSpec,
	skus map[string]inventory.SKU) (*provisionOp, error) {
	m, err := tx.GetMachine(ctx, d.Machine)
	if err != nil {
		return nil, err
	}
	op := &provisionOp{
		kind: opMaintain, machine: provisionMachine(m, skus, m.Software.NodeConfig), disruption: d.ID,
		operation: resolveOperation(d.Operation, m.Software),
	}
	if spec, ok := specs[m.Pool]; ok && m.Provision == inventory.ProvisionJoined {
		op.target = spec.target
	}
	return op, nil
}

// operationDone is the message of an operation performed in took.
func operationDone(op provision.Operation, took time.Duration) string {
	took = took.Round(time.Millisecond)
	if took >= time.Second {
		took = took.Round(100 * time.Millisecond)
	}
	if op.Kind == inventory.OperationReimage {
		return fmt.Sprintf("reimaged with node config %s, os image %s in %s", op.Software.NodeConfig, op.Software.OSImage, took)
	}
	return fmt.Sprintf("%s in %s", pastTense(op.Kind), took)
}

func pastTense(k inventory.OperationKind) string {
	switch k {
	case inventory.OperationReboot:
		return "rebooted"
	case inventory.OperationReimage:
		return "reimaged"
	case inventory.OperationReplace:
		return "replaced"
	}
	return string(k)
}

// completeOperation completes the disruption of a performed operation: the
// machine runs the operation's software and is back in service, and a
// maintenance failure it carried is cleared. A disruption that is no longer
// InProgress (cancelled meanwhile) is left as it is. It reports whether it
// completed the disruption.
func (b *Broker) completeOperation(ctx context.Context, tx inventory.Tx, r opResult, now time.Time, events *[]event) (bool, error) {
	d, err := tx.GetDisruption(ctx, r.op.disruption)
	if err != nil || d.State != inventory.DisruptionInProgress {
		return false, ignoreNotFound(err)
	}
	sw := r.op.operation.Software
	d, _, err = transition(ctx, tx, d.ID, inventory.DisruptionCompleted, brokerActor, operationDone(r.op.operation, r.at.Sub(r.op.started)), &sw, now)
	if err != nil {
		return false, err
	}
	m, err := tx.GetMachine(ctx, d.Machine)
	if err != nil {
		return false, err
	}
	if strings.HasPrefix(m.HealthMessage, maintenanceFailedPrefix) {
		m.Healthy, m.HealthMessage = true, ""
		m.State = restState(m)
		if err := tx.UpdateMachine(ctx, m); err != nil {
			return false, err
		}
	}
	return true, b.operationEvents(ctx, tx, d, events)
}

// failOperation fails the disruption of an operation the machine did not
// come back from: the machine stays in its pool, unhealthy, with the
// failure as its health message (unless a hardware fault already says why).
func (b *Broker) failOperation(ctx context.Context, tx inventory.Tx, r opResult, now time.Time, events *[]event) (bool, error) {
	d, err := tx.GetDisruption(ctx, r.op.disruption)
	if err != nil || d.State != inventory.DisruptionInProgress {
		return false, ignoreNotFound(err)
	}
	text := truncate(fmt.Sprintf("%s: %v", r.op.operation.Kind, r.err))
	d, _, err = transition(ctx, tx, d.ID, inventory.DisruptionFailed, brokerActor, text, nil, now)
	if err != nil {
		return false, err
	}
	m, err := tx.GetMachine(ctx, d.Machine)
	if err != nil {
		return false, err
	}
	m.Healthy = false
	if !strings.HasPrefix(m.HealthMessage, hardwarePrefix) {
		m.HealthMessage = maintenanceFailedPrefix + text
	}
	m.State = restState(m)
	if err := tx.UpdateMachine(ctx, m); err != nil {
		return false, err
	}
	return true, b.operationEvents(ctx, tx, d, events)
}

// operationEvents publishes a disruption that ended and its pool.
func (b *Broker) operationEvents(ctx context.Context, tx inventory.Tx, d inventory.Disruption, events *[]event) error {
	*events = append(*events, disruptionEvent(brokerv1.EventType_EVENT_TYPE_MODIFIED, disruptionToAPI(d, nil)))
	if d.Pool == "" {
		return nil
	}
	return b.notifyPool(ctx, tx, d.Pool, events)
}

func ignoreNotFound(err error) error {
	if errors.Is(err, inventory.ErrNotFound) {
		return nil
	}
	return err
}

// completeReplace performs a replace that just started: the machine leaves
// its pool (wiped if it had joined a cluster; unhealthy if it is), the pool
// takes a spare of its profile, in the machine's MZ when the balance allows,
// and the disruption completes with a message that says what happened.
func completeReplace(ctx context.Context, tx inventory.Tx, d inventory.Disruption, now time.Time, events *[]event) (inventory.Disruption, error) {
	m, err := tx.GetMachine(ctx, d.Machine)
	if err != nil {
		return d, err
	}
	var msg string
	if m.Pool != d.Pool || d.Pool == "" {
		msg = fmt.Sprintf("machine had already left pool %s", d.Pool)
	} else {
		if err := tx.ReleaseMachines(ctx, []string{m.ID}); err != nil {
			return d, err
		}
		msg = fmt.Sprintf("machine left pool %s", d.Pool)
		if !m.Healthy {
			msg += fmt.Sprintf(" unhealthy (%s)", m.HealthMessage)
		}
		if m.Provision.Released() == inventory.ProvisionWiping {
			msg += " and is wiped"
		}
		spare, err := takeSpare(ctx, tx, d.Pool, m.MaintenanceZone, now, events)
		if err != nil {
			return d, err
		}
		msg += "; " + spare
	}
	d, _, err = transition(ctx, tx, d.ID, inventory.DisruptionCompleted, brokerActor, "replaced: "+msg, nil, now)
	return d, err
}

// takeSpare reconciles a pool that lost a machine in zone mz and says what
// it took in its place.
func takeSpare(ctx context.Context, tx inventory.Tx, pool string, mz int32, now time.Time, events *[]event) (string, error) {
	before, err := tx.ListPlacements(ctx, inventory.MachineFilter{Pool: pool})
	if err != nil {
		return "", err
	}
	if _, err := reconcilePoolPreferring(ctx, tx, pool, mz, now, events); err != nil {
		return "", fmt.Errorf("taking a spare into pool %s: %w", pool, err)
	}
	after, err := tx.ListPlacements(ctx, inventory.MachineFilter{Pool: pool})
	if err != nil {
		return "", err
	}
	was := map[string]bool{}
	for _, m := range before {
		was[m.ID] = true
	}
	var spares []string
	for _, m := range after {
		if !was[m.ID] {
			spares = append(spares, fmt.Sprintf("%s (MZ %d)", m.ID, m.MaintenanceZone))
		}
	}
	p, err := tx.GetPool(ctx, pool)
	if err != nil {
		return "", err
	}
	switch {
	case len(spares) > 0:
		return fmt.Sprintf("spare %s takes its place", strings.Join(spares, ", ")), nil
	case int(p.Capacity) > len(after) && !p.Deleting:
		return fmt.Sprintf("no spare of node profile %s is available: pool %s holds %d of %d machines", p.Profile, pool, len(after), p.Capacity), nil
	}
	return fmt.Sprintf("pool %s needs no spare (%d machines for capacity %d)", pool, len(after), p.Capacity), nil
}

// applyFaults writes the provisioner's fault report: machines it names are
// unhealthy with a hardware message, machines whose hardware message it no
// longer names are healthy again (and available, outside any pool). Pools
// whose unhealthy count changed are published. It reports how many machines
// became available.
func (b *Broker) applyFaults(ctx context.Context, tx inventory.Tx, faults map[string]string, events *[]event) (int, error) {
	unhealthy, err := tx.ListMachines(ctx, inventory.MachineFilter{UnhealthyOnly: true})
	if err != nil {
		return 0, err
	}
	known := make(map[string]inventory.Machine, len(unhealthy))
	for _, m := range unhealthy {
		known[m.ID] = m
	}
	touched := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(faults)) {
		want := hardwarePrefix + truncate(faults[id])
		m, ok := known[id]
		if !ok {
			if m, err = tx.GetMachine(ctx, id); errors.Is(err, inventory.ErrNotFound) {
				continue // not a machine of this inventory
			} else if err != nil {
				return 0, err
			}
		}
		if !m.Healthy && m.HealthMessage == want {
			continue
		}
		m.Healthy, m.HealthMessage = false, want
		if m.State == inventory.MachineAvailable {
			m.State = inventory.MachineUnhealthy
		}
		if err := tx.UpdateMachine(ctx, m); err != nil {
			return 0, err
		}
		touched[m.Pool] = true
	}
	available := 0
	for _, m := range unhealthy {
		if _, faulty := faults[m.ID]; faulty || !strings.HasPrefix(m.HealthMessage, hardwarePrefix) {
			continue
		}
		m.Healthy, m.HealthMessage = true, ""
		if m.State == inventory.MachineUnhealthy {
			m.State = restState(m)
		}
		if m.State == inventory.MachineAvailable {
			available++
		}
		if err := tx.UpdateMachine(ctx, m); err != nil {
			return 0, err
		}
		touched[m.Pool] = true
	}
	delete(touched, "")
	for _, name := range slices.Sorted(maps.Keys(touched)) {
		if err := b.notifyPool(ctx, tx, name, events); err != nil {
			return 0, err
		}
	}
	return available, nil
}
