package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wharf-platform/wharf/hub/hubtest"
)

// consoleRig is a headless Chromium pointed at one hub node's console,
// with the steps browser tests repeat: run actions, evaluate scripts,
// sign in, and save numbered screenshots of each page.
type consoleRig struct {
	t     *testing.T
	ctx   context.Context // the browser's; it lives until the test ends
	base  string
	shots string
	n     int
}

// newConsoleRig starts Chromium (chromiumPath skips or fails the test
// without one) for the console at base. Screenshots go to
// WHARF_CONSOLE_SCREENSHOTS (under a subdirectory of this name), else to
// a temporary directory.
func newConsoleRig(t *testing.T, base, name string) *consoleRig {
	t.Helper()
	chrome := chromiumPath(t)
	shots := os.Getenv("WHARF_CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else {
		shots = filepath.Join(shots, name)
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("console screenshots: %s", shots)
	// Chromium leaves org.chromium.Chromium.* directories in TMPDIR: give
	// it one of its own, removed once it and its children are gone.
	browserTmp, err := os.MkdirTemp("", "wharf-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hubtest.WaitUntil(t, 10*time.Second, "chromium's temporary directory removed", func() error { return os.RemoveAll(browserTmp) })
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Env("TMPDIR="+browserTmp),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 1000))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	// Registered after the directory's cleanup, so run before it.
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// The first call starts the browser, which lives as long as the
	// context of that call: it gets no timeout.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &consoleRig{t: t, ctx: bctx, base: base, shots: shots}
}

// run does browser actions, failing the test after 90 s.
func (r *consoleRig) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		r.t.Fatalf("%s: %v", what, err)
	}
}

// evalString evaluates a script (awaiting it if it is a promise) whose
// value is a string.
func (r *consoleRig) evalString(what, expr string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, 90*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		r.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// open goes to a console path and waits for an element of it.
func (r *consoleRig) open(path, sel string) {
	r.t.Helper()
	r.run("open "+path, chromedp.Navigate(r.base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// shot saves a full-page screenshot as NN-name.png.
func (r *consoleRig) shot(name string) {
	r.t.Helper()
	// A page between documents has no size to capture.
	r.waitJS("a loaded page to capture", 30*time.Second, `document.readyState === "complete"`)
	ctx, cancel := context.WithTimeout(r.ctx, 90*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		r.t.Fatalf("screenshot %s: %v", name, err)
	}
	r.n++
	file := fmt.Sprintf("%02d-%s.png", r.n, strings.NewReplacer("/", "-", "?", "-", "=", "-", "&", "-").Replace(strings.Trim(name, "/")))
	if err := os.WriteFile(filepath.Join(r.shots, file), png, 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// login signs in through the login form.
func (r *consoleRig) login(token string) {
	r.t.Helper()
	r.run("sign in",
		chromedp.Navigate(r.base+"/ui/login"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#count-apps")))
}

// eval evaluates a script and returns its value.
func (r *consoleRig) eval(what, expr string) any {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, 90*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		r.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitJS waits, without reloading, until a script on the page is true.
func (r *consoleRig) waitJS(what string, within time.Duration, expr string) {
	r.t.Helper()
	hubtest.WaitUntil(r.t, within, what, func() error {
		ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
		defer cancel()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s is false", expr)
		}
		return nil
	})
}
