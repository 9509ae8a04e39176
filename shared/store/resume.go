package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/shared/model"
)

// A resumed run is the same run record, taken over by a new execution: the
// claim below makes it RUNNING again under that execution, the tasks it
// runs again are released (ReleaseTask) and the live counters recounted
// from the records (Recount), all before the new execution's Map starts.

// ErrRunChanged is the answer of ClaimResume when the run is not as its
// caller read it (another resume, a stop, a late end): nothing was written.
var ErrRunChanged = errors.New("the run changed since it was read")

// ResumeClaim is a new execution taking a run over.
type ResumeClaim struct {
	RunID string
	// Seen is the run as the caller read and judged it: the claim holds only
	// if its status and execution_id are still those.
	Seen *Run
	// Executions is the run's new list: the earlier ones, the last given
	// its end, and the new one.
	Executions []model.Execution
	// BudgetUSD and StopAfterFailures replace the run's when set.
	BudgetUSD         *string
	StopAfterFailures *int
	At                string
}

// ClaimResume makes the run RUNNING under the claim's last execution: the
// stop and its reason, the failure streak, the end's notice and time are
// cleared (the run starts attempts again, and its new end is told), on
// condition that the run is as the caller saw it (ErrRunChanged).
func (s *Store) ClaimResume(ctx context.Context, c ResumeClaim) error {
	list, err := attributevalue.MarshalList(c.Executions)
	if err != nil {
		return fmt.Errorf("encode the executions of run %s: %w", c.RunID, err)
	}
	current := c.Executions[len(c.Executions)-1].ExecutionID
	upd := expression.Set(expression.Name(model.AttrStatus), expression.Value(model.RunRunning)).
		Set(expression.Name(model.AttrExecutionID), expression.Value(current)).
		Set(expression.Name(model.AttrExecutions), expression.Value(&types.AttributeValueMemberL{Value: list})).
		Set(expression.Name(model.AttrFailureStreak), expression.Value(0)).
		Set(expression.Name(model.AttrStreakErrors), expression.Value(&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}})).
		Set(expression.Name(model.AttrUpdatedAt), expression.Value(c.At))
	for _, a := range []string{model.AttrStopReason, model.AttrStopKind, model.AttrStoppedAt, model.AttrNotifiedAt,
		model.AttrCompletedAt, model.AttrLastErrorType, model.AttrLastErrorCause} {
		upd = upd.Remove(expression.Name(a))
	}
	if c.BudgetUSD != nil {
		upd = upd.Set(expression.Name(model.AttrBudgetUSD), expression.Value(&types.AttributeValueMemberN{Value: *c.BudgetUSD}))
	}
	if c.StopAfterFailures != nil {
		upd = upd.Set(expression.Name(model.AttrStopAfterFailures), expression.Value(*c.StopAfterFailures))
	}
	cond := expression.Name(model.AttrStatus).Equal(expression.Value(c.Seen.Status))
	if c.Seen.ExecutionID != "" {
		cond = cond.And(expression.Name(model.AttrExecutionID).Equal(expression.Value(c.Seen.ExecutionID)))
	} else {
		cond = cond.And(expression.AttributeNotExists(expression.Name(model.AttrExecutionID)))
	}
	_, err = s.update(ctx, s.runsTable, runKey(c.RunID), upd, cond, types.ReturnValueNone)
	if isConditionFailed(err) {
		return ErrRunChanged
	}
	if err != nil {
		return fmt.Errorf("claim run %s for execution %s: %w", c.RunID, current, err)
	}
	return nil
}

// ReleaseTask makes a task its run's earlier execution left unfinished
// claimable again (status to: PENDING or FAILED), and not counted: a task
// that was FAILED_PERMANENT leaves the run's failures (Recount) and its
// count, its permanence and its give-up are cleared, so that its new outcome
// is counted once. What it was is appended to its history, with the spend
// it recorded (moved there: still the run's, see Tally). The write holds
// only if the task is still as seen (same status and updated_at): released
// is false when it changed, or was released before.
func (s *Store) ReleaseTask(ctx context.Context, runID string, seen Task, to string, entry model.TaskHistoryEntry) (released bool, err error) {
	av, err := attributevalue.Marshal(entry)
	if err != nil {
		return false, fmt.Errorf("encode the history of task %s: %w", seen.TaskID, err)
	}
	history := expression.Name(model.AttrHistory)
	upd := expression.Set(expression.Name(model.AttrStatus), expression.Value(to)).
		Set(expression.Name(model.AttrUpdatedAt), expression.Value(entry.ReleasedAt)).
		Set(history, expression.ListAppend(expression.IfNotExists(history, expression.Value(&types.AttributeValueMemberL{})),
			expression.Value(&types.AttributeValueMemberL{Value: []types.AttributeValue{av}})))
	for _, a := range []string{model.AttrCountedAs, model.AttrCountOwner, model.AttrPermanentByUs, model.AttrGivenUp,
		// Kept in the history entry: the next completion writes its own.
		model.AttrCostUSD, model.AttrTokensInput, model.AttrTokensOutput} {
		upd = upd.Remove(expression.Name(a))
	}
	cond := expression.Name(model.AttrStatus).Equal(expression.Value(seen.Status))
	if seen.UpdatedAt != "" {
		cond = cond.And(expression.Name(model.AttrUpdatedAt).Equal(expression.Value(seen.UpdatedAt)))
	} else {
		cond = cond.And(expression.AttributeNotExists(expression.Name(model.AttrUpdatedAt)))
	}
	_, err = s.update(ctx, s.tasksTable, taskKey(runID, seen.TaskID), upd, cond, types.ReturnValueNone)
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("release task %s of run %s: %w", seen.TaskID, runID, err)
	}
	return true, nil
}

// Recount sets the run's live counters, ours and the public ones, from its
// task records: each task counted (counted_as) in its counter, with the
// cost and tokens its count added, as Count would have counted it, and the
// run's compute, score and accuracy from every task, as aggregate does.
// After a resume released tasks, no count of the earlier executions is in
// flight, and a released task counts nowhere until it settles again.
func (s *Store) Recount(ctx context.Context, runID, at string) error {
	var all, counted Tally
	err := s.EachTask(ctx, runID, func(task Task) error {
		all.Add(task)
		switch task.CountedAs {
		case model.TaskCompleted, model.TaskFailedPermanent:
			task.Status = task.CountedAs
		default:
			// Not counted: only the spend its earlier attempts left in its history.
			task = Task{TaskID: task.TaskID, History: task.History}
		}
		counted.Add(task)
		return nil
	})
	if err != nil {
		return err
	}
	c, live := &all.Counts, &counted.Counts
	// Tasks not counted were added with no status: pending, not failed.
	return s.SaveAggregation(ctx, runID, Aggregation{
		CompletedTasks: live.Completed, FailedTasks: live.Failed, TotalCostUSD: string(counted.Cost.Number()),
		TotalInputTokens: counted.TokensIn, TotalOutputTokens: counted.TokensOut, UnreadableCosts: counted.UnreadableCosts,
		ComputeCostUSD: string(all.Compute.Number()), ComputeSeconds: all.ComputeSeconds, UnpricedJobs: all.UnpricedJobs,
		NotRunTasks: c.NotRun, ScoreOverRun: c.ScoreOverRun(), Accuracy: c.Accuracy(), Score: c.Score(), ScoredTasks: c.Scored(), At: at,
	})
}
