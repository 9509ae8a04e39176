// Package worker is the built-in baseline worker (`arcbench worker`): what
// local runs and the project's tests launch for each task, in place of the
// benchmark's own Python worker that production runs in AWS Batch. It does
// what that worker does, as docs/running-locally.md's worker contract records it, so that every local run
// exercises the production contract:
//
//  1. claim the task, PENDING|FAILED -> IN_PROGRESS (else: "already claimed", exit 0);
//  2. read <S3_TASKS_PREFIX>/<TASK_ID>.json;
//  3. answer each test pair with arcdata.Solve, one rate-limited "model call" each;
//  4. write <S3_PREFIX>/submissions/<TASK_ID>.json;
//  5. mark the task COMPLETED (no condition), then add to the run's counters;
//  6. on any error in 2–5, count the failure itself (retry_count + 1, FAILED,
//     or FAILED_PERMANENT at MAX_RETRIES) and exit 1.
//
// SIGTERM (Batch's at the attempt's time limit, and TerminateJob's) asks it
// to stop: at the next model call it stops asking, writes the pairs answered
// so far, marks the task COMPLETED with the cost so far, adds to the run and
// exits 0, as the benchmark's worker does. SIGINT interrupts: exit 130,
// nothing marked.
//
// On top of that it misbehaves on request (ARCBENCH_FAULTS, ARCBENCH_FAIL_RATE),
// so that end-to-end tests can drive every way a worker lets the
// orchestration down, and counts on the run record as one of the benchmark
// worker's versions does (ARCBENCH_WORKER_VERSION).
package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/shared/arcdata"
	"arcbench/shared/clients"
	"arcbench/shared/config"
	"arcbench/shared/model"
)

// Exit codes of the worker process.
const (
	ExitDone        = 0   // completed (stopped by SIGTERM too), or already claimed (or a fault said so)
	ExitFailed      = 1   // the attempt failed (the worker counted it, if it could)
	ExitConfig      = 2   // a required variable is missing or one is malformed: nothing touched
	ExitInterrupted = 130 // SIGINT: stopped between steps, nothing marked
	ExitKilled      = 137 // an injected death (as a container killed with SIGKILL)
)

// MaxTaskDataBytes bounds the task data the worker reads (ARC tasks are a few KB).
const MaxTaskDataBytes = 16 << 20

// markFailedTries bounds the re-reads when marking a task failed meets a
// concurrent change of its retry_count.
const markFailedTries = 5

// TimeLayout is Python's isoformat() of an aware UTC time, which is how the
// benchmark's worker writes every timestamp.
const TimeLayout = "2006-01-02T15:04:05.000000+00:00"

// FormatTime writes t in TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// DynamoDB is what the worker uses of the DynamoDB API.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// S3 is what the worker uses of the S3 API.
type S3 interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

var (
	_ DynamoDB = (*dynamodb.Client)(nil)
	_ S3       = (*s3.Client)(nil)
)

// Worker runs one attempt at one task.
type Worker struct {
	Config   Config
	DynamoDB DynamoDB
	S3       S3
	Now      func() time.Time
	// Sleep waits while the rate-limit bucket is empty.
	Sleep func(ctx context.Context, d time.Duration) error
	// Stop is closed when the worker is asked to stop (SIGTERM): it stops
	// asking the model at the next call and saves what it has. nil: never.
	Stop <-chan struct{}

	bucketExists bool // the rate-limit item was created (or found)
}

// New builds a worker from its configuration and the process's clients.
func New(cfg Config, c *clients.Clients) *Worker {
	return &Worker{Config: cfg, DynamoDB: c.DynamoDB, S3: c.S3, Now: time.Now, Sleep: sleep}
}

