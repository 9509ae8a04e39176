package worker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/internal/testenv"
	"arcbench/shared/arcdata"
	"arcbench/shared/handlers"
	"arcbench/shared/model"
	"arcbench/shared/money"
	"arcbench/shared/worker"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	dataSource = "evaluation"
	jobID      = "job-0001"
)

// world is one test's servers, with the worker's environment pointing at them.
type world struct {
	*testenv.Env
	rateLimits string
}

func setup(t *testing.T) world {
	t.Helper()
	env := testenv.Setup(t, nil)
	w := world{Env: env, rateLimits: "rate_limits_" + env.Tables.Tasks}
	if _, err := env.DB.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String(w.rateLimits),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(model.AttrProvider), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(model.AttrProvider), KeyType: types.KeyTypeHash}},
	}); err != nil {
		t.Fatalf("create rate-limits table: %v", err)
	}
	for k, v := range map[string]string{
		"DYNAMODB_TASKS_TABLE":      env.Tables.Tasks,
		"DYNAMODB_RUNS_TABLE":       env.Tables.Runs,
		"DYNAMODB_RATE_LIMIT_TABLE": w.rateLimits,
		"S3_TASKS_PREFIX":           model.TaskDataPrefix(dataSource),
		"S3_PREFIX":                 "",
		"CONFIG_NAME":               "baseline-config",
		"AWS_BATCH_JOB_ID":          jobID,
		"DATA_SOURCE":               "ignored",
		"RUN_ID":                    "",
		"TASK_ID":                   "",
		worker.EnvFailRate:          "",
		worker.EnvFailSeed:          "",
		worker.EnvFaults:            "",
		worker.EnvWorkerVersion:     "",
	} {
		t.Setenv(k, v)
	}
	return w
}

// newRun creates a run of PENDING tasks with initialize and uploads each
// task's generated data where S3_TASKS_PREFIX points.
func (w world) newRun(t *testing.T, taskIDs ...string) string {
	t.Helper()
	out, err := handlers.NewInitialize(w.Deps).Handle(context.Background(),
		model.InitializeInput{ConfigName: "baseline-config", TaskIDs: taskIDs, DataSource: dataSource})
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	for _, id := range taskIDs {
		w.put(t, model.TaskDataKey(dataSource, id), mustJSON(arcdata.Generate(id, 1)))
	}
	return out.RunID
}

func (w world) put(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := testenv.DirectS3(t).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(w.Bucket), Key: aws.String(key), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// object reads an object of the bucket; ok is false when there is none.
func (w world) object(t *testing.T, key string) (body []byte, contentType string, ok bool) {
	t.Helper()
	out, err := testenv.DirectS3(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(w.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, "", false
	}
	defer out.Body.Close()
	body, err = io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body, aws.ToString(out.ContentType), true
}

// newWorker builds a worker on the test's environment, for tests that drive
// Handle itself.
func newWorker(t *testing.T, runID, taskID string) *worker.Worker {
	t.Helper()
	t.Setenv("RUN_ID", runID)
	t.Setenv("TASK_ID", taskID)
	cfg, err := worker.ConfigFromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	return worker.New(cfg, testenv.Clients(t))
}

// work runs the worker process's logic for one task, as `arcbench worker`
// does, and returns its exit code and stderr.
func work(t *testing.T, runID, taskID string, env ...string) (int, string) {
	t.Helper()
	return workCtx(context.Background(), t, runID, taskID, env...)
}

func workCtx(ctx context.Context, t *testing.T, runID, taskID string, env ...string) (int, string) {
	t.Helper()
	t.Setenv("RUN_ID", runID)
	t.Setenv("TASK_ID", taskID)
	for i := 0; i+1 < len(env); i += 2 {
		t.Setenv(env[i], env[i+1])
	}
	var stderr bytes.Buffer
	code := worker.Main(ctx, nil, os.Getenv, &stderr)
	checkLogs(t, stderr.String(), runID, taskID)
	return code, stderr.String()
}

// checkLogs wants every stderr line to be a JSON log record naming the run
// and task, and one line in all (one per outcome).
func checkLogs(t *testing.T, stderr, runID, taskID string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(stderr))
	lines := 0
	for sc.Scan() {
		lines++
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Errorf("stderr line is not JSON: %q", sc.Text())
			continue
		}
		if rec["run_id"] != runID || rec["task_id"] != taskID {
			t.Errorf("log line without run_id %q and task_id %q: %s", runID, taskID, sc.Text())
		}
	}
	if lines != 1 {
		t.Errorf("the worker logged %d lines, want 1: %s", lines, stderr)
	}
}

