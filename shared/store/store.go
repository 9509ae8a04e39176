// Package store keeps runs and tasks in DynamoDB: the one place that knows the
// tables' keys, attribute names and the conditions that make each write safe
// to repeat.
package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"arcbench/shared/model"
	"arcbench/shared/money"
)

// DynamoDB is the part of the DynamoDB API the store uses (the SDK client satisfies it).
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

var _ DynamoDB = (*dynamodb.Client)(nil)

// BatchSize is the most items one BatchWriteItem request takes.
const BatchSize = 25

// Backoff spaces out the resubmission of UnprocessedItems: exponential from
// Base up to Max, with jitter, for at most Attempts tries.
type Backoff struct {
	Base     time.Duration
	Max      time.Duration
	Attempts int
}

// DefaultBackoff suits DynamoDB's own advice for UnprocessedItems.
var DefaultBackoff = Backoff{Base: 50 * time.Millisecond, Max: 5 * time.Second, Attempts: 12}

// delay is the wait before retry number attempt (0-based): half the
// exponential step fixed, half random ("equal jitter"), so retries never spin.
func (b Backoff) delay(attempt int) time.Duration {
	d := b.Max
	if attempt < 30 && b.Base<<attempt < b.Max {
		d = b.Base << attempt
	}
	half := d / 2
	return half + rand.N(half+1)
}

// Store reads and writes runs and tasks.
type Store struct {
	db         DynamoDB
	runsTable  string
	tasksTable string
	// InFlight bounds the BatchWriteItem requests sent at once: enough that
	// the round trip, not DynamoDB's work, stops being the cost (16 keeps
	// 10,000 tasks within 25% of the zero-latency time at 8 ms per request).
	InFlight int
	Backoff  Backoff
}

// New returns a store over the two tables.
func New(db DynamoDB, runsTable, tasksTable string) *Store {
	return &Store{db: db, runsTable: runsTable, tasksTable: tasksTable, InFlight: 16, Backoff: DefaultBackoff}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Run is a run record.
type Run struct {
	RunID          string
	ConfigName     string
	DataSource     string
	Status         string
	CreatedAt      string
	TriggeredBy    string
	CommitSHA      string
	ExecutionID    string
	TotalTasks     int
	CompletedTasks int
	FailedTasks    int
	TotalCostUSD   string
	// ComputeCostUSD is the Fargate cost of the run's jobs so far ("0"
	// before any), ComputeSeconds their billed time, UnpricedJobs the jobs
	// left out of the cost for want of a price.
	ComputeCostUSD string
	ComputeSeconds int64
	UnpricedJobs   int
	Accuracy       float64
	// Score is the run's official score, set by aggregate; nil before.
	Score       *float64
	ScoredTasks int
	// StrictScore, UnansweredTasks and CompletedAfterJobFailure are set by complete.
	StrictScore              *float64
	UnansweredTasks          int
	CompletedAfterJobFailure int
	// UnreadableCosts are the tasks whose cost TotalCostUSD leaves out.
	UnreadableCosts int
	CompletedAt     string
	UpdatedAt       string
	DurationSeconds float64
	// LastErrorType and LastErrorCause say why a run FAILED, when the state
	// machine marked it so.
	LastErrorType  string
	LastErrorCause string
	// RequestToken names the call that created the record: a retry of that
	// same write (the SDK's, after a lost response) knows the run for its own.
	RequestToken string
	// BudgetUSD ("" none) and StopAfterFailures (0 never) guard the run;
	// StopReason, StopKind and StoppedAt say why and when it was stopped.
	BudgetUSD         string
	StopAfterFailures int
	StopReason        string
	StopKind          string
	StoppedAt         string
	NotRunTasks       int
	ScoreOverRun      *float64
	// NotifiedAt is when the run's end was told ("" not yet).
	NotifiedAt string
	// Executions are the run's executions, oldest first: the one that
	// started it and each resume (empty for a run made without one).
	Executions []model.Execution
	// ActiveSeconds is the sum of the executions' run times (set by complete).
	ActiveSeconds float64
	// ReusedFrom, ReusedTasks and ReusedCostUSD: the run whose completed
	// tasks this run took instead of running them, how many, and what they
	// cost there ("" none).
	ReusedFrom    string
	ReusedTasks   int
	ReusedCostUSD string
}

// Resumes is how many times the run was resumed.
func (r *Run) Resumes() int { return max(0, len(r.Executions)-1) }

// EndedAt is when a run that is no longer RUNNING ended, as its record
// tells: completed_at (complete's), else stopped_at (a stop), else the
// last update (MarkRunFailed's).
func (r *Run) EndedAt() string { return cmpOr(r.CompletedAt, cmpOr(r.StoppedAt, r.UpdatedAt)) }

// Times are the run's wall times so far: active, the sum of its
// executions' run times, and span, from its first start to its last end
// (now, while it runs). A run without executions listed is active
// throughout its span.
func (r *Run) Times(now time.Time) (active, span time.Duration) {
	end := now
	if r.Status != model.RunRunning {
		if t, err := model.ParseTime(r.EndedAt()); err == nil {
			end = t
		}
	}
	if start, err := model.ParseTime(r.CreatedAt); err == nil {
		span = max(0, end.Sub(start))
	}
	if len(r.Executions) == 0 {
		return span, span
	}
	for i, e := range r.Executions {
		start, err := model.ParseTime(e.StartedAt)
		if err != nil {
			continue
		}
		stop := end
		if e.EndedAt != "" {
			if t, err := model.ParseTime(e.EndedAt); err == nil {
				stop = t
			}
		} else if i < len(r.Executions)-1 {
			continue // an earlier execution whose end was never recorded
		}
		active += max(0, stop.Sub(start))
	}
	return active, span
}

func runKey(runID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{model.AttrRunID: &types.AttributeValueMemberS{Value: runID}}
}

func taskKey(runID, taskID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		model.AttrRunID:  &types.AttributeValueMemberS{Value: runID},
		model.AttrTaskID: &types.AttributeValueMemberS{Value: taskID},
	}
}

