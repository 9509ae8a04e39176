package handleerror_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/handlers/handleerror"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func report(t *testing.T, h *handleerror.Handler, runID, taskID string) model.HandleErrorOutput {
	t.Helper()
	out, err := h.Handle(context.Background(), model.HandleErrorInput{
		RunID: runID, TaskID: taskID,
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
		out := report(t, h, runID, "t1")
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

	out := report(t, h, runID, "t1")
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

func TestRepeatedReportsPastTheLimitCountTheTaskOnce(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "1"})
	runID := env.NewRun(t, "t1", "t2")
	h := handlers.NewHandleError(env.Deps)
	for range 4 {
		if out := report(t, h, runID, "t1"); out.Status != "FAILED_PERMANENT" {
			t.Fatalf("status %s, want FAILED_PERMANENT", out.Status)
		}
	}
	report(t, h, runID, "t2")
	if n := testenv.N(env.Run(t, runID), "failed_tasks"); n != "2" {
		t.Errorf("failed_tasks = %s after 4 reports of t1 and 1 of t2, want 2", n)
	}
	if n := testenv.N(env.Task(t, runID, "t1"), "retry_count"); n != "4" {
		t.Errorf("t1 retry_count = %s, want 4", n)
	}
}

func TestConcurrentReportsLoseNoIncrement(t *testing.T) {
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
				RunID: runID, TaskID: "t1", Error: &model.TaskError{Error: "E", Cause: "c"},
			})
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	retries := 0
	for i := range calls {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		seen[outs[i].RetryCount] = true
		if outs[i].Status == "RETRY_SCHEDULED" {
			retries++
		}
	}
	task := env.Task(t, runID, "t1")
	if n := testenv.N(task, "retry_count"); n != "20" {
		t.Errorf("retry_count = %s after %d concurrent reports, want 20", n, calls)
	}
	if len(seen) != calls {
		t.Errorf("calls saw %d distinct counts, want %d (one per increment)", len(seen), calls)
	}
	if retries != 2 {
		t.Errorf("%d calls answered RETRY_SCHEDULED, want 2 (counts 1 and 2 below MAX_RETRIES=3)", retries)
	}
	if s := testenv.S(task, "status"); s != "FAILED_PERMANENT" {
		t.Errorf("status %s, want FAILED_PERMANENT", s)
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
		"Container":    map[string]any{"ExitCode": 2, "LogStreamName": "arc/default/abc"},
		"Attempts":     []any{map[string]any{"Container": map[string]any{"ExitCode": 2}}},
	}
	cause, _ := json.Marshal(job)
	cause = append(cause, []byte(strings.Repeat(" ", 5000))...) // a long job record
	out, err := h.Handle(context.Background(), model.HandleErrorInput{
		RunID: runID, TaskID: "t1", Error: &model.TaskError{Error: "States.TaskFailed", Cause: string(cause)},
	})
	if err != nil {
		t.Fatal(err)
	}
	task := env.Task(t, runID, "t1")
	if got := testenv.S(task, "last_error_reason"); got != "Essential container in task exited" {
		t.Errorf("last_error_reason = %q", got)
	}
	if got := testenv.N(task, "last_exit_code"); got != "2" {
		t.Errorf("last_exit_code = %q, want 2", got)
	}
	storedCause := testenv.S(task, "last_error_cause")
	if !strings.HasSuffix(storedCause, "... (truncated)") || len([]rune(storedCause)) != 4000+len("... (truncated)") {
		t.Errorf("stored cause is %d characters, want 4000 + the truncation mark", len([]rune(storedCause)))
	}
	if want := "States.TaskFailed: " + string(cause[:200]); out.ErrorMessage != want {
		t.Errorf("error_message = %q, want the first 200 characters of the cause", out.ErrorMessage)
	}

	// A later failure that is not a job description clears the stale details.
	report(t, h, runID, "t1")
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
	if _, err := h.Handle(context.Background(), model.HandleErrorInput{RunID: runID, TaskID: "t1", Error: &model.TaskError{Error: "States.TaskFailed", Cause: cause}}); err != nil {
		t.Fatal(err)
	}
	task := env.Task(t, runID, "t1")
	if testenv.S(task, "last_error_reason") != "Task failed to start" || testenv.N(task, "last_exit_code") != "137" {
		t.Errorf("reason %q exit %q", testenv.S(task, "last_error_reason"), testenv.N(task, "last_exit_code"))
	}

	long := strings.Repeat("é", 300)
	out, err := h.Handle(context.Background(), model.HandleErrorInput{RunID: runID, TaskID: "t1", Error: &model.TaskError{Error: "E", Cause: long}})
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
		[]byte(`{"run_id":"`+runID+`","task_id":"nope","error":{"Error":"E","Cause":"c"}}`))
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
		{`{"task_id":"t","error":{"Error":"E","Cause":"c"}}`, "run_id"},
		{`{"run_id":"","task_id":"t","error":{"Error":"E","Cause":"c"}}`, "run_id"},
		{`{"run_id":"r","error":{"Error":"E","Cause":"c"}}`, "task_id"},
		{`{"run_id":"r","task_id":"t"}`, "error"},
		{`{"run_id":"r","task_id":"t","error":"boom"}`, "error"},
		{`{"run_id":"r","task_id":"t","error":["E"]}`, "error"},
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

func TestARetriedReportOfOneAttemptCountsOnce(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "2"})
	runID := env.NewRun(t, "t1")
	h := handlers.NewHandleError(env.Deps)
	in := func(attempt string) model.HandleErrorInput {
		return model.HandleErrorInput{RunID: runID, TaskID: "t1", AttemptID: attempt, Error: &model.TaskError{Error: "States.TaskFailed", Cause: "x"}}
	}
	first, err := h.Handle(context.Background(), in("2026-11-25T10:00:00.000Z"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.Handle(context.Background(), in("2026-11-25T10:00:00.000Z"))
	if err != nil {
		t.Fatal(err)
	}
	if again != first || first.RetryCount != 1 || first.Status != "RETRY_SCHEDULED" {
		t.Errorf("first %+v, repeat %+v: want the same answer, retry_count 1", first, again)
	}
	if n := testenv.N(env.Task(t, runID, "t1"), "retry_count"); n != "1" {
		t.Errorf("retry_count %s after one attempt reported twice, want 1", n)
	}
	// The next attempt's failure is a new report; repeating it after the
	// task went FAILED_PERMANENT still counts the task once in the run.
	for range 2 {
		out, err := h.Handle(context.Background(), in("2026-11-25T10:05:00.000Z"))
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != "FAILED_PERMANENT" || out.RetryCount != 2 {
			t.Errorf("second attempt: %+v, want FAILED_PERMANENT with retry_count 2", out)
		}
	}
	if n := testenv.N(env.Run(t, runID), "failed_tasks"); n != "1" {
		t.Errorf("failed_tasks %s, want 1", n)
	}
}

func TestWorkerConfigurationErrorIsPermanentAtOnce(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "3"})
	runID := env.NewRun(t, "t1")
	cause := `{"JobId":"j","Status":"FAILED","StatusReason":"Essential container in task exited","Container":{"ExitCode":2}}`
	out, err := handlers.NewHandleError(env.Deps).Handle(context.Background(), model.HandleErrorInput{
		RunID: runID, TaskID: "t1", Error: &model.TaskError{Error: "States.TaskFailed", Cause: cause},
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
