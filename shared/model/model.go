// Package model declares the facts every part of arcbench shares: run and task
// statuses, the attribute names of the run and task records, the events each
// handler takes and returns, and the typed errors the state machine matches on.
package model

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"time"
)

// Run statuses (the runs table's status attribute).
const (
	RunRunning             = "RUNNING"
	RunCompleted           = "COMPLETED"
	RunCompletedWithErrors = "COMPLETED_WITH_ERRORS"
	RunFailed              = "FAILED"
	// RunStopped is a run stopped before all its tasks ran: by its budget,
	// by early stop (too many failed attempts in a row) or by an operator.
	// Its stop_reason says which and why.
	RunStopped = "STOPPED"
)

// How a run was stopped (the run's stop_kind).
const (
	StopBudget   = "budget"
	StopFailures = "failures"
	StopOperator = "operator"
)

// Task statuses (the tasks table's status attribute).
const (
	TaskPending         = "PENDING"
	TaskInProgress      = "IN_PROGRESS"
	TaskCompleted       = "COMPLETED"
	TaskFailed          = "FAILED"
	TaskFailedPermanent = "FAILED_PERMANENT"
	// TaskNotRun is a task no attempt of which was started because its run
	// was stopped; it counts 0 in the run's score.
	TaskNotRun = "NOT_RUN"
)

// Answers of handle-error: what the state machine's choice state branches on.
const (
	RetryScheduled  = "RETRY_SCHEDULED"
	FailedPermanent = TaskFailedPermanent
)

