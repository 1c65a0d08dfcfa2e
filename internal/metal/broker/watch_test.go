package broker

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/testutil"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// recorder is a machine watch's client: the events it was sent, as
// "TYPE id" ("SYNCED" for the marker), and the machines.
type recorder struct {
	events   []string
	machines []*brokerv1.Machine
}

func (r *recorder) send(resp *brokerv1.WatchMachinesResponse) error {
	if resp.GetSynced() {
		r.events = append(r.events, "SYNCED")
		return nil
	}
	r.events = append(r.events, resp.GetType().String()+" "+resp.GetMachine().GetId())
	r.machines = append(r.machines, resp.GetMachine())
	return nil
}

// take returns what was sent since the last take.
func (r *recorder) take() ([]string, []*brokerv1.Machine) {
	events, machines := r.events, r.machines
	r.events, r.machines = nil, nil
	return events, machines
}

func events(typ brokerv1.EventType, ms []*brokerv1.Machine) []string {
	var out []string
	for _, m := range ms {
		out = append(out, typ.String()+" "+m.GetId())
	}
	return out
}

// TestMachineWatchReads drives a machine watch's reads by hand, pages of 7,
// on both engines: the listing is the inventory; a read finds what was
// written since, once, by update time, and what became visible after a
// later write was read (stamped before the mark, within the slack).
func TestMachineWatchReads(t *testing.T) {
	for _, db := range testutil.Databases(t) {
		t.Run(db.Name, func(t *testing.T) { testMachineWatchReads(t, db.NewDSN(t)) })
	}
}