// GetRun reads a run record (strongly consistent). A missing run is a
// *model.RunNotFoundError.
func (s *Store) GetRun(ctx context.Context, runID string) (*Run, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.runsTable,
		Key:            runKey(runID),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", runID, err)
	}
	if out.Item == nil {
		return nil, &model.RunNotFoundError{RunID: runID}
	}
	return runFromItem(out.Item), nil
}

func runFromItem(raw map[string]types.AttributeValue) *Run {
	it := item(raw)
	return &Run{
		RunID:                    it.str(model.AttrRunID),
		ConfigName:               it.str(model.AttrConfigName),
		DataSource:               it.str(model.AttrDataSource),
		Status:                   it.str(model.AttrStatus),
		CreatedAt:                it.str(model.AttrCreatedAt),
		TriggeredBy:              it.str(model.AttrTriggeredBy),
		CommitSHA:                it.str(model.AttrCommitSHA),
		ExecutionID:              it.str(model.AttrExecutionID),
		TotalTasks:               it.int(model.AttrTotalTasks),
		CompletedTasks:           it.int(model.AttrCompletedTasks),
		FailedTasks:              it.int(model.AttrFailedTasks),
		TotalCostUSD:             it.num(model.AttrTotalCostUSD),
		ComputeCostUSD:           cmpOr(it.num(model.AttrComputeCostUSD), "0"),
		ComputeSeconds:           int64(it.int(model.AttrComputeSeconds)),
		UnpricedJobs:             it.int(model.AttrUnpricedJobs),
		Accuracy:                 it.float(model.AttrAccuracy),
		Score:                    it.floatPtr(model.AttrScore),
		ScoredTasks:              it.int(model.AttrScoredTasks),
		StrictScore:              it.floatPtr(model.AttrStrictScore),
		UnansweredTasks:          it.int(model.AttrUnansweredTasks),
		CompletedAfterJobFailure: it.int(model.AttrCompletedAfterJobFailure),
		UnreadableCosts:          it.int(model.AttrUnreadableCosts),
		DurationSeconds:          it.float(model.AttrDurationSeconds),
		CompletedAt:              it.str(model.AttrCompletedAt),
		UpdatedAt:                it.str(model.AttrUpdatedAt),
		LastErrorType:            it.str(model.AttrLastErrorType),
		LastErrorCause:           it.str(model.AttrLastErrorCause),
		RequestToken:             it.str(model.AttrRequestToken),
		BudgetUSD:                it.num(model.AttrBudgetUSD),
		StopAfterFailures:        it.int(model.AttrStopAfterFailures),
		StopReason:               it.str(model.AttrStopReason),
		StopKind:                 it.str(model.AttrStopKind),
		StoppedAt:                it.str(model.AttrStoppedAt),
		NotRunTasks:              it.int(model.AttrNotRunTasks),
		ScoreOverRun:             it.floatPtr(model.AttrScoreOverRun),
		NotifiedAt:               it.str(model.AttrNotifiedAt),
		Executions:               executionsOf(raw[model.AttrExecutions]),
		ActiveSeconds:            it.float(model.AttrActiveSeconds),
		ReusedFrom:               it.str(model.AttrReusedFrom),
		ReusedTasks:              it.int(model.AttrReusedTasks),
		ReusedCostUSD:            it.num(model.AttrReusedCostUSD),
	}
}

// executionsOf reads a run's executions list; anything unreadable is left out.
func executionsOf(av types.AttributeValue) []model.Execution {
	l, ok := av.(*types.AttributeValueMemberL)
	if !ok {
		return nil
	}
	var out []model.Execution
	for _, v := range l.Value {
		var e model.Execution
		if attributevalue.Unmarshal(v, &e) == nil && e.ExecutionID != "" {
			out = append(out, e)
		}
	}
	return out
}

