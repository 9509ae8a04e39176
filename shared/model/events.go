package model

import (
	"encoding/json"
	"fmt"

	"arcbench/shared/money"
)

// TaskIDs is a list of task ids that, decoded from JSON, names the element
// that is not a string (task_ids[3]), not just the list.
type TaskIDs []string

// UnmarshalJSON implements json.Unmarshaler.
func (ids *TaskIDs) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return &InvalidInputError{Field: "task_ids", Reason: "must be a list of strings"}
	}
	out := make([]string, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil || string(r) == "null" {
			return &InvalidInputError{Field: fmt.Sprintf("task_ids[%d]", i), Reason: fmt.Sprintf("must be a string, not %s", r)}
		}
	}
	if raw == nil {
		out = nil
	}
	*ids = out
	return nil
}

// InitializeInput is the event of the initialize handler (the state machine's input).
type InitializeInput struct {
	ConfigName string  `json:"config_name"`
	TaskIDs    TaskIDs `json:"task_ids"`
	// TaskListKey names a JSON list of task ids in the bucket, under
	// TaskListPrefix: for lists too large for an execution's input (256 KiB).
	// Exactly one of TaskIDs and TaskListKey.
	TaskListKey string `json:"task_list_key,omitempty"`
	DataSource  string `json:"data_source,omitempty"`
	TriggeredBy string `json:"triggered_by,omitempty"`
	CommitSHA   string `json:"commit_sha,omitempty"`
	// BudgetUSD stops the run once its recorded model cost reaches it (no
	// new attempt starts); absent: the stage's default (none unless set).
	BudgetUSD *json.Number `json:"budget_usd,omitempty"`
	// StopAfterFailures stops the run when that many attempts in a row fail
	// without a success between them; 0 turns it off; absent: the stage's
	// default.
	StopAfterFailures *int `json:"stop_after_failures,omitempty"`
	// ExecutionID makes initialize idempotent: the state machine passes
	// $$.Execution.Id, and a retried call returns the run the first one made.
	ExecutionID string `json:"execution_id,omitempty"`
	// ExecutionStartTime ($$.Execution.StartTime, RFC 3339) dates a run that has
	// an ExecutionID, so that its run id is a pure function of the input.
	ExecutionStartTime string `json:"execution_start_time,omitempty"`
	// ResumeRunID runs an existing run again, in place: every task that has
	// not COMPLETED (never started, stranded PENDING or IN_PROGRESS, NOT_RUN,
	// and with IncludeFailed FAILED_PERMANENT too) gets a new attempt under
	// the same run id. ConfigName, TaskIDs and TaskListKey are the run's and
	// must be absent. BudgetUSD and StopAfterFailures, when given, replace the run's.
	ResumeRunID   string `json:"resume_run_id,omitempty"`
	IncludeFailed bool   `json:"include_failed,omitempty"`
	// ReuseRunID takes, for each task of a new run that run COMPLETED with
	// the same config_name, data_source and task data (the digest of the file
	// as scored), its submission, score and cost as this run's result: the
	// task is not run again. Only the rest is run.
	ReuseRunID string `json:"reuse_run_id,omitempty"`
}

// InitializeOutput is what initialize returns: every field later states read,
// with defaults filled in. The task list itself is in the bucket at ItemsKey
// (where the Map reads it); only without a bucket does it come back inline.
type InitializeOutput struct {
	RunID      string   `json:"run_id"`
	ConfigName string   `json:"config_name"`
	DataSource string   `json:"data_source"`
	TotalTasks int      `json:"total_tasks"`
	ItemsKey   string   `json:"items_key,omitempty"`
	TaskIDs    []string `json:"task_ids,omitempty"`
}

