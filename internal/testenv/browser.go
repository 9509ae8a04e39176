package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// RequireBrowser is the variable that makes a missing Chromium fail the
// browser tests instead of skipping them (.ci/run sets it).
const RequireBrowser = "ARCBENCH_REQUIRE_BROWSER"

// ChromiumPath is the Chromium on PATH, or "".
func ChromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	return ""
}

// Chromium is the browser the page tests use. Where there is none, the test
// skips saying how to install one, or fails under RequireBrowser=1.
func Chromium(t testing.TB) string {
	t.Helper()
	if path := ChromiumPath(); path != "" {
		return path
	}
	const why = "Chromium is not installed, so the report pages are not checked in a browser " +
		"(their structure is, in internal/report): install the Debian package chromium (apt-get install chromium)"
	if os.Getenv(RequireBrowser) == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

// Browser is a headless Chromium tab that records what a person would
// notice is wrong: script errors, console errors, and any request for
// something that is not the page itself.
type Browser struct {
	Ctx    context.Context
	mu     sync.Mutex
	errors []string
	fetch  []string
}

// NewBrowser starts Chromium for the test, stopped when it ends.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(Chromium(t)),
		chromedp.NoSandbox, chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(func() { cancelTime(); cancel(); cancelAlloc() })
	b := &Browser{Ctx: ctx}
	if err := chromedp.Listen(ctx, b.record); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("watch the page's requests: %v", err)
	}
	return b
}

func (b *Browser) record(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.errors = append(b.errors, fmt.Sprintf("%s (line %d)", msg, d.LineNumber+1))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			b.errors = append(b.errors, fmt.Sprintf("console.error %v", ev.Args))
		}
	case *network.EventRequestWillBeSent:
		if u := ev.Request.URL; !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "data:") {
			b.fetch = append(b.fetch, u)
		}
	}
}

// Do runs steps in the page, failing the test if one fails.
func (b *Browser) Do(t testing.TB, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.Ctx, steps...); err != nil {
		t.Fatalf("in the browser: %v", err)
	}
}

// Get is what an action that reads the page answers.
func Get[T any](t testing.TB, b *Browser, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(b.Ctx, a)
	if err != nil {
		t.Fatalf("in the browser: %v", err)
	}
	return v
}

// Clean fails the test for any error or fetch the pages caused so far.
func (b *Browser) Clean(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errors) > 0 {
		t.Errorf("errors on the page: %v", b.errors)
	}
	if len(b.fetch) > 0 {
		t.Errorf("the page fetched %v: it must be self-contained", b.fetch)
	}
}
