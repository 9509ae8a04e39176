package initialize_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"arcbench/internal/testenv"
	"arcbench/shared/clients"
	"arcbench/shared/handlers"
	"arcbench/shared/handlers/initialize"
	"arcbench/shared/model"
)

const (
	startExecution  = "arn:aws:states:us-east-1:123456789012:execution:arc-benchmark-test:start-1"
	resumeExecution = "arn:aws:states:us-east-1:123456789012:execution:arc-benchmark-test:resume-1"
	otherExecution  = "arn:aws:states:us-east-1:123456789012:execution:arc-benchmark-test:resume-2"
)

// The times the first execution's end left on the run record.
const (
	stoppedAt   = "2026-12-05T10:20:00.000Z"
	completedAt = "2026-12-05T10:25:00.000Z"
	notifiedAt  = "2026-12-05T10:25:01.000Z"
)

// What the tasks of endedRun were left as, and each one's first attempt
// in a resume: past every number it used (retry_count, noted_attempt,
// no_answer_attempt, compute_attempts, and a stranded attempt's
// retry_count+1); the base leaves out of MAX_RETRIES the numbers that did
// not fail (or, for FAILED_PERMANENT with include_failed, all of them).
var (
	// resumed are the tasks a resume runs again, FAILED_PERMANENT aside.
	resumed = map[string]model.MapItem{
		"between":  {Attempt: 3, AttemptBase: 0}, // FAILED after attempt 2 of 3, between retries
		"claimed":  {Attempt: 2, AttemptBase: 1}, // IN_PROGRESS, its first attempt stranded
		"computed": {Attempt: 3, AttemptBase: 1}, // FAILED at 1, attempt 2's compute recorded, its failure never
		"noanswer": {Attempt: 3, AttemptBase: 1}, // FAILED at 1, attempt 2 refused as NoAnswer, never reported
		"noted":    {Attempt: 3, AttemptBase: 1}, // retry_count 1, attempt 2 noted (a late report of 1 set retry_count back)
		"notrun":   {Attempt: 1, AttemptBase: 0}, // NOT_RUN, never started
		"pending":  {Attempt: 1, AttemptBase: 0}, // PENDING, never claimed
		"skipped":  {Attempt: 2, AttemptBase: 0}, // NOT_RUN after one failed attempt
		"stranded": {Attempt: 3, AttemptBase: 1}, // IN_PROGRESS in attempt 2, after attempt 1 failed
	}
	// permanent, with include_failed: counted afresh past its 3 attempts.
	permanentItem = model.MapItem{Attempt: 4, AttemptBase: 3}
	// released are the tasks a resume makes claimable, and what to.
	released = map[string]string{"claimed": model.TaskPending, "notrun": model.TaskPending,
		"skipped": model.TaskFailed, "stranded": model.TaskFailed}
)

