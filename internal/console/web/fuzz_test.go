package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/strata-dev/strata/internal/console/store/storetest"
)

// FuzzSearch: whatever a person types in the search box, or puts in a
// page's address, the console answers a page (200, 400 or 404) that says
// what it found or what is wrong, escaped: never a 500, never the input as
// markup.
func FuzzSearch(f *testing.F) {
	for _, seed := range []string{"web", "dc1-z2-r1-m1", "%_'\"<>;", strings.Repeat("x", 300), "\xff\xfe", "<script>alert(1)</script>", " ", "west/shop"} {
		f.Add(seed)
	}
	st, _ := storetest.Open(f, "", storetest.FleetSQL(f))
	srv, err := New(Options{Store: st, Logger: logr.Discard(), PollInterval: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.Close)
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, q string) {
		for _, target := range []string{
			"/search?q=" + url.QueryEscape(q),
			"/machines/" + url.PathEscape(q),
			"/pods?name=" + url.QueryEscape(q) + "&app=" + url.QueryEscape(q),
			"/apps/" + url.PathEscape(q) + "/x/" + url.PathEscape(q),
		} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			switch rec.Code {
			case http.StatusOK, http.StatusBadRequest, http.StatusNotFound:
			default:
				t.Fatalf("GET %s = %d, want 200, 400 or 404:\n%s", target, rec.Code, rec.Body.String())
			}
			if strings.Contains(q, "<") && strings.Contains(rec.Body.String(), q) {
				t.Fatalf("GET %s shows the input unescaped", target)
			}
		}
	})
}
