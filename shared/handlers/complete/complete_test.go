package complete_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
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

func TestFinalStatusFollowsTheTotals(t *testing.T) {
	cases := []struct {
		name                     string
		total, completed, failed int
		want                     string
	}{
		{"all completed", 3, 3, 0, "COMPLETED"},
		{"some failed", 3, 2, 1, "COMPLETED_WITH_ERRORS"},
		{"every task failed", 3, 0, 3, "FAILED"},
		{"no tasks", 0, 0, 0, "COMPLETED"},
	}
	env := testenv.Setup(t, nil)
	h := handlers.NewComplete(env.Deps)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runID := newRun(t, env)
			out, err := h.Handle(context.Background(), model.CompleteInput{RunID: runID, Aggregation: &model.Totals{
				TotalTasks: c.total, CompletedTasks: c.completed, FailedTasks: c.failed, TotalCostUSD: "1.25", Accuracy: 0.5,
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
}

func TestCompletePublishesRunMetrics(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"CLOUDWATCH_NAMESPACE": "ArcTest"})
	runID := newRun(t, env)
	out, err := handlers.NewComplete(env.Deps).Handle(context.Background(), model.CompleteInput{RunID: runID, Aggregation: &model.Totals{
		TotalTasks: 3, CompletedTasks: 2, FailedTasks: 1, TotalCostUSD: "0.75", Accuracy: 0.5,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if out.FinalMetrics.TotalTasks != 3 || out.FinalMetrics.TotalCostUSD != "0.75" || out.FinalMetrics.Accuracy != 0.5 {
		t.Errorf("final_metrics %+v", out.FinalMetrics)
	}
	if bad := env.CloudWatch.Malformed(); len(bad) > 0 {
		t.Fatalf("stand-in could not decode: %v", bad)
	}
	puts := env.CloudWatch.Puts()
	if len(puts) != 1 {
		t.Fatalf("%d PutMetricData requests, want 1", len(puts))
	}
	if puts[0].Namespace != "ArcTest" {
		t.Errorf("namespace %q", puts[0].Namespace)
	}
	got := map[string]float64{}
	for _, d := range puts[0].MetricData {
		got[d.MetricName] = d.Value
		if len(d.Dimensions) != 1 || d.Dimensions[0].Name != "ConfigName" || d.Dimensions[0].Value != "cfg-a" {
			t.Errorf("%s dimensions %+v, want ConfigName=cfg-a", d.MetricName, d.Dimensions)
		}
	}
	want := map[string]float64{"RunCompleted": 1, "TasksCompleted": 2, "TasksFailed": 1, "Accuracy": 50, "TotalCostUSD": 0.75}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
	if _, ok := got["DurationSeconds"]; !ok {
		t.Error("DurationSeconds not published")
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