func allTaskIDs() []string {
	ids := []string{"done", "permanent"}
	for id := range resumed {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func num(v any) types.AttributeValue    { return &types.AttributeValueMemberN{Value: fmt.Sprint(v)} }
func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// set writes attributes of a record straight to dynalite, as the worker,
// check-task, handle-error, a stop and complete leave them (nil removes one).
func set(t *testing.T, env *testenv.Env, runID, taskID string, attrs map[string]types.AttributeValue) {
	t.Helper()
	table, key := env.Tables.Runs, map[string]types.AttributeValue{model.AttrRunID: str(runID)}
	if taskID != "" {
		table, key[model.AttrTaskID] = env.Tables.Tasks, str(taskID)
	}
	names, values := map[string]string{}, map[string]types.AttributeValue{}
	var sets, removes []string
	i := 0
	for name, v := range attrs {
		n := fmt.Sprintf("#a%d", i)
		names[n] = name
		if v == nil {
			removes = append(removes, n)
		} else {
			values[fmt.Sprintf(":v%d", i)] = v
			sets = append(sets, fmt.Sprintf("%s = :v%d", n, i))
		}
		i++
	}
	expr := ""
	if len(sets) > 0 {
		expr = "SET " + strings.Join(sets, ", ")
	}
	if len(removes) > 0 {
		expr += " REMOVE " + strings.Join(removes, ", ")
	}
	in := &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: key, UpdateExpression: aws.String(expr),
		ExpressionAttributeNames: names, ConditionExpression: aws.String("attribute_exists(#k)")}
	names["#k"] = model.AttrRunID
	if len(values) > 0 {
		in.ExpressionAttributeValues = values
	}
	if _, err := env.DB.UpdateItem(context.Background(), in); err != nil {
		t.Fatalf("set %s/%s: %v", runID, taskID, err)
	}
}

// endedRun is a run of config cfg whose first execution (startExecution)
// ended: made by initialize, its tasks left as the comments of resumed
// say, then stopped by an operator, completed and told. Its budget, $2,
// is not spent ($0.60).
func endedRun(t *testing.T, env *testenv.Env) string {
	t.Helper()
	out, err := handlers.NewInitialize(env.Deps).Handle(context.Background(), model.InitializeInput{
		ConfigName: "cfg", TaskIDs: allTaskIDs(), ExecutionID: startExecution, ExecutionStartTime: "2026-12-05T10:00:00Z",
		BudgetUSD: budget("2"),
	})
	if err != nil {
		t.Fatal(err)
	}
	runID := out.RunID
	failed := func(status string, retries int) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{model.AttrStatus: str(status), model.AttrRetryCount: num(retries),
			model.AttrLastErrorType: str("States.TaskFailed"), model.AttrLastErrorCause: str("worker exited with 1")}
	}
	with := func(m map[string]types.AttributeValue, more map[string]types.AttributeValue) map[string]types.AttributeValue {
		for k, v := range more {
			m[k] = v
		}
		return m
	}
	for id, attrs := range map[string]map[string]types.AttributeValue{
		"done": {model.AttrStatus: str(model.TaskCompleted), model.AttrCountedAs: str(model.TaskCompleted), model.AttrCountOwner: str("owner-1"),
			model.AttrPairs: num(1), model.AttrPairsCorrect: num(1), model.AttrScore: num(1), model.AttrIsCorrect: &types.AttributeValueMemberBOOL{Value: true},
			model.AttrCostUSD: num("0.5"), model.AttrAnsweredAttempts: num(2)},
		"claimed":  {model.AttrStatus: str(model.TaskInProgress), model.AttrWorkerID: str("w-1")},
		"stranded": with(failed(model.TaskInProgress, 1), map[string]types.AttributeValue{model.AttrNotedAttempt: num(1)}),
		"notrun":   {model.AttrStatus: str(model.TaskNotRun)},
		"skipped":  with(failed(model.TaskNotRun, 1), map[string]types.AttributeValue{model.AttrNotedAttempt: num(1)}),
		"between":  with(failed(model.TaskFailed, 2), map[string]types.AttributeValue{model.AttrNotedAttempt: num(2)}),
		"computed": with(failed(model.TaskFailed, 1), map[string]types.AttributeValue{model.AttrNotedAttempt: num(1),
			model.AttrComputeAttempts: &types.AttributeValueMemberNS{Value: []string{"1", "2"}}, model.AttrComputeCostUSD: num("0.002")}),
		"noanswer": with(failed(model.TaskFailed, 1), map[string]types.AttributeValue{model.AttrNotedAttempt: num(1), model.AttrNoAnswerAttempt: num(2)}),
		"noted":    with(failed(model.TaskFailed, 1), map[string]types.AttributeValue{model.AttrNotedAttempt: num(2)}),
		"permanent": with(failed(model.TaskFailedPermanent, 3), map[string]types.AttributeValue{model.AttrNotedAttempt: num(3),
			model.AttrCountedAs: str(model.TaskFailedPermanent), model.AttrCountOwner: str("owner-2"),
			model.AttrPermanentByUs: &types.AttributeValueMemberBOOL{Value: true}, model.AttrGivenUp: &types.AttributeValueMemberBOOL{Value: true},
			model.AttrError: str("provider returned 500"), model.AttrCostUSD: num("0.1")}),
		// "pending" stays as initialize wrote it.
	} {
		set(t, env, runID, id, attrs)
	}
	set(t, env, runID, "", map[string]types.AttributeValue{
		model.AttrStatus: str(model.RunStopped), model.AttrStopReason: str("stopped by ada"), model.AttrStopKind: str(model.StopOperator),
		model.AttrStoppedAt: str(stoppedAt), model.AttrCompletedAt: str(completedAt), model.AttrNotifiedAt: str(notifiedAt),
		model.AttrUpdatedAt: str(completedAt), model.AttrFailureStreak: num(3),
		model.AttrCountedCompleted: num(1), model.AttrCompletedTasks: num(1), model.AttrCountedFailed: num(1), model.AttrFailedTasks: num(1),
		model.AttrCountedCostUSD: num("0.6"), model.AttrTotalCostUSD: num("0.6"), model.AttrNotRunTasks: num(2),
	})
	return runID
}

// budget is a budget_usd as the input gives it.
func budget(usd string) *json.Number { n := json.Number(usd); return &n }

