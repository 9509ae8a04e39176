package initialize_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func taskIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("task%04d", i)
	}
	return ids
}

func TestInitializeWritesRunAndPendingTasks(t *testing.T) {
	env := testenv.Setup(t, nil)
	h := handlers.NewInitialize(env.Deps)

	out, err := h.Handle(context.Background(), model.InitializeInput{
		ConfigName: "gpt-5.1_high", TaskIDs: taskIDs(50), TriggeredBy: "ada", CommitSHA: "abc123",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^run-gpt-5\.1_high-\d{8}-\d{6}-[0-9a-f]{8}$`).MatchString(out.RunID) {
		t.Errorf("run id %q is not run-<config>-<YYYYMMDD-HHMMSS>-<8 hex>", out.RunID)
	}
	if out.TotalTasks != 50 || out.ItemsKey == "" || out.ConfigName != "gpt-5.1_high" || out.DataSource != "evaluation" {
		t.Errorf("output = %+v", out)
	}

	run := env.Run(t, out.RunID)
	for attr, want := range map[string]string{
		"status": "RUNNING", "config_name": "gpt-5.1_high", "data_source": "evaluation",
		"triggered_by": "ada", "commit_sha": "abc123",
	} {
		if got := testenv.S(run, attr); got != want {
			t.Errorf("run %s = %q, want %q", attr, got, want)
		}
	}
	for attr, want := range map[string]string{"total_tasks": "50", "completed_tasks": "0", "failed_tasks": "0", "total_cost_usd": "0", "total_input_tokens": "0", "total_output_tokens": "0"} {
		if got := testenv.N(run, attr); got != want {
			t.Errorf("run %s = %q, want %q", attr, got, want)
		}
	}
	if _, err := time.Parse(model.TimeLayout, testenv.S(run, "created_at")); err != nil {
		t.Errorf("created_at %q: %v", testenv.S(run, "created_at"), err)
	}

	tasks := env.Tasks(t, out.RunID)
	if len(tasks) != 50 {
		t.Fatalf("%d task records, want 50", len(tasks))
	}
	for _, task := range tasks {
		if task["status"] != "PENDING" || task["retry_count"] != float64(0) {
			t.Errorf("task %v: status %v retry_count %v, want PENDING 0", task["task_id"], task["status"], task["retry_count"])
		}
	}
	if got := env.Proxy.Requests("BatchWriteItem"); got != 2 {
		t.Errorf("%d BatchWriteItem requests for 50 tasks, want 2 (25 each)", got)
	}
}

func TestInitializeWritesBatchesConcurrentlyWithinABound(t *testing.T) {
	env := testenv.Setup(t, nil)
	env.Proxy.Delay = 20 * time.Millisecond // long enough for requests to overlap
	out, err := handlers.NewInitialize(env.Deps).Handle(context.Background(), model.InitializeInput{ConfigName: "par", TaskIDs: taskIDs(1000)})
	if err != nil {
		t.Fatal(err)
	}
	if n := env.Proxy.Requests("BatchWriteItem"); n != 40 {
		t.Errorf("%d BatchWriteItem requests for 1,000 tasks, want 40", n)
	}
	if got := env.Proxy.MaxInFlight(); got < 2 || got > 16 {
		t.Errorf("%d requests in flight at most, want several and never more than 16", got)
	}
	if n := len(env.Tasks(t, out.RunID)); n != 1000 {
		t.Errorf("%d task records, want 1000", n)
	}
}

func TestInitializeIsIdempotentPerExecution(t *testing.T) {
	env := testenv.Setup(t, nil)
	h := handlers.NewInitialize(env.Deps)
	in := model.InitializeInput{
		ConfigName: "claude", TaskIDs: taskIDs(30),
		ExecutionID:        "arn:aws:states:us-east-1:123456789012:execution:arc-benchmark-sandbox-teal:e1",
		ExecutionStartTime: "2026-11-25T10:11:12.345Z",
	}
	first, err := h.Handle(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.RunID, "run-claude-20261125-101112-") {
		t.Errorf("run id %q is not dated by the execution's start", first.RunID)
	}
	env.Proxy.ResetCounts()

	second, err := h.Handle(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if second.RunID != first.RunID {
		t.Errorf("retry made run %s, the first call made %s", second.RunID, first.RunID)
	}
	for _, op := range []string{"PutItem", "BatchWriteItem", "UpdateItem"} {
		if n := env.Proxy.Requests(op); n != 0 {
			t.Errorf("retry sent %d %s requests, want none", n, op)
		}
	}
	if n := env.Count(t, env.Tables.Runs); n != 1 {
		t.Errorf("%d runs after a retried initialize, want 1", n)
	}

	other := in
	other.ExecutionID += "-2"
	third, err := h.Handle(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	if third.RunID == first.RunID {
		t.Errorf("another execution got the same run id %s", third.RunID)
	}
}

func TestInitializeConcurrentRetriesMakeOneRun(t *testing.T) {
	env := testenv.Setup(t, nil)
	h := handlers.NewInitialize(env.Deps)
	in := model.InitializeInput{
		ConfigName: "gemini", TaskIDs: taskIDs(100),
		ExecutionID: "exec-concurrent", ExecutionStartTime: "2026-11-25T10:00:00Z",
	}
	var wg sync.WaitGroup
	ids := make([]string, 4)
	errs := make([]error, 4)
	for i := range ids {
		wg.Go(func() {
			out, err := h.Handle(context.Background(), in)
			ids[i], errs[i] = out.RunID, err
		})
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("call %d made run %s, call 0 made %s", i, ids[i], ids[0])
		}
	}
	if n := env.Count(t, env.Tables.Runs); n != 1 {
		t.Errorf("%d runs, want 1", n)
	}
	if n := env.Count(t, env.Tables.Tasks); n != 100 {
		t.Errorf("%d task records, want 100", n)
	}
}

func TestInitializeRejectsBadInputAndWritesNothing(t *testing.T) {
	long := strings.Repeat("a", 129)
	cases := []struct {
		name, event, field string
	}{
		{"missing config_name", `{"task_ids":["a"]}`, "config_name"},
		{"empty config_name", `{"config_name":"","task_ids":["a"]}`, "config_name"},
		{"non-string config_name", `{"config_name":42,"task_ids":["a"]}`, "config_name"},
		{"config_name with a slash", `{"config_name":"a/b","task_ids":["a"]}`, "config_name"},
		{"config_name with a space", `{"config_name":"a b","task_ids":["a"]}`, "config_name"},
		{"config_name too long", `{"config_name":"` + long + `","task_ids":["a"]}`, "config_name"},
		{"missing task_ids", `{"config_name":"c"}`, "task_ids"},
		{"empty task_ids", `{"config_name":"c","task_ids":[]}`, "task_ids"},
		{"null task_ids", `{"config_name":"c","task_ids":null}`, "task_ids"},
		{"task_ids not a list", `{"config_name":"c","task_ids":"a,b"}`, "task_ids"},
		{"non-string task id", `{"config_name":"c","task_ids":["a",7]}`, "task_ids[1]"},
		{"null task id", `{"config_name":"c","task_ids":["a",null]}`, "task_ids[1]"},
		{"empty task id", `{"config_name":"c","task_ids":["a",""]}`, "task_ids[1]"},
		{"duplicate task id", `{"config_name":"c","task_ids":["a","b","a"]}`, "task_ids[2]"},
		// The worker trims TASK_ID: these would never run.
		{"task id with a leading space", `{"config_name":"c","task_ids":["a"," b"]}`, "task_ids[1]"},
		{"task id with a carriage return", `{"config_name":"c","task_ids":["a\r"]}`, "task_ids[0]"},
		{"task id escaping a folder", `{"config_name":"c","task_ids":["../x"]}`, "task_ids[0]"},
		// DynamoDB refuses it, after other batches were written.
		{"task id of 1,025 bytes", `{"config_name":"c","task_ids":["` + strings.Repeat("a", 1025) + `"]}`, "task_ids[0]"},
		{"task id of 129 characters", `{"config_name":"c","task_ids":["` + long + `"]}`, "task_ids[0]"},
		{"bad data_source", `{"config_name":"c","task_ids":["a"],"data_source":"../x"}`, "data_source"},
		{"execution without start time", `{"config_name":"c","task_ids":["a"],"execution_id":"e"}`, "execution_start_time"},
		{"malformed JSON", `{"config_name":"c",`, "event"},
		{"not an object", `["c"]`, "event"},
	}
	env := testenv.Setup(t, nil)
	invoke := lambdaio.Raw(handlers.NewInitialize(env.Deps).Handle)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := invoke(context.Background(), []byte(c.event))
			var lerr messages.InvokeResponse_Error
			if !errors.As(err, &lerr) {
				t.Fatalf("error %v is not a Lambda error", err)
			}
			if lerr.Type != "InvalidInputError" {
				t.Errorf("errorType %q, want InvalidInputError (%s)", lerr.Type, lerr.Message)
			}
			if !strings.Contains(lerr.Message, c.field+":") {
				t.Errorf("message %q does not name the field %s", lerr.Message, c.field)
			}
			breaksRule := map[string]bool{"empty task id": true, "task id with a leading space": true, "task id with a carriage return": true,
				"task id escaping a folder": true, "task id of 1,025 bytes": true, "task id of 129 characters": true}
			if breaksRule[c.name] && !strings.Contains(lerr.Message, model.IDRule) {
				t.Errorf("message %q does not say the rule", lerr.Message)
			}
		})
	}
	if n := env.Proxy.Total(); n != 0 {
		t.Errorf("bad input sent %d DynamoDB requests, want none", n)
	}
	if n := env.Count(t, env.Tables.Runs) + env.Count(t, env.Tables.Tasks); n != 0 {
		t.Errorf("bad input left %d items", n)
	}
}

func TestInitializeLosesNothingWhenThrottled(t *testing.T) {
	env := testenv.Setup(t, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	var mu sync.Mutex
	env.Proxy.Throttle = func(op string) bool {
		mu.Lock()
		defer mu.Unlock()
		return (op == "BatchWriteItem" || op == "PutItem") && rng.IntN(10) == 0
	}
	env.Proxy.KeepBatch = func(n int) int {
		mu.Lock()
		defer mu.Unlock()
		if rng.IntN(3) > 0 {
			return n
		}
		return rng.IntN(n) // some of them come back unprocessed
	}
	h := handlers.NewInitialize(env.Deps)
	out, err := h.Handle(context.Background(), model.InitializeInput{ConfigName: "throttled", TaskIDs: taskIDs(400)})
	if err != nil {
		t.Fatal(err)
	}
	if env.Proxy.Throttled() == 0 || env.Proxy.Unprocessed() == 0 {
		t.Fatalf("the proxy injected %d throttles and %d unprocessed items; the test needs both", env.Proxy.Throttled(), env.Proxy.Unprocessed())
	}
	tasks := env.Tasks(t, out.RunID)
	if len(tasks) != 400 {
		t.Errorf("%d of 400 task records written", len(tasks))
	}
	if testenv.S(env.Run(t, out.RunID), "status") != "RUNNING" {
		t.Error("run record missing after throttling")
	}
	t.Logf("%d throttled requests, %d items handed back unprocessed, %d BatchWriteItem requests",
		env.Proxy.Throttled(), env.Proxy.Unprocessed(), env.Proxy.Requests("BatchWriteItem"))
}

func TestInitializeOutputIsWhatLaterStatesRead(t *testing.T) {
	env := testenv.Setup(t, nil)
	out, err := lambdaio.Raw(handlers.NewInitialize(env.Deps).Handle)(context.Background(),
		[]byte(`{"config_name":"c","task_ids":["x","y.z"],"data_source":"training"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"run_id", "config_name", "data_source", "total_tasks", "items_key"} {
		if _, ok := got[k]; !ok {
			t.Errorf("output lacks %s: %s", k, out)
		}
	}
	if _, ok := got["task_ids"]; ok {
		t.Errorf("the task list travels in the output: %s", out)
	}
	if got["data_source"] != "training" || got["total_tasks"] != float64(2) {
		t.Errorf("output %s", out)
	}
	// The Map reads the task list from the bucket: each task with the name
	// of its jobs, <config>-<task_id> in the characters Batch accepts, at
	// its first attempt, none of them set aside from MAX_RETRIES.
	var items []map[string]any
	readJSON(t, env, got["items_key"].(string), &items)
	want := []map[string]any{{"task_id": "x", "job_name": "c-x", "attempt": 1.0, "attempt_base": 0.0},
		{"task_id": "y.z", "job_name": "c-y_z", "attempt": 1.0, "attempt_base": 0.0}}
	if fmt.Sprint(items) != fmt.Sprint(want) {
		t.Errorf("items %v, want %v", items, want)
	}
}

func TestInitializeWithoutBucketReturnsTheListInline(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"S3_BUCKET": ""})
	out, err := handlers.NewInitialize(env.Deps).Handle(context.Background(), model.InitializeInput{ConfigName: "c", TaskIDs: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if out.ItemsKey != "" || !slices.Equal(out.TaskIDs, []string{"x"}) {
		t.Errorf("output %+v: without a bucket the list comes back inline", out)
	}
}

func TestInitializeReadsAnUploadedTaskList(t *testing.T) {
	env := testenv.Setup(t, nil)
	ids := taskIDs(3000)
	body, _ := json.Marshal(ids)
	putObject(t, env, "inputs/big-run.json", body)
	out, err := handlers.NewInitialize(env.Deps).Handle(context.Background(), model.InitializeInput{ConfigName: "big", TaskListKey: "inputs/big-run.json"})
	if err != nil {
		t.Fatal(err)
	}
	if out.TotalTasks != 3000 || len(env.Tasks(t, out.RunID)) != 3000 {
		t.Errorf("total_tasks %d, %d records; want 3000", out.TotalTasks, len(env.Tasks(t, out.RunID)))
	}
	var items []model.MapItem
	readJSON(t, env, out.ItemsKey, &items)
	got := make([]string, len(items))
	for i, it := range items {
		got[i] = it.TaskID
		if it.JobName != "big-"+it.TaskID {
			t.Errorf("item %d: job name %q, want big-%s", i, it.JobName, it.TaskID)
		}
	}
	if !slices.Equal(got, ids) {
		t.Errorf("items differ from the uploaded list")
	}
}

func TestInitializeRejectsABadTaskList(t *testing.T) {
	env := testenv.Setup(t, nil)
	putObject(t, env, "inputs/dup.json", []byte(`["a","b","a"]`))
	putObject(t, env, "inputs/mixed.json", []byte(`["a",3]`))
	putObject(t, env, "inputs/object.json", []byte(`{"a":1}`))
	invoke := lambdaio.Raw(handlers.NewInitialize(env.Deps).Handle)
	for _, c := range []struct{ event, field string }{
		{`{"config_name":"c","task_list_key":"inputs/missing.json"}`, "task_list_key"},
		{`{"config_name":"c","task_list_key":"runs/x/items.json"}`, "task_list_key"},
		{`{"config_name":"c","task_list_key":"inputs/../runs/x.json"}`, "task_list_key"},
		{`{"config_name":"c","task_list_key":"inputs/dup.json"}`, "task_list_key[2]"},
		{`{"config_name":"c","task_list_key":"inputs/mixed.json"}`, "task_list_key[1]"},
		{`{"config_name":"c","task_list_key":"inputs/object.json"}`, "task_list_key"},
		{`{"config_name":"c","task_list_key":"inputs/dup.json","task_ids":["a"]}`, "task_list_key"},
	} {
		_, err := invoke(context.Background(), []byte(c.event))
		var lerr messages.InvokeResponse_Error
		if !errors.As(err, &lerr) || lerr.Type != "InvalidInputError" || !strings.Contains(lerr.Message, c.field+":") {
			t.Errorf("%s: %v, want InvalidInputError naming %s", c.event, err, c.field)
		}
	}
	if n := env.Count(t, env.Tables.Runs) + env.Count(t, env.Tables.Tasks); n != 0 {
		t.Errorf("bad task lists left %d items", n)
	}
}

func putObject(t *testing.T, env *testenv.Env, key string, body []byte) {
	t.Helper()
	if _, err := testenv.DirectS3(t).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String(key), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, env *testenv.Env, key string, v any) {
	t.Helper()
	obj, err := testenv.DirectS3(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer obj.Body.Close()
	if err := json.NewDecoder(obj.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
}

// A call without execution_id whose run write succeeded but whose response
// was lost is retried by the SDK: that retry finds the run the call made,
// and the call answers it, instead of "run id already taken".
func TestInitializeSurvivesALostResponseWithoutExecutionID(t *testing.T) {
	env := testenv.Setup(t, nil)
	lost := false
	env.Proxy.LoseResponse = func(op string) bool {
		if op == "PutItem" && !lost {
			lost = true
			return true
		}
		return false
	}
	out, err := handlers.NewInitialize(env.Deps).Handle(context.Background(), model.InitializeInput{ConfigName: "cfg", TaskIDs: []string{"a", "b"}})
	if err != nil {
		t.Fatalf("initialize after a lost response: %v", err)
	}
	if !lost || env.Proxy.Requests("PutItem") != 2 {
		t.Fatalf("lost %v, %d PutItem requests: the test meant to lose the first answer", lost, env.Proxy.Requests("PutItem"))
	}
	if env.Run(t, out.RunID) == nil || env.Count(t, env.Tables.Runs) != 1 {
		t.Errorf("run %s: %d run records, want its one", out.RunID, env.Count(t, env.Tables.Runs))
	}
}
