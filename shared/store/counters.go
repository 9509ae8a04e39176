package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
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
// Counting a task takes three writes:
//  1. the task: the write that settles it (check-task's score, handle-error's
//     move to FAILED_PERMANENT) also sets counted_as and count_owner, the
//     calling handler's own id, unless they are set already: of any number
//     of calls, concurrent or repeated, exactly one owns the count, and a
//     caller whose response was lost (the SDK retries, and is refused) reads
//     its own id back;
//  2. the run, by the owner only: our counters + 1, the public ones set from
//     them, and the count's token added to the run's "counting" set, on
//     condition that it is not there yet: a retry after a lost response is
//     refused, the count having been applied;
//  3. the run: the token removed, so the set holds the counts in flight, not
//     the run's history (aggregate clears what a dead handler left).
//
// An owner that dies between 1 and 2 leaves the live count one short, never
// one over; aggregate sets every counter from the task records at the end.

// NewOwner is a fresh count_owner: one per handler call.
func NewOwner() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// claim is the part of a settling write that elects the task's counter
// (step 1): counted_as and count_owner, unless set before.
func claim(upd expression.UpdateBuilder, status, owner string) expression.UpdateBuilder {
	return upd.Set(expression.Name(model.AttrCountedAs), expression.IfNotExists(expression.Name(model.AttrCountedAs), expression.Value(status))).
		Set(expression.Name(model.AttrCountOwner), expression.IfNotExists(expression.Name(model.AttrCountOwner), expression.Value(owner)))
}

// Outcome is a settled task as the run's live counters count it.
type Outcome struct {
	RunID, TaskID string
	// Status is model.TaskCompleted or model.TaskFailedPermanent: the
	// counter it goes in.
	Status string
	// CostUSD (decimal text, "" for none) and the tokens of a completed task.
	CostUSD             string
	TokensIn, TokensOut int64
	// UnreadableCost: the worker wrote a cost that cannot be read; it is
	// counted beside the total it is left out of.
	UnreadableCost bool
	At             string
}

// counter is one of the run's live counters: ours and the public one set from it.
type counter struct{ ours, public string }

var counters = []counter{
	{model.AttrCountedCompleted, model.AttrCompletedTasks},
	{model.AttrCountedFailed, model.AttrFailedTasks},
	{model.AttrCountedCostUSD, model.AttrTotalCostUSD},
	{model.AttrCountedInputTokens, model.AttrTotalInputTokens},
	{model.AttrCountedOutputTokens, model.AttrTotalOutputTokens},
	{model.AttrCountedUnreadableCosts, model.AttrUnreadableCosts},
}

// deltas are what an outcome adds to the counters, by our counter's name:
// one to the completed or the failed count, and the spend the task records
// (a failed task may record some: counted once, as aggregate counts it).
func (o Outcome) deltas() map[string]types.AttributeValue {
	cost := o.CostUSD
	if cost == "" {
		cost = "0"
	}
	completed, failed, unreadable := 1, 0, 0
	if o.Status == model.TaskFailedPermanent {
		completed, failed = 0, 1
	}
	if o.UnreadableCost {
		unreadable = 1
	}
	return map[string]types.AttributeValue{
		model.AttrCountedCompleted:       number(completed),
		model.AttrCountedFailed:          number(failed),
		model.AttrCountedCostUSD:         &types.AttributeValueMemberN{Value: cost},
		model.AttrCountedInputTokens:     int64Number(o.TokensIn),
		model.AttrCountedOutputTokens:    int64Number(o.TokensOut),
		model.AttrCountedUnreadableCosts: number(unreadable),
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

// Count counts a settled task in the run's live counters (steps 2 and 3),
// for the owner of its count only. A count applied before (its response
// lost, its token still there) is not applied again. A missing run is a
// *model.RunNotFoundError.
func (s *Store) Count(ctx context.Context, o Outcome) error {
	tok := o.token()
	upd := countersFrom(o.deltas(), o.At).
		Add(expression.Name(model.AttrCounting), expression.Value(&types.AttributeValueMemberSS{Value: []string{tok}}))
	if o.Status == model.TaskCompleted {
		// A success ends the run's failure streak.
		upd = upd.Set(expression.Name(model.AttrFailureStreak), expression.Value(0)).
			Set(expression.Name(model.AttrStreakErrors), expression.Value(&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}))
	}
	cond := expression.AttributeExists(expression.Name(model.AttrRunID)).
		And(expression.Not(expression.Contains(expression.Name(model.AttrCounting), tok)))
	run, err := s.update(ctx, s.runsTable, runKey(o.RunID), upd, cond, types.ReturnValueAllNew)
	switch {
	case isConditionFailed(err):
		// The run is missing, or this count was applied before.
		if _, err := s.GetRun(ctx, o.RunID); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("count task %s in run %s: %w", o.TaskID, o.RunID, err)
	default:
		// The spend just counted may have reached the run's budget.
		if err := s.checkBudget(ctx, o.RunID, run, o.At); err != nil {
			return err
		}
	}
	release := expression.Delete(expression.Name(model.AttrCounting), expression.Value(&types.AttributeValueMemberSS{Value: []string{tok}}))
	return s.updateRun(ctx, o.RunID, release, "release count "+tok+" of run")
}

// ClaimCount elects the owner of a settled task's count when the write that
// settled it did not (a task scored before counts were kept): counted_as
// and count_owner, unless set before. It returns the owner elected.
func (s *Store) ClaimCount(ctx context.Context, runID, taskID, status, owner string) (string, error) {
	task, err := s.update(ctx, s.tasksTable, taskKey(runID, taskID), claim(expression.UpdateBuilder{}, status, owner),
		expression.AttributeExists(expression.Name(model.AttrTaskID)), types.ReturnValueAllNew)
	if isConditionFailed(err) {
		return "", &model.TaskNotFoundError{RunID: runID, TaskID: taskID}
	}
	if err != nil {
		return "", fmt.Errorf("claim the count of task %s in run %s: %w", taskID, runID, err)
	}
	return item(task).str(model.AttrCountOwner), nil
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
	_, err := s.update(ctx, s.tasksTable, taskKey(runID, taskID), upd, cond, types.ReturnValueNone)
	return err
}

func int64Number(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
