package localrun_test

import (
	"testing"

	"arcbench/internal/localrun"
	"arcbench/shared/model"
)

// --worker-version reaches the built-in worker, and a run with a worker that
// counts its permanent failures on the run record (pr77), does not (pr78) or
// counts nothing (silent) finishes with its tasks as the table says: one
// completed, one failed permanently after MAX_RETRIES attempts, one
// completed at its second attempt after a first without an answer (which
// the worker counted as a completion). The run's live counters are right
// with each: when the Map ends they agree with the task records.
func TestWorkerVersionsRunToTheEnd(t *testing.T) {
	for _, version := range []string{"pr77", "pr78", "silent"} {
		t.Run(version, func(t *testing.T) {
			res, db := run(t, localrun.Options{TaskIDs: []string{"ff000001", "ff000002", "ff000003"}, MaxRetries: 2,
				Faults: "ff000002:*=fail-after-claim,ff000003:1=no-answer", WorkerVersion: version})
			if !liveCountsAgreed(t, res) {
				t.Error("the run's live counters disagreed with its task records when the Map ended")
			}
			if res.Status != "SUCCEEDED" || res.RunStatus != model.RunCompletedWithErrors {
				t.Fatalf("execution %s, run %s: %s %s", res.Status, res.RunStatus, res.Error, res.Cause)
			}
			got := tasksOf(t, db, res, res.RunID)
			if g := got["ff000001"]; g.Status != model.TaskCompleted || g.RetryCount != 0 {
				t.Errorf("ff000001: %s with retry_count %d, want COMPLETED with 0", g.Status, g.RetryCount)
			}
			if g := got["ff000002"]; g.Status != model.TaskFailedPermanent || g.RetryCount != 2 {
				t.Errorf("ff000002: %s with retry_count %d, want FAILED_PERMANENT with 2", g.Status, g.RetryCount)
			}
			if g := got["ff000003"]; g.Status != model.TaskCompleted || g.RetryCount != 1 {
				t.Errorf("ff000003: %s with retry_count %d, want COMPLETED with 1", g.Status, g.RetryCount)
			}
			for _, id := range []string{"ff000001", "ff000002", "ff000003"} {
				for _, l := range jobLogs(t, res, id) {
					if len(l.worker) != 1 || l.worker[0]["worker_version"] != version {
						t.Errorf("%s: worker log %v: want the version %s", id, l.worker, version)
					}
				}
				if n := attempts(t, res, id); n != map[string]int{"ff000001": 1, "ff000002": 2, "ff000003": 2}[id] {
					t.Errorf("%s: %d attempts", id, n)
				}
			}
			// Each job is held to the job definition's attempt timeout.
			if _, job := jobLogs(t, res, "ff000002")[0].failure(t); job.StatusReason != "Essential container in task exited" ||
				job.Timeout.AttemptDurationSeconds != 1800 {
				t.Errorf("the failed job: %+v, want the template's 1800 s timeout and the exited reason", job)
			}
		})
	}
}
