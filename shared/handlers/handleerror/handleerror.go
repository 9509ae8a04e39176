// Package handleerror records a failed attempt of a task and decides whether
// the state machine retries it. The orchestration owns the attempt count:
// retry_count is set to the attempt's number, whether or not the worker
// counted the attempt itself.
package handleerror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"arcbench/shared/config"
	"arcbench/shared/lambdaio"
	"arcbench/shared/metrics"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// Store is what handle-error needs of the run store.
type Store interface {
	RecordTaskError(ctx context.Context, e store.TaskError) (store.ErrorRecord, error)
	Count(ctx context.Context, o store.Outcome) error
	NoteFailure(ctx context.Context, runID, reason, at string) (store.Streak, error)
	Stop(ctx context.Context, runID, kind, reason, at string, final bool) (bool, error)
	NoteFailedAttempt(ctx context.Context, runID, taskID string, attempt int) (bool, error)
}

var _ Store = (*store.Store)(nil)

// Executions is the part of the Step Functions API handle-error uses: it
// stops the execution of a run that stopped itself early, which terminates
// the run's queued and running jobs.
type Executions interface {
	StopExecution(ctx context.Context, in *sfn.StopExecutionInput, opts ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error)
}

var _ Executions = (*sfn.Client)(nil)

// Metrics publishes the stage's metrics (AttemptFailed).
type Metrics interface {
	Put(ctx context.Context, data ...types.MetricDatum) error
}

var _ Metrics = (*metrics.Publisher)(nil)

// MetricsTimeout bounds the CloudWatch call: metrics never hold a task up.
const MetricsTimeout = 3 * time.Second

const (
	// MaxCauseLength bounds the cause kept on the task record (DynamoDB items
	// are limited to 400 KB; a Batch job description can be large).
	MaxCauseLength = 4000
	// MessageCauseLength is how much of the cause goes into error_message.
	MessageCauseLength = 200
	truncatedMark      = "... (truncated)"
	// ExitConfigError is the worker contract's exit code for a configuration
	// error: the task fails for good at once.
	ExitConfigError = 2
)

// Handler is the handle-error Lambda.
type Handler struct {
	Store      Store
	Executions Executions
	MaxRetries int
	// RetryBackoff is the first retry's wait, in seconds; it doubles for
	// each retry after that, up to config.MaxRetryBackoff.
	RetryBackoff int
	Now          func() time.Time
	// Metrics counts the failed attempts it records (nil: not counted).
	Metrics Metrics
}

// Backoff is the wait before the retry that follows failed attempt n (1 for
// the first): base, doubled for each attempt after the first, capped.
func Backoff(base, attempt int) int {
	wait := base
	for i := 1; i < attempt && wait < config.MaxRetryBackoff; i++ {
		wait *= 2
	}
	return min(wait, config.MaxRetryBackoff)
}

// Handle records one failed attempt: retry_count becomes its number. Below
// MaxRetries (counted from the attempt base: a resumed task's attempts that
// do not count against it) the task is FAILED (so the next attempt's claim succeeds) and the
// answer RETRY_SCHEDULED; at MaxRetries (or at once when the worker exited
// with its configuration-error code) it is FAILED_PERMANENT, counted once in
// the run's live counters (store.Count) whoever made it so. A COMPLETED
// task is never changed: the answer is then COMPLETED. Repeating a report
// changes nothing more.
func (h *Handler) Handle(ctx context.Context, in model.HandleErrorInput) (model.HandleErrorOutput, error) {
	if err := validate(in); err != nil {
		return model.HandleErrorOutput{}, err
	}
	at := model.FormatTime(h.Now())
	owner := store.NewOwner()
	reason, exitCode := model.JobFailure(in.Error.Cause)
	rec, err := h.Store.RecordTaskError(ctx, store.TaskError{
		RunID:     in.RunID,
		TaskID:    in.TaskID,
		Attempt:   in.Attempt,
		ErrorType: in.Error.Error,
		Cause:     model.Truncate(in.Error.Cause, MaxCauseLength, truncatedMark),
		Reason:    reason,
		ExitCode:  exitCode,
		At:        at,
		// Exit 2 is the worker's configuration error: no retry can fix it.
		Permanent: in.Attempt-in.AttemptBase >= h.MaxRetries || (exitCode != nil && *exitCode == ExitConfigError),
		Owner:     owner,
	})
	if err != nil {
		return model.HandleErrorOutput{}, err
	}
	log := lambdaio.Logger(ctx).With("run_id", in.RunID, "task_id", in.TaskID)
	answer := model.RetryScheduled
	switch rec.Status {
	case model.TaskCompleted:
		answer = model.TaskCompleted
	case model.TaskFailedPermanent:
		answer = model.FailedPermanent
		// Counted once, by the call its write elected, whoever made it
		// FAILED_PERMANENT and whatever the worker added to failed_tasks.
		t := rec.Task
		countNow := t.CountedAs == model.TaskFailedPermanent && t.CountOwner == owner
		if countNow {
			if err := h.Store.Count(ctx, store.Outcome{RunID: in.RunID, TaskID: in.TaskID, Status: model.TaskFailedPermanent,
				CostUSD: t.CostUSD, TokensIn: t.TokensInput, TokensOut: t.TokensOutput, UnreadableCost: t.UnreadableCost(), At: at}); err != nil {
				return model.HandleErrorOutput{}, err
			}
		}
		log = log.With("counted_in_run_now", countNow)
	}
	out := model.HandleErrorOutput{
		RunID:        in.RunID,
		TaskID:       in.TaskID,
		Status:       answer,
		RetryCount:   rec.RetryCount,
		ErrorMessage: in.Error.Error + ": " + model.Truncate(in.Error.Cause, MessageCauseLength, ""),
	}
	if answer == model.RetryScheduled {
		out.WaitSeconds = Backoff(h.RetryBackoff, in.Attempt-in.AttemptBase)
	}
	if answer == model.TaskCompleted {
		log.Info("task is completed: the failure report changes nothing", "attempt", in.Attempt, "error", in.Error.Error)
		return out, nil
	}
	attrs := []any{"status", answer, "attempt", in.Attempt, "retry_count", rec.RetryCount, "max_retries", h.MaxRetries, "error", in.Error.Error}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	}
	if exitCode != nil {
		attrs = append(attrs, "exit_code", *exitCode)
	}
	log.Warn("task attempt failed", attrs...)
	// A failed attempt counts once, in the metric and in the run's failure
	// streak, however often it is reported (a lost response, a retried
	// Lambda, a late report of an earlier attempt): the first report notes
	// it on the task. A call that dies between the note and the streak
	// leaves the streak one short, never one over.
	first, err := h.Store.NoteFailedAttempt(ctx, in.RunID, in.TaskID, in.Attempt)
	if err != nil {
		return model.HandleErrorOutput{}, err
	}
	if !first {
		log.Info("attempt reported before: not counted again", "attempt", in.Attempt)
		return out, nil
	}
	h.countAttempt(ctx, log, in)
	if err := h.noteFailure(ctx, in, failureReason(in.Error, reason, exitCode), at); err != nil {
		return model.HandleErrorOutput{}, err
	}
	return out, nil
}

