package handleerror_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/handlers/handleerror"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func report(t *testing.T, h *handleerror.Handler, runID, taskID string, attempt int) model.HandleErrorOutput {
	t.Helper()
	out, err := h.Handle(context.Background(), model.HandleErrorInput{
		RunID: runID, TaskID: taskID, Attempt: attempt,
		Error: &model.TaskError{Error: "States.TaskFailed", Cause: "worker exited with 1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRetryBelowTheLimitThenPermanentFailure(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "3"})
	runID := env.NewRun(t, "t1", "t2")
	h := handlers.NewHandleError(env.Deps)

	for attempt := 1; attempt <= 2; attempt++ {
		out := report(t, h, runID, "t1", attempt)
		if out.Status != "RETRY_SCHEDULED" || out.RetryCount != attempt {
			t.Fatalf("attempt %d: %+v, want RETRY_SCHEDULED with retry_count %d", attempt, out, attempt)
		}
		task := env.Task(t, runID, "t1")
		if testenv.S(task, "status") != "FAILED" || testenv.N(task, "retry_count") != fmt.Sprint(attempt) {
			t.Errorf("attempt %d: task status %s retry_count %s, want FAILED %d", attempt, testenv.S(task, "status"), testenv.N(task, "retry_count"), attempt)
		}
		if n := testenv.N(env.Run(t, runID), "failed_tasks"); n != "0" {
			t.Errorf("failed_tasks = %s before the limit", n)
		}
	}

	out := report(t, h, runID, "t1", 3)
	if out.Status != "FAILED_PERMANENT" || out.RetryCount != 3 {
		t.Fatalf("at the limit: %+v, want FAILED_PERMANENT with retry_count 3", out)
	}
	task := env.Task(t, runID, "t1")
	if testenv.S(task, "status") != "FAILED_PERMANENT" {
		t.Errorf("task status %s, want FAILED_PERMANENT", testenv.S(task, "status"))
	}
	for attr, want := range map[string]string{"last_error_type": "States.TaskFailed", "last_error_cause": "worker exited with 1"} {
		if got := testenv.S(task, attr); got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
	if testenv.S(task, "last_error_at") == "" {
		t.Error("last_error_at not set")
	}
	if n := testenv.N(env.Run(t, runID), "failed_tasks"); n != "1" {
		t.Errorf("failed_tasks = %s, want 1", n)
	}
	if out.ErrorMessage != "States.TaskFailed: worker exited with 1" {
		t.Errorf("error_message %q", out.ErrorMessage)
	}
}

// Step Functions may deliver one report twice (a retried Lambda call): the
// attempt's number is set, not added, so nothing counts twice.
func TestARepeatedReportCountsOnce(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "2"})
	runID := env.NewRun(t, "t1", "t2")
	h := handlers.NewHandleError(env.Deps)
	first, again := report(t, h, runID, "t1", 1), report(t, h, runID, "t1", 1)
	if again != first || first.RetryCount != 1 || first.Status != "RETRY_SCHEDULED" {
		t.Errorf("first %+v, repeat %+v: want the same answer, retry_count 1", first, again)
	}
	for range 3 {
		if out := report(t, h, runID, "t1", 2); out.Status != "FAILED_PERMANENT" || out.RetryCount != 2 {
			t.Fatalf("attempt 2: %+v, want FAILED_PERMANENT with retry_count 2", out)
		}
	}
	report(t, h, runID, "t2", 2)
	if n := testenv.N(env.Run(t, runID), "failed_tasks"); n != "2" {
		t.Errorf("failed_tasks = %s after three reports of t1's last attempt and one of t2's, want 2", n)
	}
	if n := testenv.N(env.Task(t, runID, "t1"), "retry_count"); n != "2" {
		t.Errorf("t1 retry_count = %s, want 2", n)
	}
	// A late repeat of attempt 1 does not bring a task back from FAILED_PERMANENT.
	if out := report(t, h, runID, "t1", 1); out.Status != "FAILED_PERMANENT" || out.RetryCount != 2 {
		t.Errorf("late report of attempt 1: %+v, want FAILED_PERMANENT with retry_count 2", out)
	}
	if task := env.Task(t, runID, "t1"); testenv.S(task, "status") != "FAILED_PERMANENT" || testenv.N(task, "retry_count") != "2" {
		t.Errorf("after a late report: %s with retry_count %s", testenv.S(task, "status"), testenv.N(task, "retry_count"))
	}
}

// setTask writes attributes of a task as the benchmark's worker writes them.
func setTask(t *testing.T, env *testenv.Env, runID, taskID, set string, values map[string]types.AttributeValue) {
	t.Helper()
	_, err := env.DB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(env.Tables.Tasks),
		Key: map[string]types.AttributeValue{
			"run_id": &types.AttributeValueMemberS{Value: runID}, "task_id": &types.AttributeValueMemberS{Value: taskID},
		},
		UpdateExpression: aws.String(set), ExpressionAttributeValues: values,
		ExpressionAttributeNames: map[string]string{"#s": "status"}, // a reserved word
	})
	if err != nil {
		t.Fatal(err)
	}
}

