// Package aggregate totals a run's task results, writes aggregated.json and
// updates the run record.
package aggregate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
	"arcbench/shared/money"
	"arcbench/shared/store"
)

// Store is what aggregate needs of the run store.
type Store interface {
	GetRun(ctx context.Context, runID string) (*store.Run, error)
	EachTask(ctx context.Context, runID string, fn func(store.Task) error) error
	SaveAggregation(ctx context.Context, runID string, a store.Aggregation) error
}

var _ Store = (*store.Store)(nil)

// S3 is the part of the S3 API aggregate uses.
type S3 interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

var _ S3 = (*s3.Client)(nil)

// Checker is check-task's judgement of a task after its job
// (checktask.Handler).
type Checker interface {
	Handle(ctx context.Context, in model.CheckTaskInput) (model.CheckTaskOutput, error)
}

// Handler is the aggregate Lambda.
type Handler struct {
	Store Store
	S3    S3
	// Bucket is where aggregated.json goes; empty skips the write.
	Bucket string
	// Check judges, for a run that has ended, the completions check-task
	// never saw; nil leaves them as recorded.
	Check Checker
	Now   func() time.Time
}

// Handle reads every task of the run, writes aggregated.json, then the run's
// counters: when the S3 write fails the run record is left as it was.
func (h *Handler) Handle(ctx context.Context, in model.AggregateInput) (model.AggregateOutput, error) {
	if in.RunID == "" {
		return model.AggregateOutput{}, &model.InvalidInputError{Field: "run_id", Reason: "is required"}
	}
	run, err := h.Store.GetRun(ctx, in.RunID)
	if err != nil {
		return model.AggregateOutput{}, err
	}
	if in.ExecutionID != "" && run.ExecutionID != in.ExecutionID {
		// The reaper, for an execution the run has left behind: a resume
		// took it over, and its own end aggregates it.
		lambdaio.Logger(ctx).Info("run was resumed by another execution: not aggregated for this one", "run_id", in.RunID,
			"execution_id", in.ExecutionID, "current_execution_id", run.ExecutionID)
		return model.AggregateOutput{RunID: in.RunID}, nil
	}
	at := h.Now()
	doc, tally, err := h.collect(ctx, run, at)
	if err != nil {
		return model.AggregateOutput{}, err
	}
	if run.Status != model.RunRunning && h.Check != nil && len(tally.Unchecked) > 0 {
		// Counted again once they are checked: the only second read of the
		// records, and only for an ended run that left completions unchecked.
		h.checkLeftovers(ctx, run, tally.Unchecked)
		if doc, _, err = h.collect(ctx, run, at); err != nil {
			return model.AggregateOutput{}, err
		}
	}
	m := doc.Metrics
	out := model.AggregateOutput{
		RunID: in.RunID,
		Totals: model.Totals{
			TotalTasks:      m.TotalTasks,
			CompletedTasks:  m.CompletedTasks,
			FailedTasks:     m.FailedTasks,
			TotalCostUSD:    m.TotalCostUSD,
			ComputeCostUSD:  m.ComputeCostUSD,
			ComputeSeconds:  m.ComputeSeconds,
			UnpricedJobs:    m.UnpricedJobs,
			Accuracy:        m.Accuracy,
			Score:           m.Score,
			ScoredTasks:     m.ScoredTasks,
			StrictScore:     m.StrictScore,
			UnreadableCosts: m.UnreadableCosts,
			NotRunTasks:     m.NotRunTasks,
			ScoreOverRun:    m.ScoreOverRun,

			UnansweredTasks:          m.UnansweredTasks,
			CompletedAfterJobFailure: m.CompletedAfterJobFailure,
		},
	}
	if live := liveCounts(run); live != recordCounts(m) {
		// The live counters are check-task's and handle-error's, set at each
		// task's end: they should agree; the records decide either way.
		lambdaio.Logger(ctx).Warn("the run's live counters disagree with its task records; they are set from the records",
			"run_id", in.RunID, "live", live, "records", recordCounts(m))
	}
	if h.Bucket != "" {
		key := model.AggregatedKey(in.RunID)
		if err := h.put(ctx, key, doc); err != nil {
			return model.AggregateOutput{}, err
		}
		out.ResultsS3Key = &key
	}
	if err := h.Store.SaveAggregation(ctx, in.RunID, store.Aggregation{
		CompletedTasks:    m.CompletedTasks,
		FailedTasks:       m.FailedTasks,
		TotalCostUSD:      string(m.TotalCostUSD),
		ComputeCostUSD:    string(m.ComputeCostUSD),
		ComputeSeconds:    m.ComputeSeconds,
		UnpricedJobs:      m.UnpricedJobs,
		TotalInputTokens:  m.TotalTokensIn,
		TotalOutputTokens: m.TotalTokensOut,
		UnreadableCosts:   m.UnreadableCosts,
		NotRunTasks:       m.NotRunTasks,
		ScoreOverRun:      m.ScoreOverRun,
		Accuracy:          m.Accuracy,
		Score:             m.Score,
		ScoredTasks:       m.ScoredTasks,
		At:                model.FormatTime(at),
	}); err != nil {
		return model.AggregateOutput{}, err
	}
	lambdaio.Logger(ctx).Info("run aggregated", "run_id", in.RunID, "total_tasks", m.TotalTasks,
		"completed_tasks", m.CompletedTasks, "failed_tasks", m.FailedTasks, "pending_tasks", m.PendingTasks,
		"accuracy", m.Accuracy, "score", m.Score, "scored_tasks", m.ScoredTasks, "total_cost_usd", m.TotalCostUSD, "compute_cost_usd", m.ComputeCostUSD)
	return out, nil
}

