package web

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"

	"github.com/strata-dev/strata/internal/console/store/storetest"
)

// BenchmarkPodsPage serves /pods filtered to the 10,000 pods of one
// namespace out of 100,000, on SQLite: the store's read and the page's
// rendering, the server's time of the console's largest page.
func BenchmarkPodsPage(b *testing.B) {
	st, dsn := storetest.Open(b, "", "")
	storetest.Exec(b, dsn, `INSERT INTO pods (cluster, namespace, name, app, version, node, phase, ready, reason, message, restarts, created, rev)
		WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
		SELECT 'c-' || (i % 2), 'ns-' || (i % 10), printf('pod-%07d', i), 'app-' || (i % 7), 'v1', 'node-' || (i % 500), 'Running',
			CASE WHEN i % 13 = 0 THEN 0 ELSE 1 END, '', '', 0, 1750000000000, 1 FROM n;
INSERT INTO revisions (kind, rev) VALUES ('', 1);
`)
	srv, err := New(Options{Store: st, Logger: logr.Discard()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	h := srv.Handler()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/pods?namespace=ns-3", nil))
		if rec.Code != http.StatusOK || rec.Body.Len() < 10000*100 {
			b.Fatalf("GET /pods = %d, %d bytes", rec.Code, rec.Body.Len())
		}
	}
}