var isoformat = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$`)

// checkTime wants an attribute in Python's isoformat(), between from and to.
func checkTime(t *testing.T, what, s string, from, to time.Time) {
	t.Helper()
	if !isoformat.MatchString(s) {
		t.Errorf("%s = %q: not Python's isoformat() of a UTC time", what, s)
		return
	}
	got, err := model.ParseTime(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Before(from.Truncate(time.Microsecond)) || got.After(to) {
		t.Errorf("%s = %s: not during the attempt (%s to %s)", what, s, from.UTC(), to.UTC())
	}
}

// A task of a rule the baseline knows and one of a rule it does not: both
// complete, each step's writes as the benchmark's worker makes them.
func TestCompletesATask(t *testing.T) {
	w := setup(t)
	var known, unknown string
	for _, id := range arcdata.IDs(100, 1) {
		if arcdata.Known(arcdata.Rule(id, 1)) && known == "" {
			known = id
		}
		if !arcdata.Known(arcdata.Rule(id, 1)) && unknown == "" {
			unknown = id
		}
	}
	runID := w.newRun(t, known, unknown)
	var totalCost money.Sum
	totalIn, totalOut := 0, 0
	for _, id := range []string{known, unknown} {
		from := time.Now()
		code, stderr := work(t, runID, id)
		to := time.Now()
		if code != worker.ExitDone || !strings.Contains(stderr, `"msg":"task completed"`) {
			t.Fatalf("%s: exit %d: %s", id, code, stderr)
		}
		task := arcdata.Generate(id, 1)
		predictions, _ := arcdata.Solve(task)
		in, out := worker.Usage(task, predictions)
		wantCost := worker.CostUSD(in, out)
		totalIn, totalOut = totalIn+in, totalOut+out
		if err := totalCost.Add(wantCost); err != nil {
			t.Fatal(err)
		}

		item := w.Task(t, runID, id)
		for name, c := range map[string]struct{ got, want string }{
			"status":        {testenv.S(item, model.AttrStatus), model.TaskCompleted},
			"worker_id":     {testenv.S(item, model.AttrWorkerID), jobID},
			"cost_usd":      {testenv.N(item, model.AttrCostUSD), wantCost},
			"result_s3_key": {testenv.S(item, model.AttrResultS3Key), "submissions/" + id + ".json"},
			"tokens_input":  {testenv.N(item, model.AttrTokensInput), strconv.Itoa(in)},
			"tokens_output": {testenv.N(item, model.AttrTokensOutput), strconv.Itoa(out)},
			"retry_count":   {testenv.N(item, model.AttrRetryCount), "0"},
		} {
			if c.got != c.want {
				t.Errorf("%s: %s = %q, want %q", id, name, c.got, c.want)
			}
		}
		for _, name := range []string{model.AttrStartedAt, model.AttrCompletedAt, model.AttrUpdatedAt} {
			checkTime(t, id+" "+name, testenv.S(item, name), from, to)
		}
		if _, ok := item[model.AttrIsCorrect]; ok {
			t.Errorf("%s: the worker wrote is_correct", id)
		}
		if _, ok := item[model.AttrError]; ok {
			t.Errorf("%s: the worker wrote an error", id)
		}

		body, ct, ok := w.object(t, model.SubmissionKey(runID, id))
		if !ok || ct != "application/json" {
			t.Fatalf("%s: submission: found %v, content type %q", id, ok, ct)
		}
		checkSubmission(t, body, task, predictions, id, from, to)
	}

	run := w.Run(t, runID)
	for name, want := range map[string]string{
		model.AttrCompletedTasks:    "2",
		model.AttrFailedTasks:       "0",
		model.AttrTotalCostUSD:      totalCost.String(),
		model.AttrTotalInputTokens:  strconv.Itoa(totalIn),
		model.AttrTotalOutputTokens: strconv.Itoa(totalOut),
	} {
		if got := testenv.N(run, name); got != want {
			t.Errorf("run %s = %q, want %q", name, got, want)
		}
	}
	if !isoformat.MatchString(testenv.S(run, model.AttrUpdatedAt)) {
		t.Errorf("run updated_at = %q", testenv.S(run, model.AttrUpdatedAt))
	}
}

// checkSubmission decodes a submission both as the exported types and as
// plain JSON (for its exact field names and nulls).
func checkSubmission(t *testing.T, body []byte, task arcdata.Task, predictions [][][]int, id string, from, to time.Time) {
	t.Helper()
	var sub worker.Submission
	if err := json.Unmarshal(body, &sub); err != nil {
		t.Fatalf("%s: submission is not JSON: %v\n%s", id, err, body)
	}
	if len(sub) != len(task.Test) {
		t.Fatalf("%s: %d pairs in the submission, want %d", id, len(sub), len(task.Test))
	}
	var costs money.Sum
	for i, pair := range sub {
		a := pair.Attempt1
		if a == nil || pair.Attempt2 != nil {
			t.Fatalf("%s pair %d: attempt_1 %v, attempt_2 %v: want an answer and null", id, i, a, pair.Attempt2)
		}
		if !reflect.DeepEqual(a.Answer, predictions[i]) {
			t.Errorf("%s pair %d: answer %v, want %v", id, i, a.Answer, predictions[i])
		}
		want := arcdata.Equal(predictions[i], task.Test[i].Output)
		if a.Correct == nil || *a.Correct != want {
			t.Errorf("%s pair %d: correct %v, want %v", id, i, a.Correct, want)
		}
		m := a.Metadata
		prompt, completion := worker.PairUsage(task, i, predictions[i])
		if m.Model != "baseline" || m.Provider != "baseline" || m.TaskID != id || m.PairIndex != i || m.TestID != "baseline-config" ||
			m.Usage.PromptTokens != prompt || m.Usage.CompletionTokens != completion || m.Usage.TotalTokens != prompt+completion ||
			m.Cost.TotalCost.String() != worker.CostUSD(prompt, completion) ||
			m.Cost.PromptCost.String() != worker.CostUSD(prompt, 0) || m.Cost.CompletionCost.String() != worker.CostUSD(0, completion) ||
			m.Cost.ReasoningCost != nil || m.ReasoningSummary != nil {
			t.Errorf("%s pair %d: metadata %+v", id, i, m)
		}
		checkTime(t, "start_timestamp", m.StartTimestamp, from, to)
		checkTime(t, "end_timestamp", m.EndTimestamp, from, to)
		if err := costs.Add(m.Cost.TotalCost.String()); err != nil {
			t.Fatal(err)
		}
	}
	in, out := worker.Usage(task, predictions)
	if costs.String() != worker.CostUSD(in, out) {
		t.Errorf("%s: the pairs' costs add up to %s, the task's is %s", id, costs.String(), worker.CostUSD(in, out))
	}

	var raw []map[string]map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
	for i, pair := range raw {
		if a2, ok := pair["attempt_2"]; !ok || a2 != nil || len(pair) != 2 {
			t.Errorf("%s pair %d: %v: want attempt_1 and a null attempt_2", id, i, pair)
		}
		a := pair["attempt_1"]
		md, _ := a["metadata"].(map[string]any)
		usage, _ := md["usage"].(map[string]any)
		details, _ := usage["completion_tokens_details"].(map[string]any)
		cost, _ := md["cost"].(map[string]any)
		for what, c := range map[string]struct{ got, want []string }{
			"attempt":  {keys(a), []string{"answer", "correct", "metadata"}},
			"metadata": {keys(md), []string{"choices", "cost", "end_timestamp", "kwargs", "model", "pair_index", "provider", "reasoning_summary", "start_timestamp", "task_id", "test_id", "usage"}},
			"usage":    {keys(usage), []string{"completion_tokens", "completion_tokens_details", "prompt_tokens", "total_tokens"}},
			"details":  {keys(details), []string{"accepted_prediction_tokens", "reasoning_tokens", "rejected_prediction_tokens"}},
			"cost":     {keys(cost), []string{"completion_cost", "prompt_cost", "reasoning_cost", "total_cost"}},
		} {
			if !slices.Equal(c.got, c.want) {
				t.Errorf("%s pair %d: %s fields %v, want %v", id, i, what, c.got, c.want)
			}
		}
		if !reflect.DeepEqual(md["choices"], []any{}) || !reflect.DeepEqual(md["kwargs"], map[string]any{}) ||
			!reflect.DeepEqual(details, map[string]any{"reasoning_tokens": 0.0, "accepted_prediction_tokens": 0.0, "rejected_prediction_tokens": 0.0}) {
			t.Errorf("%s pair %d: choices %v, kwargs %v, details %v", id, i, md["choices"], md["kwargs"], details)
		}
	}
}

// correct is set only for a test pair whose output the task data holds.
func TestCorrectIsNullWithoutOutput(t *testing.T) {
	w := setup(t)
	runID := w.newRun(t, "0ffc0de1")
	task := arcdata.Generate("0ffc0de1", 1)
	task.Test = append(task.Test, arcdata.Pair{Input: task.Test[0].Input})
	w.put(t, model.TaskDataKey(dataSource, "0ffc0de1"), mustJSON(task))
	if code, stderr := work(t, runID, "0ffc0de1"); code != worker.ExitDone {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	body, _, _ := w.object(t, model.SubmissionKey(runID, "0ffc0de1"))
	var raw []map[string]map[string]any
	if err := json.Unmarshal(body, &raw); err != nil || len(raw) != len(task.Test) {
		t.Fatalf("submission %s (%v)", body, err)
	}
	for i, pair := range raw {
		got, present := pair["attempt_1"]["correct"]
		if withOutput := i < len(task.Test)-1; !present || (got == nil) == withOutput {
			t.Errorf("pair %d: correct = %v (present %v); the pair has an output: %v", i, got, present, withOutput)
		}
	}
}

// A task that is not PENDING or FAILED, or not there at all, is not
// touched: "already claimed", exit 0, no submission, the run as it was.
func TestAlreadyClaimed(t *testing.T) {
	w := setup(t)
	runID := w.newRun(t, "pending1")
	runBefore := w.Run(t, runID)
	for _, status := range []string{model.TaskInProgress, model.TaskCompleted, model.TaskFailedPermanent, ""} {
		id := "held-" + strings.ToLower(status)
		if status != "" {
			w.PutTask(t, map[string]any{
				model.AttrRunID: runID, model.AttrTaskID: id, model.AttrStatus: status,
				model.AttrRetryCount: 1, model.AttrUpdatedAt: "2026-01-01T00:00:00.000Z",
			})
		} else {
			id = "missing1"
		}
		w.put(t, model.TaskDataKey(dataSource, id), mustJSON(arcdata.Generate(id, 1)))
		before := w.Task(t, runID, id)
		code, stderr := work(t, runID, id)
		if code != worker.ExitDone || !strings.Contains(stderr, `"msg":"already claimed"`) {
			t.Errorf("%q: exit %d, want 0 and already claimed: %s", status, code, stderr)
		}
		if after := w.Task(t, runID, id); !reflect.DeepEqual(before, after) {
			t.Errorf("%q: the record changed:\n%v\n%v", status, before, after)
		}
		if _, _, ok := w.object(t, model.SubmissionKey(runID, id)); ok {
			t.Errorf("%q: a submission was written", status)
		}
	}
	if !reflect.DeepEqual(runBefore, w.Run(t, runID)) {
		t.Error("the run record changed")
	}
}

// Several workers started for one task at once: exactly one claims it.
func TestOneClaimAmongConcurrentWorkers(t *testing.T) {
	w := setup(t)
	runID := w.newRun(t, "0a1b2c3d")
	var mu sync.Mutex
	var wg sync.WaitGroup
	claimed := 0
	for range 6 {
		wk := newWorker(t, runID, "0a1b2c3d")
		wg.Go(func() {
			res, err := wk.Handle(context.Background())
			if err != nil {
				t.Errorf("handle: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if res.Claimed {
				claimed++
			}
		})
	}
	wg.Wait()
	if claimed != 1 {
		t.Errorf("%d workers claimed the task, want 1", claimed)
	}
	if n := testenv.N(w.Run(t, runID), model.AttrCompletedTasks); n != "1" {
		t.Errorf("completed_tasks %s, want 1", n)
	}
}

// A required variable missing, or one malformed: exit 2, naming it, with
// nothing touched.
func TestConfigurationErrorsExit2(t *testing.T) {
	w := setup(t)
	runID := w.newRun(t, "c0ff1e00")
	before := w.Task(t, runID, "c0ff1e00")
	for _, c := range [][]string{
		{"RUN_ID", ""}, {"TASK_ID", " "}, {"CONFIG_NAME", ""}, {"S3_BUCKET", ""},
		{"MAX_RETRIES", "0"}, {"MAX_RETRIES", "three"}, {worker.EnvFaults, "c0ff1e00:1=explode"},
		{worker.EnvFailRate, "2"}, {worker.EnvWorkerVersion, "pr79"},
	} {
		env := []string{"RUN_ID", runID, "TASK_ID", "c0ff1e00", "CONFIG_NAME", "cfg", "S3_BUCKET", w.Bucket, "MAX_RETRIES", "",
			worker.EnvFaults, "", worker.EnvFailRate, "", worker.EnvWorkerVersion, ""}
		env = append(env, c...)
		t.Setenv("RUN_ID", "")
		for i := 0; i < len(env); i += 2 {
			t.Setenv(env[i], env[i+1])
		}
		var stderr bytes.Buffer
		code := worker.Main(context.Background(), nil, os.Getenv, &stderr)
		checkLogs(t, stderr.String(), strings.TrimSpace(os.Getenv("RUN_ID")), strings.TrimSpace(os.Getenv("TASK_ID")))
		if code != worker.ExitConfig || !strings.Contains(stderr.String(), c[0]) {
			t.Errorf("%s=%q: exit %d, stderr %s: want 2 naming it", c[0], c[1], code, stderr.String())
		}
	}
	if after := w.Task(t, runID, "c0ff1e00"); !reflect.DeepEqual(before, after) {
		t.Errorf("the task changed:\n%v\n%v", before, after)
	}
	if n := w.Count(t, w.rateLimits); n != 0 {
		t.Errorf("%d rate-limit items written", n)
	}
}

func TestConfigFromEnv(t *testing.T) {
	base := map[string]string{"S3_BUCKET": " b ", "RUN_ID": "r1", "TASK_ID": "t1", "CONFIG_NAME": "cfg", "DATA_SOURCE": "training"}
	getenv := func(extra ...string) func(string) string {
		m := maps.Clone(base)
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return func(k string) string { return m[k] }
	}
	c, err := worker.ConfigFromEnv(getenv())
	host, _ := os.Hostname()
	want := worker.Config{
		RunID: "r1", TaskID: "t1", ConfigName: "cfg", Bucket: "b",
		RunPrefix: "runs/r1", TasksPrefix: "tasks",
		RunsTable: "arc_benchmark_runs", TasksTable: "arc_task_progress", RateLimitTable: "arc_rate_limits",
		MaxRetries: 3, WorkerID: host + "-" + strconv.Itoa(os.Getpid()), FailSeed: worker.DefaultFailSeed,
		Version: worker.PR77,
	}
	if err != nil || !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults:\n got %+v, %v\nwant %+v", c, err, want)
	}
	c, err = worker.ConfigFromEnv(getenv("S3_TASKS_PREFIX", "tasks/training/", "S3_PREFIX", "elsewhere/r1",
		"AWS_BATCH_JOB_ID", "j-9", "MAX_RETRIES", " 5 ", worker.EnvFailRate, "0.25", worker.EnvFailSeed, "-7",
		worker.EnvFaults, "t1:2=die-after-claim", worker.EnvWorkerVersion, " silent "))
	if err != nil || c.TasksPrefix != "tasks/training" || c.RunPrefix != "elsewhere/r1" || c.WorkerID != "j-9" ||
		c.MaxRetries != 5 || c.FailRate != 0.25 || c.FailSeed != -7 || c.Version != worker.Silent ||
		!reflect.DeepEqual(c.Faults, worker.Faults{{TaskID: "t1", Attempt: 2, Mode: worker.DieAfterClaim}}) {
		t.Fatalf("set: %+v, %v", c, err)
	}
	c, err = worker.ConfigFromEnv(getenv("RUN_ID", "", "CONFIG_NAME", " ", "MAX_RETRIES", "-1"))
	var ce *worker.ConfigError
	if !errors.As(err, &ce) || worker.ExitCode(err) != worker.ExitConfig {
		t.Fatalf("error %v, want a ConfigError", err)
	}
	for _, name := range []string{"RUN_ID", "CONFIG_NAME", "MAX_RETRIES"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if strings.Contains(err.Error(), "TASK_ID") {
		t.Errorf("error %q names TASK_ID, which is set", err)
	}
}

// A failed attempt is counted by the worker itself: retry_count + 1 with the
// error, FAILED, then FAILED_PERMANENT at MAX_RETRIES, which adds one to the
// run's failed_tasks. A permanently failed task is not claimed again.
func TestFailurePath(t *testing.T) {
	w := setup(t)
	runID := w.newRun(t, "bad0da7a")
	w.put(t, model.TaskDataKey(dataSource, "bad0da7a"), []byte(`{"train":[],"test":[{"input":[[1,2],[3]]}]}`))
	t.Setenv("MAX_RETRIES", "3")

	for attempt, c := range []struct{ tasksPrefix, status, failedTasks, errorHas string }{
		{"tasks/training", model.TaskFailed, "0", "tasks/training/bad0da7a.json"},
		{"tasks/evaluation/", model.TaskFailed, "0", "row 1 has 1 cells"},
		{"tasks/training", model.TaskFailedPermanent, "1", "tasks/training/bad0da7a.json"},
	} {
		from := time.Now()
		code, stderr := work(t, runID, "bad0da7a", "S3_TASKS_PREFIX", c.tasksPrefix)
		if code != worker.ExitFailed || !strings.Contains(stderr, `"msg":"attempt failed"`) {
			t.Fatalf("attempt %d: exit %d, want 1: %s", attempt+1, code, stderr)
		}
		item := w.Task(t, runID, "bad0da7a")
		if s, rc, e := testenv.S(item, model.AttrStatus), testenv.N(item, model.AttrRetryCount), testenv.S(item, model.AttrError); s != c.status ||
			rc != strconv.Itoa(attempt+1) || !strings.Contains(e, c.errorHas) {
			t.Errorf("attempt %d: status %s, retry_count %s, error %q; want %s, %d, naming %q", attempt+1, s, rc, e, c.status, attempt+1, c.errorHas)
		}
		checkTime(t, "updated_at", testenv.S(item, model.AttrUpdatedAt), from, time.Now())
		if _, ok := item[model.AttrCostUSD]; ok {
			t.Errorf("attempt %d: a failed attempt wrote cost_usd", attempt+1)
		}
		if got := testenv.N(w.Run(t, runID), model.AttrFailedTasks); got != c.failedTasks {
			t.Errorf("attempt %d: run failed_tasks %s, want %s", attempt+1, got, c.failedTasks)
		}
	}
	if _, _, ok := w.object(t, model.SubmissionKey(runID, "bad0da7a")); ok {
		t.Error("a failed attempt wrote a submission")
	}
	if code, stderr := work(t, runID, "bad0da7a"); code != worker.ExitDone || !strings.Contains(stderr, "already claimed") {
		t.Errorf("after FAILED_PERMANENT: exit %d: %s", code, stderr)
	}
	if run := w.Run(t, runID); testenv.N(run, model.AttrFailedTasks) != "1" || testenv.N(run, model.AttrCompletedTasks) != "0" {
		t.Errorf("run: %v", run)
	}
}

// A run record without total_input_tokens: the run's update gets DynamoDB's
// ValidationException after the task was marked COMPLETED, and the worker
// flips the task back to FAILED, as the benchmark's worker does.
func TestRunRecordWithoutATotal(t *testing.T) {
	w := setup(t)
	runID := w.newRun(t, "a11c0575")
	if _, err := w.DB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:        aws.String(w.Tables.Runs),
		Key:              map[string]types.AttributeValue{model.AttrRunID: &types.AttributeValueMemberS{Value: runID}},
		UpdateExpression: aws.String("REMOVE " + model.AttrTotalInputTokens),
	}); err != nil {
		t.Fatal(err)
	}
	code, stderr := work(t, runID, "a11c0575")
	if code != worker.ExitFailed || !strings.Contains(stderr, "ValidationException") {
		t.Fatalf("exit %d, want 1 with the ValidationException: %s", code, stderr)
	}
	item := w.Task(t, runID, "a11c0575")
	if s, rc := testenv.S(item, model.AttrStatus), testenv.N(item, model.AttrRetryCount); s != model.TaskFailed || rc != "1" ||
		!strings.Contains(testenv.S(item, model.AttrError), "ValidationException") {
		t.Errorf("task: status %s, retry_count %s, error %q: want FAILED, 1, the ValidationException", s, rc, testenv.S(item, model.AttrError))
	}
	// What the completion wrote stays, as it does with the benchmark's worker.
	if testenv.N(item, model.AttrCostUSD) == "" || testenv.S(item, model.AttrCompletedAt) == "" {
		t.Errorf("the completion's writes are gone: %v", item)
	}
	if _, _, ok := w.object(t, model.SubmissionKey(runID, "a11c0575")); !ok {
		t.Error("no submission")
	}
	if run := w.Run(t, runID); testenv.N(run, model.AttrCompletedTasks) != "0" || testenv.N(run, model.AttrTotalCostUSD) != "0" {
		t.Errorf("the run's failed update changed it: %v", run)
	}
}

// A signal before the worker starts, or while it waits for the rate limit:
// exit 130, nothing marked.
func TestInterrupted(t *testing.T) {
	w := setup(t)
	runID := w.newRun(t, "1e7e0001", "1e7e0002")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := w.Task(t, runID, "1e7e0001")
	if code, stderr := workCtx(ctx, t, runID, "1e7e0001"); code != worker.ExitInterrupted {
		t.Errorf("exit %d, want 130: %s", code, stderr)
	}
	if !reflect.DeepEqual(before, w.Task(t, runID, "1e7e0001")) {
		t.Error("an interrupted worker changed the task")
	}

	// The bucket is empty (and the clock stands still): the worker waits,
	// and the signal comes then.
	t0 := time.Now()
	w.putBucket(t, "0", t0)
	wk := newWorker(t, runID, "1e7e0002")
	wk.Now = func() time.Time { return t0 }
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	wk.Sleep = func(ctx context.Context, d time.Duration) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}
	res, err := wk.Handle(ctx)
	if worker.ExitCode(err) != worker.ExitInterrupted || !errors.Is(err, worker.ErrInterrupted) || !res.Claimed {
		t.Fatalf("claimed %v, error %v: want an interrupted claimed attempt", res.Claimed, err)
	}
	item := w.Task(t, runID, "1e7e0002")
	if testenv.S(item, model.AttrStatus) != model.TaskInProgress || testenv.N(item, model.AttrRetryCount) != "0" || item[model.AttrError] != nil {
		t.Errorf("interrupted during the attempt: %v", item)
	}
}

// putBucket sets the rate-limit bucket's item.
func (w world) putBucket(t *testing.T, tokens string, lastUpdate time.Time) {
	t.Helper()
	if _, err := w.DB.PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: aws.String(w.rateLimits),
		Item: map[string]types.AttributeValue{
			model.AttrProvider:    &types.AttributeValueMemberS{Value: worker.BaselineModel},
			worker.AttrTokens:     &types.AttributeValueMemberN{Value: tokens},
			worker.AttrLastUpdate: &types.AttributeValueMemberN{Value: strconv.FormatFloat(float64(lastUpdate.UnixMicro())/1e6, 'f', 6, 64)},
		},
	}); err != nil {
		t.Fatal(err)
	}
}

// bucket reads the rate-limit bucket's tokens.
func (w world) bucket(t *testing.T) (tokens float64, ok bool) {
	t.Helper()
	out, err := w.DB.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(w.rateLimits),
		Key:       map[string]types.AttributeValue{model.AttrProvider: &types.AttributeValueMemberS{Value: worker.BaselineModel}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Item == nil {
		return 0, false
	}
	n, err := strconv.ParseFloat(testenv.N(out.Item, worker.AttrTokens), 64)
	if err != nil || testenv.N(out.Item, worker.AttrLastUpdate) == "" {
		t.Fatalf("bucket item %v", out.Item)
	}
	return n, true
}

func TestCostUSD(t *testing.T) {
	for _, c := range []struct {
		in, out int
		want    string
	}{{0, 0, "0"}, {1, 0, "0.000003"}, {100, 10, "0.00045"}, {1_000_000, 0, "3"}, {400_000, 20_000, "1.5"}} {
		if got := worker.CostUSD(c.in, c.out); got != c.want {
			t.Errorf("CostUSD(%d, %d) = %s, want %s", c.in, c.out, got, c.want)
		}
	}
	task := arcdata.Task{
		Train: []arcdata.Pair{{Input: arcdata.Grid{{1, 2}}, Output: arcdata.Grid{{2, 1}}}},
		Test:  []arcdata.Pair{{Input: arcdata.Grid{{3}, {4}}}, {Input: arcdata.Grid{{5, 6, 7}}}},
	}
	// Pair 0: 64 + (2+1)*2 train + (2+2) test = 74 in; pair 1: 64 + 6 + 4 = 74 in.
	in, out := worker.Usage(task, [][][]int{{{1}}, {{1, 2}, {3, 4}}})
	if in != 148 || out != 2+6 {
		t.Errorf("Usage = %d, %d; want 148, 8", in, out)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
