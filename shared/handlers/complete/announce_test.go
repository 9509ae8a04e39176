package complete_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/handlers/complete"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

const topic = "arn:aws:sns:us-east-1:000000000000:arc-benchmark-test-runs"

// notifying is a test world whose handlers tell a run's end on topic.
func notifying(t *testing.T) *testenv.Env {
	t.Helper()
	return testenv.Setup(t, map[string]string{"NOTIFY_TOPIC_ARN": topic, "ARCBENCH_STAGE": "test", "CLOUDWATCH_NAMESPACE": "ArcTest"})
}

// failedTask writes a task that failed for good with the given error.
func failedTask(t *testing.T, env *testenv.Env, runID, taskID, errType, reason, cause string, exit int) {
	t.Helper()
	rec := map[string]any{"run_id": runID, "task_id": taskID, "status": model.TaskFailedPermanent, "retry_count": 3,
		model.AttrLastErrorType: errType, model.AttrLastErrorCause: cause}
	if reason != "" {
		rec[model.AttrLastErrorReason], rec[model.AttrLastExitCode] = reason, exit
	}
	env.PutTask(t, rec)
}

// A run's end is one message on the stage's topic, whatever number of times
// complete is called for it: status, counts, cost, the commonest failure
// reasons (the same cause on different tasks counted as one reason) and
// the commands to see more.
func TestARunsEndIsToldOnceOnTheTopic(t *testing.T) {
	env := notifying(t)
	runID := runOf(t, env, task{model.TaskCompleted, "0.5", 1}, task{model.TaskCompleted, "0.25", 0},
		task{status: model.TaskFailedPermanent}, task{status: model.TaskFailedPermanent}, task{status: model.TaskFailedPermanent},
		task{status: model.TaskFailedPermanent})
	failedTask(t, env, runID, "t2", "States.TaskFailed", "Essential container in task exited", "{...}", 1)
	failedTask(t, env, runID, "t3", "States.TaskFailed", "Essential container in task exited", "{...}", 1)
	failedTask(t, env, runID, "t4", model.ErrNoAnswer, "", "task t4 was marked COMPLETED with no answer"+model.WorkerSaid+"Error code: 500", 0)
	failedTask(t, env, runID, "t5", model.ErrNoAnswer, "", "task t5 was marked COMPLETED with no answer"+model.WorkerSaid+"Error code: 500", 0)
	in := model.CompleteInput{RunID: runID, Aggregation: &model.Totals{TotalTasks: 6, CompletedTasks: 2, FailedTasks: 4, TotalCostUSD: "0.75", Accuracy: 0.5}}
	h := handlers.NewComplete(env.Deps)
	for range 3 {
		if _, err := h.Handle(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	if bad := env.SNS.Malformed(); len(bad) > 0 {
		t.Fatalf("the SNS stand-in refused: %v", bad)
	}
	pubs := env.SNS.Published()
	if len(pubs) != 1 {
		t.Fatalf("%d messages published for one run's end, want 1", len(pubs))
	}
	p := pubs[0]
	if p.TopicArn != topic || p.Subject != "arcbench "+runID+": COMPLETED_WITH_ERRORS, score 16.7%" {
		t.Errorf("published to %s with subject %q", p.TopicArn, p.Subject)
	}
	for _, want := range []string{
		"Config:  cfg-a", "Status:  COMPLETED_WITH_ERRORS", "Cost:    $0.75", "Tasks:   2 completed, 4 failed, 0 not run, of 6",
		"  2  NoAnswer: Error code: 500\n", "  2  States.TaskFailed: Essential container in task exited (exit code 1)\n",
		"arcbench results " + runID + " --stage test\n", "arcbench report " + runID + " --stage test\n",
	} {
		if !strings.Contains(p.Message, want) {
			t.Errorf("message lacks %q:\n%s", want, p.Message)
		}
	}
	if strings.Contains(p.Message, "Resumed:") || strings.Contains(p.Message, "Reused:") {
		t.Errorf("a run never resumed, that reused nothing, says it was or did:\n%s", p.Message)
	}
	if a := p.MessageAttributes; a[complete.AttributeRunID].StringValue != runID || a[complete.AttributeStatus].StringValue != model.RunCompletedWithErrors {
		t.Errorf("message attributes %+v", a)
	}
	if testenv.S(env.Run(t, runID), model.AttrNotifiedAt) == "" {
		t.Error("notified_at not set on the run")
	}
	if n := len(completePuts(env)); n != 1 {
		t.Errorf("%d PutMetricData requests for three calls, want 1", n)
	}
}

// A run that ended otherwise (stopped early, its execution aborted) is
// announced by the reaper's call: the message counts its pending tasks as
// not run, and the stage's run-end metrics are RunEnded by status,
// RunStoppedEarly and the dimensionless TotalCostUSD; nothing by
// configuration (complete did not finish it), and nothing twice.
func TestAnnounceTellsTheEndOfAStoppedRunOnce(t *testing.T) {
	env := notifying(t)
	runID := runOf(t, env, task{model.TaskCompleted, "0.5", 1}, task{status: model.TaskFailedPermanent}, task{status: model.TaskPending})
	failedTask(t, env, runID, "t1", model.ErrNoAnswer, "", "no answer", 0)
	st := store.New(env.Deps.Clients.DynamoDB, env.Tables.Runs, env.Tables.Tasks)
	if _, err := st.Stop(context.Background(), runID, model.StopFailures, "1 attempts in a row failed: 1 x NoAnswer", model.FormatTime(time.Now()), true); err != nil {
		t.Fatal(err)
	}
	h := handlers.NewComplete(env.Deps)
	for range 2 {
		out, err := h.Handle(context.Background(), model.CompleteInput{RunID: runID, Announce: true})
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != model.RunStopped {
			t.Errorf("answered %s, want the run's STOPPED", out.Status)
		}
	}
	pubs := env.SNS.Published()
	if len(pubs) != 1 {
		t.Fatalf("%d messages, want 1", len(pubs))
	}
	for _, want := range []string{"Status:  STOPPED", "Reason:  1 attempts in a row failed: 1 x NoAnswer",
		"Tasks:   1 completed, 1 failed, 1 not run, of 3", "counting the 1 task not run as 0; 50.0% over the tasks that ran", "  1  NoAnswer\n"} {
		if !strings.Contains(pubs[0].Message, want) {
			t.Errorf("message lacks %q:\n%s", want, pubs[0].Message)
		}
	}
	puts := completePuts(env)
	if len(puts) != 1 {
		t.Fatalf("%d PutMetricData requests, want 1", len(puts))
	}
	got := map[string]string{}
	for _, d := range puts[0].MetricData {
		got[d.MetricName] = fmt.Sprintf("%v %v %s", d.Value, d.Dimensions, d.Unit)
	}
	want := map[string]string{"RunEnded": "1 [{Status STOPPED}] Count", "RunStoppedEarly": "1 [] Count", "TotalCostUSD": "0.5 [] None"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("metrics %v\nwant %v", got, want)
	}
}

// Only a run that has ended is announced: the reaper never calls it for a
// RUNNING one, and a call that does is refused, nothing published.
func TestAnnounceRefusesARunningRun(t *testing.T) {
	env := notifying(t)
	runID := newRun(t, env)
	_, err := lambdaio.Raw(handlers.NewComplete(env.Deps).Handle)(context.Background(), []byte(`{"run_id":"`+runID+`","announce":true}`))
	var lerr messages.InvokeResponse_Error
	if !errors.As(err, &lerr) || lerr.Type != model.ErrInvalidInput || !strings.Contains(lerr.Message, "RUNNING") {
		t.Fatalf("error %v, want InvalidInputError naming RUNNING", err)
	}
	if n := len(env.SNS.Published()); n != 0 || testenv.S(env.Run(t, runID), model.AttrNotifiedAt) != "" {
		t.Errorf("%d messages published, notified_at %q", n, testenv.S(env.Run(t, runID), model.AttrNotifiedAt))
	}
}

// A Publish that fails is retried with backoff; one that keeps failing is
// logged and never fails, nor holds, the run's completion.
func TestAFailingPublishIsRetriedAndNeverFailsTheRun(t *testing.T) {
	for _, c := range []struct {
		name     string
		failures int32
		want     int
	}{{"fails twice, then succeeds", 2, 1}, {"always fails", 1000, 0}} {
		t.Run(c.name, func(t *testing.T) {
			env := notifying(t)
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) <= c.failures {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				env.SNS.ServeHTTP(w, r)
			}))
			defer srv.Close()
			t.Setenv("AWS_ENDPOINT_URL_SNS", srv.URL)
			deps, err := handlers.Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			env.Deps = deps
			runID := newRun(t, env)
			start := time.Now()
			out, err := handlers.NewComplete(env.Deps).Handle(context.Background(), model.CompleteInput{RunID: runID, Aggregation: &model.Totals{TotalTasks: 3, CompletedTasks: 3, TotalCostUSD: "1"}})
			if err != nil || out.Status != model.RunCompleted {
				t.Fatalf("complete: %v %+v", err, out)
			}
			if d := time.Since(start); d > complete.NotifyTimeout+5*time.Second {
				t.Errorf("a failing Publish held complete for %v", d)
			}
			if n := len(env.SNS.Published()); n != c.want {
				t.Errorf("%d messages published, want %d", n, c.want)
			}
			if n := calls.Load(); n < 3 {
				t.Errorf("%d Publish requests: the failures were not retried", n)
			}
		})
	}
}

