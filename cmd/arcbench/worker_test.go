package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

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
		"ARCBENCH_FAIL_RATE": "", "ARCBENCH_FAIL_SEED": "", "ARCBENCH_FAULTS": "",
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
