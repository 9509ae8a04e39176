package checktask_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"arcbench/internal/testenv"
	"arcbench/shared/arcdata"
	"arcbench/shared/handlers"
	"arcbench/shared/handlers/checktask"
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

// noAnswerTask leaves a task as the benchmark's worker leaves it when every
// call to its model failed: COMPLETED, submission [], cost 0, 0 tokens.
func noAnswerTask(t *testing.T, env *testenv.Env, runID, taskID string, extra map[string]any) {
	t.Helper()
	put(t, env, model.TaskDataKey(dataSource, taskID), twoPairs)
	put(t, env, model.SubmissionKey(runID, taskID), []any{})
	rec := map[string]any{
		"run_id": runID, "task_id": taskID, "status": "COMPLETED", "retry_count": 0, "updated_at": "2026-12-02T00:48:51.674977+00:00",
		"cost_usd": json.Number("0"), "tokens_input": 0, "tokens_output": 0, "result_s3_key": model.RelativeSubmissionKey(taskID),
	}
	for k, v := range extra {
		rec[k] = v
	}
	env.PutTask(t, rec)
}

// workerAdds adds to the run's counters as the benchmark's worker does on
// each completion, with a plain "+".
func workerAdds(t *testing.T, env *testenv.Env, runID, cost string) {
	t.Helper()
	_, err := env.DB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(env.Tables.Runs), Key: map[string]types.AttributeValue{"run_id": &types.AttributeValueMemberS{Value: runID}},
		UpdateExpression: aws.String("SET completed_tasks = completed_tasks + :one, total_cost_usd = total_cost_usd + :cost"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one": &types.AttributeValueMemberN{Value: "1"}, ":cost": &types.AttributeValueMemberN{Value: cost}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A task its worker completed with no answer at all and nothing spent was
// never served by its model: a failed attempt (NoAnswer), moved back to
// FAILED so that the next claim succeeds, and not counted as completed.
func TestACompletionWithoutAnswerOrSpendIsAFailedAttempt(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "empty", "missing", "said")
	noAnswerTask(t, env, runID, "empty", nil)
	noAnswerTask(t, env, runID, "missing", nil)
	if _, err := testenv.DirectS3(t).DeleteObject(context.Background(), &s3.DeleteObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String(model.SubmissionKey(runID, "missing"))}); err != nil {
		t.Fatal(err)
	}
	noAnswerTask(t, env, runID, "said", map[string]any{"error": "Error code: 500 - upstream unavailable"})
	for id, want := range map[string]string{"empty": "holds no answer", "missing": "does not exist", "said": "Error code: 500"} {
		workerAdds(t, env, runID, "0")
		in := model.CheckTaskInput{TaskItem: item(runID, id)}
		in.Attempt = 2
		out := check(t, env, in)
		if out.Status != model.TaskFailed || out.Error == nil || out.Error.Error != model.ErrNoAnswer || !strings.Contains(out.Error.Cause, want) {
			t.Errorf("%s: answer %+v, want FAILED with a NoAnswer error saying %q", id, out, want)
		}
		task := env.Task(t, runID, id)
		if testenv.S(task, "status") != model.TaskFailed || testenv.N(task, "no_answer_attempt") != "2" || task["score"] != nil {
			t.Errorf("%s: status %s, no_answer_attempt %s, score %v: want FAILED at attempt 2, unscored",
				id, testenv.S(task, "status"), testenv.N(task, "no_answer_attempt"), task["score"])
		}
		// A repeated call (its answer lost) answers the same.
		if again := check(t, env, in); again.Error == nil || again.Error.Error != model.ErrNoAnswer {
			t.Errorf("%s: repeated check %+v, want NoAnswer again", id, again)
		}
	}
	// What the worker added to the run for these completions is undone.
	if run := env.Run(t, runID); testenv.N(run, "completed_tasks") != "0" {
		t.Errorf("completed_tasks %s after three refused completions, want 0", testenv.N(run, "completed_tasks"))
	}
}

