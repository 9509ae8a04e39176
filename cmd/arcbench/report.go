package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"arcbench/internal/operator"
	"arcbench/internal/report"
	"arcbench/shared/model"
)

// writePage writes a report or comparison page to path, all or nothing.
func writePage(path string, data any) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".arcbench-page-*.html")
	if err != nil {
		return fmt.Errorf("-o %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := report.Write(tmp, data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// CreateTemp's file is private (0600); a page is a document to share.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func newReportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report RUN_ID [-o report.html]",
		Short: "Write a run's report: one HTML page with its figures and every task's grids",
		Long: `Writes one self-contained HTML page (it opens from disk and fetches nothing): the run's
figures (official score, tasks completed / failed / unscored, cost, tokens, wall time, attempts),
every task as a tile coloured by its score, filters, and for each task its test inputs, expected
outputs and every attempt's answer drawn as ARC grids, with its cost, tokens, attempts and, for a
failed task, its last error.`,
		Args: runIDArg,
	}
	onStage(cmd, func(cmd *cobra.Command, op *operator.Operator, args []string) error {
		page, err := op.Report(cmd.Context(), args[0])
		if err != nil {
			return userError(err)
		}
		path := out
		if path == "" {
			path = args[0] + ".html"
		}
		if err := writePage(path, page); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: %d tasks, score %s\n", path, len(page.Tasks), percent(page.Run.Score))
		return nil
	})
	cmd.Flags().StringVarP(&out, "output", "o", "", "where to write the page (default RUN_ID.html)")
	return cmd
}

func newCompareCmd() *cobra.Command {
	var (
		out     string
		configs []string
	)
	cmd := &cobra.Command{
		Use:   "compare RUN_ID RUN_ID... [--config A --config B] [-o compare.html]",
		Short: "Compare runs by score and cost: a text table, and an HTML page with a score-cost chart",
		Long: `Compares runs side by side (score, cost per task, tasks solved, attempts), prints that as a
table, and writes an HTML page with the same figures, a chart of score against cost per task (cost
on a log scale, one point per run) and the tasks one run solved and another did not, each opening
every run's grids. --config NAME adds the latest run of that configuration.`,
		Args: func(cmd *cobra.Command, args []string) error {
			for _, id := range args {
				if err := model.ValidateRunID(id); err != nil {
					return &exitError{code: 2, err: err}
				}
			}
			return nil
		},
	}
	onStage(cmd, func(cmd *cobra.Command, op *operator.Operator, args []string) error {
		c, err := op.Compare(cmd.Context(), args, configs)
		if err != nil {
			return userError(err)
		}
		if err := report.WriteTable(cmd.OutOrStdout(), c); err != nil {
			return err
		}
		if err := writePage(out, c); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "page: %s\n", out)
		return nil
	})
	cmd.Flags().StringVarP(&out, "output", "o", "compare.html", "where to write the page")
	cmd.Flags().StringArrayVar(&configs, "config", nil, "compare the latest run of this configuration (repeat)")
	return cmd
}