// CreateRun writes a new run record (status RUNNING, counters 0), only if no
// record with its id exists. created is false when one did, and was not
// this call's own: a write the SDK retried after a lost response finds its
// own record (by r.RequestToken) and counts as created.
func (s *Store) CreateRun(ctx context.Context, r Run) (created bool, err error) {
	itemAV := map[string]types.AttributeValue{
		model.AttrRunID:          &types.AttributeValueMemberS{Value: r.RunID},
		model.AttrConfigName:     &types.AttributeValueMemberS{Value: r.ConfigName},
		model.AttrDataSource:     &types.AttributeValueMemberS{Value: r.DataSource},
		model.AttrStatus:         &types.AttributeValueMemberS{Value: model.RunRunning},
		model.AttrCreatedAt:      &types.AttributeValueMemberS{Value: r.CreatedAt},
		model.AttrUpdatedAt:      &types.AttributeValueMemberS{Value: r.CreatedAt},
		model.AttrTriggeredBy:    &types.AttributeValueMemberS{Value: r.TriggeredBy},
		model.AttrCommitSHA:      &types.AttributeValueMemberS{Value: r.CommitSHA},
		model.AttrTotalTasks:     number(r.TotalTasks),
		model.AttrCompletedTasks: number(0),
		model.AttrFailedTasks:    number(0),
		model.AttrTotalCostUSD:   &types.AttributeValueMemberN{Value: "0"},
		// The worker adds to these with a plain "+", which DynamoDB refuses
		// on an attribute that does not exist.
		model.AttrTotalInputTokens:  number(0),
		model.AttrTotalOutputTokens: number(0),
		// The orchestration's own counters, which the public ones are set from.
		model.AttrCountedCompleted:    number(0),
		model.AttrCountedFailed:       number(0),
		model.AttrCountedCostUSD:      number(0),
		model.AttrCountedInputTokens:  number(0),
		model.AttrCountedOutputTokens: number(0),
		model.AttrStopAfterFailures:   number(r.StopAfterFailures),
		model.AttrFailureStreak:       number(0),
		model.AttrStreakErrors:        &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}},
	}
	if r.BudgetUSD != "" {
		itemAV[model.AttrBudgetUSD] = &types.AttributeValueMemberN{Value: r.BudgetUSD}
	}
	if r.ExecutionID != "" {
		itemAV[model.AttrExecutionID] = &types.AttributeValueMemberS{Value: r.ExecutionID}
		first, err := attributevalue.Marshal(model.Execution{ExecutionID: r.ExecutionID, Kind: model.ExecutionStart, StartedAt: r.CreatedAt, Tasks: r.TotalTasks})
		if err != nil {
			return false, fmt.Errorf("encode the execution of run %s: %w", r.RunID, err)
		}
		itemAV[model.AttrExecutions] = &types.AttributeValueMemberL{Value: []types.AttributeValue{first}}
	}
	if r.ReusedFrom != "" {
		itemAV[model.AttrReusedFrom] = &types.AttributeValueMemberS{Value: r.ReusedFrom}
		itemAV[model.AttrReusedTasks] = number(r.ReusedTasks)
		itemAV[model.AttrReusedCostUSD] = &types.AttributeValueMemberN{Value: cmpOr(r.ReusedCostUSD, "0")}
		// What it reused is completed and counted from the start.
		itemAV[model.AttrCountedCompleted] = number(r.ReusedTasks)
		itemAV[model.AttrCompletedTasks] = number(r.ReusedTasks)
	}
	if r.RequestToken != "" {
		itemAV[model.AttrRequestToken] = &types.AttributeValueMemberS{Value: r.RequestToken}
	}
	expr, err := expression.NewBuilder().
		WithCondition(expression.AttributeNotExists(expression.Name(model.AttrRunID))).Build()
	if err != nil {
		return false, fmt.Errorf("build condition for run %s: %w", r.RunID, err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &s.runsTable,
		Item:                      itemAV,
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	if isConditionFailed(err) {
		if r.RequestToken == "" {
			return false, nil
		}
		existing, err := s.GetRun(ctx, r.RunID)
		if err != nil {
			return false, err
		}
		return existing.RequestToken == r.RequestToken, nil
	}
	if err != nil {
		return false, fmt.Errorf("put run %s: %w", r.RunID, err)
	}
	return true, nil
}

// PutTasks writes one PENDING task record (retry_count 0) per id, BatchSize
// to a request with up to InFlight requests at once, resubmitting
// UnprocessedItems with backoff. Writing the same tasks again is harmless.
func (s *Store) PutTasks(ctx context.Context, runID string, taskIDs []string, now string) error {
	return s.putTasks(ctx, runID, len(taskIDs), func(i int) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{
			model.AttrRunID:      &types.AttributeValueMemberS{Value: runID},
			model.AttrTaskID:     &types.AttributeValueMemberS{Value: taskIDs[i]},
			model.AttrStatus:     &types.AttributeValueMemberS{Value: model.TaskPending},
			model.AttrRetryCount: number(0),
			model.AttrCreatedAt:  &types.AttributeValueMemberS{Value: now},
			model.AttrUpdatedAt:  &types.AttributeValueMemberS{Value: now},
		}
	})
}