// Without a topic (a unit test's stage, `arcbench invoke`), nothing is
// published and the run completes.
func TestNoTopicPublishesNothing(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := newRun(t, env)
	if _, err := handlers.NewComplete(env.Deps).Handle(context.Background(), model.CompleteInput{RunID: runID, Aggregation: &model.Totals{TotalTasks: 3, CompletedTasks: 3, TotalCostUSD: "1"}}); err != nil {
		t.Fatal(err)
	}
	if n := len(env.SNS.Published()); n != 0 {
		t.Errorf("%d messages published without a topic", n)
	}
}

// The same cause on different tasks is one reason.
func TestFailureReasonGroupsTheSameCause(t *testing.T) {
	one := 1
	cases := []struct {
		task store.Task
		want string
	}{
		{store.Task{LastErrorType: "States.TaskFailed", Reason: "Essential container in task exited", ExitCode: &one}, "States.TaskFailed: Essential container in task exited (exit code 1)"},
		{store.Task{LastErrorType: model.ErrNoAnswer, LastErrorCause: "task abc was marked..." + model.WorkerSaid + "Error code: 500\nmore"}, "NoAnswer: Error code: 500"},
		{store.Task{LastErrorType: model.ErrNoAnswer, LastErrorCause: "task abc was marked..."}, "NoAnswer"},
		{store.Task{LastErrorType: "TaskNotCompleted", LastErrorCause: "task abc is IN_PROGRESS"}, "TaskNotCompleted"},
		{store.Task{}, "unknown"},
	}
	for _, c := range cases {
		if got := complete.FailureReason(c.task); got != c.want {
			t.Errorf("FailureReason(%+v) = %q, want %q", c.task, got, c.want)
		}
	}
}

