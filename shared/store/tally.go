package store

import (
	"context"
	"fmt"

	"arcbench/shared/model"
	"arcbench/shared/money"
)

// Tally is a run's figures counted from its task records: what aggregate
// reports and complete checks, the one place they are summed.
type Tally struct {
	Counts model.Counts
	Cost   money.Sum
	// Compute is the Fargate cost of the jobs; ComputeSeconds their billed
	// time; UnpricedJobs the jobs left out of Compute.
	Compute        money.Sum
	ComputeSeconds int64
	UnpricedJobs   int
	TokensIn       int64
	TokensOut      int64
	InvalidTasks   int
	// UnreadableCosts are the tasks whose cost could not be read (left out
	// of Cost).
	UnreadableCosts int
	// Invalid describes the first few tasks with unreadable values, for a log line.
	Invalid []string
	// Unchecked are the tasks a worker marked COMPLETED that check-task has
	// not judged (yet): in flight while a run runs, left over once it ended.
	Unchecked []Task
}

// Add counts one task.
func (t *Tally) Add(task Task) {
	t.Counts.Add(task.Outcome())
	if task.Status == model.TaskCompleted && task.Pairs == nil {
		t.Unchecked = append(t.Unchecked, task)
	}
	if task.CostUSD != "" {
		_ = t.Cost.Add(task.CostUSD) // read by money.Cost already
	}
	if task.ComputeCostUSD != "" {
		_ = t.Compute.Add(task.ComputeCostUSD) // DynamoDB numbers, written by check-task
	}
	t.ComputeSeconds += task.ComputeSeconds
	t.UnpricedJobs += task.UnpricedJobs
	t.TokensIn += task.TokensInput
	t.TokensOut += task.TokensOutput
	if task.UnreadableCost() {
		t.UnreadableCosts++
	}
	if len(task.Invalid) > 0 {
		t.InvalidTasks++
		if len(t.Invalid) < 5 {
			v := task.Invalid[0]
			t.Invalid = append(t.Invalid, fmt.Sprintf("%s: %s=%s (%s)", task.TaskID, v.Attribute, v.Value, v.Reason))
		}
	}
}

// Totals are the tally as the state machine passes them on.
func (t *Tally) Totals() model.Totals {
	c := &t.Counts
	return model.Totals{
		TotalTasks: c.Total, CompletedTasks: c.Completed, FailedTasks: c.Failed,
		TotalCostUSD: t.Cost.Number(), ComputeCostUSD: t.Compute.Number(), ComputeSeconds: t.ComputeSeconds, UnpricedJobs: t.UnpricedJobs,
		Accuracy: c.Accuracy(), Score: c.Score(), ScoredTasks: c.Scored(),
		StrictScore: c.StrictScore(), UnansweredTasks: c.Unanswered, CompletedAfterJobFailure: c.AfterJobFailure,
		UnreadableCosts: t.UnreadableCosts, NotRunTasks: c.NotRun, ScoreOverRun: c.ScoreOverRun(),
	}
}

// TallyRun counts every task record of a run (all pages, strongly consistent).
func (s *Store) TallyRun(ctx context.Context, runID string) (*Tally, error) {
	t := &Tally{}
	err := s.EachTask(ctx, runID, func(task Task) error {
		t.Add(task)
		return nil
	})
	return t, err
}
