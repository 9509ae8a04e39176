package handleerror_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/internal/testenv"
	"arcbench/shared/clients"
	"arcbench/shared/handlers"
	"arcbench/shared/model"
)

// A run of 10,000 tasks in which 6,000 fail for good, reported
// concurrently, ends with exact counts, and its record does not grow with
// the failures: counting a permanent failure once needs no list that grows
// with the run (a set of ids would pass DynamoDB's 400 KB item limit at
// about 21,000 failures and stop every update; the tokens of counts in
// flight leave the run as each count completes).
func TestThousandsOfPermanentFailuresCountExactly(t *testing.T) {
	const total, failing = 10_000, 6_000
	// Early stop off: every failure here is counted, none stops the run
	// (the failure streak is still kept, in a record that must not grow).
	env := testenv.Setup(t, map[string]string{"MAX_RETRIES": "1", "STOP_AFTER_FAILURES": "0"})
	ids := make([]string, total)
	for i := range ids {
		ids[i] = fmt.Sprintf("task-%07d-abcdefgh", i) // 20 characters
	}
	runID := env.NewRun(t, ids...)
	ctx := context.Background()
	start := time.Now()
	sizeOf := func(item map[string]types.AttributeValue) int {
		size := 0
		for k, v := range item {
			size += len(k) + len(fmt.Sprint(v))
		}
		return size
	}
	before := sizeOf(env.Run(t, runID))

	// The first 60,000 fail for good, reported concurrently as 16 children
	// would, straight to dynalite (not through the test proxy) and without
	// 60,000 log lines: dynalite's own pace is the test's time.
	deps := env.Deps
	deps.Clients = clients.NewLocal(testenv.Dynalite(t))
	deps.Clients.S3 = env.Deps.Clients.S3
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	h := handlers.NewHandleError(deps)
	work := make(chan string)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for range 16 {
		wg.Go(func() {
			for id := range work {
				out, err := h.Handle(ctx, model.HandleErrorInput{RunID: runID, TaskID: id, Attempt: 1,
					Error: &model.TaskError{Error: "States.TaskFailed", Cause: "worker exited with 1"}})
				if err == nil && out.Status != model.FailedPermanent {
					err = fmt.Errorf("task %s: %s", id, out.Status)
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for _, id := range ids[:failing] {
		work <- id
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	failedAt := time.Since(start)

	// The others complete, as the worker marks them.
	var reqs []types.WriteRequest
	flush := func() {
		if len(reqs) == 0 {
			return
		}
		if _, err := env.DB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{env.Tables.Tasks: reqs}}); err != nil {
			t.Fatal(err)
		}
		reqs = nil
	}
	for _, id := range ids[failing:] {
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			"run_id": &types.AttributeValueMemberS{Value: runID}, "task_id": &types.AttributeValueMemberS{Value: id},
			"status": &types.AttributeValueMemberS{Value: model.TaskCompleted}, "retry_count": &types.AttributeValueMemberN{Value: "0"},
			"cost_usd": &types.AttributeValueMemberN{Value: "0.001"},
		}}})
		if len(reqs) == 25 {
			flush()
		}
	}
	flush()

	run := env.Run(t, runID)
	if n := testenv.N(run, "failed_tasks"); n != fmt.Sprint(failing) {
		t.Errorf("live failed_tasks = %s, want %d", n, failing)
	}
	// Only the counters' digits may grow ("0" to "6000", and a time stamp).
	if after := sizeOf(run); after > before+64 {
		t.Errorf("the run record grew from about %d to %d bytes with %d failures: something grows with the run", before, after, failing)
	}

	agg, err := handlers.NewAggregate(env.Deps).Handle(ctx, model.AggregateInput{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if agg.TotalTasks != total || agg.FailedTasks != failing || agg.CompletedTasks != total-failing || agg.TotalCostUSD != "4" {
		t.Errorf("aggregate %+v, want %d tasks, %d failed, %d completed, cost 4", agg.Totals, total, failing, total-failing)
	}
	done, err := handlers.NewComplete(env.Deps).Handle(ctx, model.CompleteInput{RunID: runID, Aggregation: &agg.Totals})
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != model.RunCompletedWithErrors || done.FinalMetrics.FailedTasks != failing {
		t.Errorf("complete %+v", done)
	}
	out, err := env.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(env.Tables.Runs), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"run_id": &types.AttributeValueMemberS{Value: runID}}})
	if err != nil || testenv.N(out.Item, "failed_tasks") != fmt.Sprint(failing) || testenv.S(out.Item, "status") != model.RunCompletedWithErrors {
		t.Errorf("final run record %v (%v)", out.Item, err)
	}
	t.Logf("%d permanent failures reported in %.1fs; whole test %.1fs", failing, failedAt.Seconds(), time.Since(start).Seconds())
}
