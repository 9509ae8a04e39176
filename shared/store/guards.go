package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/shared/model"
	"arcbench/shared/money"
)

// A run guards its spending and its failures. Its stop_reason, once set,
// stops every new attempt (the state machine reads it before each job): by
// its budget, when the model cost counted reaches budget_usd (checked as each
// task is counted); by early stop, when stop_after_failures attempts in a
// row failed (failure_streak, reset by every success); by an operator.

// Stop records that a run is to stop, once: a run stopped before keeps its
// first kind and reason (stopped is then false). With final the run also
// leaves RUNNING for STOPPED at once (early stop, an operator: its execution
// is stopped too); a budget stop lets the run's jobs in flight finish, and
// complete ends it STOPPED. A run that has finished is left as it is
// (ErrRunFinished).
func (s *Store) Stop(ctx context.Context, runID, kind, reason, at string, final bool) (stopped bool, err error) {
	keep := func(name, v string) expression.SetValueBuilder {
		return expression.IfNotExists(expression.Name(name), expression.Value(v))
	}
	upd := expression.Set(expression.Name(model.AttrStopReason), keep(model.AttrStopReason, reason)).
		Set(expression.Name(model.AttrStopKind), keep(model.AttrStopKind, kind)).
		Set(expression.Name(model.AttrStoppedAt), keep(model.AttrStoppedAt, at)).
		Set(expression.Name(model.AttrUpdatedAt), expression.Value(at))
	cond := expression.Name(model.AttrStatus).Equal(expression.Value(model.RunRunning))
	if final {
		upd = upd.Set(expression.Name(model.AttrStatus), expression.Value(model.RunStopped)).
			Set(expression.Name(model.AttrCompletedAt), expression.Value(at))
	}
	old, err := s.update(ctx, s.runsTable, runKey(runID), upd, cond, types.ReturnValueUpdatedOld)
	if isConditionFailed(err) {
		if _, err := s.GetRun(ctx, runID); err != nil {
			return false, err
		}
		return false, ErrRunFinished
	}
	if err != nil {
		return false, fmt.Errorf("stop run %s: %w", runID, err)
	}
	// Stopped by this call when there was no reason before it.
	return item(old).str(model.AttrStopReason) == "", nil
}

// checkBudget stops a run (a budget stop) whose counted cost, as the count
// just left it (its new image), reached its budget.
func (s *Store) checkBudget(ctx context.Context, runID string, run map[string]types.AttributeValue, at string) error {
	it := item(run)
	budget, spent := it.num(model.AttrBudgetUSD), it.num(model.AttrCountedCostUSD)
	if budget == "" || spent == "" || it.str(model.AttrStopReason) != "" {
		return nil
	}
	c, err := money.Compare(spent, budget)
	if err != nil || c < 0 {
		return nil
	}
	reason := fmt.Sprintf("budget $%s reached at $%s", budget, trimCost(spent))
	if _, err := s.Stop(ctx, runID, model.StopBudget, reason, at, false); err != nil && !errors.Is(err, ErrRunFinished) {
		return err
	}
	return nil
}

// trimCost writes a cost as money does (no trailing zeros).
func trimCost(v string) string {
	if c, err := money.Cost(v); err == nil {
		return c
	}
	return v
}

// Streak is a run's failure streak after a failed attempt was noted.
type Streak struct {
	// Count is how many attempts in a row failed, Errors how many of them
	// by reason.
	Count  int
	Errors map[string]int
	// Threshold is the run's stop_after_failures (0: never stop).
	Threshold int
	// StopReason is set when the run is stopped already; ExecutionID is
	// the run's execution (to stop it).
	StopReason  string
	ExecutionID string
}

// Reached tells whether the streak calls for an early stop.
func (s Streak) Reached() bool {
	return s.Threshold > 0 && s.Count >= s.Threshold && s.StopReason == ""
}

// Commonest is the streak's most common reason with its count ("20 x
// NoAnswer: Error code: 500"); ties go to the first reason in order.
func (s Streak) Commonest() string {
	reasons := make([]string, 0, len(s.Errors))
	for r := range s.Errors {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		a, b := s.Errors[reasons[i]], s.Errors[reasons[j]]
		return a > b || a == b && reasons[i] < reasons[j]
	})
	if len(reasons) == 0 {
		return ""
	}
	return fmt.Sprintf("%d x %s", s.Errors[reasons[0]], reasons[0])
}

