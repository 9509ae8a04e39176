package complete_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/model"
)

const (
	firstExecution  = "arn:aws:states:us-east-1:123456789012:execution:arc-benchmark-test:start-1"
	resumeExecution = "arn:aws:states:us-east-1:123456789012:execution:arc-benchmark-test:resume-1"
)

// A run resumed since its first execution ended, whose resuming execution
// then ended too, is told once, for its current execution: the reaper's
// late call for the first execution tells nothing (notified_at stays unset,
// no message, no metric), so the end still to be told is the resume's.
func TestAnnounceTellsOnlyTheCurrentExecutionsEnd(t *testing.T) {
	env := notifying(t)
	out, err := handlers.NewInitialize(env.Deps).Handle(context.Background(), model.InitializeInput{ConfigName: "cfg-a", TaskIDs: []string{"t0", "t1"},
		ExecutionID: firstExecution, ExecutionStartTime: "2026-12-05T10:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	runID := out.RunID
	env.PutTask(t, map[string]any{"run_id": runID, "task_id": "t0", "status": model.TaskCompleted, "retry_count": 0, "cost_usd": 0.5, "score": 1, "pairs": 1, "is_correct": true})
	// Resumed, then stopped by an operator under the resume.
	if _, err := env.DB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(env.Tables.Runs), Key: map[string]types.AttributeValue{model.AttrRunID: &types.AttributeValueMemberS{Value: runID}},
		UpdateExpression:         aws.String("SET execution_id = :e, #s = :s, stop_reason = :r, stop_kind = :k"),
		ExpressionAttributeNames: map[string]string{"#s": model.AttrStatus},
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": &types.AttributeValueMemberS{Value: resumeExecution},
			":s": &types.AttributeValueMemberS{Value: model.RunStopped}, ":r": &types.AttributeValueMemberS{Value: "stopped by ada"},
			":k": &types.AttributeValueMemberS{Value: model.StopOperator}},
	}); err != nil {
		t.Fatal(err)
	}
	h := handlers.NewComplete(env.Deps)

	if _, err := h.Handle(context.Background(), model.CompleteInput{RunID: runID, Announce: true, ExecutionID: firstExecution}); err != nil {
		t.Fatal(err)
	}
	if n, at := len(env.SNS.Published()), testenv.S(env.Run(t, runID), model.AttrNotifiedAt); n != 0 || at != "" {
		t.Errorf("the first execution's late announce published %d messages and set notified_at %q, want none", n, at)
	}
	if n := len(completePuts(env)); n != 0 {
		t.Errorf("the first execution's late announce made %d PutMetricData requests, want none", n)
	}

	for range 2 {
		if _, err := h.Handle(context.Background(), model.CompleteInput{RunID: runID, Announce: true, ExecutionID: resumeExecution}); err != nil {
			t.Fatal(err)
		}
	}
	pubs := env.SNS.Published()
	if len(pubs) != 1 {
		t.Fatalf("%d messages for the resumed execution's end, want 1", len(pubs))
	}
	for _, want := range []string{"Status:  STOPPED", "Reason:  stopped by ada", "Tasks:   1 completed, 0 failed, 1 not run, of 2"} {
		if !strings.Contains(pubs[0].Message, want) {
			t.Errorf("message lacks %q:\n%s", want, pubs[0].Message)
		}
	}
	if testenv.S(env.Run(t, runID), model.AttrNotifiedAt) == "" {
		t.Error("notified_at not set after the current execution's end was told")
	}
}
