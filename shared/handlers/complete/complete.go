// Package complete closes a run: its final status, completion time and
// duration, its CloudWatch metrics and the "run ended" message on the
// stage's topic. It counts the run's task records itself (the table is the
// truth, not the aggregation it is handed), and a repeated call for a
// finished run answers the stored result and publishes nothing again. It
// also announces the end of a run that ended otherwise (Announce, from the
// run reaper).
package complete

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"arcbench/shared/lambdaio"
	"arcbench/shared/metrics"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// Store is what complete needs of the run store.
type Store interface {
	GetRun(ctx context.Context, runID string) (*store.Run, error)
	EachTask(ctx context.Context, runID string, fn func(store.Task) error) error
	CompleteRun(ctx context.Context, runID string, c store.Completion) error
	ClaimNotice(ctx context.Context, runID, at string) (bool, error)
}

var _ Store = (*store.Store)(nil)

// Metrics publishes a finished run's figures (metrics.RunData) and the
// stage's run-end metrics, in one request.
type Metrics interface {
	Put(ctx context.Context, data ...types.MetricDatum) error
}

var _ Metrics = (*metrics.Publisher)(nil)

// MetricsTimeout bounds the CloudWatch call: metrics never hold a run open.
const MetricsTimeout = 3 * time.Second

// Handler is the complete Lambda.
type Handler struct {
	Store   Store
	Metrics Metrics
	// SNS publishes the run-end message to TopicARN ("" publishes none);
	// Stage names the stage in the message's commands.
	SNS      Notifier
	TopicARN string
	Stage    string
	Now      func() time.Time
}

// Handle finishes a RUNNING run: the final status follows the task records
// (FAILED when every task failed, COMPLETED_WITH_ERRORS when some did, else
// COMPLETED), checked against the aggregation it is given (a disagreement
// is logged; the table wins); then it announces the run's end (announce:
// metrics and message, once per run), and a failure to publish is logged,
// never fatal. A run that has finished already is answered from its record;
// its end is announced only if nobody announced it yet. With Announce it only
// announces the end of a run that ended otherwise.
func (h *Handler) Handle(ctx context.Context, in model.CompleteInput) (model.CompleteOutput, error) {
	if err := validate(in); err != nil {
		return model.CompleteOutput{}, err
	}
	log := lambdaio.Logger(ctx).With("run_id", in.RunID)
	run, err := h.Store.GetRun(ctx, in.RunID)
	if err != nil {
		return model.CompleteOutput{}, err
	}
	if in.Announce {
		if in.ExecutionID != "" && run.ExecutionID != in.ExecutionID {
			// Told at the end of the execution that resumed it, not of this one.
			log.Info("run was resumed by another execution: its end is told when that one ends", "execution_id", in.ExecutionID,
				"current_execution_id", run.ExecutionID)
			return stored(run), nil
		}
		return h.announceEnded(ctx, run)
	}
	if run.Status != model.RunRunning {
		log.Info("run has finished already: answering its record", "status", run.Status)
		// Told already, unless the call that finished it died first.
		if _, err := h.announceEnded(ctx, run); err != nil {
			log.Error("the run's end could not be announced", "error", err.Error())
		}
		return stored(run), nil
	}
	tally, reasons, err := h.tally(ctx, run)
	if err != nil {
		return model.CompleteOutput{}, err
	}
	if tally.Counts.Total != run.TotalTasks {
		return model.CompleteOutput{}, &model.InconsistentRunError{RunID: in.RunID, Want: run.TotalTasks, Records: tally.Counts.Total}
	}
	totals := tally.Totals()
	if a := *in.Aggregation; a.TotalTasks != totals.TotalTasks || a.CompletedTasks != totals.CompletedTasks || a.FailedTasks != totals.FailedTasks {
		log.Warn("the aggregation disagrees with the task records; the records decide",
			"aggregation", fmt.Sprintf("%d total, %d completed, %d failed", a.TotalTasks, a.CompletedTasks, a.FailedTasks),
			"records", fmt.Sprintf("%d total, %d completed, %d failed", totals.TotalTasks, totals.CompletedTasks, totals.FailedTasks))
	}
	now := h.Now()
	completedAt := model.FormatTime(now)
	duration := durationSince(run.CreatedAt, now)
	active, _ := run.Times(now)
	status, reason := FinalStatus(totals), ""
	switch {
	case run.StopReason != "" && totals.NotRunTasks > 0:
		// Stopped by its budget: the jobs in flight have finished, the
		// tasks never started are NOT_RUN.
		status, reason = model.RunStopped, fmt.Sprintf("%s, %d tasks not run", run.StopReason, totals.NotRunTasks)
	case run.StopReason != "":
		// The budget was reached by the last tasks' jobs, every task
		// started: nothing was stopped, the run ends as its records say.
		reason = run.StopReason + ", every task had started"
	}
	err = h.Store.CompleteRun(ctx, in.RunID, store.Completion{Status: status, StopReason: reason, CompletedAt: completedAt, DurationSeconds: duration,
		ActiveSeconds: model.Seconds(active), Executions: len(run.Executions), Totals: totals})
	if errors.Is(err, store.ErrRunFinished) {
		// Another call finished it first (a retry racing this one, an
		// operator's stop): its result stands, and whoever claims it tells it.
		run, err := h.Store.GetRun(ctx, in.RunID)
		if err != nil {
			return model.CompleteOutput{}, err
		}
		if _, err := h.announceEnded(ctx, run); err != nil {
			log.Error("the run's end could not be announced", "error", err.Error())
		}
		return stored(run), nil
	}
	if err != nil {
		return model.CompleteOutput{}, err
	}
	log = log.With("config_name", run.ConfigName)
	perConfig, err := metrics.RunData(metrics.Run{
		ConfigName:      run.ConfigName,
		CompletedTasks:  totals.CompletedTasks,
		FailedTasks:     totals.FailedTasks,
		Accuracy:        totals.Accuracy,
		Score:           totals.Score,
		TotalCostUSD:    string(totals.TotalCostUSD),
		DurationSeconds: duration,
		At:              now,
	})
	if err != nil {
		log.Error("the run's metrics by configuration cannot be built", "error", err.Error())
	}
	h.announce(ctx, ending{run: run, status: status, reason: reason, totals: totals, reasons: reasons, at: now}, perConfig...)
	log.Info("run completed", "status", status, "stop_reason", reason, "score", totals.Score, "duration_seconds", duration)
	return model.CompleteOutput{
		RunID:        in.RunID,
		Status:       status,
		StopReason:   reason,
		CompletedAt:  completedAt,
		FinalMetrics: model.FinalMetrics{Totals: totals, DurationSeconds: duration},
	}, nil
}

