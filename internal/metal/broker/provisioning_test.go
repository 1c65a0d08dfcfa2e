package broker_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/provision"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// fakeProvisioner records what it is asked; joins, wipes and maintenance
// can be held until released, joins made to fail, maintenance given errors
// to return, and faults reported.
type fakeProvisioner struct {
	mu        sync.Mutex
	joins     map[string][]joinCall
	wipes     map[string]int
	maintains map[string][]maintainCall
	cancelled map[string]int
	failing   error
	holdJoins chan struct{}
	holdWipes chan struct{}
	// holdMaintain holds Maintain; maintainErrs are what successive
	// Maintain calls of a machine return (nil once they run out).
	holdMaintain chan struct{}
	maintainErrs map[string][]error
	faults       map[string]string
	changed      chan struct{}
}

type joinCall struct {
	machine provision.Machine
	target  provision.Target
}

type maintainCall struct {
	machine provision.Machine
	op      provision.Operation
	target  provision.Target
}

var _ provision.HealthChecker = (*fakeProvisioner)(nil)

func newFakeProvisioner() *fakeProvisioner {
	return &fakeProvisioner{
		joins: map[string][]joinCall{}, wipes: map[string]int{}, cancelled: map[string]int{},
		maintains: map[string][]maintainCall{}, maintainErrs: map[string][]error{}, faults: map[string]string{},
		changed: make(chan struct{}, 1),
	}
}

func (f *fakeProvisioner) Maintain(ctx context.Context, m provision.Machine, op provision.Operation, target provision.Target) error {
	f.mu.Lock()
	f.maintains[m.ID] = append(f.maintains[m.ID], maintainCall{m, op, target})
	hold := f.holdMaintain
	var err error
	if errs := f.maintainErrs[m.ID]; len(errs) > 0 {
		err, f.maintainErrs[m.ID] = errs[0], errs[1:]
	}
	f.mu.Unlock()
	if err := f.wait(ctx, m.ID, hold); err != nil {
		return err
	}
	return err
}

func (f *fakeProvisioner) Faults(context.Context) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.faults), nil
}

func (f *fakeProvisioner) FaultsChanged() <-chan struct{} { return f.changed }

// setFault reports a fault of a machine ("" clears it) and says so.
func (f *fakeProvisioner) setFault(id, message string) {
	f.mu.Lock()
	if message == "" {
		delete(f.faults, id)
	} else {
		f.faults[id] = message
	}
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *fakeProvisioner) Join(ctx context.Context, m provision.Machine, target provision.Target) error {
	f.mu.Lock()
	f.joins[m.ID] = append(f.joins[m.ID], joinCall{m, target})
	hold, failing := f.holdJoins, f.failing
	f.mu.Unlock()
	if err := f.wait(ctx, m.ID, hold); err != nil {
		return err
	}
	return failing
}

func (f *fakeProvisioner) Wipe(ctx context.Context, m provision.Machine) error {
	f.mu.Lock()
	f.wipes[m.ID]++
	hold := f.holdWipes
	f.mu.Unlock()
	return f.wait(ctx, m.ID, hold)
}

func (f *fakeProvisioner) wait(ctx context.Context, id string, hold chan struct{}) error {
	if hold == nil {
		return nil
	}
	select {
	case <-hold:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		f.cancelled[id]++
		f.mu.Unlock()
		return ctx.Err()
	}
}

// read runs fn under the fake's lock.
func (f *fakeProvisioner) read(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// eventually waits for cond while the fake clock moves on, so the broker's
// timers (flushes, retries, resyncs) fire without the test sleeping for them.
func eventually(t *testing.T, clock *clocktesting.FakeClock, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		clock.Step(100 * time.Millisecond)
		time.Sleep(2 * time.Millisecond)
	}
}

func startProvisioning(t *testing.T, dsn string, fake *fakeProvisioner) (*env, *clocktesting.FakeClock) {
	t.Helper()
	clock := clocktesting.NewFakeClock(time.Now())
	// A resync of a day: whatever happens in these tests happens because
	// the broker reacted, not because a periodic reconcile came by.
	return startWith(t, dsn, broker.ServerOptions{}, broker.Options{Provisioner: fake, Clock: clock, ResyncInterval: 24 * time.Hour}), clock
}