// Attribute names of the runs and tasks tables.
const (
	AttrRunID       = "run_id"
	AttrTaskID      = "task_id"
	AttrConfigName  = "config_name"
	AttrDataSource  = "data_source"
	AttrStatus      = "status"
	AttrCreatedAt   = "created_at"
	AttrUpdatedAt   = "updated_at"
	AttrTriggeredBy = "triggered_by"
	AttrCommitSHA   = "commit_sha"
	AttrExecutionID = "execution_id"
	// AttrRequestToken names the initialize call that wrote a run record.
	AttrRequestToken    = "request_token"
	AttrTotalTasks      = "total_tasks"
	AttrCompletedTasks  = "completed_tasks"
	AttrFailedTasks     = "failed_tasks"
	AttrTotalCostUSD    = "total_cost_usd"
	AttrAccuracy        = "accuracy"
	AttrCompletedAt     = "completed_at"
	AttrDurationSeconds = "duration_seconds"
	// The run's token totals: the worker adds to them with a plain "+", so
	// initialize writes them (0) with the other counters.
	AttrTotalInputTokens  = "total_input_tokens"
	AttrTotalOutputTokens = "total_output_tokens"
	// AttrScore is the official ARC-AGI score: of a task (0..1, the share of
	// its test pairs answered correctly) and of a run (the mean over its tasks).
	AttrScore = "score"
	// AttrScoredTasks is how many tasks a run's score is a mean over.
	AttrScoredTasks = "scored_tasks"
	// A run's spending and failure guards: its budget (model cost, USD; absent:
	// none) and how many attempts in a row may fail before it stops itself
	// (0: never); the running count of attempts failed since the last
	// success, with their errors by reason (reset by a success).
	AttrBudgetUSD         = "budget_usd"
	AttrStopAfterFailures = "stop_after_failures"
	AttrFailureStreak     = "failure_streak"
	AttrStreakErrors      = "streak_errors"
	// AttrStopReason says why a run was stopped (present: no new attempt
	// starts), AttrStopKind how (StopBudget...), AttrStoppedAt when.
	AttrStopReason = "stop_reason"
	AttrStopKind   = "stop_kind"
	AttrStoppedAt  = "stopped_at"
	// AttrNotRunTasks and AttrScoreOverRun are set by complete: the tasks
	// never run, and the score over the tasks that did run.
	AttrNotRunTasks  = "not_run_tasks"
	AttrScoreOverRun = "score_over_run_tasks"
	// AttrStrictScore is the share of a run's scored tasks with every test
	// pair right; AttrUnansweredTasks and AttrCompletedAfterJobFailure count
	// its completed tasks without a usable answer, and those completed before
	// their job failed (set by complete).
	AttrStrictScore              = "strict_score"
	AttrUnansweredTasks          = "unanswered_tasks"
	AttrCompletedAfterJobFailure = "completed_after_job_failure"
	// AttrNotifiedAt is when a run's end was announced (its SNS message and
	// run-end metrics): set once, by the call that claims the announcement.
	AttrNotifiedAt = "notified_at"
	// AttrExecutions lists a run's executions, the first and every resume,
	// oldest first (see Execution); execution_id is the last one's.
	AttrExecutions = "executions"
	// AttrActiveSeconds is the sum of its executions' run times, set by
	// complete; duration_seconds is first start to last end.
	AttrActiveSeconds = "active_seconds"
	// AttrReusedFrom names the run whose results a run (or task) reused
	// instead of running again; AttrReusedTasks counts them on the run, and
	// AttrReusedCostUSD is what they cost there: paid once, by that run, so
	// never in this run's cost or budget.
	AttrReusedFrom    = "reused_from"
	AttrReusedTasks   = "reused_tasks"
	AttrReusedCostUSD = "reused_cost_usd"
	// AttrHistory keeps, on a task a resume ran again, what each earlier
	// execution left it as (TaskHistoryEntry): its status, attempts and last error.
	AttrHistory = "history"

	AttrRetryCount      = "retry_count"
	AttrLastErrorType   = "last_error_type"
	AttrLastErrorCause  = "last_error_cause"
	AttrLastErrorAt     = "last_error_at"
	AttrLastErrorReason = "last_error_reason"
	AttrLastExitCode    = "last_exit_code"
	// AttrPermanentByUs marks a task that handle-error (not the worker) moved
	// to FAILED_PERMANENT: handle-error then owes the run's failed_tasks its
	// count, which the worker adds itself for the tasks it marks so.
	AttrPermanentByUs = "permanent_by_orchestration"
	AttrCostUSD       = "cost_usd"
	AttrIsCorrect     = "is_correct"
	AttrResultS3Key   = "result_s3_key"
	AttrTokensInput   = "tokens_input"
	AttrTokensOutput  = "tokens_output"
	// Written by the worker (the benchmark's, and ours alike): who claimed the task and when, and
	// the message of its last failure.
	AttrWorkerID  = "worker_id"
	AttrStartedAt = "started_at"
	AttrError     = "error"
	// Written by check-task when it scores a completed task: the test pairs
	// with an expected output, how many of them an attempt answered
	// correctly, and why a task could not be scored.
	AttrPairs        = "pairs"
	AttrPairsCorrect = "pairs_correct"
	AttrScoreError   = "score_error"
	// AttrAnsweredAttempts is how many attempts of the submission hold a
	// readable, non-empty grid: 0 on a completed task is an unanswered one.
	AttrAnsweredAttempts = "answered_attempts"
	// AttrAttemptMarks are the marks as scored, one string per test pair, one
	// byte per attempt placed there: '1' right, '0' wrong, '-' no answer.
	AttrAttemptMarks = "attempt_marks"
	// AttrDataSHA256 is the SHA-256 (hex) of the task data file as scored.
	AttrDataSHA256 = "data_sha256"
	// AttrJobError is the error of the job that ended after its worker had
	// completed the task (stopped at its time limit, host lost, out of
	// memory): the task stays COMPLETED, with answers that may be partial.
	AttrJobError = "job_error"
	// AttrNoAnswerAttempt is the attempt whose completion check-task refused
	// as no answer (NoAnswer) and moved back to FAILED.
	AttrNoAnswerAttempt = "no_answer_attempt"
	// AttrCountedAs says in which of the run's live counters the task is
	// counted (TaskCompleted or TaskFailedPermanent): each task is counted
	// once, whatever the worker adds to the run.
	AttrCountedAs = "counted_as"
	// AttrCountOwner is the handler call that owns the task's count: of all
	// calls settling the task, the one that set counted_as.
	AttrCountOwner = "count_owner"
	// AttrGivenUp marks a task the state machine failed for good because
	// check-task or handle-error itself kept failing on it.
	AttrGivenUp = "given_up"
	// AttrNotedAttempt is the last failed attempt handle-error counted in
	// the AttemptFailed metric: a repeated report of it is not counted again.
	AttrNotedAttempt = "noted_attempt"

	// Compute cost, kept by check-task from each attempt's Batch job: on a
	// task, the Fargate cost (USD) and the billed seconds of its jobs, the
	// attempts already recorded (a number set: each is recorded once) and the
	// handler call that recorded the last one (compute_owner, which adds it
	// to the run); on a run, the sum over its tasks.
	AttrComputeCostUSD  = "compute_cost_usd"
	AttrComputeSeconds  = "compute_seconds"
	AttrComputeAttempts = "compute_attempts"
	AttrComputeOwner    = "compute_owner"
	// AttrUnpricedJobs counts the jobs whose compute could not be priced (no
	// Fargate price for the region): their seconds are kept, not their cost.
	AttrUnpricedJobs = "unpriced_jobs"
)