// setRun sets attributes of a run's record, as the handlers of its
// executions would have left them.
func setRun(t *testing.T, env *testenv.Env, runID string, attrs map[string]any) {
	t.Helper()
	var (
		sets   []string
		names  = map[string]string{}
		values = map[string]types.AttributeValue{}
	)
	for name, v := range attrs {
		av, err := attributevalue.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		i := len(sets)
		sets = append(sets, fmt.Sprintf("#a%d = :v%d", i, i))
		names[fmt.Sprintf("#a%d", i)], values[fmt.Sprintf(":v%d", i)] = name, av
	}
	if _, err := env.DB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(env.Tables.Runs), Key: map[string]types.AttributeValue{model.AttrRunID: &types.AttributeValueMemberS{Value: runID}},
		UpdateExpression: aws.String("SET " + strings.Join(sets, ", ")), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	}); err != nil {
		t.Fatal(err)
	}
}

// A run resumed once, stopped under its resume, that reused an earlier
// run's results: its message says how often it was resumed, its active time
// (its two executions' run times: 2m and 1m12s) beside its span, and which
// results it took, at whose cost.
func TestTheMessageOfAResumedRunThatReusedResults(t *testing.T) {
	env := notifying(t)
	runID := runOf(t, env, task{model.TaskCompleted, "0.5", 1}, task{model.TaskCompleted, "0", 1}, task{status: model.TaskPending})
	setRun(t, env, runID, map[string]any{
		model.AttrCreatedAt: "2026-12-05T10:00:00.000Z", model.AttrExecutionID: resumeExecution,
		model.AttrExecutions: []model.Execution{
			{ExecutionID: firstExecution, Kind: model.ExecutionStart, StartedAt: "2026-12-05T10:00:00.000Z", EndedAt: "2026-12-05T10:02:00.000Z", Tasks: 3},
			{ExecutionID: resumeExecution, Kind: model.ExecutionResume, StartedAt: "2026-12-05T11:00:00.000Z", Tasks: 1}},
		model.AttrStatus: model.RunStopped, model.AttrStopReason: "stopped by ada", model.AttrStopKind: model.StopOperator,
		model.AttrStoppedAt:  "2026-12-05T11:01:12.000Z",
		model.AttrReusedFrom: "run-cfg-a-20261204-090000-0000beef", model.AttrReusedTasks: 1, model.AttrReusedCostUSD: json.Number("0.42"),
	})
	if _, err := handlers.NewComplete(env.Deps).Handle(context.Background(), model.CompleteInput{RunID: runID, Announce: true, ExecutionID: resumeExecution}); err != nil {
		t.Fatal(err)
	}
	pubs := env.SNS.Published()
	if len(pubs) != 1 {
		t.Fatalf("%d messages, want 1", len(pubs))
	}
	for _, want := range []string{
		"Tasks:   2 completed, 0 failed, 1 not run, of 3\nResumed: once (2 executions; active 3m12s, 1h01m from first start to last end)\n",
		"Reused:  1 task's result from run-cfg-a-20261204-090000-0000beef ($0.42 paid there, not in this run's cost)\n",
	} {
		if !strings.Contains(pubs[0].Message, want) {
			t.Errorf("message lacks %q:\n%s", want, pubs[0].Message)
		}
	}
}

