package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"arcbench/shared/clients"
	"arcbench/shared/handlers/aggregate"
	"arcbench/shared/model"
	"arcbench/shared/money"
	"arcbench/shared/store"
)

// Snapshot is a run's progress, counted from its task records.
type Snapshot struct {
	RunID      string `json:"run_id"`
	ConfigName string `json:"config_name"`
	Status     string `json:"status"`
	Total      int    `json:"total_tasks"`
	Completed  int    `json:"completed_tasks"`
	Failed     int    `json:"failed_tasks"`
	Pending    int    `json:"pending_tasks"`
	// NotRun are the tasks that never ran because the run was stopped
	// (NOT_RUN), and, once it has ended, those still pending.
	NotRun  int `json:"not_run_tasks"`
	Correct int `json:"correct_tasks"`
	// Score is the official score so far (tasks not yet done count 0), over
	// ScoredTasks; nil when no task can be scored. ScoreOverRun leaves the
	// tasks not run out.
	Score        *float64 `json:"score"`
	ScoredTasks  int      `json:"scored_tasks"`
	ScoreOverRun *float64 `json:"score_over_run_tasks"`
	// StopReason says why a stopped run stopped (or is stopping: a budget
	// stop lets the jobs in flight finish).
	StopReason string `json:"stop_reason,omitempty"`
	// Unanswered completed tasks gave no usable answer; AfterJobFailure
	// were completed before their job failed (answers may be partial).
	Unanswered      int    `json:"unanswered_tasks"`
	AfterJobFailure int    `json:"completed_after_job_failure"`
	CostUSD         string `json:"cost_usd"`
	// InvalidTasks hold values that cannot be read; UnreadableCosts are
	// those whose cost CostUSD leaves out.
	InvalidTasks    int `json:"invalid_tasks"`
	UnreadableCosts int `json:"unreadable_costs"`
	// ComputeCostUSD is the Fargate cost of the jobs that ended so far,
	// UnpricedJobs those left out of it for want of a price.
	ComputeCostUSD string `json:"compute_cost_usd"`
	UnpricedJobs   int    `json:"unpriced_jobs"`
	// Resumes is how often the run was resumed: the figures cover all its
	// executions, and ExecutionID is the one under way (or the last).
	Resumes     int       `json:"resumes"`
	ExecutionID string    `json:"execution_id,omitempty"`
	At          time.Time `json:"at"`
}

// Costs are the snapshot's model and compute costs.
func (s *Snapshot) Costs() money.Costs {
	return money.Costs{ModelUSD: s.CostUSD, UnreadableCosts: s.UnreadableCosts, ComputeUSD: s.ComputeCostUSD, UnpricedJobs: s.UnpricedJobs}
}

// Done tells whether the run has ended.
func (s *Snapshot) Done() bool { return s.Status != model.RunRunning }

// run reads a run record; a missing run is a one-line Error.
func (o *Operator) run(ctx context.Context, runID string) (*store.Run, error) {
	run, err := o.Store.GetRun(ctx, runID)
	var nf *model.RunNotFoundError
	if errors.As(err, &nf) {
		return nil, &Error{Msg: fmt.Sprintf("run %s not found in stage %s: list the stage's runs with `arcbench runs --stage %s`", runID, o.Stage.Name, o.Stage.Name)}
	}
	return run, Explain(err)
}

