package worker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
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
	"arcbench/shared/worker"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const dataSource = "evaluation"

// world is one test's servers, with the worker's environment pointing at them.
type world struct {
	*testenv.Env
}

func setup(t *testing.T) world {
	t.Helper()
	env := testenv.Setup(t, nil)
	for k, v := range map[string]string{
		"DYNAMODB_TASKS_TABLE":      env.Tables.Tasks,
		"DYNAMODB_RUNS_TABLE":       env.Tables.Runs,
		"DYNAMODB_RATE_LIMIT_TABLE": "rate_limits",
		"DATA_SOURCE":               dataSource,
		"CONFIG_NAME":               "baseline",
		"RUN_ID":                    "",
		"TASK_ID":                   "",
		worker.EnvFailRate:          "",
		worker.EnvFailSeed:          "",
	} {
		t.Setenv(k, v)
	}
	return world{env}
}

// newRun creates a run of PENDING tasks with initialize and uploads each
// task's generated data.
func (w world) newRun(t *testing.T, taskIDs ...string) string {
	t.Helper()
	out, err := handlers.NewInitialize(w.Deps).Handle(context.Background(),
		model.InitializeInput{ConfigName: "baseline", TaskIDs: taskIDs, DataSource: dataSource})
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	for _, id := range taskIDs {
		b, _ := json.Marshal(arcdata.Generate(id, 1))
		w.put(t, model.TaskDataKey(dataSource, id), b)
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

// work runs the worker process's logic for one task, as `arcbench worker`
// does, and returns its exit code and stderr.
func work(t *testing.T, runID, taskID string, env ...string) (int, string) {
	t.Helper()
	t.Setenv("RUN_ID", runID)
	t.Setenv("TASK_ID", taskID)
	for i := 0; i+1 < len(env); i += 2 {
		t.Setenv(env[i], env[i+1])
	}
	var stderr bytes.Buffer
	code := worker.Main(context.Background(), os.Getenv, &stderr)
	checkLogs(t, stderr.String(), runID, taskID)
	return code, stderr.String()
}

// checkLogs wants every stderr line to be a JSON log record naming the run and task.
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
	if lines == 0 {
		t.Error("the worker logged nothing")
	}
}

func boolAttr(item map[string]types.AttributeValue, name string) (value, ok bool) {
	v, ok := item[name].(*types.AttributeValueMemberBOOL)
	if !ok {
		return false, false
	}
	return v.Value, true
}

// Two tasks, one of a rule the baseline knows and one of a rule it does not:
// both complete, with the submission written and every attribute of the
// contract set; is_correct tells them apart.
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
	for _, id := range []string{known, unknown} {
		start := model.FormatTime(time.Now())
		code, stderr := work(t, runID, id)
		if code != worker.ExitDone {
			t.Fatalf("%s: exit %d: %s", id, code, stderr)
		}
		task := arcdata.Generate(id, 1)
		predictions, _ := arcdata.Solve(task)
		in, out := worker.Usage(task, predictions)
		wantCost := worker.CostUSD(in, out)

		item := w.Task(t, runID, id)
		key := model.SubmissionKey(runID, id)
		correct, hasCorrect := boolAttr(item, model.AttrIsCorrect)
		for name, c := range map[string]struct{ got, want any }{
			"status":        {testenv.S(item, model.AttrStatus), model.TaskCompleted},
			"cost_usd":      {testenv.N(item, model.AttrCostUSD), wantCost},
			"is_correct":    {[]bool{correct, hasCorrect}, []bool{id == known, true}},
			"result_s3_key": {testenv.S(item, model.AttrResultS3Key), key},
			"tokens_input":  {testenv.N(item, model.AttrTokensInput), strconv.Itoa(in)},
			"tokens_output": {testenv.N(item, model.AttrTokensOutput), strconv.Itoa(out)},
			"retry_count":   {testenv.N(item, model.AttrRetryCount), "0"},
		} {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s: %s = %v, want %v", id, name, c.got, c.want)
			}
		}
		if u := testenv.S(item, model.AttrUpdatedAt); u < start {
			t.Errorf("%s: updated_at %q is before the attempt (%s)", id, u, start)
		}
		if !strings.HasPrefix(wantCost, "0.00") || strings.HasSuffix(wantCost, "0") {
			t.Errorf("cost %q: want a small exact decimal without trailing zeros", wantCost)
		}

		body, ct, ok := w.object(t, key)
		if !ok || ct != "application/json" {
			t.Fatalf("%s: submission %s: found %v, content type %q", id, key, ok, ct)
		}
		var sub worker.Submission
		if err := json.Unmarshal(body, &sub); err != nil {
			t.Fatalf("submission is not JSON: %v\n%s", err, body)
		}
		if sub.TaskID != id || sub.RunID != runID || sub.Attempt != 0 || sub.ConfigName != "baseline" ||
			!reflect.DeepEqual(sub.Predictions, predictions) || string(sub.CostUSD) != wantCost {
			t.Errorf("%s: submission %s", id, body)
		}
		if arcdata.Correct(task, sub.Predictions) != (id == known) {
			t.Errorf("%s: predictions are right=%v, want %v", id, !(id == known), id == known)
		}
		if !strings.Contains(stderr, `"msg":"task completed"`) {
			t.Errorf("%s: no completion log line: %s", id, stderr)
		}
	}
}