func addFailedTask(t *testing.T, env *testenv.Env, runID string) {
	t.Helper()
	_, err := env.DB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(env.Tables.Runs),
		Key:                       map[string]types.AttributeValue{"run_id": &types.AttributeValueMemberS{Value: runID}},
		UpdateExpression:          aws.String("SET failed_tasks = failed_tasks + :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The benchmark's worker counts its own failed attempts (retry_count + 1) and,
// when it reaches MAX_RETRIES, marks the task FAILED_PERMANENT and adds to the
// run's failed_tasks itself: handle-error's report of the same attempt must
// count nothing again.
func TestAnAttemptTheWorkerCountedItselfCountsOnce(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "2"})
	runID := env.NewRun(t, "t1")
	h := handlers.NewHandleError(env.Deps)
	num := func(n int) *types.AttributeValueMemberN { return &types.AttributeValueMemberN{Value: fmt.Sprint(n)} }

	setTask(t, env, runID, "t1", "SET #s = :s, retry_count = :n", map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: "FAILED"}, ":n": num(1)})
	if out := report(t, h, runID, "t1", 1); out.Status != "RETRY_SCHEDULED" || out.RetryCount != 1 {
		t.Fatalf("attempt 1 the worker counted: %+v, want RETRY_SCHEDULED with retry_count 1", out)
	}

	setTask(t, env, runID, "t1", "SET #s = :s, retry_count = :n", map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: "FAILED_PERMANENT"}, ":n": num(2)})
	addFailedTask(t, env, runID)
	if out := report(t, h, runID, "t1", 2); out.Status != "FAILED_PERMANENT" || out.RetryCount != 2 {
		t.Fatalf("attempt 2 the worker failed for good: %+v, want FAILED_PERMANENT with retry_count 2", out)
	}
	task := env.Task(t, runID, "t1")
	if testenv.N(task, "retry_count") != "2" || testenv.S(task, "last_error_type") != "States.TaskFailed" {
		t.Errorf("task retry_count %s, last_error_type %q", testenv.N(task, "retry_count"), testenv.S(task, "last_error_type"))
	}
	if n := testenv.N(env.Run(t, runID), "failed_tasks"); n != "1" {
		t.Errorf("failed_tasks = %s: the worker counted the task, handle-error must not count it again", n)
	}
}

// A worker that crashed, or exited 0 without working, counted nothing: its
// task is IN_PROGRESS or PENDING, and handle-error counts the attempt and
// moves it to FAILED so that the next claim succeeds.
func TestAnAttemptNobodyCountedIsCounted(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "2"})
	runID := env.NewRun(t, "crashed", "idle")
	h := handlers.NewHandleError(env.Deps)
	setTask(t, env, runID, "crashed", "SET #s = :s", map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: "IN_PROGRESS"}})
	for _, id := range []string{"crashed", "idle"} {
		if out := report(t, h, runID, id, 1); out.Status != "RETRY_SCHEDULED" {
			t.Errorf("%s: %+v", id, out)
		}
		if s := testenv.S(env.Task(t, runID, id), "status"); s != "FAILED" {
			t.Errorf("%s: status %s, want FAILED (claimable)", id, s)
		}
		report(t, h, runID, id, 2)
	}
	if n := testenv.N(env.Run(t, runID), "failed_tasks"); n != "2" {
		t.Errorf("failed_tasks = %s, want 2", n)
	}
}

