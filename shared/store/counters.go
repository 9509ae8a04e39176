package store

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/shared/model"
)

// The run's live counters are the orchestration's, whatever the worker adds
// to them. The worker adds to completed_tasks, total_cost_usd and the token
// totals with a plain "+" (and, in some versions, to failed_tasks); a worker
// may count nothing, or count a task that check-task then refuses. So each
// task is counted once, by its own settled outcome, into counters of ours
// (model.AttrCountedCompleted...), and every such write sets the public
// counters from ours in the same update: what a worker added is overwritten
// at the next count, seconds later.
//
// Counting is three writes, each safe to repeat, so that neither a lost
// response that the SDK retries nor a handler that dies half-way counts a
// task twice or not at all:
//  1. the run: our counters + 1, the public ones set from them, and the
//     count's token added to the run's "counting" set, on condition that the
//     token is not there yet (a repeat is refused: it was applied);
//  2. the task: counted_as, once (for a completion, with its score, in the
//     same write); from then on nobody counts it again;
//  3. the run: the token removed, so the set holds the counts in flight, not
//     the run's history (aggregate clears what a dead handler left).

// Outcome is a settled task as the run's live counters count it.
type Outcome struct {
	RunID, TaskID string
	// Status is model.TaskCompleted or model.TaskFailedPermanent: the
	// counter it goes in.
	Status string
	// CostUSD (decimal text, "" for none) and the tokens of a completed task.
	CostUSD             string
	TokensIn, TokensOut int64
	At                  string
}

// counter is one of the run's live counters: ours and the public one set from it.
type counter struct{ ours, public string }

var counters = []counter{
	{model.AttrCountedCompleted, model.AttrCompletedTasks},
	{model.AttrCountedFailed, model.AttrFailedTasks},
	{model.AttrCountedCostUSD, model.AttrTotalCostUSD},
	{model.AttrCountedInputTokens, model.AttrTotalInputTokens},
	{model.AttrCountedOutputTokens, model.AttrTotalOutputTokens},
}

// deltas are what an outcome adds to the counters it changes, by our
// counter's name: a failure the failed count; a completion the completed
// count, its cost and its tokens. (Each counter the worker adds to is set
// from ours by the count of the very task it added for, which always comes
// after.)
func (o Outcome) deltas() map[string]types.AttributeValue {
	if o.Status == model.TaskFailedPermanent {
		return map[string]types.AttributeValue{model.AttrCountedFailed: number(1)}
	}
	cost := o.CostUSD
	if cost == "" {
		cost = "0"
	}
	return map[string]types.AttributeValue{
		model.AttrCountedCompleted:    number(1),
		model.AttrCountedCostUSD:      &types.AttributeValueMemberN{Value: cost},
		model.AttrCountedInputTokens:  int64Number(o.TokensIn),
		model.AttrCountedOutputTokens: int64Number(o.TokensOut),
	}
}

// token names one count: its task and the counter.
func (o Outcome) token() string {
	if o.Status == model.TaskFailedPermanent {
		return "failed:" + o.TaskID
	}
	return "completed:" + o.TaskID
}

// countersFrom sets public counters from ours: with d (what an outcome adds,
// by our counter's name) only the counters d names, ours to ours + d and the
// public one to the same sum; with d nil every public counter to ours. A run
// written before our counters existed counts from 0.
func countersFrom(d map[string]types.AttributeValue, at string) expression.UpdateBuilder {
	upd := expression.Set(expression.Name(model.AttrUpdatedAt), expression.Value(at))
	for _, c := range counters {
		base := expression.IfNotExists(expression.Name(c.ours), expression.Value(0))
		if d == nil {
			upd = upd.Set(expression.Name(c.public), base)
			continue
		}
		delta, ok := d[c.ours]
		if !ok {
			continue
		}
		v := expression.Plus(base, expression.Value(delta))
		upd = upd.Set(expression.Name(c.ours), v).Set(expression.Name(c.public), v)
	}
	return upd
}

// CountOutcome counts a settled task in the run's live counters, once (all
// three steps): a task already counted (model.AttrCountedAs) must not be
// passed again, and a repeated call for one whose count was applied but not
// yet recorded on the task (a lost response, a handler that died) does not
// count it again. A missing run is a *model.RunNotFoundError.
func (s *Store) CountOutcome(ctx context.Context, o Outcome) error {
	if err := s.Count(ctx, o); err != nil {
		return err
	}
	if err := s.markCounted(ctx, o); err != nil {
		return err
	}
	return s.ReleaseCount(ctx, o)
}

