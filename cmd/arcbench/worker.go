package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"arcbench/shared/worker"
)

func newWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "worker",
		Short:  "Run the built-in baseline worker on one task (what a Batch job runs)",
		Hidden: true,
		Long: `Run one attempt of the built-in baseline worker, a stand-in for the benchmark's
own Python worker that behaves as it does (README: "The worker in production"), configured as the Batch
job configures that container.

Required: RUN_ID, TASK_ID, CONFIG_NAME, S3_BUCKET.
Optional [default]: S3_PREFIX [runs/<RUN_ID>], S3_TASKS_PREFIX [tasks],
DYNAMODB_RUNS_TABLE [arc_benchmark_runs], DYNAMODB_TASKS_TABLE
[arc_task_progress], DYNAMODB_RATE_LIMIT_TABLE [arc_rate_limits],
MAX_RETRIES [3], AWS_BATCH_JOB_ID (the worker_id; else <hostname>-<pid>),
AWS_REGION [us-west-2]. DATA_SOURCE is ignored.

It claims the task (PENDING or FAILED -> IN_PROGRESS), reads
<S3_TASKS_PREFIX>/<TASK_ID>.json, answers each test pair (one rate-limited
call each, from the "baseline" bucket of the rate-limits table), writes
<S3_PREFIX>/submissions/<TASK_ID>.json, marks the task COMPLETED and adds it
to the run's counters. A failure after the claim is counted by the worker
itself: retry_count + 1, FAILED, or FAILED_PERMANENT at MAX_RETRIES (which
also adds to the run's failed_tasks).

Injected misbehaviour:
  ARCBENCH_FAULTS      TASK_ID:ATTEMPT=MODE,... (TASK_ID and ATTEMPT may be *;
                       ATTEMPT counts from 1; the first match wins). MODE is
                       fail-after-claim (fail through the worker's own failure
                       path, exit 1), die-after-claim (exit 137 after the claim),
                       exit-0-without-work (exit 0, nothing claimed or written),
                       claim-then-exit-0 (claim, then exit 0), or
                       complete-then-die (mark COMPLETED, then exit 137 before
                       the run's counters).
  ARCBENCH_FAIL_RATE   share of attempts to fail as fail-after-claim does,
  ARCBENCH_FAIL_SEED   picked by a schedule of this seed [1].

Logs are JSON on stderr. Exit 0: done, or already claimed; 1: the attempt
failed; 2: a required variable is missing or one is malformed (nothing
touched); 130: interrupted (nothing marked); 137: an injected death.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Batch stops a job with SIGTERM: the worker stops between steps
			// and exits 130 without marking anything.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if code := worker.Main(ctx, os.Getenv, cmd.ErrOrStderr()); code != worker.ExitDone {
				return &exitError{code: code}
			}
			return nil
		},
	}
}
