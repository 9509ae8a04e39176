package localrun_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/internal/localrun"
	"arcbench/internal/operator"
	"arcbench/shared/arcdata"
	"arcbench/shared/model"
	"arcbench/shared/money"
)

// oneAtATime copies the assembly with the run's Map running one task at a
// time, so that which attempts start after a stop is deterministic.
func oneAtATime(t *testing.T) string {
	t.Helper()
	return editedAssembly(t, func(raw []byte) ([]byte, bool) {
		from := []byte(`\"MaxConcurrency\":256`)
		return bytes.Replace(raw, from, []byte(`\"MaxConcurrency\":1`), 1), bytes.Contains(raw, from)
	})
}

// ranJobs counts the jobs whose worker ran: a job terminated while queued
// leaves an empty log.
func ranJobs(t *testing.T, res *localrun.Result) int {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(res.Dir, "logs", "*-local-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil && fi.Size() > 0 {
			n++
		}
	}
	return n
}

// startedTask is a task record's start and cost.
type startedTask struct {
	id, startedAt, cost string
}

// A run with a budget, one task at a time: tasks run until the model cost
// recorded reaches the budget, and not one attempt more (no job starts
// after); the rest end NOT_RUN; the run ends STOPPED saying so, with the
// score over every task (not run: 0) and over the tasks run.
func TestARunStopsAtItsBudgetAndStartsNoAttemptAfter(t *testing.T) {
	const n, seed, budget = 8, 11, "0.005"
	ids := arcdata.IDs(n, seed)
	res, db := run(t, localrun.Options{Assembly: oneAtATime(t), TaskIDs: ids, Seed: seed, Parallel: 1,
		Guards: operator.Guards{BudgetUSD: budget}})
	if res.Status != "SUCCEEDED" || res.RunStatus != model.RunStopped {
		t.Fatalf("execution %s, run %s: %s %s", res.Status, res.RunStatus, res.Error, res.Cause)
	}
	var ran []startedTask
	notRun := 0
	for id, rec := range tasksOf(t, db, res, res.RunID) {
		switch rec.Status {
		case model.TaskCompleted:
			ran = append(ran, startedTask{id, str(taskItem(t, db, res, res.RunID, id), model.AttrStartedAt), rec.CostUSD})
		case model.TaskNotRun:
			notRun++
		default:
			t.Errorf("task %s ended %s", id, rec.Status)
		}
	}
	if len(ran) == 0 || notRun == 0 {
		t.Fatalf("%d tasks ran, %d not run: the budget should stop the run part-way", len(ran), notRun)
	}
	if jobs := ranJobs(t, res); jobs != len(ran) {
		t.Errorf("%d jobs ran for %d tasks run: a job started for a task not run", jobs, len(ran))
	}
	// In the order they ran, every task but the last started below the
	// budget; the last brought the cost to it.
	sort.Slice(ran, func(i, j int) bool { return ran[i].startedAt < ran[j].startedAt })
	var spent money.Sum
	for i, tk := range ran {
		if c, _ := money.Compare(spent.String(), budget); c >= 0 {
			t.Errorf("task %s (%d of %d run) started after the budget was reached at $%s", tk.id, i+1, len(ran), spent.String())
		}
		if err := spent.Add(tk.cost); err != nil {
			t.Fatal(err)
		}
	}
	if c, _ := money.Compare(spent.String(), budget); c < 0 {
		t.Errorf("the tasks run cost $%s, below the budget $%s, and the run stopped", spent.String(), budget)
	}
	run := runRecord(t, db, res, res.RunID)
	want := fmt.Sprintf("budget $%s reached at $%s, %d tasks not run", budget, spent.String(), notRun)
	if got := str(run, model.AttrStopReason); got != want || res.StopReason != want {
		t.Errorf("stop reason %q (result: %q), want %q", got, res.StopReason, want)
	}
	m := aggregated(t, res).Metrics
	var sum float64
	for _, tk := range ran {
		sum += baselineScore(tk.id, seed)
	}
	if m.NotRunTasks != notRun || m.Score == nil || math.Abs(*m.Score-sum/n) > 1e-9 ||
		m.ScoreOverRun == nil || math.Abs(*m.ScoreOverRun-sum/float64(len(ran))) > 1e-9 {
		t.Errorf("aggregated: %d not run, score %v, over the tasks run %v; want %d, %v, %v", m.NotRunTasks, m.Score, m.ScoreOverRun,
			notRun, sum/n, sum/float64(len(ran)))
	}
	for attr, want := range map[string]float64{model.AttrScore: sum / n, model.AttrScoreOverRun: sum / float64(len(ran))} {
		if got, err := strconv.ParseFloat(str(run, attr), 64); err != nil || math.Abs(got-want) > 1e-9 {
			t.Errorf("run record %s %q, want %v", attr, str(run, attr), want)
		}
	}
}

