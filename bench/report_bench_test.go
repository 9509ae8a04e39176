package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"arcbench/internal/localrun"
	"arcbench/internal/report"
	"arcbench/internal/testenv"
	"arcbench/shared/clients"
	"arcbench/shared/store"
)

// measureReport reports what a local run's report page costs: the time to
// build and write it from the stage (tables and bucket), its size, and in
// Chromium (when there is one) the time from navigation to the tiles on
// screen, and to open a task and to apply a filter once it is there.
func measureReport(b *testing.B, res *localrun.Result, tasks int) {
	b.Helper()
	c := clients.NewLocal(res.Endpoint)
	var runsTable, tasksTable string
	for _, name := range res.Tables {
		switch {
		case strings.HasSuffix(name, "-runs"):
			runsTable = name
		case strings.HasSuffix(name, "-tasks"):
			tasksTable = name
		}
	}
	src := report.StageSource{Store: store.New(c.DynamoDB, runsTable, tasksTable), S3: c.S3, Bucket: res.Bucket}
	path := filepath.Join(b.TempDir(), "report.html")
	start := time.Now()
	page, err := report.Build(context.Background(), src, res.RunID, start)
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := report.Write(f, page); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.ReportMetric(time.Since(start).Seconds(), "report-build-s")
	info, _ := os.Stat(path)
	b.ReportMetric(float64(info.Size())/1e6, "report-MB")
	if len(page.Tasks) != tasks {
		b.Fatalf("the page has %d tasks, the run %d", len(page.Tasks), tasks)
	}

	if testenv.ChromiumPath() == "" {
		b.Log("no Chromium: the page's render time is not measured")
		return
	}
	br := testenv.NewBrowser(b)
	br.Do(b, chromedp.Navigate("file://"+path), chromedp.WaitVisible(chromedp.CSS("#tiles")))
	// performance.now() counts from the navigation's start; the next frame
	// is the first with every tile painted.
	rendered := testenv.Get(b, br, chromedp.Evaluate[float64](
		`new Promise((r) => requestAnimationFrame(() => setTimeout(() => r(performance.now()))))`, chromedp.EvalAwaitPromise))
	b.ReportMetric(rendered/1000, "render-s")
	interact := func(script string) float64 {
		return testenv.Get(b, br, chromedp.Evaluate[float64](`(async () => {
			const t0 = performance.now();
			`+script+`;
			await new Promise((r) => requestAnimationFrame(() => setTimeout(r)));
			return performance.now() - t0;
		})()`, chromedp.EvalAwaitPromise))
	}
	b.ReportMetric(interact(`document.querySelector('.tile').click()`), "open-task-ms")
	b.ReportMetric(interact(`document.querySelector('button[data-filter="solved"], button[data-filter="unsolved"]').click()`), "filter-ms")
	br.Clean(b)
}
