package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-dev/strata/internal/console/store"
	"github.com/strata-dev/strata/internal/console/store/storetest"
	"github.com/strata-dev/strata/internal/testutil"
)

func TestQueries(t *testing.T) {
	for _, db := range testutil.Databases(t) {
		t.Run(db.Name, func(t *testing.T) {
			s, _ := storetest.Open(t, db.NewDSN(t), storetest.FleetSQL(t))
			t.Run("Map", func(t *testing.T) { testMap(t, s) })
			t.Run("Machine", func(t *testing.T) { testMachine(t, s) })
			t.Run("NodeCounts", func(t *testing.T) { testNodeCounts(t, s) })
			t.Run("Pods", func(t *testing.T) { testPods(t, s) })
			t.Run("Search", func(t *testing.T) { testSearch(t, s) })
			t.Run("ActiveDisruptions", func(t *testing.T) { testActiveDisruptions(t, s) })
			t.Run("ObjectsAndEvents", func(t *testing.T) { testObjectsAndEvents(t, s) })
		})
	}
}

func testMap(t *testing.T, s *store.Store) {
	ctx := context.Background()
	dcs, err := s.Datacenters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"dc1", "dc2"}, dcs); diff != "" {
		t.Errorf("datacenters (-want +got):\n%s", diff)
	}
	m, err := s.Map(ctx, "dc1")
	if err != nil {
		t.Fatal(err)
	}
	// zone/rack/machine:state:disruption, planned zones marked with !.
	var got []string
	for _, z := range m.Zones {
		for _, r := range z.Racks {
			for _, mc := range r.Machines {
				mark := ""
				if z.PlannedMaintenance {
					mark = "!"
				}
				got = append(got, fmt.Sprintf("%d%s/%s/%s:%s:%s", z.Zone, mark, r.Name, mc.ID, mc.State, mc.Disruption))
			}
		}
	}
	want := []string{
		"1/r1/dc1-z1-r1-m1:allocated:",
		"1/r1/dc1-z1-r1-m2:available:",
		"1/r2/dc1-z1-r2-m1:allocated:",
		"1/r2/dc1-z1-r2-m2:unhealthy:",
		"2!/r1/dc1-z2-r1-m1:disrupted:planned-upgrade",
		"2!/r1/dc1-z2-r1-m2:decommissioned:",
		"2!/r2/dc1-z2-r2-m1:allocated:",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("map of dc1 (-want +got):\n%s", diff)
	}
	if m.Machines != 7 || m.Truncated {
		t.Errorf("map of dc1 has %d machines (truncated %t), want 7, not truncated", m.Machines, m.Truncated)
	}
	empty, err := s.Map(ctx, "nowhere")
	if err != nil || len(empty.Zones) != 0 {
		t.Errorf("map of an unknown datacenter = %+v, %v; want empty", empty, err)
	}
}

func testMachine(t *testing.T, s *store.Store) {
	ctx := context.Background()
	d, err := s.Machine(ctx, "dc1-z2-r1-m1")
	if err != nil {
		t.Fatal(err)
	}
	var nodes, disruptions, history []string
	for _, n := range d.Nodes {
		nodes = append(nodes, n.Cluster+"/"+n.Name)
	}
	for _, x := range d.Disruptions {
		disruptions = append(disruptions, x.ID+":"+x.State+":"+x.OnBehalfOf)
	}
	for _, h := range d.Disruptions[0].History {
		history = append(history, fmt.Sprintf("%s>%s by %s at %s", h.From, h.To, h.Actor, h.Time.Format("15:04:05")))
	}
	if diff := cmp.Diff([]string{"west/west-n2"}, nodes); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"d-1:in-progress:alice@example.com", "d-0:completed:"}, disruptions); diff != "" {
		t.Errorf("disruptions, newest first (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{">pending by maintenance/os-2025-06 at 14:50:00", "pending>in-progress by cluster-manager/west at 14:58:20"}, history); diff != "" {
		t.Errorf("history of d-1 (-want +got):\n%s", diff)
	}
	if _, err := s.Machine(ctx, "no-such-machine"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("reading an unknown machine: %v, want ErrNotFound", err)
	}
}