// putTasks writes n task records, record(i) each, BatchSize to a request with
// up to InFlight requests at once.
func (s *Store) putTasks(ctx context.Context, runID string, n int, record func(i int) map[string]types.AttributeValue) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, s.InFlight))
	for start := 0; start < n; start += BatchSize {
		end := min(start+BatchSize, n)
		g.Go(func() error {
			reqs := make([]types.WriteRequest, 0, end-start)
			for i := start; i < end; i++ {
				reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: record(i)}})
			}
			if err := s.batchWrite(ctx, reqs); err != nil {
				first, last := item(reqs[0].PutRequest.Item).str(model.AttrTaskID), item(reqs[len(reqs)-1].PutRequest.Item).str(model.AttrTaskID)
				return fmt.Errorf("write tasks %s..%s of run %s: %w", first, last, runID, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// batchWrite sends one batch and resubmits whatever DynamoDB leaves unprocessed.
func (s *Store) batchWrite(ctx context.Context, reqs []types.WriteRequest) error {
	pending := map[string][]types.WriteRequest{s.tasksTable: reqs}
	for attempt := 0; ; attempt++ {
		out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		if err != nil {
			return err
		}
		pending = out.UnprocessedItems
		left := len(pending[s.tasksTable])
		if left == 0 {
			return nil
		}
		if attempt+1 >= s.Backoff.Attempts {
			return fmt.Errorf("%d items still unprocessed after %d attempts", left, attempt+1)
		}
		if err := sleepCtx(ctx, s.Backoff.delay(attempt)); err != nil {
			return err
		}
	}
}

// TaskError is what handle-error records about one failed attempt.
type TaskError struct {
	RunID, TaskID string
	// Attempt is the number of the failed attempt: retry_count is set to it,
	// so recording one attempt twice, or one the worker counted itself, counts once.
	Attempt   int
	ErrorType string
	Cause     string
	// Reason and ExitCode come from a Batch job description, when the cause is one.
	Reason   string
	ExitCode *int
	At       string
	// Permanent fails the task for good: its last attempt, or an error no retry fixes.
	Permanent bool
	// Owner is the calling handler's id (NewOwner): a write that leaves the
	// task FAILED_PERMANENT also elects the owner of its count.
	Owner string
}

// ErrorRecord is a task's state after a failed attempt was recorded.
type ErrorRecord struct {
	// Status is FAILED, FAILED_PERMANENT, or COMPLETED when the task turned
	// out completed: then nothing was written.
	Status     string
	RetryCount int
	// Task is the record as the call left it, when the task is
	// FAILED_PERMANENT or COMPLETED: when its CountOwner is the caller's own
	// id, the count is the caller's to make (Count), with the spend it records.
	Task Task
}

// RecordTaskError records a failed attempt of a task: retry_count becomes
// the attempt's number, the error is kept, and the status becomes FAILED, or
// FAILED_PERMANENT when e.Permanent. A COMPLETED task is never changed. A
// task without a record is a *model.TaskNotFoundError. Every write is
// conditional on the status it expects, so concurrent or repeated reports
// leave one consistent record.
func (s *Store) RecordTaskError(ctx context.Context, e TaskError) (ErrorRecord, error) {
	notDone := expression.AttributeExists(expression.Name(model.AttrTaskID)).
		And(expression.Name(model.AttrStatus).NotEqual(expression.Value(model.TaskCompleted)))
	written := func(status string, attrs map[string]types.AttributeValue) ErrorRecord {
		return ErrorRecord{Status: status, RetryCount: e.Attempt, Task: taskFromItem(attrs)}
	}
	for range 3 {
		if !e.Permanent {
			// A task we failed for good stays so; a report of an earlier
			// attempt arriving late changes nothing.
			cond := notDone.And(expression.AttributeNotExists(expression.Name(model.AttrPermanentByUs)))
			_, err := s.recordError(ctx, e, errorUpdate(e).Set(expression.Name(model.AttrStatus), expression.Value(model.TaskFailed)), cond, types.ReturnValueNone)
			if err == nil {
				return ErrorRecord{Status: model.TaskFailed, RetryCount: e.Attempt}, nil
			}
			if !isConditionFailed(err) {
				return ErrorRecord{}, err
			}
		} else {
			// Whoever made it FAILED_PERMANENT (this call, an earlier one, or
			// the worker), the new values tell whether it is counted yet.
			upd := claim(errorUpdate(e), model.TaskFailedPermanent, e.Owner).
				Set(expression.Name(model.AttrStatus), expression.Value(model.TaskFailedPermanent)).
				Set(expression.Name(model.AttrPermanentByUs), expression.Value(true))
			cond := notDone.And(expression.Name(model.AttrStatus).NotEqual(expression.Value(model.TaskFailedPermanent)))
			attrs, err := s.recordError(ctx, e, upd, cond, types.ReturnValueAllNew)
			if err == nil {
				return written(model.TaskFailedPermanent, attrs), nil
			}
			if !isConditionFailed(err) {
				return ErrorRecord{}, err
			}
			// Already FAILED_PERMANENT: by the worker or an earlier call
			// (whose response may have been lost): record this report.
			attrs, err = s.recordError(ctx, e, claim(errorUpdate(e), model.TaskFailedPermanent, e.Owner),
				expression.Name(model.AttrStatus).Equal(expression.Value(model.TaskFailedPermanent)), types.ReturnValueAllNew)
			if err == nil {
				return written(model.TaskFailedPermanent, attrs), nil
			}
			if !isConditionFailed(err) {
				return ErrorRecord{}, err
			}
		}
		// Refused: say why, from the record.
		t, err := s.GetTask(ctx, e.RunID, e.TaskID)
		if err != nil {
			return ErrorRecord{}, err
		}
		switch {
		case t.Status == model.TaskCompleted:
			return ErrorRecord{Status: model.TaskCompleted, RetryCount: t.RetryCount, Task: t}, nil
		case !e.Permanent && t.PermanentByUs:
			return ErrorRecord{Status: model.TaskFailedPermanent, RetryCount: t.RetryCount, Task: t}, nil
		}
		// The status moved between the write and the read: try again.
	}
	return ErrorRecord{}, fmt.Errorf("record error of task %s in run %s: its status kept changing", e.TaskID, e.RunID)
}

// errorUpdate sets what every recording of a failed attempt sets.
func errorUpdate(e TaskError) expression.UpdateBuilder {
	upd := expression.Set(expression.Name(model.AttrRetryCount), expression.Value(e.Attempt)).
		Set(expression.Name(model.AttrLastErrorType), expression.Value(e.ErrorType)).
		Set(expression.Name(model.AttrLastErrorCause), expression.Value(e.Cause)).
		Set(expression.Name(model.AttrLastErrorAt), expression.Value(e.At)).
		Set(expression.Name(model.AttrUpdatedAt), expression.Value(e.At))
	// A reason and exit code from an earlier attempt must not pass for this one's.
	if e.Reason != "" {
		upd = upd.Set(expression.Name(model.AttrLastErrorReason), expression.Value(e.Reason))
	} else {
		upd = upd.Remove(expression.Name(model.AttrLastErrorReason))
	}
	if e.ExitCode != nil {
		upd = upd.Set(expression.Name(model.AttrLastExitCode), expression.Value(*e.ExitCode))
	} else {
		upd = upd.Remove(expression.Name(model.AttrLastExitCode))
	}
	return upd
}

func (s *Store) recordError(ctx context.Context, e TaskError, upd expression.UpdateBuilder, cond expression.ConditionBuilder, rv types.ReturnValue) (map[string]types.AttributeValue, error) {
	attrs, err := s.update(ctx, s.tasksTable, taskKey(e.RunID, e.TaskID), upd, cond, rv)
	if err != nil && !isConditionFailed(err) {
		return nil, fmt.Errorf("record error of task %s in run %s: %w", e.TaskID, e.RunID, err)
	}
	return attrs, err
}

// Task is a task record as the handlers and operators read it.
type Task struct {
	TaskID     string
	Status     string
	RetryCount int
	// CostUSD is decimal text; "" when the worker recorded none.
	CostUSD string
	// ComputeCostUSD is the Fargate cost of the task's jobs (decimal text,
	// "" when none was recorded), ComputeSeconds their billed time,
	// UnpricedJobs the jobs of it that could not be priced.
	ComputeCostUSD string
	ComputeSeconds int64
	UnpricedJobs   int
	// ComputeAttempts are the attempts whose compute is recorded, and
	// ComputeOwner the handler call that recorded the last one.
	ComputeAttempts []int
	ComputeOwner    string
	TokensInput     int64
	TokensOutput    int64
	IsCorrect       bool
	// ResultS3Key is as the worker wrote it: see model.ResolveResultKey.
	ResultS3Key string
	// Score is nil until check-task scores the task, and for a task whose
	// data has no expected output (then Pairs is 0). Pairs is nil until scored.
	Score        *float64
	Pairs        *int
	PairsCorrect int
	ScoreError   string
	// AnsweredAttempts is nil until scored; 0 is an unanswered task.
	AnsweredAttempts *int
	// Marks are the attempts' marks as scored (model.AttrAttemptMarks), and
	// DataSHA256 the digest of the task data they were scored against.
	Marks      []string
	DataSHA256 string
	// JobError is set on a task completed before its job failed.
	JobError string
	// CountedAs is the live counter the task is counted in, "" while none;
	// CountOwner the handler call that owns that count.
	CountedAs, CountOwner string
	// PermanentByUs: handle-error, not the worker, made the task FAILED_PERMANENT.
	PermanentByUs bool
	GivenUp       bool
	LastErrorType string
	// LastErrorCause is the orchestration's record of the last failed attempt.
	LastErrorCause string
	Reason         string
	ExitCode       *int
	// WorkerError is the worker's own message of its last failure ("error").
	WorkerError     string
	NoAnswerAttempt int
	// NotedAttempt is the last failed attempt handle-error counted.
	NotedAttempt int
	// ReusedFrom is the run whose result this task took (see
	// model.AttrReusedFrom), ReusedCostUSD what it cost there.
	ReusedFrom    string
	ReusedCostUSD string
	// History is what each resume found the task as, oldest first.
	History   []model.TaskHistoryEntry
	UpdatedAt string
	// Invalid lists what the worker wrote that could not be read; each is
	// read as absent.
	Invalid []model.InvalidValue
}

// SubmissionKey is the bucket key of the task's submission in run runID:
// its result_s3_key, relative to the run's folder as the worker writes it,
// or, for a task reused from another run, that run's submission as it names
// it. (A worker's key is never taken to name another run's submission.)
func (t Task) SubmissionKey(runID string) string {
	if t.ReusedFrom != "" && strings.HasPrefix(t.ResultS3Key, model.RunPrefix("")) {
		return t.ResultS3Key
	}
	key := model.ResolveResultKey(runID, t.ResultS3Key)
	if key == "" && t.Status == model.TaskCompleted {
		key = model.SubmissionKey(runID, t.TaskID)
	}
	return key
}

// Outcome is what a run's Counts need of the task.
func (t Task) Outcome() model.TaskOutcome {
	done := t.Status == model.TaskCompleted
	return model.TaskOutcome{Status: t.Status, Correct: t.IsCorrect, Score: t.Score,
		// Unscorable data leaves a score of 0 (counted), no expected output none.
		Unscored:        done && t.Pairs != nil && *t.Pairs == 0 && t.Score == nil,
		Unanswered:      done && t.Unanswered(),
		AfterJobFailure: done && t.JobError != ""}
}

// LastError is the orchestration's record of the task's last failed
// attempt as a person reads it: the error type, and Batch's reason and the
// exit code when the job said.
func (t Task) LastError() string {
	if t.LastErrorType == "" {
		return ""
	}
	msg := t.LastErrorType
	switch {
	case t.Reason != "":
		msg += ": " + t.Reason
	case t.LastErrorType == model.ErrNoAnswer || t.GivenUp:
		msg += ": " + firstLine(t.LastErrorCause)
	}
	if t.ExitCode != nil {
		msg += fmt.Sprintf(" (exit code %d)", *t.ExitCode)
	}
	return msg
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// UnreadableCost tells whether the worker wrote a cost that cannot be read
// (it is then left out of every total, and counted beside it).
func (t Task) UnreadableCost() bool {
	for _, v := range t.Invalid {
		if v.Attribute == model.AttrCostUSD {
			return true
		}
	}
	return false
}

// Unanswered tells whether check-task found no usable answer in the task's submission.
func (t Task) Unanswered() bool { return t.AnsweredAttempts != nil && *t.AnsweredAttempts == 0 }

// Spent tells whether the record shows the model was paid: tokens or cost
// recorded, or a value that cannot be read (which may hide either).
func (t Task) Spent() bool {
	if t.TokensInput > 0 || t.TokensOutput > 0 {
		return true
	}
	if t.CostUSD != "" && t.CostUSD != "0" { // money.Cost writes zero as "0"
		return true
	}
	for _, v := range t.Invalid {
		switch v.Attribute {
		case model.AttrCostUSD, model.AttrTokensInput, model.AttrTokensOutput:
			return true
		}
	}
	return false
}

// taskAttrs are the attributes Task holds.
var taskAttrs = []string{model.AttrTaskID, model.AttrStatus, model.AttrRetryCount, model.AttrCostUSD,
	model.AttrTokensInput, model.AttrTokensOutput, model.AttrIsCorrect, model.AttrResultS3Key,
	model.AttrScore, model.AttrPairs, model.AttrPairsCorrect, model.AttrScoreError, model.AttrPermanentByUs,
	model.AttrLastErrorType, model.AttrLastErrorCause, model.AttrLastErrorReason, model.AttrLastExitCode,
	model.AttrAnsweredAttempts, model.AttrAttemptMarks, model.AttrDataSHA256, model.AttrJobError,
	model.AttrCountedAs, model.AttrCountOwner, model.AttrGivenUp, model.AttrError, model.AttrNoAnswerAttempt, model.AttrUpdatedAt,
	model.AttrComputeCostUSD, model.AttrComputeSeconds, model.AttrUnpricedJobs, model.AttrComputeAttempts, model.AttrComputeOwner,
	model.AttrNotedAttempt, model.AttrReusedFrom, model.AttrReusedCostUSD, model.AttrHistory}

func projection() expression.ProjectionBuilder {
	names := make([]expression.NameBuilder, len(taskAttrs))
	for i, a := range taskAttrs {
		names[i] = expression.Name(a)
	}
	return expression.NamesList(names[0], names[1:]...)
}

// taskFromItem reads a task record. What a worker writes is read as it
// writes it: a number may come as a string ("0.0012"), a boolean as "true";
// anything else unreadable is named in Invalid, never silently dropped.
func taskFromItem(raw map[string]types.AttributeValue) Task {
	it := item(raw)
	t := Task{
		TaskID:          it.str(model.AttrTaskID),
		Status:          it.str(model.AttrStatus),
		ResultS3Key:     it.str(model.AttrResultS3Key),
		PairsCorrect:    it.int(model.AttrPairsCorrect),
		ScoreError:      it.str(model.AttrScoreError),
		DataSHA256:      it.str(model.AttrDataSHA256),
		JobError:        it.str(model.AttrJobError),
		CountedAs:       it.str(model.AttrCountedAs),
		CountOwner:      it.str(model.AttrCountOwner),
		PermanentByUs:   it.bool(model.AttrPermanentByUs),
		GivenUp:         it.bool(model.AttrGivenUp),
		LastErrorType:   it.str(model.AttrLastErrorType),
		LastErrorCause:  it.str(model.AttrLastErrorCause),
		Reason:          it.str(model.AttrLastErrorReason),
		WorkerError:     it.str(model.AttrError),
		NoAnswerAttempt: it.int(model.AttrNoAnswerAttempt),
		NotedAttempt:    it.int(model.AttrNotedAttempt),
		ReusedFrom:      it.str(model.AttrReusedFrom),
		ReusedCostUSD:   it.num(model.AttrReusedCostUSD),
		UpdatedAt:       it.str(model.AttrUpdatedAt),
		// Written by check-task alone, always as numbers.
		ComputeCostUSD: it.num(model.AttrComputeCostUSD),
		ComputeSeconds: int64(it.int(model.AttrComputeSeconds)),
		UnpricedJobs:   it.int(model.AttrUnpricedJobs),
		ComputeOwner:   it.str(model.AttrComputeOwner),
	}
	if ns, ok := raw[model.AttrComputeAttempts].(*types.AttributeValueMemberNS); ok {
		for _, v := range ns.Value {
			if n, err := strconv.Atoi(v); err == nil {
				t.ComputeAttempts = append(t.ComputeAttempts, n)
			}
		}
	}
	if h, ok := raw[model.AttrHistory].(*types.AttributeValueMemberL); ok {
		_ = attributevalue.Unmarshal(h, &t.History) // written by ReleaseTask alone
	}
	if l, ok := raw[model.AttrAttemptMarks].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			m, _ := v.(*types.AttributeValueMemberS)
			if m == nil {
				m = &types.AttributeValueMemberS{}
			}
			t.Marks = append(t.Marks, m.Value)
		}
	}
	bad := func(attr, reason string) {
		t.Invalid = append(t.Invalid, model.InvalidValue{Attribute: attr, Value: it.text(attr), Reason: reason})
	}
	if v, ok := it.numeric(model.AttrCostUSD); ok {
		if cost, err := money.Cost(v); err == nil {
			t.CostUSD = cost
		} else {
			bad(model.AttrCostUSD, err.Error())
		}
	} else if it.has(model.AttrCostUSD) {
		bad(model.AttrCostUSD, "not a number")
	}
	for _, c := range []struct {
		attr string
		into *int64
	}{{model.AttrTokensInput, &t.TokensInput}, {model.AttrTokensOutput, &t.TokensOutput}, {model.AttrRetryCount, new(int64)}} {
		v, ok := it.numeric(c.attr)
		if !ok && !it.has(c.attr) {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil || n < 0 {
			bad(c.attr, "not a whole number of 0 or more")
			continue
		}
		*c.into = n
		if c.attr == model.AttrRetryCount {
			t.RetryCount = int(n)
		}
	}
	if it.has(model.AttrIsCorrect) {
		if b, ok := it.boolean(model.AttrIsCorrect); ok {
			t.IsCorrect = b
		} else {
			bad(model.AttrIsCorrect, "not a boolean")
		}
	}
	t.Score = it.floatPtr(model.AttrScore)
	t.Pairs = it.intPtr(model.AttrPairs)
	t.AnsweredAttempts = it.intPtr(model.AttrAnsweredAttempts)
	t.ExitCode = it.intPtr(model.AttrLastExitCode)
	return t
}

// GetTask reads a task record (strongly consistent). A missing task is a
// *model.TaskNotFoundError.
func (s *Store) GetTask(ctx context.Context, runID, taskID string) (Task, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.tasksTable,
		Key:            taskKey(runID, taskID),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Task{}, fmt.Errorf("get task %s of run %s: %w", taskID, runID, err)
	}
	if out.Item == nil {
		return Task{}, &model.TaskNotFoundError{RunID: runID, TaskID: taskID}
	}
	return taskFromItem(out.Item), nil
}

// Score is what check-task writes of a completed task's score.
type Score struct {
	// Pairs are the test pairs with an expected output; 0 leaves the task
	// unscored (Score nil).
	Pairs, PairsCorrect int
	Score               *float64
	// Error says why a completed task could not be scored (it then scores
	// 0), or what of its submission could not be read.
	Error string
	// Answered is how many attempts hold a readable, non-empty grid.
	Answered int
	// Marks are the attempts' marks as scored; DataSHA256 the task data's digest.
	Marks      []string
	DataSHA256 string
	// JobError is the job's failure when it failed after the worker
	// completed the task.
	JobError string
	// Owner is the calling handler's id (NewOwner): the write also elects
	// the owner of the task's count (counted_as, count_owner).
	Owner string
}

// ErrNotCompleted is the answer of a write that expects the task COMPLETED
// as check-task read it, when it is not (any more): nothing was written.
var ErrNotCompleted = errors.New("task is not COMPLETED as it was read")

// SaveScore writes a completed task's score, once: on condition that the
// task is still COMPLETED and not scored yet (ErrNotCompleted otherwise).
func (s *Store) SaveScore(ctx context.Context, runID, taskID string, sc Score) error {
	upd := expression.Set(expression.Name(model.AttrPairs), expression.Value(sc.Pairs)).
		Set(expression.Name(model.AttrPairsCorrect), expression.Value(sc.PairsCorrect)).
		Set(expression.Name(model.AttrIsCorrect), expression.Value(sc.Pairs > 0 && sc.PairsCorrect == sc.Pairs)).
		Set(expression.Name(model.AttrAnsweredAttempts), expression.Value(sc.Answered)).
		Set(expression.Name(model.AttrAttemptMarks), expression.Value(marksValue(sc.Marks)))
	set := func(attr, v string) {
		if v != "" {
			upd = upd.Set(expression.Name(attr), expression.Value(v))
		} else {
			upd = upd.Remove(expression.Name(attr))
		}
	}
	set(model.AttrScoreError, sc.Error)
	set(model.AttrDataSHA256, sc.DataSHA256)
	set(model.AttrJobError, sc.JobError)
	if sc.Owner != "" {
		upd = claim(upd, model.TaskCompleted, sc.Owner)
	}
	if sc.Score != nil {
		upd = upd.Set(expression.Name(model.AttrScore), expression.Value(*sc.Score))
	} else {
		upd = upd.Remove(expression.Name(model.AttrScore))
	}
	cond := expression.Name(model.AttrStatus).Equal(expression.Value(model.TaskCompleted)).
		And(expression.AttributeNotExists(expression.Name(model.AttrPairs)))
	err := s.updateTaskIf(ctx, runID, taskID, upd, cond)
	if isConditionFailed(err) {
		return ErrNotCompleted
	}
	if err != nil {
		return fmt.Errorf("save score of task %s in run %s: %w", taskID, runID, err)
	}
	return nil
}

// EachTask calls fn for every task of the run, all pages, strongly consistent.
func (s *Store) EachTask(ctx context.Context, runID string, fn func(Task) error) error {
	keyCond := expression.Key(model.AttrRunID).Equal(expression.Value(runID))
	expr, err := expression.NewBuilder().WithKeyCondition(keyCond).WithProjection(projection()).Build()
	if err != nil {
		return fmt.Errorf("build query: %w", err)
	}
	pages := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:                 &s.tasksTable,
		KeyConditionExpression:    expr.KeyCondition(),
		ProjectionExpression:      expr.Projection(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ConsistentRead:            aws.Bool(true),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("query tasks of %s: %w", runID, err)
		}
		for _, raw := range page.Items {
			if err := fn(taskFromItem(raw)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Aggregation is what aggregate writes back to the run record: the counters
// the worker kept adding to, set to what the task records say.
type Aggregation struct {
	CompletedTasks    int
	FailedTasks       int
	TotalCostUSD      string
	ComputeCostUSD    string
	ComputeSeconds    int64
	UnpricedJobs      int
	TotalInputTokens  int64
	TotalOutputTokens int64
	UnreadableCosts   int
	Accuracy          float64
	Score             *float64
	ScoredTasks       int
	// NotRunTasks and ScoreOverRun matter for a run that has ended (the
	// reaper aggregates a stopped run; complete never sees it).
	NotRunTasks  int
	ScoreOverRun *float64
	At           string
}

// SaveAggregation updates a run's counters with aggregate's figures, ours
// and the public ones alike (the task records decide), and clears the
// tokens a handler that died mid-count left behind.
func (s *Store) SaveAggregation(ctx context.Context, runID string, a Aggregation) error {
	figures := map[string]types.AttributeValue{
		model.AttrCountedCompleted:       number(a.CompletedTasks),
		model.AttrCountedFailed:          number(a.FailedTasks),
		model.AttrCountedCostUSD:         &types.AttributeValueMemberN{Value: a.TotalCostUSD},
		model.AttrCountedInputTokens:     int64Number(a.TotalInputTokens),
		model.AttrCountedOutputTokens:    int64Number(a.TotalOutputTokens),
		model.AttrCountedUnreadableCosts: number(a.UnreadableCosts),
	}
	upd := expression.Set(expression.Name(model.AttrAccuracy), expression.Value(a.Accuracy)).
		Set(expression.Name(model.AttrScoredTasks), expression.Value(a.ScoredTasks)).
		Set(expression.Name(model.AttrNotRunTasks), expression.Value(a.NotRunTasks)).
		Set(expression.Name(model.AttrComputeCostUSD), expression.Value(&types.AttributeValueMemberN{Value: cmpOr(a.ComputeCostUSD, "0")})).
		Set(expression.Name(model.AttrComputeSeconds), expression.Value(a.ComputeSeconds)).
		Set(expression.Name(model.AttrUnpricedJobs), expression.Value(a.UnpricedJobs)).
		Set(expression.Name(model.AttrUpdatedAt), expression.Value(a.At)).
		Remove(expression.Name(model.AttrCounting))
	for _, c := range counters {
		v := expression.Value(figures[c.ours])
		upd = upd.Set(expression.Name(c.ours), v).Set(expression.Name(c.public), v)
	}
	if a.Score != nil {
		upd = upd.Set(expression.Name(model.AttrScore), expression.Value(*a.Score))
	}
	if a.ScoreOverRun != nil {
		upd = upd.Set(expression.Name(model.AttrScoreOverRun), expression.Value(*a.ScoreOverRun))
	}
	return s.updateRun(ctx, runID, upd, "save aggregation of run")
}

// Completion is what complete writes to the run record: the final status
// and the figures it follows from.
type Completion struct {
	Status string
	// StopReason, for a STOPPED run, is the reason as it ends.
	StopReason      string
	CompletedAt     string
	DurationSeconds float64
	// ActiveSeconds is the sum of the run's executions' run times;
	// Executions how many it has (the last one ends now; 0: none listed).
	ActiveSeconds float64
	Executions    int
	Totals        model.Totals
}

// CompleteRun finishes a RUNNING run: its final status, completion time,
// duration and figures, in one conditional update. A run that is not
// RUNNING (completed before, or marked FAILED) is left as it is:
// ErrRunFinished.
func (s *Store) CompleteRun(ctx context.Context, runID string, c Completion) error {
	t := c.Totals
	upd := expression.Set(expression.Name(model.AttrStatus), expression.Value(c.Status)).
		Set(expression.Name(model.AttrCompletedAt), expression.Value(c.CompletedAt)).
		Set(expression.Name(model.AttrDurationSeconds), expression.Value(c.DurationSeconds)).
		Set(expression.Name(model.AttrActiveSeconds), expression.Value(c.ActiveSeconds)).
		Set(expression.Name(model.AttrUpdatedAt), expression.Value(c.CompletedAt)).
		Set(expression.Name(model.AttrCompletedTasks), expression.Value(t.CompletedTasks)).
		Set(expression.Name(model.AttrFailedTasks), expression.Value(t.FailedTasks)).
		Set(expression.Name(model.AttrTotalCostUSD), expression.Value(&types.AttributeValueMemberN{Value: string(t.TotalCostUSD)})).
		Set(expression.Name(model.AttrComputeCostUSD), expression.Value(&types.AttributeValueMemberN{Value: cmpOr(string(t.ComputeCostUSD), "0")})).
		Set(expression.Name(model.AttrComputeSeconds), expression.Value(t.ComputeSeconds)).
		Set(expression.Name(model.AttrUnpricedJobs), expression.Value(t.UnpricedJobs)).
		Set(expression.Name(model.AttrAccuracy), expression.Value(t.Accuracy)).
		Set(expression.Name(model.AttrScoredTasks), expression.Value(t.ScoredTasks)).
		Set(expression.Name(model.AttrUnansweredTasks), expression.Value(t.UnansweredTasks)).
		Set(expression.Name(model.AttrCompletedAfterJobFailure), expression.Value(t.CompletedAfterJobFailure)).
		Set(expression.Name(model.AttrUnreadableCosts), expression.Value(t.UnreadableCosts)).
		Set(expression.Name(model.AttrNotRunTasks), expression.Value(t.NotRunTasks))
	if t.ScoreOverRun != nil {
		upd = upd.Set(expression.Name(model.AttrScoreOverRun), expression.Value(*t.ScoreOverRun))
	}
	if c.StopReason != "" {
		upd = upd.Set(expression.Name(model.AttrStopReason), expression.Value(c.StopReason))
	}
	if c.Executions > 0 {
		upd = upd.Set(expression.Name(fmt.Sprintf("%s[%d].ended_at", model.AttrExecutions, c.Executions-1)), expression.Value(c.CompletedAt))
	}
	if t.Score != nil {
		upd = upd.Set(expression.Name(model.AttrScore), expression.Value(*t.Score))
	}
	if t.StrictScore != nil {
		upd = upd.Set(expression.Name(model.AttrStrictScore), expression.Value(*t.StrictScore))
	}
	err := s.updateRunIf(ctx, runID, upd, expression.Name(model.AttrStatus).Equal(expression.Value(model.RunRunning)))
	if isConditionFailed(err) {
		if _, err := s.GetRun(ctx, runID); err != nil {
			return err
		}
		return ErrRunFinished
	}
	if err != nil {
		return fmt.Errorf("complete run %s: %w", runID, err)
	}
	return nil
}

// updateRun applies an update to an existing run record; a missing run is a
// *model.RunNotFoundError and nothing is written.
func (s *Store) updateRun(ctx context.Context, runID string, upd expression.UpdateBuilder, what string) error {
	err := s.updateRunIf(ctx, runID, upd, expression.AttributeExists(expression.Name(model.AttrRunID)))
	if isConditionFailed(err) {
		return &model.RunNotFoundError{RunID: runID}
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, runID, err)
	}
	return nil
}

// updateRunIf applies upd to the run record when cond holds; a failed
// condition is DynamoDB's ConditionalCheckFailedException, nothing written.
func (s *Store) updateRunIf(ctx context.Context, runID string, upd expression.UpdateBuilder, cond expression.ConditionBuilder) error {
	_, err := s.update(ctx, s.runsTable, runKey(runID), upd, cond, types.ReturnValueNone)
	return err
}

// update applies upd to the item at key of table when cond holds and
// returns the item as rv asks. A failed condition is DynamoDB's
// ConditionalCheckFailedException, returned as it is, nothing written.
func (s *Store) update(ctx context.Context, table string, key map[string]types.AttributeValue, upd expression.UpdateBuilder,
	cond expression.ConditionBuilder, rv types.ReturnValue) (map[string]types.AttributeValue, error) {
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return nil, fmt.Errorf("build update: %w", err)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &table,
		Key:                       key,
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ReturnValues:              rv,
	})
	if err != nil {
		return nil, err
	}
	return out.Attributes, nil
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// cmpOr is s, or def when s is empty.
func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func number(n int) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.Itoa(n)}
}

