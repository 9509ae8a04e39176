package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"arcbench/internal/operator"
	"arcbench/shared/config"
	"arcbench/shared/model"
	"arcbench/shared/money"
	"arcbench/shared/store"
)

// stageFlag adds --stage (default $ARCBENCH_STAGE) and returns where it lands.
func stageFlag(cmd *cobra.Command) *string {
	s := cmd.Flags().String("stage", os.Getenv(config.EnvStage), "deployed stage (default $"+config.EnvStage+")")
	return s
}

// onStage gives cmd --stage and runs fn with an operator of that stage;
// finding the stage fails with one line naming the fix.
func onStage(cmd *cobra.Command, fn func(cmd *cobra.Command, op *operator.Operator, args []string) error) {
	stage := stageFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		op, err := operator.Connect(cmd.Context(), *stage)
		if err != nil {
			return userError(err)
		}
		return fn(cmd, op, args)
	}
}

// userError keeps the one-line errors of the operator as they are.
func userError(err error) error {
	var ue *operator.Error
	if errors.As(err, &ue) {
		return &exitError{code: 1, err: ue}
	}
	return err
}

func printJSON(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintln(w, string(b))
}

func newStartCmd() *cobra.Command {
	var (
		in        operator.StartInput
		tasksFile string
		allTasks  bool
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "start --stage S --config NAME (--tasks FILE | --task ID ... | --all-tasks)",
		Short: "Start a run on a deployed stage",
		Example: `  arcbench start --stage sandbox-teal --config gpt-5-2025-08-07-high --tasks evaluation-ids.txt
  arcbench start --config gpt-5-2025-08-07-high --tasks evaluation-ids.txt --reuse run-gpt-5-2025-08-07-high-20261201-090000-1a2b3c4d
  arcbench start --config claude-opus-4-5-20251101-thinking-32k --task 007bbfb7 --task 00d62c1b --data-source training`,
		Args: cobra.NoArgs,
	}
	stage := stageFlag(cmd)
	guards := guardFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var err error
		if in.Guards, err = guards(); err != nil {
			return err
		}
		if n := btoi(tasksFile != "") + btoi(len(in.TaskIDs) > 0) + btoi(allTasks); n > 1 {
			return &exitError{code: 2, err: errors.New("give one of --tasks FILE, --task ID or --all-tasks")}
		}
		if tasksFile != "" {
			ids, err := readTaskFile(tasksFile)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			in.TaskIDs = ids
		}
		if len(in.TaskIDs) == 0 && !allTasks {
			return &exitError{code: 2, err: errors.New("no tasks: give --tasks FILE (one id per line, or a JSON list), --task ID or --all-tasks")}
		}
		if err := model.ValidateTaskIDs("--task", in.TaskIDs); err != nil && !allTasks {
			return &exitError{code: 2, err: err}
		}
		op, err := operator.Connect(cmd.Context(), *stage)
		if err != nil {
			return userError(err)
		}
		if allTasks {
			if in.TaskIDs, err = op.StoredTaskIDs(cmd.Context(), in.DataSource); err != nil {
				return userError(err)
			}
		}
		started, err := op.Start(cmd.Context(), in)
		if err != nil {
			return userError(err)
		}
		if asJSON {
			printJSON(cmd.OutOrStdout(), started)
			return nil
		}
		printStarted(cmd.OutOrStdout(), started)
		return nil
	}
	f := cmd.Flags()
	f.StringVar(&in.ConfigName, "config", "", "the model configuration to evaluate (config_name)")
	f.StringVar(&in.DataSource, "data-source", model.DefaultDataSource, "the tasks' data source (tasks/<data-source>/ in the bucket)")
	f.StringVar(&tasksFile, "tasks", "", "file of task ids: one per line, or a JSON list")
	f.StringArrayVar(&in.TaskIDs, "task", nil, "a task id (repeat for more)")
	f.BoolVar(&allTasks, "all-tasks", false, "every task with data under tasks/<data-source>/ in the stage's bucket")
	f.StringVar(&in.TriggeredBy, "triggered-by", "", "who or what started the run, recorded on it (default: you)")
	f.StringVar(&in.CommitSHA, "commit-sha", "", "the commit the run evaluates, recorded on it (default: the working directory's git commit)")
	f.StringVar(&in.ReuseRunID, "reuse", "", "take this run's results for the tasks it COMPLETED with the same config and unchanged task data, and run only the rest (their cost stays that run's)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func printStarted(w io.Writer, s *operator.Started) {
	fmt.Fprintf(w, "%s\n  %d tasks\n  execution: %s\n", s.RunID, s.TotalTasks, s.ExecutionArn)
	if s.ConsoleURL != "" {
		fmt.Fprintf(w, "  console:   %s\n", s.ConsoleURL)
	}
	fmt.Fprintf(w, "  follow it: arcbench watch %s\n", s.RunID)
}