// Snapshot counts a run's tasks now: completed (and correct), failed
// (FAILED or FAILED_PERMANENT), the rest pending; the score and cost so far.
func (o *Operator) Snapshot(ctx context.Context, runID string) (*Snapshot, error) {
	run, err := o.run(ctx, runID)
	if err != nil {
		return nil, err
	}
	tally, err := o.Store.TallyRun(ctx, runID)
	if err != nil {
		return nil, Explain(err)
	}
	c := &tally.Counts
	if run.Status != model.RunRunning {
		c.Ended()
	}
	return &Snapshot{RunID: runID, ConfigName: run.ConfigName, Status: run.Status, At: o.Now(), StopReason: run.StopReason,
		Total: c.Total, Completed: c.Completed, Failed: c.Failed, Pending: c.Pending, NotRun: c.NotRun, Correct: c.Correct,
		Score: c.Score(), ScoredTasks: c.Scored(), ScoreOverRun: c.ScoreOverRun(), Unanswered: c.Unanswered, AfterJobFailure: c.AfterJobFailure,
		CostUSD: tally.Cost.String(), InvalidTasks: tally.InvalidTasks, UnreadableCosts: tally.UnreadableCosts,
		ComputeCostUSD: tally.Compute.String(), UnpricedJobs: tally.UnpricedJobs, Resumes: run.Resumes(), ExecutionID: run.ExecutionID}, nil
}

// Results are a finished run's figures and what failed.
type Results struct {
	Run *store.Run
	// Aggregated is aggregated.json exactly as stored, or, for a run that
	// ended without being aggregated (Counted), the same document counted
	// now from its task records.
	Aggregated []byte
	Counted    bool
	Failed     []store.TaskFailure
}

// Results reads a finished run's aggregated.json (or, when it ended without
// one, counts its task records as aggregate would) and its failed tasks.
func (o *Operator) Results(ctx context.Context, runID string) (*Results, error) {
	run, err := o.run(ctx, runID)
	if err != nil {
		return nil, err
	}
	key := model.AggregatedKey(runID)
	var body []byte
	obj, err := o.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(o.Stage.Bucket), Key: aws.String(key)})
	_, missing := clients.NoObject(err)
	switch {
	case missing && run.Status == model.RunRunning:
		return nil, &Error{Msg: fmt.Sprintf("run %s has no results yet (status %s): follow it with `arcbench watch %s`", runID, run.Status, runID)}
	case missing:
		doc, _, err := aggregate.Collect(ctx, o.Store, run, o.Now())
		if err != nil {
			return nil, Explain(err)
		}
		if body, err = json.Marshal(doc); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, Explain(fmt.Errorf("read s3://%s/%s: %w", o.Stage.Bucket, key, err))
	default:
		defer obj.Body.Close()
		if body, err = io.ReadAll(obj.Body); err != nil {
			return nil, err
		}
	}
	failed, err := o.Store.FailedTasks(ctx, runID, model.TaskFailed, model.TaskFailedPermanent)
	if err != nil {
		return nil, Explain(err)
	}
	return &Results{Run: run, Aggregated: body, Counted: missing, Failed: failed}, nil
}

// Runs lists recent runs, newest first (of one configuration, or all).
func (o *Operator) Runs(ctx context.Context, config string, limit int) ([]*store.Run, error) {
	runs, err := o.Store.ListRuns(ctx, config, limit)
	return runs, Explain(err)
}

// Retry starts a new run of the same configuration and data source over the
// tasks of runID that ended FAILED_PERMANENT (Resume runs them again in the
// same run instead, with --include-failed). It returns nil when there are
// none. A run still running is refused: its failures are not final, and a
// retry started now would pay again for what the run is still doing.
func (o *Operator) Retry(ctx context.Context, runID string) (*Started, []string, error) {
	run, err := o.run(ctx, runID)
	if err != nil {
		return nil, nil, err
	}
	if run.Status == model.RunRunning {
		return nil, nil, &Error{Msg: fmt.Sprintf("run %s is %s: retry it once it has finished (follow it with `arcbench watch %s`), or stop it first with `arcbench stop %s`",
			runID, run.Status, runID, runID)}
	}
	// A stopped run's execution may still be ending (its jobs terminating).
	if err := o.notRunning(ctx, run); err != nil {
		return nil, nil, err
	}
	failed, err := o.Store.FailedTasks(ctx, runID, model.TaskFailedPermanent)
	if err != nil {
		return nil, nil, Explain(err)
	}
	if len(failed) == 0 {
		return nil, nil, nil
	}
	ids := make([]string, len(failed))
	for i, f := range failed {
		ids[i] = f.TaskID
	}
	started, err := o.Start(ctx, StartInput{ConfigName: run.ConfigName, DataSource: run.DataSource, TaskIDs: ids})
	return started, ids, err
}

