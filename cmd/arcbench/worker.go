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
		Long: `Run one attempt of the built-in baseline worker, configured as the Batch job
configures the benchmark's worker container: S3_BUCKET, DYNAMODB_TASKS_TABLE,
RUN_ID, TASK_ID, DATA_SOURCE (required), DYNAMODB_RUNS_TABLE,
DYNAMODB_RATE_LIMIT_TABLE, MAX_RETRIES, CONFIG_NAME, AWS_REGION (optional), and
ARCBENCH_FAIL_RATE / ARCBENCH_FAIL_SEED to fail attempts on purpose. It claims
the task, solves it, writes its submission and marks the task COMPLETED.
Logs are JSON on stderr. Exit 0: done, or the task was not claimable;
1: the attempt failed (retryable); 2: configuration error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Batch stops a job with SIGTERM: let the attempt's calls end early.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if code := worker.Main(ctx, os.Getenv, cmd.ErrOrStderr()); code != worker.ExitDone {
				return &exitError{code: code}
			}
			return nil
		},
	}
}