// The orchestration's own live counters on the run record. The worker adds
// to the public ones (completed_tasks, total_cost_usd, ... and, in some
// versions, failed_tasks) with a plain "+"; these count each task once, as
// check-task and handle-error settle it, and every such write sets the public
// counters from them, so what the worker added is overwritten.
const (
	AttrCountedCompleted    = "counted_completed"
	AttrCountedFailed       = "counted_failed"
	AttrCountedCostUSD      = "counted_cost_usd"
	AttrCountedInputTokens  = "counted_input_tokens"
	AttrCountedOutputTokens = "counted_output_tokens"
	// AttrCountedUnreadableCosts counts the settled tasks whose cost the
	// worker wrote unreadably (left out of the cost), set into the public
	// AttrUnreadableCosts: a total is never shown without what it leaves out.
	AttrCountedUnreadableCosts = "counted_unreadable_costs"
	AttrUnreadableCosts        = "unreadable_costs"
	// AttrCounting holds the tokens of the counts in flight (a string set):
	// a count whose response was lost is not applied twice. A token leaves
	// the set once its task records that it was counted, so the set is as
	// large as the counts in flight, not as the run.
	AttrCounting = "counting"
)

// How an execution came to run a run (Execution.Kind).
const (
	ExecutionStart  = "start"
	ExecutionResume = "resume"
)

// Execution is one element of a run's executions: the state machine
// execution, when it started and ended (ended_at absent while it runs),
// whether it started the run or resumed it, and how many tasks it was given.
type Execution struct {
	ExecutionID   string `json:"execution_id" dynamodbav:"execution_id"`
	Kind          string `json:"kind" dynamodbav:"kind"`
	StartedAt     string `json:"started_at" dynamodbav:"started_at"`
	EndedAt       string `json:"ended_at,omitempty" dynamodbav:"ended_at,omitempty"`
	Tasks         int    `json:"tasks" dynamodbav:"tasks"`
	IncludeFailed bool   `json:"include_failed,omitempty" dynamodbav:"include_failed,omitempty"`
}

// TaskHistoryEntry is what a task was when a resume released it for
// another attempt: kept, since the release clears what the new attempt
// rewrites.
type TaskHistoryEntry struct {
	Status         string `json:"status" dynamodbav:"status"`
	RetryCount     int    `json:"retry_count" dynamodbav:"retry_count"`
	LastErrorType  string `json:"last_error_type,omitempty" dynamodbav:"last_error_type,omitempty"`
	LastErrorCause string `json:"last_error_cause,omitempty" dynamodbav:"last_error_cause,omitempty"`
	WorkerError    string `json:"worker_error,omitempty" dynamodbav:"worker_error,omitempty"`
	// CostUSD and the tokens are the spend the record held (a worker may
	// record it on an attempt that then failed): moved here, since the next
	// attempt's worker overwrites the record's, and still the run's spend.
	CostUSD      string `json:"cost_usd,omitempty" dynamodbav:"cost_usd,omitempty"`
	TokensInput  int64  `json:"tokens_input,omitempty" dynamodbav:"tokens_input,omitempty"`
	TokensOutput int64  `json:"tokens_output,omitempty" dynamodbav:"tokens_output,omitempty"`
	// ReleasedAt is when, and ReleasedBy by which execution, it was released.
	ReleasedAt string `json:"released_at" dynamodbav:"released_at"`
	ReleasedBy string `json:"released_by" dynamodbav:"released_by"`
}

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
	HandlerCheckTask   = "check-task"
	HandlerHandleError = "handle-error"
	HandlerAggregate   = "aggregate"
	HandlerComplete    = "complete"
)

// Handlers lists the handlers in the order the state machine runs them.
var Handlers = []string{HandlerInitialize, HandlerCheckTask, HandlerHandleError, HandlerAggregate, HandlerComplete}