// resumer is initialize as the resumed execution runs it, at a fixed time
// and with no execution to ask (NewInitialize gives it the stage's Step
// Functions client, which has no stand-in here): the run record decides.
func resumer(env *testenv.Env, now time.Time) *initialize.Handler {
	h := handlers.NewInitialize(env.Deps)
	h.Executions = nil
	h.Now = func() time.Time { return now }
	return h
}

func resumeInput(runID, execution string, includeFailed bool) model.InitializeInput {
	return model.InitializeInput{ResumeRunID: runID, ExecutionID: execution, IncludeFailed: includeFailed}
}

// snapshot is every record of a run, to tell what a call changed.
type snapshot struct {
	run   map[string]types.AttributeValue
	tasks map[string]map[string]types.AttributeValue
}

func snap(t *testing.T, env *testenv.Env, runID string) snapshot {
	t.Helper()
	s := snapshot{run: env.Run(t, runID), tasks: map[string]map[string]types.AttributeValue{}}
	for _, id := range allTaskIDs() {
		s.tasks[id] = env.Task(t, runID, id)
	}
	return s
}

// unchanged fails the test for every record that differs from before.
func unchanged(t *testing.T, before, after snapshot, ids ...string) {
	t.Helper()
	if ids == nil {
		if !reflect.DeepEqual(before.run, after.run) {
			t.Errorf("the run record changed:\nbefore %v\nafter  %v", before.run, after.run)
		}
		ids = allTaskIDs()
	}
	for _, id := range ids {
		if !reflect.DeepEqual(before.tasks[id], after.tasks[id]) {
			t.Errorf("task %s changed:\nbefore %v\nafter  %v", id, before.tasks[id], after.tasks[id])
		}
	}
}

func executionsOf(t *testing.T, run map[string]types.AttributeValue) []model.Execution {
	t.Helper()
	var l []model.Execution
	if err := attributevalue.Unmarshal(run[model.AttrExecutions], &l); err != nil {
		t.Fatalf("executions %v: %v", run[model.AttrExecutions], err)
	}
	return l
}

func historyOf(t *testing.T, task map[string]types.AttributeValue) []model.TaskHistoryEntry {
	t.Helper()
	var l []model.TaskHistoryEntry
	if av, ok := task[model.AttrHistory]; ok {
		if err := attributevalue.Unmarshal(av, &l); err != nil {
			t.Fatalf("history %v: %v", av, err)
		}
	}
	return l
}

// wantItems are the items a resume writes: every task not COMPLETED (and
// FAILED_PERMANENT only with include_failed), by task id.
func wantItems(includeFailed bool) []model.MapItem {
	var items []model.MapItem
	for id, it := range resumed {
		it.TaskID, it.JobName = id, "cfg-"+id
		items = append(items, it)
	}
	if includeFailed {
		it := permanentItem
		it.TaskID, it.JobName = "permanent", "cfg-permanent"
		items = append(items, it)
	}
	slices.SortFunc(items, func(a, b model.MapItem) int { return strings.Compare(a.TaskID, b.TaskID) })
	return items
}

func objectMissing(t *testing.T, env *testenv.Env, key string) bool {
	t.Helper()
	_, err := testenv.DirectS3(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(key)})
	if _, missing := clients.NoObject(err); missing {
		return true
	}
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return false
}

// writes counts the DynamoDB writes the handler sent since the proxy's counts were reset.
func writes(env *testenv.Env) int {
	return env.Proxy.Requests("UpdateItem") + env.Proxy.Requests("PutItem") + env.Proxy.Requests("BatchWriteItem") + env.Proxy.Requests("DeleteItem")
}

