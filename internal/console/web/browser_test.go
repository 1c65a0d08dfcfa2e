package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/go-logr/logr/testr"

	"github.com/strata-dev/strata/internal/console/store/storetest"
	"github.com/strata-dev/strata/internal/testutil"
)

// ScreenshotsEnv names a directory the browser test saves a screenshot of
// each page into.
const ScreenshotsEnv = "STRATA_CONSOLE_SCREENSHOTS"

// TestBrowser drives the console in headless Chromium: every page loads,
// links are followed by keyboard, and changes in the store reach the open
// page without a reload.
func TestBrowser(t *testing.T) {
	st, dsn := storetest.Open(t, "", storetest.FleetSQL(t))
	// The fixture's sources as fresh as the browser's clock says.
	now := time.Now().UnixMilli()
	storetest.Exec(t, dsn, fmt.Sprintf("UPDATE sources SET last_seen = %d WHERE cluster <> 'east';\nUPDATE sources SET last_seen = %d, error_since = %d WHERE cluster = 'east';\n",
		now-3000, now-600000, now-590000))
	srv, err := New(Options{Store: st, Logger: testr.New(t), PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	ctx := testutil.Chromium(t, 60*time.Second)
	rev := int64(1)
	// bump changes rows and moves the revisions of kinds, as the
	// aggregator does.
	bump := func(stmt string, kinds ...string) {
		rev++
		storetest.Exec(t, dsn, stmt+";\n"+fmt.Sprintf("UPDATE revisions SET rev = %d WHERE kind IN ('', '%s');\n", rev, strings.Join(kinds, "', '")))
	}

	t.Run("pages", func(t *testing.T) {
		for _, p := range []struct{ path, name, want string }{
			{"/map", "map", "Zone 2"},
			{"/machines/dc1-z2-r1-m1", "machine", "planned-upgrade, ⚠ active: in-progress"},
			{"/clusters", "clusters", "STALE"},
			{"/clusters/west", "cluster", "Capacity per node profile"},
			{"/rollouts", "rollouts", "Maintaining zone 2"},
			{"/rollouts/os-2025-06", "rollout", "2 (current)"},
			{"/apps", "apps", "NodeNotReady"},
			{"/apps/west/shop/web", "app", "Why pods are not ready"},
			{"/pods", "pods", "coredns-1"},
			{"/pods/west/shop/web-7d9f-fghij", "pod", "From pod to machine"},
			{"/nodes/west/west-n2", "node", "cordoned (draining)"},
			{"/search?q=west", "search", "results for"},
		} {
			if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+p.path)); err != nil {
				t.Fatalf("loading %s: %v", p.path, err)
			}
			text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
			if err != nil {
				t.Fatalf("reading %s: %v", p.path, err)
			}
			if !strings.Contains(text, p.want) {
				t.Errorf("%s shows no %q:\n%s", p.path, p.want, text)
			}
			screenshot(t, ctx, p.name)
		}
	})

	t.Run("keyboard", func(t *testing.T) {
		// Tab from the top of the page lands on the skip link; a cell's
		// link is followed with Enter.
		if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/map?dc=dc1"), chromedp.KeyEvent(kb.Tab)); err != nil {
			t.Fatal(err)
		}
		first, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.textContent`))
		if err != nil {
			t.Fatal(err)
		}
		if first != "Skip to content" {
			t.Errorf("the first Tab lands on %q, want the skip link", first)
		}
		if err := chromedp.Do(ctx,
			chromedp.Focus(chromedp.CSS(`a[href="/machines/dc1-z1-r2-m2"]`)),
			chromedp.KeyEvent(kb.Enter),
			chromedp.WaitVisible(chromedp.CSS(`#machine-health`)),
		); err != nil {
			t.Fatal(err)
		}
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(loc, "/machines/dc1-z1-r2-m2") {
			t.Errorf("Enter on the cell went to %s", loc)
		}
	})

	t.Run("live machine", func(t *testing.T) {
		loadedAt := load(t, ctx, ts.URL+"/machines/dc1-z1-r1-m1")
		bump(`UPDATE machines SET state = 'unhealthy', healthy = 0, health_message = 'fan 3 failed' WHERE id = 'dc1-z1-r1-m1'`, "BrokerMachine")
		waitFor(t, ctx, `document.getElementById('machine-health').textContent.includes('fan 3 failed')`)
		assertNoReload(t, ctx, loadedAt)
	})

	t.Run("live map", func(t *testing.T) {
		loadedAt := load(t, ctx, ts.URL+"/map")
		bump(`INSERT INTO disruptions (id, machine, datacenter, maintenance_zone, reason, state, actor, history, rev) VALUES ('d-9', 'dc1-z1-r2-m1', 'dc1', 1, 'planned-upgrade', 'pending', 'maintenance/os-2025-06', '[]', 9)`, "BrokerDisruption")
		waitFor(t, ctx, `document.querySelector('a[href="/machines/dc1-z1-r2-m1"]').getAttribute('aria-label').includes('in maintenance') &&
			document.getElementById('zone-1').textContent.includes('planned maintenance')`)
		assertNoReload(t, ctx, loadedAt)
	})

	t.Run("map legend", func(t *testing.T) {
		// Choosing a state in the legend fades the other machines, and
		// the choice outlives a live update.
		loadedAt := load(t, ctx, ts.URL+"/map")
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button.legend-item[data-state="s-unhealthy"]`))); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, `document.getElementById('zones').classList.contains('only-s-unhealthy') &&
			document.querySelector('button.legend-item[data-state="s-unhealthy"]').getAttribute('aria-pressed') === 'true' &&
			getComputedStyle(document.querySelector('a[href="/machines/dc1-z1-r1-m2"]')).opacity < 0.5 &&
			getComputedStyle(document.querySelector('a[href="/machines/dc1-z1-r2-m2"]')).opacity === '1'`)
		bump(`UPDATE machines SET health_message = 'fan 2 failed' WHERE id = 'dc1-z1-r2-m2'`, "BrokerMachine")
		waitFor(t, ctx, `document.querySelector('a[href="/machines/dc1-z1-r2-m2"]').getAttribute('aria-label').includes('fan 2 failed') &&
			document.getElementById('zones').classList.contains('only-s-unhealthy')`)
		assertNoReload(t, ctx, loadedAt)
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button.legend-item[data-state="s-unhealthy"]`))); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, `!document.getElementById('zones').classList.contains('only-s-unhealthy')`)
	})

	t.Run("live app", func(t *testing.T) {
		loadedAt := load(t, ctx, ts.URL+"/apps/west/shop/web")
		bump(`UPDATE pods SET ready = 1, reason = '', message = '' WHERE name = 'web-7d9f-fghij'`, "Pod")
		waitFor(t, ctx, `document.getElementById('why').nextElementSibling.textContent.includes('Every pod of the app is ready')`)
		assertNoReload(t, ctx, loadedAt)
	})
}