// TimeLayout is how every timestamp is written: UTC, fixed width (so that
// strings sort as times do, as the config-created-index relies on), milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime writes t in TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Seconds is d in seconds, to the millisecond: how durations are recorded.
func Seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

// ParseTime reads a timestamp written by us or by others: RFC 3339 with any
// offset and fraction (ours, and Python's isoformat() of an aware time,
// 2026-12-02T00:48:51.674977+00:00), or an ISO 8601 time without an offset
// (Python's isoformat() of a naive time, read as UTC), with "T" or a space.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02T15:04:05.999999999", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an ISO 8601 time", s)
	}
	return t, nil
}

// DefaultDataSource is the data source of a run whose input names none.
const DefaultDataSource = "evaluation"

// Bucket layout.

// TaskDataRoot is the bucket folder of all task data: one folder per data
// source beneath it.
const TaskDataRoot = "tasks"

// TaskDataPrefix is the folder of one data source's tasks: what each job
// gets as S3_TASKS_PREFIX, since the worker reads <prefix>/<task_id>.json.
func TaskDataPrefix(dataSource string) string { return TaskDataRoot + "/" + dataSource }

// TaskDataKey is where the data of one task lives in the bucket.
func TaskDataKey(dataSource, taskID string) string {
	return TaskDataPrefix(dataSource) + "/" + taskID + ".json"
}

// RunPrefix is the folder of one run's objects, the worker's S3_PREFIX: the
// worker's result_s3_key is relative to it.
func RunPrefix(runID string) string { return "runs/" + runID }

// SubmissionKey is where the worker writes its answer to one task.
func SubmissionKey(runID, taskID string) string {
	return RunPrefix(runID) + "/" + RelativeSubmissionKey(taskID)
}

// RelativeSubmissionKey is the submission's key relative to RunPrefix: what
// the worker writes as result_s3_key.
func RelativeSubmissionKey(taskID string) string { return "submissions/" + taskID + ".json" }

// ResolveResultKey turns a task's result_s3_key into a key of the bucket: a
// key under RunPrefix(runID) is taken as it is, any other is relative to it
// (the worker writes submissions/<task_id>.json). Empty stays empty.
func ResolveResultKey(runID, key string) string {
	prefix := RunPrefix(runID) + "/"
	switch {
	case key == "", strings.HasPrefix(key, prefix):
		return key
	}
	return prefix + strings.TrimPrefix(key, "/")
}

// ResumeItemsKey is the task list of one execution resuming a run: each
// execution reads its own, so a retried initialize finds the list it made.
func ResumeItemsKey(runID, executionID string) string {
	sum := sha256.Sum256([]byte(executionID))
	return resumeItemsKey(runID, hex.EncodeToString(sum[:4]))
}

// AnyResumeItemsKey matches every ResumeItemsKey (an IAM resource pattern).
var AnyResumeItemsKey = resumeItemsKey("*", "*")

func resumeItemsKey(runID, name string) string { return RunPrefix(runID) + "/items-" + name + ".json" }

// ItemsKey is the run's task list as the Map reads it (a JSON list of
// MapItem, one per task): the list never travels through the state
// machine's state.
func ItemsKey(runID string) string {
	return RunPrefix(runID) + "/items.json"
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
	return RunPrefix(runID) + "/results/aggregated.json"
}

// Counts are a run's tasks by outcome, as aggregate and `arcbench watch`
// count them: COMPLETED (and correct among them), FAILED or FAILED_PERMANENT
// as failed, NOT_RUN as not run, anything else pending; and the official
// score so far.
type Counts struct {
	Total, Completed, Correct, Failed, Pending, NotRun int
	// Permanent are the failed tasks that failed for good (FAILED_PERMANENT).
	Permanent int
	// Unscored counts the completed tasks whose data holds no expected
	// output: they are left out of the score, not counted as 0.
	Unscored int
	// Unanswered counts the completed tasks whose model spent tokens but
	// gave no usable answer: scored 0, and said apart.
	Unanswered int
	// AfterJobFailure counts the tasks completed by a worker whose job then
	// failed (stopped at its time limit, host lost): their answers may be partial.
	AfterJobFailure int
	scoreSum        float64
}

