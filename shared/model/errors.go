package model

import "fmt"

// The errors below are told apart by the state machine through their type
// name (the Lambda errorType): bad input and missing records are never
// retried; anything else is a service fault and is.

// InvalidInputError is bad input: it names the field and why. Nothing has been
// written when a handler returns it.
type InvalidInputError struct {
	Field  string
	Reason string
}

func (e *InvalidInputError) Error() string {
	return fmt.Sprintf("invalid input: %s: %s", e.Field, e.Reason)
}

// RunNotFoundError says the run named in the input has no record.
type RunNotFoundError struct {
	RunID string
}

func (e *RunNotFoundError) Error() string {
	return fmt.Sprintf("run %q not found", e.RunID)
}

// TaskNotFoundError says the task named in the input has no record in its run.
type TaskNotFoundError struct {
	RunID  string
	TaskID string
}

func (e *TaskNotFoundError) Error() string {
	return fmt.Sprintf("task %q of run %q not found", e.TaskID, e.RunID)
}

// InconsistentRunError is a run whose task records do not add up to its
// total_tasks: some are missing. No retry can fix it.
type InconsistentRunError struct {
	RunID         string
	Want, Records int
}

func (e *InconsistentRunError) Error() string {
	return fmt.Sprintf("run %q has %d task records, its record says %d: it cannot be completed from its tasks", e.RunID, e.Records, e.Want)
}

// RunBusyError says a run cannot be resumed now: an execution of it is
// still running, or its end is still being recorded. No retry of the same
// call can help; the operator tries again later.
type RunBusyError struct {
	RunID  string
	Reason string
}

func (e *RunBusyError) Error() string {
	return fmt.Sprintf("run %s cannot be resumed now: %s", e.RunID, e.Reason)
}

// Error type names as Lambda reports them (and Step Functions matches them).
const (
	ErrInvalidInput = "InvalidInputError"
	ErrRunNotFound  = "RunNotFoundError"
	ErrTaskNotFound = "TaskNotFoundError"
	ErrInconsistent = "InconsistentRunError"
	ErrRunBusy      = "RunBusyError"
	ErrService      = "ServiceError"
	// ErrRunStopped is the error of a run an operator stopped (`arcbench
	// stop`): its execution's and its run record's.
	ErrRunStopped = "RunStopped"
	// ErrRunStoppedEarly is the error of the execution of a run that
	// stopped itself: too many attempts in a row failed.
	ErrRunStoppedEarly = "RunStoppedEarly"
)
