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
own Python worker that behaves as it does (docs/running-locally.md: "The worker in production"), configured as the Batch
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

Signals, as the benchmark's worker takes them:
  SIGTERM   (Batch's at the job's attempt timeout, and TerminateJob's) asks it
            to stop: at its next model call it stops asking, writes the pairs
            answered so far, marks the task COMPLETED with the cost so far,
            adds to the run's counters and exits 0. One that comes before the
            claim stops it at the first call: the task is claimed and
            completed with an empty submission ([]) and cost 0.
  SIGINT    (Ctrl-C) interrupts it between steps: exit 130, nothing marked.

Versions (ARCBENCH_WORKER_VERSION), how it counts on the run record as the
benchmark's pull requests do:
  pr77      [default] completions add to completed_tasks, total_cost_usd and
            the token totals with a plain "+"; a task it marks
            FAILED_PERMANENT adds 1 to failed_tasks.
  pr78      the same, without the failed_tasks + 1.
  silent    no update of the run record at all.

Injected misbehaviour:
  ARCBENCH_FAULTS      TASK_ID:ATTEMPT=MODE,... (TASK_ID and ATTEMPT may be *;
                       ATTEMPT counts from 1; the first match wins). MODE is
                       fail-after-claim (fail through the worker's own failure
                       path, exit 1), die-after-claim (exit 137 after the claim),
                       exit-0-without-work (exit 0, nothing claimed or written),
                       claim-then-exit-0 (claim, then exit 0),
                       complete-then-die (mark COMPLETED, then exit 137 before
                       the run's counters), no-answer (every model call fails:
                       submission [], COMPLETED with cost 0 and 0 tokens, exit 0),
                       empty-answer (every pair answered [] and billed as a
                       normal answer; COMPLETED, exit 0), hang (the second
                       model call, or for a one-pair task a second call at that
                       pair, never returns until a signal: SIGTERM saves what
                       was answered before it and exits 0), submission-lost
                       (a normal attempt whose submission never reaches the
                       bucket: the task names a missing object), or
                       cost-unreadable (a normal attempt whose cost_usd is
                       recorded as "n/a").
  ARCBENCH_FAIL_RATE   share of attempts to fail as fail-after-claim does,
  ARCBENCH_FAIL_SEED   picked by a schedule of this seed [1].

Logs are JSON on stderr. Exit 0: done (stopped by SIGTERM included), or
already claimed; 1: the attempt failed; 2: a required variable is missing or
one is malformed (nothing touched); 130: interrupted by SIGINT (nothing
marked); 137: an injected death.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Ctrl-C interrupts: the worker stops between steps and exits
			// 130 without marking anything.
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer cancel()
			// SIGTERM only asks it to stop: it saves what it has and exits 0,
			// as the benchmark's worker does at Batch's attempt timeout.
			terms := make(chan os.Signal, 1)
			signal.Notify(terms, syscall.SIGTERM)
			defer signal.Stop(terms)
			stop := make(chan struct{})
			go func() {
				select {
				case <-terms:
					close(stop)
				case <-ctx.Done():
				}
			}()
			if code := worker.Main(ctx, stop, os.Getenv, cmd.ErrOrStderr()); code != worker.ExitDone {
				return &exitError{code: code}
			}
			return nil
		},
	}
}