// A task another worker holds, or one that is done, is not touched: exit 0,
// the record as it was, no submission.
func TestLeavesUnclaimableTasksAlone(t *testing.T) {
	w := setup(t)
	for _, status := range []string{model.TaskInProgress, model.TaskCompleted, model.TaskFailedPermanent} {
		id := "held-" + strings.ToLower(status)
		w.PutTask(t, map[string]any{
			model.AttrRunID: "run-x", model.AttrTaskID: id, model.AttrStatus: status,
			model.AttrRetryCount: 1, model.AttrUpdatedAt: "2026-01-01T00:00:00.000Z",
		})
		w.put(t, model.TaskDataKey(dataSource, id), mustJSON(arcdata.Generate(id, 1)))
		before := w.Task(t, "run-x", id)
		code, stderr := work(t, "run-x", id)
		if code != worker.ExitDone {
			t.Errorf("%s: exit %d, want 0: %s", status, code, stderr)
		}
		if after := w.Task(t, "run-x", id); !reflect.DeepEqual(before, after) {
			t.Errorf("%s: the record changed:\n%v\n%v", status, before, after)
		}
		if _, _, ok := w.object(t, model.SubmissionKey("run-x", id)); ok {
			t.Errorf("%s: a submission was written", status)
		}
		if !strings.Contains(stderr, `"status":"`+status+`"`) {
			t.Errorf("%s: the log does not say what the worker found: %s", status, stderr)
		}
	}
}

// Several workers started for one task at once: exactly one claims it.
func TestOneClaimAmongConcurrentWorkers(t *testing.T) {
	w := setup(t)
	runID := w.newRun(t, "0a1b2c3d")
	t.Setenv("RUN_ID", runID)
	t.Setenv("TASK_ID", "0a1b2c3d")
	cfg, err := worker.ConfigFromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	wk := worker.New(cfg, testenv.Clients(t))
	var mu sync.Mutex
	var wg sync.WaitGroup
	claimed := 0
	for range 6 {
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
	if s := testenv.S(w.Task(t, runID, "0a1b2c3d"), model.AttrStatus); s != model.TaskCompleted {
		t.Errorf("status %s", s)
	}
}

func TestConfigurationErrorsExit2(t *testing.T) {
	w := setup(t)
	t.Setenv("DATA_SOURCE", "")
	code, stderr := work(t, "", "t1")
	if code != worker.ExitConfig || !strings.Contains(stderr, "RUN_ID") || !strings.Contains(stderr, "DATA_SOURCE") {
		t.Errorf("exit %d, stderr %q: want 2 naming RUN_ID and DATA_SOURCE", code, stderr)
	}
	t.Setenv("DATA_SOURCE", dataSource)

	// A task the configuration names that has no record: nothing is written.
	code, stderr = work(t, "run-none", "t1")
	if code != worker.ExitConfig || !strings.Contains(stderr, "no task t1 in run run-none") {
		t.Errorf("no record: exit %d, stderr %q", code, stderr)
	}
	if w.Task(t, "run-none", "t1") != nil {
		t.Error("the failed claim created a task record")
	}

	// A task whose data is not in the bucket.
	runID := w.newRun(t, "nodata01")
	code, stderr = work(t, runID, "nodata01", "DATA_SOURCE", "training")
	if code != worker.ExitConfig || !strings.Contains(stderr, "tasks/training/nodata01.json") {
		t.Errorf("no data: exit %d, stderr %q", code, stderr)
	}
	// Malformed data.
	w.put(t, model.TaskDataKey(dataSource, "nodata01"), []byte(`{"train":[],"test":[{"input":[[1,2],[3]]}]}`))
	w.PutTask(t, map[string]any{model.AttrRunID: runID, model.AttrTaskID: "nodata01", model.AttrStatus: model.TaskFailed, model.AttrRetryCount: 1})
	code, stderr = work(t, runID, "nodata01", "DATA_SOURCE", dataSource)
	if code != worker.ExitConfig || !strings.Contains(stderr, "row 1 has 1 cells") {
		t.Errorf("malformed data: exit %d, stderr %q", code, stderr)
	}
}

func TestConfigFromEnv(t *testing.T) {
	base := map[string]string{
		"S3_BUCKET": "b", "DYNAMODB_TASKS_TABLE": "tasks", "RUN_ID": "r", "TASK_ID": "t", "DATA_SOURCE": "evaluation",
	}
	getenv := func(extra ...string) func(string) string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return func(k string) string { return m[k] }
	}
	c, err := worker.ConfigFromEnv(getenv())
	if err != nil || c.FailRate != 0 || c.FailSeed != worker.DefaultFailSeed || c.MaxRetries != 3 || c.TasksTable != "tasks" {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	c, err = worker.ConfigFromEnv(getenv(worker.EnvFailRate, "0.25", worker.EnvFailSeed, "-7", "MAX_RETRIES", "5"))
	if err != nil || c.FailRate != 0.25 || c.FailSeed != -7 || c.MaxRetries != 5 {
		t.Fatalf("set: %+v, %v", c, err)
	}
	for _, bad := range [][]string{
		{worker.EnvFailRate, "1.5"}, {worker.EnvFailRate, "abc"}, {worker.EnvFailRate, "NaN"},
		{worker.EnvFailSeed, "x"}, {"MAX_RETRIES", "0"}, {"S3_BUCKET", " "}, {"TASK_ID", ""},
	} {
		_, err := worker.ConfigFromEnv(getenv(bad...))
		var ce *worker.ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), bad[0]) || worker.ExitCode(err) != worker.ExitConfig {
			t.Errorf("%s=%q: error %v, want a ConfigError naming it", bad[0], bad[1], err)
		}
	}
}

