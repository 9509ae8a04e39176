package localrun_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chromedp/chromedp"

	"arcbench/internal/localrun"
	"arcbench/internal/report"
	"arcbench/internal/testenv"
	"arcbench/shared/arcdata"
	"arcbench/shared/clients"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// drawn is what a grid on the page shows: its size and each cell's colour.
type drawn struct {
	Rows, Cols int
	Fills      []string
}

// grid is the grid called name in the open task's detail.
func grid(t *testing.T, b *testenv.Browser, name string) drawn {
	t.Helper()
	return testenv.Get(t, b, chromedp.Evaluate[drawn](fmt.Sprintf(`(() => {
		const svg = document.querySelector('#detail:not([hidden]) svg[data-grid=%q]');
		if (!svg) return {Rows: 0, Cols: 0, Fills: []};
		return {Rows: +svg.dataset.rows, Cols: +svg.dataset.cols, Fills: [...svg.querySelectorAll('rect')].map((r) => r.getAttribute('fill'))};
	})()`, name)))
}

// wantGrid is how an ARC grid must be drawn: one cell per value, in ARC's palette.
func wantGrid(g arcdata.Grid) drawn {
	d := drawn{Rows: len(g), Cols: len(g[0])}
	for _, row := range g {
		for _, c := range row {
			d.Fills = append(d.Fills, report.Palette[c])
		}
	}
	return d
}

func visibleTiles(t *testing.T, b *testenv.Browser) int {
	t.Helper()
	return testenv.Get(t, b, chromedp.Evaluate[int](`[...document.querySelectorAll('.tile')].filter((e) => e.offsetParent !== null).length`))
}

