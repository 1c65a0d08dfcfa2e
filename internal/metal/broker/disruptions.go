package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-dev/strata/internal/metal/inventory"
)

// Budget bounds how much of the fleet is disrupted at once, whatever the
// source: planned maintenance, repairs, remediation.
type Budget struct {
	// MaxPlannedZones is how many maintenance zones of a datacenter may have
	// planned upgrades open at once.
	MaxPlannedZones int
	// MaxPoolDisruptedPercent is the share of a pool's capacity that may be
	// under open disruptions at once; at least one machine is always allowed.
	MaxPoolDisruptedPercent int
}

// DefaultBudget is one maintenance zone per datacenter, 10% of a pool.
var DefaultBudget = Budget{MaxPlannedZones: 1, MaxPoolDisruptedPercent: 10}

// Validate says what is wrong with a budget.
func (b Budget) Validate() error {
	if b.MaxPlannedZones < 1 {
		return fmt.Errorf("the budget's max planned zones must be at least 1, not %d", b.MaxPlannedZones)
	}
	if b.MaxPoolDisruptedPercent < 1 || b.MaxPoolDisruptedPercent > 100 {
		return fmt.Errorf("the budget's max pool disrupted percent must be within 1..100, not %d", b.MaxPoolDisruptedPercent)
	}
	return nil
}

// poolAllowance is how many of a pool's machines may be disrupted at once.
func (b Budget) poolAllowance(capacity int32) int {
	return max(1, int(capacity)*b.MaxPoolDisruptedPercent/100)
}

// openStates are the states of a disruption that counts against the budget.
var openStates = inventory.OpenDisruptionStates

// openDisruptionMachines returns the machines of a datacenter under an open disruption.
func openDisruptionMachines(ctx context.Context, tx inventory.Tx, datacenter string) (map[string]bool, error) {
	open, err := tx.ListDisruptions(ctx, inventory.DisruptionFilter{Datacenter: datacenter, States: openStates})
	if err != nil {
		return nil, err
	}
	machines := make(map[string]bool, len(open))
	for _, d := range open {
		machines[d.Machine] = true
	}
	return machines, nil
}

// disruptionRequest is a validated request for a disruption.
type disruptionRequest struct {
	Machine   string
	Reason    inventory.DisruptionReason
	By        actor
	Message   string
	Operation inventory.Operation
}

// createDisruption records a Pending disruption when the budget allows it,
// and refuses it with FailedPrecondition and the reason otherwise.
func createDisruption(ctx context.Context, tx inventory.Tx, budget Budget, req disruptionRequest, now time.Time) (inventory.Disruption, error) {
	return (&openCache{}).create(ctx, tx, budget, req, now)
}

// openCache holds the open disruptions of the datacenters a transaction
// creates disruptions in, read once and kept up to date by create: a batch
// of creations reads them once, not once per machine.
type openCache struct {
	byDatacenter map[string][]inventory.Disruption
}

// create is createDisruption with the open disruptions from the cache.
func (c *openCache) create(ctx context.Context, tx inventory.Tx, budget Budget, req disruptionRequest, now time.Time) (inventory.Disruption, error) {
	m, err := tx.GetMachine(ctx, req.Machine)
	if errors.Is(err, inventory.ErrNotFound) {
		return inventory.Disruption{}, status.Errorf(codes.NotFound, "machine %q does not exist", req.Machine)
	}
	if err != nil {
		return inventory.Disruption{}, err
	}
	if m.State == inventory.MachineDecommissioned {
		return inventory.Disruption{}, status.Errorf(codes.FailedPrecondition, "machine %s is decommissioned", m.ID)
	}
	if req.Operation.Kind == inventory.OperationReplace && m.Pool == "" {
		return inventory.Disruption{}, status.Errorf(codes.FailedPrecondition,
			"operation.kind replace takes a machine out of its pool, and machine %s is in none", m.ID)
	}
	if c.byDatacenter == nil {
		c.byDatacenter = map[string][]inventory.Disruption{}
	}
	open, ok := c.byDatacenter[m.Datacenter]
	if !ok {
		if open, err = tx.ListDisruptions(ctx, inventory.DisruptionFilter{Datacenter: m.Datacenter, States: openStates}); err != nil {
			return inventory.Disruption{}, err
		}
	}
	if err := checkBudget(ctx, tx, budget, m, req.Reason, open); err != nil {
		c.byDatacenter[m.Datacenter] = open
		return inventory.Disruption{}, err
	}
	d, err := recordDisruption(ctx, tx, inventory.Disruption{
		Machine: m.ID, Pool: m.Pool, Datacenter: m.Datacenter, MaintenanceZone: m.MaintenanceZone,
		Reason: req.Reason, Actor: req.By.name, OnBehalfOf: req.By.onBehalfOf, Message: req.Message, Operation: req.Operation,
	}, now)
	if err != nil {
		return d, err
	}
	c.byDatacenter[m.Datacenter] = append(open, d)
	return d, nil
}

