package complete_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"arcbench/internal/emulators"
	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/handlers/complete"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func newRun(t *testing.T, env *testenv.Env) string {
	t.Helper()
	out, err := handlers.NewInitialize(env.Deps).Handle(context.Background(), model.InitializeInput{ConfigName: "cfg-a", TaskIDs: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	return out.RunID
}

// task is a task record as the worker and check-task leave it.
type task struct {
	status, cost string
	score        float64
}

// runOf makes a run whose tasks ended as given.
func runOf(t *testing.T, env *testenv.Env, tasks ...task) string {
	t.Helper()
	ids := make([]string, len(tasks))
	for i := range tasks {
		ids[i] = fmt.Sprintf("t%d", i)
	}
	out, err := handlers.NewInitialize(env.Deps).Handle(context.Background(), model.InitializeInput{ConfigName: "cfg-a", TaskIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	for i, tk := range tasks {
		rec := map[string]any{"run_id": out.RunID, "task_id": ids[i], "status": tk.status, "retry_count": 0}
		if tk.status == model.TaskCompleted {
			rec["cost_usd"], rec["score"], rec["pairs"], rec["is_correct"] = json.Number(tk.cost), tk.score, 1, tk.score == 1
		}
		env.PutTask(t, rec)
	}
	return out.RunID
}

func TestFinalStatusFollowsTheTaskRecords(t *testing.T) {
	done, failed := task{model.TaskCompleted, "0.25", 1}, task{status: model.TaskFailedPermanent}
	cases := []struct {
		name  string
		tasks []task
		want  string
	}{
		{"all completed", []task{done, done, done}, "COMPLETED"},
		{"some failed", []task{done, done, failed}, "COMPLETED_WITH_ERRORS"},
		{"every task failed", []task{failed, failed, failed}, "FAILED"},
	}
	env := testenv.Setup(t, nil)
	h := handlers.NewComplete(env.Deps)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runID := runOf(t, env, c.tasks...)
			// The aggregation says all went well; the records decide.
			out, err := h.Handle(context.Background(), model.CompleteInput{RunID: runID, Aggregation: &model.Totals{
				TotalTasks: 3, CompletedTasks: 3, TotalCostUSD: "0.75", Accuracy: 1,
			}})
			if err != nil {
				t.Fatal(err)
			}
			if out.Status != c.want {
				t.Errorf("status %s, want %s", out.Status, c.want)
			}
			run := env.Run(t, runID)
			if got := testenv.S(run, "status"); got != c.want {
				t.Errorf("run record status %s, want %s", got, c.want)
			}
			if testenv.S(run, "completed_at") != out.CompletedAt || out.CompletedAt == "" {
				t.Errorf("completed_at %q in the record, %q in the output", testenv.S(run, "completed_at"), out.CompletedAt)
			}
			if d, err := strconv.ParseFloat(testenv.N(run, "duration_seconds"), 64); err != nil || d < 0 || d > 60 {
				t.Errorf("duration_seconds %q", testenv.N(run, "duration_seconds"))
			}
		})
	}
	for _, c := range []struct {
		totals model.Totals
		want   string
	}{{model.Totals{}, "COMPLETED"}, {model.Totals{TotalTasks: 2, FailedTasks: 2}, "FAILED"}, {model.Totals{TotalTasks: 2, FailedTasks: 1}, "COMPLETED_WITH_ERRORS"}} {
		if got := complete.FinalStatus(c.totals); got != c.want {
			t.Errorf("FinalStatus(%+v) = %s, want %s", c.totals, got, c.want)
		}
	}
}