// collect builds aggregated.json from the task records.
func (h *Handler) collect(ctx context.Context, run *store.Run, at time.Time) (*model.Aggregated, *store.Tally, error) {
	doc, tally, err := Collect(ctx, h.Store, run, at)
	if err != nil {
		return nil, nil, err
	}
	if m := doc.Metrics; m.InvalidTasks > 0 {
		// Once per run: each task's values are in aggregated.json.
		lambdaio.Logger(ctx).Warn("task records hold values that cannot be read; they are left out of the totals",
			"run_id", run.RunID, "invalid_tasks", m.InvalidTasks, "first", tally.Invalid)
	}
	return doc, tally, nil
}

// Tasks is what Collect reads: every task record of a run.
type Tasks interface {
	EachTask(ctx context.Context, runID string, fn func(store.Task) error) error
}

// Collect builds a run's aggregated.json from its task records, as
// aggregate writes it (an operator reading a run that was never aggregated
// counts it the same way).
func Collect(ctx context.Context, st Tasks, run *store.Run, at time.Time) (*model.Aggregated, *store.Tally, error) {
	doc := &model.Aggregated{
		RunID:        run.RunID,
		ConfigName:   run.ConfigName,
		AggregatedAt: model.FormatTime(at),
		TaskResults:  make([]model.TaskResult, 0, run.TotalTasks),
	}
	var tally store.Tally
	m := &doc.Metrics
	err := st.EachTask(ctx, run.RunID, func(t store.Task) error {
		r := model.TaskResult{TaskID: t.TaskID, Status: t.Status, IsCorrect: t.IsCorrect, Score: t.Score,
			PairsCorrect: t.PairsCorrect, RetryCount: t.RetryCount, ScoreError: t.ScoreError, Invalid: t.Invalid,
			// The worker writes its key relative to the run's folder.
			ResultS3Key: t.SubmissionKey(run.RunID),
			Unanswered:  t.Status == model.TaskCompleted && t.Unanswered(), JobError: t.JobError,
			LastError: t.LastError(), WorkerError: t.WorkerError, DataSHA256: t.DataSHA256, History: t.History, ReusedFrom: t.ReusedFrom}
		if t.Pairs != nil {
			r.Pairs = *t.Pairs
		}
		if t.CostUSD != "" {
			n := json.Number(t.CostUSD)
			r.CostUSD = &n
		}
		if t.ComputeCostUSD != "" {
			n := json.Number(t.ComputeCostUSD)
			r.ComputeCostUSD = &n
		}
		r.ComputeSeconds = t.ComputeSeconds
		if t.ReusedCostUSD != "" {
			n := json.Number(t.ReusedCostUSD)
			r.ReusedCostUSD = &n
		}
		tally.Add(t)
		doc.TaskResults = append(doc.TaskResults, r)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	c := &tally.Counts
	if run.Status != model.RunRunning {
		c.Ended()
	}
	m.TotalTasks, m.CompletedTasks, m.CorrectTasks, m.FailedTasks, m.PendingTasks = c.Total, c.Completed, c.Correct, c.Failed, c.Pending
	m.NotRunTasks, m.ScoreOverRun = c.NotRun, c.ScoreOverRun()
	m.TotalCostUSD = tally.Cost.Number()
	m.ComputeCostUSD, m.ComputeSeconds, m.UnpricedJobs = tally.Compute.Number(), tally.ComputeSeconds, tally.UnpricedJobs
	m.CostWithComputeUSD = tally.Cost.Plus(&tally.Compute).Number()
	m.Accuracy = c.Accuracy()
	m.Score, m.StrictScore, m.ScoredTasks, m.UnscoredTasks = c.Score(), c.StrictScore(), c.Scored(), c.Unscored
	m.UnansweredTasks, m.CompletedAfterJobFailure = c.Unanswered, c.AfterJobFailure
	m.TotalTokensIn, m.TotalTokensOut, m.InvalidTasks, m.UnreadableCosts = tally.TokensIn, tally.TokensOut, tally.InvalidTasks, tally.UnreadableCosts
	m.Attempts, m.ReusedTasks, m.ReusedFrom, m.ReusedCostUSD = tally.Attempts, tally.Reused, run.ReusedFrom, tally.ReusedCost.Number()
	active, span := run.Times(at)
	m.Executions, m.ActiveSeconds, m.SpanSeconds = max(1, len(run.Executions)), model.Seconds(active), model.Seconds(span)
	return doc, &tally, nil
}

// liveCounts are the run record's live counters as a line of text.
func liveCounts(run *store.Run) string {
	cost, err := money.Cost(run.TotalCostUSD)
	if err != nil {
		cost = run.TotalCostUSD
	}
	return fmt.Sprintf("%d completed, %d failed, cost %s", run.CompletedTasks, run.FailedTasks, cost)
}

// recordCounts are the same figures counted from the task records.
func recordCounts(m model.RunMetrics) string {
	return fmt.Sprintf("%d completed, %d failed, cost %s", m.CompletedTasks, m.FailedTasks, m.TotalCostUSD)
}

func (h *Handler) put(ctx context.Context, key string, doc *model.Aggregated) error {
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	_, err = h.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(h.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/json"),
	})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", h.Bucket, key, err)
	}
	return nil
}