// The failure schedule is a pure function of seed, task and attempt, and
// fails about the share of attempts the rate asks for.
func TestFailsAttemptSchedule(t *testing.T) {
	ids := arcdata.IDs(100, 9)
	for _, rate := range []float64{0.1, 0.3, 0.5} {
		for _, seed := range []int64{1, 2} {
			fails, n := 0, 0
			for _, id := range ids {
				for attempt := range 4 {
					n++
					f := worker.FailsAttempt(seed, id, attempt, rate)
					if f != worker.FailsAttempt(seed, id, attempt, rate) {
						t.Fatal("not deterministic")
					}
					if f {
						fails++
					}
				}
			}
			if share := float64(fails) / float64(n); share < rate-0.07 || share > rate+0.07 {
				t.Errorf("rate %.1f seed %d: %d of %d attempts fail (%.3f)", rate, seed, fails, n, share)
			}
		}
	}
	differ := 0
	for _, id := range ids {
		if worker.FailsAttempt(1, id, 0, 0.5) != worker.FailsAttempt(2, id, 0, 0.5) {
			differ++
		}
		if worker.FailsAttempt(1, id, 0, 0) || !worker.FailsAttempt(1, id, 0, 1) {
			t.Fatal("rate 0 never fails, rate 1 always does")
		}
		// A lower rate fails a subset of what a higher rate fails.
		if worker.FailsAttempt(3, id, 1, 0.2) && !worker.FailsAttempt(3, id, 1, 0.6) {
			t.Fatal("schedules of one seed are not nested")
		}
	}
	if differ < 20 {
		t.Errorf("seeds 1 and 2 differ on only %d of %d tasks", differ, len(ids))
	}
}

