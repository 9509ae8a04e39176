// Package handleerror records a failed attempt of a task and decides whether
// the state machine retries it. The orchestration owns the attempt count:
// retry_count is set to the attempt's number, whether or not the worker
// counted the attempt itself.
package handleerror

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"arcbench/shared/config"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// Store is what handle-error needs of the run store.
type Store interface {
	RecordTaskError(ctx context.Context, e store.TaskError) (store.ErrorRecord, error)
	CountPermanentFailure(ctx context.Context, runID, at string) error
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
// with its configuration-error code) it is FAILED_PERMANENT, and the run's
// failed_tasks grows by one unless the worker (or an earlier report) counted it. A COMPLETED
// task is never changed: the answer is then COMPLETED. Repeating a report
// changes nothing more.
func (h *Handler) Handle(ctx context.Context, in model.HandleErrorInput) (model.HandleErrorOutput, error) {
	if err := validate(in); err != nil {
		return model.HandleErrorOutput{}, err
	}
	at := model.FormatTime(h.Now())
	reason, exitCode := fromJobDescription(in.Error.Cause)
	rec, err := h.Store.RecordTaskError(ctx, store.TaskError{
		RunID:     in.RunID,
		TaskID:    in.TaskID,
		Attempt:   in.Attempt,
		ErrorType: in.Error.Error,
		Cause:     truncate(in.Error.Cause, MaxCauseLength, truncatedMark),
		Reason:    reason,
		ExitCode:  exitCode,
		At:        at,
		// Exit 2 is the worker's configuration error: no retry can fix it.
		Permanent: in.Attempt >= h.MaxRetries || (exitCode != nil && *exitCode == ExitConfigError),
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
		if rec.OwesRunCount {
			if err := h.Store.CountPermanentFailure(ctx, in.RunID, at); err != nil {
				return model.HandleErrorOutput{}, err
			}
		}
		log = log.With("counted_in_run_now", rec.OwesRunCount)
	}
	out := model.HandleErrorOutput{
		RunID:        in.RunID,
		TaskID:       in.TaskID,
		Status:       answer,
		RetryCount:   rec.RetryCount,
		ErrorMessage: in.Error.Error + ": " + truncate(in.Error.Cause, MessageCauseLength, ""),
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

// truncate keeps the first n characters (not bytes) of s, adding mark when it cut.
func truncate(s string, n int, mark string) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	cut := 0
	for i := range s {
		if n == 0 {
			cut = i
			break
		}
		n--
	}
	return s[:cut] + mark
}

// jobDescription is the part of a Batch job description (the Cause of a
// failed .sync job, PascalCase from Step Functions or camelCase from Batch:
// JSON field matching is case-insensitive) that tells an operator why.
type jobDescription struct {
	JobID        string `json:"jobId"`
	Status       string `json:"status"`
	StatusReason string `json:"statusReason"`
	Container    *struct {
		ExitCode *int   `json:"exitCode"`
		Reason   string `json:"reason"`
	} `json:"container"`
	Attempts []struct {
		StatusReason string `json:"statusReason"`
		Container    struct {
			ExitCode *int   `json:"exitCode"`
			Reason   string `json:"reason"`
		} `json:"container"`
	} `json:"attempts"`
}

// fromJobDescription returns the status reason and the container's exit code
// when cause is a Batch job description, and nothing otherwise.
func fromJobDescription(cause string) (reason string, exitCode *int) {
	var job jobDescription
	if json.Unmarshal([]byte(cause), &job) != nil || (job.JobID == "" && job.Status == "") {
		return "", nil
	}
	reason = job.StatusReason
	if job.Container != nil {
		exitCode = job.Container.ExitCode
		if reason == "" {
			reason = job.Container.Reason
		}
	}
	if n := len(job.Attempts); n > 0 {
		last := job.Attempts[n-1]
		if exitCode == nil {
			exitCode = last.Container.ExitCode
		}
		if reason == "" {
			reason = last.StatusReason
		}
		if reason == "" {
			reason = last.Container.Reason
		}
	}
	return reason, exitCode
}
