package handleerror_test

import (
	"fmt"
	"testing"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/model"
)

// attemptsFailed are the AttemptFailed data published, as "reason" each.
func attemptsFailed(t *testing.T, env *testenv.Env) []string {
	t.Helper()
	var out []string
	for _, p := range env.CloudWatch.Puts() {
		for _, d := range p.MetricData {
			if d.MetricName != "AttemptFailed" {
				continue
			}
			if d.Value != 1 || d.Unit != "Count" || len(d.Dimensions) != 1 || d.Dimensions[0].Name != "Reason" {
				t.Errorf("AttemptFailed datum %+v, want 1 Count with the dimension Reason", d)
			}
			for _, dim := range d.Dimensions {
				out = append(out, dim.Value)
			}
		}
	}
	return out
}

// Every failed attempt handle-error records is one AttemptFailed, by the
// error's name (never its cause): a report repeated (a lost response, a
// retried Lambda) or a late report of an earlier attempt is not counted
// again, and a report for a completed task is no failed attempt.
func TestEachFailedAttemptIsCountedOnceByItsErrorName(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "3"})
	runID := env.NewRun(t, "a", "b")
	h := handlers.NewHandleError(env.Deps)
	fail(t, h, runID, "a", 1, crashed)
	fail(t, h, runID, "a", 1, crashed) // the same report again
	fail(t, h, runID, "a", 2, outage)
	fail(t, h, runID, "a", 1, crashed) // a late report of attempt 1
	fail(t, h, runID, "a", 3, outage)  // the last: FAILED_PERMANENT
	fail(t, h, runID, "a", 3, outage)
	env.PutTask(t, map[string]any{"run_id": runID, "task_id": "b", "status": model.TaskCompleted, "retry_count": 0})
	fail(t, h, runID, "b", 1, crashed)
	got := fmt.Sprint(attemptsFailed(t, env))
	if want := "[States.TaskFailed NoAnswer NoAnswer]"; got != want {
		t.Errorf("AttemptFailed reasons %s, want %s", got, want)
	}
	if bad := env.CloudWatch.Malformed(); len(bad) > 0 {
		t.Errorf("the CloudWatch stand-in refused: %v", bad)
	}
}

// A CloudWatch failure never fails the report: the attempt is recorded.
func TestAttemptFailedNotPublishedStillRecordsTheAttempt(t *testing.T) {
	env := testenv.Setup(t, nil)
	env.CloudWatch.Fail = true
	runID := env.NewRun(t, "a")
	out := fail(t, handlers.NewHandleError(env.Deps), runID, "a", 1, crashed)
	if out.Status != model.RetryScheduled || testenv.S(env.Task(t, runID, "a"), model.AttrStatus) != model.TaskFailed {
		t.Errorf("answer %s, task %s", out.Status, testenv.S(env.Task(t, runID, "a"), model.AttrStatus))
	}
}
