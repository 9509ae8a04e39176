package aggregate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func completed(runID, taskID, cost string, correct bool) map[string]any {
	return map[string]any{
		"run_id": runID, "task_id": taskID, "status": "COMPLETED", "retry_count": 0,
		"cost_usd": json.Number(cost), "is_correct": correct,
		"result_s3_key": model.SubmissionKey(runID, taskID),
	}
}

func readAggregated(t *testing.T, env *testenv.Env, key string) (model.Aggregated, *s3.GetObjectOutput) {
	t.Helper()
	obj, err := testenv.DirectS3(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer obj.Body.Close()
	body, _ := io.ReadAll(obj.Body)
	var doc model.Aggregated
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("aggregated.json: %v", err)
	}
	return doc, obj
}

func TestAggregateCountsCostAndAccuracy(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "a", "b", "c", "d", "e")
	env.PutTask(t, completed(runID, "a", "0.1", true))
	env.PutTask(t, completed(runID, "b", "0.2", true))
	env.PutTask(t, completed(runID, "c", "0.0125", false))
	env.PutTask(t, map[string]any{"run_id": runID, "task_id": "d", "status": "FAILED_PERMANENT", "retry_count": 3})
	// e stays PENDING

	out, err := handlers.NewAggregate(env.Deps).Handle(context.Background(), model.AggregateInput{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if out.TotalTasks != 5 || out.CompletedTasks != 3 || out.FailedTasks != 1 {
		t.Errorf("counts %+v, want 5 total, 3 completed, 1 failed", out.Totals)
	}
	if out.Accuracy != 2.0/3.0 {
		t.Errorf("accuracy %v, want 2/3", out.Accuracy)
	}
	if out.TotalCostUSD != "0.3125" {
		t.Errorf("total cost %s, want exactly 0.3125", out.TotalCostUSD)
	}
	wantKey := "runs/" + runID + "/results/aggregated.json"
	if out.ResultsS3Key == nil || *out.ResultsS3Key != wantKey {
		t.Fatalf("results_s3_key %v, want %s", out.ResultsS3Key, wantKey)
	}

	doc, obj := readAggregated(t, env, wantKey)
	if ct := aws.ToString(obj.ContentType); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	m := doc.Metrics
	if doc.RunID != runID || doc.ConfigName != "cfg" || doc.AggregatedAt == "" {
		t.Errorf("header %+v", doc)
	}
	if m.TotalTasks != 5 || m.CompletedTasks != 3 || m.FailedTasks != 1 || m.PendingTasks != 1 || m.CorrectTasks != 2 || m.TotalCostUSD != "0.3125" {
		t.Errorf("metrics %+v", m)
	}
	if len(doc.TaskResults) != 5 {
		t.Fatalf("%d task results, want 5", len(doc.TaskResults))
	}
	byID := map[string]model.TaskResult{}
	for _, r := range doc.TaskResults {
		byID[r.TaskID] = r
	}
	if r := byID["c"]; r.Status != "COMPLETED" || r.CostUSD == nil || *r.CostUSD != "0.0125" || r.IsCorrect || r.ResultS3Key != model.SubmissionKey(runID, "c") {
		t.Errorf("task c: %+v", r)
	}
	if r := byID["d"]; r.Status != "FAILED_PERMANENT" || r.CostUSD != nil {
		t.Errorf("task d: %+v", r)
	}

	run := env.Run(t, runID)
	for attr, want := range map[string]string{"completed_tasks": "3", "failed_tasks": "1", "total_cost_usd": "0.3125"} {
		if got := testenv.N(run, attr); got != want {
			t.Errorf("run %s = %s, want %s", attr, got, want)
		}
	}
	if testenv.N(run, "accuracy") == "" || testenv.S(run, "status") != "RUNNING" {
		t.Errorf("run record after aggregate: %v", run)
	}
}

func TestAggregateReadsEveryPageConsistently(t *testing.T) {
	env := testenv.Setup(t, nil)
	const n = 3000 // several 1 MB query pages once every record carries a long error
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("task-%05d", i)
	}
	runID := env.NewRun(t, ids...)
	pad := strings.Repeat("p", 600) // what a worker's error message may be: it fills pages sooner
	for i, id := range ids {
		task := map[string]any{"run_id": runID, "task_id": id, "status": "PENDING", "retry_count": 0}
		if i%3 == 0 {
			task = completed(runID, id, "0.001", i%2 == 0)
		}
		task["error"] = pad
		env.PutTask(t, task)
	}
	env.Proxy.ResetCounts()
	out, err := handlers.NewAggregate(env.Deps).Handle(context.Background(), model.AggregateInput{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if out.TotalTasks != n || out.CompletedTasks != n/3 || out.TotalCostUSD != "1" {
		t.Errorf("totals %+v, want %d tasks, %d completed, cost exactly 1", out.Totals, n, n/3)
	}
	if pages := env.Proxy.Requests("Query"); pages < 2 {
		t.Errorf("%d Query requests: the test meant to cover several pages", pages)
	}
}

func TestAggregateWithoutBucketSkipsTheWrite(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"S3_BUCKET": ""})
	runID := env.NewRun(t, "a")
	out, err := handlers.NewAggregate(env.Deps).Handle(context.Background(), model.AggregateInput{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if out.ResultsS3Key != nil {
		t.Errorf("results_s3_key = %s with no bucket", *out.ResultsS3Key)
	}
	b, _ := json.Marshal(out)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if v, ok := m["results_s3_key"]; !ok || v != nil {
		t.Errorf("results_s3_key should be null in %s", b)
	}
}

func TestAggregateUnknownRun(t *testing.T) {
	env := testenv.Setup(t, nil)
	_, err := lambdaio.Raw(handlers.NewAggregate(env.Deps).Handle)(context.Background(), []byte(`{"run_id":"run-ghost"}`))
	var lerr messages.InvokeResponse_Error
	if !errors.As(err, &lerr) || lerr.Type != "RunNotFoundError" {
		t.Fatalf("error %v, want RunNotFoundError", err)
	}
	if want := `run "run-ghost" not found`; lerr.Message != want {
		t.Errorf("message %q, want %q", lerr.Message, want)
	}
	_, err = lambdaio.Raw(handlers.NewAggregate(env.Deps).Handle)(context.Background(), []byte(`{}`))
	if !errors.As(err, &lerr) || lerr.Type != "InvalidInputError" {
		t.Fatalf("missing run_id: %v, want InvalidInputError", err)
	}
}

func TestFailedS3PutLeavesTheRunAsItWas(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "a", "b")
	env.PutTask(t, completed(runID, "a", "1.5", true))
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
	}))
	defer failing.Close()
	t.Setenv("AWS_ENDPOINT_URL_S3", failing.URL)
	deps, err := handlers.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before := env.Run(t, runID)

	_, err = lambdaio.Raw(handlers.NewAggregate(deps).Handle)(context.Background(), []byte(`{"run_id":"`+runID+`"}`))
	var lerr messages.InvokeResponse_Error
	if !errors.As(err, &lerr) || lerr.Type != "ServiceError" {
		t.Fatalf("error %v, want a ServiceError", err)
	}
	after := env.Run(t, runID)
	for _, attr := range []string{"completed_tasks", "failed_tasks", "total_cost_usd", "updated_at", "accuracy"} {
		if fmt.Sprint(before[attr]) != fmt.Sprint(after[attr]) {
			t.Errorf("%s changed from %v to %v although the S3 put failed", attr, before[attr], after[attr])
		}
	}
}