// The report of a local run and the comparison of two, in a real browser:
// what a person sees is the run's score, one tile per task, a task's grids
// with the right cells and colours, filters that change what is shown; the
// comparison's chart has a point per run and lists the task only one solved.
func TestReportPagesInABrowser(t *testing.T) {
	b := testenv.NewBrowser(t) // skips first, where there is no Chromium
	const seed, failing = 12, "dd000003"
	ids := []string{"dd000001", "dd000002", failing, "dd000004", "dd000005", "dd000006"}
	res, _ := run(t, localrun.Options{TaskIDs: ids, Seed: seed, MaxRetries: 1, Report: true, ConfigName: "first",
		Faults: failing + ":*=fail-after-claim"})
	if res.ReportPath == "" {
		t.Fatalf("no report page: %s", res.ReportError)
	}
	var final model.CompleteOutput
	_ = json.Unmarshal(res.Output, &final)

	b.Do(t, chromedp.Navigate("file://"+res.ReportPath), chromedp.WaitVisible(chromedp.CSS("#tiles")))
	score := testenv.Get(t, b, chromedp.Text(chromedp.CSS(".figure.score .value")))
	if want := fmt.Sprintf("%.1f%%", *final.FinalMetrics.Score*100); score != want {
		t.Errorf("the page shows score %q, the run's is %s", score, want)
	}
	if n := visibleTiles(t, b); n != len(ids) {
		t.Errorf("%d tiles, want one per task (%d)", n, len(ids))
	}

	// A known task, opened with a click: its test input and expected output
	// drawn cell by cell in ARC's colours, and its one attempt marked.
	known := "dd000001"
	task := arcdata.Generate(known, seed)
	b.Do(t, chromedp.Click(chromedp.CSS(`.tile[data-id="`+known+`"]`)), chromedp.WaitVisible(chromedp.CSS(`#detail svg[data-grid="test-0-input"]`)))
	for name, want := range map[string]arcdata.Grid{"test-0-input": task.Test[0].Input, "test-0-expected": task.Test[0].Output} {
		if got := grid(t, b, name); fmt.Sprint(got) != fmt.Sprint(wantGrid(want)) {
			t.Errorf("grid %s of %s: %d×%d, %d cells; want %d×%d in ARC's colours", name, known, got.Rows, got.Cols, len(got.Fills), len(want), len(want[0]))
		}
	}
	preds, _ := arcdata.Solve(task)
	if got := grid(t, b, "test-0-attempt_1"); fmt.Sprint(got) != fmt.Sprint(wantGrid(preds[0])) {
		t.Errorf("attempt 1 of %s is not drawn as the worker answered it", known)
	}
	mark := testenv.Get(t, b, chromedp.Text(chromedp.CSS(`#detail .mark`)))
	if wantRight := arcdata.Correct(task, preds); strings.Contains(mark, "correct") != wantRight {
		t.Errorf("attempt mark %q, the answer is right: %v", mark, wantRight)
	}
	b.Do(t, chromedp.Click(chromedp.CSS(`.tile[data-id="`+failing+`"]`)))
	failure := testenv.Get(t, b, chromedp.Text(chromedp.CSS(`#detail .failure`)))
	if !strings.Contains(failure, "exit code 1") {
		t.Errorf("the failed task shows %q, want its last error and exit code", failure)
	}
	b.Do(t, chromedp.KeyEvent("\x1b"))

	// Filters change what is shown: each of the four shows its count, a zero
	// one is there but cannot be pressed, and the counts cover every task.
	total := 0
	for _, filter := range []string{"failed", "unsolved", "partial", "solved"} {
		sel := `button[data-filter="` + filter + `"]`
		var n int
		label := testenv.Get(t, b, chromedp.Evaluate[string](`document.querySelector('`+sel+`')?.textContent ?? ''`))
		if _, err := fmt.Sscanf(label[strings.LastIndex(label, "(")+1:], "%d)", &n); err != nil {
			t.Fatalf("filter %s reads %q, want a button with a count", filter, label)
		}
		total += n
		if filter == "failed" && n != 1 {
			t.Errorf("filter failed counts %d, one task failed", n)
		}
		if n == 0 {
			if !testenv.Get(t, b, chromedp.Evaluate[bool](`document.querySelector('`+sel+`').disabled`)) {
				t.Errorf("filter %s counts no task but can be pressed", filter)
			}
			continue
		}
		b.Do(t, chromedp.Click(chromedp.CSS(sel)))
		if got := visibleTiles(t, b); got != n {
			t.Errorf("filter %s shows %d tiles, its button says %d", filter, got, n)
		}
	}
	if total != len(ids) {
		t.Errorf("the filters count %d tasks, the run has %d", total, len(ids))
	}
	b.Do(t, chromedp.Click(chromedp.CSS(`button[data-filter="all"]`)))
	if n := visibleTiles(t, b); n != len(ids) {
		t.Errorf("filter all shows %d tiles, want %d", n, len(ids))
	}
	// A malformed or unknown link to a task shows the overview, and no
	// script error (Clean checks the console).
	for _, hash := range []string{"#task=%E0%A4%A", "#task=no-such-task"} {
		b.Do(t, chromedp.Navigate("about:blank"), chromedp.Navigate("file://"+res.ReportPath+hash), chromedp.WaitVisible(chromedp.CSS("#tiles")))
		if open := testenv.Get(t, b, chromedp.Evaluate[bool](`!document.getElementById('detail').hidden`)); open || visibleTiles(t, b) != len(ids) {
			t.Errorf("link %s: a task's detail is open (%v) or tiles are missing: want the overview", hash, open)
		}
	}
	b.Clean(t)

	// A second run where one task the first solved is answered wrong (its
	// expected output changed), then the two compared.
	s3c := clients.NewLocal(res.Endpoint).S3
	changed := "dd000002"
	altered := arcdata.Generate(changed, seed)
	if !arcdata.Correct(altered, must(arcdata.Solve(altered))) {
		t.Fatalf("task %s is not solved by the baseline: the comparison would show no difference", changed)
	}
	altered.Test[0].Output[0][0] = (altered.Test[0].Output[0][0] + 1) % 10
	body, _ := json.Marshal(altered)
	if _, err := s3c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(model.TaskDataKey("evaluation", changed)), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	second, err := res.Session.Execute(context.Background(), map[string]any{"config_name": "second", "task_ids": ids, "data_source": "evaluation"})
	if err != nil || second.RunStatus == "" {
		t.Fatalf("second run: %v %+v", err, second)
	}
	src := report.StageSource{Store: store.New(clients.NewLocal(res.Endpoint).DynamoDB, table(res, "-runs"), table(res, "-tasks")), S3: s3c, Bucket: res.Bucket}
	var pages []*report.Page
	for _, id := range []string{res.RunID, second.RunID} {
		p, err := report.Build(context.Background(), src, id, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
	}
	path := filepath.Join(t.TempDir(), "compare.html")
	f, _ := os.Create(path)
	if err := report.Write(f, report.Compare(pages)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b.Do(t, chromedp.Navigate("file://"+path), chromedp.WaitVisible(chromedp.CSS(".chart")))
	points := testenv.Get(t, b, chromedp.Evaluate[int](`document.querySelectorAll('.chart circle.point').length`))
	labels := testenv.Get(t, b, chromedp.Evaluate[[]string](`[...document.querySelectorAll('.chart text.label')].map((e) => e.textContent)`))
	if points != 2 || strings.Join(labels, ",") != "first,second" {
		t.Errorf("chart: %d points labelled %v, want one per run, labelled by config", points, labels)
	}
	rows := testenv.Get(t, b, chromedp.Evaluate[[]string](`[...document.querySelectorAll('table.diff tbody tr')].map((e) => e.dataset.task)`))
	if strings.Join(rows, ",") != changed {
		t.Errorf("tasks one run solved and another did not: %v, want [%s]", rows, changed)
	}
	b.Do(t, chromedp.Click(chromedp.CSS(`table.diff tbody tr`)), chromedp.WaitVisible(chromedp.CSS(`#detail svg.grid`)))
	sections := testenv.Get(t, b, chromedp.Evaluate[int](`document.querySelectorAll('#detail .by-run svg[data-grid$="test-0-input"]').length`))
	if sections != 2 {
		t.Errorf("the task's detail shows %d runs' grids, want 2", sections)
	}
	b.Clean(t)
}

func must(g [][][]int, _ bool) [][][]int { return g }