func testNodeCounts(t *testing.T, s *store.Store) {
	got, err := s.NodeCounts(context.Background(), "west")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.NodeCount{{Cluster: "west", Pool: "west-general", Profile: "general", Ready: 2, NotReady: 1, Draining: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("node counts (-want +got):\n%s", diff)
	}
}

func testPods(t *testing.T, s *store.Store) {
	no := false
	for _, tc := range []struct {
		name      string
		filter    store.PodFilter
		want      []string
		truncated bool
	}{
		{"app", store.PodFilter{Namespace: "shop", App: "web"}, []string{"web-7d9f-abcde", "web-7d9f-fghij", "web-7d9f-klmno"}, false},
		{"not ready", store.PodFilter{Cluster: "west", Ready: &no}, []string{"web-7d9f-fghij"}, false},
		{"node", store.PodFilter{Node: "west-n3"}, []string{"db-0", "web-7d9f-klmno"}, false},
		{"name prefix", store.PodFilter{NamePrefix: "web-7d9f-f"}, []string{"web-7d9f-fghij"}, false},
		{"prefix wildcards are literal", store.PodFilter{NamePrefix: "web_7d9f%"}, nil, false},
		{"phase", store.PodFilter{Phase: "Pending"}, nil, false},
		{"limit", store.PodFilter{Namespace: "shop", Limit: 2}, []string{"db-0", "web-7d9f-abcde"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pods, truncated, err := s.Pods(context.Background(), tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range pods {
				got = append(got, p.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" || truncated != tc.truncated {
				t.Errorf("pods (-want +got):\n%s\ntruncated %t, want %t", diff, truncated, tc.truncated)
			}
		})
	}
	if _, err := s.Pod(context.Background(), "west", "shop", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("reading an unknown pod: %v, want ErrNotFound", err)
	}
}

func testSearch(t *testing.T, s *store.Store) {
	for _, tc := range []struct {
		q       string
		want    []string
		invalid bool
	}{
		{q: "WEST-N", want: []string{"Node west/west-n1", "Node west/west-n2", "Node west/west-n3", "Node west/west-n4"}},
		{q: "west", want: []string{"Cluster /west", "Node west/west-n1", "Node west/west-n2", "Node west/west-n3", "Node west/west-n4"}},
		{q: "eb", want: []string{"App hub/web", "App west/web", "Pod west/web-7d9f-abcde", "Pod west/web-7d9f-fghij", "Pod west/web-7d9f-klmno"}},
		{q: "z2-r1", want: []string{"Machine /dc1-z2-r1-m1", "Machine /dc1-z2-r1-m2"}},
		{q: "%"},
		{q: "_"},
		{q: `'; DROP TABLE pods; --`},
		{q: `\`},
		{q: "  ", invalid: true},
		{q: strings.Repeat("a", store.MaxSearchQuery+1), invalid: true},
		{q: "\xff\xfe", invalid: true},
	} {
		t.Run(tc.q, func(t *testing.T) {
			hits, err := s.Search(context.Background(), tc.q)
			if invalid := new(store.InvalidQueryError); errors.As(err, &invalid) != tc.invalid {
				t.Fatalf("search %q: %v, want invalid %t", tc.q, err, tc.invalid)
			} else if err != nil && !tc.invalid {
				t.Fatal(err)
			}
			var got []string
			for _, h := range hits {
				got = append(got, h.Kind+" "+h.Cluster+"/"+h.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("search %q (-want +got):\n%s", tc.q, diff)
			}
		})
	}
}

func testActiveDisruptions(t *testing.T, s *store.Store) {
	for _, tc := range []struct {
		name   string
		filter store.DisruptionFilter
		want   []string
	}{
		{"machine", store.DisruptionFilter{Machine: "dc1-z2-r1-m1"}, []string{"d-1"}},
		{"zone", store.DisruptionFilter{Datacenter: "dc1", Zone: 2}, []string{"d-1"}},
		{"quiet machine and zone", store.DisruptionFilter{Machine: "dc1-z1-r1-m1", Datacenter: "dc1", Zone: 1}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := s.ActiveDisruptions(context.Background(), tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range ds {
				got = append(got, d.ID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("active disruptions (-want +got):\n%s", diff)
			}
		})
	}
}

func testObjectsAndEvents(t *testing.T, s *store.Store) {
	ctx := context.Background()
	apps, err := s.Objects(ctx, "", []string{store.KindStatelessApp, store.KindStatefulApp}, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range apps {
		got = append(got, o.Cluster+"/"+o.Kind+"/"+o.Namespace+"/"+o.Name)
	}
	if diff := cmp.Diff([]string{"hub/StatelessApp/shop/web", "west/StatefulApp/shop/db", "west/StatelessApp/shop/web"}, got); diff != "" {
		t.Errorf("apps (-want +got):\n%s", diff)
	}
	o, err := s.Object(ctx, "west", []string{store.KindStatelessApp, store.KindStatefulApp}, "shop", "db")
	if err != nil || o.Kind != store.KindStatefulApp {
		t.Errorf("reading west/shop/db = %s, %v; want a StatefulApp", o.Kind, err)
	}
	if _, err := s.Object(ctx, "west", []string{store.KindStatelessApp}, "shop", "db"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("reading a StatelessApp db: %v, want ErrNotFound", err)
	}
	events, err := s.Events(ctx, "west", store.KindStatelessApp, "shop", "web")
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, e := range events {
		got = append(got, e.Name+":"+e.Reason)
	}
	if diff := cmp.Diff([]string{"web.1:ReplicasUnavailable", "web.0:RolledOut"}, got); diff != "" {
		t.Errorf("events, latest first (-want +got):\n%s", diff)
	}
}