// inProvision lists the members of a pool in a provision state.
func (e *env) inProvision(t *testing.T, pool string, state brokerv1.ProvisionState) []*brokerv1.Machine {
	t.Helper()
	var out []*brokerv1.Machine
	for _, m := range e.allMachines(t) {
		if m.GetPool() == pool && m.GetProvisionState() == state {
			out = append(out, m)
		}
	}
	return out
}

func TestProvisioningJoinsAndWipes(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		fake := newFakeProvisioner()
		e, clock := startProvisioning(t, dsn, fake)
		e.profile(t, general)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		watch, err := e.client.WatchPools(ctx, &brokerv1.WatchPoolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		e.joinedPool(t, "general", 20)
		eventually(t, clock, "pool web has 20 joined machines", func() bool {
			return e.getPool(t, "web").GetStatus().GetJoined() == 20
		})
		for _, m := range e.members(t, 0) {
			if m.GetProvisionState() != brokerv1.ProvisionState_PROVISION_STATE_JOINED || m.GetSoftware().GetNodeConfig() != "kubelet-1.37" {
				t.Errorf("machine %s = %s, node config %q; want joined on the profile's kubelet-1.37", m.GetId(), m.GetProvisionState(), m.GetSoftware().GetNodeConfig())
			}
			fake.read(func() {
				calls := fake.joins[m.GetId()]
				if len(calls) != 1 {
					t.Errorf("machine %s joined %d times, want once", m.GetId(), len(calls))
					return
				}
				want := provision.Machine{
					ID: m.GetId(), Datacenter: "dc1", MaintenanceZone: m.GetMaintenanceZone(), Rack: m.GetRack(),
					SKU: calls[0].machine.SKU, OSImage: m.GetSoftware().GetOsImage(), Kernel: m.GetSoftware().GetKernel(),
					NodeConfig: "kubelet-1.37", Pool: "web",
				}
				if diff := cmp.Diff(want, calls[0].machine); diff != "" || calls[0].machine.SKU.Name != m.GetSku().GetName() || calls[0].machine.SKU.CPUCores == 0 {
					t.Errorf("machine as the provisioner got it (-want +got):\n%s\nSKU %+v", diff, calls[0].machine.SKU)
				}
				wantTarget := provision.Target{
					Cluster: "workload-1", APIServer: testAPIServer, CABundle: testCA, BootstrapToken: testToken,
					NodeLabels: map[string]string{fleetv1alpha1.PoolLabel: "web"},
					NodeTaints: []corev1.Taint{{Key: fleetv1alpha1.StartupTaintKey, Effect: corev1.TaintEffectNoSchedule}},
				}
				if diff := cmp.Diff(wantTarget, calls[0].target); diff != "" {
					t.Errorf("join target as the provisioner got it (-want +got):\n%s", diff)
				}
			})
		}
		// Watchers heard of the joins.
		for {
			ev, err := watch.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetType() == brokerv1.EventType_EVENT_TYPE_MODIFIED && ev.GetPool().GetStatus().GetJoined() == 20 {
				break
			}
		}

		// Released machines are wiped, then clean and available again.
		e.resize(t, 15)
		released := e.approveShrinks(t, 5)
		for _, d := range released {
			eventually(t, clock, "machine "+d.GetMachine()+" is clean", func() bool {
				return e.machine(t, d.GetMachine()).GetProvisionState() == brokerv1.ProvisionState_PROVISION_STATE_CLEAN
			})
			m := e.machine(t, d.GetMachine())
			if m.GetSoftware().GetNodeConfig() != "" || m.GetState() != brokerv1.MachineState_MACHINE_STATE_AVAILABLE {
				t.Errorf("wiped machine = %s, node config %q; want available, none", m.GetState(), m.GetSoftware().GetNodeConfig())
			}
			fake.read(func() {
				if fake.wipes[d.GetMachine()] != 1 {
					t.Errorf("machine %s wiped %d times, want once", d.GetMachine(), fake.wipes[d.GetMachine()])
				}
			})
		}
		if p := e.getPool(t, "web"); p.GetStatus().GetJoined() != 15 || condition(p).GetStatus() != "True" {
			t.Errorf("pool after the shrink = %v", p.GetStatus())
		}
		checkInvariants(t, e)
	})
}

