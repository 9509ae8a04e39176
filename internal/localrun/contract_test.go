package localrun_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/internal/localrun"
	"arcbench/shared/arcdata"
	"arcbench/shared/clients"
	"arcbench/shared/model"
	"arcbench/shared/money"
	"arcbench/shared/worker"
)

func taskItem(t *testing.T, db *dynamodb.Client, res *localrun.Result, runID, taskID string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table(res, "-tasks")), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			"run_id": &types.AttributeValueMemberS{Value: runID}, "task_id": &types.AttributeValueMemberS{Value: taskID},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// attempts counts the worker processes a task got: one log per job.
func attempts(t *testing.T, res *localrun.Result, taskID string) int {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(res.Dir, "logs", taskID+"-local-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return len(logs)
}

func aggregated(t *testing.T, res *localrun.Result) model.Aggregated {
	t.Helper()
	raw, err := os.ReadFile(res.AggregatedPath)
	if err != nil {
		t.Fatalf("aggregated.json: %v", err)
	}
	var doc model.Aggregated
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// baselineScore is what the built-in worker's answer to a generated task scores.
func baselineScore(id string, seed int64) float64 {
	task := arcdata.Generate(id, seed)
	preds, _ := arcdata.Solve(task)
	if arcdata.Correct(task, preds) {
		return 1
	}
	return 0
}

// Every way a worker can go wrong, each on a task of its own, with the
// table as the only judge: what each task ends as, how many attempts it got
// and what it cost follow from the injected behaviour alone.
func TestEveryMisbehaviourEndsAsTheTableSays(t *testing.T) {
	const maxRetries = 3
	cases := []struct {
		id, faults string
		status     string
		retryCount int
		attempts   int
	}{
		{"aa000001", "", model.TaskCompleted, 0, 1},
		// The worker's own failure path: it counts itself, exits 1.
		{"aa000002", "*=fail-after-claim", model.TaskFailedPermanent, 3, 3},
		{"aa000003", "1=fail-after-claim,2=die-after-claim", model.TaskCompleted, 2, 3},
		// A crash leaves the claim IN_PROGRESS: handle-error frees it.
		{"aa000004", "1=die-after-claim", model.TaskCompleted, 1, 2},
		{"aa000005", "*=die-after-claim", model.TaskFailedPermanent, 3, 3},
		// Exit 0 without work (a lost claim response looks the same).
		{"aa000006", "1=exit-0-without-work", model.TaskCompleted, 1, 2},
		{"aa000007", "*=exit-0-without-work", model.TaskFailedPermanent, 3, 3},
		{"aa000008", "1=claim-then-exit-0", model.TaskCompleted, 1, 2},
		// Completed, then the container died: done and paid for once.
		{"aa000009", "1=complete-then-die", model.TaskCompleted, 0, 1},
		{"aa00000a", "1=fail-after-claim,2=complete-then-die", model.TaskCompleted, 1, 2},
	}
	var ids, faults []string
	for _, c := range cases {
		ids = append(ids, c.id)
		for _, f := range strings.Split(c.faults, ",") {
			if f != "" {
				faults = append(faults, c.id+":"+f)
			}
		}
	}
	const seed = 5
	res, db := run(t, localrun.Options{TaskIDs: ids, Seed: seed, MaxRetries: maxRetries, Faults: strings.Join(faults, ",")})
	if res.Status != "SUCCEEDED" || res.RunStatus != model.RunCompletedWithErrors {
		t.Fatalf("execution %s, run %s: %s %s", res.Status, res.RunStatus, res.Error, res.Cause)
	}
	got := tasksOf(t, db, res, res.RunID)
	var (
		cost              money.Sum
		completed, failed int
		scoreSum          float64
	)
	for _, c := range cases {
		g := got[c.id]
		if g.Status != c.status || g.RetryCount != c.retryCount {
			t.Errorf("task %s (%s): %s with retry_count %d, want %s with %d", c.id, c.faults, g.Status, g.RetryCount, c.status, c.retryCount)
		}
		if n := attempts(t, res, c.id); n != c.attempts {
			t.Errorf("task %s (%s): %d attempts, want %d", c.id, c.faults, n, c.attempts)
		}
		if c.status == model.TaskCompleted {
			completed++
			task := arcdata.Generate(c.id, seed)
			preds, _ := arcdata.Solve(task)
			in, out := worker.Usage(task, preds)
			if g.CostUSD != worker.CostUSD(in, out) {
				t.Errorf("task %s: cost %s, want one attempt's %s", c.id, g.CostUSD, worker.CostUSD(in, out))
			}
			_ = cost.Add(g.CostUSD)
			scoreSum += baselineScore(c.id, seed)
			if g.IsCorrect != (baselineScore(c.id, seed) == 1) {
				t.Errorf("task %s: is_correct %v", c.id, g.IsCorrect)
			}
		} else {
			failed++
		}
	}
	rec := runRecord(t, db, res, res.RunID)
	for attr, want := range map[string]string{
		"completed_tasks": fmt.Sprint(completed), "failed_tasks": fmt.Sprint(failed), "total_cost_usd": cost.String(),
	} {
		if g := str(rec, attr); g != want {
			t.Errorf("run %s = %s, want %s", attr, g, want)
		}
	}
	m := aggregated(t, res).Metrics
	if want := scoreSum / float64(len(cases)); m.Score == nil || *m.Score != want || m.ScoredTasks != len(cases) {
		t.Errorf("score %v over %d tasks, want %v over %d", m.Score, m.ScoredTasks, want, len(cases))
	}
	var final model.CompleteOutput
	if err := json.Unmarshal(res.Output, &final); err != nil || final.FinalMetrics.Score == nil || *final.FinalMetrics.Score != *m.Score {
		t.Errorf("Complete's final_metrics.score: %s", res.Output)
	}
	if calls := res.Calls["CheckTask"]; calls < res.Calls["RunTask"] {
		t.Errorf("CheckTask ran %d times for %d jobs: every job is checked", calls, res.Calls["RunTask"])
	}
}

// The built-in worker writes what the benchmark's does: the submission
// list of attempt_1 / attempt_2, a result key relative to the run's folder,
// no is_correct (check-task scores), and it reads S3_TASKS_PREFIX. Every key
// aggregated.json names exists.
func TestTheBuiltInWorkerKeepsTheBenchmarksContract(t *testing.T) {
	ids := arcdata.IDs(4, 9)
	res, db := run(t, localrun.Options{TaskIDs: ids, Seed: 9, DataSource: "training"})
	if res.RunStatus != model.RunCompleted {
		t.Fatalf("run %s: %s %s", res.RunStatus, res.Error, res.Cause)
	}
	s3c := clients.NewLocal(res.Endpoint).S3
	doc := aggregated(t, res)
	if len(doc.TaskResults) != len(ids) {
		t.Fatalf("%d task results", len(doc.TaskResults))
	}
	for _, r := range doc.TaskResults {
		obj, err := s3c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(r.ResultS3Key)})
		if err != nil {
			t.Fatalf("task %s: aggregated.json names %s: %v", r.TaskID, r.ResultS3Key, err)
		}
		var sub []map[string]*struct {
			Answer   [][]int `json:"answer"`
			Metadata struct {
				PairIndex *int `json:"pair_index"`
			} `json:"metadata"`
		}
		err = json.NewDecoder(obj.Body).Decode(&sub)
		obj.Body.Close()
		if err != nil || len(sub) == 0 || sub[0]["attempt_1"] == nil || sub[0]["attempt_1"].Metadata.PairIndex == nil {
			t.Errorf("task %s: submission %+v (%v), want the attempt_1/attempt_2 list", r.TaskID, sub, err)
		}
		if _, ok := sub[0]["attempt_2"]; !ok {
			t.Errorf("task %s: no attempt_2 in the submission", r.TaskID)
		}
		if r.Score == nil || *r.Score != baselineScore(r.TaskID, 9) {
			t.Errorf("task %s: score %v, want %v", r.TaskID, r.Score, baselineScore(r.TaskID, 9))
		}
	}
	for _, id := range ids {
		raw := taskItem(t, db, res, res.RunID, id)
		if k := str(raw, "result_s3_key"); k != model.RelativeSubmissionKey(id) {
			t.Errorf("task %s: result_s3_key %q, want the worker's relative %q", id, k, model.RelativeSubmissionKey(id))
		}
		if _, err := model.ParseTime(str(raw, "started_at")); err != nil {
			t.Errorf("task %s: started_at: %v", id, err)
		}
	}
	if bad := res.Session.Stack.CloudWatch.Malformed(); len(bad) > 0 {
		t.Errorf("the CloudWatch stand-in refused: %v", bad)
	}
	// One run started, one ended, no attempt failed.
	sums := metricSums(res)
	if sums["RunStarted [{ConfigName e2e}]"] != 1 || sums["RunEnded [{Status COMPLETED}]"] != 1 || sums["RunCompleted [{ConfigName e2e}]"] != 1 {
		t.Errorf("metrics %v, want one RunStarted, one RunEnded COMPLETED, one RunCompleted", sums)
	}
	for key := range sums {
		if strings.HasPrefix(key, "AttemptFailed ") {
			t.Errorf("%s published: no attempt failed", key)
		}
	}
}