// A resume with include_failed runs again, in place, every task that did
// not complete, each from an attempt number it never used; makes the
// stranded and NOT_RUN ones and the FAILED_PERMANENT one claimable, keeping
// what they were in their history; leaves the completed task alone; and
// takes the run over: RUNNING under the new execution, listed after the
// first one (now ended), its stop, end notice and failure streak cleared,
// its budget the one given and its counters those of its records.
func TestResumeRunsEveryUnfinishedTaskAgainInPlace(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := endedRun(t, env)
	before := snap(t, env, runID)
	now := time.Now().UTC().Truncate(time.Millisecond)
	at := model.FormatTime(now)
	stopAfter := 4
	in := resumeInput(runID, resumeExecution, true)
	in.BudgetUSD, in.StopAfterFailures = budget("5"), &stopAfter

	out, err := resumer(env, now).Handle(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := model.InitializeOutput{RunID: runID, ConfigName: "cfg", DataSource: "evaluation", TotalTasks: 11,
		ItemsKey: model.ResumeItemsKey(runID, resumeExecution)}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("output %+v\nwant   %+v", out, want)
	}
	// The first execution's items stay as they were: the resume has its own.
	if out.ItemsKey == model.ItemsKey(runID) {
		t.Errorf("the resume's items overwrite the first execution's, %s", out.ItemsKey)
	}
	var items []model.MapItem
	readJSON(t, env, out.ItemsKey, &items)
	if !reflect.DeepEqual(items, wantItems(true)) {
		t.Errorf("items\n%+v\nwant\n%+v", items, wantItems(true))
	}

	after := snap(t, env, runID)
	// Completed, and FAILED or PENDING (claimable as they are): untouched.
	unchanged(t, before, after, "done", "between", "computed", "noanswer", "noted", "pending")
	for id, to := range released {
		task := after.tasks[id]
		if s := testenv.S(task, model.AttrStatus); s != to {
			t.Errorf("task %s is %s after the resume, want %s (claimable)", id, s, to)
		}
		if got, want := testenv.N(task, model.AttrRetryCount), testenv.N(before.tasks[id], model.AttrRetryCount); got != want {
			t.Errorf("task %s retry_count %s, want %s as before", id, got, want)
		}
		h := historyOf(t, task)
		retries, _ := strconv.Atoi(testenv.N(before.tasks[id], model.AttrRetryCount))
		wantEntry := model.TaskHistoryEntry{Status: testenv.S(before.tasks[id], model.AttrStatus), RetryCount: retries,
			LastErrorType: testenv.S(before.tasks[id], model.AttrLastErrorType), LastErrorCause: testenv.S(before.tasks[id], model.AttrLastErrorCause),
			ReleasedAt: at, ReleasedBy: resumeExecution}
		if len(h) != 1 || h[0] != wantEntry {
			t.Errorf("task %s history %+v, want [%+v]", id, h, wantEntry)
		}
	}
	perm := after.tasks["permanent"]
	if s := testenv.S(perm, model.AttrStatus); s != model.TaskFailed || testenv.N(perm, model.AttrRetryCount) != "3" {
		t.Errorf("permanent is %s with retry_count %s, want FAILED with 3", s, testenv.N(perm, model.AttrRetryCount))
	}
	// Its earlier outcome no longer counts: its next one is counted once.
	// Its spend moved to its history (still the run's), its count cleared.
	for _, a := range []string{model.AttrCountedAs, model.AttrCountOwner, model.AttrPermanentByUs, model.AttrGivenUp, model.AttrCostUSD} {
		if v, ok := perm[a]; ok {
			t.Errorf("permanent keeps %s = %v after its release", a, v)
		}
	}
	wantEntry := model.TaskHistoryEntry{Status: model.TaskFailedPermanent, RetryCount: 3, LastErrorType: "States.TaskFailed",
		LastErrorCause: "worker exited with 1", WorkerError: "provider returned 500", CostUSD: "0.1", ReleasedAt: at, ReleasedBy: resumeExecution}
	if h := historyOf(t, perm); len(h) != 1 || h[0] != wantEntry {
		t.Errorf("permanent's history %+v, want [%+v]", h, wantEntry)
	}

	run := after.run
	if s, e := testenv.S(run, model.AttrStatus), testenv.S(run, model.AttrExecutionID); s != model.RunRunning || e != resumeExecution {
		t.Errorf("run is %s under %s, want RUNNING under %s", s, e, resumeExecution)
	}
	wantExecutions := []model.Execution{
		{ExecutionID: startExecution, Kind: model.ExecutionStart, StartedAt: testenv.S(before.run, model.AttrCreatedAt), EndedAt: completedAt, Tasks: 11},
		{ExecutionID: resumeExecution, Kind: model.ExecutionResume, StartedAt: at, Tasks: 10, IncludeFailed: true},
	}
	if got := executionsOf(t, run); !reflect.DeepEqual(got, wantExecutions) {
		t.Errorf("executions\n%+v\nwant\n%+v", got, wantExecutions)
	}
	for _, a := range []string{model.AttrStopReason, model.AttrStopKind, model.AttrStoppedAt, model.AttrNotifiedAt, model.AttrCompletedAt} {
		if v, ok := run[a]; ok {
			t.Errorf("run keeps %s = %v: the resumed run is not stopped, and its new end is to be told", a, v)
		}
	}
	for attr, want := range map[string]string{
		model.AttrFailureStreak: "0", model.AttrBudgetUSD: "5", model.AttrStopAfterFailures: "4",
		// Recounted from the records: done completed; no task failed for
		// good (permanent runs again, the FAILED ones are between attempts);
		// the spend of every attempt so far stays.
		model.AttrCountedCompleted: "1", model.AttrCompletedTasks: "1",
		model.AttrCountedFailed: "0", model.AttrFailedTasks: "0",
		model.AttrCountedCostUSD: "0.6", model.AttrTotalCostUSD: "0.6",
		model.AttrNotRunTasks: "0", model.AttrTotalTasks: "11",
	} {
		if got := testenv.N(run, attr); got != want {
			t.Errorf("run %s = %q, want %q", attr, got, want)
		}
	}
}

