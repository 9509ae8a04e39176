package operator_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"arcbench/internal/report"
	"arcbench/shared/model"
)

// readPage is the data of a page the CLI wrote.
func readPage(t *testing.T, path string, v any) {
	t.Helper()
	html, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no page at %s: %v", path, err)
	}
	data, err := report.Data(html)
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		t.Fatalf("page %s: %v", path, err)
	}
}

// arcbench report writes a run's page with the figures watch ends on and
// every task, the failed ones with their reason and exit code; arcbench
// compare, by run id or by configuration, puts two runs side by side on
// stdout and in a page.
func TestReportAndCompareCommands(t *testing.T) {
	first := start(t, "ops-report-a", "--tasks", tasks)
	snaps := watch(t, first)
	end := snaps[len(snaps)-1]
	second := start(t, "ops-report-b", "--tasks", tasks)
	watch(t, second)

	dir := t.TempDir()
	path := filepath.Join(dir, "first.html")
	out, stderr, code := arcbench(t, "report", first, "-o", path)
	if code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, path+": 12 tasks, score ") {
		t.Errorf("report printed %q", out)
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm() != 0o644 {
		t.Errorf("the page is %v: others cannot read it", info.Mode().Perm())
	}
	var page report.Page
	readPage(t, path, &page)
	h := page.Run
	if h.RunID != first || h.ConfigName != "ops-report-a" || h.Status != end.Status || h.Total != len(taskIDs) ||
		h.Completed != end.Completed || h.Failed != end.Failed || h.CostUSD != end.Cost {
		t.Errorf("the page's header %+v; watch ended on %+v", h, end)
	}
	failed := 0
	for _, task := range page.Tasks {
		if task.Kind != report.KindFailed {
			continue
		}
		failed++
		if task.Status != model.TaskFailedPermanent || !strings.Contains(task.Reason, "Essential container") || task.ExitCode == nil {
			t.Errorf("failed task %s shows %q, exit code %v", task.ID, task.Reason, task.ExitCode)
		}
	}
	if len(page.Tasks) != len(taskIDs) || failed != end.Failed {
		t.Errorf("%d tasks on the page, %d failed; the run has %d and %d", len(page.Tasks), failed, len(taskIDs), end.Failed)
	}

	// Without -o, the page is RUN_ID.html where the command runs.
	cmd := exec.Command(binary, "report", first)
	cmd.Dir, cmd.Env = dir, cliEnv()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("report without -o: %v: %s", err, b)
	}
	if _, err := os.Stat(filepath.Join(dir, first+".html")); err != nil {
		t.Errorf("report without -o: %v", err)
	}

	for _, args := range [][]string{{first, second}, {"--config", "ops-report-a", "--config", "ops-report-b"}} {
		cpath := filepath.Join(dir, "compare.html")
		out, stderr, code := arcbench(t, append([]string{"compare", "-o", cpath}, args...)...)
		if code != 0 {
			t.Fatalf("compare %v: exit %d: %s", args, code, stderr)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) < 3 || !strings.HasPrefix(lines[0], "CONFIG") || !strings.HasPrefix(lines[1], "ops-report-a") || !strings.Contains(lines[1], first) ||
			!strings.HasPrefix(lines[2], "ops-report-b") || !strings.Contains(lines[2], second) || lines[len(lines)-1] != "page: "+cpath {
			t.Errorf("compare %v printed:\n%s", args, out)
		}
		var c report.Comparison
		readPage(t, cpath, &c)
		if c.Kind != "compare" || len(c.Runs) != 2 || c.Runs[0].RunID != first || c.Runs[1].RunID != second {
			t.Errorf("compare %v: the page holds %+v", args, c.Runs)
		}
	}
}