// PR #78 of the benchmark's worker marks a task FAILED_PERMANENT without
// adding to the run's failed_tasks; a worker may also count nothing at all.
// Either way the run's live count is handle-error's, and right.
func TestAPermanentFailureTheWorkerDidNotCountIsCounted(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "2"})
	runID := env.NewRun(t, "t1")
	num := func(n int) *types.AttributeValueMemberN { return &types.AttributeValueMemberN{Value: fmt.Sprint(n)} }
	setTask(t, env, runID, "t1", "SET #s = :s, retry_count = :n", map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: "FAILED_PERMANENT"}, ":n": num(2)})
	if out := report(t, handlers.NewHandleError(env.Deps), runID, "t1", 2); out.Status != "FAILED_PERMANENT" {
		t.Fatalf("%+v", out)
	}
	run := env.Run(t, runID)
	if testenv.N(run, "failed_tasks") != "1" || testenv.N(run, "counted_failed") != "1" {
		t.Errorf("failed_tasks %s, counted_failed %s: want 1 and 1", testenv.N(run, "failed_tasks"), testenv.N(run, "counted_failed"))
	}
	if testenv.S(env.Task(t, runID, "t1"), "counted_as") != "FAILED_PERMANENT" {
		t.Error("the task does not record that it was counted")
	}
}

// A response lost after DynamoDB did the work, which the SDK then retries,
// counts the task once, whichever of handle-error's writes it was: the task's
// move to FAILED_PERMANENT, the count, the task's mark, or the release of
// the count's token. (Before, a lost answer to the move left the live count
// one short.)
func TestALostResponseCountsTheTaskOnce(t *testing.T) {
	for lose := 1; lose <= 4; lose++ {
		t.Run(fmt.Sprintf("update %d", lose), func(t *testing.T) {
			env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "1"})
			runID := env.NewRun(t, "t1")
			env.Proxy.LoseResponses("UpdateItem", func(n int) bool { return n == lose })
			if out := report(t, handlers.NewHandleError(env.Deps), runID, "t1", 1); out.Status != "FAILED_PERMANENT" {
				t.Fatalf("%+v", out)
			}
			env.Proxy.LoseResponse = nil
			run := env.Run(t, runID)
			if testenv.N(run, "failed_tasks") != "1" || testenv.N(run, "counted_failed") != "1" {
				t.Errorf("failed_tasks %s, counted_failed %s: want 1 and 1", testenv.N(run, "failed_tasks"), testenv.N(run, "counted_failed"))
			}
			if c, ok := run["counting"]; ok {
				t.Errorf("counting %v: a count's token was left behind", c)
			}
		})
	}
}

// A handle-error call that failed after marking the task FAILED_PERMANENT,
// and is retried by Step Functions, never counts the task twice.
func TestARetryAfterAPartialReportNeverCountsTwice(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "1"})
	runID := env.NewRun(t, "t1")
	h := handlers.NewHandleError(env.Deps)
	if out := report(t, h, runID, "t1", 1); out.Status != "FAILED_PERMANENT" {
		t.Fatalf("%+v", out)
	}
	for range 3 { // the same report again, as a retried call delivers it
		report(t, h, runID, "t1", 1)
	}
	if n := testenv.N(env.Run(t, runID), "failed_tasks"); n != "1" {
		t.Errorf("failed_tasks = %s after one permanent failure reported four times, want 1", n)
	}
}

func TestACompletedTaskIsNeverChanged(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "1"})
	runID := env.NewRun(t, "t1")
	setTask(t, env, runID, "t1", "SET #s = :s, cost_usd = :c", map[string]types.AttributeValue{
		":s": &types.AttributeValueMemberS{Value: "COMPLETED"}, ":c": &types.AttributeValueMemberN{Value: "0.5"},
	})
	before := env.Task(t, runID, "t1")
	out := report(t, handlers.NewHandleError(env.Deps), runID, "t1", 1)
	if out.Status != "COMPLETED" {
		t.Errorf("answer %s, want COMPLETED", out.Status)
	}
	if after := env.Task(t, runID, "t1"); !reflect.DeepEqual(before, after) {
		t.Errorf("the completed task changed:\nbefore %v\nafter  %v", before, after)
	}
	if n := testenv.N(env.Run(t, runID), "failed_tasks"); n != "0" {
		t.Errorf("failed_tasks = %s", n)
	}
}

