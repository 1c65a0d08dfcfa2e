package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-dev/strata/internal/testutil"
)

func TestApply(t *testing.T) {
	for _, db := range testutil.Databases(t) {
		t.Run(db.Name, func(t *testing.T) {
			t.Run("upserts, deletes and revisions", func(t *testing.T) { testApplyRows(t, db.NewDSN(t)) })
			t.Run("relist deletes what vanished", func(t *testing.T) { testRelist(t, db.NewDSN(t)) })
			t.Run("forget a cluster", func(t *testing.T) { testForget(t, db.NewDSN(t)) })
			t.Run("many rows", func(t *testing.T) { testManyRows(t, db.NewDSN(t)) })
		})
	}
}

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func apply(t *testing.T, s *Store, fill func(b *Batch)) int64 {
	t.Helper()
	b := NewBatch()
	fill(b)
	rev, err := s.Apply(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// column runs a query whose rows are one text column.
func column(t *testing.T, s *Store, query string) []string {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close() //nolint:errcheck // test
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func revisions(t *testing.T, s *Store) map[string]int64 {
	t.Helper()
	revs, err := s.Revisions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return revs
}

func testApplyRows(t *testing.T, dsn string) {
	s := open(t, dsn)
	created := time.UnixMilli(1_700_000_000_123).UTC()
	rev1 := apply(t, s, func(b *Batch) {
		b.PutPod(Pod{Cluster: "c1", Namespace: "ns", Name: "web-1", App: "web", Version: "v1", Node: "n1", Phase: "Running",
			Ready: false, Reason: "CrashLoopBackOff", Message: "back-off", Restarts: 3, Created: created})
		b.PutPod(Pod{Cluster: "c1", Namespace: "ns", Name: "web-2", Phase: "Pending"})
		b.PutNode(Node{Cluster: "c1", Name: "n1", Machine: "m1", MaintenanceZone: 3, Ready: "True", Unschedulable: true,
			CPUMilli: 32000, MemoryBytes: 1 << 37, Created: created})
		b.PutObject(Object{Cluster: HubCluster, Kind: KindPool, Name: "p1", Data: []byte(`{"a":1}`)})
		b.PutEvent(Event{Cluster: "c1", Namespace: "ns", Name: "e1", ObjectKind: "StatelessApp", ObjectName: "web",
			Type: "Warning", Reason: "Stuck", Count: 2, LastSeen: created})
		b.PutMachine(Machine{ID: "m1", Datacenter: "dc1", MaintenanceZone: 3, Rack: "r1", State: MachineAllocated, Healthy: true})
		b.PutBrokerPool(BrokerPool{Name: "p1", Datacenter: "dc1", Capacity: 4, Data: []byte(`{}`)})
		b.PutDisruption(Disruption{ID: "d1", Machine: "m1", State: DisruptionInProgress,
			History: []Transition{{From: DisruptionPending, To: DisruptionApproved, Actor: "a", Time: created}}})
		b.SetSource(Source{Cluster: "c1", Kind: KindPod, ResourceVersion: "42", Synced: true, LastSeen: created})
	})
	want := map[string]int64{"": rev1, KindPod: rev1, KindNode: rev1, KindPool: rev1, KindEvent: rev1, KindMachine: rev1,
		KindBrokerPool: rev1, KindDisruption: rev1}
	if diff := cmp.Diff(want, revisions(t, s)); diff != "" {
		t.Errorf("revisions after the first batch (-want +got):\n%s", diff)
	}
	var (
		pod      Pod
		ready    int
		createMs int64
	)
	if err := s.db.QueryRow(`SELECT app, version, node, phase, ready, reason, message, restarts, created FROM pods WHERE name = 'web-1'`).
		Scan(&pod.App, &pod.Version, &pod.Node, &pod.Phase, &ready, &pod.Reason, &pod.Message, &pod.Restarts, &createMs); err != nil {
		t.Fatal(err)
	}
	pod.Ready, pod.Created = ready != 0, fromMillis(createMs)
	wantPod := Pod{App: "web", Version: "v1", Node: "n1", Phase: "Running", Reason: "CrashLoopBackOff", Message: "back-off", Restarts: 3, Created: created}
	if diff := cmp.Diff(wantPod, pod); diff != "" {
		t.Errorf("pod web-1 (-want +got):\n%s", diff)
	}
	if got := column(t, s, `SELECT history FROM disruptions WHERE id = 'd1'`); len(got) != 1 ||
		got[0] != `[{"from":"pending","to":"approved","actor":"a","time":"2023-11-14T22:13:20.123Z"}]` {
		t.Errorf("disruption d1's history = %q", got)
	}
	sources, err := s.Sources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantSources := []Source{{Cluster: "c1", Kind: KindPod, ResourceVersion: "42", Synced: true, LastSeen: created}}
	if diff := cmp.Diff(wantSources, sources); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}

	// An update, a delete and a source's failure: only the kinds changed move.
	rev2 := apply(t, s, func(b *Batch) {
		b.PutPod(Pod{Cluster: "c1", Namespace: "ns", Name: "web-1", Phase: "Running", Ready: true})
		b.Delete(Key{Kind: KindPod, Cluster: "c1", Namespace: "ns", Name: "web-2"})
		b.Delete(Key{Kind: KindMachine, Name: "m1"})
		b.SetSource(Source{Cluster: "c1", Kind: KindPod, ResourceVersion: "42", Synced: true, LastSeen: created,
			LastError: "connection refused", ErrorSince: created})
	})
	if rev2 <= rev1 {
		t.Fatalf("revision went from %d to %d", rev1, rev2)
	}
	want[""], want[KindPod], want[KindMachine] = rev2, rev2, rev2
	if diff := cmp.Diff(want, revisions(t, s)); diff != "" {
		t.Errorf("revisions after the second batch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"web-1 Running 1 " + fmt.Sprint(rev2)},
		column(t, s, `SELECT name || ' ' || phase || ' ' || ready || ' ' || rev FROM pods`)); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}
	if got := column(t, s, `SELECT id FROM machines`); len(got) != 0 {
		t.Errorf("machines after the delete = %q", got)
	}
	if got := column(t, s, `SELECT last_error FROM sources`); len(got) != 1 || got[0] != "connection refused" {
		t.Errorf("source's last_error = %q", got)
	}

	// A later Put of a row replaces an earlier Delete in the same batch, and the other way round.
	apply(t, s, func(b *Batch) {
		b.Delete(Key{Kind: KindPod, Cluster: "c1", Namespace: "ns", Name: "web-1"})
		b.PutPod(Pod{Cluster: "c1", Namespace: "ns", Name: "web-1", Phase: "Succeeded"})
		b.PutNode(Node{Cluster: "c1", Name: "n1"})
		b.Delete(Key{Kind: KindNode, Cluster: "c1", Name: "n1"})
	})
	if diff := cmp.Diff([]string{"web-1 Succeeded"}, column(t, s, `SELECT name || ' ' || phase FROM pods`)); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}
	if got := column(t, s, `SELECT name FROM nodes`); len(got) != 0 {
		t.Errorf("nodes = %q, want none", got)
	}
}

func testRelist(t *testing.T, dsn string) {
	s := open(t, dsn)
	apply(t, s, func(b *Batch) {
		for _, name := range []string{"a", "b", "c"} {
			b.PutPod(Pod{Cluster: "c1", Namespace: "ns", Name: name})
			b.PutPod(Pod{Cluster: "c2", Namespace: "ns", Name: name})
			b.PutObject(Object{Cluster: "c1", Kind: KindStatelessApp, Namespace: "ns", Name: name, Data: []byte(`{}`)})
			b.PutMachine(Machine{ID: name, State: MachineAvailable})
		}
		b.PutObject(Object{Cluster: "c1", Kind: KindStatefulApp, Namespace: "ns", Name: "a", Data: []byte(`{}`)})
	})
	// c1's pods and StatelessApps and the machines are listed again in two
	// batches; b is gone from them. Another cluster and kind keep theirs.
	since := apply(t, s, func(b *Batch) {
		b.PutPod(Pod{Cluster: "c1", Namespace: "ns", Name: "a"})
		b.PutObject(Object{Cluster: "c1", Kind: KindStatelessApp, Namespace: "ns", Name: "a", Data: []byte(`{}`)})
		b.PutMachine(Machine{ID: "a", State: MachineAvailable})
	})
	before := revisions(t, s)
	end := apply(t, s, func(b *Batch) {
		b.PutPod(Pod{Cluster: "c1", Namespace: "ns", Name: "c"})
		b.PutObject(Object{Cluster: "c1", Kind: KindStatelessApp, Namespace: "ns", Name: "c", Data: []byte(`{}`)})
		b.PutMachine(Machine{ID: "c", State: MachineAvailable})
		b.EndRelist("c1", KindPod, since)
		b.EndRelist("c1", KindStatelessApp, since)
		b.EndRelist(BrokerSource, KindMachine, since)
	})
	for _, tc := range []struct{ query, want string }{
		{`SELECT cluster || '/' || name FROM pods ORDER BY cluster, name`, "c1/a c1/c c2/a c2/b c2/c"},
		{`SELECT kind || '/' || name FROM objects ORDER BY kind, name`, "StatefulApp/a StatelessApp/a StatelessApp/c"},
		{`SELECT id FROM machines ORDER BY id`, "a c"},
	} {
		if diff := cmp.Diff(tc.want, strings.Join(column(t, s, tc.query), " ")); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.query, diff)
		}
	}
	after := revisions(t, s)
	if after[KindPod] != end || after[KindMachine] != end || after[KindStatefulApp] != before[KindStatefulApp] {
		t.Errorf("revisions after the relist = %v, want Pod and BrokerMachine at %d, StatefulApp unchanged", after, end)
	}
	// A relist that begins and ends in one batch (since 0) keeps what the batch wrote.
	apply(t, s, func(b *Batch) {
		b.PutPod(Pod{Cluster: "c2", Namespace: "ns", Name: "old"})
		b.DropPending("c2", KindPod)
		b.PutPod(Pod{Cluster: "c2", Namespace: "ns", Name: "b"})
		b.EndRelist("c2", KindPod, 0)
	})
	if diff := cmp.Diff("c2/b", strings.Join(column(t, s, `SELECT cluster || '/' || name FROM pods WHERE cluster = 'c2'`), " ")); diff != "" {
		t.Errorf("c2's pods after a relist in one batch (-want +got):\n%s", diff)
	}
}

