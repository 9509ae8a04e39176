package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/internal/testenv"
	"arcbench/shared/arcdata"
	"arcbench/shared/handlers"
	"arcbench/shared/model"
)

// `arcbench worker` is the baseline worker as a process: configured from the
// environment the Batch job gives it, answering with its exit code.
func TestWorkerCommand(t *testing.T) {
	env := testenv.Setup(t, nil)
	const id = "0b148d64"
	run, err := handlers.NewInitialize(env.Deps).Handle(context.Background(),
		model.InitializeInput{ConfigName: "baseline", TaskIDs: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(arcdata.Generate(id, 1))
	if _, err := testenv.DirectS3(t).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String(model.TaskDataKey(run.DataSource, id)), Body: bytes.NewReader(data),
	}); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"RUN_ID": run.RunID, "TASK_ID": id, "CONFIG_NAME": "baseline", "S3_TASKS_PREFIX": model.TaskDataPrefix(run.DataSource),
		"ARCBENCH_FAIL_RATE": "", "ARCBENCH_FAIL_SEED": "", "ARCBENCH_FAULTS": "", "ARCBENCH_WORKER_VERSION": "",
	} {
		t.Setenv(k, v)
	}

	out, stderr, code := arcbench(t, "", "worker")
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, out, stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("stderr line is not JSON: %q", line)
		}
	}
	if testenv.S(env.Task(t, run.RunID, id), model.AttrStatus) != model.TaskCompleted {
		t.Errorf("task not completed: %v", env.Task(t, run.RunID, id))
	}
	if !strings.Contains(stderr, `"run_id":"`+run.RunID+`","task_id":"`+id+`"`) {
		t.Errorf("stderr lacks a JSON log line with run_id and task_id: %s", stderr)
	}
	// Run again: the task is done, so the worker leaves it and exits 0.
	if _, stderr, code := arcbench(t, "", "worker"); code != 0 || !strings.Contains(stderr, "already claimed") {
		t.Errorf("second run: exit %d, stderr %s", code, stderr)
	}
	// A fault-injected attempt exits 1 (retryable) ...
	t.Setenv("ARCBENCH_FAIL_RATE", "1")
	env.PutTask(t, map[string]any{model.AttrRunID: run.RunID, model.AttrTaskID: id, model.AttrStatus: model.TaskFailed, model.AttrRetryCount: 1})
	if _, stderr, code := arcbench(t, "", "worker"); code != 1 || !strings.Contains(stderr, "injected failure") {
		t.Errorf("injected failure: exit %d, stderr %s", code, stderr)
	}
	// ... and a configuration error exits 2, naming the variable.
	t.Setenv("TASK_ID", "")
	if _, stderr, code := arcbench(t, "", "worker"); code != 2 || !strings.Contains(stderr, "TASK_ID") {
		t.Errorf("missing TASK_ID: exit %d, stderr %s", code, stderr)
	}
}

func TestWorkerCommandIsHidden(t *testing.T) {
	out, _, _ := arcbench(t, "", "--help")
	if strings.Contains(out, "worker") {
		t.Errorf("`arcbench --help` lists the worker:\n%s", out)
	}
}

// The worker process takes SIGTERM as the benchmark's worker does (Batch's
// at the attempt timeout): the hung model call is given up, what was
// answered is saved, the task COMPLETED, exit 0. SIGINT interrupts: exit
// 130, nothing marked.
func TestWorkerSignals(t *testing.T) {
	env := testenv.Setup(t, nil)
	ids := []string{"516e0001", "516e0002"}
	run, err := handlers.NewInitialize(env.Deps).Handle(context.Background(),
		model.InitializeInput{ConfigName: "baseline", TaskIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		data, _ := json.Marshal(arcdata.Generate(id, 1))
		if _, err := testenv.DirectS3(t).PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(env.Bucket), Key: aws.String(model.TaskDataKey(run.DataSource, id)), Body: bytes.NewReader(data),
		}); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range map[string]string{
		"RUN_ID": run.RunID, "CONFIG_NAME": "baseline", "S3_TASKS_PREFIX": model.TaskDataPrefix(run.DataSource),
		"ARCBENCH_FAIL_RATE": "", "ARCBENCH_FAIL_SEED": "", "ARCBENCH_WORKER_VERSION": "", "ARCBENCH_FAULTS": "*:1=hang",
	} {
		t.Setenv(k, v)
	}
	for _, c := range []struct {
		id     string
		signal syscall.Signal
		code   int
		status string
		logged string
	}{
		{ids[0], syscall.SIGTERM, 0, model.TaskCompleted, `"msg":"stopped by SIGTERM: partial submission saved, task completed"`},
		{ids[1], syscall.SIGINT, 130, model.TaskInProgress, `"msg":"interrupted: nothing marked"`},
	} {
		t.Setenv("TASK_ID", c.id)
		env.Proxy.ResetCounts()
		cmd := exec.Command(binary, "worker")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The claim and two rate-limit tokens: the worker is in its hung
		// second call (this one-pair task's attempt_2).
		deadline := time.Now().Add(20 * time.Second)
		for env.Proxy.Requests("UpdateItem") < 3 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		if err := cmd.Process.Signal(c.signal); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != c.code || !strings.Contains(stderr.String(), c.logged) {
			t.Errorf("%s: exit %d, want %d and %s logged: %s", c.signal, code, c.code, c.logged, stderr.String())
		}
		item := env.Task(t, run.RunID, c.id)
		if s := testenv.S(item, model.AttrStatus); s != c.status {
			t.Errorf("%s: task %s, want %s", c.signal, s, c.status)
		}
		if c.signal == syscall.SIGTERM && !strings.Contains(stderr.String(), `"pairs":1,"pairs_answered":1`) {
			t.Errorf("SIGTERM: the answer given before the hung call was not saved: %s", stderr.String())
		}
	}
}

// --fault, --fail-rate and --worker-version drive the built-in worker: with
// another worker they are refused, in one line, before anything starts.
func TestBuiltInWorkerFlagsWithAnotherWorker(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--fault", "*:1=hang"}, "--fault applies to the built-in worker only, not to --worker-cmd"},
		{[]string{"--fail-rate", "0.5", "--worker-version", "pr78"}, "--fail-rate and --worker-version apply to the built-in worker only, not to --worker-cmd"},
		{[]string{"--fault", "*:1=hang", "--fail-rate", "0", "--worker-version", "silent"}, "--fault, --fail-rate and --worker-version apply to the built-in worker only"},
	} {
		out, stderr, code := arcbench(t, "", append([]string{"local", "run", "--worker-cmd", "python -m arc_agi_benchmarking.batch_worker"}, c.args...)...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || out != "" || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q: want exit 2 and one line saying %q", c.args, code, out, stderr, c.want)
		}
	}
	// Every numeric flag is checked before anything starts: one line, exit 2.
	for _, args := range [][]string{{"--worker-version", "pr79"}, {"--job-timeout", "-1s"}, {"--parallel", "0"}, {"--max-retries", "-1"},
		{"--count", "0"}, {"--fail-rate", "1.5"}, {"--fail-rate", "-0.1"}} {
		_, stderr, code := arcbench(t, "", append([]string{"local", "run"}, args...)...)
		if lines := strings.Split(strings.TrimSpace(stderr), "\n"); code != 2 || len(lines) != 1 || !strings.Contains(stderr, args[0]) {
			t.Errorf("%v: exit %d, stderr %q: want exit 2 and one line naming the flag", args, code, stderr)
		}
	}
}