func TestProvisioningCancelsTheJoinOfAReleasedMachine(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		fake := newFakeProvisioner()
		fake.holdJoins = make(chan struct{})
		e, clock := startProvisioning(t, dsn, fake)
		e.profile(t, general)
		e.joinedPool(t, "general", 2)
		eventually(t, clock, "two joins are under way", func() bool {
			n := 0
			fake.read(func() { n = len(fake.joins) })
			return n == 2 && len(e.inProvision(t, "web", brokerv1.ProvisionState_PROVISION_STATE_JOINING)) == 2
		})
		e.resize(t, 1)
		gone := e.approveShrinks(t, 1)[0].GetMachine()
		if m := e.machine(t, gone); m.GetProvisionState() != brokerv1.ProvisionState_PROVISION_STATE_WIPING {
			t.Errorf("machine released while joining is %s, want wiping", m.GetProvisionState())
		}
		eventually(t, clock, "the released machine is clean", func() bool {
			return e.machine(t, gone).GetProvisionState() == brokerv1.ProvisionState_PROVISION_STATE_CLEAN
		})
		fake.read(func() {
			if fake.cancelled[gone] != 1 || fake.wipes[gone] != 1 {
				t.Errorf("released machine: join cancelled %d times, wiped %d times; want once each", fake.cancelled[gone], fake.wipes[gone])
			}
		})
		stays := e.members(t, 0)[0]
		if stays.GetProvisionState() != brokerv1.ProvisionState_PROVISION_STATE_JOINING {
			t.Errorf("the machine that stays is %s, want still joining", stays.GetProvisionState())
		}
		close(fake.holdJoins)
		eventually(t, clock, "the machine that stays joined", func() bool {
			return e.getPool(t, "web").GetStatus().GetJoined() == 1
		})
		checkInvariants(t, e)
	})
}

func TestProvisioningRetriesFailedJoins(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		fake := newFakeProvisioner()
		fake.failing = errors.New("dial tcp 10.0.0.1:6443: connection refused")
		e, clock := startProvisioning(t, dsn, fake)
		e.profile(t, general)
		e.joinedPool(t, "general", 3)
		want := "provisioning: joining cluster workload-1 failed, retrying: dial tcp 10.0.0.1:6443: connection refused"
		eventually(t, clock, "every machine says why it does not join", func() bool {
			for _, m := range e.members(t, 0) {
				if m.GetHealthMessage() != want {
					return false
				}
			}
			return true
		})
		for _, m := range e.members(t, 0) {
			if !m.GetHealthy() || m.GetProvisionState() != brokerv1.ProvisionState_PROVISION_STATE_JOINING {
				t.Errorf("machine %s failing to join = healthy %t, %s; want healthy, still joining", m.GetId(), m.GetHealthy(), m.GetProvisionState())
			}
		}
		eventually(t, clock, "every machine was tried again", func() bool {
			retried := true
			fake.read(func() {
				for _, calls := range fake.joins {
					retried = retried && len(calls) >= 2
				}
			})
			return retried
		})
		fake.read(func() { fake.failing = nil })
		eventually(t, clock, "every machine joined", func() bool { return e.getPool(t, "web").GetStatus().GetJoined() == 3 })
		for _, m := range e.members(t, 0) {
			if m.GetHealthMessage() != "" {
				t.Errorf("machine %s still says %q after it joined", m.GetId(), m.GetHealthMessage())
			}
		}
	})
}

