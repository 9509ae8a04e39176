package handleerror_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/handlers/handleerror"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// executions records the executions handle-error stops (the real call is
// exercised end to end by the local runner's early-stop test).
type executions struct {
	mu      sync.Mutex
	stopped []sfn.StopExecutionInput
}

func (e *executions) StopExecution(_ context.Context, in *sfn.StopExecutionInput, _ ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped = append(e.stopped, *in)
	return &sfn.StopExecutionOutput{}, nil
}

const execution = "arn:aws:states:us-east-1:123456789012:execution:arc-benchmark-local:guarded"

// guardedRun starts a run with an execution and the given early stop.
func guardedRun(t *testing.T, env *testenv.Env, stopAfter *int, ids ...string) string {
	t.Helper()
	out, err := handlers.NewInitialize(env.Deps).Handle(context.Background(), model.InitializeInput{
		ConfigName: "cfg", TaskIDs: ids, ExecutionID: execution, ExecutionStartTime: "2026-12-05T10:00:00Z", StopAfterFailures: stopAfter})
	if err != nil {
		t.Fatal(err)
	}
	return out.RunID
}

func fail(t *testing.T, h *handleerror.Handler, runID, taskID string, attempt int, e model.TaskError) model.HandleErrorOutput {
	t.Helper()
	out, err := h.Handle(context.Background(), model.HandleErrorInput{RunID: runID, TaskID: taskID, Attempt: attempt, Error: &e})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	outage  = model.TaskError{Error: model.ErrNoAnswer, Cause: "no answer, no tokens" + model.WorkerSaid + "Error code: 500"}
	crashed = model.TaskError{Error: "States.TaskFailed", Cause: `{"JobId":"j1","Status":"FAILED","StatusReason":"Essential container in task exited","Container":{"ExitCode":1}}`}
)

// K attempts failed in a row, with no success between them, stop the run:
// STOPPED at once with the reason and the commonest error, its execution
// stopped (once). A success resets the streak.
func TestKFailuresInARowStopTheRun(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "5"})
	three := 3
	runID := guardedRun(t, env, &three, "t1", "t2", "t3", "t4", "t5")
	h := handlers.NewHandleError(env.Deps)
	ex := &executions{}
	h.Executions = ex
	st := store.New(env.Deps.Clients.DynamoDB, env.Tables.Runs, env.Tables.Tasks)

	fail(t, h, runID, "t1", 1, outage)
	fail(t, h, runID, "t2", 1, outage)
	// t3 completes: the streak starts again.
	if err := st.Count(context.Background(), store.Outcome{RunID: runID, TaskID: "t3", Status: model.TaskCompleted, CostUSD: "0.01", At: model.FormatTime(env.Deps.Now())}); err != nil {
		t.Fatal(err)
	}
	if n := testenv.N(env.Run(t, runID), model.AttrFailureStreak); n != "0" {
		t.Fatalf("failure_streak %s after a success, want 0", n)
	}
	fail(t, h, runID, "t1", 2, outage)
	fail(t, h, runID, "t4", 1, crashed)
	if run := env.Run(t, runID); testenv.S(run, model.AttrStatus) != model.RunRunning || len(ex.stopped) != 0 {
		t.Fatalf("stopped after 2 failures in a row: %s, %d executions stopped", testenv.S(run, model.AttrStatus), len(ex.stopped))
	}
	out := fail(t, h, runID, "t2", 2, outage)
	if out.Status != model.RetryScheduled {
		t.Errorf("the attempt that stops the run is still recorded as it is: %s", out.Status)
	}
	run := env.Run(t, runID)
	want := "3 attempts in a row failed: 2 x NoAnswer: Error code: 500"
	if testenv.S(run, model.AttrStatus) != model.RunStopped || testenv.S(run, model.AttrStopKind) != model.StopFailures ||
		testenv.S(run, model.AttrStopReason) != want || testenv.S(run, model.AttrCompletedAt) == "" {
		t.Errorf("run %s, stopped by %s: %q, want STOPPED by failures: %q", testenv.S(run, model.AttrStatus),
			testenv.S(run, model.AttrStopKind), testenv.S(run, model.AttrStopReason), want)
	}
	if len(ex.stopped) != 1 || aws.ToString(ex.stopped[0].ExecutionArn) != execution || aws.ToString(ex.stopped[0].Cause) != want ||
		aws.ToString(ex.stopped[0].Error) != model.ErrRunStoppedEarly {
		t.Fatalf("executions stopped: %+v, want %s once, with the reason", ex.stopped, execution)
	}
	// Failures reported after the stop (jobs ending as they are terminated)
	// change neither the reason nor stop the execution again.
	fail(t, h, runID, "t5", 1, crashed)
	fail(t, h, runID, "t4", 2, crashed)
	if r := testenv.S(env.Run(t, runID), model.AttrStopReason); r != want || len(ex.stopped) != 1 {
		t.Errorf("after more failures: reason %q, %d stops", r, len(ex.stopped))
	}
}

