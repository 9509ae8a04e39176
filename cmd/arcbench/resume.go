package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"arcbench/internal/operator"
)

func newResumeCmd() *cobra.Command {
	var (
		in     operator.ResumeInput
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "resume RUN_ID [--budget-usd X] [--include-failed]",
		Short: "Run a stopped, failed or timed-out run's unfinished tasks again, as the same run (same id, one score)",
		Long: `Runs again, as a new execution of the stage's state machine under the same run id, every task of
RUN_ID that has not COMPLETED: never started, stranded PENDING or IN_PROGRESS by an execution that
ended, NOT_RUN (a stopped run's), and with --include-failed the FAILED_PERMANENT ones (their attempts
counted afresh; what they were is kept in each task's history). A COMPLETED task is never run again.
The run's figures (score, cost, attempts, time) cover all its executions.

Refused while an execution of the run is still running, and for a run stopped by its budget unless
--budget-usd raises it. --budget-usd and --stop-after-failures replace the run's guards.`,
		Example: `  arcbench resume run-gpt-5-20261206-101500-1a2b3c4d
  arcbench resume run-gpt-5-20261206-101500-1a2b3c4d --budget-usd 40     # stopped by its budget: raise it
  arcbench resume run-gpt-5-20261206-101500-1a2b3c4d --include-failed   # the permanent failures too`,
		Args: runIDArg,
	}
	guards := guardFlags(cmd)
	onStage(cmd, func(cmd *cobra.Command, op *operator.Operator, args []string) error {
		var err error
		if in.Guards, err = guards(); err != nil {
			return err
		}
		in.RunID = args[0]
		r, err := op.Resume(cmd.Context(), in)
		if err != nil {
			return userError(err)
		}
		w := cmd.OutOrStdout()
		if asJSON {
			printJSON(w, r)
			return nil
		}
		fmt.Fprintf(w, "%s resumed (execution %d): %d tasks to run\n  execution: %s\n", r.RunID, r.Execution, r.Tasks, r.ExecutionArn)
		if r.ConsoleURL != "" {
			fmt.Fprintf(w, "  console:   %s\n", r.ConsoleURL)
		}
		fmt.Fprintf(w, "  follow it: arcbench watch %s\n", r.RunID)
		return nil
	})
	cmd.Flags().BoolVar(&in.IncludeFailed, "include-failed", false, "run the FAILED_PERMANENT tasks again too (their attempts counted afresh)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