// Without include_failed a task that failed for good stays so, and counted.
func TestResumeLeavesFailedPermanentTasksWithoutIncludeFailed(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := endedRun(t, env)
	before := snap(t, env, runID)
	out, err := resumer(env, time.Now()).Handle(context.Background(), resumeInput(runID, resumeExecution, false))
	if err != nil {
		t.Fatal(err)
	}
	var items []model.MapItem
	readJSON(t, env, out.ItemsKey, &items)
	if !reflect.DeepEqual(items, wantItems(false)) {
		t.Errorf("items\n%+v\nwant\n%+v", items, wantItems(false))
	}
	after := snap(t, env, runID)
	unchanged(t, before, after, "permanent", "done")
	for id, to := range released {
		if s := testenv.S(after.tasks[id], model.AttrStatus); s != to {
			t.Errorf("task %s is %s, want %s", id, s, to)
		}
	}
	ex := executionsOf(t, after.run)
	if len(ex) != 2 || ex[1].Tasks != 9 || ex[1].IncludeFailed || ex[1].Kind != model.ExecutionResume {
		t.Errorf("executions %+v, want the resume's second with 9 tasks and no include_failed", ex)
	}
	// The budget was not given: the run's stays.
	for attr, want := range map[string]string{model.AttrBudgetUSD: "2", model.AttrCountedFailed: "1", model.AttrFailedTasks: "1", model.AttrCompletedTasks: "1"} {
		if got := testenv.N(after.run, attr); got != want {
			t.Errorf("run %s = %q, want %q", attr, got, want)
		}
	}
}

// A retried call of the resuming execution (a lost response, a retried
// Lambda) answers the same, writes the same items, and releases nothing
// twice; another execution's resume, while the first holds the run, is
// refused and writes nothing.
func TestResumeIsIdempotentPerExecutionAndRefusesAnother(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := endedRun(t, env)
	now := time.Now().UTC()
	in := resumeInput(runID, resumeExecution, true)
	first, err := resumer(env, now).Handle(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var firstItems []model.MapItem
	readJSON(t, env, first.ItemsKey, &firstItems)
	afterFirst := snap(t, env, runID)

	second, err := resumer(env, now.Add(3*time.Second)).Handle(context.Background(), in)
	if err != nil {
		t.Fatalf("retried call: %v", err)
	}
	if !reflect.DeepEqual(second, first) {
		t.Errorf("retried call answered %+v, the first %+v", second, first)
	}
	var secondItems []model.MapItem
	readJSON(t, env, second.ItemsKey, &secondItems)
	if !reflect.DeepEqual(secondItems, firstItems) {
		t.Errorf("items after the retry\n%+v\nbefore\n%+v", secondItems, firstItems)
	}
	afterSecond := snap(t, env, runID)
	unchanged(t, afterFirst, afterSecond, allTaskIDs()...)
	if h := historyOf(t, afterSecond.tasks["permanent"]); len(h) != 1 {
		t.Errorf("permanent's history holds %d entries after a retried resume, want 1", len(h))
	}
	for _, a := range []string{model.AttrStatus, model.AttrExecutionID, model.AttrExecutions, model.AttrCountedFailed, model.AttrCountedCompleted, model.AttrTotalCostUSD} {
		if !reflect.DeepEqual(afterFirst.run[a], afterSecond.run[a]) {
			t.Errorf("run %s was %v, is %v after the retry", a, afterFirst.run[a], afterSecond.run[a])
		}
	}

	env.Proxy.ResetCounts()
	_, err = resumer(env, now.Add(time.Minute)).Handle(context.Background(), resumeInput(runID, otherExecution, true))
	var busy *model.RunBusyError
	if !errors.As(err, &busy) || busy.RunID != runID {
		t.Fatalf("another execution's resume of the RUNNING run: %v, want RunBusyError", err)
	}
	if n := writes(env); n != 0 {
		t.Errorf("the refused resume sent %d DynamoDB writes", n)
	}
	unchanged(t, afterSecond, snap(t, env, runID))
	if !objectMissing(t, env, model.ResumeItemsKey(runID, otherExecution)) {
		t.Error("the refused resume wrote its items")
	}
}

// Resumes by several executions at once (two operators, a retried start):
// one takes the run over, the others are refused; every task is released
// once, by the one.
func TestConcurrentResumesTakeTheRunOverOnce(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := endedRun(t, env)
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = resumer(env, time.Now()).Handle(context.Background(), resumeInput(runID, fmt.Sprintf("%s-%d", resumeExecution, i), true))
		})
	}
	wg.Wait()
	winner := ""
	for i, err := range errs {
		var busy *model.RunBusyError
		switch {
		case err == nil && winner == "":
			winner = fmt.Sprintf("%s-%d", resumeExecution, i)
		case err == nil:
			t.Errorf("call %d resumed the run too, after %s", i, winner)
		case !errors.As(err, &busy):
			t.Errorf("call %d: %v, want RunBusyError", i, err)
		}
	}
	if winner == "" {
		t.Fatal("no resume took the run over")
	}
	run := env.Run(t, runID)
	if e := testenv.S(run, model.AttrExecutionID); e != winner {
		t.Errorf("run's execution_id %s, the resume that succeeded was %s", e, winner)
	}
	if ex := executionsOf(t, run); len(ex) != 2 || ex[1].ExecutionID != winner {
		t.Errorf("executions %+v, want the first and %s", ex, winner)
	}
	for id := range released {
		if h := historyOf(t, env.Task(t, runID, id)); len(h) != 1 || h[0].ReleasedBy != winner {
			t.Errorf("task %s history %+v, want one entry by %s", id, h, winner)
		}
	}
	for i := range n {
		if e := fmt.Sprintf("%s-%d", resumeExecution, i); e != winner && !objectMissing(t, env, model.ResumeItemsKey(runID, e)) {
			t.Errorf("refused %s wrote its items", e)
		}
	}
}

