// Package worker is the built-in baseline worker: what the Batch job runs
// when the benchmark's own image is not used, and what the local runner
// launches for each task. It honours the worker contract of DESIGN.md:
//
//  1. claim the task with one conditional update, PENDING|FAILED -> IN_PROGRESS
//     (a task another worker holds, or one that is done, is left untouched: exit 0);
//  2. read tasks/<DATA_SOURCE>/<TASK_ID>.json from the bucket;
//  3. solve it with arcdata.Solve;
//  4. write the submission to runs/<RUN_ID>/submissions/<TASK_ID>.json;
//  5. mark the task COMPLETED with cost_usd, is_correct, result_s3_key,
//     tokens_input, tokens_output and updated_at; exit 0.
//
// Exit codes: 0 done (or not claimable), 1 a failure worth a retry, 2 a
// configuration error (a retry would fail the same way). A failed attempt
// leaves the task IN_PROGRESS, as a crashed worker would: handle-error marks
// it FAILED, and the retry claims it from there.
package worker

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"arcbench/shared/arcdata"
	"arcbench/shared/clients"
	"arcbench/shared/config"
	"arcbench/shared/model"
)

// Exit codes of the worker process.
const (
	ExitDone      = 0 // completed, or not claimable (another worker holds it, or it is done)
	ExitRetryable = 1 // this attempt failed; another may succeed
	ExitConfig    = 2 // configuration error: a retry would fail the same way
)

// MaxTaskDataBytes bounds the task data the worker reads (ARC tasks are a few KB).
const MaxTaskDataBytes = 16 << 20

// DynamoDB is what the worker uses of the DynamoDB API.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
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
}

// New builds a worker from its configuration and the process's clients.
func New(cfg Config, c *clients.Clients) *Worker {
	return &Worker{Config: cfg, DynamoDB: c.DynamoDB, S3: c.S3, Now: time.Now}
}

// Result is what one attempt did.
type Result struct {
	// Claimed is false when the task was not claimable: Status is then what
	// the worker found (IN_PROGRESS, COMPLETED or FAILED_PERMANENT) and
	// nothing was written.
	Claimed bool
	Status  string
	// Attempt is the task's retry_count when this worker claimed it: 0 for
	// the first attempt.
	Attempt      int
	Solved       bool // a known rule fitted the train pairs
	IsCorrect    bool
	CostUSD      string // exact decimal text
	TokensInput  int
	TokensOutput int
	ResultS3Key  string
}

// Submission is the worker's answer, written as JSON to
// runs/<run_id>/submissions/<task_id>.json.
type Submission struct {
	RunID      string `json:"run_id"`
	TaskID     string `json:"task_id"`
	ConfigName string `json:"config_name,omitempty"`
	DataSource string `json:"data_source"`
	// Attempt is the task's retry_count at claim time: 0 for the first attempt.
	Attempt int `json:"attempt"`
	// Predictions holds one grid per test input, in order.
	Predictions  [][][]int   `json:"predictions"`
	Solved       bool        `json:"solved"`
	TokensInput  int         `json:"tokens_input"`
	TokensOutput int         `json:"tokens_output"`
	CostUSD      json.Number `json:"cost_usd"`
	SubmittedAt  string      `json:"submitted_at"`
}

// ConfigError is a configuration error (exit 2): a missing or malformed
// environment variable, no AWS configuration, or a task the configuration
// names that has no record or no (valid) data.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return "configuration: " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// InjectedFailure is an attempt failed on purpose (ARCBENCH_FAIL_RATE).
type InjectedFailure struct {
	TaskID  string
	Attempt int
	Rate    float64
	Seed    int64
}

func (e *InjectedFailure) Error() string {
	return fmt.Sprintf("injected failure of task %s, attempt %d (%s=%g, %s=%d)",
		e.TaskID, e.Attempt, EnvFailRate, e.Rate, EnvFailSeed, e.Seed)
}

// LostClaimError is an attempt whose task changed under it (handle-error
// counted it as failed, e.g. after a timeout): its answer is not recorded.
type LostClaimError struct {
	RunID, TaskID string
	Attempt       int
}

func (e *LostClaimError) Error() string {
	return fmt.Sprintf("task %s of run %s is no longer IN_PROGRESS at attempt %d: not recording this attempt's result",
		e.TaskID, e.RunID, e.Attempt)
}