// Count is the first step of counting an outcome: the run's counters, with
// the count's token. A count applied before (its token still there) is not
// applied again. The caller then records on the task that it is counted
// (SaveScore does, for a completion) and releases the count (ReleaseCount).
func (s *Store) Count(ctx context.Context, o Outcome) error {
	tok := o.token()
	upd := countersFrom(o.deltas(), o.At).
		Add(expression.Name(model.AttrCounting), expression.Value(&types.AttributeValueMemberSS{Value: []string{tok}}))
	cond := expression.AttributeExists(expression.Name(model.AttrRunID)).
		And(expression.Not(expression.Contains(expression.Name(model.AttrCounting), tok)))
	err := s.updateRunIf(ctx, o.RunID, upd, cond)
	if isConditionFailed(err) {
		// The run is missing, or this count was applied before.
		_, err = s.GetRun(ctx, o.RunID)
		return err
	}
	if err != nil {
		return fmt.Errorf("count task %s in run %s: %w", o.TaskID, o.RunID, err)
	}
	return nil
}

// markCounted records on the task which counter holds it; a task marked
// before keeps its mark.
func (s *Store) markCounted(ctx context.Context, o Outcome) error {
	upd := expression.Set(expression.Name(model.AttrCountedAs), expression.Value(o.Status))
	cond := expression.AttributeExists(expression.Name(model.AttrTaskID)).
		And(expression.AttributeNotExists(expression.Name(model.AttrCountedAs)))
	err := s.updateTaskIf(ctx, o.RunID, o.TaskID, upd, cond)
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("mark task %s of run %s counted: %w", o.TaskID, o.RunID, err)
	}
	return nil
}

// ReleaseCount removes a count's token from the run's set, once the task
// records that it is counted.
func (s *Store) ReleaseCount(ctx context.Context, o Outcome) error {
	tok := o.token()
	upd := expression.Delete(expression.Name(model.AttrCounting), expression.Value(&types.AttributeValueMemberSS{Value: []string{tok}}))
	return s.updateRun(ctx, o.RunID, upd, "release count "+tok+" of run")
}

// RefreshCounters sets the run's public counters from ours, undoing what a
// worker added for a task that is not counted (one check-task refused).
func (s *Store) RefreshCounters(ctx context.Context, runID, at string) error {
	return s.updateRun(ctx, runID, countersFrom(nil, at), "refresh the counters of run")
}

// NoAnswer is a completion check-task refuses: the task holds no answer and
// shows no spend, so its model was never reached.
type NoAnswer struct {
	RunID, TaskID string
	// Attempt is the attempt whose completion is refused.
	Attempt int
	Cause   string
	// SeenUpdatedAt is the task's updated_at as check-task judged it: a
	// record changed since is not reverted.
	SeenUpdatedAt string
	At            string
}

// RevertNoAnswer moves a task its worker marked COMPLETED without an answer
// back to FAILED, so that the next attempt's claim succeeds, with the reason;
// handle-error then counts the attempt. Only the very record check-task
// judged is moved: ErrNotCompleted when it changed since.
func (s *Store) RevertNoAnswer(ctx context.Context, n NoAnswer) error {
	upd := expression.Set(expression.Name(model.AttrStatus), expression.Value(model.TaskFailed)).
		Set(expression.Name(model.AttrNoAnswerAttempt), expression.Value(n.Attempt)).
		Set(expression.Name(model.AttrLastErrorType), expression.Value(model.ErrNoAnswer)).
		Set(expression.Name(model.AttrLastErrorCause), expression.Value(n.Cause)).
		Set(expression.Name(model.AttrLastErrorAt), expression.Value(n.At)).
		Set(expression.Name(model.AttrUpdatedAt), expression.Value(n.At))
	unchanged := expression.AttributeNotExists(expression.Name(model.AttrUpdatedAt))
	if n.SeenUpdatedAt != "" {
		unchanged = expression.Name(model.AttrUpdatedAt).Equal(expression.Value(n.SeenUpdatedAt))
	}
	cond := expression.Name(model.AttrStatus).Equal(expression.Value(model.TaskCompleted)).
		And(expression.AttributeNotExists(expression.Name(model.AttrCountedAs))).
		And(unchanged)
	err := s.updateTaskIf(ctx, n.RunID, n.TaskID, upd, cond)
	if isConditionFailed(err) {
		return ErrNotCompleted
	}
	if err != nil {
		return fmt.Errorf("move task %s of run %s back to FAILED: %w", n.TaskID, n.RunID, err)
	}
	return nil
}

// updateTaskIf applies upd to a task record when cond holds.
func (s *Store) updateTaskIf(ctx context.Context, runID, taskID string, upd expression.UpdateBuilder, cond expression.ConditionBuilder) error {
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return fmt.Errorf("build update: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.tasksTable,
		Key:                       taskKey(runID, taskID),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	return err
}

func int64Number(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
