package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/shared/model"
)

// ComputeUse is the compute of one attempt's Batch job, as check-task
// records it on the task and adds it to the run.
type ComputeUse struct {
	RunID, TaskID string
	Attempt       int
	// CostUSD is the Fargate cost (decimal text); "" when it could not be
	// priced (the job's seconds are kept, and it counts as unpriced).
	CostUSD string
	// Seconds is the billed time of the job's runs.
	Seconds int64
	// Owner is the calling handler's id (NewOwner).
	Owner string
	At    string
}

// RecordCompute records an attempt's compute once, however often it is
// called, in the counting scheme of Count: the task's write (on condition
// that the attempt is not recorded yet) elects its owner, and only the owner
// adds it to the run, under a token that refuses a repeat after a lost
// response. An owner that dies between the two leaves the run's live
// compute short, never over; aggregate sets it from the task records.
// owned tells whether this call recorded the attempt (once per attempt).
func (s *Store) RecordCompute(ctx context.Context, c ComputeUse) (owned bool, err error) {
	attempt := strconv.Itoa(c.Attempt)
	upd := expression.Add(expression.Name(model.AttrComputeSeconds), expression.Value(int64Number(c.Seconds))).
		Add(expression.Name(model.AttrComputeAttempts), expression.Value(&types.AttributeValueMemberNS{Value: []string{attempt}})).
		Set(expression.Name(model.AttrComputeOwner), expression.Value(c.Owner))
	if c.CostUSD != "" {
		upd = upd.Add(expression.Name(model.AttrComputeCostUSD), expression.Value(&types.AttributeValueMemberN{Value: c.CostUSD}))
	} else {
		upd = upd.Add(expression.Name(model.AttrUnpricedJobs), expression.Value(1))
	}
	cond := expression.AttributeExists(expression.Name(model.AttrTaskID)).
		And(expression.Not(expression.Contains(expression.Name(model.AttrComputeAttempts), c.Attempt)))
	err = s.updateTaskIf(ctx, c.RunID, c.TaskID, upd, cond)
	if isConditionFailed(err) {
		// Recorded before, by us (our response lost) or by an earlier call.
		t, err := s.GetTask(ctx, c.RunID, c.TaskID)
		if err != nil {
			return false, err
		}
		if !slices.Contains(t.ComputeAttempts, c.Attempt) || t.ComputeOwner != c.Owner {
			return false, nil
		}
	} else if err != nil {
		return false, fmt.Errorf("record compute of attempt %d of task %s in run %s: %w", c.Attempt, c.TaskID, c.RunID, err)
	}

	tok := "compute:" + c.TaskID + "#" + attempt
	cost, unpriced := c.CostUSD, 0
	if cost == "" {
		cost, unpriced = "0", 1
	}
	add := expression.Add(expression.Name(model.AttrComputeCostUSD), expression.Value(&types.AttributeValueMemberN{Value: cost})).
		Add(expression.Name(model.AttrComputeSeconds), expression.Value(int64Number(c.Seconds))).
		Add(expression.Name(model.AttrUnpricedJobs), expression.Value(unpriced)).
		Add(expression.Name(model.AttrCounting), expression.Value(&types.AttributeValueMemberSS{Value: []string{tok}}))
	err = s.updateRunIf(ctx, c.RunID, add, expression.AttributeExists(expression.Name(model.AttrRunID)).
		And(expression.Not(expression.Contains(expression.Name(model.AttrCounting), tok))))
	switch {
	case isConditionFailed(err):
		// The run is missing, or this compute was added before.
		if _, err := s.GetRun(ctx, c.RunID); err != nil {
			return false, err
		}
	case err != nil:
		return false, fmt.Errorf("add compute of task %s to run %s: %w", c.TaskID, c.RunID, err)
	}
	release := expression.Delete(expression.Name(model.AttrCounting), expression.Value(&types.AttributeValueMemberSS{Value: []string{tok}}))
	return true, s.updateRun(ctx, c.RunID, release, "release count "+tok+" of run")
}