// load opens a page, counts its strata:updated events in
// window.strataUpdates, and returns its load marker.
func load(t *testing.T, ctx context.Context, u string) float64 {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
		t.Fatalf("loading %s: %v", u, err)
	}
	loadedAt, err := chromedp.Run(ctx, chromedp.Poll[float64](`window.strataLoadedAt`))
	if err != nil {
		t.Fatalf("loading %s: %v", u, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.strataUpdates = 0; document.addEventListener('strata:updated', () => window.strataUpdates++); true`)); err != nil {
		t.Fatal(err)
	}
	return loadedAt
}

func waitFor(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("waiting for %s: %v\n%s", cond, err, html)
	}
}

// assertNoReload checks the page is the one loaded (its marker is the
// same) and that it said it updated.
func assertNoReload(t *testing.T, ctx context.Context, loadedAt float64) {
	t.Helper()
	now, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`window.strataLoadedAt`))
	if err != nil {
		t.Fatal(err)
	}
	updates, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.strataUpdates`))
	if err != nil {
		t.Fatal(err)
	}
	indicator, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#updated")))
	if err != nil {
		t.Fatal(err)
	}
	if now != loadedAt {
		t.Errorf("the page reloaded (marker %v, was %v)", now, loadedAt)
	}
	if updates == 0 || !strings.HasPrefix(indicator, "updated ") {
		t.Errorf("after the change: %d strata:updated events, indicator %q", updates, indicator)
	}
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
