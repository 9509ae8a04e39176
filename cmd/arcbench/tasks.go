package main

import (
	"fmt"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"arcbench/internal/operator"
	"arcbench/shared/arcdata"
	"arcbench/shared/model"
)

func newTasksCmd() *cobra.Command {
	tasks := &cobra.Command{Use: "tasks", Short: "Manage a stage's task data"}
	tasks.AddCommand(newTasksUploadCmd())
	return tasks
}

func newTasksUploadCmd() *cobra.Command {
	var (
		dataSource string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "upload DIR --stage S [--data-source D]",
		Short: "Upload a folder of <task_id>.json ARC tasks to tasks/<data-source>/ of the stage's bucket, skipping unchanged files",
		Long: `Reads every <task_id>.json file directly in DIR, checks that each is an ARC task
({"train":[...],"test":[...]}) named by a valid id, and puts it at tasks/<data-source>/<task_id>.json
in the stage's bucket. Files stored already with the same bytes are skipped. Nothing is uploaded
when any file is bad.`,
		Example: `  arcbench tasks upload ../arc-agi-2/data/evaluation --stage sandbox-teal
  arcbench tasks upload ./training --data-source training --json`,
		Args: cobra.ExactArgs(1),
	}
	stage := stageFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		// The folder is checked whole before the stage is even looked up, so
		// that a bad file never leaves a data source half uploaded.
		if err := model.ValidateName("data_source", dataSource); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--data-source: %w", err)}
		}
		files, err := arcdata.LoadDir(args[0])
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		op, err := operator.Connect(cmd.Context(), *stage)
		if err != nil {
			return userError(err)
		}
		var bar *progressbar.ProgressBar
		progress := func(done, total int) {
			if asJSON {
				return
			}
			if bar == nil {
				bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(cmd.ErrOrStderr()), progressbar.OptionSetWidth(30),
					progressbar.OptionShowCount(), progressbar.OptionSetDescription("uploading"))
			}
			_ = bar.Set(done)
		}
		report, err := op.UploadTasks(cmd.Context(), files, dataSource, progress)
		if bar != nil {
			if err == nil {
				_ = bar.Finish()
			}
			fmt.Fprintln(cmd.ErrOrStderr()) // the bar's line ends before the error's
		}
		if err != nil {
			return userError(err)
		}
		if asJSON {
			printJSON(cmd.OutOrStdout(), report)
			return nil
		}
		fmt.Fprintln(cmd.OutOrStdout(), report)
		return nil
	}
	cmd.Flags().StringVar(&dataSource, "data-source", model.DefaultDataSource, "the data source to upload to (tasks/<data-source>/ in the bucket)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report (uploaded and unchanged task ids) as JSON")
	return cmd
}