// The run's score is the mean of its tasks' scores over every task but the
// unscored ones (data without expected outputs): failed, unfinished and
// unchecked tasks count 0. The worker's relative result keys come out whole.
func TestAggregateScoresTheRunAndResolvesResultKeys(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "full", "half", "none", "unscored", "unchecked", "failed", "pending")
	scored := func(id string, pairs, correct int) map[string]any {
		task := completed(runID, id, "0.01", pairs > 0 && correct == pairs)
		task["result_s3_key"] = model.RelativeSubmissionKey(id) // as the benchmark's worker writes it
		task["pairs"], task["pairs_correct"] = pairs, correct
		task["tokens_input"], task["tokens_output"] = 100, 10
		if pairs > 0 {
			task["score"] = float64(correct) / float64(pairs)
		}
		return task
	}
	env.PutTask(t, scored("full", 2, 2))
	env.PutTask(t, scored("half", 2, 1))
	env.PutTask(t, scored("none", 1, 0))
	env.PutTask(t, scored("unscored", 0, 0))
	unchecked := completed(runID, "unchecked", "0.01", false)
	delete(unchecked, "result_s3_key")
	env.PutTask(t, unchecked)
	env.PutTask(t, map[string]any{"run_id": runID, "task_id": "failed", "status": "FAILED_PERMANENT", "retry_count": 3})

	out, err := handlers.NewAggregate(env.Deps).Handle(context.Background(), model.AggregateInput{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	const want = (1 + 0.5) / 6 // six tasks count: all but "unscored"
	if out.Score == nil || *out.Score != want || out.ScoredTasks != 6 {
		t.Fatalf("score %v over %d tasks, want %v over 6", out.Score, out.ScoredTasks, want)
	}
	if out.Accuracy != 1.0/5 {
		t.Errorf("accuracy %v, want 1/5 (one of five completed tasks fully correct)", out.Accuracy)
	}
	doc, _ := readAggregated(t, env, *out.ResultsS3Key)
	m := doc.Metrics
	if m.Score == nil || *m.Score != want || m.ScoredTasks != 6 || m.UnscoredTasks != 1 {
		t.Errorf("metrics score %v scored %d unscored %d", m.Score, m.ScoredTasks, m.UnscoredTasks)
	}
	if m.TotalTokensIn != 400 || m.TotalTokensOut != 40 {
		t.Errorf("tokens %d in, %d out; want 400 and 40", m.TotalTokensIn, m.TotalTokensOut)
	}
	for _, r := range doc.TaskResults {
		switch r.TaskID {
		case "half":
			if r.Score == nil || *r.Score != 0.5 || r.Pairs != 2 || r.PairsCorrect != 1 || r.ResultS3Key != model.SubmissionKey(runID, "half") {
				t.Errorf("half: %+v", r)
			}
		case "unscored", "unchecked", "failed", "pending":
			if r.Score != nil {
				t.Errorf("%s: score %v, want null", r.TaskID, *r.Score)
			}
		}
	}
	run := env.Run(t, runID)
	if testenv.N(run, "score") == "" || testenv.N(run, "total_input_tokens") != "400" {
		t.Errorf("run record: score %q, total_input_tokens %q", testenv.N(run, "score"), testenv.N(run, "total_input_tokens"))
	}
}

// Whatever a worker writes is read or reported: a number written as a
// string is read as the number; what cannot be read is named per task in
// aggregated.json and left out of the totals. Costs are kept to 1e-12, so
// no valid cost pushes the total past DynamoDB's 38 digits.
func TestAggregateReadsOrReportsWhatTheWorkerWrote(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "string-cost", "tiny-cost", "bad-cost", "bad-correct", "bad-tokens", "negative")
	put := func(id string, extra map[string]any) {
		task := map[string]any{"run_id": runID, "task_id": id, "status": "COMPLETED", "retry_count": 0}
		for k, v := range extra {
			task[k] = v
		}
		env.PutTask(t, task)
	}
	put("string-cost", map[string]any{"cost_usd": "0.25", "tokens_input": "100", "is_correct": "true"})
	put("tiny-cost", map[string]any{"cost_usd": json.Number("1E-50")})
	put("bad-cost", map[string]any{"cost_usd": "twelve cents"})
	put("bad-correct", map[string]any{"cost_usd": json.Number("0.5"), "is_correct": "yes"})
	put("bad-tokens", map[string]any{"cost_usd": json.Number("0.25"), "tokens_output": "many"})
	put("negative", map[string]any{"cost_usd": json.Number("-3")})

	out, err := handlers.NewAggregate(env.Deps).Handle(context.Background(), model.AggregateInput{RunID: runID})
	if err != nil {
		t.Fatalf("aggregate: %v (a run whose every task completed must not fail on a worker's values)", err)
	}
	if out.TotalCostUSD != "1" {
		t.Errorf("total cost %s, want 1 (0.25 as a string, 1E-50 kept to 1e-12, 0.5 and 0.25 with their other field bad)", out.TotalCostUSD)
	}
	doc, _ := readAggregated(t, env, *out.ResultsS3Key)
	if doc.Metrics.InvalidTasks != 4 || doc.Metrics.TotalTokensIn != 100 {
		t.Errorf("invalid_tasks %d, tokens in %d; want 4 and 100", doc.Metrics.InvalidTasks, doc.Metrics.TotalTokensIn)
	}
	want := map[string]string{"bad-cost": "cost_usd", "bad-correct": "is_correct", "bad-tokens": "tokens_output", "negative": "cost_usd"}
	for _, r := range doc.TaskResults {
		attr, bad := want[r.TaskID]
		if !bad {
			if len(r.Invalid) > 0 {
				t.Errorf("%s: invalid %+v", r.TaskID, r.Invalid)
			}
			continue
		}
		if len(r.Invalid) != 1 || r.Invalid[0].Attribute != attr || r.Invalid[0].Value == "" {
			t.Errorf("%s: invalid %+v, want %s named with its value", r.TaskID, r.Invalid, attr)
		}
	}
	if testenv.N(env.Run(t, runID), "total_cost_usd") != "1" {
		t.Errorf("run total_cost_usd %s", testenv.N(env.Run(t, runID), "total_cost_usd"))
	}
}