// A model that was paid and gave no usable grid produced the result: the
// task is COMPLETED, scored 0 and said unanswered; it is not run again. A
// record whose spend cannot be read counts as spent.
func TestAnAnswerlessCompletionWithSpendIsTheModelsResult(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "paid", "unreadable")
	noAnswerTask(t, env, runID, "paid", map[string]any{"tokens_input": 1200, "tokens_output": 30, "cost_usd": json.Number("0.004")})
	noAnswerTask(t, env, runID, "unreadable", map[string]any{"cost_usd": "n/a"})
	for _, id := range []string{"paid", "unreadable"} {
		out := check(t, env, model.CheckTaskInput{TaskItem: item(runID, id)})
		if out.Status != model.TaskCompleted || out.Score == nil || *out.Score != 0 {
			t.Errorf("%s: %+v, want COMPLETED with score 0", id, out)
		}
		if task := env.Task(t, runID, id); testenv.N(task, "answered_attempts") != "0" || testenv.S(task, "counted_as") != model.TaskCompleted {
			t.Errorf("%s: answered_attempts %s, counted_as %q", id, testenv.N(task, "answered_attempts"), testenv.S(task, "counted_as"))
		}
	}
}

// The run's live counters are check-task's, not the worker's: whatever the
// worker added (twice here, or nothing), after a task is checked the run
// counts exactly the checked completions and their recorded cost.
func TestTheLiveCountersCountEachCheckedCompletionOnce(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "a", "b", "c")
	for _, id := range []string{"a", "b", "c"} {
		put(t, env, model.TaskDataKey(dataSource, id), twoPairs)
		put(t, env, model.SubmissionKey(runID, id), submission([][]int{{1}}, [][]int{{2}}))
		completedTask(t, env, runID, id)
	}
	workerAdds(t, env, runID, "0.0012")
	workerAdds(t, env, runID, "0.0012") // a worker that counted twice
	check(t, env, model.CheckTaskInput{TaskItem: item(runID, "a")})
	check(t, env, model.CheckTaskInput{TaskItem: item(runID, "a")}) // a repeated check
	run := env.Run(t, runID)
	if testenv.N(run, "completed_tasks") != "1" || testenv.N(run, "total_cost_usd") != "0.0012" {
		t.Errorf("after one check: completed_tasks %s, total_cost_usd %s; want 1 and 0.0012", testenv.N(run, "completed_tasks"), testenv.N(run, "total_cost_usd"))
	}
	// Every write's response lost once after DynamoDB did the work (the
	// SDK's retry then goes through): still counted once.
	env.Proxy.LoseResponses("UpdateItem", func(n int) bool { return n%2 == 1 })
	check(t, env, model.CheckTaskInput{TaskItem: item(runID, "b")})
	env.Proxy.LoseResponse = nil
	// Checks of c delivered many times at once (a worker that counted
	// nothing for it): one of them counts it.
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := handlers.NewCheckTask(env.Deps).Handle(context.Background(), model.CheckTaskInput{TaskItem: item(runID, "c")}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	run = env.Run(t, runID)
	if testenv.N(run, "completed_tasks") != "3" || testenv.N(run, "total_cost_usd") != "0.0036" || testenv.N(run, "counted_completed") != "3" {
		t.Errorf("completed_tasks %s, total_cost_usd %s, counted_completed %s; want 3, 0.0036, 3",
			testenv.N(run, "completed_tasks"), testenv.N(run, "total_cost_usd"), testenv.N(run, "counted_completed"))
	}
	if c, ok := run["counting"]; ok {
		t.Errorf("counting %v: a count's token was left behind", c)
	}
}

