package store

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"arcbench/shared/model"
)

// The reads below serve the operator commands (start, watch, results, runs,
// retry); the handlers never make them.

// RunOfExecution finds the run an execution made, through the runs table's
// execution index. found is false while initialize has not written it yet.
func (s *Store) RunOfExecution(ctx context.Context, executionID string) (runID string, found bool, err error) {
	expr, err := expression.NewBuilder().WithKeyCondition(expression.Key(model.AttrExecutionID).Equal(expression.Value(executionID))).Build()
	if err != nil {
		return "", false, err
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 &s.runsTable,
		IndexName:                 aws.String(model.IndexExecution),
		KeyConditionExpression:    expr.KeyCondition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		Limit:                     aws.Int32(1),
	})
	if err != nil {
		return "", false, fmt.Errorf("find the run of execution %s: %w", executionID, err)
	}
	if len(out.Items) == 0 {
		return "", false, nil
	}
	return item(out.Items[0]).str(model.AttrRunID), true, nil
}

// ListRuns returns the newest runs first: of one configuration through the
// config-created-index, or of every configuration (a scan) when config is
// empty. limit bounds the answer.
func (s *Store) ListRuns(ctx context.Context, config string, limit int) ([]*Run, error) {
	var runs []*Run
	if config != "" {
		expr, err := expression.NewBuilder().WithKeyCondition(expression.Key(model.AttrConfigName).Equal(expression.Value(config))).Build()
		if err != nil {
			return nil, err
		}
		pages := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
			TableName:                 &s.runsTable,
			IndexName:                 aws.String(model.IndexConfigCreated),
			KeyConditionExpression:    expr.KeyCondition(),
			ExpressionAttributeNames:  expr.Names(),
			ExpressionAttributeValues: expr.Values(),
			ScanIndexForward:          aws.Bool(false),
		})
		for pages.HasMorePages() && len(runs) < limit {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("query runs of %s: %w", config, err)
			}
			for _, it := range page.Items {
				runs = append(runs, runFromItem(it))
			}
		}
	} else {
		pages := dynamodb.NewScanPaginator(s.db, &dynamodb.ScanInput{TableName: &s.runsTable})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("scan runs: %w", err)
			}
			for _, it := range page.Items {
				runs = append(runs, runFromItem(it))
			}
		}
		sort.Slice(runs, func(i, j int) bool { return runs[i].CreatedAt > runs[j].CreatedAt })
	}
	if len(runs) > limit {
		runs = runs[:limit]
	}
	return runs, nil
}

// ErrRunFinished is Stop's (and CompleteRun's) answer for a run that has
// finished: nothing was written.
var ErrRunFinished = errors.New("the run has finished")

// TaskFailure is a failed task as an operator reads it.
type TaskFailure struct {
	TaskID     string `json:"task_id"`
	Status     string `json:"status"`
	RetryCount int    `json:"retry_count"`
	ErrorType  string `json:"last_error_type,omitempty"`
	Reason     string `json:"last_error_reason,omitempty"`
	ExitCode   *int   `json:"last_exit_code,omitempty"`
	// Cause is the orchestration's record of the last failure, when no
	// Batch reason says more (NoAnswer, a task given up).
	Cause string `json:"last_error_cause,omitempty"`
	// WorkerError is what the worker itself recorded ("error").
	WorkerError string `json:"worker_error,omitempty"`
}

// FailedTasks lists the run's tasks whose status is one of statuses (all
// pages, strongly consistent), in task id order.
func (s *Store) FailedTasks(ctx context.Context, runID string, statuses ...string) ([]TaskFailure, error) {
	ops := make([]expression.OperandBuilder, len(statuses))
	for i, st := range statuses {
		ops[i] = expression.Value(st)
	}
	filter := expression.Name(model.AttrStatus).In(ops[0], ops[1:]...)
	expr, err := expression.NewBuilder().
		WithKeyCondition(expression.Key(model.AttrRunID).Equal(expression.Value(runID))).
		WithFilter(filter).Build()
	if err != nil {
		return nil, err
	}
	pages := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:                 &s.tasksTable,
		KeyConditionExpression:    expr.KeyCondition(),
		FilterExpression:          expr.Filter(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ConsistentRead:            aws.Bool(true),
	})
	var out []TaskFailure
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query failed tasks of %s: %w", runID, err)
		}
		for _, raw := range page.Items {
			t := taskFromItem(raw)
			f := TaskFailure{TaskID: t.TaskID, Status: t.Status, RetryCount: t.RetryCount, ErrorType: t.LastErrorType,
				Reason: t.Reason, ExitCode: t.ExitCode, WorkerError: t.WorkerError}
			if t.Reason == "" {
				f.Cause = firstLine(t.LastErrorCause)
			}
			out = append(out, f)
		}
	}
	return out, nil
}
