package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/internal/testenv"
	"arcbench/shared/arcdata"
	"arcbench/shared/model"
	"arcbench/shared/worker"
)

// multiPair is a generated task with n test pairs (the generator makes one).
func multiPair(id string, n int) arcdata.Task {
	task := arcdata.Generate(id, 1)
	for seed := int64(2); len(task.Test) < n; seed++ {
		task.Test = append(task.Test, arcdata.Generate(id, seed).Test...)
	}
	return task
}

// rawSubmission reads a task's submission as plain JSON.
func (w world) rawSubmission(t *testing.T, runID, id string) []map[string]map[string]any {
	t.Helper()
	body, _, ok := w.object(t, model.SubmissionKey(runID, id))
	if !ok {
		t.Fatalf("%s: no submission", id)
	}
	var raw []map[string]map[string]any
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		t.Fatalf("%s: submission %s is not a JSON list (%v)", id, body, err)
	}
	return raw
}

// checkCompleted wants the task COMPLETED with these tokens and cost.
func checkCompleted(t *testing.T, item map[string]types.AttributeValue, id string, in, out int) {
	t.Helper()
	for name, c := range map[string]struct{ got, want string }{
		"status":        {testenv.S(item, model.AttrStatus), model.TaskCompleted},
		"cost_usd":      {testenv.N(item, model.AttrCostUSD), worker.CostUSD(in, out)},
		"tokens_input":  {testenv.N(item, model.AttrTokensInput), strconv.Itoa(in)},
		"tokens_output": {testenv.N(item, model.AttrTokensOutput), strconv.Itoa(out)},
		"result_s3_key": {testenv.S(item, model.AttrResultS3Key), model.RelativeSubmissionKey(id)},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s = %q, want %q", id, name, c.got, c.want)
		}
	}
}

// no-answer: the model is never reached. Every attempt is left empty, the
// submission is [], the task COMPLETED at no cost, counted in the run, exit 0.
// empty-answer: every pair answered [] and billed as a normal answer.
func TestNoAnswerAndEmptyAnswer(t *testing.T) {
	w := setup(t)
	runID := w.newRun(t, "noans001", "empty001")
	empty := multiPair("empty001", 2)
	w.put(t, model.TaskDataKey(dataSource, "empty001"), mustJSON(empty))
	t.Setenv(worker.EnvFaults, "noans001:1=no-answer,empty001:1=empty-answer")

	code, stderr := work(t, runID, "noans001")
	if code != worker.ExitDone || !strings.Contains(stderr, `"msg":"task completed"`) || !strings.Contains(stderr, `"fault":"no-answer"`) ||
		!strings.Contains(stderr, `"pairs_answered":0`) {
		t.Fatalf("no-answer: exit %d: %s", code, stderr)
	}
	checkCompleted(t, w.Task(t, runID, "noans001"), "noans001", 0, 0)
	if body, _, _ := w.object(t, model.SubmissionKey(runID, "noans001")); string(body) != "[]" {
		t.Errorf("no-answer: submission %s, want []", body)
	}

	code, stderr = work(t, runID, "empty001")
	if code != worker.ExitDone || !strings.Contains(stderr, `"fault":"empty-answer"`) || !strings.Contains(stderr, `"pairs_answered":2`) {
		t.Fatalf("empty-answer: exit %d: %s", code, stderr)
	}
	preds, _ := arcdata.Solve(empty)
	in, out := worker.Usage(empty, preds)
	checkCompleted(t, w.Task(t, runID, "empty001"), "empty001", in, out)
	raw := w.rawSubmission(t, runID, "empty001")
	if len(raw) != 2 {
		t.Fatalf("empty-answer: %d pairs in the submission, want 2", len(raw))
	}
	for i, pair := range raw {
		a := pair["attempt_1"]
		md, _ := a["metadata"].(map[string]any)
		usage, _ := md["usage"].(map[string]any)
		prompt, completion := worker.PairUsage(empty, i, preds[i])
		if !reflect.DeepEqual(a["answer"], []any{}) || a["correct"] != false || md["pair_index"] != float64(i) ||
			usage["prompt_tokens"] != float64(prompt) || usage["completion_tokens"] != float64(completion) {
			t.Errorf("empty-answer pair %d: %v", i, a)
		}
	}

	run := w.Run(t, runID)
	for name, want := range map[string]string{
		model.AttrCompletedTasks: "2", model.AttrFailedTasks: "0", model.AttrTotalCostUSD: worker.CostUSD(in, out),
		model.AttrTotalInputTokens: strconv.Itoa(in), model.AttrTotalOutputTokens: strconv.Itoa(out),
	} {
		if got := testenv.N(run, name); got != want {
			t.Errorf("run %s = %s, want %s", name, got, want)
		}
	}
}