func testMachineWatchReads(t *testing.T, dsn string) {
	ctx := t.Context()
	store, err := inventory.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if _, err := inventory.Seed(ctx, store, inventory.GenerateOptions{Seed: 1, Datacenter: "dc1", Machines: 60, MaintenanceZones: 4}); err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Store: store, Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	list := func() []*brokerv1.Machine {
		t.Helper()
		resp, err := b.ListMachines(ctx, &brokerv1.ListMachinesRequest{PageSize: maxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetMachines()
	}
	watch := func(dc string) (*machineWatch, *recorder) {
		r := &recorder{}
		return &machineWatch{b: b, dc: dc, page: 7, send: r.send, sent: map[string]time.Time{}}, r
	}
	all, allRec := watch("")
	dc1, dc1Rec := watch("dc1")

	before := list()
	for _, w := range []*machineWatch{all, dc1} {
		if err := w.list(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for name, r := range map[string]*recorder{"every datacenter": allRec, "dc1": dc1Rec} {
		got, machines := r.take()
		if diff := cmp.Diff(events(brokerv1.EventType_EVENT_TYPE_ADDED, before), got); diff != "" {
			t.Errorf("listing of %s (-want +got):\n%s", name, diff)
		}
		if diff := cmp.Diff(before, machines, protocmp.Transform()); diff != "" {
			t.Errorf("machines listed for %s (-want +got):\n%s", name, diff)
		}
	}

	// Nothing was written: a read sends nothing, though it reads the 60
	// machines seeded within the slack again, 7 at a time.
	if err := all.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := allRec.take(); len(got) != 0 {
		t.Errorf("a read with nothing written sent %v", got)
	}

	// Two writes: the second machine twice, the first once.
	update := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			if err := store.InTx(ctx, func(ctx context.Context, tx inventory.Tx) error {
				m, err := tx.GetMachine(ctx, id)
				if err != nil {
					return err
				}
				m.Healthy, m.HealthMessage = false, "hardware: disk failed"
				return tx.UpdateMachine(ctx, m)
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	first, second := before[50].GetId(), before[3].GetId()
	update(second, first, second)
	if err := all.poll(ctx); err != nil {
		t.Fatal(err)
	}
	got, machines := allRec.take()
	if diff := cmp.Diff([]string{"EVENT_TYPE_MODIFIED " + first, "EVENT_TYPE_MODIFIED " + second}, got); diff != "" {
		t.Errorf("read after the writes, by update time (-want +got):\n%s", diff)
	}
	current := map[string]*brokerv1.Machine{}
	for _, m := range list() {
		current[m.GetId()] = m
	}
	for _, m := range machines {
		if diff := cmp.Diff(current[m.GetId()], m, protocmp.Transform()); diff != "" {
			t.Errorf("machine %s as sent (-stored +sent):\n%s", m.GetId(), diff)
		}
	}
	if err := all.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := allRec.take(); len(got) != 0 {
		t.Errorf("a second read sent %v again", got)
	}

	// A write that becomes visible after a later one was read: dc2's
	// machines, stamped a second before the mark, within the slack.
	dc, racks, skus, late := inventory.Generate(inventory.GenerateOptions{Seed: 2, Datacenter: "dc2", Machines: 5, MaintenanceZones: 2})
	for i := range late {
		late[i].UpdatedAt = all.mark.Add(-time.Second)
	}
	if err := store.InTx(ctx, func(ctx context.Context, tx inventory.Tx) error {
		return tx.SeedDatacenter(ctx, dc, racks, skus, late)
	}); err != nil {
		t.Fatal(err)
	}
	if err := all.poll(ctx); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range late {
		want = append(want, "EVENT_TYPE_MODIFIED "+m.ID)
	}
	slices.Sort(want) // one update time: by ID
	if got, _ := allRec.take(); !cmp.Equal(want, got) {
		t.Errorf("read after a late write (-want +got):\n%s", cmp.Diff(want, got))
	}

	// The watch of dc1 sees its two changes, not dc2.
	if err := dc1.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"EVENT_TYPE_MODIFIED " + first, "EVENT_TYPE_MODIFIED " + second}, dc1Rec.events); diff != "" {
		t.Errorf("dc1's watch after the writes (-want +got):\n%s", diff)
	}
}

// TestMachineWatchMark: what a machine watch remembers having sent, and
// from where it reads again.
func TestMachineWatchMark(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	at := func(d time.Duration) inventory.Machine {
		return inventory.Machine{ID: "m-" + d.String(), UpdatedAt: t0.Add(d)}
	}
	w := &machineWatch{sent: map[string]time.Time{}}
	if got, want := w.since(), time.Unix(0, 0).UTC(); !got.Equal(want) {
		t.Errorf("since() with no mark = %v, want the epoch: every machine", got)
	}
	w.mark = t0
	if got, want := w.since(), t0.Add(-machineWatchSlack); !got.Equal(want) {
		t.Errorf("since() = %v, want the mark less the slack, %v", got, want)
	}
	old, edge, late := at(-machineWatchSlack-time.Nanosecond), at(-machineWatchSlack), at(time.Second)
	for _, m := range []inventory.Machine{old, edge, late} {
		w.record(m)
	}
	if diff := cmp.Diff(map[string]time.Time{edge.ID: edge.UpdatedAt, late.ID: late.UpdatedAt}, w.sent); diff != "" {
		t.Errorf("recorded (-want +got):\n%s", diff)
	}
	if w.fresh(edge) || w.fresh(late) {
		t.Error("a machine sent as it is is fresh")
	}
	edge.UpdatedAt = edge.UpdatedAt.Add(time.Nanosecond)
	if !w.fresh(edge) || !w.fresh(old) {
		t.Error("a machine written since it was sent, or never sent, is not fresh")
	}

	w.advance(t0.Add(2 * time.Second))
	if diff := cmp.Diff(map[string]time.Time{late.ID: late.UpdatedAt}, w.sent); diff != "" {
		t.Errorf("kept after the mark moved on (-want +got):\n%s", diff)
	}
	// Back: the mark follows (a clock set back), and what is kept stays.
	w.advance(t0)
	if !w.mark.Equal(t0) || len(w.sent) != 1 {
		t.Errorf("after the mark moved back: mark %v, sent %v", w.mark, w.sent)
	}
}