func TestConcurrentReportsOfTheLastAttemptCountTheTaskOnce(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "3"})
	runID := env.NewRun(t, "t1")
	h := handlers.NewHandleError(env.Deps)
	const calls = 20
	var wg sync.WaitGroup
	outs := make([]model.HandleErrorOutput, calls)
	errs := make([]error, calls)
	for i := range calls {
		wg.Go(func() {
			outs[i], errs[i] = h.Handle(context.Background(), model.HandleErrorInput{
				RunID: runID, TaskID: "t1", Attempt: 3, Error: &model.TaskError{Error: "E", Cause: "c"},
			})
		})
	}
	wg.Wait()
	for i := range calls {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if outs[i].Status != "FAILED_PERMANENT" || outs[i].RetryCount != 3 {
			t.Errorf("call %d: %+v", i, outs[i])
		}
	}
	task := env.Task(t, runID, "t1")
	if testenv.N(task, "retry_count") != "3" || testenv.S(task, "status") != "FAILED_PERMANENT" {
		t.Errorf("task %s retry_count %s", testenv.S(task, "status"), testenv.N(task, "retry_count"))
	}
	if n := testenv.N(env.Run(t, runID), "failed_tasks"); n != "1" {
		t.Errorf("failed_tasks = %s, want 1", n)
	}
}

func TestBatchJobDescriptionGivesReasonAndExitCode(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "t1")
	h := handlers.NewHandleError(env.Deps)
	job := map[string]any{
		"JobId": "0f1e", "JobName": "arc-t1", "Status": "FAILED",
		"StatusReason": "Essential container in task exited",
		"Container":    map[string]any{"ExitCode": 1, "LogStreamName": "arc/default/abc"},
		"Attempts":     []any{map[string]any{"Container": map[string]any{"ExitCode": 1}}},
	}
	cause, _ := json.Marshal(job)
	cause = append(cause, []byte(strings.Repeat(" ", 5000))...) // a long job record
	out, err := h.Handle(context.Background(), model.HandleErrorInput{
		RunID: runID, TaskID: "t1", Attempt: 1, Error: &model.TaskError{Error: "States.TaskFailed", Cause: string(cause)},
	})
	if err != nil {
		t.Fatal(err)
	}
	task := env.Task(t, runID, "t1")
	if got := testenv.S(task, "last_error_reason"); got != "Essential container in task exited" {
		t.Errorf("last_error_reason = %q", got)
	}
	if got := testenv.N(task, "last_exit_code"); got != "1" {
		t.Errorf("last_exit_code = %q, want 1", got)
	}
	storedCause := testenv.S(task, "last_error_cause")
	if !strings.HasSuffix(storedCause, "... (truncated)") || len([]rune(storedCause)) != 4000+len("... (truncated)") {
		t.Errorf("stored cause is %d characters, want 4000 + the truncation mark", len([]rune(storedCause)))
	}
	if want := "States.TaskFailed: " + string(cause[:200]); out.ErrorMessage != want {
		t.Errorf("error_message = %q, want the first 200 characters of the cause", out.ErrorMessage)
	}

	// A later failure that is not a job description clears the stale details.
	report(t, h, runID, "t1", 2)
	task = env.Task(t, runID, "t1")
	if _, ok := task["last_exit_code"]; ok {
		t.Error("last_exit_code of the earlier attempt survived")
	}
	if _, ok := task["last_error_reason"]; ok {
		t.Error("last_error_reason of the earlier attempt survived")
	}
}

func TestCamelCaseJobDescriptionAndMultibyteCause(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "t1")
	h := handlers.NewHandleError(env.Deps)
	cause := `{"jobId":"x","status":"FAILED","statusReason":"Task failed to start","attempts":[{"container":{"exitCode":137,"reason":"OutOfMemoryError"}}]}`
	if _, err := h.Handle(context.Background(), model.HandleErrorInput{RunID: runID, TaskID: "t1", Attempt: 1, Error: &model.TaskError{Error: "States.TaskFailed", Cause: cause}}); err != nil {
		t.Fatal(err)
	}
	task := env.Task(t, runID, "t1")
	if testenv.S(task, "last_error_reason") != "Task failed to start" || testenv.N(task, "last_exit_code") != "137" {
		t.Errorf("reason %q exit %q", testenv.S(task, "last_error_reason"), testenv.N(task, "last_exit_code"))
	}

	long := strings.Repeat("é", 300)
	out, err := h.Handle(context.Background(), model.HandleErrorInput{RunID: runID, TaskID: "t1", Attempt: 1, Error: &model.TaskError{Error: "E", Cause: long}})
	if err != nil {
		t.Fatal(err)
	}
	if out.ErrorMessage != "E: "+strings.Repeat("é", 200) {
		t.Errorf("error_message cut at %d characters, want 200", len([]rune(out.ErrorMessage))-3)
	}
}