// TaskOutcome is what Counts needs of one task record.
type TaskOutcome struct {
	Status string
	// Correct is is_correct: every test pair answered (score 1).
	Correct bool
	// Score is the task's score, nil while it has none.
	Score *float64
	// Unscored is true when check-task found no expected output to score against.
	Unscored bool
	// Unanswered: completed, with no usable answer in the submission.
	Unanswered bool
	// AfterJobFailure: completed, and then its job failed.
	AfterJobFailure bool
}

// Add counts one task.
func (c *Counts) Add(t TaskOutcome) {
	c.Total++
	switch t.Status {
	case TaskCompleted:
		c.Completed++
		if t.Correct {
			c.Correct++
		}
		if t.Unanswered {
			c.Unanswered++
		}
		if t.AfterJobFailure {
			c.AfterJobFailure++
		}
		if t.Unscored {
			c.Unscored++
		} else if t.Score != nil {
			c.scoreSum += *t.Score
		}
	case TaskFailed, TaskFailedPermanent:
		c.Failed++
		if t.Status == TaskFailedPermanent {
			c.Permanent++
		}
	case TaskNotRun:
		c.NotRun++
	default:
		c.Pending++
	}
}

// Ended counts a run that has ended (stopped, failed): a task still
// pending then will never run.
func (c *Counts) Ended() {
	c.NotRun += c.Pending
	c.Pending = 0
}

// Scored is the number of tasks the score is a mean over: every task but
// the unscored ones (failed and unfinished tasks count 0).
func (c *Counts) Scored() int { return c.Total - c.Unscored }

// Score is the run's official ARC-AGI score, the mean of its tasks' scores
// with failed, unfinished and unchecked tasks counting 0; nil when no task
// can be scored.
func (c *Counts) Score() *float64 {
	if c.Scored() == 0 {
		return nil
	}
	s := c.scoreSum / float64(c.Scored())
	return &s
}

// ScoreOverRun is the score over the tasks that ran (not counting those
// never run, which Score counts 0); nil when none can be scored.
func (c *Counts) ScoreOverRun() *float64 {
	n := c.Scored() - c.NotRun
	if n <= 0 {
		return nil
	}
	s := c.scoreSum / float64(n)
	return &s
}

// StrictScore is the ARC-AGI rule read strictly: the share of the scored
// tasks with every test pair right (the official score gives partial credit
// per pair); nil when no task can be scored.
func (c *Counts) StrictScore() *float64 {
	if c.Scored() == 0 {
		return nil
	}
	s := float64(c.Correct) / float64(c.Scored())
	return &s
}

// Accuracy is correct / completed, 0 when nothing completed.
func (c *Counts) Accuracy() float64 {
	if c.Completed == 0 {
		return 0
	}
	return float64(c.Correct) / float64(c.Completed)
}

// MaxJobNameLength is the longest job name Batch accepts.
const MaxJobNameLength = 128

// JobName is the name of a task's Batch jobs, <config>-<task_id>, so that an
// operator finds a task's jobs in the Batch console. Batch takes 1 to 128
// letters, digits, hyphens and underscores, starting with a letter or digit;
// config names and task ids may hold characters it refuses (".", and
// anything else), and ASL cannot rewrite strings, so initialize computes the
// name: every character outside [A-Za-z0-9_-] becomes "_", the config part
// is cut first so that the whole task id stays where it fits (a task id of
// 127 characters or more keeps no config part, and is itself cut at 128),
// and leading characters that are not letters or digits are dropped. Names
// need not be unique: Batch tells jobs apart by id.
func JobName(configName, taskID string) string {
	config, task := jobNameChars(configName), jobNameChars(taskID)
	name := task
	if room := MaxJobNameLength - len(task) - 1; room > 0 && config != "" {
		name = config[:min(len(config), room)] + "-" + task
	}
	name = strings.TrimLeftFunc(name, func(r rune) bool { return !isAlphanumeric(r) })
	if len(name) > MaxJobNameLength {
		name = name[:MaxJobNameLength]
	}
	if name == "" {
		// Nothing of either part is a letter or digit.
		name = "job"
	}
	return name
}

// jobNameChars replaces every character Batch refuses in a job name with "_".
func jobNameChars(s string) string {
	return strings.Map(func(r rune) rune {
		if isAlphanumeric(r) || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

func isAlphanumeric(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}