func testForget(t *testing.T, dsn string) {
	s := open(t, dsn)
	apply(t, s, func(b *Batch) {
		for _, c := range []string{"c1", "c2"} {
			b.PutPod(Pod{Cluster: c, Namespace: "ns", Name: "p"})
			b.PutNode(Node{Cluster: c, Name: "n"})
			b.PutEvent(Event{Cluster: c, Namespace: "ns", Name: "e", ObjectKind: "Node", ObjectName: "n"})
			b.PutObject(Object{Cluster: c, Kind: KindStatefulApp, Namespace: "ns", Name: "a", Data: []byte(`{}`)})
			b.SetSource(Source{Cluster: c, Kind: KindPod})
		}
	})
	rev := apply(t, s, func(b *Batch) {
		b.PutPod(Pod{Cluster: "c1", Namespace: "ns", Name: "pending"}) // dropped by Forget
		b.Forget("c1")
	})
	for _, table := range []string{"pods", "nodes", "events", "objects", "sources"} {
		if diff := cmp.Diff([]string{"c2"}, column(t, s, `SELECT DISTINCT cluster FROM `+table)); diff != "" {
			t.Errorf("clusters of %s (-want +got):\n%s", table, diff)
		}
	}
	revs := revisions(t, s)
	for _, kind := range []string{KindPod, KindNode, KindEvent, KindStatefulApp} {
		if revs[kind] != rev {
			t.Errorf("revision of %s = %d, want %d", kind, revs[kind], rev)
		}
	}
}

// testManyRows writes more rows in one batch than one statement can bind.
func testManyRows(t *testing.T, dsn string) {
	s := open(t, dsn)
	const n = 6000
	apply(t, s, func(b *Batch) {
		for i := range n {
			b.PutPod(Pod{Cluster: "c1", Namespace: "ns", Name: fmt.Sprintf("p-%d", i), Phase: "Running"})
		}
	})
	if got := column(t, s, `SELECT CAST(COUNT(*) AS TEXT) FROM pods`); len(got) != 1 || got[0] != fmt.Sprint(n) {
		t.Errorf("pods written = %q, want %d", got, n)
	}
}