// Stopped is what Stop did.
type Stopped struct {
	RunID        string `json:"run_id"`
	ExecutionArn string `json:"execution_arn"`
	Reason       string `json:"reason"`
	Status       string `json:"status"`
}

// Stop stops a running run: it is marked STOPPED with the reason (no new
// attempt starts) and its execution is stopped (Step Functions then
// terminates its queued and running jobs).
func (o *Operator) Stop(ctx context.Context, runID, reason string) (*Stopped, error) {
	run, err := o.run(ctx, runID)
	if err != nil {
		return nil, err
	}
	if run.Status != model.RunRunning {
		return nil, &Error{Msg: fmt.Sprintf("run %s is %s already: nothing to stop", runID, run.Status)}
	}
	if run.ExecutionID == "" {
		return nil, &Error{Msg: fmt.Sprintf("run %s has no execution to stop (it was made by invoking initialize directly)", runID)}
	}
	if reason == "" {
		reason = "stopped by " + currentUser()
	}
	// The record first: from then on no attempt starts, whatever happens to
	// the execution.
	_, err = o.Store.Stop(ctx, runID, model.StopOperator, reason, model.FormatTime(o.Now()), true)
	if errors.Is(err, store.ErrRunFinished) {
		run, _ = o.run(ctx, runID)
		return nil, &Error{Msg: fmt.Sprintf("run %s ended %s before it could be stopped", runID, run.Status)}
	}
	if err != nil {
		return nil, Explain(err)
	}
	if _, err := o.SFN.StopExecution(ctx, &sfn.StopExecutionInput{
		ExecutionArn: aws.String(run.ExecutionID), Error: aws.String(model.ErrRunStopped), Cause: aws.String(reason),
	}); err != nil {
		return nil, Explain(fmt.Errorf("run %s is STOPPED, but its execution %s could not be stopped (its running jobs run on): %w", runID, run.ExecutionID, err))
	}
	return &Stopped{RunID: runID, ExecutionArn: run.ExecutionID, Reason: reason, Status: model.RunStopped}, nil
}

// ResumeInput is what `arcbench resume` takes.
type ResumeInput struct {
	RunID string
	// IncludeFailed runs the FAILED_PERMANENT tasks again too, their
	// attempts counted afresh.
	IncludeFailed bool
	// Guards replace the run's when set (a raised budget).
	Guards Guards
}

// Resumed is a run that was resumed in place.
type Resumed struct {
	RunID        string `json:"run_id"`
	ExecutionArn string `json:"execution_arn"`
	ConsoleURL   string `json:"console_url,omitempty"`
	// Tasks is how many tasks the resume runs again; Execution is its
	// number among the run's executions (2 for the first resume).
	Tasks     int `json:"tasks"`
	Execution int `json:"execution"`
}

