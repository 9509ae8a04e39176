package operator

import (
	"context"
	"errors"
	"fmt"

	"arcbench/internal/report"
	"arcbench/shared/model"
)

// source reads runs of the stage for a report.
func (o *Operator) source() report.StageSource {
	return report.StageSource{Store: o.Store, S3: o.S3, Bucket: o.Stage.Bucket}
}

// Report builds a run's report page.
func (o *Operator) Report(ctx context.Context, runID string) (*report.Page, error) {
	if _, err := o.run(ctx, runID); err != nil {
		return nil, err
	}
	page, err := report.Build(ctx, o.source(), runID, o.Now())
	return page, Explain(err)
}

// Compare builds the comparison of runs: those named, then the latest run
// of each configuration named. Two at least.
func (o *Operator) Compare(ctx context.Context, runIDs, configs []string) (*report.Comparison, error) {
	ids := append([]string(nil), runIDs...)
	for _, c := range configs {
		if err := model.ValidateName("--config", c); err != nil {
			return nil, &Error{Msg: err.Error()}
		}
		runs, err := o.Runs(ctx, c, 1)
		if err != nil {
			return nil, err
		}
		if len(runs) == 0 {
			return nil, &Error{Msg: fmt.Sprintf("configuration %s has no run in stage %s: list them with `arcbench runs --stage %s`", c, o.Stage.Name, o.Stage.Name)}
		}
		ids = append(ids, runs[0].RunID)
	}
	if len(ids) < 2 {
		return nil, &Error{Msg: "compare needs two runs at least: give RUN_IDs, or --config NAME for each configuration's latest run"}
	}
	var pages []*report.Page
	for _, id := range ids {
		p, err := o.Report(ctx, id)
		var ue *Error
		if errors.As(err, &ue) {
			return nil, err
		}
		if err != nil {
			return nil, Explain(fmt.Errorf("report of %s: %w", id, err))
		}
		pages = append(pages, p)
	}
	return report.Compare(pages), nil
}
