package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/shared/model"
)

// ReusedOwner is the count_owner of a reused task: counted by the run
// record's creation (CreateRun), never by a handler.
const ReusedOwner = "reused"

// Reuse is a task a new run takes from an earlier run's result instead of
// running it (see model.InitializeInput.ReuseRunID).
type Reuse struct {
	// Source is the task's record in SourceRun.
	Source    Task
	SourceRun string
}

// WithReused is the new run r taking n results (costing cost where they
// were paid) from run from ("": none asked for; n may be 0).
func (r Run) WithReused(from string, n int, cost string) Run {
	if from != "" {
		r.ReusedFrom, r.ReusedTasks, r.ReusedCostUSD = from, n, cost
	}
	return r
}

// PaidBy is the run that paid for the result: the source, or the run the
// source reused it from in turn.
func (r Reuse) PaidBy() string { return cmpOr(r.Source.ReusedFrom, r.SourceRun) }

// Cost is what the result cost where it was paid ("0" when none was recorded).
func (r Reuse) Cost() string {
	if r.Source.ReusedFrom != "" {
		return cmpOr(r.Source.ReusedCostUSD, "0")
	}
	return cmpOr(r.Source.CostUSD, "0")
}

// PutReusedTasks writes the reused tasks of a new run, COMPLETED as their
// source was scored: its submission (by its key in the source run), its
// score and marks and the digest of the data they were scored against; the
// run that paid for it and what it cost there, never as this run's cost;
// counted (counted_as COMPLETED) by the run record CreateRun writes.
func (s *Store) PutReusedTasks(ctx context.Context, runID string, reused []Reuse, now string) error {
	return s.putTasks(ctx, runID, len(reused), func(i int) map[string]types.AttributeValue { return reusedItem(runID, reused[i], now) })
}

func reusedItem(runID string, r Reuse, now string) map[string]types.AttributeValue {
	t := r.Source
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	it := map[string]types.AttributeValue{
		model.AttrRunID:      s(runID),
		model.AttrTaskID:     s(t.TaskID),
		model.AttrStatus:     s(model.TaskCompleted),
		model.AttrRetryCount: number(0),
		model.AttrCreatedAt:  s(now),
		model.AttrUpdatedAt:  s(now),
		// A key of the source run's folder, read as it is (model.ResolveResultKey).
		model.AttrResultS3Key:   s(model.ResolveResultKey(r.SourceRun, t.ResultS3Key)),
		model.AttrIsCorrect:     &types.AttributeValueMemberBOOL{Value: t.IsCorrect},
		model.AttrPairsCorrect:  number(t.PairsCorrect),
		model.AttrDataSHA256:    s(t.DataSHA256),
		model.AttrReusedFrom:    s(r.PaidBy()),
		model.AttrReusedCostUSD: &types.AttributeValueMemberN{Value: r.Cost()},
		model.AttrCountedAs:     s(model.TaskCompleted),
		model.AttrCountOwner:    s(ReusedOwner),
		model.AttrAttemptMarks:  marksValue(t.Marks),
	}
	if t.Pairs != nil {
		it[model.AttrPairs] = number(*t.Pairs)
	}
	if t.Score != nil {
		it[model.AttrScore] = &types.AttributeValueMemberN{Value: fmt.Sprint(*t.Score)}
	}
	if t.AnsweredAttempts != nil {
		it[model.AttrAnsweredAttempts] = number(*t.AnsweredAttempts)
	}
	for attr, v := range map[string]string{model.AttrScoreError: t.ScoreError, model.AttrJobError: t.JobError} {
		if v != "" {
			it[attr] = s(v)
		}
	}
	return it
}

// marksValue is a task's attempt marks as the record holds them.
func marksValue(marks []string) types.AttributeValue {
	l := make([]types.AttributeValue, len(marks))
	for i, m := range marks {
		l[i] = &types.AttributeValueMemberS{Value: m}
	}
	return &types.AttributeValueMemberL{Value: l}
}