// failingPut fails the first PutObject: the Lambda that claimed the run
// died before it wrote its items.
type failingPut struct {
	initialize.S3
	failed bool
}

func (f *failingPut) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if !f.failed {
		f.failed = true
		return nil, errors.New("connection reset")
	}
	return f.S3.PutObject(ctx, in, opts...)
}

// A call that took the run over and failed before writing its items
// (nothing released yet) is finished by its retry, with the numbers a
// first call would have given.
func TestAResumeThatDiedAfterItsClaimIsFinishedByItsRetry(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := endedRun(t, env)
	before := snap(t, env, runID)
	h := resumer(env, time.Now())
	h.S3 = &failingPut{S3: h.S3}
	in := resumeInput(runID, resumeExecution, true)
	if _, err := h.Handle(context.Background(), in); err == nil {
		t.Fatal("the first call succeeded: the test meant it to fail writing its items")
	}
	if s := testenv.S(env.Run(t, runID), model.AttrExecutionID); s != resumeExecution {
		t.Fatalf("the failed call did not claim the run (execution_id %s): the test needs it to", s)
	}
	unchanged(t, before, snap(t, env, runID), allTaskIDs()...)

	out, err := h.Handle(context.Background(), in)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	var items []model.MapItem
	readJSON(t, env, out.ItemsKey, &items)
	if !reflect.DeepEqual(items, wantItems(true)) {
		t.Errorf("items\n%+v\nwant\n%+v", items, wantItems(true))
	}
	for id, to := range released {
		task := env.Task(t, runID, id)
		if s := testenv.S(task, model.AttrStatus); s != to || len(historyOf(t, task)) != 1 {
			t.Errorf("task %s is %s with %d history entries, want %s with 1", id, s, len(historyOf(t, task)), to)
		}
	}
	if ex := executionsOf(t, env.Run(t, runID)); len(ex) != 2 {
		t.Errorf("%d executions listed, want 2", len(ex))
	}
}

