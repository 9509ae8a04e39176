package checktask_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/internal/testenv"
	"arcbench/shared/arcdata"
	"arcbench/shared/handlers"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const dataSource = "evaluation"

// twoPairs is a task whose two test pairs expect [[1]] and [[2]].
var twoPairs = arcdata.Task{
	Train: []arcdata.Pair{{Input: arcdata.Grid{{0}}, Output: arcdata.Grid{{0}}}},
	Test:  []arcdata.Pair{{Input: arcdata.Grid{{0}}, Output: arcdata.Grid{{1}}}, {Input: arcdata.Grid{{0}}, Output: arcdata.Grid{{2}}}},
}

func put(t *testing.T, env *testenv.Env, key string, v any) {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.DirectS3(t).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String(key), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatal(err)
	}
}

// submission is the benchmark worker's shape: one element per answered pair.
func submission(answers ...[][]int) []map[string]any {
	var out []map[string]any
	for i, a := range answers {
		out = append(out, map[string]any{
			"attempt_1": map[string]any{"answer": a, "correct": nil, "metadata": map[string]any{"pair_index": i}},
			"attempt_2": nil,
		})
	}
	return out
}

// completedTask leaves a task as the benchmark's worker leaves it: COMPLETED,
// a relative result key, no is_correct.
func completedTask(t *testing.T, env *testenv.Env, runID, taskID string) {
	t.Helper()
	env.PutTask(t, map[string]any{
		"run_id": runID, "task_id": taskID, "status": "COMPLETED", "retry_count": 0,
		"cost_usd": json.Number("0.0012"), "result_s3_key": model.RelativeSubmissionKey(taskID),
	})
}

func check(t *testing.T, env *testenv.Env, in model.CheckTaskInput) model.CheckTaskOutput {
	t.Helper()
	out, err := handlers.NewCheckTask(env.Deps).Handle(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func isTrue(v types.AttributeValue) bool {
	b, ok := v.(*types.AttributeValueMemberBOOL)
	return ok && b.Value
}

func item(runID, taskID string) model.TaskItem {
	return model.TaskItem{RunID: runID, TaskID: taskID, ConfigName: "cfg", DataSource: dataSource, Attempt: 1}
}

func TestACompletedTaskIsScoredOnce(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "t1")
	put(t, env, model.TaskDataKey(dataSource, "t1"), twoPairs)
	put(t, env, model.SubmissionKey(runID, "t1"), submission([][]int{{1}}, [][]int{{9}}))
	completedTask(t, env, runID, "t1")

	out := check(t, env, model.CheckTaskInput{TaskItem: item(runID, "t1")})
	if out.Status != "COMPLETED" || out.Error != nil || out.Score == nil || *out.Score != 0.5 || out.TaskItem != item(runID, "t1") {
		t.Fatalf("answer %+v, want COMPLETED with score 0.5 and the item unchanged", out)
	}
	task := env.Task(t, runID, "t1")
	for attr, want := range map[string]string{"score": "0.5", "pairs": "2", "pairs_correct": "1"} {
		if got := testenv.N(task, attr); got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
	if !strings.Contains(testenv.S(task, "status"), "COMPLETED") || testenv.N(task, "cost_usd") != "0.0012" {
		t.Errorf("the worker's fields changed: %v", task)
	}
	if v, ok := task["is_correct"]; !ok || isTrue(v) {
		t.Errorf("is_correct %v, want false (one of two pairs)", v)
	}

	// A second check (a retried call) answers the stored score: the
	// submission is not read again.
	if _, err := testenv.DirectS3(t).DeleteObject(context.Background(), &s3.DeleteObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String(model.SubmissionKey(runID, "t1")),
	}); err != nil {
		t.Fatal(err)
	}
	if again := check(t, env, model.CheckTaskInput{TaskItem: item(runID, "t1")}); again.Score == nil || *again.Score != 0.5 {
		t.Errorf("second check: %+v, want the stored score 0.5", again)
	}
}

func TestAFullySolvedTaskIsCorrect(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "t1")
	put(t, env, model.TaskDataKey(dataSource, "t1"), twoPairs)
	put(t, env, model.SubmissionKey(runID, "t1"), submission([][]int{{1}}, [][]int{{2}}))
	completedTask(t, env, runID, "t1")
	if out := check(t, env, model.CheckTaskInput{TaskItem: item(runID, "t1")}); *out.Score != 1 {
		t.Errorf("score %v, want 1", *out.Score)
	}
	if v := env.Task(t, runID, "t1")["is_correct"]; !isTrue(v) {
		t.Errorf("is_correct %v, want true", v)
	}
}

// A job that failed after its task was COMPLETED (the container died after
// the write) is a success: done and paid for, not to be run again.
func TestAJobThatFailedAfterCompletingIsASuccess(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "t1")
	put(t, env, model.TaskDataKey(dataSource, "t1"), twoPairs)
	put(t, env, model.SubmissionKey(runID, "t1"), submission([][]int{{1}}, [][]int{{2}}))
	completedTask(t, env, runID, "t1")
	out := check(t, env, model.CheckTaskInput{TaskItem: item(runID, "t1"),
		Error: &model.TaskError{Error: "States.TaskFailed", Cause: `{"Status":"FAILED","Container":{"ExitCode":137}}`}})
	if out.Status != "COMPLETED" || out.Error != nil {
		t.Errorf("answer %+v, want COMPLETED without an error", out)
	}
}