// ExitCode is the process exit code for an attempt's error.
func ExitCode(err error) int {
	var ce *ConfigError
	switch {
	case err == nil:
		return ExitDone
	case errors.As(err, &ce):
		return ExitConfig
	default:
		return ExitRetryable
	}
}

// Main is the worker process: it reads the configuration from getenv, builds
// the clients, runs one attempt and returns the exit code. It logs JSON to
// stderr, with run_id and task_id on every line.
func Main(ctx context.Context, getenv func(string) string, stderr io.Writer) int {
	log := slog.New(slog.NewJSONHandler(stderr, nil)).With(
		"run_id", strings.TrimSpace(getenv(config.WorkerEnvRunID)),
		"task_id", strings.TrimSpace(getenv(config.WorkerEnvTaskID)))
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		log.Error("worker not started", "error", err.Error(), "exit_code", ExitConfig)
		return ExitConfig
	}
	c, err := clients.New(ctx)
	if err != nil {
		log.Error("worker not started", "error", err.Error(), "exit_code", ExitConfig)
		return ExitConfig
	}
	res, err := New(cfg, c).Handle(ctx)
	code := ExitCode(err)
	switch {
	case err != nil:
		var injected *InjectedFailure
		msg := "attempt failed"
		if errors.As(err, &injected) {
			msg = "attempt failed: injected failure"
		}
		attrs := []any{"error", err.Error(), "claimed", res.Claimed, "exit_code", code}
		if res.Claimed {
			// The task stays IN_PROGRESS, as a crashed worker leaves it.
			attrs = append(attrs, "attempt", res.Attempt)
		}
		log.Error(msg, attrs...)
	case !res.Claimed:
		log.Info("task not claimable: another worker holds it or it is done", "status", res.Status, "exit_code", code)
	default:
		log.Info("task completed", "attempt", res.Attempt, "solved", res.Solved, "is_correct", res.IsCorrect,
			"cost_usd", res.CostUSD, "tokens_input", res.TokensInput, "tokens_output", res.TokensOutput,
			"result_s3_key", res.ResultS3Key, "exit_code", code)
	}
	return code
}

// Handle runs one attempt at the configured task.
func (w *Worker) Handle(ctx context.Context) (Result, error) {
	c := w.Config
	claimed, status, attempt, err := w.claim(ctx)
	if err != nil || !claimed {
		return Result{Status: status}, err
	}
	res := Result{Claimed: true, Status: model.TaskInProgress, Attempt: attempt}
	if FailsAttempt(c.FailSeed, c.TaskID, attempt, c.FailRate) {
		return res, &InjectedFailure{TaskID: c.TaskID, Attempt: attempt, Rate: c.FailRate, Seed: c.FailSeed}
	}
	task, err := w.readTask(ctx)
	if err != nil {
		return res, err
	}
	predictions, solved := arcdata.Solve(task)
	res.Solved = solved
	res.IsCorrect = arcdata.Correct(task, predictions)
	res.TokensInput, res.TokensOutput = Usage(task, predictions)
	res.CostUSD = CostUSD(res.TokensInput, res.TokensOutput)
	res.ResultS3Key = model.SubmissionKey(c.RunID, c.TaskID)
	body, err := json.Marshal(Submission{
		RunID:        c.RunID,
		TaskID:       c.TaskID,
		ConfigName:   c.ConfigName,
		DataSource:   c.DataSource,
		Attempt:      attempt,
		Predictions:  predictions,
		Solved:       solved,
		TokensInput:  res.TokensInput,
		TokensOutput: res.TokensOutput,
		CostUSD:      json.Number(res.CostUSD),
		SubmittedAt:  model.FormatTime(w.Now()),
	})
	if err != nil {
		return res, fmt.Errorf("encode submission of task %s: %w", c.TaskID, err)
	}
	if _, err := w.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(c.Bucket),
		Key:         aws.String(res.ResultS3Key),
		Body:        bytes.NewReader(body),
		ContentType: aws.String("application/json"),
	}); err != nil {
		return res, fmt.Errorf("write submission s3://%s/%s: %w", c.Bucket, res.ResultS3Key, err)
	}
	if err := w.complete(ctx, res); err != nil {
		return res, err
	}
	res.Status = model.TaskCompleted
	return res, nil
}