// TestProvisioningAfterARestart stops a broker while machines are joining
// and being wiped; the next broker on the same database finishes both.
func TestProvisioningAfterARestart(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		first := newFakeProvisioner()
		first.holdJoins, first.holdWipes = make(chan struct{}), make(chan struct{})
		e, clock := startProvisioning(t, dsn, first)
		e.profile(t, general)
		e.joinedPool(t, "general", 6)
		eventually(t, clock, "six joins are under way", func() bool {
			n := 0
			first.read(func() { n = len(first.joins) })
			return n == 6
		})
		e.resize(t, 4)
		var wiping []string
		for _, d := range e.approveShrinks(t, 2) {
			wiping = append(wiping, d.GetMachine())
		}
		eventually(t, clock, "two wipes are under way", func() bool {
			n := 0
			first.read(func() { n = len(first.wipes) })
			return n == 2
		})
		joining := e.inProvision(t, "web", brokerv1.ProvisionState_PROVISION_STATE_JOINING)
		e.stop(t)
		if len(joining) != 4 {
			t.Fatalf("%d machines joining at the stop, want 4", len(joining))
		}

		second := newFakeProvisioner()
		again, clock := startProvisioning(t, dsn, second)
		eventually(t, clock, "the pool's machines joined", func() bool { return again.getPool(t, "web").GetStatus().GetJoined() == 4 })
		for _, id := range wiping {
			eventually(t, clock, "machine "+id+" is clean", func() bool {
				return again.machine(t, id).GetProvisionState() == brokerv1.ProvisionState_PROVISION_STATE_CLEAN
			})
		}
		second.read(func() {
			for _, m := range joining {
				if n := len(second.joins[m.GetId()]); n != 1 {
					t.Errorf("machine %s joined %d times after the restart, want once", m.GetId(), n)
				}
			}
			for _, id := range wiping {
				if second.wipes[id] != 1 {
					t.Errorf("machine %s wiped %d times after the restart, want once", id, second.wipes[id])
				}
			}
		})
		checkInvariants(t, again)
	})
}

// TestWipedMachinesReturnPromptly: a pool short of machines takes them as
// soon as they are wiped, without waiting for a resync.
func TestWipedMachinesReturnPromptly(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		fake := newFakeProvisioner()
		fake.holdWipes = make(chan struct{})
		e, clock := startProvisioning(t, dsn, fake)
		e.profile(t, &brokerv1.NodeProfile{Name: "gpu", MinGpus: 8, GpuModel: "nvidia-h100", NodeConfig: "kubelet-1.37-gpu"})
		all := e.joinedPool(t, "gpu", 1000).GetStatus().GetAllocated()
		eventually(t, clock, "every GPU machine joined", func() bool { return e.getPool(t, "web").GetStatus().GetJoined() == all })
		if _, err := e.client.DeletePool(t.Context(), &brokerv1.DeletePoolRequest{Name: "web"}); err != nil {
			t.Fatal(err)
		}
		e.approveShrinks(t, int(all))
		train := e.pool(t, "train", "gpu", 8)
		if got := train.GetStatus().GetAllocated(); got != 0 {
			t.Fatalf("pool train got %d machines that are being wiped", got)
		}
		close(fake.holdWipes)
		eventually(t, clock, "pool train has its 8 machines", func() bool {
			return e.getPool(t, "train").GetStatus().GetAllocated() == 8
		})
		checkInvariants(t, e)
	})
}

func TestMachineShowsProvisionState(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		fake := newFakeProvisioner()
		fake.holdJoins = make(chan struct{})
		e, clock := startProvisioning(t, dsn, fake)
		e.profile(t, general)
		e.joinedPool(t, "general", 1)
		eventually(t, clock, "the machine is joining", func() bool {
			return len(e.inProvision(t, "web", brokerv1.ProvisionState_PROVISION_STATE_JOINING)) == 1
		})
		m := e.members(t, 0)[0]
		got := e.machine(t, m.GetId())
		if got.GetProvisionState() != brokerv1.ProvisionState_PROVISION_STATE_JOINING {
			t.Errorf("GetMachine says %s, ListMachines joining", got.GetProvisionState())
		}
		close(fake.holdJoins)
		eventually(t, clock, fmt.Sprintf("machine %s joined", m.GetId()), func() bool {
			return strings.HasSuffix(e.machine(t, m.GetId()).GetProvisionState().String(), "JOINED")
		})
	})
}