// checkLeftovers judges the tasks of an ended run that its worker marked
// COMPLETED but check-task never saw: the run was stopped, failed or timed
// out between the job's write and its check (an early stop terminates the
// jobs of a model never reached, whose worker still marks them COMPLETED).
// Each gets the check it missed, as its attempt's: scored and counted, or
// refused as NoAnswer and moved back to FAILED. Only what check-task has
// judged counts as completed. A check that fails is logged and skipped: an
// ended run is aggregated whatever a check does.
func (h *Handler) checkLeftovers(ctx context.Context, run *store.Run, unchecked []store.Task) {
	log := lambdaio.Logger(ctx)
	for _, t := range unchecked {
		in := model.CheckTaskInput{TaskItem: model.TaskItem{RunID: run.RunID, TaskID: t.TaskID, ConfigName: run.ConfigName,
			DataSource: run.DataSource, Attempt: t.RetryCount + 1}}
		out, err := h.Check.Handle(ctx, in)
		if err != nil {
			// The run is aggregated all the same (its end must be told): the
			// task stays as its worker recorded it, unscored.
			log.Error("a completion the run ended before checking could not be checked", "run_id", run.RunID, "task_id", t.TaskID, "error", err.Error())
			continue
		}
		log.Info("a completion the run ended before checking, checked", "run_id", run.RunID, "task_id", t.TaskID, "status", out.Status)
	}
}