func TestUnknownTaskIsTaskNotFound(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "t1")
	_, err := lambdaio.Raw(handlers.NewHandleError(env.Deps).Handle)(context.Background(),
		[]byte(`{"run_id":"`+runID+`","task_id":"nope","attempt":1,"error":{"Error":"E","Cause":"c"}}`))
	var lerr messages.InvokeResponse_Error
	if !errors.As(err, &lerr) || lerr.Type != "TaskNotFoundError" {
		t.Fatalf("error %v, want TaskNotFoundError", err)
	}
	if env.Task(t, runID, "nope") != nil {
		t.Error("a record was created for an unknown task")
	}
}

func TestHandleErrorRejectsBadInput(t *testing.T) {
	env := testenv.Setup(t, nil)
	invoke := lambdaio.Raw(handlers.NewHandleError(env.Deps).Handle)
	for _, c := range []struct{ event, field string }{
		{`{"task_id":"t","attempt":1,"error":{"Error":"E","Cause":"c"}}`, "run_id"},
		{`{"run_id":"","task_id":"t","error":{"Error":"E","Cause":"c"}}`, "run_id"},
		{`{"run_id":"r","error":{"Error":"E","Cause":"c"}}`, "task_id"},
		{`{"run_id":"r","task_id":"t"}`, "error"},
		{`{"run_id":"r","task_id":"t","error":"boom"}`, "error"},
		{`{"run_id":"r","task_id":"t","error":["E"]}`, "error"},
		{`{"run_id":"r","task_id":"t","error":{"Error":"E","Cause":"c"}}`, "attempt"},
		{`{"run_id":"r","task_id":"t","attempt":0,"error":{"Error":"E","Cause":"c"}}`, "attempt"},
		{`{"run_id":"r","task_id":"t","attempt":"1","error":{"Error":"E","Cause":"c"}}`, "attempt"},
		{`{"run_id":"r",`, "event"},
	} {
		_, err := invoke(context.Background(), []byte(c.event))
		var lerr messages.InvokeResponse_Error
		if !errors.As(err, &lerr) || lerr.Type != "InvalidInputError" || !strings.Contains(lerr.Message, c.field+":") {
			t.Errorf("%s: error %v, want InvalidInputError naming %s", c.event, err, c.field)
		}
	}
	if n := env.Proxy.Total(); n != 0 {
		t.Errorf("bad input sent %d DynamoDB requests", n)
	}
}

func TestWorkerConfigurationErrorIsPermanentAtOnce(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "3"})
	runID := env.NewRun(t, "t1")
	cause := `{"JobId":"j","Status":"FAILED","StatusReason":"Essential container in task exited","Container":{"ExitCode":2}}`
	out, err := handlers.NewHandleError(env.Deps).Handle(context.Background(), model.HandleErrorInput{
		RunID: runID, TaskID: "t1", Attempt: 1, Error: &model.TaskError{Error: "States.TaskFailed", Cause: cause},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != "FAILED_PERMANENT" || out.RetryCount != 1 {
		t.Errorf("%+v: exit code 2 should fail the task for good on its first report", out)
	}
	if n := testenv.N(env.Run(t, runID), "failed_tasks"); n != "1" {
		t.Errorf("failed_tasks %s, want 1", n)
	}
}

// The wait before a retry is computed for any MAX_RETRIES: the stage's
// backoff doubled per attempt, capped at an hour.
func TestTheWaitBeforeARetryIsComputedForAnyAttempt(t *testing.T) {
	for attempt, want := range map[int]int{1: 15, 2: 30, 3: 60, 4: 120, 5: 240, 8: 1920, 9: 3600, 40: 3600} {
		if got := handleerror.Backoff(15, attempt); got != want {
			t.Errorf("Backoff(15, %d) = %d, want %d", attempt, got, want)
		}
	}
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "6", "RETRY_BACKOFF_SECONDS": "10"})
	runID := env.NewRun(t, "t1")
	h := handlers.NewHandleError(env.Deps)
	for attempt := 1; attempt <= 6; attempt++ {
		out := report(t, h, runID, "t1", attempt)
		want := 10 << (attempt - 1)
		if attempt == 6 {
			want = 0 // permanent: no next attempt
		}
		if out.WaitSeconds != want {
			t.Errorf("attempt %d (%s): wait %d, want %d", attempt, out.Status, out.WaitSeconds, want)
		}
	}
}