// ARC task files seed a run: their tasks' several test pairs score as
// shares, and a task without expected outputs is unscored, not 0.
func TestTaskFilesSeedTheRun(t *testing.T) {
	two := arcdata.Generate("cc000001", 2)
	two.Test = append(two.Test, arcdata.Generate("cc000001", 3).Test...) // a second test pair the baseline gets wrong
	hidden := arcdata.Generate("cc000002", 2)
	hidden.Test[0].Output = nil
	plain := arcdata.Generate("cc000003", 2)
	data := map[string][]byte{}
	for id, task := range map[string]arcdata.Task{"cc000001": two, "cc000002": hidden, "cc000003": plain} {
		data[id], _ = json.Marshal(task)
	}
	res, _ := run(t, localrun.Options{TaskIDs: []string{"cc000001", "cc000002", "cc000003"}, TaskData: data})
	if res.RunStatus != model.RunCompleted {
		t.Fatalf("run %s: %s %s", res.RunStatus, res.Error, res.Cause)
	}
	m := aggregated(t, res).Metrics
	if m.UnscoredTasks != 1 || m.ScoredTasks != 2 {
		t.Errorf("%d scored, %d unscored; want 2 and 1", m.ScoredTasks, m.UnscoredTasks)
	}
	byID := map[string]model.TaskResult{}
	for _, r := range aggregated(t, res).TaskResults {
		byID[r.TaskID] = r
	}
	if r := byID["cc000002"]; r.Score != nil || r.Pairs != 0 {
		t.Errorf("the task without outputs: %+v, want no score", r)
	}
	if r := byID["cc000001"]; r.Pairs != 2 {
		t.Errorf("the two-pair task: %+v, want 2 pairs", r)
	}
	want := (*byID["cc000001"].Score + *byID["cc000003"].Score) / 2
	if m.Score == nil || *m.Score != want {
		t.Errorf("score %v, want %v", m.Score, want)
	}
}