// complete, ending a resumed run, times its last execution to its end: the
// run resumed 72s ago after a first execution of 2m is active 3m12s.
func TestCompleteTimesTheResumeToItsEnd(t *testing.T) {
	env := notifying(t)
	runID := runOf(t, env, task{model.TaskCompleted, "0.5", 1})
	now := time.Now()
	setRun(t, env, runID, map[string]any{
		model.AttrCreatedAt: model.FormatTime(now.Add(-2 * time.Hour)), model.AttrExecutionID: resumeExecution,
		model.AttrExecutions: []model.Execution{
			{ExecutionID: firstExecution, Kind: model.ExecutionStart, StartedAt: model.FormatTime(now.Add(-2 * time.Hour)),
				EndedAt: model.FormatTime(now.Add(-2*time.Hour + 2*time.Minute)), Tasks: 1},
			{ExecutionID: resumeExecution, Kind: model.ExecutionResume, StartedAt: model.FormatTime(now.Add(-72 * time.Second)), Tasks: 1}},
	})
	in := model.CompleteInput{RunID: runID, Aggregation: &model.Totals{TotalTasks: 1, CompletedTasks: 1, TotalCostUSD: "0.5"}}
	if _, err := handlers.NewComplete(env.Deps).Handle(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	pubs := env.SNS.Published()
	if len(pubs) != 1 {
		t.Fatalf("%d messages, want 1", len(pubs))
	}
	want := regexp.MustCompile(`\nResumed: once \(2 executions; active 3m1[23]s, 2h00m from first start to last end\)\n`)
	if !want.MatchString(pubs[0].Message) || strings.Contains(pubs[0].Message, "Reused:") {
		t.Errorf("message, want a line matching %s and no reuse:\n%s", want, pubs[0].Message)
	}
}