// A run whose every attempt fails stops itself after K of them in a row:
// STOPPED with the reason and the commonest error, its execution stopped
// (queued and running jobs terminated), after about K attempts, not after
// every task's MAX_RETRIES. It is aggregated all the same.
func TestARunWhoseModelIsUnreachableStopsAfterKFailures(t *testing.T) {
	const n, k, parallel, maxRetries = 30, 4, 2, 3
	stopAfter := k
	ids := arcdata.IDs(n, 12)
	res, db := run(t, localrun.Options{TaskIDs: ids, Seed: 12, Parallel: parallel, MaxRetries: maxRetries,
		Faults: "*:*=no-answer", Guards: operator.Guards{StopAfterFailures: &stopAfter}})
	if res.Status != "ABORTED" || res.RunStatus != model.RunStopped || res.Error != model.ErrRunStoppedEarly {
		t.Fatalf("execution %s (%s: %s), run %s; want ABORTED by an early stop, STOPPED", res.Status, res.Error, res.Cause, res.RunStatus)
	}
	want := fmt.Sprintf("%d attempts in a row failed: %d x %s", k, k, model.ErrNoAnswer)
	run := runRecord(t, db, res, res.RunID)
	if got := str(run, model.AttrStopReason); !strings.HasPrefix(got, want) || str(run, model.AttrStopKind) != model.StopFailures || res.Cause != got {
		t.Errorf("stop reason %q (%s), execution cause %q; want %q...", got, str(run, model.AttrStopKind), res.Cause, want)
	}
	jobs := ranJobs(t, res)
	// K failed, and at most the jobs running when the K-th was reported,
	// and those its worker slots took up while the report went through
	// check-task and handle-error (the queued ones were terminated before
	// they started).
	if jobs < k || jobs > k+3*parallel {
		t.Errorf("%d jobs ran, want %d and the few in flight (not %d)", jobs, k, n*maxRetries)
	}
	m := aggregated(t, res).Metrics
	// The model was never reached: nothing is completed, not even a task
	// whose worker wrote COMPLETED before its job was terminated with the
	// execution (check-task never saw it; aggregate checks it for the
	// ended run, and refuses it as NoAnswer).
	if m.CompletedTasks != 0 {
		t.Errorf("%d tasks completed by a model never reached, want 0", m.CompletedTasks)
	}
	for id, rec := range tasksOf(t, db, res, res.RunID) {
		if rec.Status == model.TaskCompleted {
			t.Errorf("task %s is COMPLETED without an answer", id)
		}
	}
	if m.FailedTasks < k || m.CompletedTasks+m.FailedTasks+m.NotRunTasks != n || m.NotRunTasks < n-jobs {
		t.Errorf("aggregated: %d completed, %d failed, %d not run of %d", m.CompletedTasks, m.FailedTasks, m.NotRunTasks, n)
	}
	if str(run, model.AttrNotRunTasks) != fmt.Sprint(m.NotRunTasks) {
		t.Errorf("run record not_run_tasks %s, aggregated %d", str(run, model.AttrNotRunTasks), m.NotRunTasks)
	}
}

// Early stop off (0) leaves a failing run to every task's MAX_RETRIES.
func TestEarlyStopOffRunsEveryRetry(t *testing.T) {
	const n, maxRetries = 8, 3
	off := 0
	ids := arcdata.IDs(n, 13)
	res, db := run(t, localrun.Options{TaskIDs: ids, Seed: 13, Parallel: 4, MaxRetries: maxRetries,
		Faults: "*:*=no-answer", Guards: operator.Guards{StopAfterFailures: &off}})
	if res.Status != "SUCCEEDED" || res.RunStatus != model.RunFailed {
		t.Fatalf("execution %s, run %s: want every task failed for good", res.Status, res.RunStatus)
	}
	for _, id := range ids {
		if a := attempts(t, res, id); a != maxRetries {
			t.Errorf("task %s: %d jobs, want %d", id, a, maxRetries)
		}
	}
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table(res, "-runs")),
		Key: map[string]types.AttributeValue{"run_id": &types.AttributeValueMemberS{Value: res.RunID}}, ConsistentRead: aws.Bool(true)})
	if err != nil || out.Item[model.AttrStopReason] != nil {
		t.Errorf("run stopped with early stop off: %v %v", out.Item[model.AttrStopReason], err)
	}
}
