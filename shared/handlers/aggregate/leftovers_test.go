package aggregate_test

import (
	"context"
	"errors"
	"testing"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// checker records what it is asked to check, and fails on one task.
type checker struct {
	seen   []model.CheckTaskInput
	failOn string
}

func (c *checker) Handle(_ context.Context, in model.CheckTaskInput) (model.CheckTaskOutput, error) {
	c.seen = append(c.seen, in)
	if in.TaskID == c.failOn {
		return model.CheckTaskOutput{}, errors.New("S3 is down")
	}
	return model.CheckTaskOutput{TaskItem: in.TaskItem, Status: model.TaskCompleted}, nil
}

// For a run that has ended, every completion check-task never judged gets
// its check, as the attempt after the task's recorded failures; a check
// that fails leaves its task as recorded and the run is aggregated all the
// same. A run still running is left to check-task.
func TestAnEndedRunsUncheckedCompletionsAreChecked(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "scored", "unchecked", "retried", "failing", "pending")
	env.PutTask(t, map[string]any{"run_id": runID, "task_id": "scored", "status": "COMPLETED", "retry_count": 0, "pairs": 1, "pairs_correct": 1, "score": 1})
	env.PutTask(t, map[string]any{"run_id": runID, "task_id": "unchecked", "status": "COMPLETED", "retry_count": 0})
	env.PutTask(t, map[string]any{"run_id": runID, "task_id": "retried", "status": "COMPLETED", "retry_count": 2})
	env.PutTask(t, map[string]any{"run_id": runID, "task_id": "failing", "status": "COMPLETED", "retry_count": 0})
	c := &checker{failOn: "failing"}
	h := handlers.NewAggregate(env.Deps)
	h.Check = c

	if _, err := h.Handle(context.Background(), model.AggregateInput{RunID: runID}); err != nil {
		t.Fatal(err)
	}
	if len(c.seen) != 0 {
		t.Fatalf("a running run's completions were checked: %+v", c.seen)
	}
	st := store.New(env.Deps.Clients.DynamoDB, env.Tables.Runs, env.Tables.Tasks)
	if _, err := st.Stop(context.Background(), runID, model.StopOperator, "stopped by a test", model.FormatTime(env.Deps.Now()), true); err != nil {
		t.Fatal(err)
	}
	out, err := h.Handle(context.Background(), model.AggregateInput{RunID: runID})
	if err != nil {
		t.Fatalf("aggregating an ended run whose one check fails: %v", err)
	}
	attempts := map[string]int{}
	for _, in := range c.seen {
		attempts[in.TaskID] = in.Attempt
		if in.ConfigName != "cfg" || in.DataSource == "" {
			t.Errorf("check of %s without the run's config and data source: %+v", in.TaskID, in)
		}
	}
	if len(c.seen) != 3 || attempts["unchecked"] != 1 || attempts["retried"] != 3 || attempts["failing"] != 1 {
		t.Errorf("checked %v, want unchecked (attempt 1), retried (attempt 3) and failing (attempt 1): never a scored or pending task", attempts)
	}
	if out.TotalTasks != 5 || out.NotRunTasks != 1 {
		t.Errorf("aggregated %d tasks, %d not run; want 5 and the pending one not run", out.TotalTasks, out.NotRunTasks)
	}
}