// Whatever the exit code, a task the job left in any other status is a
// failed attempt: the job's own error, or TaskNotCompleted when it succeeded.
func TestATaskNotCompletedIsAFailedAttempt(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "pending", "claimed", "failed")
	env.PutTask(t, map[string]any{"run_id": runID, "task_id": "claimed", "status": "IN_PROGRESS", "retry_count": 0})
	env.PutTask(t, map[string]any{"run_id": runID, "task_id": "failed", "status": "FAILED", "retry_count": 1})
	for id, status := range map[string]string{"pending": "PENDING", "claimed": "IN_PROGRESS", "failed": "FAILED"} {
		out := check(t, env, model.CheckTaskInput{TaskItem: item(runID, id)})
		if out.Status != status || out.Error == nil || out.Error.Error != "TaskNotCompleted" || !strings.Contains(out.Error.Cause, status) {
			t.Errorf("%s after a job that exited 0: %+v, want %s with a TaskNotCompleted error naming it", id, out, status)
		}
		jobErr := &model.TaskError{Error: "States.TaskFailed", Cause: `{"Container":{"ExitCode":1}}`}
		if out := check(t, env, model.CheckTaskInput{TaskItem: item(runID, id), Error: jobErr}); out.Error == nil || *out.Error != *jobErr {
			t.Errorf("%s after a failed job: error %+v, want the job's own", id, out.Error)
		}
	}
	if env.Task(t, runID, "pending")["score"] != nil {
		t.Error("a task that is not completed was scored")
	}
}

func TestTaskDataWithoutOutputsLeavesTheTaskUnscored(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "t1")
	hidden := arcdata.Task{Train: twoPairs.Train, Test: []arcdata.Pair{{Input: arcdata.Grid{{0}}}}}
	put(t, env, model.TaskDataKey(dataSource, "t1"), hidden)
	put(t, env, model.SubmissionKey(runID, "t1"), submission([][]int{{1}}))
	completedTask(t, env, runID, "t1")
	out := check(t, env, model.CheckTaskInput{TaskItem: item(runID, "t1")})
	if out.Status != "COMPLETED" || out.Score != nil {
		t.Errorf("answer %+v, want COMPLETED and no score", out)
	}
	task := env.Task(t, runID, "t1")
	if testenv.N(task, "pairs") != "0" || task["score"] != nil {
		t.Errorf("pairs %q, score %v: want 0 pairs and no score", testenv.N(task, "pairs"), task["score"])
	}
}

func TestAMissingOrBrokenSubmissionScoresZeroAndSaysWhy(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "missing", "broken")
	for _, id := range []string{"missing", "broken"} {
		put(t, env, model.TaskDataKey(dataSource, id), twoPairs)
		completedTask(t, env, runID, id)
	}
	put(t, env, model.SubmissionKey(runID, "broken"), map[string]any{"not": "a list"})
	for id, why := range map[string]string{"missing": "does not exist", "broken": "not a JSON list"} {
		out := check(t, env, model.CheckTaskInput{TaskItem: item(runID, id)})
		if out.Status != "COMPLETED" || out.Score == nil || *out.Score != 0 {
			t.Errorf("%s: %+v, want COMPLETED with score 0", id, out)
		}
		if e := testenv.S(env.Task(t, runID, id), "score_error"); !strings.Contains(e, why) || !strings.Contains(e, model.SubmissionKey(runID, id)) {
			t.Errorf("%s: score_error %q, want it to name the key and %q", id, e, why)
		}
	}
}

func TestUnknownTaskAndBadInput(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "t1")
	invoke := lambdaio.Raw(handlers.NewCheckTask(env.Deps).Handle)
	for event, want := range map[string]string{
		`{"run_id":"` + runID + `","task_id":"nope","data_source":"evaluation","attempt":1}`:           "TaskNotFoundError",
		`{"run_id":"` + runID + `","task_id":"t1","data_source":"evaluation","attempt":0}`:             "InvalidInputError",
		`{"run_id":"` + runID + `","task_id":"t1","data_source":"evaluation"}`:                         "InvalidInputError",
		`{"run_id":"` + runID + `","task_id":"t1","data_source":"../x","attempt":1}`:                   "InvalidInputError",
		`{"run_id":"` + runID + `","data_source":"evaluation","attempt":1}`:                            "InvalidInputError",
		`{"run_id":"` + runID + `","task_id":"t1","data_source":"evaluation","attempt":1,"error":"x"}`: "InvalidInputError",
	} {
		_, err := invoke(context.Background(), []byte(event))
		var lerr messages.InvokeResponse_Error
		if !errors.As(err, &lerr) || lerr.Type != want {
			t.Errorf("%s: error %v, want %s", event, err, want)
		}
	}
}