// `arcbench local run` exits non-zero when the run ends FAILED, not only
// when the execution fails, and says the run's status last.
func TestLocalRunExitsNonZeroWhenTheRunFails(t *testing.T) {
	for _, c := range []struct {
		args     []string
		code     int
		lastLine string
	}{
		{[]string{"--count", "2", "--fail-rate", "1", "--max-retries", "1"}, 1, ": FAILED"},
		// A model never reached: no answer is not a result.
		{[]string{"--count", "2", "--fault", "*:*=no-answer", "--max-retries", "2"}, 1, "0 completed, 2 failed of 2 (2 NoAnswer)"},
		// A total says what it leaves out.
		{[]string{"--count", "2", "--fault", "*:1=cost-unreadable"}, 0, "($0 model + $0.000411416666 compute; 2 tasks with unreadable costs left out)"},
		{[]string{"--count", "2"}, 0, ": COMPLETED, score"},
	} {
		cmd := exec.Command(binary, append([]string{"local", "run", "--assembly", assembly, "--dir", t.TempDir()}, c.args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		out := strings.TrimSpace(stdout.String())
		if code != 0 {
			out = strings.TrimSpace(stderr.String()) // the error is the last thing said
		}
		lines := strings.Split(out, "\n")
		if code != c.code || !strings.Contains(lines[len(lines)-1], c.lastLine) {
			t.Errorf("%v: exit %d, last line %q; want exit %d and %q", c.args, code, lines[len(lines)-1], c.code, c.lastLine)
		}
	}
}