// Bad or impossible resumes are refused before anything is written: the
// run, its tasks and the bucket stay as they were.
func TestResumeRefusalsWriteNothing(t *testing.T) {
	cases := []struct {
		name string
		// prepare changes the ended run before the call (nil: none).
		prepare func(t *testing.T, env *testenv.Env, runID string)
		in      func(runID string) model.InitializeInput
		field   string // of the InvalidInputError; "" for RunBusyError
		reason  string // part of the error's text
	}{
		{name: "config_name given", field: "config_name", in: func(runID string) model.InitializeInput {
			in := resumeInput(runID, resumeExecution, true)
			in.ConfigName = "cfg"
			return in
		}},
		{name: "task_ids given", field: "task_ids", in: func(runID string) model.InitializeInput {
			in := resumeInput(runID, resumeExecution, true)
			in.TaskIDs = []string{"pending"}
			return in
		}},
		{name: "no execution_id", field: "execution_id", in: func(runID string) model.InitializeInput {
			return resumeInput(runID, "", true)
		}},
		{name: "budget spent", field: "budget_usd", reason: "spent", in: func(runID string) model.InitializeInput {
			return resumeInput(runID, resumeExecution, true)
		}, prepare: func(t *testing.T, env *testenv.Env, runID string) {
			set(t, env, runID, "", map[string]types.AttributeValue{model.AttrBudgetUSD: num("0.6")})
		}},
		{name: "budget given, spent too", field: "budget_usd", reason: "spent", in: func(runID string) model.InitializeInput {
			in := resumeInput(runID, resumeExecution, true)
			in.BudgetUSD = budget("0.5")
			return in
		}},
		{name: "nothing but failed tasks, without include_failed", field: "resume_run_id", reason: "include_failed",
			in: func(runID string) model.InitializeInput { return resumeInput(runID, resumeExecution, false) },
			prepare: func(t *testing.T, env *testenv.Env, runID string) {
				for _, id := range allTaskIDs() {
					if id != "permanent" && id != "done" {
						set(t, env, runID, id, map[string]types.AttributeValue{model.AttrStatus: str(model.TaskCompleted)})
					}
				}
			}},
		{name: "every task completed", field: "resume_run_id", reason: "nothing to resume",
			in: func(runID string) model.InitializeInput { return resumeInput(runID, resumeExecution, true) },
			prepare: func(t *testing.T, env *testenv.Env, runID string) {
				for _, id := range allTaskIDs() {
					set(t, env, runID, id, map[string]types.AttributeValue{model.AttrStatus: str(model.TaskCompleted)})
				}
			}},
		{name: "run RUNNING", reason: "RUNNING",
			in: func(runID string) model.InitializeInput { return resumeInput(runID, resumeExecution, true) },
			prepare: func(t *testing.T, env *testenv.Env, runID string) {
				set(t, env, runID, "", map[string]types.AttributeValue{model.AttrStatus: str(model.RunRunning)})
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := testenv.Setup(t, nil)
			runID := endedRun(t, env)
			if c.prepare != nil {
				c.prepare(t, env, runID)
			}
			before := snap(t, env, runID)
			env.Proxy.ResetCounts()
			in := c.in(runID)
			_, err := resumer(env, time.Now()).Handle(context.Background(), in)
			if c.field != "" {
				var invalid *model.InvalidInputError
				if !errors.As(err, &invalid) || invalid.Field != c.field {
					t.Fatalf("error %v, want InvalidInputError naming %s", err, c.field)
				}
			} else {
				var busy *model.RunBusyError
				if !errors.As(err, &busy) {
					t.Fatalf("error %v, want RunBusyError", err)
				}
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Errorf("error %q does not say %q", err, c.reason)
			}
			if n := writes(env); n != 0 {
				t.Errorf("the refused resume sent %d DynamoDB writes", n)
			}
			unchanged(t, before, snap(t, env, runID))
			if in.ExecutionID != "" && !objectMissing(t, env, model.ResumeItemsKey(runID, in.ExecutionID)) {
				t.Error("the refused resume wrote its items")
			}
		})
	}
}

// A spent budget is no bar when the resume gives a higher one.
func TestResumeWithAHigherBudgetThanSpent(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := endedRun(t, env)
	set(t, env, runID, "", map[string]types.AttributeValue{model.AttrBudgetUSD: num("0.6")})
	in := resumeInput(runID, resumeExecution, true)
	in.BudgetUSD = budget("0.61")
	if _, err := resumer(env, time.Now()).Handle(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if b := testenv.N(env.Run(t, runID), model.AttrBudgetUSD); b != "0.61" {
		t.Errorf("budget_usd %s, want the 0.61 given", b)
	}
}

// A run made without an execution (by invoking initialize) and still
// RUNNING is refused: nothing tells that its tasks are not being worked on.
func TestResumeRefusesARunningRunWithoutExecution(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "a", "b")
	before := env.Run(t, runID)
	_, err := resumer(env, time.Now()).Handle(context.Background(), resumeInput(runID, resumeExecution, false))
	var busy *model.RunBusyError
	if !errors.As(err, &busy) {
		t.Fatalf("error %v, want RunBusyError", err)
	}
	if after := env.Run(t, runID); !reflect.DeepEqual(before, after) {
		t.Errorf("the run changed:\nbefore %v\nafter  %v", before, after)
	}
}

// executions answers DescribeExecution as Step Functions would for the
// run's last execution, and records what it was asked.
type executions struct {
	desc  *sfn.DescribeExecutionOutput
	err   error
	asked []string
}

func (e *executions) DescribeExecution(_ context.Context, in *sfn.DescribeExecutionInput, _ ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error) {
	e.asked = append(e.asked, aws.ToString(in.ExecutionArn))
	return e.desc, e.err
}