func TestCompletePublishesRunMetrics(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"CLOUDWATCH_NAMESPACE": "ArcTest"})
	runID := runOf(t, env, task{model.TaskCompleted, "0.5", 1}, task{model.TaskCompleted, "0.25", 0}, task{status: model.TaskFailedPermanent})
	out, err := handlers.NewComplete(env.Deps).Handle(context.Background(), model.CompleteInput{RunID: runID, Aggregation: &model.Totals{
		TotalTasks: 3, CompletedTasks: 2, FailedTasks: 1, TotalCostUSD: "0.75", Accuracy: 0.5,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if f := out.FinalMetrics; f.TotalTasks != 3 || f.TotalCostUSD != "0.75" || f.Accuracy != 0.5 || f.Score == nil || *f.Score != 1.0/3 {
		t.Errorf("final_metrics %+v", out.FinalMetrics)
	}
	if bad := env.CloudWatch.Malformed(); len(bad) > 0 {
		t.Fatalf("stand-in could not decode: %v", bad)
	}
	puts := completePuts(env)
	if len(puts) != 1 {
		t.Fatalf("%d PutMetricData requests, want 1", len(puts))
	}
	if puts[0].Namespace != "ArcTest" {
		t.Errorf("namespace %q", puts[0].Namespace)
	}
	got := map[string]float64{}
	for _, d := range puts[0].MetricData {
		switch dims := fmt.Sprint(d.Dimensions); d.MetricName {
		case "RunEnded":
			// The stage's run-end metrics ride in the same request.
			if dims != "[{Status COMPLETED_WITH_ERRORS}]" || d.Value != 1 {
				t.Errorf("RunEnded %v dimensions %s, want 1 with Status=COMPLETED_WITH_ERRORS", d.Value, dims)
			}
		case "TotalCostUSD":
			if dims == "[]" && d.Value != 0.75 {
				t.Errorf("the stage's TotalCostUSD %v, want 0.75", d.Value)
			}
			if dims != "[]" {
				got[d.MetricName] = d.Value
			}
		default:
			got[d.MetricName] = d.Value
			if dims != "[{ConfigName cfg-a}]" {
				t.Errorf("%s dimensions %s, want ConfigName=cfg-a", d.MetricName, dims)
			}
		}
	}
	want := map[string]float64{"RunCompleted": 1, "TasksCompleted": 2, "TasksFailed": 1, "Accuracy": 50, "TotalCostUSD": 0.75}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
	if math.Abs(got["Score"]-100.0/3) > 1e-9 {
		t.Errorf("Score = %v, want 33.3", got["Score"])
	}
	if _, ok := got["DurationSeconds"]; !ok {
		t.Error("DurationSeconds not published")
	}
}

// Called again for a finished run, complete answers the stored result: the
// same status, completion time and figures, and it publishes nothing twice.
func TestCompleteAgainAnswersTheStoredResult(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := runOf(t, env, task{model.TaskCompleted, "0.5", 1}, task{status: model.TaskFailedPermanent})
	h := handlers.NewComplete(env.Deps)
	in := model.CompleteInput{RunID: runID, Aggregation: &model.Totals{TotalTasks: 2, CompletedTasks: 1, FailedTasks: 1, TotalCostUSD: "0.5", Accuracy: 1}}
	first, err := h.Handle(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // a second call later would move completed_at
	again, err := h.Handle(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, again) {
		t.Errorf("second answer %+v\nwant the first %+v", again, first)
	}
	if n := len(completePuts(env)); n != 1 {
		t.Errorf("%d PutMetricData requests after two calls, want 1", n)
	}
}

// The aggregation complete is given is checked against the task records:
// one that disagrees is logged, and the records decide.
func TestCompleteLogsAnAggregationThatDisagrees(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := runOf(t, env, task{model.TaskCompleted, "0.5", 1}, task{status: model.TaskFailedPermanent})
	var logs bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, nil)))
	out, err := handlers.NewComplete(env.Deps).Handle(context.Background(), model.CompleteInput{RunID: runID,
		Aggregation: &model.Totals{TotalTasks: 2, CompletedTasks: 2, TotalCostUSD: "1", Accuracy: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != model.RunCompletedWithErrors || out.FinalMetrics.FailedTasks != 1 {
		t.Errorf("%+v: the records say one task failed", out)
	}
	if !strings.Contains(logs.String(), "disagrees with the task records") || !strings.Contains(logs.String(), runID) {
		t.Errorf("no log of the disagreement: %s", logs.String())
	}
}

// A run whose task records are missing cannot be completed from them: a
// loud, typed error (never retried), and the run stays as it was.
func TestCompleteRefusesARunWithMissingTaskRecords(t *testing.T) {
	env := testenv.Setup(t, nil)
	st := store.New(env.Deps.Clients.DynamoDB, env.Tables.Runs, env.Tables.Tasks)
	if _, err := st.CreateRun(context.Background(), store.Run{RunID: "run-hollow", ConfigName: "c", DataSource: "evaluation", CreatedAt: model.FormatTime(time.Now()), TotalTasks: 3}); err != nil {
		t.Fatal(err)
	}
	_, err := lambdaio.Raw(handlers.NewComplete(env.Deps).Handle)(context.Background(),
		[]byte(`{"run_id":"run-hollow","aggregation":{"total_tasks":3,"completed_tasks":3,"failed_tasks":0,"total_cost_usd":0,"accuracy":1}}`))
	var lerr messages.InvokeResponse_Error
	if !errors.As(err, &lerr) || lerr.Type != model.ErrInconsistent || !strings.Contains(lerr.Message, "0 task records") {
		t.Fatalf("error %v, want %s naming the missing records", err, model.ErrInconsistent)
	}
	if s := testenv.S(env.Run(t, "run-hollow"), "status"); s != model.RunRunning {
		t.Errorf("run status %s, want it left RUNNING", s)
	}
	if n := len(completePuts(env)); n != 0 {
		t.Errorf("%d metrics published", n)
	}
}

func TestCloudWatchFailureDoesNotFailTheRun(t *testing.T) {
	t.Run("service error", func(t *testing.T) {
		env := testenv.Setup(t, nil)
		env.CloudWatch.Fail = true
		completesDespiteMetrics(t, env)
	})
	t.Run("unreachable", func(t *testing.T) {
		env := testenv.Setup(t, nil)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + ln.Addr().String()
		ln.Close() // nothing listens there now
		t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH", dead)
		deps, err := handlers.Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		env.Deps = deps
		completesDespiteMetrics(t, env)
	})
}

func completesDespiteMetrics(t *testing.T, env *testenv.Env) {
	t.Helper()
	runID := newRun(t, env)
	start := time.Now()
	out, err := handlers.NewComplete(env.Deps).Handle(context.Background(), model.CompleteInput{RunID: runID, Aggregation: &model.Totals{TotalTasks: 3, CompletedTasks: 3, TotalCostUSD: "1"}})
	if err != nil {
		t.Fatalf("complete failed because of CloudWatch: %v", err)
	}
	if out.Status != "COMPLETED" || testenv.S(env.Run(t, runID), "status") != "COMPLETED" {
		t.Errorf("status %s / %s, want COMPLETED", out.Status, testenv.S(env.Run(t, runID), "status"))
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a CloudWatch failure held complete for %v", d)
	}
}

func TestCompleteUnknownRunAndBadInput(t *testing.T) {
	env := testenv.Setup(t, nil)
	invoke := lambdaio.Raw(handlers.NewComplete(env.Deps).Handle)
	var lerr messages.InvokeResponse_Error
	_, err := invoke(context.Background(), []byte(`{"run_id":"run-ghost","aggregation":{"total_tasks":1,"completed_tasks":1,"failed_tasks":0,"total_cost_usd":0,"accuracy":1}}`))
	if !errors.As(err, &lerr) || lerr.Type != "RunNotFoundError" {
		t.Errorf("unknown run: %v, want RunNotFoundError", err)
	}
	if env.Run(t, "run-ghost") != nil {
		t.Error("complete created a record for an unknown run")
	}
	for _, c := range []struct{ event, field string }{
		{`{"aggregation":{}}`, "run_id"},
		{`{"run_id":"r"}`, "aggregation"},
		{`{"run_id":"r","aggregation":"x"}`, "aggregation"},
		{`{"run_id":"r","aggregation":{"total_tasks":-1}}`, "aggregation.total_tasks"},
		{`{"run_id":"r","aggregation":{"total_tasks":1,"failed_tasks":2}}`, "aggregation.total_tasks"},
		{`{"run_id":"r","aggregation":{"total_tasks":1,"accuracy":2}}`, "aggregation.accuracy"},
		{`{"run_id":"r","aggregation":{"total_tasks":"1"}}`, "aggregation.total_tasks"},
	} {
		_, err := invoke(context.Background(), []byte(c.event))
		if !errors.As(err, &lerr) || lerr.Type != "InvalidInputError" || !strings.Contains(lerr.Message, c.field+":") {
			t.Errorf("%s: %v, want InvalidInputError naming %s", c.event, err, c.field)
		}
	}
}

// completePuts are the PutMetricData requests complete made (not
// initialize's RunStarted, made when the test's run was created).
func completePuts(env *testenv.Env) []emulators.PutMetricData {
	var out []emulators.PutMetricData
	for _, p := range env.CloudWatch.Puts() {
		if len(p.MetricData) == 1 && p.MetricData[0].MetricName == "RunStarted" {
			continue
		}
		out = append(out, p)
	}
	return out
}