func (w *Worker) key() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		model.AttrRunID:  &types.AttributeValueMemberS{Value: w.Config.RunID},
		model.AttrTaskID: &types.AttributeValueMemberS{Value: w.Config.TaskID},
	}
}

// claim moves the task from PENDING or FAILED to IN_PROGRESS in one
// conditional update. When the condition fails, claimed is false and status
// is what the task is; a task with no record is a *ConfigError.
func (w *Worker) claim(ctx context.Context) (claimed bool, status string, attempt int, err error) {
	c := w.Config
	upd := expression.Set(expression.Name(model.AttrStatus), expression.Value(model.TaskInProgress)).
		Set(expression.Name(model.AttrUpdatedAt), expression.Value(model.FormatTime(w.Now())))
	cond := expression.Name(model.AttrStatus).In(expression.Value(model.TaskPending), expression.Value(model.TaskFailed))
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return false, "", 0, fmt.Errorf("build claim: %w", err)
	}
	out, err := w.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(c.TasksTable),
		Key:                                 w.key(),
		UpdateExpression:                    expr.Update(),
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		current := ccf.Item
		if current == nil {
			// Not every DynamoDB (dynalite) returns the item with the
			// failure: read it, to tell "held or done" from "no such task".
			got, err := w.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{
				TableName:      aws.String(c.TasksTable),
				Key:            w.key(),
				ConsistentRead: aws.Bool(true),
			})
			if err != nil {
				return false, "", 0, fmt.Errorf("read task %s of run %s after a failed claim: %w", c.TaskID, c.RunID, err)
			}
			current = got.Item
		}
		if current == nil {
			return false, "", 0, &ConfigError{Err: fmt.Errorf("no task %s in run %s (table %s)", c.TaskID, c.RunID, c.TasksTable)}
		}
		return false, str(current, model.AttrStatus), 0, nil
	}
	if err != nil {
		return false, "", 0, fmt.Errorf("claim task %s of run %s: %w", c.TaskID, c.RunID, err)
	}
	n, ok := out.Attributes[model.AttrRetryCount].(*types.AttributeValueMemberN)
	if ok {
		if attempt, err = strconv.Atoi(n.Value); err != nil {
			return false, "", 0, fmt.Errorf("task %s of run %s: retry_count %q: %w", c.TaskID, c.RunID, n.Value, err)
		}
	}
	return true, model.TaskInProgress, attempt, nil
}

// readTask reads and checks the task's data. Missing or malformed data is a
// *ConfigError: no retry will make it appear.
func (w *Worker) readTask(ctx context.Context) (arcdata.Task, error) {
	c := w.Config
	key := model.TaskDataKey(c.DataSource, c.TaskID)
	where := "s3://" + c.Bucket + "/" + key
	out, err := w.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(key)})
	if err != nil {
		if notFound(err) {
			return arcdata.Task{}, &ConfigError{Err: fmt.Errorf("no task data at %s (%s=%s): %w", where, config.WorkerEnvDataSource, c.DataSource, err)}
		}
		return arcdata.Task{}, fmt.Errorf("read task data %s: %w", where, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, MaxTaskDataBytes+1))
	if err != nil {
		return arcdata.Task{}, fmt.Errorf("read task data %s: %w", where, err)
	}
	if len(body) > MaxTaskDataBytes {
		return arcdata.Task{}, &ConfigError{Err: fmt.Errorf("task data %s is over %d bytes", where, MaxTaskDataBytes)}
	}
	var task arcdata.Task
	if err := json.Unmarshal(body, &task); err != nil {
		return arcdata.Task{}, &ConfigError{Err: fmt.Errorf("task data %s is not an ARC task: %w", where, err)}
	}
	if err := task.Validate(); err != nil {
		return arcdata.Task{}, &ConfigError{Err: fmt.Errorf("task data %s: %w", where, err)}
	}
	return task, nil
}

func notFound(err error) bool {
	var nsk *s3types.NoSuchKey
	var nf *s3types.NotFound
	var api smithy.APIError
	return errors.As(err, &nsk) || errors.As(err, &nf) ||
		(errors.As(err, &api) && (api.ErrorCode() == "NoSuchKey" || api.ErrorCode() == "NoSuchBucket"))
}

