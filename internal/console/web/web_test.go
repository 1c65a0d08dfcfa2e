package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/strata-dev/strata/internal/console/store"
	"github.com/strata-dev/strata/internal/console/store/storetest"
)

// fixtureNow is 3 s after the fixture's freshest source.
var fixtureNow = time.UnixMilli(1750000002000).UTC()

// newFixtureServer serves the console on loopback over the fixture fleet.
func newFixtureServer(t *testing.T) *httptest.Server {
	t.Helper()
	st, _ := storetest.Open(t, "", storetest.FleetSQL(t))
	srv, err := New(Options{Store: st, Logger: testr.New(t), Clock: clocktesting.NewFakeClock(fixtureNow), PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, c *http.Client, u string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close() //nolint:errcheck // test
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(b)
}

func TestPages(t *testing.T) {
	ts := newFixtureServer(t)
	for _, tc := range []struct {
		path   string
		status int
		want   []string
	}{
		{"/map", 200, []string{"Fleet map: dc1", `aria-label="dc1-z1-r2-m2 (rack r2): unhealthy, disk /dev/sda: SMART reallocated sectors"`,
			`data-state="s-unhealthy"`, "U = unhealthy: <strong>1</strong>", `<span class="sr-only">Rack r2: </span>`,
			`href="/machines/dc1-z2-r1-m1"`, "planned maintenance: planned upgrade in progress, rollout os-2025-06", "Zone 1</h2>"}},
		{"/map?dc=dc2", 200, []string{"Fleet map: dc2", "dc2-z1-r1-m1 (rack r1): available (free)"}},
		{"/map?dc=nowhere", 404, []string{`No machines are in datacenter &#34;nowhere&#34;.`}},
		{"/machines/dc1-z2-r1-m1", 200, []string{"in maintenance", `<span class="warn">⚠ active: in-progress</span> <small>d-1</small>`, "alice@example.com", "maintenance/os-2025-06", "replace DIMM B2",
			`href="/nodes/west/west-n2"`, "node config nc-1", "cluster-manager/west"}},
		{"/machines/nope", 404, []string{`The broker has no machine &#34;nope&#34;`}},
		{"/clusters", 200, []string{`href="/clusters/west"`, "fresh, last seen", "3 s ago", "STALE", "connection refused",
			`<td class="bad">✗ Ready: no — APIServerUnreachable`, "<td>2</td><td>1</td><td>1</td>"}},
		{"/clusters/west", 200, []string{"Cluster west", "Capacity per node profile", `href="/nodes/west/west-n4"`, "Fresh: last seen"}},
		{"/clusters/east", 200, []string{"STALE", "watch failing since"}},
		{"/clusters/nope", 404, []string{"The hub has no Cluster"}},
		{"/rollouts", 200, []string{`href="/rollouts/os-2025-06"`, "Maintaining zone 2", "2 of 4"}},
		{"/rollouts/os-2025-06", 200, []string{"2 (current)", "InProgress", "Progressing: yes — Maintaining: draining and reimaging zone 2"}},
		{"/rollouts/nope", 404, nil},
		{"/apps", 200, []string{`href="/apps/west/shop/web"`, `href="/apps/hub/shop/web"`, `href="/apps/west/shop/db"`, "<strong>Infra</strong>: NodeNotReady", "v3 at 10%", `title="released to every cluster"`, "<strong class=\"\">Released</strong> to v2",
			"✗ Not ready<br><small>2/3 replicas</small>"}},
		{"/apps/west/shop/web", 200, []string{`<p id="app-ready" class="bad"><strong>✗ Not ready</strong> — ReplicasUnavailable: 2 of 3 replicas ready.`, "web-7d9f-fghij", `href="/nodes/west/west-n2"`, `href="/machines/dc1-z2-r1-m1"`,
			"Disruption d-1: planned-upgrade, in-progress", "&lt;script&gt;alert(1)&lt;/script&gt;"}},
		{"/apps/hub/shop/web", 200, []string{"fleet app on the hub", "web-7d9f-fghij", "Disruption d-1"}},
		{"/apps/west/shop/nope", 404, nil},
		{"/pods?namespace=shop&ready=false", 200, []string{"1 pod.", "shop/web-7d9f-fghij", `<td class="bad">✗ not ready</td><td><a href="/nodes/west/west-n2">west-n2</a>`, `<a href="/apps/west/shop/web">web</a>`}},
		{"/pods?ready=maybe", 400, []string{"The ready filter is true, false or empty"}},
		{"/pods?limit=99999", 400, nil},
		{"/pods/west/shop/web-7d9f-fghij", 200, []string{"NodeNotReady", "Disruption d-1"}},
		{"/pods/west/shop/nope", 404, nil},
		{"/nodes/west/west-n2", 200, []string{"cordoned (draining)", "d-1: planned-upgrade", "Node west-n2 status is now: NodeNotReady", "shop/web-7d9f-fghij"}},
		{"/nodes/west/nope", 404, nil},
		{"/search?q=west-n", 200, []string{"4 results", `href="/nodes/west/west-n1"`}},
		{"/search?q=" + url.QueryEscape(`%_'"<>;`), 200, []string{"0 results for “%_&#39;&#34;&lt;&gt;;”: no app, cluster, Node, machine or pod name holds it."}},
		{"/search?q=" + strings.Repeat("x", 10<<10), 400, []string{"longer than 200 characters"}},
		{"/search?q=dc1-z2", 200, []string{`href="/machines/dc1-z2-r1-m1"`}},
		{"/search?q=no-such-thing", 200, []string{"0 results"}},
		{"/search?q=db-0", 200, []string{"1 result for", `href="/pods/west/shop/db-0"`}},
		{"/search", 200, []string{"Type part of a name"}},
		{"/nowhere", 404, []string{"There is no page at /nowhere."}},
		{"/static/console.js", 200, []string{"strata:updated"}},
		{"/", 200, []string{"Fleet map"}},
	} {
		t.Run(tc.path[:min(len(tc.path), 60)], func(t *testing.T) {
			status, h, body := get(t, ts.Client(), ts.URL+tc.path)
			if status != tc.status {
				t.Fatalf("GET %s = %d, want %d:\n%s", tc.path, status, tc.status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s: the page lacks %q:\n%s", tc.path, w, body)
				}
			}
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("GET %s: Content-Security-Policy = %q", tc.path, csp)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s: no X-Content-Type-Options: nosniff", tc.path)
			}
		})
	}
}

var hrefRE = regexp.MustCompile(`href="(/[^"]*)"`)

// TestLinksResolve follows every link of every page (once each) and wants
// each to answer 200: a page never links to nothing.
func TestLinksResolve(t *testing.T) {
	ts := newFixtureServer(t)
	seen := map[string]bool{}
	queue := []string{"/map", "/map?dc=dc2", "/clusters", "/rollouts", "/apps", "/pods", "/search?q=w"}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		status, _, body := get(t, ts.Client(), ts.URL+p)
		if status != http.StatusOK {
			t.Errorf("GET %s = %d", p, status)
			continue
		}
		for _, m := range hrefRE.FindAllStringSubmatch(body, -1) {
			link := strings.ReplaceAll(m[1], "&amp;", "&")
			if !seen[link] {
				queue = append(queue, link)
			}
		}
	}
	if len(seen) < 25 {
		t.Errorf("followed %d links, want the fixture's pages (at least 25): %v", len(seen), seen)
	}
}