// Result is what one attempt did.
type Result struct {
	// Claimed is whether this worker claimed the task.
	Claimed bool
	// Attempt is the 1-based attempt number, the task's retry_count + 1 as
	// found at claim time; 0 when not known.
	Attempt int
	// Fault is the ARCBENCH_FAULTS mode applied to the attempt, if any.
	Fault Mode
	// Status is the status this worker last wrote ("" for none): IN_PROGRESS,
	// COMPLETED, FAILED or FAILED_PERMANENT.
	Status string
	// RetryCount is the retry_count written when the task was marked failed.
	RetryCount int

	// Pairs is the task's number of test pairs; Answered how many of them
	// got an answer in the submission (fewer when stopped, none with
	// no-answer).
	Pairs, Answered int
	// Stopped is whether a stop request (SIGTERM) ended the model calls
	// before the attempt made them all.
	Stopped bool

	TokensInput  int
	TokensOutput int
	CostUSD      string // exact decimal text
	ResultS3Key  string // relative to S3_PREFIX
}

// KilledError is an injected death: the process exits ExitKilled at once.
type KilledError struct{ Mode Mode }

func (e *KilledError) Error() string { return "injected fault " + string(e.Mode) + ": dying" }

// ErrInterrupted is an attempt stopped by a signal (the context ended).
var ErrInterrupted = errors.New("interrupted")

// ExitCode is the process exit code for Handle's error.
func ExitCode(err error) int {
	var ce *ConfigError
	var killed *KilledError
	switch {
	case err == nil:
		return ExitDone
	case errors.As(err, &ce):
		return ExitConfig
	case errors.As(err, &killed):
		return ExitKilled
	case errors.Is(err, ErrInterrupted):
		return ExitInterrupted
	default:
		return ExitFailed
	}
}

// Main is the worker process: it reads the configuration from getenv, builds
// the clients, runs one attempt and returns the exit code. ctx ending
// interrupts it (SIGINT); stop closing asks it to stop and save what it has
// (SIGTERM). It logs JSON to stderr, one line per outcome, with run_id and
// task_id on every line.
func Main(ctx context.Context, stop <-chan struct{}, getenv func(string) string, stderr io.Writer) int {
	log := slog.New(slog.NewJSONHandler(stderr, nil)).With(
		"run_id", strings.TrimSpace(getenv(config.WorkerEnvRunID)),
		"task_id", strings.TrimSpace(getenv(config.WorkerEnvTaskID)))
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		log.Error("worker not started", "error", err.Error(), "exit_code", ExitConfig)
		return ExitConfig
	}
	// AWS_REGION as the SDK finds it, else the benchmark worker's default.
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithDefaultRegion(DefaultRegion))
	if err != nil {
		log.Error("worker not started", "error", "load AWS configuration: "+err.Error(), "exit_code", ExitConfig)
		return ExitConfig
	}
	w := New(cfg, clients.FromConfig(awsCfg))
	w.Stop = stop
	res, err := w.Handle(ctx)
	code := ExitCode(err)
	attrs := []any{"exit_code", code, "worker_id", cfg.WorkerID, "worker_version", string(cfg.Version)}
	if res.Attempt > 0 {
		attrs = append(attrs, "attempt", res.Attempt)
	}
	if res.Fault != "" {
		attrs = append(attrs, "fault", string(res.Fault))
	}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	switch {
	case code == ExitInterrupted:
		log.Warn("interrupted: nothing marked", attrs...)
	case code == ExitKilled:
		log.Error("dying on purpose", append(attrs, "status", res.Status)...)
	case err != nil:
		if res.Status != "" {
			attrs = append(attrs, "status", res.Status, "retry_count", res.RetryCount)
		}
		log.Error("attempt failed", attrs...)
	case !res.Claimed && res.Fault == "":
		log.Info("already claimed", attrs...)
	case res.Status != model.TaskCompleted:
		log.Info("exiting without work on purpose", append(attrs, "claimed", res.Claimed)...)
	default:
		attrs = append(attrs, "pairs", res.Pairs, "pairs_answered", res.Answered, "cost_usd", res.CostUSD,
			"tokens_input", res.TokensInput, "tokens_output", res.TokensOutput, "result_s3_key", res.ResultS3Key)
		if res.Stopped {
			log.Warn("stopped by SIGTERM: partial submission saved, task completed", attrs...)
		} else {
			log.Info("task completed", attrs...)
		}
	}
	return code
}