// item reads typed attributes from a raw item; a missing or mistyped
// attribute reads as the zero value.
type item map[string]types.AttributeValue

func (it item) str(name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func (it item) num(name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberN); ok {
		return v.Value
	}
	return ""
}

func (it item) int(name string) int {
	n, _ := strconv.Atoi(it.num(name))
	return n
}

func (it item) float(name string) float64 {
	f, _ := strconv.ParseFloat(it.num(name), 64)
	return f
}

func (it item) has(name string) bool {
	_, ok := it[name]
	return ok
}

// numeric is a number attribute's text, or a string attribute's when it
// holds one (trimmed).
func (it item) numeric(name string) (string, bool) {
	switch v := it[name].(type) {
	case *types.AttributeValueMemberN:
		return v.Value, true
	case *types.AttributeValueMemberS:
		s := strings.TrimSpace(v.Value)
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return s, true
		}
	}
	return "", false
}

// boolean is a BOOL attribute, or a string "true"/"false".
func (it item) boolean(name string) (value, ok bool) {
	switch v := it[name].(type) {
	case *types.AttributeValueMemberBOOL:
		return v.Value, true
	case *types.AttributeValueMemberS:
		b, err := strconv.ParseBool(strings.TrimSpace(v.Value))
		return b, err == nil
	}
	return false, false
}

// text shows any attribute's value as a person reads it (cut at 200).
func (it item) text(name string) string {
	var s string
	switch v := it[name].(type) {
	case *types.AttributeValueMemberS:
		s = strconv.Quote(v.Value)
	case *types.AttributeValueMemberN:
		s = v.Value
	case *types.AttributeValueMemberBOOL:
		s = strconv.FormatBool(v.Value)
	case *types.AttributeValueMemberNULL:
		s = "null"
	default:
		s = fmt.Sprintf("%T", v)
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func (it item) floatPtr(name string) *float64 {
	if it.num(name) == "" {
		return nil
	}
	f := it.float(name)
	return &f
}

func (it item) intPtr(name string) *int {
	if it.num(name) == "" {
		return nil
	}
	v := it.int(name)
	return &v
}

func (it item) bool(name string) bool {
	v, ok := it[name].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}