// complete marks the task COMPLETED with the attempt's result, on condition
// that it is still this attempt's: IN_PROGRESS with the retry_count it was
// claimed at (handle-error adds one to retry_count for every failed attempt).
func (w *Worker) complete(ctx context.Context, res Result) error {
	c := w.Config
	upd := expression.Set(expression.Name(model.AttrStatus), expression.Value(model.TaskCompleted)).
		Set(expression.Name(model.AttrCostUSD), expression.Value(&types.AttributeValueMemberN{Value: res.CostUSD})).
		Set(expression.Name(model.AttrIsCorrect), expression.Value(res.IsCorrect)).
		Set(expression.Name(model.AttrResultS3Key), expression.Value(res.ResultS3Key)).
		Set(expression.Name(model.AttrTokensInput), expression.Value(res.TokensInput)).
		Set(expression.Name(model.AttrTokensOutput), expression.Value(res.TokensOutput)).
		Set(expression.Name(model.AttrUpdatedAt), expression.Value(model.FormatTime(w.Now())))
	sameAttempt := expression.Name(model.AttrRetryCount).Equal(expression.Value(res.Attempt))
	if res.Attempt == 0 {
		sameAttempt = expression.Or(sameAttempt, expression.AttributeNotExists(expression.Name(model.AttrRetryCount)))
	}
	cond := expression.Name(model.AttrStatus).Equal(expression.Value(model.TaskInProgress)).And(sameAttempt)
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return fmt.Errorf("build completion: %w", err)
	}
	_, err = w.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(c.TasksTable),
		Key:                       w.key(),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return &LostClaimError{RunID: c.RunID, TaskID: c.TaskID, Attempt: res.Attempt}
	}
	if err != nil {
		return fmt.Errorf("mark task %s of run %s completed: %w", c.TaskID, c.RunID, err)
	}
	return nil
}

func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// FailsAttempt tells whether fault injection fails attempt number attempt
// (the task's retry_count at claim time, 0 first) of a task, at failure rate
// rate under seed. It is a pure function, so a test can derive a run's
// outcome from the schedule: u = splitmix64(FNV-1a-64(seed as 8 bytes
// little-endian, task id, a zero byte, attempt as 8 bytes little-endian)),
// its top 53 bits as a fraction in [0, 1); the attempt fails when u < rate.
// Rate 0 never fails, rate 1 always does.
func FailsAttempt(seed int64, taskID string, attempt int, rate float64) bool {
	if rate <= 0 {
		return false
	}
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(taskID))
	h.Write([]byte{0})
	binary.LittleEndian.PutUint64(b[:], uint64(attempt))
	h.Write(b[:])
	z := h.Sum64()
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	u := float64(z>>11) / (1 << 53)
	return u < rate
}

// Pricing of the baseline "model", in millionths of a dollar per token.
const (
	MicroUSDPerInputToken  = 3
	MicroUSDPerOutputToken = 15
	// PromptOverheadTokens stands for the instructions around the grids.
	PromptOverheadTokens = 64
)

// Usage is the tokens the baseline "spends" on a task: one per cell and one
// per row of every grid it is shown (train inputs and outputs, test inputs)
// plus PromptOverheadTokens in, and one per cell and row of its predictions out.
func Usage(task arcdata.Task, predictions [][][]int) (tokensInput, tokensOutput int) {
	tokens := func(g arcdata.Grid) int { return arcdata.Cells(g) + len(g) }
	tokensInput = PromptOverheadTokens
	for _, p := range task.Train {
		tokensInput += tokens(p.Input) + tokens(p.Output)
	}
	for _, p := range task.Test {
		tokensInput += tokens(p.Input)
	}
	for _, g := range predictions {
		tokensOutput += tokens(g)
	}
	return tokensInput, tokensOutput
}

// CostUSD is the exact decimal cost of the tokens ("0.004755"), computed in
// integer millionths of a dollar: never through float64.
func CostUSD(tokensInput, tokensOutput int) string {
	micro := int64(tokensInput)*MicroUSDPerInputToken + int64(tokensOutput)*MicroUSDPerOutputToken
	s := fmt.Sprintf("%d.%06d", micro/1_000_000, micro%1_000_000)
	for s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}
