package localrun_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/internal/emulators"
	"arcbench/internal/localrun"
	"arcbench/internal/testenv"
	"arcbench/shared/arcdata"
	"arcbench/shared/clients"
	"arcbench/shared/model"
	"arcbench/shared/money"
	"arcbench/shared/worker"
)

var (
	binary   string // arcbench, whose `worker` subcommand is the built-in worker
	assembly string // the app synthesized once for the stage "local"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "arcbench-localrun")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		var err error
		if binary, err = testenv.BuildCLI(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		root, err := emulators.Root()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		assembly = filepath.Join(dir, "cdk.out")
		if err := localrun.Synthesize(context.Background(), root, "local", assembly, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// run performs a local run with the emulators kept up for inspection; it
// must pass the IAM check.
func run(t *testing.T, opts localrun.Options) (*localrun.Result, *dynamodb.Client) {
	t.Helper()
	res, db := runDenied(t, opts)
	if res.IAM == nil || res.IAM.Authorized == 0 {
		t.Errorf("the run was not checked against the template's IAM: %+v", res.IAM)
	} else if len(res.IAM.Denials) > 0 {
		t.Errorf("the template's IAM refused %d requests, first %s", len(res.IAM.Denials), res.IAM.Denials[0])
	}
	return res, db
}

// runDenied is run for a run that may be refused requests.
func runDenied(t *testing.T, opts localrun.Options) (*localrun.Result, *dynamodb.Client) {
	t.Helper()
	if opts.Assembly == "" {
		opts.Assembly = assembly
	}
	opts.Self, opts.Keep, opts.Dir = binary, true, t.TempDir()
	if opts.ConfigName == "" {
		opts.ConfigName = "e2e"
	}
	if opts.DataSource == "" {
		opts.DataSource = "evaluation"
	}
	res, err := localrun.Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("local run: %v", err)
	}
	t.Cleanup(res.Session.Close)
	if len(res.Violations) > 0 {
		t.Errorf("quota violations: %v", res.Violations)
	}
	return res, clients.NewLocal(res.Endpoint).DynamoDB
}

func table(res *localrun.Result, suffix string) string {
	for _, name := range res.Tables {
		if strings.HasSuffix(name, suffix) {
			return name
		}
	}
	return ""
}

type taskRecord struct {
	TaskID     string `dynamodbav:"task_id"`
	Status     string `dynamodbav:"status"`
	RetryCount int    `dynamodbav:"retry_count"`
	CostUSD    string `dynamodbav:"cost_usd"`
	IsCorrect  bool   `dynamodbav:"is_correct"`
}

func tasksOf(t *testing.T, db *dynamodb.Client, res *localrun.Result, runID string) map[string]taskRecord {
	t.Helper()
	out := map[string]taskRecord{}
	p := dynamodb.NewQueryPaginator(db, &dynamodb.QueryInput{
		TableName:                 aws.String(table(res, "-tasks")),
		KeyConditionExpression:    aws.String("run_id = :r"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": &types.AttributeValueMemberS{Value: runID}},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			var rec taskRecord
			if err := attributevalue.UnmarshalMap(it, &rec); err != nil {
				t.Fatal(err)
			}
			if n, ok := it["cost_usd"].(*types.AttributeValueMemberN); ok {
				rec.CostUSD = n.Value
			}
			out[rec.TaskID] = rec
		}
	}
	return out
}

func runRecord(t *testing.T, db *dynamodb.Client, res *localrun.Result, runID string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table(res, "-runs")), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"run_id": &types.AttributeValueMemberS{Value: runID}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func str(item map[string]types.AttributeValue, name string) string {
	switch v := item[name].(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	}
	return ""
}

// The expected outcome of every task follows from the worker's failure
// schedule: attempt a of a task fails when FailsAttempt says so, each failure
// is one retry_count, and the MAX_RETRIES-th failure is permanent.
func TestRetriesAndPermanentFailuresFollowTheFailureSchedule(t *testing.T) {
	const (
		n          = 30
		rate       = 0.3
		maxRetries = 2
		seed       = 7
	)
	ids := arcdata.IDs(n, seed)
	type outcome struct {
		status   string
		failures int
	}
	want := map[string]outcome{}
	kinds := map[string]int{}
	attempts, failures := 0, 0
	for _, id := range ids {
		f := 0
		for f < maxRetries && worker.FailsAttempt(seed, id, f, rate) {
			f++
		}
		o := outcome{status: model.TaskCompleted, failures: f}
		if f == maxRetries {
			o.status = model.TaskFailedPermanent
		}
		want[id] = o
		kinds[fmt.Sprintf("%s/%d", o.status, f)]++
		failures += f
		attempts += f
		if o.status == model.TaskCompleted {
			attempts++
		}
	}
	if kinds["COMPLETED/0"] == 0 || kinds["COMPLETED/1"] == 0 || kinds["FAILED_PERMANENT/2"] == 0 {
		t.Fatalf("seed %d does not exercise every outcome: %v", seed, kinds)
	}

	res, db := run(t, localrun.Options{TaskIDs: ids, FailRate: rate, MaxRetries: maxRetries, Seed: seed})
	if res.Status != "SUCCEEDED" {
		t.Fatalf("execution %s: %s %s", res.Status, res.Error, res.Cause)
	}
	got := tasksOf(t, db, res, res.RunID)
	var cost money.Sum
	completed, correct, permanent := 0, 0, 0
	for _, id := range ids {
		w, g := want[id], got[id]
		if g.Status != w.status || g.RetryCount != w.failures {
			t.Errorf("task %s: %s with retry_count %d, want %s with %d", id, g.Status, g.RetryCount, w.status, w.failures)
		}
		if g.Status == model.TaskCompleted {
			completed++
			task := arcdata.Generate(id, seed)
			preds, _ := arcdata.Solve(task)
			if g.IsCorrect != arcdata.Correct(task, preds) {
				t.Errorf("task %s: is_correct %v, the baseline's answer says otherwise", id, g.IsCorrect)
			}
			if g.IsCorrect {
				correct++
			}
			if err := cost.Add(g.CostUSD); err != nil {
				t.Errorf("task %s cost: %v", id, err)
			}
		} else {
			permanent++
		}
	}
	if res.Calls["RunTask"] != attempts || res.Calls["CheckTask"] != attempts || res.Calls["HandleError"] != failures {
		t.Errorf("RunTask ran %d times, CheckTask %d and HandleError %d; the schedule says %d, %d and %d",
			res.Calls["RunTask"], res.Calls["CheckTask"], res.Calls["HandleError"], attempts, attempts, failures)
	}

	rec := runRecord(t, db, res, res.RunID)
	for attr, w := range map[string]string{
		"status": model.RunCompletedWithErrors, "completed_tasks": fmt.Sprint(completed),
		"failed_tasks": fmt.Sprint(permanent), "total_cost_usd": cost.String(), "total_tasks": fmt.Sprint(n),
	} {
		if g := str(rec, attr); g != w {
			t.Errorf("run %s = %s, want %s", attr, g, w)
		}
	}

	raw, err := os.ReadFile(res.AggregatedPath)
	if err != nil {
		t.Fatalf("aggregated.json: %v", err)
	}
	var doc model.Aggregated
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Metrics
	if m.TotalTasks != n || m.CompletedTasks != completed || m.FailedTasks != permanent || m.CorrectTasks != correct || m.TotalCostUSD != cost.Number() {
		t.Errorf("aggregated metrics %+v; want %d tasks, %d completed, %d failed, %d correct, cost %s", m, n, completed, permanent, correct, cost.String())
	}
	if want := float64(correct) / float64(completed); m.Accuracy != want {
		t.Errorf("accuracy %v, want %v", m.Accuracy, want)
	}

	var final model.CompleteOutput
	if err := json.Unmarshal(res.Output, &final); err != nil || final.Status != model.RunCompletedWithErrors {
		t.Errorf("Complete's output %s", res.Output)
	}
	if len(res.Figures.Children) != n {
		t.Errorf("%d child executions, want one per task (%d)", len(res.Figures.Children), n)
	}
}

func TestEveryAttemptFailingEndsTheRunFailed(t *testing.T) {
	ids := arcdata.IDs(5, 3)
	res, db := run(t, localrun.Options{TaskIDs: ids, FailRate: 1, MaxRetries: 2, Seed: 3})
	if res.Status != "SUCCEEDED" {
		t.Fatalf("execution %s: %s %s", res.Status, res.Error, res.Cause)
	}
	if s := str(runRecord(t, db, res, res.RunID), "status"); s != model.RunFailed || res.RunStatus != model.RunFailed {
		t.Errorf("run status %s (result says %s), want FAILED", s, res.RunStatus)
	}
	for id, task := range tasksOf(t, db, res, res.RunID) {
		if task.Status != model.TaskFailedPermanent || task.RetryCount != 2 {
			t.Errorf("task %s: %s retry_count %d", id, task.Status, task.RetryCount)
		}
	}
}

// editedAssembly copies the synthesized assembly with its template edited
// by edit (which returns false when it found nothing to change).
func editedAssembly(t *testing.T, edit func(template []byte) ([]byte, bool)) string {
	t.Helper()
	return editedAssemblyOf(t, assembly, edit)
}

// editedAssemblyOf is editedAssembly of another assembly (one edited before).
func editedAssemblyOf(t *testing.T, from string, edit func(template []byte) ([]byte, bool)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cdk.out")
	if err := os.CopyFS(dir, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "arc-benchmark-local.template.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited, ok := edit(raw)
	if !ok {
		t.Fatal("the template has nothing the edit changes")
	}
	if err := os.WriteFile(path, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// editedResources is editedAssembly over the template's resources, decoded.
func editedResources(t *testing.T, edit func(resources map[string]any) bool) string {
	t.Helper()
	return editedAssembly(t, func(raw []byte) ([]byte, bool) {
		var tmpl map[string]any
		if err := json.Unmarshal(raw, &tmpl); err != nil {
			t.Fatal(err)
		}
		ok := edit(tmpl["Resources"].(map[string]any))
		out, _ := json.Marshal(tmpl)
		return out, ok
	})
}

// A run whose Aggregate fails (here its bucket is misconfigured in the
// template) must not stay RUNNING.
func TestFailedAggregateLeavesTheRunFailed(t *testing.T) {
	broken := editedResources(t, func(resources map[string]any) bool {
		for _, r := range resources {
			props, _ := r.(map[string]any)["Properties"].(map[string]any)
			if name, _ := props["FunctionName"].(string); strings.HasSuffix(name, "-aggregate") {
				props["Environment"].(map[string]any)["Variables"].(map[string]any)["S3_BUCKET"] = "no-such-bucket"
				return true
			}
		}
		return false
	})
	res, db := runDenied(t, localrun.Options{Assembly: broken, TaskIDs: arcdata.IDs(3, 1), Seed: 1})
	if res.Status != "FAILED" || res.Error != "ServiceError" {
		t.Fatalf("execution %s with %q, want FAILED with the aggregate's ServiceError", res.Status, res.Error)
	}
	// Its role may write to the stage's bucket only, as on AWS.
	if d := res.IAM.Denials; len(d) == 0 || d[0].Action != "s3:PutObject" || !strings.Contains(d[0].Resource, "no-such-bucket") {
		t.Errorf("denials %v, want aggregate's PutObject to no-such-bucket", d)
	}
	if res.Calls["Aggregate"] < 2 {
		t.Errorf("Aggregate ran %d times: a ServiceError is worth retrying", res.Calls["Aggregate"])
	}
	runs, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table(res, "-runs"))})
	if err != nil || len(runs.Items) != 1 {
		t.Fatalf("runs: %v, %v", runs, err)
	}
	if s := str(runs.Items[0], "status"); s != model.RunFailed {
		t.Errorf("run status %s, want FAILED", s)
	}
}

// Bad input reaches Initialize only from outside the CLI (whose checks are
// the same): an execution started with it fails at once, without a retry.
func TestInvalidInputFailsAtInitializeWithoutRetry(t *testing.T) {
	s, err := localrun.Open(context.Background(), localrun.Options{Assembly: assembly, Self: binary, Dir: t.TempDir(), TaskIDs: arcdata.IDs(2, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Execute(context.Background(), map[string]any{"config_name": "not a valid name", "task_ids": []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "FAILED" || res.Error != "InvalidInputError" {
		t.Fatalf("execution %s with %q, want FAILED with InvalidInputError", res.Status, res.Error)
	}
	if n := res.Calls["Initialize"]; n != 1 {
		t.Errorf("Initialize ran %d times, want once (bad input is never retried)", n)
	}
	if !strings.Contains(res.Cause, "config_name") {
		t.Errorf("cause %q does not name config_name", res.Cause)
	}
	db := clients.NewLocal(res.Endpoint).DynamoDB
	runs, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table(res, "-runs"))})
	if err != nil || len(runs.Items) != 0 {
		t.Errorf("bad input left %d runs (%v)", len(runs.Items), err)
	}
}

// Another worker gets exactly the job's container environment (the job
// definition's, the state's per-task overrides), one AWS_ENDPOINT_URL, the
// caller's provider keys and endpoints, and --worker-env.
func TestWorkerCmdGetsTheJobEnvironment(t *testing.T) {
	envDir := t.TempDir()
	cmd := fmt.Sprintf(`env > %q/"$TASK_ID".env && exec %q worker`, envDir, binary)
	ids := arcdata.IDs(2, 5)
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1") // a model server on loopback
	t.Setenv("OPENAI_API_KEY", "sk-local")
	res, _ := run(t, localrun.Options{TaskIDs: ids, WorkerCmd: cmd, Seed: 5, ConfigName: "other-worker", DataSource: "training",
		WorkerEnv: map[string]string{"REQUEST_TIMEOUT": "30"}})
	if res.Status != "SUCCEEDED" {
		t.Fatalf("execution %s: %s %s", res.Status, res.Error, res.Cause)
	}
	for _, id := range ids {
		raw, err := os.ReadFile(filepath.Join(envDir, id+".env"))
		if err != nil {
			t.Fatalf("worker of %s did not run: %v", id, err)
		}
		env := map[string]string{}
		for _, line := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[k] = v
			}
		}
		for k, want := range map[string]string{
			"RUN_ID": res.RunID, "TASK_ID": id, "CONFIG_NAME": "other-worker", "DATA_SOURCE": "training",
			"S3_BUCKET": res.Bucket, "DYNAMODB_RUNS_TABLE": table(res, "-runs"), "DYNAMODB_TASKS_TABLE": table(res, "-tasks"),
			"DYNAMODB_RATE_LIMIT_TABLE": table(res, "-rate-limits"), "AWS_ENDPOINT_URL": res.Endpoint, "AWS_REGION": "us-east-1",
			"S3_TASKS_PREFIX": "tasks/training", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "sk-local",
			"REQUEST_TIMEOUT": "30",
		} {
			if env[k] != want {
				t.Errorf("worker of %s: %s=%q, want %q", id, k, env[k], want)
			}
		}
		if env["MAX_RETRIES"] == "" {
			t.Errorf("worker of %s: no MAX_RETRIES from the job definition", id)
		}
	}
}

// A run of 2,000 tasks, with failures and retries, holds every Step Functions
// quota: the run's own execution stays small whatever the run's size (the
// task list goes through the bucket, each task is a child execution), and no
// child comes near the history quota.
func TestTwoThousandTasksHoldEveryQuota(t *testing.T) {
	const n = 2000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("scale-task-%06d", i) // long enough that the list is uploaded, not inlined
	}
	res, db := run(t, localrun.Options{TaskIDs: ids, FailRate: 0.1, MaxRetries: 3, Seed: 11, Parallel: 16})
	if res.Status != "SUCCEEDED" {
		t.Fatalf("execution %s: %s %s", res.Status, res.Error, res.Cause)
	}
	if len(res.Violations) > 0 {
		t.Fatalf("quotas exceeded: %v", res.Violations)
	}
	root := res.Figures.Root
	// Independent of the run's size: a few states, a small payload.
	if root.LargestPayload > 4096 || root.HistoryEvents > 100 {
		t.Errorf("the run's execution: largest payload %d bytes at %s, %d history events; want a few KB and under 100 whatever the run's size",
			root.LargestPayload, root.LargestAt, root.HistoryEvents)
	}
	if len(res.Figures.Children) != n {
		t.Fatalf("%d child executions, want %d", len(res.Figures.Children), n)
	}
	worstHistory, worstPayload := res.Figures.Worst()
	if worstHistory.HistoryEvents > 100 || worstPayload.LargestPayload > 4096 {
		t.Errorf("worst child: %d history events (%s), %d bytes (%s)", worstHistory.HistoryEvents, worstHistory.ARN, worstPayload.LargestPayload, worstPayload.LargestAt)
	}
	rec := runRecord(t, db, res, res.RunID)
	if str(rec, "total_tasks") != fmt.Sprint(n) || str(rec, "status") == model.RunRunning {
		t.Errorf("run record: total_tasks %s, status %s", str(rec, "total_tasks"), str(rec, "status"))
	}
	if res.Calls["HandleError"] == 0 {
		t.Error("no attempt failed: the run was meant to exercise retries")
	}
	t.Logf("%d tasks: run execution %d events, largest payload %d bytes; worst child %d events; %d attempts, %d failures; %.1fs",
		n, root.HistoryEvents, root.LargestPayload, worstHistory.HistoryEvents, res.Calls["RunTask"], res.Calls["HandleError"], res.Wall.Seconds())
}

// Ctrl-C stops everything the run started: the workers (and what they
// started), the interpreter and the emulators.
func TestInterruptStopsEverything(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	// Each worker starts a child of its own and waits: the group must go.
	worker := fmt.Sprintf(`sleep 60 & echo $! >> %q; echo $$ >> %q; wait`, pids, pids)
	cmd := exec.Command(binary, "local", "run", "--assembly", assembly, "--count", "2", "--worker-cmd", worker, "--dir", dir)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	var started []int
	for len(started) < 4 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		raw, _ := os.ReadFile(pids)
		started = nil
		for _, f := range strings.Fields(string(raw)) {
			var pid int
			fmt.Sscan(f, &pid)
			started = append(started, pid)
		}
	}
	if len(started) < 4 {
		_ = cmd.Process.Kill()
		t.Fatalf("the workers did not start: %s", stderr.String())
	}
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("an interrupted run exited 0")
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the run did not stop within 20 s of Ctrl-C")
	}
	time.Sleep(200 * time.Millisecond)
	for _, pid := range started {
		if alive(pid) {
			t.Errorf("process %d (a worker or its child) survived the interrupt", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// alive tells whether a process runs: not gone, and not a zombie waiting to
// be reaped (this machine's init may not reap orphans).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// Retries work for any MAX_RETRIES: a task that fails four times and then
// passes, with MAX_RETRIES 5, completes after five attempts (a table of
// three waits indexed by the retry count would fail the child on AWS).
func TestRetriesWorkForAnyMaxRetries(t *testing.T) {
	const id = "bb000001"
	res, db := run(t, localrun.Options{TaskIDs: []string{id, "bb000002"}, MaxRetries: 5, Seed: 2, Faults: id + ":1=fail-after-claim," + id + ":2=die-after-claim," + id + ":3=exit-0-without-work," + id + ":4=fail-after-claim"})
	if res.Status != "SUCCEEDED" || res.RunStatus != model.RunCompleted {
		t.Fatalf("execution %s, run %s: %s %s", res.Status, res.RunStatus, res.Error, res.Cause)
	}
	if g := tasksOf(t, db, res, res.RunID)[id]; g.Status != model.TaskCompleted || g.RetryCount != 4 {
		t.Errorf("task %s: %s with retry_count %d, want COMPLETED with 4", id, g.Status, g.RetryCount)
	}
}

// withDefinitionEdit copies the assembly with the run's state machine
// definition text edited.
func withDefinitionEdit(t *testing.T, old, new string) string {
	t.Helper()
	return editedAssembly(t, func(raw []byte) ([]byte, bool) {
		edited := strings.Replace(string(raw), old, new, 1)
		return []byte(edited), edited != string(raw)
	})
}

// Where AWS fails a state the local interpreter would let pass, the local run
// fails too: a Wait whose SecondsPath is not a whole number, and any
// States.ArrayGetItem (the interpreter answers null for an index out of range).
func TestTheLocalRunFailsWhereAWSWould(t *testing.T) {
	waitOnStatus := withDefinitionEdit(t, `\"wait_seconds.$\":\"$.handled.wait_seconds\"`, `\"wait_seconds.$\":\"$.handled.status\"`)
	res, _ := run(t, localrun.Options{Assembly: waitOnStatus, TaskIDs: []string{"cc000009"}, MaxRetries: 2, Faults: "*:1=fail-after-claim"})
	if res.Status != "FAILED" || !strings.Contains(res.Cause, "SecondsPath") {
		t.Errorf("a Wait on a string: execution %s (%s: %s), want FAILED naming SecondsPath", res.Status, res.Error, res.Cause)
	}

	indexed := withDefinitionEdit(t, `\"wait_seconds.$\":\"$.handled.wait_seconds\"`, `\"wait_seconds.$\":\"States.ArrayGetItem(States.Array(1, 2), $.handled.retry_count)\"`)
	res, _ = runDenied(t, localrun.Options{Assembly: indexed, TaskIDs: []string{"cc000009"}})
	if res.Status != "FAILED" || !strings.Contains(res.Cause, "States.ArrayGetItem") {
		t.Errorf("States.ArrayGetItem: execution %s (%s: %s), want FAILED naming it", res.Status, res.Error, res.Cause)
	}
}

// descendants lists a process's descendants (from /proc's children lists).
func descendants(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		raw, _ := os.ReadFile(f)
		for _, c := range strings.Fields(string(raw)) {
			var child int
			if _, err := fmt.Sscan(c, &child); err == nil {
				out = append(out, child)
				out = append(out, descendants(child)...)
			}
		}
	}
	return out
}

// kill -9 of `arcbench local run`, mid-run and with --keep: nothing it
// started outlives it (workers and what they started, the interpreter,
// dynalite, the watchdog itself), and it leaves no scratch files in the
// repository.
func TestKillNineLeavesNothingBehind(t *testing.T) {
	root, err := emulators.Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		// ready says the run is where the kill should find it.
		ready func(stderr string, pids []int) bool
	}{
		{"mid-run", []string{"--count", "2"}, func(_ string, pids []int) bool { return len(pids) >= 4 }},
		{"with --keep", []string{"--count", "1", "--keep"}, func(stderr string, _ []int) bool { return strings.Contains(stderr, "stays up until Ctrl-C") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			pids := filepath.Join(dir, "pids")
			worker := fmt.Sprintf(`sleep 60 & echo $! >> %q; echo $$ >> %q; wait`, pids, pids)
			if c.name == "with --keep" {
				worker = fmt.Sprintf(`sleep 60 & echo $! >> %q; echo $$ >> %q; exec %q worker`, pids, pids, binary) // the job ends; its child lives on
			}
			cmd := exec.Command(binary, append([]string{"local", "run", "--assembly", assembly, "--worker-cmd", worker, "--dir", dir}, c.args...)...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for !c.ready(out.String(), pidsIn(pids)) && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if !c.ready(out.String(), pidsIn(pids)) {
				_ = cmd.Process.Kill()
				t.Fatalf("the run did not get there: %s", out.String())
			}
			if c.name == "with --keep" {
				keptStageWorksWithBotocore(t, out.String())
			}
			started := append(descendants(cmd.Process.Pid), pidsIn(pids)...)
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			deadline = time.Now().Add(10 * time.Second)
			var survivors []int
			for {
				survivors = survivors[:0]
				for _, pid := range started {
					if alive(pid) {
						survivors = append(survivors, pid)
					}
				}
				if len(survivors) == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			for _, pid := range survivors {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Errorf("process %d (%s) outlived kill -9 of the run", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			if scratch, _ := filepath.Glob(filepath.Join(root, "node_modules", ".arcbench-bridge-*")); len(scratch) > 0 {
				t.Errorf("scratch files in the repository: %v", scratch)
			}
		})
	}
}

// keptStageWorksWithBotocore runs, with exactly the environment `local run
// --keep` prints to export, what its printed `aws dynamodb scan` runs: a
// DynamoDB call through botocore, the library of the AWS CLI v1 (which
// reads AWS_DEFAULT_REGION, not AWS_REGION).
func keptStageWorksWithBotocore(t *testing.T, stderr string) {
	t.Helper()
	if exec.Command("python3", "-c", "import boto3").Run() != nil {
		t.Skip("python3 with boto3 is not installed: cannot check the exports with botocore")
	}
	_, line, ok := strings.Cut(stderr, "  export ")
	if !ok {
		t.Fatalf("no exports printed: %s", stderr)
	}
	line, _, _ = strings.Cut(line, "\n")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull}
	env = append(env, strings.Fields(line)...)
	cmd := exec.Command("python3", "-c", "import boto3; print(len(boto3.client('dynamodb').list_tables()['TableNames']))")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("botocore with the printed exports (%s): %v\n%s", line, err, out)
	}
}
