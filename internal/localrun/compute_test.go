package localrun_test

import (
	"encoding/json"
	"testing"

	"arcbench/internal/localrun"
	"arcbench/shared/arcdata"
	"arcbench/shared/money"
)

// Every job of a local run is priced as Fargate bills it in the local
// region: the template's job size (0.25 vCPU, 512 MiB by default) for each
// job's run time, a minute at least. A local job takes seconds, so each
// attempt costs exactly the minute, 0.000205708333 USD; a task's compute is
// its attempts' (retries pay again), the run's the sum of its tasks', kept
// apart from the model's cost and added to it.
func TestEachAttemptsComputeIsPricedAndSummed(t *testing.T) {
	const n, seed, minute = 6, 5, "0.000205708333"
	res, _ := run(t, localrun.Options{TaskIDs: arcdata.IDs(n, seed), Seed: seed, FailRate: 0.4})
	doc := aggregated(t, res)
	var want, model money.Sum
	retried := false
	for _, r := range doc.TaskResults {
		jobs := attempts(t, res, r.TaskID)
		retried = retried || jobs > 1
		var cost money.Sum
		for range jobs {
			_ = cost.Add(minute)
		}
		if r.ComputeCostUSD == nil || string(*r.ComputeCostUSD) != cost.String() || r.ComputeSeconds != int64(60*jobs) {
			t.Errorf("task %s: compute %v over %d s, want %s over %d s (%d jobs of a billed minute)",
				r.TaskID, r.ComputeCostUSD, r.ComputeSeconds, cost.String(), 60*jobs, jobs)
		}
		_ = want.Add(cost.String())
		if r.CostUSD != nil {
			_ = model.Add(string(*r.CostUSD))
		}
	}
	if !retried {
		t.Fatal("no task was retried: the fail rate should make some attempts fail")
	}
	m := doc.Metrics
	if string(m.ComputeCostUSD) != want.String() || m.UnpricedJobs != 0 {
		t.Errorf("run compute %s (%d unpriced), want %s, the sum of its tasks'", m.ComputeCostUSD, m.UnpricedJobs, want.String())
	}
	if string(m.TotalCostUSD) != model.String() || string(m.CostWithComputeUSD) != model.Plus(&want).String() {
		t.Errorf("model %s, with compute %s; want %s and %s", m.TotalCostUSD, m.CostWithComputeUSD, model.String(), model.Plus(&want).String())
	}
	var out struct {
		FinalMetrics struct {
			ComputeCostUSD json.Number `json:"compute_cost_usd"`
		} `json:"final_metrics"`
	}
	if err := json.Unmarshal(res.Output, &out); err != nil || string(out.FinalMetrics.ComputeCostUSD) != want.String() {
		t.Errorf("complete's final_metrics.compute_cost_usd %q (%v), want %s", out.FinalMetrics.ComputeCostUSD, err, want.String())
	}
}
