// Package model declares the facts every part of arcbench shares: run and task
// statuses, the attribute names of the run and task records, the events each
// handler takes and returns, and the typed errors the state machine matches on.
package model

import "time"

// Run statuses (the runs table's status attribute).
const (
	RunRunning             = "RUNNING"
	RunCompleted           = "COMPLETED"
	RunCompletedWithErrors = "COMPLETED_WITH_ERRORS"
	RunFailed              = "FAILED"
)

// Task statuses (the tasks table's status attribute).
const (
	TaskPending         = "PENDING"
	TaskInProgress      = "IN_PROGRESS"
	TaskCompleted       = "COMPLETED"
	TaskFailed          = "FAILED"
	TaskFailedPermanent = "FAILED_PERMANENT"
)

// Answers of handle-error: what the state machine's choice state branches on.
const (
	RetryScheduled  = "RETRY_SCHEDULED"
	FailedPermanent = TaskFailedPermanent
)

// Attribute names of the runs and tasks tables.
const (
	AttrRunID           = "run_id"
	AttrTaskID          = "task_id"
	AttrConfigName      = "config_name"
	AttrDataSource      = "data_source"
	AttrStatus          = "status"
	AttrCreatedAt       = "created_at"
	AttrUpdatedAt       = "updated_at"
	AttrTriggeredBy     = "triggered_by"
	AttrCommitSHA       = "commit_sha"
	AttrExecutionID     = "execution_id"
	AttrTotalTasks      = "total_tasks"
	AttrCompletedTasks  = "completed_tasks"
	AttrFailedTasks     = "failed_tasks"
	AttrTotalCostUSD    = "total_cost_usd"
	AttrAccuracy        = "accuracy"
	AttrCompletedAt     = "completed_at"
	AttrDurationSeconds = "duration_seconds"

	AttrRetryCount      = "retry_count"
	AttrLastErrorType   = "last_error_type"
	AttrLastErrorCause  = "last_error_cause"
	AttrLastErrorAt     = "last_error_at"
	AttrLastErrorReason = "last_error_reason"
	AttrLastExitCode    = "last_exit_code"
	// AttrLastErrorAttempt identifies the failed attempt last counted, so a
	// retried report of the same attempt is not counted again.
	AttrLastErrorAttempt = "last_error_attempt"
	// AttrFailedTaskIDs is the run record's set of permanently failed task
	// ids: what makes failed_tasks count each task once, and what a retry of
	// the run starts from.
	AttrFailedTaskIDs = "failed_task_ids"
	AttrCostUSD       = "cost_usd"
	AttrIsCorrect     = "is_correct"
	AttrResultS3Key   = "result_s3_key"
	AttrTokensInput   = "tokens_input"
	AttrTokensOutput  = "tokens_output"
)

// Index names of the runs table.
const (
	IndexConfigCreated = "config-created-index"
	// IndexExecution finds the run of an execution (the run reaper's lookup).
	IndexExecution = "execution-index"
)

// AttrProvider is the rate-limits table's key (the worker's table).
const AttrProvider = "provider"

// The handlers' names: their folders under functions/, the suffix of their
// Lambda function names, the names `arcbench invoke` takes.
const (
	HandlerInitialize  = "initialize"
	HandlerHandleError = "handle-error"
	HandlerAggregate   = "aggregate"
	HandlerComplete    = "complete"
)

// Handlers lists the handlers in the order the state machine runs them.
var Handlers = []string{HandlerInitialize, HandlerHandleError, HandlerAggregate, HandlerComplete}

// TimeLayout is how every timestamp is written: UTC, fixed width (so that
// strings sort as times do, as the config-created-index relies on), milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime writes t in TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// DefaultDataSource is the data source of a run whose input names none.
const DefaultDataSource = "evaluation"

// Bucket layout.

// TaskDataKey is where the data of one task lives in the bucket.
func TaskDataKey(dataSource, taskID string) string {
	return "tasks/" + dataSource + "/" + taskID + ".json"
}

// SubmissionKey is where the worker writes its answer to one task.
func SubmissionKey(runID, taskID string) string {
	return "runs/" + runID + "/submissions/" + taskID + ".json"
}

// ItemsKey is the run's task list as the Map reads it (a JSON list of task
// ids): the list never travels through the state machine's state.
func ItemsKey(runID string) string {
	return "runs/" + runID + "/items.json"
}

// TaskListPrefix holds task lists too large for an execution's input,
// uploaded for initialize to read (its task_list_key).
const TaskListPrefix = "inputs/"

// InlineTaskListLimit is the most bytes of task ids (as JSON) an execution's
// input carries; a longer list is uploaded under TaskListPrefix, far from the
// 256 KiB quota on an execution's input.
const InlineTaskListLimit = 32 << 10

// MapResultsPrefix is where the task Map's child results are written.
const MapResultsPrefix = "runs/map-results"

// AggregatedKey is where aggregate writes a run's results.
func AggregatedKey(runID string) string {
	return "runs/" + runID + "/results/aggregated.json"
}

// Counts are a run's tasks by outcome, as aggregate and `arcbench watch`
// count them: COMPLETED (and correct among them), FAILED or FAILED_PERMANENT
// as failed, anything else pending.
type Counts struct {
	Total, Completed, Correct, Failed, Pending int
}

// Add counts one task.
func (c *Counts) Add(status string, correct bool) {
	c.Total++
	switch status {
	case TaskCompleted:
		c.Completed++
		if correct {
			c.Correct++
		}
	case TaskFailed, TaskFailedPermanent:
		c.Failed++
	default:
		c.Pending++
	}
}