// Handle runs one attempt at the configured task. The error's ExitCode is
// the process's; a nil error with Claimed false is "already claimed".
func (w *Worker) Handle(ctx context.Context) (Result, error) {
	c := w.Config
	var res Result
	if c.Faults.mayExitWithoutWork(c.TaskID) {
		// No claim, so no retry_count from it: read the attempt number.
		retries, err := w.retryCount(ctx)
		if err != nil {
			return res, interrupted(ctx, err)
		}
		if mode, _ := c.Faults.Match(c.TaskID, retries+1); mode == Exit0WithoutWork {
			res.Attempt, res.Fault = retries+1, mode
			return res, nil
		}
	}
	if ctx.Err() != nil {
		return res, interrupted(ctx, nil)
	}
	claimed, retries, err := w.claim(ctx)
	if err != nil || !claimed {
		return res, interrupted(ctx, err)
	}
	res.Claimed, res.Status, res.Attempt = true, model.TaskInProgress, retries+1
	if mode, _ := c.Faults.Match(c.TaskID, res.Attempt); mode != Exit0WithoutWork {
		// (Exit0WithoutWork matching only now: the attempt number changed
		// since it was read, and this worker claimed the task after all.)
		res.Fault = mode
	}

	switch {
	case res.Fault == DieAfterClaim:
		return res, &KilledError{Mode: res.Fault}
	case res.Fault == ClaimThenExit0:
		return res, nil
	case res.Fault == FailAfterClaim:
		err = &InjectedFailure{TaskID: c.TaskID, Attempt: res.Attempt, Reason: EnvFaults + " " + string(res.Fault)}
	case res.Fault == "" && FailsAttempt(c.FailSeed, c.TaskID, retries, c.FailRate):
		err = &InjectedFailure{TaskID: c.TaskID, Attempt: res.Attempt,
			Reason: fmt.Sprintf("%s=%g, %s=%d", EnvFailRate, c.FailRate, EnvFailSeed, c.FailSeed)}
	default:
		err = w.attempt(ctx, &res)
	}
	var killed *KilledError
	if err == nil || errors.As(err, &killed) {
		return res, err
	}
	if ctx.Err() != nil {
		return res, interrupted(ctx, err)
	}
	return res, w.markFailed(ctx, &res, err)
}

// interrupted is err, or ErrInterrupted when the context has ended (a
// signal): the worker then marks nothing.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if err == nil {
		return fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
	}
	return fmt.Errorf("%w: %w", ErrInterrupted, err)
}

// attempt is steps 2–5: read, solve, submit, mark completed, count in the run.
// A stop request is heeded between model calls only, as the benchmark's
// worker checks its SIGTERM flag at attempt boundaries: one that came before
// the claim stops it at the first call, and the task is completed with an
// empty submission.
func (w *Worker) attempt(ctx context.Context, res *Result) error {
	c := w.Config
	task, err := w.readTask(ctx)
	if err != nil {
		return err
	}
	res.Pairs = len(task.Test)
	// A pair with no answer is left out, as the benchmark's worker leaves it
	// out: the list can be shorter than the task's test pairs.
	submission := make(Submission, 0, len(task.Test))
	predictions, _ := arcdata.Solve(task)
	calls := 0
	for i := range task.Test {
		a, err := w.call(ctx, res, &calls, func() *Attempt {
			return w.answer(task, i, predictions[i], res)
		})
		if err != nil {
			return err
		}
		if res.Stopped {
			break
		}
		if a != nil {
			submission = append(submission, PairAttempts{Attempt1: a})
		}
	}
	if res.Fault == Hang && calls == 1 && !res.Stopped {
		// A one-pair task: the hung call is a second one, at that pair.
		if _, err := w.call(ctx, res, &calls, func() *Attempt { return nil }); err != nil {
			return err
		}
	}
	res.Answered = len(submission)
	res.CostUSD = CostUSD(res.TokensInput, res.TokensOutput)

	body, err := json.Marshal(submission)
	if err != nil {
		return fmt.Errorf("encode submission: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := w.putSubmission(ctx, res, body); err != nil {
		return err
	}
	res.ResultS3Key = model.RelativeSubmissionKey(c.TaskID)

	if err := ctx.Err(); err != nil {
		return err
	}
	if err := w.markCompleted(ctx, res); err != nil {
		return err
	}
	res.Status = model.TaskCompleted
	if res.Fault == CompleteThenDie {
		return &KilledError{Mode: res.Fault}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !c.Version.countsCompletions() {
		return nil
	}
	return w.addToRun(ctx, res)
}

// putSubmission writes the submission, unless the attempt's fault loses it
// (the task will then name a submission that is not there).
func (w *Worker) putSubmission(ctx context.Context, res *Result, body []byte) error {
	if res.Fault == SubmissionLost {
		return nil
	}
	c := w.Config
	key := c.RunPrefix + "/" + model.RelativeSubmissionKey(c.TaskID)
	if _, err := w.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(c.Bucket),
		Key:         aws.String(key),
		Body:        bytes.NewReader(body),
		ContentType: aws.String("application/json"),
	}); err != nil {
		return fmt.Errorf("write submission s3://%s/%s: %w", c.Bucket, key, err)
	}
	return nil
}