// TaskError is a caught Step Functions error: the Error name and its Cause.
type TaskError struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// MapItem is one element of the run's items (ItemsKey), as initialize
// writes them and the task Map reads them: the task and the name of its
// Batch jobs (JobName), which ASL could not compute.
type MapItem struct {
	TaskID  string `json:"task_id"`
	JobName string `json:"job_name"`
	// Attempt is the number of the task's first attempt in this execution: 1
	// in a new run; in a resumed one, past every number the task used
	// before (attempt numbers are never reused: the checks that count an
	// attempt once key on them). AttemptBase is how many of the numbers below
	// it do not count against MAX_RETRIES (see TaskItem).
	Attempt     int `json:"attempt"`
	AttemptBase int `json:"attempt_base"`
}

// TaskItem is one task's state inside the task Map: what the Map's
// ItemSelector builds and each attempt carries. Attempt is the number of the
// attempt under way, 1 for the first; JobName is the name every job of the
// task is submitted under (JobName).
type TaskItem struct {
	RunID      string `json:"run_id"`
	TaskID     string `json:"task_id"`
	ConfigName string `json:"config_name"`
	DataSource string `json:"data_source"`
	Attempt    int    `json:"attempt"`
	JobName    string `json:"job_name"`
	// AttemptBase is subtracted from Attempt where MAX_RETRIES is applied: 0
	// in a new run; in a resumed run the attempts before that did not fail
	// (stranded by an execution that ended) or, with include_failed, all of
	// them (counted afresh).
	AttemptBase int `json:"attempt_base"`
}

// JSON field names of TaskItem the state machine reads (the rest are the
// attribute names above).
const (
	FieldAttempt     = "attempt"
	FieldAttemptBase = "attempt_base"
	FieldJobName     = "job_name"
	// FieldWaitSeconds is the wait before the next attempt (handle-error's answer, then PlanRetry's).
	FieldWaitSeconds = "wait_seconds"
)

// CheckTaskInput is the event of check-task, the state after a job: the
// task's item and, when the job failed, its error.
type CheckTaskInput struct {
	TaskItem
	Error *TaskError `json:"error,omitempty"`
	// Job is the Batch job description of a job that succeeded (a failed
	// job's is the Error's Cause): what its compute cost is read from.
	Job json.RawMessage `json:"job,omitempty"`
}

// FieldJob is where the state machine puts a succeeded job's description.
const FieldJob = "job"

// ErrJobFailed is the Error of a failed Batch job in a .sync state; its Cause
// is the job's description.
const ErrJobFailed = "States.TaskFailed"

// ErrTaskNotCompleted is the Error check-task reports for a job that left its
// task in any status but COMPLETED, whatever the job's exit code.
const ErrTaskNotCompleted = "TaskNotCompleted"

// ErrNoAnswer is the Error check-task reports for a task its worker marked
// COMPLETED with no answer at all and no tokens spent: the model was never
// reached (the benchmark's worker completes a task whose every provider call
// failed). The attempt is failed and retried; the task is moved back to FAILED.
const ErrNoAnswer = "NoAnswer"

// WorkerSaid introduces, in a NoAnswer cause, what the worker recorded of
// its last failure.
const WorkerSaid = "; the worker last recorded: "

// IsJobFailure tells whether a check-task input's error is the job's own (a
// failed Batch job, a failed submit), not one the orchestration reported.
func IsJobFailure(e *TaskError) bool {
	return e != nil && e.Error != ErrTaskNotCompleted && e.Error != ErrNoAnswer
}

// CheckTaskOutput is the state after check-task: the item, the status the
// task record holds and, when it is not COMPLETED, the error handle-error
// records (the job's own, or ErrTaskNotCompleted when the job succeeded).
type CheckTaskOutput struct {
	TaskItem
	Status string     `json:"status"`
	Score  *float64   `json:"score,omitempty"`
	Error  *TaskError `json:"error,omitempty"`
}

