package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// fillPods writes n pods of cluster c-<i%2>, namespace ns-<i%10>, app
// app-<i%7>, as the aggregator would, in one transaction.
func fillPods(tb testing.TB, s *Store, n int) {
	tb.Helper()
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	stmt, err := tx.PrepareContext(ctx, s.engine.Rebind(`INSERT INTO pods (cluster, namespace, name, app, version, node, phase, ready, reason, message, restarts, created, rev)
		VALUES (?, ?, ?, ?, 'v1', ?, 'Running', ?, '', '', 0, 1750000000000, 1)`))
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		if _, err := stmt.ExecContext(ctx, fmt.Sprintf("c-%d", i%2), fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("pod-%07d", i),
			fmt.Sprintf("app-%d", i%7), fmt.Sprintf("node-%d", i%500), i%13 != 0); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkPodList lists the 10,000 pods of one namespace out of 100,000
// on SQLite: the console's largest page. Recorded on the 2-core
// development machine: see the report in the commit that added it.
func BenchmarkPodList(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "fleet.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close() //nolint:errcheck // benchmark
	fillPods(b, s, 100000)
	b.ResetTimer()
	for b.Loop() {
		pods, truncated, err := s.Pods(context.Background(), PodFilter{Namespace: "ns-3"})
		if err != nil || len(pods) != 10000 || truncated {
			b.Fatalf("listed %d pods (truncated %t), %v; want 10000", len(pods), truncated, err)
		}
	}
}

// TestPodFiltersUseIndexes checks that SQLite answers each pod filter the
// console sends from an index, not by scanning the table.
func TestPodFiltersUseIndexes(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close() //nolint:errcheck // test
	fillPods(t, s, 1000)
	if _, err := s.db.ExecContext(context.Background(), `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	for _, where := range []string{
		"namespace = 'ns-3'",
		"namespace = 'ns-3' AND app = 'app-1'",
		"cluster = 'c-1'",
		"cluster = 'c-1' AND node = 'node-7'",
		"cluster = 'c-1' AND namespace = 'ns-3' AND name LIKE 'pod-1%' ESCAPE '\\'",
	} {
		t.Run(where, func(t *testing.T) {
			rows, err := s.db.QueryContext(context.Background(), `EXPLAIN QUERY PLAN SELECT `+podColumns+` FROM pods WHERE `+where+
				` ORDER BY cluster, namespace, name LIMIT 10001`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close() //nolint:errcheck // test
			var plan []string
			for rows.Next() {
				var (
					id, parent, unused int
					detail             string
				)
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			if p := strings.Join(plan, "; "); strings.Contains(p, "SCAN pods") && !strings.Contains(p, "USING INDEX") {
				t.Errorf("plan scans the pods table: %s", p)
			} else {
				t.Log(p)
			}
		})
	}
}