// stored is a finished run's result, from its record.
func stored(run *store.Run) model.CompleteOutput {
	cost := run.TotalCostUSD
	if cost == "" {
		cost = "0"
	}
	return model.CompleteOutput{
		RunID:       run.RunID,
		Status:      run.Status,
		StopReason:  run.StopReason,
		CompletedAt: run.CompletedAt,
		FinalMetrics: model.FinalMetrics{
			Totals: model.Totals{TotalTasks: run.TotalTasks, CompletedTasks: run.CompletedTasks, FailedTasks: run.FailedTasks,
				TotalCostUSD: json.Number(cost), Accuracy: run.Accuracy, Score: run.Score, ScoredTasks: run.ScoredTasks,
				StrictScore: run.StrictScore, UnansweredTasks: run.UnansweredTasks, CompletedAfterJobFailure: run.CompletedAfterJobFailure,
				UnreadableCosts: run.UnreadableCosts, NotRunTasks: run.NotRunTasks, ScoreOverRun: run.ScoreOverRun,
				ComputeCostUSD: json.Number(run.ComputeCostUSD), ComputeSeconds: run.ComputeSeconds, UnpricedJobs: run.UnpricedJobs},
			DurationSeconds: run.DurationSeconds,
		},
	}
}

// FinalStatus is a run's status from its totals.
func FinalStatus(t model.Totals) string {
	switch {
	case t.FailedTasks > 0 && t.FailedTasks >= t.TotalTasks:
		return model.RunFailed
	case t.FailedTasks > 0:
		return model.RunCompletedWithErrors
	}
	return model.RunCompleted
}

func validate(in model.CompleteInput) error {
	if in.RunID == "" {
		return &model.InvalidInputError{Field: "run_id", Reason: "is required"}
	}
	if in.Announce {
		return nil // the run's records say everything
	}
	a := in.Aggregation
	if a == nil {
		return &model.InvalidInputError{Field: "aggregation", Reason: "is required: aggregate's output"}
	}
	for _, c := range []struct {
		field string
		n     int
	}{{"total_tasks", a.TotalTasks}, {"completed_tasks", a.CompletedTasks}, {"failed_tasks", a.FailedTasks}} {
		if c.n < 0 {
			return &model.InvalidInputError{Field: "aggregation." + c.field, Reason: fmt.Sprintf("must not be negative, got %d", c.n)}
		}
	}
	if a.CompletedTasks+a.FailedTasks > a.TotalTasks {
		return &model.InvalidInputError{Field: "aggregation.total_tasks", Reason: fmt.Sprintf("%d is less than completed + failed (%d)", a.TotalTasks, a.CompletedTasks+a.FailedTasks)}
	}
	if a.Accuracy < 0 || a.Accuracy > 1 || math.IsNaN(a.Accuracy) {
		return &model.InvalidInputError{Field: "aggregation.accuracy", Reason: fmt.Sprintf("must be within 0..1, got %v", a.Accuracy)}
	}
	if s := a.Score; s != nil && (*s < 0 || *s > 1 || math.IsNaN(*s)) {
		return &model.InvalidInputError{Field: "aggregation.score", Reason: fmt.Sprintf("must be within 0..1 or null, got %v", *s)}
	}
	if a.TotalCostUSD != "" {
		if _, err := a.TotalCostUSD.Float64(); err != nil {
			return &model.InvalidInputError{Field: "aggregation.total_cost_usd", Reason: fmt.Sprintf("%q is not a number", a.TotalCostUSD)}
		}
	}
	return nil
}

// durationSince is the seconds from a run's created_at to now, to the
// millisecond; 0 when created_at cannot be read.
func durationSince(createdAt string, now time.Time) float64 {
	t, err := model.ParseTime(createdAt)
	if err != nil {
		return 0
	}
	return model.Seconds(now.Sub(t))
}
