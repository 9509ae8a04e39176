// Command arcbench is the developer's and operator's tool: invoke a handler,
// run the whole flow locally, operate runs on a deployed stage.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries an exit code through cobra without printing a usage text.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	// Logs go to stderr as JSON; stdout carries only what a command answers.
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, nil)))
	if err := newRootCmd().Execute(); err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if ee == nil || ee.err != nil {
			fmt.Fprintln(os.Stderr, "arcbench:", err)
		}
		os.Exit(code)
	}
}

// newRootCmd is the whole command tree (the docs' test checks every command
// line of the docs and the workflows against it).
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "arcbench",
		Short:         "Run ARC-style benchmark runs on AWS, or locally",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newInvokeCmd())
	root.AddCommand(newLocalCmd())
	root.AddCommand(newStartCmd(), newWatchCmd(), newResultsCmd(), newRunsCmd(), newRetryCmd(), newResumeCmd(), newStopCmd(), newReportCmd(), newCompareCmd())
	root.AddCommand(newTasksCmd())
	root.AddCommand(newWorkerCmd())
	root.AddCommand(newDeployCheckCmd(), newSecretTemplateCmd(), newCICmd())
	return root
}
