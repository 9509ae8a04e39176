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
	// Attempts are the jobs whose end was recorded (one per attempt that
	// ran), over all the run's executions.
	Attempts int
	// Reused are the tasks taken from an earlier run's results, ReusedCost
	// what they cost there (not in Cost: paid once, by that run).
	Reused     int
	ReusedCost money.Sum
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
	// What earlier executions' attempts spent, moved into the history when
	// a resume released the task: still spent by this run.
	for _, h := range task.History {
		if c, err := money.Cost(h.CostUSD); err == nil && h.CostUSD != "" {
			_ = t.Cost.Add(c)
		}
		t.TokensIn += h.TokensInput
		t.TokensOut += h.TokensOutput
	}
	if task.ComputeCostUSD != "" {
		_ = t.Compute.Add(task.ComputeCostUSD) // DynamoDB numbers, written by check-task
	}
	t.ComputeSeconds += task.ComputeSeconds
	t.Attempts += len(task.ComputeAttempts)
	if task.ReusedFrom != "" {
		t.Reused++
		_ = t.ReusedCost.Add(cmpOr(task.ReusedCostUSD, "0")) // a DynamoDB number, written by initialize
	}
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
