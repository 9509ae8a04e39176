package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"arcbench/internal/operator"
	"arcbench/shared/money"
)

// guardFlags gives cmd --budget-usd and --stop-after-failures, the run's
// spend and failure guards; the function returned reads them, checked, once
// the flags are parsed (unset: the stage's defaults).
func guardFlags(cmd *cobra.Command) func() (operator.Guards, error) {
	var (
		budget    string
		stopAfter int
	)
	f := cmd.Flags()
	f.StringVar(&budget, "budget-usd", "", "stop the run once its recorded model cost reaches this many USD: no new attempt starts, "+
		"jobs in flight finish, the tasks not started end NOT_RUN (default: the stage's runBudgetUsd, none unless set)")
	f.IntVar(&stopAfter, "stop-after-failures", 0, "stop the run when this many attempts in a row fail, terminating its jobs; 0 never stops early (default: the stage's stopAfterFailures, 20)")
	return func() (operator.Guards, error) {
		var g operator.Guards
		if f.Changed("budget-usd") {
			b, err := money.Budget(budget)
			if err != nil {
				return g, &exitError{code: 2, err: fmt.Errorf("--budget-usd: %w", err)}
			}
			g.BudgetUSD = b
		}
		if f.Changed("stop-after-failures") {
			if stopAfter < 0 {
				return g, &exitError{code: 2, err: fmt.Errorf("--stop-after-failures %d: want 0 (never stop early) or more", stopAfter)}
			}
			g.StopAfterFailures = &stopAfter
		}
		return g, nil
	}
}