// noteFailure adds the failed attempt to the run's failure streak and, when
// the streak reaches the run's stop_after_failures, stops the run early: it
// is STOPPED with the reason and the most common error, and its execution is
// stopped (Step Functions then terminates its queued and running jobs).
func (h *Handler) noteFailure(ctx context.Context, in model.HandleErrorInput, why, at string) error {
	streak, err := h.Store.NoteFailure(ctx, in.RunID, why, at)
	if err != nil || !streak.Reached() {
		return err
	}
	reason := fmt.Sprintf("%d attempts in a row failed: %s", streak.Count, streak.Commonest())
	stopped, err := h.Store.Stop(ctx, in.RunID, model.StopFailures, reason, at, true)
	if errors.Is(err, store.ErrRunFinished) || (err == nil && !stopped) {
		return nil // finished, or stopped before: nothing more to do
	}
	if err != nil {
		return err
	}
	log := lambdaio.Logger(ctx).With("run_id", in.RunID, "task_id", in.TaskID)
	log.Warn("run stopped early", "reason", reason, "execution_id", streak.ExecutionID)
	if streak.ExecutionID == "" || h.Executions == nil {
		return nil // no execution to stop (a run made by invoking initialize): no attempt starts any more
	}
	if _, err := h.Executions.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(streak.ExecutionID),
		Error: aws.String(model.ErrRunStoppedEarly), Cause: aws.String(reason)}); err != nil {
		// The run is STOPPED and starts no attempt (the state machine reads
		// its stop_reason before each job); its running jobs run out.
		log.Error("the run's execution could not be stopped: its running jobs run on", "error", err.Error())
	}
	return nil
}

// countAttempt publishes AttemptFailed for an attempt reported for the
// first time. Never fatal: the metric is not worth a retried task.
func (h *Handler) countAttempt(ctx context.Context, log *slog.Logger, in model.HandleErrorInput) {
	if h.Metrics == nil {
		return
	}
	mctx, cancel := context.WithTimeout(ctx, MetricsTimeout)
	defer cancel()
	if err := h.Metrics.Put(mctx, metrics.AttemptFailedDatum(in.Error.Error, h.Now())); err != nil {
		log.Error("AttemptFailed not published", "error", err.Error())
	}
}

// failureReason names a failed attempt's cause as the failure streak counts
// it: the same cause on different tasks is one reason ("NoAnswer: Error code:
// 500", "States.TaskFailed: Essential container in task exited (exit code 1)").
func failureReason(e *model.TaskError, jobReason string, exitCode *int) string {
	switch {
	case jobReason != "":
		s := e.Error + ": " + jobReason
		if exitCode != nil {
			s += fmt.Sprintf(" (exit code %d)", *exitCode)
		}
		return s
	case e.Error == model.ErrNoAnswer:
		if _, said, ok := strings.Cut(e.Cause, model.WorkerSaid); ok {
			return e.Error + ": " + said
		}
	}
	return e.Error
}

func validate(in model.HandleErrorInput) error {
	switch {
	case in.RunID == "":
		return &model.InvalidInputError{Field: "run_id", Reason: "is required"}
	case in.TaskID == "":
		return &model.InvalidInputError{Field: "task_id", Reason: "is required"}
	case in.Error == nil:
		return &model.InvalidInputError{Field: "error", Reason: "is required: an object with Error and Cause"}
	case in.Attempt < 1:
		return &model.InvalidInputError{Field: "attempt", Reason: fmt.Sprintf("must be the failed attempt's number, 1 or more, got %d", in.Attempt)}
	case in.AttemptBase < 0 || in.AttemptBase >= in.Attempt:
		return &model.InvalidInputError{Field: "attempt_base", Reason: fmt.Sprintf("must be 0 or more and below attempt (%d), got %d", in.Attempt, in.AttemptBase)}
	}
	return nil
}