// MaxStreakReasons bounds the reasons a failure streak keeps apart; the
// rest are counted together as OtherReasons, so that a streak of causes
// that all differ never grows the run record.
const MaxStreakReasons = 10

// OtherReasons counts the failures of a streak past its MaxStreakReasons.
const OtherReasons = "(other reasons)"

// NoteFailure adds one failed attempt, of the given reason, to the run's
// failure streak. A run whose early stop is off (stop_after_failures 0, or
// made before runs had one) keeps no streak: Streak{} is the answer. (A
// report delivered twice counts twice: the streak stops a run at most one
// attempt early, it is not a published figure.)
func (s *Store) NoteFailure(ctx context.Context, runID, reason, at string) (Streak, error) {
	// The reason is a map key, whatever it holds (dots, brackets).
	reason = strings.NewReplacer("[", "(", "]", ")").Replace(model.Truncate(reason, 200, "..."))
	if reason == "" {
		reason = "unknown"
	}
	for try := 0; try < 3; try++ {
		byReason := expression.Name(model.AttrStreakErrors).AppendName(expression.NameNoDotSplit(reason))
		upd := expression.Set(expression.Name(model.AttrFailureStreak),
			expression.Plus(expression.IfNotExists(expression.Name(model.AttrFailureStreak), expression.Value(0)), expression.Value(1))).
			Set(byReason, expression.Plus(expression.IfNotExists(byReason, expression.Value(0)), expression.Value(1))).
			Set(expression.Name(model.AttrUpdatedAt), expression.Value(at))
		room := MaxStreakReasons
		if reason == OtherReasons {
			room++ // the others' own place
		}
		cond := expression.Name(model.AttrStopAfterFailures).GreaterThan(expression.Value(0)).
			And(expression.Or(expression.AttributeExists(byReason),
				expression.Name(model.AttrStreakErrors).Size().LessThan(expression.Value(room))))
		run, err := s.update(ctx, s.runsTable, runKey(runID), upd, cond, types.ReturnValueAllNew)
		if err == nil {
			return streakOf(run), nil
		}
		if !isConditionFailed(err) {
			return Streak{}, fmt.Errorf("note a failed attempt in run %s: %w", runID, err)
		}
		// Why not: a missing run, early stop off, no streak yet, or a
		// streak with its reasons all taken.
		got, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: &s.runsTable, Key: runKey(runID), ConsistentRead: aws.Bool(true),
			ProjectionExpression:     aws.String("#stop, #streak"),
			ExpressionAttributeNames: map[string]string{"#stop": model.AttrStopAfterFailures, "#streak": model.AttrStreakErrors},
		})
		switch {
		case err != nil:
			return Streak{}, fmt.Errorf("read the failure streak of run %s: %w", runID, err)
		case got.Item == nil:
			return Streak{}, &model.RunNotFoundError{RunID: runID}
		case item(got.Item).int(model.AttrStopAfterFailures) <= 0:
			return Streak{}, nil
		case got.Item[model.AttrStreakErrors] == nil:
			if err := s.updateRun(ctx, runID, expression.Set(expression.Name(model.AttrStreakErrors),
				expression.IfNotExists(expression.Name(model.AttrStreakErrors), expression.Value(&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}))),
				"start the failure streak of run"); err != nil {
				return Streak{}, err
			}
		default:
			reason = OtherReasons
		}
	}
	return Streak{}, fmt.Errorf("note a failed attempt in run %s: its failure streak changed under three tries", runID)
}

// streakOf reads a run's failure streak from its record.
func streakOf(attrs map[string]types.AttributeValue) Streak {
	it := item(attrs)
	st := Streak{Count: it.int(model.AttrFailureStreak), Threshold: it.int(model.AttrStopAfterFailures),
		StopReason: it.str(model.AttrStopReason), ExecutionID: it.str(model.AttrExecutionID), Errors: map[string]int{}}
	if m, ok := attrs[model.AttrStreakErrors].(*types.AttributeValueMemberM); ok {
		for k, v := range m.Value {
			if n, ok := v.(*types.AttributeValueMemberN); ok {
				st.Errors[k], _ = strconv.Atoi(n.Value)
			}
		}
	}
	return st
}