// The reason names the commonest error; a cause of a failed job is named by
// its reason and exit code.
func TestTheStopReasonNamesTheCommonestError(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "5"})
	four := 4
	runID := guardedRun(t, env, &four, "t1", "t2", "t3", "t4")
	h := handlers.NewHandleError(env.Deps)
	h.Executions = &executions{}
	fail(t, h, runID, "t1", 1, outage)
	for _, id := range []string{"t2", "t3", "t4"} {
		fail(t, h, runID, id, 1, crashed)
	}
	want := "4 attempts in a row failed: 3 x States.TaskFailed: Essential container in task exited (exit code 1)"
	if r := testenv.S(env.Run(t, runID), model.AttrStopReason); r != want {
		t.Errorf("reason %q, want %q", r, want)
	}
}

// stop_after_failures 0 turns early stop off: no streak is kept at all.
func TestEarlyStopOff(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "50"})
	zero := 0
	runID := guardedRun(t, env, &zero, "t1")
	h := handlers.NewHandleError(env.Deps)
	ex := &executions{}
	h.Executions = ex
	for attempt := 1; attempt <= 30; attempt++ {
		fail(t, h, runID, "t1", attempt, outage)
	}
	run := env.Run(t, runID)
	if testenv.S(run, model.AttrStatus) != model.RunRunning || len(ex.stopped) != 0 || run[model.AttrStopReason] != nil {
		t.Errorf("run %s (%q) after 30 failures with early stop off", testenv.S(run, model.AttrStatus), testenv.S(run, model.AttrStopReason))
	}
	if n := testenv.N(run, model.AttrFailureStreak); n != "0" {
		t.Errorf("failure_streak %s: kept with early stop off", n)
	}
}

// The stage's default (STOP_AFTER_FAILURES) applies to a run that names
// none.
func TestTheStageDefaultStopsARun(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "5", "STOP_AFTER_FAILURES": "2"})
	runID := guardedRun(t, env, nil, "t1", "t2")
	h := handlers.NewHandleError(env.Deps)
	h.Executions = &executions{}
	fail(t, h, runID, "t1", 1, outage)
	fail(t, h, runID, "t2", 1, outage)
	if s := testenv.S(env.Run(t, runID), model.AttrStatus); s != model.RunStopped {
		t.Errorf("run %s after 2 failures with the stage's default of 2, want STOPPED", s)
	}
}

// A streak whose causes all differ keeps MaxStreakReasons of them apart and
// counts the rest together: the run record stays small.
func TestAStreakOfDifferentCausesStaysBounded(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "5"})
	many := 1000
	const n = store.MaxStreakReasons + 5
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("t%02d", i)
	}
	runID := guardedRun(t, env, &many, ids...)
	h := handlers.NewHandleError(env.Deps)
	for i, id := range ids {
		fail(t, h, runID, id, 1, model.TaskError{Error: model.ErrNoAnswer, Cause: "no answer" + model.WorkerSaid + fmt.Sprintf("request %d refused.[0]", i)})
	}
	run := env.Run(t, runID)
	m, _ := run[model.AttrStreakErrors].(*types.AttributeValueMemberM)
	if m == nil || len(m.Value) != store.MaxStreakReasons+1 {
		t.Fatalf("streak_errors %v: want %d reasons and the others together", run[model.AttrStreakErrors], store.MaxStreakReasons)
	}
	if other, _ := m.Value[store.OtherReasons].(*types.AttributeValueMemberN); other == nil || other.Value != "5" {
		t.Errorf("%s: %v, want 5", store.OtherReasons, m.Value[store.OtherReasons])
	}
	if c := testenv.N(run, model.AttrFailureStreak); c != fmt.Sprint(n) {
		t.Errorf("failure_streak %s, want %d", c, n)
	}
}

// A failed attempt is one failure in the streak however often it is
// reported (a lost response, a retried Lambda), and a late report of an
// earlier attempt is none: K reports of one attempt never stop a run.
func TestARepeatedReportIsOneFailureInTheStreak(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "5"})
	two := 2
	runID := guardedRun(t, env, &two, "t1", "t2")
	h := handlers.NewHandleError(env.Deps)
	h.Executions = &executions{}
	fail(t, h, runID, "t1", 2, outage)
	fail(t, h, runID, "t1", 2, outage) // the same report again
	fail(t, h, runID, "t1", 1, outage) // a late report of attempt 1
	run := env.Run(t, runID)
	if testenv.S(run, model.AttrStatus) != model.RunRunning || testenv.N(run, model.AttrFailureStreak) != "1" {
		t.Fatalf("after three reports of one attempt: %s, streak %s; want RUNNING, 1", testenv.S(run, model.AttrStatus), testenv.N(run, model.AttrFailureStreak))
	}
	fail(t, h, runID, "t2", 1, outage)
	if s := testenv.S(env.Run(t, runID), model.AttrStatus); s != model.RunStopped {
		t.Errorf("after two attempts in a row: %s, want STOPPED", s)
	}
}