// call makes one rate-limited "model call" (the calls-th of the attempt):
// ask's answer, nil when the call failed. A stop request before it, or
// during a hung call, sets res.Stopped and makes no answer.
func (w *Worker) call(ctx context.Context, res *Result, calls *int, ask func() *Attempt) (*Attempt, error) {
	if w.stopRequested() {
		res.Stopped = true
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := w.takeToken(ctx); err != nil {
		return nil, err
	}
	*calls++
	if res.Fault == Hang && *calls == 2 {
		// The call never returns: only a signal ends it.
		select {
		case <-w.Stop:
			res.Stopped = true
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return ask(), nil
}

// stopRequested tells whether a stop (SIGTERM) was asked for.
func (w *Worker) stopRequested() bool {
	select {
	case <-w.Stop:
		return true
	default:
		return false
	}
}

// answer is the baseline's attempt at test pair i, or what the attempt's
// fault makes of it (nil: the provider call failed), with its tokens added
// to res.
func (w *Worker) answer(task arcdata.Task, i int, prediction arcdata.Grid, res *Result) *Attempt {
	start := FormatTime(w.Now())
	prompt, completion := PairUsage(task, i, prediction)
	switch res.Fault {
	case NoAnswer:
		return nil // a provider error: logged by the benchmark's worker, nothing billed or recorded
	case EmptyAnswer:
		prediction = arcdata.Grid{} // billed as written, but no usable grid
	}
	res.TokensInput += prompt
	res.TokensOutput += completion
	return newAttempt(w.Config, task, i, prediction, prompt, completion, start, FormatTime(w.Now()))
}

func (w *Worker) taskKey() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		model.AttrRunID:  &types.AttributeValueMemberS{Value: w.Config.RunID},
		model.AttrTaskID: &types.AttributeValueMemberS{Value: w.Config.TaskID},
	}
}

func (w *Worker) runKey() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{model.AttrRunID: &types.AttributeValueMemberS{Value: w.Config.RunID}}
}

// The update expressions are written out as the benchmark writes them, so
// they can be held against the benchmark's; #status and #error because both are
// DynamoDB reserved words.
var reserved = map[string]string{"#status": model.AttrStatus, "#error": model.AttrError}

func names(placeholders ...string) map[string]string {
	m := map[string]string{}
	for _, p := range placeholders {
		m[p] = reserved[p]
	}
	return m
}