// HandleErrorInput is the event of handle-error: a failed attempt of a task.
type HandleErrorInput struct {
	RunID  string     `json:"run_id"`
	TaskID string     `json:"task_id"`
	Error  *TaskError `json:"error"`
	// Attempt is the number of the attempt that failed (1 for the first):
	// the task's retry_count becomes Attempt, so a report counted twice, or
	// an attempt the worker counted itself, still counts once.
	Attempt int `json:"attempt"`
	// AttemptBase is the item's (TaskItem.AttemptBase): the attempt is the
	// (Attempt - AttemptBase)-th against MAX_RETRIES.
	AttemptBase int `json:"attempt_base,omitempty"`
}

// HandleErrorOutput tells the state machine whether to retry the task:
// Status is RETRY_SCHEDULED, FAILED_PERMANENT, or COMPLETED for a task that
// turned out completed (handle-error never changes one).
type HandleErrorOutput struct {
	RunID      string `json:"run_id"`
	TaskID     string `json:"task_id"`
	Status     string `json:"status"`
	RetryCount int    `json:"retry_count"`
	// WaitSeconds is the wait before the next attempt (0 unless
	// RETRY_SCHEDULED): computed for any MAX_RETRIES, never looked up.
	WaitSeconds  int    `json:"wait_seconds"`
	ErrorMessage string `json:"error_message"`
}

// AggregateInput is the event of aggregate.
type AggregateInput struct {
	RunID string `json:"run_id"`
	// ExecutionID, from the run reaper, is the execution whose end it
	// aggregates: a run resumed since (its execution_id another) is left to
	// its current execution.
	ExecutionID string `json:"execution_id,omitempty"`
}

// Totals are a run's counters as aggregate computes them and complete takes them.
type Totals struct {
	TotalTasks     int         `json:"total_tasks"`
	CompletedTasks int         `json:"completed_tasks"`
	FailedTasks    int         `json:"failed_tasks"`
	TotalCostUSD   json.Number `json:"total_cost_usd"`
	// ComputeCostUSD is the Fargate cost of the run's jobs (TotalCostUSD is
	// the model's); ComputeSeconds their billed time; UnpricedJobs the jobs
	// left out of ComputeCostUSD for want of a price.
	ComputeCostUSD json.Number `json:"compute_cost_usd"`
	ComputeSeconds int64       `json:"compute_seconds"`
	UnpricedJobs   int         `json:"unpriced_jobs"`
	Accuracy       float64     `json:"accuracy"`
	// Score is the official ARC-AGI score (0..1), null when no task could be
	// scored; ScoredTasks is the number of tasks it is a mean over.
	Score       *float64 `json:"score"`
	ScoredTasks int      `json:"scored_tasks"`
	// StrictScore is the share of the scored tasks with every test pair right.
	StrictScore *float64 `json:"strict_score"`
	// NotRunTasks never ran (the run was stopped); ScoreOverRun is the score
	// over the tasks that ran, beside Score over them all.
	NotRunTasks  int      `json:"not_run_tasks"`
	ScoreOverRun *float64 `json:"score_over_run_tasks"`
	// UnreadableCosts are tasks whose cost could not be read: TotalCostUSD
	// leaves them out, and is never shown without them.
	UnreadableCosts int `json:"unreadable_costs"`
	// UnansweredTasks completed with no usable answer (counted in the score as 0);
	// CompletedAfterJobFailure completed before their job failed (answers may be partial).
	UnansweredTasks          int `json:"unanswered_tasks"`
	CompletedAfterJobFailure int `json:"completed_after_job_failure"`
}

// AggregateOutput is what aggregate returns. ResultsS3Key is null when no
// bucket is configured.
type AggregateOutput struct {
	RunID string `json:"run_id"`
	Totals
	ResultsS3Key *string `json:"results_s3_key"`
}

// CompleteInput is the event of complete: the run and aggregate's totals.
type CompleteInput struct {
	RunID       string  `json:"run_id"`
	Aggregation *Totals `json:"aggregation"`
	// Announce, from the run reaper, asks only to announce the end of a run
	// that ended otherwise (no aggregation needed; nothing else changes).
	Announce bool `json:"announce,omitempty"`
	// ExecutionID, with Announce, is the execution whose end is told: a run
	// resumed since is told at its current execution's end instead.
	ExecutionID string `json:"execution_id,omitempty"`
}

