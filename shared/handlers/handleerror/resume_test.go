package handleerror_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/handlers/handleerror"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
)

func reportFrom(t *testing.T, h *handleerror.Handler, runID, taskID string, attempt, base int) model.HandleErrorOutput {
	t.Helper()
	out, err := h.Handle(context.Background(), model.HandleErrorInput{
		RunID: runID, TaskID: taskID, Attempt: attempt, AttemptBase: base,
		Error: &model.TaskError{Error: "States.TaskFailed", Cause: "worker exited with 1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// In a resumed run a task that had failed for good (3 of 3) runs again
// from attempt 4 with base 3: MAX_RETRIES counts its attempts from there.
// Attempts 4 and 5 are retried, with the waits of a first and second
// retry; attempt 6, the third past the base, fails it for good, counted
// once.
func TestAResumedTaskIsRetriedPastItsAttemptBase(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "3", "RETRY_BACKOFF_SECONDS": "10"})
	runID := env.NewRun(t, "t1")
	num := func(n int) *types.AttributeValueMemberN { return &types.AttributeValueMemberN{Value: fmt.Sprint(n)} }
	// As the resume released it: FAILED, its 3 earlier attempts kept.
	setTask(t, env, runID, "t1", "SET #s = :s, retry_count = :n", map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: "FAILED"}, ":n": num(3)})
	h := handlers.NewHandleError(env.Deps)

	out := reportFrom(t, h, runID, "t1", 4, 3)
	if out.Status != model.RetryScheduled || out.RetryCount != 4 || out.WaitSeconds != handleerror.Backoff(10, 1) {
		t.Errorf("attempt 4 of base 3: %+v, want RETRY_SCHEDULED, retry_count 4, the first retry's wait %d", out, handleerror.Backoff(10, 1))
	}

	// The benchmark's worker counts its own attempts against MAX_RETRIES,
	// not knowing the base: at retry_count 5 it marks the task
	// FAILED_PERMANENT itself. The orchestration's count decides: the task
	// is FAILED again, claimable by attempt 6.
	setTask(t, env, runID, "t1", "SET #s = :s, retry_count = :n", map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: "FAILED_PERMANENT"}, ":n": num(5)})
	out = reportFrom(t, h, runID, "t1", 5, 3)
	if out.Status != model.RetryScheduled || out.RetryCount != 5 || out.WaitSeconds != handleerror.Backoff(10, 2) {
		t.Errorf("attempt 5 of base 3: %+v, want RETRY_SCHEDULED, retry_count 5, the second retry's wait %d", out, handleerror.Backoff(10, 2))
	}
	task := env.Task(t, runID, "t1")
	if s, n := testenv.S(task, "status"), testenv.N(task, "retry_count"); s != "FAILED" || n != "5" {
		t.Errorf("task %s with retry_count %s after attempt 5 of base 3, want FAILED with 5", s, n)
	}
	if n := testenv.N(env.Run(t, runID), "counted_failed"); n != "0" {
		t.Errorf("counted_failed %s while the task is retried, want 0", n)
	}

	out = reportFrom(t, h, runID, "t1", 6, 3)
	if out.Status != model.FailedPermanent || out.RetryCount != 6 || out.WaitSeconds != 0 {
		t.Errorf("attempt 6 of base 3: %+v, want FAILED_PERMANENT, retry_count 6, no wait", out)
	}
	if s := testenv.S(env.Task(t, runID, "t1"), "status"); s != "FAILED_PERMANENT" {
		t.Errorf("task %s after attempt 6 of base 3, want FAILED_PERMANENT", s)
	}
	run := env.Run(t, runID)
	if f, c := testenv.N(run, "failed_tasks"), testenv.N(run, "counted_failed"); f != "1" || c != "1" {
		t.Errorf("failed_tasks %s, counted_failed %s: want 1 and 1", f, c)
	}
}

// A base is below its attempt and not negative: anything else is not an
// item a resume wrote, and is refused before anything is recorded.
func TestABadAttemptBaseIsRefused(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "3"})
	runID := env.NewRun(t, "t1")
	before := env.Task(t, runID, "t1")
	env.Proxy.ResetCounts()
	invoke := lambdaio.Raw(handlers.NewHandleError(env.Deps).Handle)
	for _, c := range []struct{ attempt, base int }{{4, 4}, {4, 5}, {1, 1}, {4, -1}} {
		event := fmt.Sprintf(`{"run_id":%q,"task_id":"t1","attempt":%d,"attempt_base":%d,"error":{"Error":"E","Cause":"c"}}`, runID, c.attempt, c.base)
		_, err := invoke(context.Background(), []byte(event))
		var lerr messages.InvokeResponse_Error
		if !errors.As(err, &lerr) || lerr.Type != model.ErrInvalidInput || !strings.Contains(lerr.Message, "attempt_base:") {
			t.Errorf("attempt %d, base %d: error %v, want InvalidInputError naming attempt_base", c.attempt, c.base, err)
		}
	}
	if n := env.Proxy.Total(); n != 0 {
		t.Errorf("bad bases sent %d DynamoDB requests", n)
	}
	if after := env.Task(t, runID, "t1"); testenv.S(after, "status") != testenv.S(before, "status") || testenv.N(after, "retry_count") != "0" {
		t.Errorf("task changed: %v", after)
	}
}