// claim moves the task from PENDING or FAILED to IN_PROGRESS. claimed is
// false when the condition fails: any other status, or no such task.
func (w *Worker) claim(ctx context.Context) (claimed bool, retryCount int, err error) {
	c := w.Config
	now := str(FormatTime(w.Now()))
	out, err := w.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(c.TasksTable),
		Key:       w.taskKey(),
		UpdateExpression: aws.String(fmt.Sprintf("SET #status = :in_progress, %s = :worker, %s = :now, %s = :now",
			model.AttrWorkerID, model.AttrStartedAt, model.AttrUpdatedAt)),
		ConditionExpression:      aws.String("#status = :pending OR #status = :failed"),
		ExpressionAttributeNames: names("#status"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":in_progress": str(model.TaskInProgress),
			":pending":     str(model.TaskPending),
			":failed":      str(model.TaskFailed),
			":worker":      str(c.WorkerID),
			":now":         now,
		},
		// Only to learn the attempt number; it changes nothing written.
		ReturnValues: types.ReturnValueAllNew,
	})
	if conditionFailed(err) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("claim task %s of run %s: %w", c.TaskID, c.RunID, err)
	}
	retryCount, err = intAttr(out.Attributes, model.AttrRetryCount)
	if err != nil {
		// Claimed all the same: the task stays IN_PROGRESS, as after a crash.
		return false, 0, fmt.Errorf("claimed task %s of run %s: %w", c.TaskID, c.RunID, err)
	}
	return true, retryCount, nil
}

// retryCount reads the task's retry_count (0 when absent, or no task).
func (w *Worker) retryCount(ctx context.Context) (int, error) {
	out, err := w.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(w.Config.TasksTable),
		Key:            w.taskKey(),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return 0, fmt.Errorf("read task %s of run %s: %w", w.Config.TaskID, w.Config.RunID, err)
	}
	return intAttr(out.Item, model.AttrRetryCount)
}

// readTask reads and checks the task's data.
func (w *Worker) readTask(ctx context.Context) (arcdata.Task, error) {
	c := w.Config
	key := c.TasksPrefix + "/" + c.TaskID + ".json"
	where := "s3://" + c.Bucket + "/" + key
	out, err := w.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(key)})
	if err != nil {
		return arcdata.Task{}, fmt.Errorf("read task data %s: %w", where, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, MaxTaskDataBytes+1))
	if err != nil {
		return arcdata.Task{}, fmt.Errorf("read task data %s: %w", where, err)
	}
	if len(body) > MaxTaskDataBytes {
		return arcdata.Task{}, fmt.Errorf("task data %s is over %d bytes", where, MaxTaskDataBytes)
	}
	var task arcdata.Task
	if err := json.Unmarshal(body, &task); err != nil {
		return arcdata.Task{}, fmt.Errorf("task data %s is not an ARC task: %w", where, err)
	}
	if err := task.Validate(); err != nil {
		return arcdata.Task{}, fmt.Errorf("task data %s: %w", where, err)
	}
	return task, nil
}

// markCompleted marks the task COMPLETED with no condition, as the
// benchmark does; it writes no is_correct.
func (w *Worker) markCompleted(ctx context.Context, res *Result) error {
	c := w.Config
	now := str(FormatTime(w.Now()))
	_, err := w.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(c.TasksTable),
		Key:       w.taskKey(),
		UpdateExpression: aws.String(fmt.Sprintf("SET #status = :completed, %s = :now, %s = :now, %s = :cost, %s = :in, %s = :out, %s = :key",
			model.AttrCompletedAt, model.AttrUpdatedAt, model.AttrCostUSD, model.AttrTokensInput, model.AttrTokensOutput, model.AttrResultS3Key)),
		ExpressionAttributeNames: names("#status"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":completed": str(model.TaskCompleted),
			":now":       now,
			":cost":      w.recordedCost(res),
			":in":        number(res.TokensInput),
			":out":       number(res.TokensOutput),
			":key":       str(res.ResultS3Key),
		},
	})
	if err != nil {
		return fmt.Errorf("mark task %s of run %s completed: %w", c.TaskID, c.RunID, err)
	}
	return nil
}

// recordedCost is the cost as the worker records it on the task: its
// exact decimal, or text that is not a number under the cost-unreadable fault.
func (w *Worker) recordedCost(res *Result) types.AttributeValue {
	if res.Fault == CostUnreadable {
		return str("n/a")
	}
	return &types.AttributeValueMemberN{Value: res.CostUSD}
}

