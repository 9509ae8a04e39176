package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"arcbench/internal/report"
	"arcbench/internal/testenv"
	"arcbench/shared/arcdata"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// memory is a run held in memory: the records and objects a report reads.
type memory struct {
	run     store.Run
	tasks   []store.Task
	objects map[string][]byte
}

func (m *memory) GetRun(context.Context, string) (*store.Run, error) { r := m.run; return &r, nil }
func (m *memory) EachTask(_ context.Context, _ string, fn func(store.Task) error) error {
	for _, t := range m.tasks {
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}
func (m *memory) Object(_ context.Context, key string) ([]byte, error) { return m.objects[key], nil }

func ptr[T any](v T) *T { return &v }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixture is a run of five tasks, one of each kind, with their data and
// submissions as the benchmark's worker writes them.
func fixture(t *testing.T) *memory {
	const runID = "run-cfg-20261202-000000-00000000"
	m := &memory{
		run: store.Run{RunID: runID, ConfigName: "cfg", DataSource: "evaluation", Status: model.RunCompletedWithErrors,
			CreatedAt: "2026-12-02T00:00:00.000Z", DurationSeconds: 90, TotalTasks: 5},
		objects: map[string][]byte{},
	}
	two := arcdata.Task{
		Train: []arcdata.Pair{{Input: arcdata.Grid{{1}}, Output: arcdata.Grid{{2}}}},
		Test:  []arcdata.Pair{{Input: arcdata.Grid{{1, 0}, {0, 1}}, Output: arcdata.Grid{{2, 0}, {0, 2}}}, {Input: arcdata.Grid{{3}}, Output: arcdata.Grid{{4}}}},
	}
	answer := func(g any, pair int) map[string]any {
		return map[string]any{"answer": g, "metadata": map[string]any{"pair_index": pair}}
	}
	add := func(id string, status string, task *arcdata.Task, sub []map[string]any, extra func(*store.Task)) {
		rec := store.Task{TaskID: id, Status: status}
		if extra != nil {
			extra(&rec)
		}
		m.tasks = append(m.tasks, rec)
		if task != nil {
			m.objects[model.TaskDataKey("evaluation", id)] = mustJSON(t, task)
		}
		if sub != nil {
			m.objects[model.SubmissionKey(runID, id)] = mustJSON(t, sub)
		}
	}
	scored := func(pairs, correct int, cost string) func(*store.Task) {
		return func(r *store.Task) {
			r.Pairs, r.PairsCorrect, r.CostUSD, r.ResultS3Key = &pairs, correct, cost, model.RelativeSubmissionKey(r.TaskID)
			if pairs > 0 {
				r.Score = ptr(float64(correct) / float64(pairs))
			}
			r.TokensInput, r.TokensOutput = 100, 10
		}
	}
	add("solved", model.TaskCompleted, &two, []map[string]any{
		{"attempt_1": answer([][]int{{2, 0}, {0, 2}}, 0), "attempt_2": nil},
		{"attempt_1": answer([][]int{{9}}, 1), "attempt_2": answer([][]int{{4}}, 1)},
	}, scored(2, 2, "0.01"))
	add("partly", model.TaskCompleted, &two, []map[string]any{
		{"attempt_1": answer([][]int{{2, 0}, {0, 2}}, 0)},
	}, scored(2, 1, "0.02"))
	add("wrong", model.TaskCompleted, &two, []map[string]any{
		{"attempt_1": answer(nil, 0), "attempt_2": answer([][]int{{1}}, 0)},
	}, func(r *store.Task) { scored(2, 0, "0.03")(r); r.RetryCount = 1 })
	hidden := arcdata.Task{Train: two.Train, Test: []arcdata.Pair{{Input: arcdata.Grid{{5}}}}}
	add("hidden", model.TaskCompleted, &hidden, []map[string]any{{"attempt_1": answer([][]int{{5}}, 0)}}, scored(0, 0, "0.04"))
	add("broken", model.TaskFailedPermanent, &two, nil, func(r *store.Task) {
		r.RetryCount, r.Reason, r.ExitCode = 3, "Essential container in task exited </script><script>alert(1)</script>", ptr(137)
	})
	return m
}

// The colours are ARC's own: 0 black, 1 blue, 2 red, 3 green, 4 yellow,
// 5 grey, 6 magenta, 7 orange, 8 sky, 9 maroon.
func TestThePaletteIsARCs(t *testing.T) {
	want := "#000000 #0074D9 #FF4136 #2ECC40 #FFDC00 #AAAAAA #F012BE #FF851B #7FDBFF #870C25"
	if got := strings.Join(report.Palette, " "); got != want {
		t.Errorf("palette %s, want %s", got, want)
	}
}

func TestBuildPutsWhatNeedsALookFirst(t *testing.T) {
	page, err := report.Build(context.Background(), fixture(t), "run", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, tk := range page.Tasks {
		order = append(order, tk.ID+":"+tk.Kind)
	}
	if got := strings.Join(order, " "); got != "broken:failed wrong:unsolved partly:partial hidden:unscored solved:solved" {
		t.Errorf("order %s", got)
	}
	r := page.Run
	if r.Total != 5 || r.Completed != 4 || r.Failed != 1 || r.Unscored != 1 || r.Solved != 1 || r.CostUSD != "0.1" || r.TokensIn != 400 {
		t.Errorf("header %+v", r)
	}
	if r.Score == nil || *r.Score != 1.5/4 || r.ScoredTasks != 4 {
		t.Errorf("score %v over %d, want 0.375 over 4 (the unscored task is left out)", r.Score, r.ScoredTasks)
	}
	// Attempts: 1 + 1 + 2 (one failure, then done) + 1 + 3 (three failures).
	if r.Attempts != 8 || r.Retries != 3 || r.WallSeconds != 90 || r.CostPerTask != 0.02 {
		t.Errorf("attempts %d, retries %d, wall %v, cost per task %v", r.Attempts, r.Retries, r.WallSeconds, r.CostPerTask)
	}
	byID := map[string]report.Task{}
	for _, tk := range page.Tasks {
		byID[tk.ID] = tk
	}
	solved := byID["solved"]
	if len(solved.Tests) != 2 || strings.Join(solved.Tests[0].Input, "/") != "10/01" || strings.Join(solved.Tests[0].Expected, "/") != "20/02" {
		t.Fatalf("solved's grids %+v", solved.Tests)
	}
	second := solved.Tests[1].Answers
	if len(second) != 2 || *second[0].Correct || !*second[1].Correct || second[1].Name != "attempt_2" {
		t.Errorf("pair 2's attempts %+v: want attempt_1 wrong, attempt_2 right", second)
	}
	wrong := byID["wrong"].Tests[0].Answers
	if len(wrong) != 2 || wrong[0].Grid != nil || *wrong[0].Correct || len(byID["wrong"].Tests[1].Answers) != 0 {
		t.Errorf("wrong's attempts %+v: want an empty attempt and a wrong one, nothing for pair 2", wrong)
	}
	if h := byID["hidden"].Tests[0]; h.Expected != nil || h.Answers[0].Correct != nil {
		t.Errorf("a withheld output: %+v, want no expected grid and no mark", h)
	}
	if b := byID["broken"]; b.Attempts != 3 || b.ExitCode == nil || *b.ExitCode != 137 || !strings.Contains(b.Reason, "Essential container") || b.Tests[0].Answers == nil {
		t.Errorf("broken %+v", b)
	}
}

// The page is one file that fetches nothing, whose data reads back whole,
// and whose text cannot break out of its script.
func TestThePageIsSelfContained(t *testing.T) {
	page, err := report.Build(context.Background(), fixture(t), "run", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var html bytes.Buffer
	if err := report.Write(&html, page); err != nil {
		t.Fatal(err)
	}
	text := html.String()
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<(link|img|iframe)\b`), regexp.MustCompile(`(?i)\bsrc\s*=`), regexp.MustCompile(`(?i)\b(fetch|XMLHttpRequest|import)\s*\(`),
		regexp.MustCompile(`https?://(?:[^w]|w[^w]|ww[^w]|www[^.]|www\.[^w])`), // only the SVG namespace's www.w3.org
	} {
		if m := bad.FindString(text); m != "" {
			t.Errorf("the page would fetch something: %q", m)
		}
	}
	if n := strings.Count(text, "</script>"); n != 2 {
		t.Errorf("%d </script> in the page, want 2: a task's text ended a script early", n)
	}
	data, err := report.Data(html.Bytes())
	var back report.Page
	if err == nil {
		err = json.Unmarshal(data, &back)
	}
	if err != nil || len(back.Tasks) != 5 || back.Run.RunID != page.Run.RunID {
		t.Errorf("the page's data reads back as %d tasks (%v)", len(back.Tasks), err)
	}
	if !strings.Contains(text, "Content-Security-Policy") {
		t.Error("no policy that stops the page fetching")
	}
}

func TestCompareFindsTasksOneRunSolvedAndAnotherDidNot(t *testing.T) {
	a, err := report.Build(context.Background(), fixture(t), "run", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other := fixture(t)
	other.run.RunID, other.run.ConfigName = "run-other-20261202-000000-00000000", "other"
	for i := range other.tasks {
		if other.tasks[i].TaskID == "wrong" { // solved by the other run
			other.tasks[i].Score, other.tasks[i].PairsCorrect = ptr(1.0), 2
		}
	}
	b, err := report.Build(context.Background(), other, "run", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := report.Compare([]*report.Page{a, b})
	if len(c.Runs) != 2 || len(c.Differences) != 1 || c.Differences[0].ID != "wrong" || len(c.Differences[0].ByRun) != 2 {
		t.Fatalf("comparison %+v", c.Differences)
	}
	var table bytes.Buffer
	if err := report.WriteTable(&table, c); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "CONFIG") || !strings.Contains(lines[1], "37.5%") || !strings.Contains(lines[2], "other") ||
		!strings.Contains(lines[4], "1 tasks one run solved and another did not: wrong") {
		t.Errorf("table:\n%s", table.String())
	}
}

// source is the run whose result the fixture's resumed run reuses.
const source = "run-cfg-20261201-000000-00000000"

// resumed is the fixture run resumed once (executions of 60s and 30s, an
// hour apart), its task "solved" reused from source (its submission is
// source's), its task "broken" run again by the resume, twice failed before.
func resumed(t *testing.T) *memory {
	m := fixture(t)
	m.run.CompletedAt, m.run.DurationSeconds = "2026-12-02T01:00:30.000Z", 3630
	m.run.Executions = []model.Execution{
		{ExecutionID: "start-1", Kind: model.ExecutionStart, StartedAt: "2026-12-02T00:00:00.000Z", EndedAt: "2026-12-02T00:01:00.000Z", Tasks: 5},
		{ExecutionID: "resume-1", Kind: model.ExecutionResume, StartedAt: "2026-12-02T01:00:00.000Z", EndedAt: "2026-12-02T01:00:30.000Z", Tasks: 1},
	}
	m.run.ReusedFrom, m.run.ReusedTasks, m.run.ReusedCostUSD = source, 1, "0.01"
	for i := range m.tasks {
		switch r := &m.tasks[i]; r.TaskID {
		case "solved":
			own := model.SubmissionKey(m.run.RunID, r.TaskID)
			r.ReusedFrom, r.ReusedCostUSD, r.CostUSD, r.ResultS3Key = source, "0.01", "", model.SubmissionKey(source, r.TaskID)
			m.objects[r.ResultS3Key] = m.objects[own]
			delete(m.objects, own)
		case "broken":
			r.History = []model.TaskHistoryEntry{
				{Status: model.TaskNotRun, ReleasedAt: "2026-12-01T12:00:00.000Z", ReleasedBy: "resume-0"},
				{Status: model.TaskFailedPermanent, RetryCount: 3, LastErrorType: "States.TaskFailed", LastErrorCause: "{...}",
					WorkerError: "rate limited\nTraceback...", ReleasedAt: "2026-12-02T01:00:00.000Z", ReleasedBy: "resume-1"},
			}
		}
	}
	return m
}

// A resumed run's header has its executions' times; a run that reused
// results names their run and what they cost there, and the reused task,
// drawn from that run's submission, made no attempt in this run.
func TestBuildTellsResumesAndReusedResults(t *testing.T) {
	page, err := report.Build(context.Background(), resumed(t), "run", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := page.Run
	if r.Resumes != 1 || r.Executions != 2 || r.ActiveSeconds != 90 || r.SpanSeconds != 3630 {
		t.Errorf("resumed %d times, %d executions, active %vs, span %vs; want 1, 2, 90s, 3630s", r.Resumes, r.Executions, r.ActiveSeconds, r.SpanSeconds)
	}
	if r.ReusedFrom != source || r.ReusedTasks != 1 || r.ReusedCostUSD != "0.01" || r.CostUSD != "0.09" {
		t.Errorf("reused %d from %q at $%s, cost $%s; want 1 from %s at $0.01, not in the run's $0.09", r.ReusedTasks, r.ReusedFrom, r.ReusedCostUSD, r.CostUSD, source)
	}
	// Attempts: 0 (reused) + 1 + 2 + 1 + 3; the retries as before.
	if r.Attempts != 7 || r.Retries != 3 {
		t.Errorf("attempts %d, retries %d; want 7 and 3", r.Attempts, r.Retries)
	}
	byID := map[string]report.Task{}
	for _, tk := range page.Tasks {
		byID[tk.ID] = tk
	}
	if s := byID["solved"]; s.ReusedFrom != source || len(s.Tests) != 2 || len(s.Tests[1].Answers) != 2 {
		t.Errorf("the reused task %+v: want it reused from %s, drawn with its answers there", s, source)
	}
}

// In a browser: the header says the run was resumed and reused results, the
// reused task says whose result it shows, and the task the resume ran again
// lists what it was before.
func TestResumedAndReusedInABrowser(t *testing.T) {
	b := testenv.NewBrowser(t) // skips first, where there is no Chromium
	page, err := report.Build(context.Background(), resumed(t), "run", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "report.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := report.Write(f, page); err != nil {
		t.Fatal(err)
	}
	f.Close()
	text := func(sel string) string {
		return testenv.Get(t, b, chromedp.Evaluate[string](`[...document.querySelectorAll('`+sel+`')].map((e) => e.innerText).join(' | ')`))
	}
	b.Do(t, chromedp.Navigate("file://"+path), chromedp.WaitVisible(chromedp.CSS("#tiles")))
	for sel, want := range map[string]string{
		".figure.resumed": "RESUMED\nonce\n2 executions · active 1.5 min · 60.5 min from first start to last end",
		".figure.reused":  "REUSED\n1\ntask's result from " + source + " · $0.0100 paid there, not in this run's cost",
	} {
		if got := text(sel); got != want {
			t.Errorf("%s reads %q, want %q", sel, got, want)
		}
	}
	marked := testenv.Get(t, b, chromedp.Evaluate[[]string](`[...document.querySelectorAll('.tile.reused')].map((e) => e.title)`))
	if want := "solved · solved · 100.0% · reused from " + source; len(marked) != 1 || marked[0] != want {
		t.Errorf("the tiles marked reused are titled %q, want one, %q", marked, want)
	}
	b.Do(t, chromedp.Click(chromedp.CSS(`.tile[data-id="solved"]`)), chromedp.WaitVisible(chromedp.CSS(`#detail svg[data-grid="test-1-attempt_2"]`)))
	if got, want := text("#detail .note.reused"), "Reused from "+source+": its answers and marks are that run's, where it cost $0.0100 (not in this run's cost)"; got != want {
		t.Errorf("the reused task says %q, want %q", got, want)
	}
	if got := text("#detail .history"); got != "" {
		t.Errorf("the reused task, never run again, shows a history: %q", got)
	}
	b.Do(t, chromedp.Click(chromedp.CSS(`.tile[data-id="broken"]`)), chromedp.WaitVisible(chromedp.CSS(`#detail .task[data-task="broken"]`)))
	want := "NOT_RUN (resumed 2026-12-01T12:00:00.000Z) | FAILED_PERMANENT after 3 attempts: States.TaskFailed: rate limited (resumed 2026-12-02T01:00:00.000Z)"
	if got := text("#detail .history li"); got != want {
		t.Errorf("the task run again lists %q, want %q", got, want)
	}
	if got := text("#detail .history h3") + text("#detail .note.reused"); got != "Before each resume ran it again" {
		t.Errorf("the task run again shows %q, want its history's heading and no reuse", got)
	}
	b.Clean(t)
}