// submission-lost completes the task as usual (answered, billed, its
// result key recorded) but its submission is nowhere.
func TestSubmissionLost(t *testing.T) {
	w := setup(t)
	runID := w.newRun(t, "lost0001")
	t.Setenv(worker.EnvFaults, "lost0001:1=submission-lost")
	code, stderr := work(t, runID, "lost0001")
	if code != worker.ExitDone || !strings.Contains(stderr, `"msg":"task completed"`) {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	task := arcdata.Generate("lost0001", 1)
	preds, _ := arcdata.Solve(task)
	in, out := worker.Usage(task, preds)
	checkCompleted(t, w.Task(t, runID, "lost0001"), "lost0001", in, out)
	if body, _, found := w.object(t, model.SubmissionKey(runID, "lost0001")); found {
		t.Errorf("a submission was written: %s", body)
	}
}

// hung starts a hang-fault attempt of a task with a clock that stands still
// (so the rate-limit bucket does not refill) and returns once the worker is
// in its hung call: two tokens taken.
func (w world) hung(t *testing.T, runID, id string) (wk *worker.Worker, done <-chan error, stop chan struct{}, cancel context.CancelFunc) {
	t.Helper()
	t.Setenv(worker.EnvFaults, id+":1=hang")
	wk = newWorker(t, runID, id)
	t0 := time.Now()
	wk.Now = func() time.Time { return t0 }
	stop = make(chan struct{})
	wk.Stop = stop
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	errs := make(chan error, 1)
	go func() {
		_, err := wk.Handle(ctx)
		errs <- err
	}()
	want := strconv.Itoa(worker.RateLimitCapacity - 2)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if tokens, ok := w.bucket(t); ok && strconv.FormatFloat(tokens, 'f', -1, 64) == want {
			break
		}
		select {
		case err := <-errs:
			t.Fatalf("the worker ended before hanging: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker did not reach its hung call")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // it hangs, and nothing more happens
	select {
	case err := <-errs:
		t.Fatalf("the hung call returned by itself: %v", err)
	default:
	}
	return wk, errs, stop, cancel
}

// SIGTERM during a hung model call: the worker saves what it has (the pairs
// answered before the call), marks the task COMPLETED with the cost so far,
// adds it to the run and exits 0. A one-pair task's hung call comes after its
// answer: its submission is whole, and it was stopped all the same.
func TestStopDuringAHungCallSavesWhatItHas(t *testing.T) {
	for _, pairs := range []int{3, 1} {
		t.Run(strconv.Itoa(pairs)+" pairs", func(t *testing.T) {
			w := setup(t)
			id := "hang000" + strconv.Itoa(pairs)
			runID := w.newRun(t, id)
			task := multiPair(id, pairs)
			w.put(t, model.TaskDataKey(dataSource, id), mustJSON(task))

			_, done, stop, _ := w.hung(t, runID, id)
			if s := testenv.S(w.Task(t, runID, id), model.AttrStatus); s != model.TaskInProgress {
				t.Fatalf("while hung: status %s", s)
			}
			if _, _, ok := w.object(t, model.SubmissionKey(runID, id)); ok {
				t.Fatal("a submission was written before the stop")
			}
			close(stop)
			if err := <-done; worker.ExitCode(err) != worker.ExitDone {
				t.Fatalf("stopped: error %v, want exit 0", err)
			}

			preds, _ := arcdata.Solve(task)
			in, out := worker.PairUsage(task, 0, preds[0])
			checkCompleted(t, w.Task(t, runID, id), id, in, out)
			raw := w.rawSubmission(t, runID, id)
			if len(raw) != 1 {
				t.Fatalf("%d pairs in the submission, want the one answered before the hung call", len(raw))
			}
			if md, _ := raw[0]["attempt_1"]["metadata"].(map[string]any); md["pair_index"] != 0.0 ||
				!reflect.DeepEqual(raw[0]["attempt_1"]["answer"], mustDecode(t, mustJSON(preds[0]))) {
				t.Errorf("submission %v, want pair 0's answer", raw)
			}
			run := w.Run(t, runID)
			if testenv.N(run, model.AttrCompletedTasks) != "1" || testenv.N(run, model.AttrTotalCostUSD) != worker.CostUSD(in, out) {
				t.Errorf("run: completed_tasks %s, total_cost_usd %s; want 1 and %s", testenv.N(run, model.AttrCompletedTasks),
					testenv.N(run, model.AttrTotalCostUSD), worker.CostUSD(in, out))
			}
		})
	}
}

// SIGINT during a hung call interrupts: exit 130, nothing marked.
func TestInterruptDuringAHungCall(t *testing.T) {
	w := setup(t)
	runID := w.newRun(t, "hang0009")
	_, done, _, cancel := w.hung(t, runID, "hang0009")
	cancel()
	err := <-done
	if worker.ExitCode(err) != worker.ExitInterrupted || !errors.Is(err, worker.ErrInterrupted) {
		t.Fatalf("error %v, want an interrupted attempt", err)
	}
	item := w.Task(t, runID, "hang0009")
	if testenv.S(item, model.AttrStatus) != model.TaskInProgress || item[model.AttrCostUSD] != nil {
		t.Errorf("task %v: want it left IN_PROGRESS", item)
	}
	if _, _, ok := w.object(t, model.SubmissionKey(runID, "hang0009")); ok {
		t.Error("an interrupted worker wrote a submission")
	}
}

// A SIGTERM before the claim is heeded at the first model call, as the
// benchmark's worker checks its flag there: the task is claimed and
// completed with an empty submission and cost 0, counted in the run; exit 0.
func TestStopBeforeTheClaim(t *testing.T) {
	w := setup(t)
	runID := w.newRun(t, "early001")
	t.Setenv("RUN_ID", runID)
	t.Setenv("TASK_ID", "early001")
	stop := make(chan struct{})
	close(stop)
	var stderr bytes.Buffer
	code := worker.Main(context.Background(), stop, os.Getenv, &stderr)
	checkLogs(t, stderr.String(), runID, "early001")
	if code != worker.ExitDone || !strings.Contains(stderr.String(), `"msg":"stopped by SIGTERM`) ||
		!strings.Contains(stderr.String(), `"pairs":1,"pairs_answered":0`) {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	checkCompleted(t, w.Task(t, runID, "early001"), "early001", 0, 0)
	if body, _, _ := w.object(t, model.SubmissionKey(runID, "early001")); string(body) != "[]" {
		t.Errorf("submission %s, want []", body)
	}
	if n := testenv.N(w.Run(t, runID), model.AttrCompletedTasks); n != "1" {
		t.Errorf("run completed_tasks %s, want 1", n)
	}
	if tokens, ok := w.bucket(t); ok && tokens < worker.RateLimitCapacity {
		t.Errorf("a model call was made after the stop (bucket at %v)", tokens)
	}
}

// Each version counts on the run record as the benchmark's does: pr77 a
// completion and a permanent failure, pr78 the completion only, silent
// nothing at all. What it writes on the tasks is the same.
func TestWorkerVersionsCountOnTheRun(t *testing.T) {
	for _, c := range []struct {
		version                 string
		completed, failed, cost bool
	}{
		{"", true, true, true}, // pr77, the default
		{"pr77", true, true, true},
		{"pr78", true, false, true},
		{"silent", false, false, false},
	} {
		t.Run("version "+c.version, func(t *testing.T) {
			w := setup(t)
			runID := w.newRun(t, "vers0001", "vers0002")
			before := w.Run(t, runID)
			t.Setenv(worker.EnvWorkerVersion, c.version)
			t.Setenv("MAX_RETRIES", "1")
			t.Setenv(worker.EnvFaults, "vers0002:*=fail-after-claim")
			if code, stderr := work(t, runID, "vers0001"); code != worker.ExitDone {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if code, stderr := work(t, runID, "vers0002"); code != worker.ExitFailed {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if s := testenv.S(w.Task(t, runID, "vers0001"), model.AttrStatus); s != model.TaskCompleted {
				t.Errorf("vers0001: %s", s)
			}
			if s := testenv.S(w.Task(t, runID, "vers0002"), model.AttrStatus); s != model.TaskFailedPermanent {
				t.Errorf("vers0002: %s", s)
			}
			task := arcdata.Generate("vers0001", 1)
			preds, _ := arcdata.Solve(task)
			cost := worker.CostUSD(worker.Usage(task, preds))
			count := func(yes bool, n string) string {
				if yes {
					return n
				}
				return "0"
			}
			run := w.Run(t, runID)
			for name, want := range map[string]string{
				model.AttrCompletedTasks: count(c.completed, "1"), model.AttrFailedTasks: count(c.failed, "1"),
				model.AttrTotalCostUSD: count(c.cost, cost),
			} {
				if got := testenv.N(run, name); got != want {
					t.Errorf("run %s = %s, want %s", name, got, want)
				}
			}
			if c.version == "silent" && !reflect.DeepEqual(before, run) {
				t.Errorf("the silent worker changed the run record:\n%v\n%v", before, run)
			}
		})
	}
}

func mustDecode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}