// addToRun adds the task to the run's counters with a plain "+": a run
// record without one of them gets a ValidationException, which fails the
// attempt after the task was marked COMPLETED (the benchmark's behaviour).
func (w *Worker) addToRun(ctx context.Context, res *Result) error {
	c := w.Config
	added := res.CostUSD
	if res.Fault == CostUnreadable {
		added = "0" // the task's own cost is not a number
	}
	_, err := w.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(c.RunsTable),
		Key:       w.runKey(),
		UpdateExpression: aws.String(fmt.Sprintf("SET %[1]s = %[1]s + :one, %[2]s = %[2]s + :cost, %[3]s = %[3]s + :in, %[4]s = %[4]s + :out, %[5]s = :now",
			model.AttrCompletedTasks, model.AttrTotalCostUSD, model.AttrTotalInputTokens, model.AttrTotalOutputTokens, model.AttrUpdatedAt)),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one":  number(1),
			":cost": &types.AttributeValueMemberN{Value: added},
			":in":   number(res.TokensInput),
			":out":  number(res.TokensOutput),
			":now":  str(FormatTime(w.Now())),
		},
	})
	if err != nil {
		return fmt.Errorf("add task %s to run %s: %w", c.TaskID, c.RunID, err)
	}
	return nil
}

// markFailed counts a failed attempt, as the benchmark's worker does: read
// the task's retry_count, write old + 1 on condition that nobody changed it
// (re-read and retry if somebody did), with the error and FAILED, or
// FAILED_PERMANENT once it reaches MAX_RETRIES, which also counts in the
// run's failed_tasks (PR77's; PR78 and Silent do not). It returns cause,
// joined with why marking failed if it did.
func (w *Worker) markFailed(ctx context.Context, res *Result, cause error) error {
	c := w.Config
	for try := 1; ; try++ {
		old, err := w.retryCount(ctx)
		if err != nil {
			return errors.Join(cause, fmt.Errorf("mark it failed: %w", err))
		}
		status := model.TaskFailed
		if old+1 >= c.MaxRetries {
			status = model.TaskFailedPermanent
		}
		_, err = w.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(c.TasksTable),
			Key:       w.taskKey(),
			UpdateExpression: aws.String(fmt.Sprintf("SET %s = :new, #error = :error, #status = :status, %s = :now",
				model.AttrRetryCount, model.AttrUpdatedAt)),
			ConditionExpression:      aws.String(fmt.Sprintf("attribute_not_exists(%[1]s) OR %[1]s = :old", model.AttrRetryCount)),
			ExpressionAttributeNames: names("#status", "#error"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":new":    number(old + 1),
				":old":    number(old),
				":error":  str(cause.Error()),
				":status": str(status),
				":now":    str(FormatTime(w.Now())),
			},
		})
		if conditionFailed(err) && try < markFailedTries {
			continue // retry_count changed under us: read it again
		}
		if err != nil {
			return errors.Join(cause, fmt.Errorf("mark it failed: %w", err))
		}
		res.Status, res.RetryCount = status, old+1
		break
	}
	if res.Status == model.TaskFailedPermanent && c.Version.countsPermanentFailures() {
		if _, err := w.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(c.RunsTable),
			Key:                       w.runKey(),
			UpdateExpression:          aws.String(fmt.Sprintf("SET %[1]s = %[1]s + :one", model.AttrFailedTasks)),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": number(1)},
		}); err != nil {
			return errors.Join(cause, fmt.Errorf("count it in run %s's %s: %w", c.RunID, model.AttrFailedTasks, err))
		}
	}
	return cause
}

func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func number(n int) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.Itoa(n)}
}

// intAttr reads an integer attribute; absent is 0.
func intAttr(item map[string]types.AttributeValue, name string) (int, error) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(v.Value)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not an integer: %w", name, v.Value, err)
	}
	return n, nil
}
