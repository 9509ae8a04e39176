package aggregate_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/internal/testenv"
	"arcbench/shared/clients"
	"arcbench/shared/handlers"
	"arcbench/shared/model"
)

const (
	firstExecution  = "arn:aws:states:us-east-1:123456789012:execution:arc-benchmark-test:start-1"
	resumeExecution = "arn:aws:states:us-east-1:123456789012:execution:arc-benchmark-test:resume-1"
)

// The run reaper aggregates a run at the end of the execution it names. A
// run resumed since belongs to the resuming execution: the reaper's late
// call for the first one writes nothing (no aggregated.json, the counters
// as the resumed execution keeps them), while a call for the run's current
// execution aggregates it as before.
func TestAggregateLeavesARunResumedByAnotherExecution(t *testing.T) {
	env := testenv.Setup(t, nil)
	out, err := handlers.NewInitialize(env.Deps).Handle(context.Background(), model.InitializeInput{ConfigName: "cfg", TaskIDs: []string{"a", "b", "c"},
		ExecutionID: firstExecution, ExecutionStartTime: "2026-12-05T10:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	runID := out.RunID
	env.PutTask(t, completed(runID, "a", "0.25", true))
	env.PutTask(t, completed(runID, "b", "0.5", false))
	// The resume took the run over (c runs again under it).
	if _, err := env.DB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(env.Tables.Runs), Key: map[string]types.AttributeValue{model.AttrRunID: &types.AttributeValueMemberS{Value: runID}},
		UpdateExpression:          aws.String("SET execution_id = :e"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": &types.AttributeValueMemberS{Value: resumeExecution}},
	}); err != nil {
		t.Fatal(err)
	}
	before := env.Run(t, runID)
	key := model.AggregatedKey(runID)
	h := handlers.NewAggregate(env.Deps)
	env.Proxy.ResetCounts()

	stale, err := h.Handle(context.Background(), model.AggregateInput{RunID: runID, ExecutionID: firstExecution})
	if err != nil {
		t.Fatal(err)
	}
	if stale.ResultsS3Key != nil || stale.CompletedTasks != 0 {
		t.Errorf("answer for the execution the run left: %+v, want no results and no figures", stale)
	}
	if n := env.Proxy.Requests("UpdateItem"); n != 0 {
		t.Errorf("%d UpdateItem requests for the execution the run left, want none", n)
	}
	if after := env.Run(t, runID); !reflect.DeepEqual(before, after) {
		t.Errorf("the run record changed:\nbefore %v\nafter  %v", before, after)
	}
	_, err = testenv.DirectS3(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(key)})
	if _, missing := clients.NoObject(err); !missing {
		t.Errorf("aggregated.json read back with %v: it was written for the execution the run left", err)
	}

	current, err := h.Handle(context.Background(), model.AggregateInput{RunID: runID, ExecutionID: resumeExecution})
	if err != nil {
		t.Fatal(err)
	}
	if current.ResultsS3Key == nil || *current.ResultsS3Key != key || current.CompletedTasks != 2 || current.TotalCostUSD != "0.75" {
		t.Errorf("answer for the run's execution: %+v, want 2 completed costing 0.75 and %s", current, key)
	}
	if doc, _ := readAggregated(t, env, key); doc.Metrics.CompletedTasks != 2 || doc.Metrics.PendingTasks != 1 {
		t.Errorf("aggregated.json metrics %+v, want 2 completed, 1 pending", doc.Metrics)
	}
	run := env.Run(t, runID)
	if c, cost := testenv.N(run, model.AttrCompletedTasks), testenv.N(run, model.AttrTotalCostUSD); c != "2" || cost != "0.75" {
		t.Errorf("run completed_tasks %s, total_cost_usd %s: want 2 and 0.75", c, cost)
	}
}