// recordDisruption inserts d, Pending, with a new ID and its first history
// step. The caller has checked that it may exist.
func recordDisruption(ctx context.Context, tx inventory.Tx, d inventory.Disruption, now time.Time) (inventory.Disruption, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return inventory.Disruption{}, err
	}
	d.ID, d.State, d.CreatedAt, d.UpdatedAt = "d-"+id.String(), inventory.DisruptionPending, now, now
	if err := tx.InsertDisruption(ctx, d); err != nil {
		return inventory.Disruption{}, fmt.Errorf("recording disruption of %s: %w", d.Machine, err)
	}
	return d, tx.InsertEvent(ctx, inventory.DisruptionEvent{
		DisruptionID: d.ID, To: d.State, Actor: d.Actor, OnBehalfOf: d.OnBehalfOf, Message: d.Message, At: now,
	})
}

// completePoolShrink finishes an approved pool-shrink disruption in the
// approving transaction: the pool gives the machine up, so nothing is left to
// perform. The machine leaves the pool and, if it joined (or was joining) the
// cluster, is wiped before it is available again.
func completePoolShrink(ctx context.Context, tx inventory.Tx, d inventory.Disruption, now time.Time) (inventory.Disruption, error) {
	m, err := tx.GetMachine(ctx, d.Machine)
	if err != nil {
		return d, err
	}
	msg := fmt.Sprintf("machine left pool %s", d.Pool)
	switch {
	case m.Pool != d.Pool:
		msg = fmt.Sprintf("machine had already left pool %s", d.Pool)
	default:
		if err := tx.ReleaseMachines(ctx, []string{m.ID}); err != nil {
			return d, err
		}
		if m.Provision.Released() == inventory.ProvisionWiping {
			msg += "; it is wiped before it is available again"
		}
	}
	d.State, d.UpdatedAt = inventory.DisruptionCompleted, now
	if err := tx.UpdateDisruption(ctx, d); err != nil {
		return d, err
	}
	return d, tx.InsertEvent(ctx, inventory.DisruptionEvent{
		DisruptionID: d.ID, From: inventory.DisruptionApproved, To: d.State, Actor: brokerActor.name, Message: msg, At: now,
	})
}

// checkBudget refuses a disruption of m that would exceed the budget, given
// the datacenter's open disruptions. Pool-shrink disruptions count against a
// pool's share like any other, but the broker creates them itself, without
// this check: the pool gives the machine up, and its workloads are protected
// by their PodDisruptionBudgets while the Node drains.
func checkBudget(ctx context.Context, tx inventory.Tx, budget Budget, m inventory.Machine, reason inventory.DisruptionReason, open []inventory.Disruption) error {
	plannedZones := map[int32]bool{}
	poolOpen := 0
	for _, d := range open {
		if d.Machine == m.ID {
			return status.Errorf(codes.FailedPrecondition, "machine %s already has open disruption %s (%s, %s by %s)", m.ID, d.ID, d.State, d.Reason, d.Actor)
		}
		if d.Reason == inventory.ReasonPlannedUpgrade {
			plannedZones[d.MaintenanceZone] = true
		}
		if m.Pool != "" && d.Pool == m.Pool {
			poolOpen++
		}
	}
	if reason == inventory.ReasonPlannedUpgrade && !plannedZones[m.MaintenanceZone] && len(plannedZones) >= budget.MaxPlannedZones {
		return status.Errorf(codes.FailedPrecondition,
			"over budget: datacenter %s already has planned maintenance open in MZ %s, and at most %d MZ may be in planned maintenance at once; finish or cancel those disruptions first",
			m.Datacenter, zoneList(plannedZones), budget.MaxPlannedZones)
	}
	if m.Pool == "" {
		return nil
	}
	pool, err := tx.GetPool(ctx, m.Pool)
	if err != nil {
		return fmt.Errorf("reading pool %s of machine %s: %w", m.Pool, m.ID, err)
	}
	if allowed := budget.poolAllowance(pool.Capacity); poolOpen+1 > allowed {
		return status.Errorf(codes.FailedPrecondition,
			"over budget: pool %s already has %d open disruptions and may have at most %d (%d%% of capacity %d) at once",
			pool.Name, poolOpen, allowed, budget.MaxPoolDisruptedPercent, pool.Capacity)
	}
	return nil
}

