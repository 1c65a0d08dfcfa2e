package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/localdc"
	"github.com/strata-dev/strata/internal/testutil"
)

// consoleScreenshotsEnv names a directory where the end-to-end tests save a
// screenshot of each console page they look at (docs/console.md's come
// from there).
const consoleScreenshotsEnv = "STRATA_CONSOLE_SCREENSHOTS"

// consoleTab is one headless Chromium tab on the home's fleet console, as a
// person would use it: pages are opened by address or link, and changes are
// waited for on the open page, which must not reload.
type consoleTab struct {
	t    *testing.T
	ctx  context.Context
	base string
	// loadedAt is the page's window.strataLoadedAt when it was opened: the
	// same value later means no reload happened.
	loadedAt float64
}

// openConsole starts a browser on the home's console.
func openConsole(t *testing.T, home string) *consoleTab {
	t.Helper()
	url, err := localdc.ConsoleURL(home)
	if err != nil || url == "" {
		t.Fatalf("the home's console address: %q, %v", url, err)
	}
	return &consoleTab{t: t, ctx: testutil.Chromium(t, 30*time.Minute), base: strings.TrimSuffix(url, "/")}
}

// open navigates to path and waits for its <main>.
func (c *consoleTab) open(path string) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, chromedp.Navigate(c.base+path), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
		c.t.Fatalf("opening the console's %s: %v", path, err)
	}
	c.loadedAt = c.number("window.strataLoadedAt || 0")
}

// number evaluates a JavaScript expression of a number in the page.
func (c *consoleTab) number(expr string) float64 {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[float64](expr))
	if err != nil {
		c.t.Fatalf("evaluating %s in the console: %v", expr, err)
	}
	return v
}

// text is what <main> says.
func (c *consoleTab) text() string {
	c.t.Helper()
	text, err := chromedp.Run(c.ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		c.t.Fatalf("reading the console's page: %v", err)
	}
	return text
}

// waitLive waits until cond holds of <main>'s text on the open page, which
// must not have reloaded meanwhile (the change came live), and returns it.
func (c *consoleTab) waitLive(what string, timeout time.Duration, cond func(text string) bool) string {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var text string
	for {
		text = c.text()
		if cond(text) {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the console's page did not show %s within %s; it shows:\n%s", what, timeout, text)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := c.number("window.strataLoadedAt || 0"); got != c.loadedAt {
		c.t.Errorf("the page reloaded (loaded at %v, now %v) instead of updating live to show %s", c.loadedAt, got, what)
	}
	return text
}

// follow clicks the link of <main> whose text is text and waits for the
// next page.
func (c *consoleTab) follow(text string) {
	c.t.Helper()
	sel := fmt.Sprintf(`//main//a[normalize-space(.)=%q]`, text)
	if err := chromedp.Do(c.ctx, chromedp.Click(chromedp.Search(sel)), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
		c.t.Fatalf("following the link %q: %v", text, err)
	}
	c.loadedAt = c.number("window.strataLoadedAt || 0")
}

// str evaluates a JavaScript expression of a string in the page.
func (c *consoleTab) str(expr string) string {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		c.t.Fatalf("evaluating %s in the console: %v", expr, err)
	}
	return v
}

// clusterRow is the cells of a cluster's row in the clusters table, from
// its name to its Nodes draining, and its freshness: what the console says
// of the cluster and how fresh that is.
func (c *consoleTab) clusterRow(name string) (cells, freshness string) {
	c.t.Helper()
	row := c.str(fmt.Sprintf(`(() => {
		const tr = [...document.querySelectorAll("main tr")].find(tr => tr.querySelector("th") && tr.querySelector("th").textContent.trim().startsWith(%q));
		if (!tr) return "";
		return [...tr.children].map(td => td.textContent.replace(/\s+/g, " ").trim()).join(" | ");
	})()`, name))
	parts := strings.Split(row, " | ")
	if len(parts) < 7 {
		return row, ""
	}
	return strings.Join(parts[:6], " | "), parts[6]
}

// count is how many elements of the page match a CSS selector.
func (c *consoleTab) count(selector string) int {
	c.t.Helper()
	return int(c.number(fmt.Sprintf("document.querySelectorAll(%q).length", selector)))
}

// screenshot saves the page as <name>.png in $STRATA_CONSOLE_SCREENSHOTS.
func (c *consoleTab) screenshot(name string) {
	c.t.Helper()
	dir := os.Getenv(consoleScreenshotsEnv)
	if dir == "" {
		return
	}
	png, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil { //nolint:gosec // a picture for the docs
		c.t.Errorf("screenshot %s: %v", name, err)
	}
}