// FieldAnnounce is CompleteInput.Announce's name in the event.
const FieldAnnounce = "announce"

// FinalMetrics are the figures of a finished run.
type FinalMetrics struct {
	Totals
	DurationSeconds float64 `json:"duration_seconds"`
}

// CompleteOutput is what complete returns.
type CompleteOutput struct {
	RunID  string `json:"run_id"`
	Status string `json:"status"`
	// StopReason says why a STOPPED run stopped.
	StopReason   string       `json:"stop_reason,omitempty"`
	CompletedAt  string       `json:"completed_at"`
	FinalMetrics FinalMetrics `json:"final_metrics"`
}

// Aggregated is the document aggregate writes to runs/<run_id>/results/aggregated.json.
type Aggregated struct {
	RunID        string       `json:"run_id"`
	ConfigName   string       `json:"config_name"`
	AggregatedAt string       `json:"aggregated_at"`
	Metrics      RunMetrics   `json:"metrics"`
	TaskResults  []TaskResult `json:"task_results"`
}

// RunMetrics are the metrics block of aggregated.json.
type RunMetrics struct {
	TotalTasks     int `json:"total_tasks"`
	CompletedTasks int `json:"completed_tasks"`
	FailedTasks    int `json:"failed_tasks"`
	PendingTasks   int `json:"pending_tasks"`
	// NotRunTasks never ran: the run was stopped before them.
	NotRunTasks  int     `json:"not_run_tasks"`
	CorrectTasks int     `json:"correct_tasks"`
	Accuracy     float64 `json:"accuracy"`
	// TotalCostUSD is the model cost the workers recorded; ComputeCostUSD
	// the Fargate cost of the jobs (billed seconds ComputeSeconds, of which
	// UnpricedJobs could not be priced); CostWithComputeUSD their sum.
	TotalCostUSD       json.Number `json:"total_cost_usd"`
	ComputeCostUSD     json.Number `json:"compute_cost_usd"`
	CostWithComputeUSD json.Number `json:"cost_with_compute_usd"`
	ComputeSeconds     int64       `json:"compute_seconds"`
	UnpricedJobs       int         `json:"unpriced_jobs"`
	// Score is the official ARC-AGI score (0..1): the mean of the task
	// scores over ScoredTasks (every task but the UnscoredTasks, whose data
	// holds no expected output); null when no task can be scored.
	Score       *float64 `json:"score"`
	ScoredTasks int      `json:"scored_tasks"`
	// StrictScore is the share of the scored tasks with every test pair
	// right: the ARC-AGI rule read strictly, beside the official per-pair credit.
	StrictScore *float64 `json:"strict_score"`
	// ScoreOverRun is the score over the tasks that ran (Score counts those
	// never run as 0).
	ScoreOverRun  *float64 `json:"score_over_run_tasks"`
	UnscoredTasks int      `json:"unscored_tasks"`
	// UnansweredTasks are completed tasks whose model spent tokens and gave
	// no usable answer: scored 0.
	UnansweredTasks int `json:"unanswered_tasks"`
	// CompletedAfterJobFailure are tasks the worker completed before its job
	// failed (stopped at its time limit, host lost): scored on what was saved.
	CompletedAfterJobFailure int   `json:"completed_after_job_failure"`
	TotalTokensIn            int64 `json:"total_input_tokens"`
	TotalTokensOut           int64 `json:"total_output_tokens"`
	// InvalidTasks counts the tasks whose records hold unreadable values
	// (each named in its task result's invalid); UnreadableCosts those among
	// them whose cost is one, which TotalCostUSD leaves out.
	InvalidTasks    int `json:"invalid_tasks"`
	UnreadableCosts int `json:"unreadable_costs"`
	// Attempts are the jobs run (one per attempt), over every execution.
	Attempts int `json:"attempts"`
	// Executions is how many executions ran the run (1, and one more per
	// resume); ActiveSeconds the sum of their run times, SpanSeconds the
	// time from its first start to its last end.
	Executions    int     `json:"executions"`
	ActiveSeconds float64 `json:"active_seconds"`
	SpanSeconds   float64 `json:"span_seconds"`
	// ReusedTasks were taken from ReusedFrom's results instead of run;
	// ReusedCostUSD is what they cost there, paid once, so in neither
	// TotalCostUSD nor the budget.
	ReusedTasks   int         `json:"reused_tasks"`
	ReusedFrom    string      `json:"reused_from,omitempty"`
	ReusedCostUSD json.Number `json:"reused_cost_usd"`
}