// What was scored is kept: each pair's attempts' marks and the task data's
// digest, so a report shows the marks as scored even after the data changes.
func TestTheMarksAndTheDataAsScoredAreKept(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "t1")
	put(t, env, model.TaskDataKey(dataSource, "t1"), twoPairs)
	put(t, env, model.SubmissionKey(runID, "t1"), []map[string]any{
		{"attempt_1": map[string]any{"answer": [][]int{{9}}, "metadata": map[string]any{"pair_index": 0}},
			"attempt_2": map[string]any{"answer": [][]int{{1}}, "metadata": map[string]any{"pair_index": 0}}},
	})
	completedTask(t, env, runID, "t1")
	check(t, env, model.CheckTaskInput{TaskItem: item(runID, "t1")})
	task := env.Task(t, runID, "t1")
	marks, _ := task["attempt_marks"].(*types.AttributeValueMemberL)
	if marks == nil || len(marks.Value) != 2 || marks.Value[0].(*types.AttributeValueMemberS).Value != "01" || marks.Value[1].(*types.AttributeValueMemberS).Value != "" {
		t.Errorf("attempt_marks %#v, want [\"01\", \"\"]", task["attempt_marks"])
	}
	data, _ := json.Marshal(twoPairs)
	if sum := sha256.Sum256(data); testenv.S(task, "data_sha256") != hex.EncodeToString(sum[:]) {
		t.Errorf("data_sha256 %q, want the file's", testenv.S(task, "data_sha256"))
	}
}

// A job stopped after its worker completed the task (at its time limit, its
// host lost) leaves a task that is done and paid for: scored on what was
// saved, never run again, and marked with the job's error.
func TestACompletionBeforeTheJobFailedKeepsTheJobsError(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "t1")
	put(t, env, model.TaskDataKey(dataSource, "t1"), twoPairs)
	put(t, env, model.SubmissionKey(runID, "t1"), submission([][]int{{1}})) // the second pair never answered
	completedTask(t, env, runID, "t1")
	out := check(t, env, model.CheckTaskInput{TaskItem: item(runID, "t1"), Error: &model.TaskError{Error: "States.TaskFailed",
		Cause: `{"JobId":"j1","Status":"FAILED","StatusReason":"` + model.JobTimeoutReason + `","Container":{"ExitCode":0}}`}})
	if out.Status != model.TaskCompleted || out.Error != nil || *out.Score != 0.5 {
		t.Errorf("answer %+v, want COMPLETED, score 0.5", out)
	}
	if got := testenv.S(env.Task(t, runID, "t1"), "job_error"); got != "States.TaskFailed: "+model.JobTimeoutReason+" (exit code 0)" || !model.StoppedAtTimeLimit(got) {
		t.Errorf("job_error %q", got)
	}
}

// accessDenied answers a read of one key as S3 does when the caller may not
// list the bucket and the object is missing: 403 AccessDenied.
type accessDenied struct {
	checktask.S3
	key string
}

func (a accessDenied) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if aws.ToString(in.Key) == a.key {
		return nil, &smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied"}
	}
	return a.S3.GetObject(ctx, in, opts...)
}

// On AWS a missing submission reads as AccessDenied (check-task may not
// list the bucket): the task scores 0 with the reason, it does not fail.
func TestAnAccessDeniedReadScoresZeroWithTheReason(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "t1")
	put(t, env, model.TaskDataKey(dataSource, "t1"), twoPairs)
	completedTask(t, env, runID, "t1")
	h := handlers.NewCheckTask(env.Deps)
	h.S3 = accessDenied{S3: h.S3, key: model.SubmissionKey(runID, "t1")}
	out, err := h.Handle(context.Background(), model.CheckTaskInput{TaskItem: item(runID, "t1")})
	if err != nil || out.Status != model.TaskCompleted || *out.Score != 0 {
		t.Fatalf("answer %+v, error %v: want COMPLETED with score 0", out, err)
	}
	if e := testenv.S(env.Task(t, runID, "t1"), "score_error"); !strings.Contains(e, "AccessDenied") {
		t.Errorf("score_error %q, want it to say AccessDenied", e)
	}
}
