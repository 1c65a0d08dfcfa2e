package testutil

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumEnv names the Chromium binary the browser tests drive;
// DefaultChromium when it is not set.
const ChromiumEnv = "STRATA_CHROMIUM"

// DefaultChromium is where Debian's chromium package puts the browser.
const DefaultChromium = "/usr/bin/chromium"

// ChromiumPath returns the browser the tests drive, failing the test when
// it is missing.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	path := os.Getenv(ChromiumEnv)
	if path == "" {
		path = DefaultChromium
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Chromium is not at %s (set %s to another path): install it: hack/chromium.sh (make test does): %v", path, ChromiumEnv, err)
	}
	return path
}

// Chromium starts a headless Chromium with a fresh profile, 1366x768, and
// returns a chromedp context for a tab of it that expires after timeout
// (the browser with it); the browser ends with the test at the latest. Run
// actions with chromedp.Run(ctx, action) or chromedp.Do(ctx, steps...).
func Chromium(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	// Headless, no sandbox (containers), and nothing that reaches out to
	// the network by itself: on a closed network Chromium otherwise hangs
	// on those connections.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1366, 768),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	// Start the browser now, so a broken install fails here, clearly.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium %s: %v", ChromiumPath(t), err)
	}
	return ctx
}
