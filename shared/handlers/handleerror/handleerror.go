// Package handleerror records a failed attempt of a task and decides whether
// the state machine retries it. The orchestration owns the attempt count:
// retry_count is set to the attempt's number, whether or not the worker
// counted the attempt itself.
package handleerror

import (
	"context"
	"fmt"
	"time"

	"arcbench/shared/config"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// Store is what handle-error needs of the run store.
type Store interface {
	RecordTaskError(ctx context.Context, e store.TaskError) (store.ErrorRecord, error)
	Count(ctx context.Context, o store.Outcome) error
}

var _ Store = (*store.Store)(nil)

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
	MaxRetries int
	// RetryBackoff is the first retry's wait, in seconds; it doubles for
	// each retry after that, up to config.MaxRetryBackoff.
	RetryBackoff int
	Now          func() time.Time
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
// MaxRetries the task is FAILED (so the next attempt's claim succeeds) and the
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
		Permanent: in.Attempt >= h.MaxRetries || (exitCode != nil && *exitCode == ExitConfigError),
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
		out.WaitSeconds = Backoff(h.RetryBackoff, in.Attempt)
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
	return out, nil
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
	}
	return nil
}