var updatedMachines = regexp.MustCompile(`(\d+) of (\d+) machines updated`)

// rolloutUpdated reads "N of M machines updated" from a rollout's page.
func rolloutUpdated(text string) (int, bool) {
	m := updatedMachines.FindStringSubmatch(text)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// testConsoleAfterMaintenance: after the rollout, through a kill -9 of
// every Strata process (the aggregator among them, mid-stream), the console
// shows what the clusters and the broker hold: the rollout complete, the
// Nodes and pods of the workload cluster, each machine's disruption history.
func testConsoleAfterMaintenance(t *testing.T, bin, home string, con *consoleTab, cs kubernetes.Interface) {
	con.open("/rollouts/general-v2")
	con.waitLive("the rollout complete", time.Minute, func(text string) bool {
		n, ok := rolloutUpdated(text)
		return ok && n == 200
	})

	// The store converged on the cluster: the same pods and Nodes.
	pods, err := cs.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d pods.", len(pods.Items))
	con.open("/pods?cluster=workload-1&namespace=default")
	if got := con.str(`document.getElementById("pod-count").textContent.trim()`); got != want {
		t.Errorf("the console lists %q in namespace default of workload-1, the cluster has %s", got, want)
	}
	nodes, err := cs.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The console's three counts do not overlap: draining is cordoned,
	// ready and not ready are of the others.
	var ready, notReady, draining int
	for _, n := range nodes.Items {
		isReady := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				isReady = true
			}
		}
		switch {
		case n.Spec.Unschedulable:
			draining++
		case isReady:
			ready++
		default:
			notReady++
		}
	}
	con.open("/clusters")
	cells, fresh := con.clusterRow("workload-1")
	if !strings.HasSuffix(cells, fmt.Sprintf("| %d | %d | %d", ready, notReady, draining)) || !strings.HasPrefix(fresh, "fresh") {
		t.Errorf("the console's row of workload-1 is %q (%s); the cluster has %d Nodes ready, %d not ready, %d cordoned", cells, fresh, ready, notReady, draining)
	}
	con.screenshot("clusters")

	// A machine the rollout maintained: its record says who did what, why
	// and when.
	machine := disruptionsBy(t, bin, home, "maintenance/general-v2")[0].GetMachine()
	con.open("/machines/" + machine)
	text := con.text()
	for _, want := range []string{"maintenance/general-v2", "planned-upgrade", "cluster-manager", "completed", "general-v2"} {
		if !strings.Contains(text, want) {
			t.Errorf("the console's page of machine %s does not say %q:\n%s", machine, want, text)
		}
	}
	con.screenshot("machine")

	// The search box finds it, and its link leads to it.
	con.open("/search?q=" + machine)
	con.follow(machine)
	if !strings.Contains(con.text(), machine) {
		t.Errorf("the search result's link did not lead to machine %s", machine)
	}
}

// testConsoleAppFailure: the console's page of a fleet app whose release
// paused on an App failure says so, and follows a failing pod of the
// failed cluster down to its Node and machine.
func testConsoleAppFailure(t *testing.T, con *consoleTab, wc client.Client, failed string) {
	pods := &corev1.PodList{}
	if err := wc.List(t.Context(), pods, client.InNamespace("store")); err != nil {
		t.Fatal(err)
	}
	var crashing *corev1.Pod
	for i, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			if c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff" {
				crashing = &pods.Items[i]
			}
		}
	}
	if crashing == nil {
		t.Fatalf("no pod of store in %s is in CrashLoopBackOff", failed)
	}
	con.open("/apps/hub/store/web")
	text := con.waitLive("the failing pod "+crashing.Name, 30*time.Second, func(text string) bool {
		return strings.Contains(text, crashing.Name)
	})
	for _, want := range []string{"Paused", "App failure in cluster " + failed, "CrashLoopBackOff", "Why pods are not ready", crashing.Spec.NodeName} {
		if !strings.Contains(text, want) {
			t.Errorf("the console's page of the fleet app store/web does not say %q:\n%s", want, text)
		}
	}
	con.screenshot("app")
	// From the pod to its Node, and the Node's machine.
	con.follow(crashing.Spec.NodeName)
	if text := con.text(); !strings.Contains(text, crashing.Spec.NodeName) || !strings.Contains(text, "achine") {
		t.Errorf("the console's page of Node %s does not show it and its machine:\n%s", crashing.Spec.NodeName, text)
	}
}