// Resume runs the unfinished tasks of a run again, as the same run: a new
// execution of the stage's state machine whose initialize takes the run
// over. A run with an execution still running, or with nothing left to run,
// is refused with one line before anything starts; initialize checks the
// same again, and the budget, and its refusal is told as it is.
func (o *Operator) Resume(ctx context.Context, in ResumeInput) (*Resumed, error) {
	run, err := o.run(ctx, in.RunID)
	if err != nil {
		return nil, err
	}
	if err := o.notRunning(ctx, run); err != nil {
		return nil, err
	}
	tally, err := o.Store.TallyRun(ctx, run.RunID)
	if err != nil {
		return nil, Explain(err)
	}
	c := tally.Counts
	left := c.Total - c.Completed - c.Permanent
	if in.IncludeFailed {
		left = c.Total - c.Completed
	}
	if left == 0 {
		msg := fmt.Sprintf("run %s has nothing to resume: every task is COMPLETED", run.RunID)
		if c.Permanent > 0 && !in.IncludeFailed {
			msg = fmt.Sprintf("run %s has nothing to resume: its tasks are COMPLETED or FAILED_PERMANENT (%d); --include-failed runs those again", run.RunID, c.Permanent)
		}
		return nil, &Error{Msg: msg}
	}
	input := map[string]any{"resume_run_id": run.RunID}
	if in.IncludeFailed {
		input["include_failed"] = true
	}
	if err := in.Guards.input(input); err != nil {
		return nil, err
	}
	body, _ := json.Marshal(input)
	out, err := o.SFN.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(o.Stage.StateMachineArn),
		Name:            aws.String(executionName(run.ConfigName+"-resume", o.Now())),
		Input:           aws.String(string(body)),
	})
	if err != nil {
		return nil, Explain(fmt.Errorf("start an execution of %s: %w", o.Stage.StateMachineArn, err))
	}
	arn := aws.ToString(out.ExecutionArn)
	r := &Resumed{RunID: run.RunID, ExecutionArn: arn, Tasks: left, Execution: max(1, len(run.Executions)) + 1}
	if !o.Local {
		r.ConsoleURL = o.consoleURL(arn)
	}
	return r, o.waitForTakeOver(ctx, run.RunID, arn)
}

// notRunning refuses a run while an execution of it may still be running:
// its last one, asked of Step Functions (every earlier one had ended before
// the next began); a run without one, while its record says RUNNING.
func (o *Operator) notRunning(ctx context.Context, run *store.Run) error {
	if run.ExecutionID == "" {
		if run.Status == model.RunRunning {
			return &Error{Msg: fmt.Sprintf("run %s is RUNNING: resume it once it has ended", run.RunID)}
		}
		return nil
	}
	desc, err := o.SFN.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(run.ExecutionID)})
	var gone *sfntypes.ExecutionDoesNotExist
	switch {
	case errors.As(err, &gone):
		return nil
	case err != nil:
		return Explain(fmt.Errorf("describe execution %s: %w", run.ExecutionID, err))
	case desc.Status == sfntypes.ExecutionStatusRunning:
		return &Error{Msg: fmt.Sprintf("run %s is still running (execution %s): follow it with `arcbench watch %s`, or stop it first with `arcbench stop %s`",
			run.RunID, run.ExecutionID, run.RunID, run.RunID)}
	}
	return nil
}

// waitForTakeOver waits until the resuming execution's initialize has taken
// the run over, or says why it did not.
func (o *Operator) waitForTakeOver(ctx context.Context, runID, arn string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		run, err := o.run(ctx, runID)
		if err != nil {
			return err
		}
		if run.ExecutionID == arn {
			return nil
		}
		desc, err := o.SFN.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			return Explain(fmt.Errorf("describe execution %s: %w", arn, err))
		}
		if desc.Status != sfntypes.ExecutionStatusRunning {
			if run, err := o.run(ctx, runID); err == nil && run.ExecutionID == arn {
				return nil
			}
			return &Error{Msg: fmt.Sprintf("run %s was not resumed: %s", runID, refusal(aws.ToString(desc.Error), aws.ToString(desc.Cause)))}
		}
		if time.Now().After(deadline) {
			return &Error{Msg: "execution " + arn + " has not taken run " + runID + " over after 2 minutes; look at it in the console"}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// refusal is initialize's refusal as one line: the message of a Lambda
// error's cause ({"errorMessage": ...}), else the error and cause as they are.
func refusal(errName, cause string) string {
	var lambdaErr struct {
		Message string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(cause), &lambdaErr) == nil && lambdaErr.Message != "" {
		return lambdaErr.Message
	}
	return strings.TrimSpace(errName + ": " + cause)
}