// An injected failure exits 1 after the claim and leaves the task
// IN_PROGRESS; once handle-error has marked it FAILED, the next attempt
// (retry_count 1) claims and completes it.
func TestInjectedFailureThenRetry(t *testing.T) {
	w := setup(t)
	const id, rate = "f00dcafe", 0.5
	seed := int64(1)
	for worker.FailsAttempt(seed, id, 0, rate) == false || worker.FailsAttempt(seed, id, 1, rate) {
		seed++ // a schedule that fails the first attempt and not the second
	}
	runID := w.newRun(t, id)
	failEnv := []string{worker.EnvFailRate, "0.5", worker.EnvFailSeed, strconv.FormatInt(seed, 10)}

	code, stderr := work(t, runID, id, failEnv...)
	if code != worker.ExitRetryable || !strings.Contains(stderr, "injected failure") || !strings.Contains(stderr, "attempt 0") {
		t.Fatalf("exit %d, stderr %q: want 1 and the injected failure named", code, stderr)
	}
	item := w.Task(t, runID, id)
	if s := testenv.S(item, model.AttrStatus); s != model.TaskInProgress || item[model.AttrCostUSD] != nil {
		t.Fatalf("after the failure: %v", item)
	}
	if _, _, ok := w.object(t, model.SubmissionKey(runID, id)); ok {
		t.Fatal("a failed attempt wrote a submission")
	}

	// While IN_PROGRESS, a second worker leaves it alone.
	if code, _ := work(t, runID, id, failEnv...); code != worker.ExitDone || testenv.S(w.Task(t, runID, id), model.AttrStatus) != model.TaskInProgress {
		t.Fatalf("a worker started during the attempt: exit %d", code)
	}

	out, err := handlers.NewHandleError(w.Deps).Handle(context.Background(), model.HandleErrorInput{
		RunID: runID, TaskID: id, Error: &model.TaskError{Error: "States.TaskFailed", Cause: "exit 1"},
	})
	if err != nil || out.Status != model.RetryScheduled || out.RetryCount != 1 {
		t.Fatalf("handle-error: %+v, %v", out, err)
	}
	code, stderr = work(t, runID, id, failEnv...)
	if code != worker.ExitDone {
		t.Fatalf("retry: exit %d: %s", code, stderr)
	}
	item = w.Task(t, runID, id)
	if testenv.S(item, model.AttrStatus) != model.TaskCompleted || testenv.N(item, model.AttrRetryCount) != "1" {
		t.Errorf("after the retry: %v", item)
	}
	body, _, _ := w.object(t, model.SubmissionKey(runID, id))
	var sub worker.Submission
	if err := json.Unmarshal(body, &sub); err != nil || sub.Attempt != 1 {
		t.Errorf("submission of the retry: %s (%v)", body, err)
	}
}

// hookDB runs a function before the worker's second UpdateItem (the one that
// marks the task COMPLETED).
type hookDB struct {
	worker.DynamoDB
	updates int
	before  func()
}

func (h *hookDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if h.updates++; h.updates == 2 {
		h.before()
	}
	return h.DynamoDB.UpdateItem(ctx, in, opts...)
}

// An attempt that handle-error counted as failed while it ran (a timed-out
// job still running) does not mark the task COMPLETED: neither while the task
// is FAILED, nor once the next attempt has claimed it (IN_PROGRESS again, at
// the next retry_count).
func TestStaleAttemptDoesNotComplete(t *testing.T) {
	for _, reclaimed := range []bool{false, true} {
		t.Run(map[bool]string{false: "failed", true: "reclaimed"}[reclaimed], func(t *testing.T) {
			testStaleAttempt(t, reclaimed)
		})
	}
}

func testStaleAttempt(t *testing.T, reclaimed bool) {
	w := setup(t)
	runID := w.newRun(t, "5ta1e000")
	t.Setenv("RUN_ID", runID)
	t.Setenv("TASK_ID", "5ta1e000")
	cfg, err := worker.ConfigFromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	wk := worker.New(cfg, testenv.Clients(t))
	wk.DynamoDB = &hookDB{DynamoDB: wk.DynamoDB, before: func() {
		if _, err := handlers.NewHandleError(w.Deps).Handle(context.Background(), model.HandleErrorInput{
			RunID: runID, TaskID: "5ta1e000", Error: &model.TaskError{Error: "States.Timeout", Cause: "timed out"},
		}); err != nil {
			t.Fatal(err)
		}
		if reclaimed {
			w.PutTask(t, map[string]any{model.AttrRunID: runID, model.AttrTaskID: "5ta1e000",
				model.AttrStatus: model.TaskInProgress, model.AttrRetryCount: 1})
		}
	}}
	_, err = wk.Handle(context.Background())
	var lost *worker.LostClaimError
	if !errors.As(err, &lost) || worker.ExitCode(err) != worker.ExitRetryable {
		t.Fatalf("error %v, want a LostClaimError", err)
	}
	item := w.Task(t, runID, "5ta1e000")
	want := map[bool]string{false: model.TaskFailed, true: model.TaskInProgress}[reclaimed]
	if testenv.S(item, model.AttrStatus) != want || item[model.AttrCostUSD] != nil {
		t.Errorf("the stale attempt changed the task: %v", item)
	}
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
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