func newWatchCmd() *cobra.Command {
	var (
		asJSON   bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "watch RUN_ID",
		Short: "Follow a run until it ends: completed, failed and pending tasks, cost, rate, ETA",
		Args:  runIDArg,
	}
	onStage(cmd, func(cmd *cobra.Command, op *operator.Operator, args []string) error {
		return watch(cmd, op, args[0], interval, asJSON)
	})
	// Each update reads every task record of the run (strongly consistent,
	// paid per read on AWS): more than once a second buys nothing.
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if interval < time.Second {
			return &exitError{code: 2, err: fmt.Errorf("--interval %s: want 1s or more (each update reads every task record of the run)", interval)}
		}
		return nil
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per update instead of a progress bar")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "time between updates")
	return cmd
}

// progress is a snapshot with the rate and ETA since watching began.
type progress struct {
	*operator.Snapshot
	PerMinute  float64  `json:"tasks_per_minute"`
	ETASeconds *float64 `json:"eta_seconds"`
	Done       bool     `json:"done"`
}

func watch(cmd *cobra.Command, op *operator.Operator, runID string, interval time.Duration, asJSON bool) error {
	var (
		first *operator.Snapshot
		bar   *progressbar.ProgressBar
	)
	for {
		s, err := op.Snapshot(cmd.Context(), runID)
		if err != nil {
			return userError(err)
		}
		if first == nil {
			first = s
		}
		p := progress{Snapshot: s, Done: s.Done()}
		finished := s.Completed + s.Failed
		if minutes := s.At.Sub(first.At).Minutes(); minutes > 0 {
			p.PerMinute = math.Round(float64(finished-(first.Completed+first.Failed))/minutes*10) / 10
			if p.PerMinute > 0 {
				eta := math.Round(float64(s.Pending) / p.PerMinute * 60)
				p.ETASeconds = &eta
			}
		}
		if asJSON {
			printJSON(cmd.OutOrStdout(), p)
		} else {
			if bar == nil && s.Total > 0 {
				bar = progressbar.NewOptions(s.Total, progressbar.OptionSetWriter(cmd.ErrOrStderr()), progressbar.OptionSetWidth(30),
					progressbar.OptionShowCount())
			}
			if bar != nil {
				eta := "-"
				if p.ETASeconds != nil {
					eta = (time.Duration(*p.ETASeconds) * time.Second).String()
				}
				unanswered := ""
				if s.Unanswered > 0 {
					unanswered = fmt.Sprintf(" (%d unanswered)", s.Unanswered)
				}
				stopping := ""
				if s.StopReason != "" {
					// A budget stop: the jobs in flight finish, nothing new starts.
					stopping = " | stopping: " + s.StopReason
				}
				execution := ""
				if s.Resumes > 0 {
					// The current execution: the figures are the run's, all of them.
					execution = fmt.Sprintf("execution %d | ", s.Resumes+1)
				}
				bar.Describe(fmt.Sprintf("%s%d completed%s, %d failed, %d pending%s | score %s | %s | %.1f/min | ETA %s%s", execution, s.Completed, unanswered, s.Failed, s.Pending,
					notRunText(s.NotRun), percent(s.Score), s.Costs(), p.PerMinute, eta, stopping))
				_ = bar.Set(finished)
			}
		}
		if s.Done() {
			if !asJSON {
				if bar != nil {
					// The bar stays where the run stopped: tasks never run are not done.
					_ = bar.Exit()
					fmt.Fprintln(cmd.ErrOrStderr())
				}
				status := s.Status
				if s.Resumes > 0 {
					status += " (" + resumedText(s.Resumes) + ")"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s%s: score %s%s, %s, %d failed%s of %d, cost %s\n",
					runID, status, stopText(s.StopReason), percent(s.Score), overRunText(s.NotRun, s.ScoreOverRun),
					completedText(s.Completed, s.Correct, s.Unanswered, s.AfterJobFailure), s.Failed,
					notRunText(s.NotRun), s.Total, s.Costs())
			}
			return nil
		}
		select {
		case <-cmd.Context().Done():
			return cmd.Context().Err()
		case <-time.After(interval):
		}
	}
}

func newResultsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "results RUN_ID",
		Short: "A finished run's metrics and its failed tasks (--json: aggregated.json as stored)",
		Args:  runIDArg,
	}
	onStage(cmd, func(cmd *cobra.Command, op *operator.Operator, args []string) error {
		res, err := op.Results(cmd.Context(), args[0])
		if err != nil {
			return userError(err)
		}
		w := cmd.OutOrStdout()
		if asJSON {
			_, err := w.Write(res.Aggregated)
			return err
		}
		var doc model.Aggregated
		if err := json.Unmarshal(res.Aggregated, &doc); err != nil {
			return fmt.Errorf("aggregated.json of %s: %w", args[0], err)
		}
		m, run := doc.Metrics, res.Run
		fmt.Fprintf(w, "%s  config %s  status %s\n", run.RunID, run.ConfigName, run.Status)
		if n := run.Resumes(); n > 0 {
			active, span := run.Times(time.Now())
			fmt.Fprintf(w, "%s: %d executions, active %s, %s from first start to last end\n", resumedText(n), n+1,
				active.Round(time.Second), span.Round(time.Second))
		}
		if res.Counted {
			fmt.Fprintf(w, "(the run ended %s before it was aggregated: these figures are counted now from its task records)\n", run.Status)
		}
		switch {
		case run.Status == model.RunStopped:
			fmt.Fprintf(w, "stopped: %s\n", run.StopReason)
		case run.StopReason != "":
			fmt.Fprintf(w, "(%s: no task was left to stop)\n", run.StopReason)
		}
		pending := ""
		if m.PendingTasks > 0 {
			pending = fmt.Sprintf(", %d pending", m.PendingTasks)
		}
		fmt.Fprintf(w, "tasks %d: %s, %d failed%s%s\n", m.TotalTasks,
			completedText(m.CompletedTasks, m.CorrectTasks, m.UnansweredTasks, m.CompletedAfterJobFailure), m.FailedTasks, pending, notRunText(m.NotRunTasks))
		fmt.Fprintf(w, "score %s over %d tasks (every test pair right: %s)", percent(m.Score), m.ScoredTasks, percent(m.StrictScore))
		if m.NotRunTasks > 0 {
			fmt.Fprintf(w, ", tasks not run counting 0; over the %d tasks run: %s", m.ScoredTasks-m.NotRunTasks, percent(m.ScoreOverRun))
		}
		if m.UnscoredTasks > 0 {
			fmt.Fprintf(w, " (%d unscored: their data has no expected output)", m.UnscoredTasks)
		}
		fmt.Fprintf(w, "\naccuracy %.1f%%  cost %s  tokens %d in, %d out  attempts %d  started %s  by %s\n", m.Accuracy*100,
			m.Costs(), m.TotalTokensIn, m.TotalTokensOut, m.Attempts, run.CreatedAt, run.TriggeredBy)
		if m.ReusedFrom != "" {
			fmt.Fprintf(w, "reused %d tasks' results from %s (their $%s was paid there: not in this run's cost)\n", m.ReusedTasks, m.ReusedFrom, m.ReusedCostUSD)
		}
		if m.InvalidTasks > 0 {
			fmt.Fprintf(w, "%d tasks hold values that cannot be read (left out of the totals; each named in aggregated.json's invalid)\n", m.InvalidTasks)
		}
		fmt.Fprintf(w, "(model cost: as the worker recorded it, nothing for answers it could not parse; compute: the Fargate cost of %d billed job-seconds, from each job's run time)\n", m.ComputeSeconds)
		if run.LastErrorType != "" {
			fmt.Fprintf(w, "run failed: %s: %s\n", run.LastErrorType, firstLine(run.LastErrorCause))
		}
		var stopped, unanswered []model.TaskResult
		for _, r := range doc.TaskResults {
			if r.JobError != "" {
				stopped = append(stopped, r)
			}
			if r.Unanswered {
				unanswered = append(unanswered, r)
			}
		}
		if len(stopped) > 0 {
			fmt.Fprintf(w, "\ncompleted before their job failed (%d): scored on what the worker saved\n", len(stopped))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TASK\tSCORE\tJOB")
			for _, r := range stopped {
				job := r.JobError
				if model.StoppedAtTimeLimit(r.JobError) {
					job = "stopped at the job's time limit: partial answers (" + r.JobError + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.TaskID, percent(r.Score), job)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if len(unanswered) > 0 {
			ids := make([]string, len(unanswered))
			for i, r := range unanswered {
				ids[i] = r.TaskID
			}
			fmt.Fprintf(w, "\nunanswered (%d: the model was paid and gave no usable grid; scored 0): %s\n", len(ids), strings.Join(ids, " "))
		}
		if len(res.Failed) == 0 {
			fmt.Fprintln(w, "no failed tasks")
			return nil
		}
		fmt.Fprintf(w, "\nfailed tasks (%d):\n", len(res.Failed))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TASK\tSTATUS\tATTEMPTS\tEXIT\tREASON\tWORKER SAID")
		for _, f := range res.Failed {
			exit := "-"
			if f.ExitCode != nil {
				exit = fmt.Sprint(*f.ExitCode)
			}
			reason := f.Reason
			switch {
			case reason == "" && f.Cause != "":
				reason = f.ErrorType + ": " + f.Cause
			case reason == "":
				reason = f.ErrorType
			}
			said := f.WorkerError
			if said == "" {
				said = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", f.TaskID, f.Status, f.RetryCount, exit, reason, firstLine(said))
		}
		return tw.Flush()
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print aggregated.json as stored")
	return cmd
}

// completedText says how many tasks completed, and which of them are
// correct, unanswered, or completed before their job failed.
func completedText(completed, correct, unanswered, afterJobFailure int) string {
	parts := []string{fmt.Sprintf("%d correct", correct)}
	if unanswered > 0 {
		parts = append(parts, fmt.Sprintf("%d unanswered", unanswered))
	}
	if afterJobFailure > 0 {
		parts = append(parts, fmt.Sprintf("%d completed before their job failed", afterJobFailure))
	}
	return fmt.Sprintf("%d completed (%s)", completed, strings.Join(parts, ", "))
}

// resumedText says how often a run was resumed ("" never).
func resumedText(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return "resumed once"
	}
	return fmt.Sprintf("resumed %d times", n)
}

// notRunText says how many tasks of a run never ran ("" for none).
func notRunText(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d not run", n)
}

// overRunText is the score over the tasks that ran, when some did not ("").
func overRunText(notRun int, score *float64) string {
	if notRun == 0 {
		return ""
	}
	return fmt.Sprintf(" (over the tasks run: %s)", percent(score))
}

// stopText says why a run stopped ("" when it was not stopped).
func stopText(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

// percent shows a score (0..1) as a percentage, "-" when there is none.
func percent(score *float64) string {
	if score == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *score*100)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func newRunsCmd() *cobra.Command {
	var (
		configName string
		limit      int
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "runs [--config NAME]",
		Short: "Recent runs, newest first",
		Args:  cobra.NoArgs,
	}
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if limit < 1 {
			return &exitError{code: 2, err: fmt.Errorf("--limit %d: want 1 or more", limit)}
		}
		return nil
	}
	onStage(cmd, func(cmd *cobra.Command, op *operator.Operator, _ []string) error {
		runs, err := op.Runs(cmd.Context(), configName, limit)
		if err != nil {
			return userError(err)
		}
		w := cmd.OutOrStdout()
		if asJSON {
			type row struct {
				RunID          string   `json:"run_id"`
				ConfigName     string   `json:"config_name"`
				Status         string   `json:"status"`
				CreatedAt      string   `json:"created_at"`
				TotalTasks     int      `json:"total_tasks"`
				CompletedTasks int      `json:"completed_tasks"`
				FailedTasks    int      `json:"failed_tasks"`
				Accuracy       float64  `json:"accuracy"`
				Score          *float64 `json:"score"`
				TotalCostUSD   string   `json:"total_cost_usd"`
				// Tasks whose cost could not be read: left out of the total.
				UnreadableCosts int `json:"unreadable_costs"`
				// The Fargate cost of the run's jobs, and the sum of both.
				ComputeCostUSD     string `json:"compute_cost_usd"`
				UnpricedJobs       int    `json:"unpriced_jobs"`
				CostWithComputeUSD string `json:"cost_with_compute_usd"`
				// A stopped run's reason, its tasks never run and its
				// score over the tasks that ran.
				StopReason   string   `json:"stop_reason,omitempty"`
				NotRunTasks  int      `json:"not_run_tasks"`
				ScoreOverRun *float64 `json:"score_over_run_tasks,omitempty"`
				// How often it was resumed, and its executions.
				Resumes    int               `json:"resumes"`
				Executions []model.Execution `json:"executions,omitempty"`
			}
			rows := make([]row, len(runs))
			for i, r := range runs {
				rows[i] = row{r.RunID, r.ConfigName, r.Status, r.CreatedAt, r.TotalTasks, r.CompletedTasks, r.FailedTasks, r.Accuracy, r.Score, r.TotalCostUSD, r.UnreadableCosts,
					r.ComputeCostUSD, r.UnpricedJobs, runCosts(r).Total(), r.StopReason, r.NotRunTasks, r.ScoreOverRun, r.Resumes(), r.Executions}
			}
			printJSON(w, rows)
			return nil
		}
		if len(runs) == 0 {
			fmt.Fprintln(w, "no runs")
			return nil
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tSTATUS\tCREATED\tCOMPLETED\tFAILED\tNOT RUN\tTOTAL\tSCORE\tACCURACY\tCOST")
		for _, r := range runs {
			notRun := "-" // still running: the rest are pending
			if r.Status != model.RunRunning {
				notRun = fmt.Sprint(max(0, r.TotalTasks-r.CompletedTasks-r.FailedTasks))
			}
			score := percent(r.Score)
			if r.ScoreOverRun != nil && r.NotRunTasks > 0 {
				score += " (" + percent(r.ScoreOverRun) + " of run)"
			}
			status := r.Status
			if n := r.Resumes(); n > 0 {
				status += " (" + resumedText(n) + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\t%.1f%%\t%s\n", r.RunID, status, r.CreatedAt, r.CompletedTasks, r.FailedTasks, notRun,
				r.TotalTasks, score, r.Accuracy*100, runCosts(r))
		}
		return tw.Flush()
	})
	cmd.Flags().StringVar(&configName, "config", "", "only runs of this configuration")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many runs")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the runs as JSON")
	return cmd
}

func newRetryCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "retry RUN_ID",
		Short: "Start a new run of the same configuration over the tasks that ended FAILED_PERMANENT",
		Args:  runIDArg,
	}
	onStage(cmd, func(cmd *cobra.Command, op *operator.Operator, args []string) error {
		started, ids, err := op.Retry(cmd.Context(), args[0])
		if err != nil {
			return userError(err)
		}
		w := cmd.OutOrStdout()
		if started == nil {
			if asJSON {
				printJSON(w, map[string]any{"retried": 0})
			} else {
				fmt.Fprintf(w, "run %s has no permanently failed tasks: nothing to retry\n", args[0])
			}
			return nil
		}
		if asJSON {
			printJSON(w, map[string]any{"retried": len(ids), "task_ids": ids, "run": started})
			return nil
		}
		fmt.Fprintf(w, "retrying %d permanently failed tasks of %s\n", len(ids), args[0])
		printStarted(w, started)
		return nil
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func newStopCmd() *cobra.Command {
	var (
		reason string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "stop RUN_ID [--reason TEXT]",
		Short: "Stop a running run: its execution and its jobs stop, and the run ends FAILED with the reason",
		Args:  runIDArg,
	}
	onStage(cmd, func(cmd *cobra.Command, op *operator.Operator, args []string) error {
		stopped, err := op.Stop(cmd.Context(), args[0], reason)
		if err != nil {
			return userError(err)
		}
		if asJSON {
			printJSON(cmd.OutOrStdout(), stopped)
			return nil
		}
		fmt.Fprintf(cmd.OutOrStdout(), "run %s stopped: %s (%s)\n", stopped.RunID, stopped.Status, stopped.Reason)
		return nil
	})
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded on the run; default: stopped by you)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// runCosts are a run record's model and compute costs.
func runCosts(r *store.Run) money.Costs {
	return money.Costs{ModelUSD: r.TotalCostUSD, UnreadableCosts: r.UnreadableCosts, ComputeUSD: r.ComputeCostUSD, UnpricedJobs: r.UnpricedJobs}
}