func zoneList(zones map[int32]bool) string {
	var zs []int
	for z := range zones {
		zs = append(zs, int(z))
	}
	sort.Ints(zs)
	parts := make([]string, len(zs))
	for i, z := range zs {
		parts[i] = fmt.Sprint(z)
	}
	return strings.Join(parts, ", ")
}

// transitions are the protocol's legal moves: the states each may start
// from. Only the broker fails a disruption, when its operation failed.
var transitions = map[inventory.DisruptionState][]inventory.DisruptionState{
	inventory.DisruptionApproved:   {inventory.DisruptionPending},
	inventory.DisruptionInProgress: {inventory.DisruptionApproved},
	inventory.DisruptionCompleted:  {inventory.DisruptionInProgress},
	inventory.DisruptionCancelled:  openStates,
	inventory.DisruptionFailed:     {inventory.DisruptionInProgress},
}

// transition moves a disruption to state to, records who did it and why, and
// updates the machine: disrupted while InProgress, back in service after
// (allocated in its pool; outside any, available or unhealthy), out of its
// pool for good after a completed decommission. It reports
// whether the machine changed.
func transition(ctx context.Context, tx inventory.Tx, id string, to inventory.DisruptionState, by actor, message string,
	software *inventory.Software, now time.Time) (inventory.Disruption, bool, error) {
	d, err := tx.GetDisruption(ctx, id)
	if errors.Is(err, inventory.ErrNotFound) {
		return d, false, status.Errorf(codes.NotFound, "disruption %q does not exist", id)
	}
	if err != nil {
		return d, false, err
	}
	if !slices.Contains(transitions[to], d.State) {
		return d, false, status.Errorf(codes.FailedPrecondition, "disruption %s is %s; it cannot become %s (only from %s)",
			id, d.State, to, stateList(transitions[to]))
	}
	if to == inventory.DisruptionCancelled && d.State == inventory.DisruptionInProgress && d.Operation.Kind != inventory.OperationNone {
		// Called off halfway, a reimage leaves a machine nobody can vouch for.
		return d, false, status.Errorf(codes.FailedPrecondition,
			"disruption %s is performing its %s; it cannot be cancelled now: the broker completes it, or fails it, by itself", id, d.Operation.Kind)
	}
	from := d.State
	d.State, d.UpdatedAt = to, now
	if err := tx.UpdateDisruption(ctx, d); err != nil {
		return d, false, err
	}
	if err := tx.InsertEvent(ctx, inventory.DisruptionEvent{
		DisruptionID: id, From: from, To: to, Actor: by.name, OnBehalfOf: by.onBehalfOf, Message: message, At: now,
	}); err != nil {
		return d, false, err
	}
	m, err := tx.GetMachine(ctx, d.Machine)
	if err != nil {
		return d, false, err
	}
	switch {
	case to == inventory.DisruptionInProgress:
		m.State = inventory.MachineDisrupted
	case to == inventory.DisruptionCompleted && d.Reason == inventory.ReasonDecommission:
		m.State, m.Pool, m.Provision = inventory.MachineDecommissioned, "", m.Provision.Released()
	case from == inventory.DisruptionInProgress:
		m.State = restState(m)
		if software != nil && to == inventory.DisruptionCompleted {
			m.Software = *software
		}
	default:
		return d, false, nil
	}
	m.UpdatedAt = now
	return d, true, tx.UpdateMachine(ctx, m)
}

func stateList(states []inventory.DisruptionState) string {
	parts := make([]string, len(states))
	for i, s := range states {
		parts[i] = string(s)
	}
	return strings.Join(parts, " or ")
}
