package localrun_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/internal/localrun"
	"arcbench/internal/report"
	"arcbench/shared/arcdata"
	"arcbench/shared/clients"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// results are aggregated.json's task results by task id.
func results(t *testing.T, res *localrun.Result) map[string]model.TaskResult {
	t.Helper()
	out := map[string]model.TaskResult{}
	for _, r := range aggregated(t, res).TaskResults {
		out[r.TaskID] = r
	}
	return out
}

// liveCountsAgreed tells whether aggregate found the run's live counters
// (completed_tasks, failed_tasks, total_cost_usd, as the run record held
// them when the Map ended) equal to what the task records say: it logs a
// warning when they are not.
func liveCountsAgreed(t *testing.T, res *localrun.Result) bool {
	t.Helper()
	log, err := os.ReadFile(filepath.Join(res.Dir, "logs", "handlers.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(log, []byte(`"msg":"run aggregated"`)) {
		t.Fatal("aggregate did not run")
	}
	return !bytes.Contains(log, []byte("live counters disagree"))
}

// A model that is never reached is not a result. The worker completes each
// of its tasks with no answer and no spend (as the benchmark's does when
// every provider call fails): such an attempt is failed (NoAnswer) and run
// again, and after MAX_RETRIES of them the task ends FAILED_PERMANENT with
// that reason. A model that was paid and gave no usable grid is the result:
// scored 0, counted apart as unanswered, never run again.
func TestAModelNeverReachedIsNoResult(t *testing.T) {
	const maxRetries = 3
	res, db := run(t, localrun.Options{TaskIDs: []string{"na000001", "na000002", "na000003", "na000004"}, MaxRetries: maxRetries,
		Faults: "na000001:1=no-answer,na000002:*=no-answer,na000003:*=empty-answer"})
	if res.Status != "SUCCEEDED" || res.RunStatus != model.RunCompletedWithErrors {
		t.Fatalf("execution %s, run %s: %s %s", res.Status, res.RunStatus, res.Error, res.Cause)
	}
	got, byID := tasksOf(t, db, res, res.RunID), results(t, res)
	for id, want := range map[string]struct {
		status             string
		retryCount, jobs   int
		unanswered, failed bool
	}{
		"na000001": {model.TaskCompleted, 1, 2, false, false}, // reached at its second attempt
		"na000002": {model.TaskFailedPermanent, maxRetries, maxRetries, false, true},
		"na000003": {model.TaskCompleted, 0, 1, true, false},
		"na000004": {model.TaskCompleted, 0, 1, false, false},
	} {
		g, r := got[id], byID[id]
		if g.Status != want.status || g.RetryCount != want.retryCount || attempts(t, res, id) != want.jobs {
			t.Errorf("%s: %s, retry_count %d, %d jobs; want %s, %d, %d", id, g.Status, g.RetryCount, attempts(t, res, id), want.status, want.retryCount, want.jobs)
		}
		if r.Unanswered != want.unanswered {
			t.Errorf("%s: unanswered %v", id, r.Unanswered)
		}
		if want.failed && !strings.HasPrefix(r.LastError, model.ErrNoAnswer+": ") {
			t.Errorf("%s: last_error %q, want the NoAnswer reason", id, r.LastError)
		}
	}
	if r := byID["na000003"]; r.Score == nil || *r.Score != 0 {
		t.Errorf("the unanswered task scored %v, want 0", r.Score)
	}
	m := aggregated(t, res).Metrics
	if m.UnansweredTasks != 1 || m.FailedTasks != 1 || m.CompletedTasks != 3 {
		t.Errorf("metrics: %d unanswered, %d failed, %d completed; want 1, 1, 3", m.UnansweredTasks, m.FailedTasks, m.CompletedTasks)
	}
	var final model.CompleteOutput
	if err := json.Unmarshal(res.Output, &final); err != nil || final.FinalMetrics.UnansweredTasks != 1 {
		t.Errorf("Complete's final metrics %s: want 1 unanswered task", res.Output)
	}
	if res.FailedBy[model.ErrNoAnswer] != 1 {
		t.Errorf("failed by %v, want 1 NoAnswer", res.FailedBy)
	}
	if !liveCountsAgreed(t, res) {
		t.Error("the run's live counters disagreed with its task records when the Map ended")
	}
}

// On AWS a missing object reads as AccessDenied to check-task (it may not
// list the bucket), and the local S3 answers so too: a task whose
// submission is gone is scored 0 with the reason, and the run completes.
func TestAMissingSubmissionScoresZeroAndTheRunGoesOn(t *testing.T) {
	res, db := run(t, localrun.Options{TaskIDs: []string{"ms000001", "ms000002"}, Faults: "ms000002:1=submission-lost"})
	if res.Status != "SUCCEEDED" || res.RunStatus != model.RunCompleted {
		t.Fatalf("execution %s, run %s: %s %s", res.Status, res.RunStatus, res.Error, res.Cause)
	}
	r := results(t, res)["ms000002"]
	if r.Status != model.TaskCompleted || r.Score == nil || *r.Score != 0 || !strings.Contains(r.ScoreError, "AccessDenied") ||
		!strings.Contains(r.ScoreError, model.SubmissionKey(res.RunID, "ms000002")) {
		t.Errorf("the task without its submission: %+v, want COMPLETED, score 0, a score_error naming the key and AccessDenied", r)
	}
	if g := tasksOf(t, db, res, res.RunID)["ms000002"]; g.RetryCount != 0 || attempts(t, res, "ms000002") != 1 {
		t.Errorf("the task was run %d times: its model was paid, it is not run again", attempts(t, res, "ms000002"))
	}
	missing := false
	for _, d := range res.IAM.MissingKeys {
		missing = missing || strings.Contains(d.Principal, "CheckTask") && strings.Contains(d.Reason, model.SubmissionKey(res.RunID, "ms000002"))
	}
	if !missing {
		t.Errorf("the local S3 did not answer the missing submission with AccessDenied: %v", res.IAM.MissingKeys)
	}
}

// Whatever check-task still raises after its retries stays its task's:
// here it may not update the run record, so every check fails; each task is
// given up (FAILED_PERMANENT, the error as its reason) and the Map goes on
// to the end, where aggregate and complete report the run.
func TestAFailingCheckGivesItsTaskUpAndTheMapGoesOn(t *testing.T) {
	ids := []string{"gu000001", "gu000002", "gu000003"}
	res, db := runDenied(t, localrun.Options{TaskIDs: ids,
		Assembly: withoutPermission(t, "FunctionsCheckTaskRole", "dynamodb:UpdateItem", "DataRuns")})
	if res.Status != "SUCCEEDED" || res.RunStatus != model.RunFailed {
		t.Fatalf("execution %s, run %s: %s %s; want the execution to reach its end and the run FAILED (every task given up)",
			res.Status, res.RunStatus, res.Error, res.Cause)
	}
	got := tasksOf(t, db, res, res.RunID)
	for _, id := range ids {
		r := results(t, res)[id]
		if got[id].Status != model.TaskFailedPermanent || !strings.Contains(r.LastError, "AccessDeniedException") {
			t.Errorf("%s: %s, last error %q; want FAILED_PERMANENT with the check's error", id, got[id].Status, r.LastError)
		}
		if attempts(t, res, id) != 1 {
			t.Errorf("%s: %d jobs, want 1", id, attempts(t, res, id))
		}
	}
	if res.Calls["GiveUpTask"] != len(ids) {
		t.Errorf("GiveUpTask ran %d times, want %d", res.Calls["GiveUpTask"], len(ids))
	}
}

// A report shows what was scored: after a task file is uploaded again with
// another expected output, an old run's page still marks the answer as it
// was scored, and says the data changed since.
func TestAReportShowsWhatWasScored(t *testing.T) {
	const seed = 3
	var solved string
	for _, id := range arcdata.IDs(40, seed) {
		if baselineScore(id, seed) == 1 {
			solved = id
			break
		}
	}
	res, _ := run(t, localrun.Options{TaskIDs: []string{solved}, Seed: seed})
	if res.RunStatus != model.RunCompleted {
		t.Fatalf("run %s: %s %s", res.RunStatus, res.Error, res.Cause)
	}
	changed := arcdata.Generate(solved, seed)
	changed.Test[0].Output[0][0] = (changed.Test[0].Output[0][0] + 1) % arcdata.Colours
	body, _ := json.Marshal(changed)
	c := clients.NewLocal(res.Endpoint)
	if _, err := c.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(res.Bucket),
		Key: aws.String(model.TaskDataKey("evaluation", solved)), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	st := store.New(c.DynamoDB, table(res, "-runs"), table(res, "-tasks"))
	page, err := report.Build(context.Background(), report.StageSource{Store: st, S3: c.S3, Bucket: res.Bucket}, res.RunID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	task := page.Tasks[0]
	if len(task.Tests) != 1 || len(task.Tests[0].Answers) == 0 || task.Tests[0].Answers[0].Correct == nil || !*task.Tests[0].Answers[0].Correct {
		t.Fatalf("the page's answers %+v: want attempt_1 marked right, as scored", task.Tests)
	}
	if !strings.Contains(task.Note, "changed since this task was scored") || task.Kind != report.KindSolved {
		t.Errorf("note %q, kind %s: want a note that the data changed, the task still solved", task.Note, task.Kind)
	}
}

// Money shown is money counted: a task whose worker recorded a cost that is
// not a number is left out of every total, and every total says so beside
// it: results, watch, runs, compare, and their JSON forms.
func TestATotalNeverLeavesOutAnUnreadableCostSilently(t *testing.T) {
	res, _ := run(t, localrun.Options{TaskIDs: []string{"uc000001", "uc000002", "uc000003"}, Faults: "uc000002:1=cost-unreadable"})
	if res.RunStatus != model.RunCompleted {
		t.Fatalf("run %s: %s %s", res.RunStatus, res.Error, res.Cause)
	}
	m := aggregated(t, res).Metrics
	if m.UnreadableCosts != 1 || m.InvalidTasks != 1 {
		t.Fatalf("aggregated.json: %d unreadable costs, %d invalid tasks; want 1 and 1", m.UnreadableCosts, m.InvalidTasks)
	}
	beside := "; 1 task with an unreadable cost left out)"
	for _, args := range [][]string{{"results", res.RunID}, {"watch", res.RunID}, {"runs"}} {
		out, stderr, code := cli(t, res.Session, args...)
		if code != 0 || !strings.Contains(out, "$"+string(m.TotalCostUSD)+" model + $") || !strings.Contains(out, beside) {
			t.Errorf("%v: exit %d, %q %q: want the total %s with %q beside it", args, code, out, stderr, m.TotalCostUSD, beside)
		}
	}
	out, _, _ := cli(t, res.Session, "watch", res.RunID, "--json")
	var snap struct {
		Invalid    int `json:"invalid_tasks"`
		Unreadable int `json:"unreadable_costs"`
	}
	if json.Unmarshal([]byte(strings.TrimSpace(out)), &snap) != nil || snap.Invalid != 1 || snap.Unreadable != 1 {
		t.Errorf("watch --json %q: want invalid_tasks 1 and unreadable_costs 1", out)
	}
	out, _, _ = cli(t, res.Session, "runs", "--json")
	if !strings.Contains(out, `"unreadable_costs":1`) {
		t.Errorf("runs --json %q: want unreadable_costs 1", out)
	}
	out, stderr, code := cli(t, res.Session, "compare", res.RunID, res.RunID, "-o", filepath.Join(t.TempDir(), "c.html"))
	if code != 0 || !strings.Contains(out, "(+1 unreadable)") {
		t.Errorf("compare: exit %d, %q %q: want the cost per task marked", code, out, stderr)
	}
}
