package complete_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"testing"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// A run's budget: the count that brings its recorded model cost to the
// budget stops it (no new attempt starts; it stays RUNNING while its jobs
// in flight finish); complete then ends it STOPPED with the reason, the
// tasks never run counted, and both scores: over every task (not run: 0)
// and over the tasks run.
func TestABudgetStopsTheRunAndCompleteSaysSo(t *testing.T) {
	env := testenv.Setup(t, nil)
	ctx := context.Background()
	ids := []string{"t0", "t1", "t2", "t3", "t4"}
	budget := json.Number("0.05")
	out, err := handlers.NewInitialize(env.Deps).Handle(ctx, model.InitializeInput{ConfigName: "cfg-a", TaskIDs: ids, BudgetUSD: &budget})
	if err != nil {
		t.Fatal(err)
	}
	runID := out.RunID
	if b := testenv.N(env.Run(t, runID), model.AttrBudgetUSD); b != "0.05" {
		t.Fatalf("budget_usd %q on the run", b)
	}
	st := store.New(env.Deps.Clients.DynamoDB, env.Tables.Runs, env.Tables.Tasks)
	at := model.FormatTime(env.Deps.Now())
	scores := []float64{1, 0.5, 0}
	for i, cost := range []string{"0.02", "0.02", "0.015"} {
		env.PutTask(t, map[string]any{"run_id": runID, "task_id": ids[i], "status": model.TaskCompleted, "retry_count": 0,
			"cost_usd": json.Number(cost), "score": scores[i], "pairs": 2, "is_correct": scores[i] == 1})
		if err := st.Count(ctx, store.Outcome{RunID: runID, TaskID: ids[i], Status: model.TaskCompleted, CostUSD: cost, At: at}); err != nil {
			t.Fatal(err)
		}
		run := env.Run(t, runID)
		stopped := testenv.S(run, model.AttrStopReason)
		if i < 2 && stopped != "" {
			t.Fatalf("stopped at $%s, below the budget: %q", testenv.N(run, model.AttrCountedCostUSD), stopped)
		}
		if s := testenv.S(run, model.AttrStatus); s != model.RunRunning {
			t.Fatalf("run %s while its jobs in flight may still finish, want RUNNING", s)
		}
	}
	run := env.Run(t, runID)
	if r, k := testenv.S(run, model.AttrStopReason), testenv.S(run, model.AttrStopKind); r != "budget $0.05 reached at $0.055" || k != model.StopBudget {
		t.Fatalf("stop_reason %q (%s), want the budget reached at $0.055", r, k)
	}
	// The state machine ends the tasks it never started NOT_RUN.
	for _, id := range ids[3:] {
		env.PutTask(t, map[string]any{"run_id": runID, "task_id": id, "status": model.TaskNotRun, "retry_count": 0})
	}
	agg, err := handlers.NewAggregate(env.Deps).Handle(ctx, model.AggregateInput{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	done, err := handlers.NewComplete(env.Deps).Handle(ctx, model.CompleteInput{RunID: runID, Aggregation: &agg.Totals})
	if err != nil {
		t.Fatal(err)
	}
	want := "budget $0.05 reached at $0.055, 2 tasks not run"
	if done.Status != model.RunStopped || done.StopReason != want {
		t.Errorf("complete: %s %q, want STOPPED %q", done.Status, done.StopReason, want)
	}
	run = env.Run(t, runID)
	if testenv.S(run, model.AttrStatus) != model.RunStopped || testenv.S(run, model.AttrStopReason) != want || testenv.N(run, model.AttrNotRunTasks) != "2" {
		t.Errorf("run record: %s %q, %s not run", testenv.S(run, model.AttrStatus), testenv.S(run, model.AttrStopReason), testenv.N(run, model.AttrNotRunTasks))
	}
	// Over every task: (1 + 0.5 + 0) / 5; over the 3 run: 1.5 / 3.
	for attr, want := range map[string]float64{model.AttrScore: 0.3, model.AttrScoreOverRun: 0.5} {
		var got float64
		if _, err := fmt.Sscan(testenv.N(run, attr), &got); err != nil || math.Abs(got-want) > 1e-9 {
			t.Errorf("%s %q, want %v", attr, testenv.N(run, attr), want)
		}
	}
	if done.FinalMetrics.NotRunTasks != 2 || done.FinalMetrics.ScoreOverRun == nil || math.Abs(*done.FinalMetrics.ScoreOverRun-0.5) > 1e-9 {
		t.Errorf("complete's output: %d not run, score over run %v", done.FinalMetrics.NotRunTasks, done.FinalMetrics.ScoreOverRun)
	}
}

// A budget is an amount of USD above 0: anything else is refused, naming the
// field, and no run is written.
func TestABadBudgetIsRefused(t *testing.T) {
	env := testenv.Setup(t, nil)
	for _, b := range []string{"0", "-1", "abc", "1e400"} {
		budget := json.Number(b)
		_, err := handlers.NewInitialize(env.Deps).Handle(context.Background(), model.InitializeInput{ConfigName: "cfg-a", TaskIDs: []string{"a"}, BudgetUSD: &budget})
		var bad *model.InvalidInputError
		if !errors.As(err, &bad) || bad.Field != "budget_usd" {
			t.Errorf("budget %s: %v, want an InvalidInputError naming budget_usd", b, err)
		}
	}
	if n := env.Count(t, env.Tables.Runs); n != 0 {
		t.Errorf("%d runs written by refused inputs", n)
	}
}