// TaskResult is one task's line in aggregated.json. Cost is null when the
// worker recorded none; Score is null for a task not (yet) scored, and Pairs
// is 0 for a task whose data has no expected output.
type TaskResult struct {
	TaskID  string       `json:"task_id"`
	Status  string       `json:"status"`
	CostUSD *json.Number `json:"cost_usd"`
	// ComputeCostUSD is the Fargate cost of the task's jobs, every attempt
	// (null when none was recorded); ComputeSeconds their billed time.
	ComputeCostUSD *json.Number `json:"compute_cost_usd"`
	ComputeSeconds int64        `json:"compute_seconds"`
	IsCorrect      bool         `json:"is_correct"`
	Score          *float64     `json:"score"`
	PairsCorrect   int          `json:"pairs_correct"`
	Pairs          int          `json:"pairs"`
	RetryCount     int          `json:"retry_count"`
	ResultS3Key    string       `json:"result_s3_key,omitempty"`
	ScoreError     string       `json:"score_error,omitempty"`
	// Unanswered: completed with no usable answer.
	Unanswered bool `json:"unanswered,omitempty"`
	// JobError is the failure of the job that ended after the task was
	// completed (the answers may be partial).
	JobError string `json:"job_error,omitempty"`
	// LastError is the orchestration's record of the last failed attempt
	// (error type, and Batch's reason when there is one); WorkerError is the
	// worker's own message (its "error" attribute).
	LastError   string `json:"last_error,omitempty"`
	WorkerError string `json:"worker_error,omitempty"`
	// DataSHA256 is the digest of the task data as scored.
	DataSHA256 string `json:"data_sha256,omitempty"`
	// History is what each resume of the run found the task as before it
	// ran it again (a failure, a stranded attempt), oldest first.
	History []TaskHistoryEntry `json:"history,omitempty"`
	// ReusedFrom is the run whose result the task took instead of running
	// (ReusedCostUSD is what it cost there, not counted in this run's cost).
	ReusedFrom    string       `json:"reused_from,omitempty"`
	ReusedCostUSD *json.Number `json:"reused_cost_usd,omitempty"`
	// Invalid names what the task record holds that could not be read (a
	// cost that is not a number, an is_correct that is not a boolean): it is
	// left out of the totals, and said so here.
	Invalid []InvalidValue `json:"invalid,omitempty"`
}

// InvalidValue is an attribute of a task record that could not be read.
type InvalidValue struct {
	Attribute string `json:"attribute"`
	Value     string `json:"value"`
	Reason    string `json:"reason"`
}

// Costs are the totals' model and compute costs.
func (t Totals) Costs() money.Costs {
	return money.Costs{ModelUSD: string(t.TotalCostUSD), UnreadableCosts: t.UnreadableCosts, ComputeUSD: string(t.ComputeCostUSD), UnpricedJobs: t.UnpricedJobs}
}

// Costs are aggregated.json's model and compute costs.
func (m RunMetrics) Costs() money.Costs {
	return money.Costs{ModelUSD: string(m.TotalCostUSD), UnreadableCosts: m.UnreadableCosts, ComputeUSD: string(m.ComputeCostUSD), UnpricedJobs: m.UnpricedJobs}
}
