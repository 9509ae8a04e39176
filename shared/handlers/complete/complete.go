// Package complete closes a run: its final status, completion time and
// duration, and its CloudWatch metrics.
package complete

import (
	"context"
	"fmt"
	"math"
	"time"

	"arcbench/shared/lambdaio"
	"arcbench/shared/metrics"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// Store is what complete needs of the run store.
type Store interface {
	GetRun(ctx context.Context, runID string) (*store.Run, error)
	CompleteRun(ctx context.Context, runID string, c store.Completion) error
}

var _ Store = (*store.Store)(nil)

// Metrics publishes a finished run's figures.
type Metrics interface {
	PublishRun(ctx context.Context, r metrics.Run) error
}

var _ Metrics = (*metrics.Publisher)(nil)

// MetricsTimeout bounds the CloudWatch call: metrics never hold a run open.
const MetricsTimeout = 3 * time.Second

// Handler is the complete Lambda.
type Handler struct {
	Store   Store
	Metrics Metrics
	Now     func() time.Time
}

// Handle sets the final status (FAILED when every task failed, COMPLETED_WITH_ERRORS
// when some did, else COMPLETED), then publishes metrics; a metrics failure
// is logged and the run completes all the same.
func (h *Handler) Handle(ctx context.Context, in model.CompleteInput) (model.CompleteOutput, error) {
	if err := validate(in); err != nil {
		return model.CompleteOutput{}, err
	}
	run, err := h.Store.GetRun(ctx, in.RunID)
	if err != nil {
		return model.CompleteOutput{}, err
	}
	agg := *in.Aggregation
	if agg.TotalCostUSD == "" {
		agg.TotalCostUSD = "0"
	}
	now := h.Now()
	completedAt := model.FormatTime(now)
	duration := durationSince(run.CreatedAt, now)
	status := FinalStatus(agg)
	if err := h.Store.CompleteRun(ctx, in.RunID, store.Completion{Status: status, CompletedAt: completedAt, DurationSeconds: duration}); err != nil {
		return model.CompleteOutput{}, err
	}
	log := lambdaio.Logger(ctx).With("run_id", in.RunID, "config_name", run.ConfigName)
	mctx, cancel := context.WithTimeout(ctx, MetricsTimeout)
	defer cancel()
	if err := h.Metrics.PublishRun(mctx, metrics.Run{
		ConfigName:      run.ConfigName,
		CompletedTasks:  agg.CompletedTasks,
		FailedTasks:     agg.FailedTasks,
		Accuracy:        agg.Accuracy,
		Score:           agg.Score,
		TotalCostUSD:    string(agg.TotalCostUSD),
		DurationSeconds: duration,
		At:              now,
	}); err != nil {
		log.Error("metrics not published; the run is complete all the same", "error", err.Error())
	}
	log.Info("run completed", "status", status, "score", agg.Score, "duration_seconds", duration)
	return model.CompleteOutput{
		RunID:        in.RunID,
		Status:       status,
		CompletedAt:  completedAt,
		FinalMetrics: model.FinalMetrics{Totals: agg, DurationSeconds: duration},
	}, nil
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
	return math.Round(now.Sub(t).Seconds()*1000) / 1000
}
