package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"

	"arcbench/shared/model"
)

// ClaimNotice claims the announcement of a run's end (its SNS message and
// run-end metrics) for the caller: it sets notified_at on condition that it
// is not set and the run has ended. claimed is false when another call
// claimed it first, or the run is still RUNNING; a missing run is a
// *model.RunNotFoundError. Whoever claims it publishes; nobody else does.
func (s *Store) ClaimNotice(ctx context.Context, runID, at string) (claimed bool, err error) {
	upd := expression.Set(expression.Name(model.AttrNotifiedAt), expression.Value(at))
	cond := expression.AttributeExists(expression.Name(model.AttrRunID)).
		And(expression.AttributeNotExists(expression.Name(model.AttrNotifiedAt))).
		And(expression.Name(model.AttrStatus).NotEqual(expression.Value(model.RunRunning)))
	err = s.updateRunIf(ctx, runID, upd, cond)
	if isConditionFailed(err) {
		// Refused: tell a missing run from one claimed or still running.
		if _, err := s.GetRun(ctx, runID); err != nil {
			return false, err
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim the end notice of run %s: %w", runID, err)
	}
	return true, nil
}

// NoteFailedAttempt tells whether a failed attempt of a task is reported
// for the first time: it sets the task's noted_attempt to attempt on
// condition that it is below it (or unset). noted is false for a repeated
// report of that attempt, or a late one of an earlier attempt. A missing
// task is a *model.TaskNotFoundError.
func (s *Store) NoteFailedAttempt(ctx context.Context, runID, taskID string, attempt int) (noted bool, err error) {
	name := expression.Name(model.AttrNotedAttempt)
	upd := expression.Set(name, expression.Value(attempt))
	cond := expression.AttributeExists(expression.Name(model.AttrTaskID)).
		And(expression.AttributeNotExists(name).Or(name.LessThan(expression.Value(attempt))))
	err = s.updateTaskIf(ctx, runID, taskID, upd, cond)
	if isConditionFailed(err) {
		if _, err := s.GetTask(ctx, runID, taskID); err != nil {
			return false, err
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("note failed attempt %d of task %s in run %s: %w", attempt, taskID, runID, err)
	}
	return true, nil
}
