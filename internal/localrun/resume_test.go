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

	"arcbench/internal/localrun"
	"arcbench/internal/operator"
	"arcbench/shared/arcdata"
	"arcbench/shared/clients"
	"arcbench/shared/model"
	"arcbench/shared/money"
	"arcbench/shared/store"
)

// jobsPerTask counts, per task, the jobs whose worker ran in a session:
// each writes its log (logs/<task_id>-local-<n>.log); a job terminated
// while queued leaves an empty one.
func jobsPerTask(t *testing.T, dir string) map[string]int {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "logs", "*-local-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil && fi.Size() > 0 {
			name := filepath.Base(l)
			n[name[:strings.LastIndex(name, "-local-")]]++
		}
	}
	return n
}

// execute runs one execution of the session's state machine over ids, as
// `arcbench start` would start it.
func execute(t *testing.T, s *localrun.Session, config string, ids []string, g operator.Guards) *localrun.Result {
	t.Helper()
	input, err := operator.RunInput(context.Background(), nil, "", operator.StartInput{ConfigName: config, TaskIDs: ids, Guards: g}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Execute(context.Background(), input)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// resumeAndWatch resumes a run through the CLI and follows it to its end
// with `arcbench watch`, as a user would; it returns the run's record.
func resumeAndWatch(t *testing.T, s *localrun.Session, st *store.Store, runID string, args ...string) *store.Run {
	t.Helper()
	out, stderr, code := cli(t, s, append([]string{"resume", runID, "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("resume %v: exit %d: %s", args, code, stderr)
	}
	var resumed operator.Resumed
	if err := json.Unmarshal([]byte(out), &resumed); err != nil || resumed.RunID != runID {
		t.Fatalf("resume printed %q", out)
	}
	if _, stderr, code := cli(t, s, "watch", runID, "--json", "--interval", "1s"); code != 0 {
		t.Fatalf("watch: exit %d: %s", code, stderr)
	}
	run, err := st.GetRun(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	if run.ExecutionID != resumed.ExecutionArn {
		t.Errorf("run's execution %s, want the resume's %s", run.ExecutionID, resumed.ExecutionArn)
	}
	return run
}

func aggregatedOf(t *testing.T, s *localrun.Session, runID string) model.Aggregated {
	t.Helper()
	return aggregated(t, &localrun.Result{AggregatedPath: filepath.Join(s.Stack.S3Dir, "buckets", s.Bucket, filepath.FromSlash(model.AggregatedKey(runID)))})
}

// A run stopped half-way by its budget, resumed with a raised budget,
// finishes as the same run: every task COMPLETED, none run twice (one job
// each, counted from the workers' logs), one run id and record listing
// both executions, and the score and the model cost of a run that was
// never stopped. Resuming it without raising the budget is refused first,
// and a COMPLETED run has nothing to resume.
func TestAStoppedRunResumedFinishesAsIfNeverStopped(t *testing.T) {
	const n, seed, budget = 8, 11, "0.005"
	ids := arcdata.IDs(n, seed)
	dir := t.TempDir()
	s, err := localrun.Open(context.Background(), localrun.Options{Assembly: oneAtATime(t), Self: binary, Dir: dir,
		TaskIDs: ids, Seed: seed, Parallel: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := store.New(clients.NewLocal(s.Stack.Endpoint).DynamoDB, "arc-benchmark-local-runs", "arc-benchmark-local-tasks")

	stopped := execute(t, s, "resumable", ids, operator.Guards{BudgetUSD: budget})
	if stopped.RunStatus != model.RunStopped {
		t.Fatalf("run %s (%s): the budget should stop it half-way", stopped.RunStatus, stopped.StopReason)
	}
	runID := stopped.RunID
	ranFirst := jobsPerTask(t, s.Dir)
	if len(ranFirst) == 0 || len(ranFirst) == n {
		t.Fatalf("%d of %d tasks ran before the stop: not half-way", len(ranFirst), n)
	}

	// Its budget is spent: the resume is refused, saying so, and the run
	// is left as it was.
	if _, stderr, code := cli(t, s, "resume", runID); code == 0 || !strings.Contains(stderr, "budget") {
		t.Errorf("resume without a higher budget: exit %d, %q", code, stderr)
	}
	if run, _ := st.GetRun(context.Background(), runID); run.Status != model.RunStopped || run.Resumes() != 0 {
		t.Errorf("a refused resume left the run %s, %d resumes", run.Status, run.Resumes())
	}

	run := resumeAndWatch(t, s, st, runID, "--budget-usd", "1")
	if run.Status != model.RunCompleted || run.StopReason != "" || run.BudgetUSD != "1" {
		t.Errorf("resumed run ended %s (%q), budget %s; want COMPLETED with the new budget", run.Status, run.StopReason, run.BudgetUSD)
	}
	tasks := completedTasks(t, st, runID)
	if len(tasks) != n {
		t.Errorf("%d of %d tasks COMPLETED after the resume", len(tasks), n)
	}
	for id, jobs := range jobsPerTask(t, s.Dir) {
		if jobs != 1 {
			t.Errorf("task %s ran %d times (%d before the resume): a COMPLETED task was run again", id, jobs, ranFirst[id])
		}
	}
	if got := len(jobsPerTask(t, s.Dir)); got != n {
		t.Errorf("%d tasks ran, want %d", got, n)
	}
	if len(run.Executions) != 2 || run.Executions[0].Kind != model.ExecutionStart || run.Executions[1].Kind != model.ExecutionResume ||
		run.Executions[0].EndedAt == "" || run.Executions[1].EndedAt == "" || run.Executions[1].Tasks != n-len(ranFirst) {
		t.Errorf("executions %+v: want the start and one resume of %d tasks, both ended", run.Executions, n-len(ranFirst))
	}
	if active, span := run.Times(time.Now()); run.ActiveSeconds <= 0 || active > span {
		t.Errorf("active %s (recorded %.3fs) over a span of %s", active, run.ActiveSeconds, span)
	}

	// The same tasks, never stopped: the same score and the same model cost.
	never := execute(t, s, "never-stopped", ids, operator.Guards{})
	want, got := aggregated(t, never).Metrics, aggregatedOf(t, s, runID).Metrics
	if never.RunStatus != model.RunCompleted || got.Score == nil || want.Score == nil || *got.Score != *want.Score {
		t.Errorf("resumed run's score %v, a run never stopped %v (%s)", got.Score, want.Score, never.RunStatus)
	}
	if c, err := money.Compare(string(got.TotalCostUSD), string(want.TotalCostUSD)); err != nil || c != 0 {
		t.Errorf("resumed run's model cost $%s, a run never stopped $%s: something was paid twice or lost", got.TotalCostUSD, want.TotalCostUSD)
	}
	if got.CompletedTasks != n || got.NotRunTasks != 0 || got.FailedTasks != 0 {
		t.Errorf("aggregated: %d completed, %d failed, %d not run", got.CompletedTasks, got.FailedTasks, got.NotRunTasks)
	}

	out, _, _ := cli(t, s, "results", runID)
	if !strings.Contains(out, "resumed once") {
		t.Errorf("results do not say the run was resumed:\n%s", out)
	}
	if _, stderr, code := cli(t, s, "resume", runID); code == 0 || !strings.Contains(stderr, "nothing to resume") {
		t.Errorf("resume of a COMPLETED run: exit %d, %q", code, stderr)
	}
}

// A task that failed for good is run again only with --include-failed, its
// attempts counted afresh: MAX_RETRIES more attempts, even past the
// worker's own count (which marks it FAILED_PERMANENT on each failure, and
// handle-error sets back to FAILED), its earlier failure kept in its
// history; the run's failure leaves its counts, and no other task runs again.
func TestIncludeFailedRunsPermanentFailuresAfresh(t *testing.T) {
	const n, seed = 4, 5
	ids := arcdata.IDs(n, seed)
	failing := ids[2]
	// Attempts 1-3 fail (permanent at MAX_RETRIES 3); after the resume
	// attempt 4 fails too, and 5 succeeds.
	var faults []string
	for a := 1; a <= 4; a++ {
		faults = append(faults, failing+":"+string(rune('0'+a))+"=fail-after-claim")
	}
	dir := t.TempDir()
	s, err := localrun.Open(context.Background(), localrun.Options{Assembly: assembly, Self: binary, Dir: dir,
		TaskIDs: ids, Seed: seed, Parallel: 2, Faults: strings.Join(faults, ",")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := store.New(clients.NewLocal(s.Stack.Endpoint).DynamoDB, "arc-benchmark-local-runs", "arc-benchmark-local-tasks")

	first := execute(t, s, "flaky", ids, operator.Guards{})
	if first.RunStatus != model.RunCompletedWithErrors {
		t.Fatalf("run %s: want COMPLETED_WITH_ERRORS with %s failed for good", first.RunStatus, failing)
	}
	runID := first.RunID
	if _, stderr, code := cli(t, s, "resume", runID); code == 0 || !strings.Contains(stderr, "--include-failed") {
		t.Errorf("resume of a run whose unfinished tasks all failed for good: exit %d, %q", code, stderr)
	}

	run := resumeAndWatch(t, s, st, runID, "--include-failed")
	if run.Status != model.RunCompleted || run.FailedTasks != 0 || run.CompletedTasks != n {
		t.Errorf("resumed run %s, %d completed, %d failed; want COMPLETED with every task", run.Status, run.CompletedTasks, run.FailedTasks)
	}
	jobs := jobsPerTask(t, s.Dir)
	for _, id := range ids {
		want := 1
		if id == failing {
			want = 5 // 3 before, 2 after
		}
		if jobs[id] != want {
			t.Errorf("task %s ran %d times, want %d", id, jobs[id], want)
		}
	}
	task, err := st.GetTask(context.Background(), runID, failing)
	if err != nil {
		t.Fatal(err)
	}
	if task.Status != model.TaskCompleted || task.RetryCount != 4 || task.CountedAs != model.TaskCompleted {
		t.Errorf("task %s: %s, retry_count %d, counted as %q; want COMPLETED after attempt 4 failed", failing, task.Status, task.RetryCount, task.CountedAs)
	}
	history := taskHistory(t, s, runID, failing)
	if len(history) != 1 || history[0].Status != model.TaskFailedPermanent || history[0].RetryCount != 3 || history[0].ReleasedBy != run.ExecutionID {
		t.Errorf("history %+v: want its FAILED_PERMANENT after 3 attempts, released by the resume", history)
	}
	if m := aggregatedOf(t, s, runID).Metrics; m.FailedTasks != 0 || m.CompletedTasks != n {
		t.Errorf("aggregated: %d completed, %d failed", m.CompletedTasks, m.FailedTasks)
	}
}

// taskHistory reads a task's history from the run's aggregated.json.
func taskHistory(t *testing.T, s *localrun.Session, runID, taskID string) []model.TaskHistoryEntry {
	t.Helper()
	for _, r := range aggregatedOf(t, s, runID).TaskResults {
		if r.TaskID == taskID {
			return r.History
		}
	}
	t.Fatalf("aggregated.json lists no %s", taskID)
	return nil
}

// A new run started with --reuse of an earlier run over the same tasks,
// after one task's data file changed: that task alone is run (one more job,
// counted from the workers' logs), every other takes the earlier run's
// result (its submission, score and the digest it was scored against),
// recorded as reused from that run; the new run's model cost is that one
// task's, the reused ones' is shown apart, paid once.
func TestReuseRunsOnlyTheTasksWhoseDataChanged(t *testing.T) {
	const n, seed = 5, 9
	ids := arcdata.IDs(n, seed)
	dir := t.TempDir()
	s, err := localrun.Open(context.Background(), localrun.Options{Assembly: assembly, Self: binary, Dir: dir,
		TaskIDs: ids, Seed: seed, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := clients.NewLocal(s.Stack.Endpoint)
	st := store.New(c.DynamoDB, "arc-benchmark-local-runs", "arc-benchmark-local-tasks")

	first := execute(t, s, "reusable", ids, operator.Guards{})
	if first.RunStatus != model.RunCompleted {
		t.Fatalf("first run %s", first.RunStatus)
	}
	changed := ids[1]
	body, err := json.Marshal(arcdata.Generate(changed, seed+1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(s.Bucket),
		Key: aws.String(model.TaskDataKey(model.DefaultDataSource, changed)), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}

	// Another configuration's run is never reused.
	tasks := filepath.Join(dir, "ids.txt")
	if err := os.WriteFile(tasks, []byte(strings.Join(ids, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := cli(t, s, "start", "--config", "other", "--tasks", tasks, "--reuse", first.RunID); code == 0 || !strings.Contains(stderr, "--reuse") {
		t.Errorf("reuse of another configuration's run: exit %d, %q", code, stderr)
	}

	out, stderr, code := cli(t, s, "start", "--config", "reusable", "--tasks", tasks, "--reuse", first.RunID, "--json")
	if code != 0 {
		t.Fatalf("start --reuse: exit %d: %s", code, stderr)
	}
	var started operator.Started
	if err := json.Unmarshal([]byte(out), &started); err != nil {
		t.Fatalf("start printed %q", out)
	}
	if _, stderr, code := cli(t, s, "watch", started.RunID, "--json", "--interval", "1s"); code != 0 {
		t.Fatalf("watch: %s", stderr)
	}
	for id, jobs := range jobsPerTask(t, s.Dir) {
		want := 1
		if id == changed {
			want = 2
		}
		if jobs != want {
			t.Errorf("task %s ran %d times, want %d", id, jobs, want)
		}
	}
	doc := aggregatedOf(t, s, started.RunID)
	m := doc.Metrics
	if m.CompletedTasks != n || m.ReusedTasks != n-1 || m.ReusedFrom != first.RunID {
		t.Errorf("new run: %d completed, %d reused from %q; want %d, %d from %s", m.CompletedTasks, m.ReusedTasks, m.ReusedFrom, n, n-1, first.RunID)
	}
	before := map[string]model.TaskResult{}
	for _, r := range aggregated(t, first).TaskResults {
		before[r.TaskID] = r
	}
	var reusedCost money.Sum
	for _, r := range doc.TaskResults {
		old := before[r.TaskID]
		switch {
		case r.TaskID == changed:
			if r.ReusedFrom != "" || r.DataSHA256 == old.DataSHA256 || r.CostUSD == nil {
				t.Errorf("changed task %s: reused from %q, digest %s (was %s): want it run on its new data", r.TaskID, r.ReusedFrom, r.DataSHA256, old.DataSHA256)
			} else if c, err := money.Compare(string(m.TotalCostUSD), string(*r.CostUSD)); err != nil || c != 0 {
				t.Errorf("new run's model cost $%s, want the one task it ran, $%s", m.TotalCostUSD, *r.CostUSD)
			}
		default:
			if r.ReusedFrom != first.RunID || r.ReusedCostUSD == nil || old.CostUSD == nil || string(*r.ReusedCostUSD) != string(*old.CostUSD) ||
				r.DataSHA256 != old.DataSHA256 || r.Score == nil || old.Score == nil || *r.Score != *old.Score ||
				r.ResultS3Key != model.SubmissionKey(first.RunID, r.TaskID) || r.CostUSD != nil {
				t.Errorf("task %s: %+v\nwant the earlier result %+v, reused", r.TaskID, r, old)
			}
			if r.ReusedCostUSD != nil {
				_ = reusedCost.Add(string(*r.ReusedCostUSD))
			}
		}
	}
	if c, err := money.Compare(string(m.ReusedCostUSD), reusedCost.String()); err != nil || c != 0 {
		t.Errorf("reused cost $%s, the reused tasks' $%s", m.ReusedCostUSD, reusedCost.String())
	}
	run, err := st.GetRun(context.Background(), started.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != model.RunCompleted || run.ReusedTasks != n-1 || run.CompletedTasks != n {
		t.Errorf("run %s, %d reused, %d completed", run.Status, run.ReusedTasks, run.CompletedTasks)
	}
	if out, _, _ := cli(t, s, "results", started.RunID); !strings.Contains(out, fmt.Sprintf("reused %d tasks' results from %s", n-1, first.RunID)) {
		t.Errorf("results do not say what was reused:\n%s", out)
	}
}
