package checktask_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/model"
)

// jobDescription is a Fargate job of 0.25 vCPU and 512 MiB as Step Functions
// returns it, which ran for the given seconds.
func jobDescription(seconds int) string {
	return fmt.Sprintf(`{"JobId":"j-%d","Status":"SUCCEEDED","StartedAt":1000,"StoppedAt":%d,
		"Container":{"ResourceRequirements":[{"Type":"VCPU","Value":"0.25"},{"Type":"MEMORY","Value":"512"}],
		"RuntimePlatform":{"CpuArchitecture":"X86_64","OperatingSystemFamily":"LINUX"}}}`, seconds, 1000+seconds*1000)
}

func TestEachAttemptsComputeIsRecordedOnceOnTheTaskAndTheRun(t *testing.T) {
	env := testenv.Setup(t, nil)
	env.Deps.Config.Region = "us-east-1"
	runID := env.NewRun(t, "t1")
	put(t, env, model.TaskDataKey(dataSource, "t1"), twoPairs)
	put(t, env, model.SubmissionKey(runID, "t1"), submission([][]int{{1}}, [][]int{{2}}))

	// Attempt 1: the job failed after 90 s (its description is the error's
	// Cause) and left the task FAILED; check-task is called twice for it
	// (a Step Functions retry after a lost answer).
	env.PutTask(t, map[string]any{"run_id": runID, "task_id": "t1", "status": "FAILED", "retry_count": 0})
	failed := model.CheckTaskInput{TaskItem: item(runID, "t1"), Error: &model.TaskError{Error: model.ErrJobFailed, Cause: jobDescription(90)}}
	for range 2 {
		if out := check(t, env, failed); out.Status != model.TaskFailed {
			t.Fatalf("attempt 1: %+v, want FAILED", out)
		}
	}
	// Attempt 2: the job succeeded after 30 s (billed as a minute) and
	// completed the task, writing as the worker does (UpdateItem).
	if _, err := env.DB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:                aws.String(env.Tables.Tasks),
		Key:                      map[string]types.AttributeValue{"run_id": &types.AttributeValueMemberS{Value: runID}, "task_id": &types.AttributeValueMemberS{Value: "t1"}},
		UpdateExpression:         aws.String("SET #s = :c, cost_usd = :cost, result_s3_key = :key"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: "COMPLETED"},
			":cost": &types.AttributeValueMemberN{Value: "0.0012"}, ":key": &types.AttributeValueMemberS{Value: model.RelativeSubmissionKey("t1")}},
	}); err != nil {
		t.Fatal(err)
	}
	second := model.CheckTaskInput{TaskItem: item(runID, "t1"), Job: json.RawMessage(jobDescription(30))}
	second.Attempt = 2
	for range 2 {
		if out := check(t, env, second); out.Status != model.TaskCompleted {
			t.Fatalf("attempt 2: %+v, want COMPLETED", out)
		}
	}
	// 0.0123425 USD an hour: 90 s is 0.000308562500, 60 s 0.000205708333.
	task := env.Task(t, runID, "t1")
	if got := testenv.N(task, model.AttrComputeCostUSD); got != "0.000514270833" {
		t.Errorf("task compute_cost_usd = %q, want 0.000514270833 (90 s + a minute at 0.25 vCPU, 0.5 GB)", got)
	}
	if got := testenv.N(task, model.AttrComputeSeconds); got != "150" {
		t.Errorf("task compute_seconds = %q, want 150", got)
	}
	run := env.Run(t, runID)
	if got := testenv.N(run, model.AttrComputeCostUSD); got != "0.000514270833" {
		t.Errorf("run compute_cost_usd = %q, want the task's 0.000514270833, counted once", got)
	}
	if got := testenv.N(run, model.AttrTotalCostUSD); got != "0.0012" {
		t.Errorf("run total_cost_usd (model cost) = %q, want 0.0012: compute is kept apart", got)
	}

	agg, err := handlers.NewAggregate(env.Deps).Handle(context.Background(), model.AggregateInput{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if agg.ComputeCostUSD != "0.000514270833" || agg.ComputeSeconds != 150 || agg.TotalCostUSD != "0.0012" {
		t.Errorf("aggregate: compute %s over %d s, model %s; want 0.000514270833 over 150 s, model 0.0012",
			agg.ComputeCostUSD, agg.ComputeSeconds, agg.TotalCostUSD)
	}
}

func TestComputeInARegionWithoutAPriceKeepsItsSeconds(t *testing.T) {
	env := testenv.Setup(t, nil)
	env.Deps.Config.Region = "ap-south-2"
	runID := env.NewRun(t, "t1")
	env.PutTask(t, map[string]any{"run_id": runID, "task_id": "t1", "status": "FAILED", "retry_count": 0})
	check(t, env, model.CheckTaskInput{TaskItem: item(runID, "t1"), Error: &model.TaskError{Error: model.ErrJobFailed, Cause: jobDescription(75)}})
	task := env.Task(t, runID, "t1")
	if testenv.N(task, model.AttrComputeCostUSD) != "" || testenv.N(task, model.AttrComputeSeconds) != "75" || testenv.N(task, model.AttrUnpricedJobs) != "1" {
		t.Errorf("task: cost %q, %q s, %q unpriced; want no cost, 75 s, 1 unpriced job",
			testenv.N(task, model.AttrComputeCostUSD), testenv.N(task, model.AttrComputeSeconds), testenv.N(task, model.AttrUnpricedJobs))
	}
	if run := env.Run(t, runID); testenv.N(run, model.AttrUnpricedJobs) != "1" || testenv.N(run, model.AttrComputeCostUSD) != "0" {
		t.Errorf("run: %q unpriced, cost %q; want 1 and 0", testenv.N(run, model.AttrUnpricedJobs), testenv.N(run, model.AttrComputeCostUSD))
	}
}

// Each job that ran is one JobEnded, by how it ended, from the call that
// recorded its compute: a check repeated for the same attempt publishes
// nothing more.
func TestEachJobThatRanIsOneJobEnded(t *testing.T) {
	env := testenv.Setup(t, nil)
	env.Deps.Config.Region = "us-east-1"
	runID := env.NewRun(t, "t1")
	env.PutTask(t, map[string]any{"run_id": runID, "task_id": "t1", "status": "FAILED", "retry_count": 0})
	failed := model.CheckTaskInput{TaskItem: item(runID, "t1"), Error: &model.TaskError{Error: model.ErrJobFailed, Cause: jobDescription(90)}}
	check(t, env, failed)
	check(t, env, failed)
	// A failed submit has no job: nothing ran.
	check(t, env, model.CheckTaskInput{TaskItem: item(runID, "t1"), Error: &model.TaskError{Error: "Batch.AWSBatchException", Cause: "throttled"}})
	succeeded := model.CheckTaskInput{TaskItem: item(runID, "t1"), Job: json.RawMessage(jobDescription(30))}
	succeeded.Attempt = 2
	check(t, env, succeeded)
	var got []string
	for _, p := range env.CloudWatch.Puts() {
		for _, d := range p.MetricData {
			if d.MetricName == "JobEnded" && len(d.Dimensions) == 1 && d.Dimensions[0].Name == "Status" && d.Value == 1 {
				got = append(got, d.Dimensions[0].Value)
			}
		}
	}
	if fmt.Sprint(got) != "[FAILED SUCCEEDED]" {
		t.Errorf("JobEnded %v, want [FAILED SUCCEEDED]: one per job that ran", got)
	}
}
