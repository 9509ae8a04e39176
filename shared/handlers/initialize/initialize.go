// Package initialize creates a run: its run record and one PENDING task record
// per task.
package initialize

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// Store is what initialize needs of the run store.
type Store interface {
	GetRun(ctx context.Context, runID string) (*store.Run, error)
	CreateRun(ctx context.Context, r store.Run) (bool, error)
	PutTasks(ctx context.Context, runID string, taskIDs []string, now string) error
}

var _ Store = (*store.Store)(nil)

// Handler is the initialize Lambda.
type Handler struct {
	Store Store
	Now   func() time.Time
}

// Handle validates the input, then writes every task record and, last, the run
// record: a run record is only ever there with all its tasks. With an
// execution_id the run id is a pure function of the input, so a retried call
// finds the run the first call made and writes nothing.
func (h *Handler) Handle(ctx context.Context, in model.InitializeInput) (model.InitializeOutput, error) {
	if err := validate(&in); err != nil {
		return model.InitializeOutput{}, err
	}
	runID, err := h.runID(in)
	if err != nil {
		return model.InitializeOutput{}, err
	}
	out := model.InitializeOutput{
		RunID:      runID,
		TaskIDs:    in.TaskIDs,
		ConfigName: in.ConfigName,
		DataSource: in.DataSource,
		TotalTasks: len(in.TaskIDs),
	}
	log := lambdaio.Logger(ctx).With("run_id", runID, "config_name", in.ConfigName)

	if in.ExecutionID != "" {
		existing, err := h.Store.GetRun(ctx, runID)
		switch {
		case err == nil:
			if existing.ExecutionID != in.ExecutionID {
				return model.InitializeOutput{}, fmt.Errorf("run %s exists for another execution (%s)", runID, existing.ExecutionID)
			}
			log.Info("run already initialized for this execution; nothing written", "execution_id", in.ExecutionID)
			return out, nil
		case !isNotFound(err):
			return model.InitializeOutput{}, fmt.Errorf("look up run of execution %s: %w", in.ExecutionID, err)
		}
	}

	now := model.FormatTime(h.Now())
	if err := h.Store.PutTasks(ctx, runID, in.TaskIDs, now); err != nil {
		return model.InitializeOutput{}, err
	}
	created, err := h.Store.CreateRun(ctx, store.Run{
		RunID:       runID,
		ConfigName:  in.ConfigName,
		DataSource:  in.DataSource,
		CreatedAt:   now,
		TriggeredBy: in.TriggeredBy,
		CommitSHA:   in.CommitSHA,
		ExecutionID: in.ExecutionID,
		TotalTasks:  len(in.TaskIDs),
	})
	if err != nil {
		return model.InitializeOutput{}, err
	}
	if !created && in.ExecutionID == "" {
		// A random id collided with an existing run: nothing of ours was recorded as a run.
		return model.InitializeOutput{}, fmt.Errorf("run id %s already taken", runID)
	}
	log.Info("run initialized", "total_tasks", len(in.TaskIDs), "data_source", in.DataSource, "created", created)
	return out, nil
}

func isNotFound(err error) bool {
	var nf *model.RunNotFoundError
	return errors.As(err, &nf)
}

// validate checks the input and fills in defaults.
func validate(in *model.InitializeInput) error {
	if err := model.ValidateName("config_name", in.ConfigName); err != nil {
		return err
	}
	if in.DataSource == "" {
		in.DataSource = model.DefaultDataSource
	}
	if err := model.ValidateName("data_source", in.DataSource); err != nil {
		return err
	}
	if err := model.ValidateTaskIDs("task_ids", in.TaskIDs); err != nil {
		return err
	}
	if in.TriggeredBy == "" {
		in.TriggeredBy = "unknown"
	}
	if in.ExecutionID != "" && in.ExecutionStartTime == "" {
		return &model.InvalidInputError{Field: "execution_start_time", Reason: "is required with execution_id (pass $$.Execution.StartTime)"}
	}
	if in.ExecutionStartTime != "" {
		if _, err := time.Parse(time.RFC3339Nano, in.ExecutionStartTime); err != nil {
			return &model.InvalidInputError{Field: "execution_start_time", Reason: fmt.Sprintf("%q is not an RFC 3339 time", in.ExecutionStartTime)}
		}
	}
	return nil
}

// runID is run-<config_name>-<YYYYMMDD-HHMMSS>-<8 hex>. For an execution the
// time is the execution's start and the hex a hash of its id; otherwise the
// time is now and the hex random.
func (h *Handler) runID(in model.InitializeInput) (string, error) {
	var (
		at     time.Time
		suffix [4]byte
	)
	if in.ExecutionID != "" {
		at, _ = time.Parse(time.RFC3339Nano, in.ExecutionStartTime)
		sum := sha256.Sum256([]byte(in.ExecutionID))
		copy(suffix[:], sum[:])
	} else {
		at = h.Now()
		if _, err := rand.Read(suffix[:]); err != nil {
			return "", fmt.Errorf("random run id: %w", err)
		}
	}
	return RunID(in.ConfigName, at, hex.EncodeToString(suffix[:])), nil
}

// RunID formats a run id.
func RunID(configName string, at time.Time, hex8 string) string {
	return "run-" + configName + "-" + at.UTC().Format("20060102-150405") + "-" + hex8
}