func TestFragment(t *testing.T) {
	ts := newFixtureServer(t)
	for _, header := range [][]string{{fragmentHeader, "main"}, nil} {
		u := ts.URL + "/machines/dc1-z1-r1-m1"
		if header == nil {
			u += "?fragment=main"
		}
		status, h, body := get(t, ts.Client(), u, header...)
		if status != 200 || strings.Contains(body, "<header") || strings.Contains(body, "<main") || !strings.Contains(body, "Machine dc1-z1-r1-m1") {
			t.Errorf("fragment %v = %d:\n%s", header, status, body)
		}
		if h.Get("X-Strata-Rev") != "1" || h.Get("Vary") != fragmentHeader {
			t.Errorf("fragment headers: rev %q, vary %q", h.Get("X-Strata-Rev"), h.Get("Vary"))
		}
	}
}

func TestReadOnly(t *testing.T) {
	ts := newFixtureServer(t)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, ts.URL+"/map", nil)
		res, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /map = %d, want 405", m, res.StatusCode)
		}
	}
}

func TestStoreFailureIs503(t *testing.T) {
	st, _ := storetest.Open(t, "", storetest.FleetSQL(t))
	srv, err := New(Options{Store: st, Logger: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/clusters", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "Store unavailable") {
		t.Errorf("GET /clusters on a closed store = %d:\n%s", rec.Code, rec.Body.String())
	}
}

func TestValidate(t *testing.T) {
	st, _ := storetest.Open(t, "", "")
	for _, tc := range []struct {
		opts Options
		want []string
	}{
		{Options{Store: st}, nil},
		{Options{Store: st, Address: "localhost:0"}, nil},
		{Options{Store: st, Address: "[::1]:8090"}, nil},
		{Options{Store: st, Address: "0.0.0.0:8443"}, []string{"tlsCertFile and tlsKeyFile: required", "auth: a hub clientset is required"}},
		{Options{Store: st, Address: ":8443", TLSCertFile: "c.pem"}, []string{"give both or neither", "auth:"}},
		{Options{Address: "nonsense"}, []string{"store: required", `address "nonsense"`}},
	} {
		err := tc.opts.Validate()
		if (err == nil) != (tc.want == nil) {
			t.Errorf("Validate(%+v) = %v, want errors %q", tc.opts.Address, err, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Validate(%q) = %v, want it to say %q", tc.opts.Address, err, w)
			}
		}
	}
}

func TestPodRowsEscape(t *testing.T) {
	got := string(podRows([]store.Pod{{Cluster: "c", Namespace: "n", Name: `a"<b>&/x`, Reason: "<script>", Ready: true}}))
	for _, want := range []string{`href="/pods/c/n/a%22%3Cb%3E&amp;%2Fx"`, `n/a&#34;&lt;b&gt;&amp;/x</a>`, "&lt;script&gt;", "✓ ready"} {
		if !strings.Contains(got, want) {
			t.Errorf("podRows = %s\nwant it to hold %s", got, want)
		}
	}
}

// appsSQL adds to the fixture a fleet app whose replicas are all ready
// while its Ready condition is False and its release paused on an App
// failure in west (the story of a crashing canary), with a pod in each of
// its clusters.
const appsSQL = `INSERT INTO objects (cluster, kind, namespace, name, data, rev) VALUES
 ('hub', 'StatelessApp', 'shop', 'cart', '{"apiVersion":"apps.strata.dev/v1alpha1","kind":"StatelessApp","metadata":{"name":"cart","namespace":"shop"},"spec":{"application":"shop","appVersion":"v2","replicas":2,"resources":{"cpu":"1","memory":"1Gi"}},"status":{"replicas":2,"readyReplicas":2,"clusters":[{"cluster":"west","replicas":1,"share":1,"readyReplicas":1,"appVersion":"v2","ready":false,"state":"Active","failure":{"category":"App","reason":"CrashLoopBackOff","message":"1 of 2 pods fail"}},{"cluster":"east","replicas":1,"share":1,"readyReplicas":1,"appVersion":"v1","ready":true,"state":"Active"}],"failure":{"category":"App","reason":"CrashLoopBackOff","message":"1 of 2 pods fail"},"release":{"appVersion":"v2","previousAppVersion":"v1","phase":"Paused","wave":1,"message":"paused at wave 1: App failure in cluster west"},"conditions":[{"type":"Ready","status":"False","reason":"ReplicasUnavailable","message":"2 of 2 replicas Ready over west, east","lastTransitionTime":"2025-06-15T14:58:20Z"},{"type":"Degraded","status":"True","reason":"App","message":"App in west: CrashLoopBackOff","lastTransitionTime":"2025-06-15T14:58:20Z"},{"type":"Released","status":"False","reason":"ReleasePaused","message":"paused at wave 1","lastTransitionTime":"2025-06-15T14:58:20Z"}]}}', 1),
 ('east', 'StatelessApp', 'shop', 'cart', '{"apiVersion":"apps.strata.dev/v1alpha1","kind":"StatelessApp","metadata":{"name":"cart","namespace":"shop"},"spec":{"application":"shop","appVersion":"v1","replicas":1,"resources":{"cpu":"1","memory":"1Gi"}},"status":{"replicas":1,"readyReplicas":1,"conditions":[{"type":"Ready","status":"True","reason":"Available","message":"1 of 1","lastTransitionTime":"2025-06-15T14:58:20Z"},{"type":"Degraded","status":"False","reason":"NoFailure","message":"no pod is failing","lastTransitionTime":"2025-06-15T14:58:20Z"},{"type":"Progressing","status":"False","reason":"RolledOut","message":"","lastTransitionTime":"2025-06-15T14:58:20Z"}]}}', 1);
INSERT INTO pods (cluster, namespace, name, app, version, node, phase, ready, reason, message, restarts, created, rev) VALUES
 ('west', 'shop', 'cart-5c-aaaaa', 'cart', 'v2', 'west-n1', 'Running', 0, 'CrashLoopBackOff', 'back-off 5m0s restarting failed container=app', 6, 1749990000000, 1),
 ('east', 'shop', 'cart-4b-bbbbb', 'cart', 'v1', 'east-n1', 'Running', 1, '', '', 0, 1749990000000, 1);
`

// TestAppReadiness: an app's summary and the apps list follow its Ready
// condition, not its replica counts, and say why; conditions are marked
// by their type's polarity (Degraded True is bad, False good); a fleet
// app lists the pods of all its clusters and explains the failing one, a
// cluster's app only its own.
func TestAppReadiness(t *testing.T) {
	st, _ := storetest.Open(t, "", storetest.FleetSQL(t)+appsSQL)
	srv, err := New(Options{Store: st, Logger: testr.New(t), Clock: clocktesting.NewFakeClock(fixtureNow)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	for _, tc := range []struct {
		path         string
		want, reject []string
	}{
		{"/apps/hub/shop/cart", []string{
			`<p id="app-ready" class="bad"><strong>✗ Not ready</strong> — ReplicasUnavailable: 2 of 2 replicas Ready over west, east.`,
			`id="app-failure" class="bad">✗ Failure, category <strong>App</strong>`,
			`id="app-release" class="bad">‖ Release to v2 Paused: paused at wave 1: App failure in cluster west`,
			`<li class="bad">✗ Degraded: yes — App: App in west: CrashLoopBackOff</li>`,
			`<li class="bad">✗ Released: no — ReleasePaused`,
			"v2 on west; v1 on east",
			`href="/pods/west/shop/cart-5c-aaaaa"`, `href="/pods/east/shop/cart-4b-bbbbb"`,
			`aria-label="Why pod cart-5c-aaaaa is not ready"`, `href="/nodes/west/west-n1"`, `href="/machines/dc1-z1-r1-m1"`,
		}, []string{"✓ Ready", `class="ok"><strong>`}},
		{"/apps/east/shop/cart", []string{
			`<p id="app-ready" class="ok"><strong>✓ Ready</strong>.`,
			`<li class="ok">✓ Degraded: no — NoFailure`, `<li class="ok">✓ Ready: yes — Available`, `<li class="info">• Progressing: no — RolledOut`,
			`href="/pods/east/shop/cart-4b-bbbbb"`, "Every pod of the app is ready.",
		}, []string{`href="/pods/west/shop/cart-5c-aaaaa"`, "app-release", "app-failure"}},
		{"/apps", []string{
			`<td class="bad nowrap">✗ Not ready<br><small>2/2 replicas</small></td>`,
			`<strong class="bad">‖ Paused</strong> to v2`,
			`<td class="ok nowrap">✓ Ready<br><small>1/1 replicas</small></td>`,
		}, nil},
	} {
		status, _, body := get(t, ts.Client(), ts.URL+tc.path)
		if status != http.StatusOK {
			t.Fatalf("GET %s = %d:\n%s", tc.path, status, body)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: the page lacks %q:\n%s", tc.path, w, body)
			}
		}
		for _, r := range tc.reject {
			if strings.Contains(body, r) {
				t.Errorf("GET %s: the page holds %q:\n%s", tc.path, r, body)
			}
		}
	}
}

func TestConditionPolarity(t *testing.T) {
	for _, tc := range []struct {
		c          metav1.Condition
		class, say string
	}{
		{metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue}, "ok", "✓ Ready: yes"},
		{metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: "ReplicasUnavailable"}, "bad", "✗ Ready: no — ReplicasUnavailable"},
		{metav1.Condition{Type: "Ready", Status: metav1.ConditionUnknown}, "unknown", "? Ready: unknown"},
		{metav1.Condition{Type: "Degraded", Status: metav1.ConditionTrue, Reason: "App"}, "bad", "✗ Degraded: yes — App"},
		{metav1.Condition{Type: "Degraded", Status: metav1.ConditionFalse}, "ok", "✓ Degraded: no"},
		{metav1.Condition{Type: "Paused", Status: metav1.ConditionTrue}, "bad", "✗ Paused: yes"},
		{metav1.Condition{Type: "Stalled", Status: metav1.ConditionTrue}, "bad", "✗ Stalled: yes"},
		{metav1.Condition{Type: "ProvisionFailure", Status: metav1.ConditionTrue}, "bad", "✗ ProvisionFailure: yes"},
		{metav1.Condition{Type: "MemoryPressure", Status: metav1.ConditionFalse}, "ok", "✓ MemoryPressure: no"},
		{metav1.Condition{Type: "Released", Status: metav1.ConditionTrue}, "ok", "✓ Released: yes"},
		{metav1.Condition{Type: "Released", Status: metav1.ConditionFalse, Reason: "ReleasePaused"}, "bad", "✗ Released: no"},
		{metav1.Condition{Type: "Released", Status: metav1.ConditionFalse, Reason: "Releasing"}, "info", "• Released: no"},
		{metav1.Condition{Type: "Released", Status: metav1.ConditionFalse, Reason: "ReleaseWaiting"}, "warn", "⚠ Released: no"},
		{metav1.Condition{Type: "HostsHealthy", Status: metav1.ConditionTrue}, "ok", "✓ HostsHealthy: yes"},
		{metav1.Condition{Type: "Progressing", Status: metav1.ConditionTrue}, "info", "• Progressing: yes"},
		{metav1.Condition{Type: "Complete", Status: metav1.ConditionFalse}, "info", "• Complete: no"},
	} {
		if got := condMark(tc.c); got != tc.class {
			t.Errorf("condMark(%s=%s, %s) = %q, want %q", tc.c.Type, tc.c.Status, tc.c.Reason, got, tc.class)
		}
		if got := condWord(tc.c); !strings.HasPrefix(got, tc.say) {
			t.Errorf("condWord(%s=%s) = %q, want it to start %q", tc.c.Type, tc.c.Status, got, tc.say)
		}
	}
}