// With Step Functions to ask, the run's last execution decides: a resume
// waits for it to end, and for its end to be recorded (told, or settled
// for ResumeSettle); an execution past Step Functions' history is long
// over. The first execution's ended_at is its stop date when there is one.
func TestResumeAsksWhetherTheLastExecutionEnded(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	ended := func(ago time.Duration) *sfn.DescribeExecutionOutput {
		return &sfn.DescribeExecutionOutput{Status: sfntypes.ExecutionStatusAborted, StopDate: aws.Time(now.Add(-ago))}
	}
	cases := []struct {
		name      string
		ex        *executions
		notified  bool
		busy      bool
		wantEnded string
	}{
		{name: "still running", ex: &executions{desc: &sfn.DescribeExecutionOutput{Status: sfntypes.ExecutionStatusRunning}}, notified: true, busy: true},
		{name: "pending redrive", ex: &executions{desc: &sfn.DescribeExecutionOutput{Status: sfntypes.ExecutionStatusPendingRedrive}}, notified: true, busy: true},
		{name: "ended a minute ago, end not told", ex: &executions{desc: ended(time.Minute)}, busy: true},
		{name: "ended a minute ago, end told", ex: &executions{desc: ended(time.Minute)}, notified: true, wantEnded: model.FormatTime(now.Add(-time.Minute))},
		{name: "ended long ago, end not told", ex: &executions{desc: ended(initialize.ResumeSettle + time.Second)},
			wantEnded: model.FormatTime(now.Add(-initialize.ResumeSettle - time.Second))},
		{name: "past Step Functions' history", ex: &executions{err: &sfntypes.ExecutionDoesNotExist{Message: aws.String("Execution Does Not Exist")}},
			wantEnded: completedAt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := testenv.Setup(t, nil)
			runID := endedRun(t, env)
			if !c.notified {
				set(t, env, runID, "", map[string]types.AttributeValue{model.AttrNotifiedAt: nil})
			}
			before := snap(t, env, runID)
			h := resumer(env, now)
			h.Executions = c.ex
			_, err := h.Handle(context.Background(), resumeInput(runID, resumeExecution, true))
			if !slices.Equal(c.ex.asked, []string{startExecution}) {
				t.Errorf("asked about %v, want the run's execution %s", c.ex.asked, startExecution)
			}
			if c.busy {
				var busy *model.RunBusyError
				if !errors.As(err, &busy) {
					t.Fatalf("error %v, want RunBusyError", err)
				}
				unchanged(t, before, snap(t, env, runID))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ex := executionsOf(t, env.Run(t, runID))
			if len(ex) != 2 || ex[0].EndedAt != c.wantEnded {
				t.Errorf("executions %+v, want the first ended at %s", ex, c.wantEnded)
			}
		})
	}
}

// The resumed execution counts each task once, as it settles it: the
// released FAILED_PERMANENT task, failing for good again at its third
// attempt past the base, is the run's one failed task (the tasks still
// between attempts are not failures yet), and its earlier spend is not
// counted a second time.
func TestAResumedRunCountsATaskThatFailsAgainOnce(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "3"})
	runID := endedRun(t, env)
	if _, err := resumer(env, time.Now()).Handle(context.Background(), resumeInput(runID, resumeExecution, true)); err != nil {
		t.Fatal(err)
	}
	he := handlers.NewHandleError(env.Deps)
	for attempt := permanentItem.Attempt; attempt < permanentItem.Attempt+3; attempt++ {
		if _, err := he.Handle(context.Background(), model.HandleErrorInput{RunID: runID, TaskID: "permanent", Attempt: attempt,
			AttemptBase: permanentItem.AttemptBase, Error: &model.TaskError{Error: "States.TaskFailed", Cause: "worker exited with 1"}}); err != nil {
			t.Fatal(err)
		}
	}
	if s := testenv.S(env.Task(t, runID, "permanent"), model.AttrStatus); s != model.TaskFailedPermanent {
		t.Fatalf("permanent is %s after three more failed attempts, want FAILED_PERMANENT", s)
	}
	run := env.Run(t, runID)
	if f, c := testenv.N(run, model.AttrFailedTasks), testenv.N(run, model.AttrCountedFailed); f != "1" || c != "1" {
		t.Errorf("failed_tasks %s, counted_failed %s: want 1 and 1, the one task failed for good", f, c)
	}
	// No attempt of the resume recorded a spend: the run's is still its
	// records' ($0.50 + $0.10), which its budget is checked against.
	if cost := testenv.N(run, model.AttrTotalCostUSD); cost != "0.6" {
		t.Errorf("total_cost_usd %s, want 0.6 as the task records say", cost)
	}
}
