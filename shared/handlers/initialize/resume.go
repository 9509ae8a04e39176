package initialize

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"golang.org/x/sync/errgroup"

	"arcbench/shared/clients"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
	"arcbench/shared/money"
	"arcbench/shared/store"
)

// Executions is the part of the Step Functions API initialize uses to
// resume a run: whether the run's last execution has ended, and when.
type Executions interface {
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, opts ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

var _ Executions = (*sfn.Client)(nil)

// ResumeSettle is how long after its execution ended a run whose end
// nobody has told yet (notified_at) must wait before it is resumed: the
// run reaper waits 40 s for terminated jobs, then aggregates and tells the
// end within its 3-minute timeout. A resume before that could release a
// task a terminated job is still completing, or race the reaper's records.
const ResumeSettle = 5 * time.Minute

// ResumeStore is what a resume needs of the run store, beyond Store.
type ResumeStore interface {
	EachTask(ctx context.Context, runID string, fn func(store.Task) error) error
	ClaimResume(ctx context.Context, c store.ResumeClaim) error
	ReleaseTask(ctx context.Context, runID string, seen store.Task, to string, entry model.TaskHistoryEntry) (bool, error)
	Recount(ctx context.Context, runID, at string) error
}

var _ ResumeStore = (*store.Store)(nil)

// resumeItem is one task a resume runs again: its item for the Map and,
// when the task must be made claimable first, the record as planned from.
type resumeItem struct {
	model.MapItem
	release *store.Task
	to      string
}

// resume runs an existing run again in place (in.ResumeRunID), as a new
// execution: it checks that no execution of the run is running, plans
// every task that has not COMPLETED (FAILED_PERMANENT ones with
// include_failed), takes the run over (ClaimResume), writes the plan where
// the Map reads it, makes the planned tasks claimable and recounts the run
// from its records. A retried call of the same execution finds the run
// claimed by it and finishes what the first call began: the plan is read
// back, releasing and recounting are repeatable.
func (h *Handler) resume(ctx context.Context, in model.InitializeInput) (model.InitializeOutput, error) {
	if err := validateResume(in); err != nil {
		return model.InitializeOutput{}, err
	}
	budget, stopAfter, err := inputGuards(in) // given ones replace the run's
	if err != nil {
		return model.InitializeOutput{}, err
	}
	rs, ok := h.Store.(ResumeStore)
	if !ok || h.Bucket == "" {
		return model.InitializeOutput{}, errors.New("resume needs the run store and the bucket (S3_BUCKET)")
	}
	run, err := h.Store.GetRun(ctx, in.ResumeRunID)
	if err != nil {
		return model.InitializeOutput{}, err
	}
	log := lambdaio.Logger(ctx).With("run_id", run.RunID, "config_name", run.ConfigName, "execution_id", in.ExecutionID)
	out := model.InitializeOutput{RunID: run.RunID, ConfigName: run.ConfigName, DataSource: run.DataSource,
		TotalTasks: run.TotalTasks, ItemsKey: model.ResumeItemsKey(run.RunID, in.ExecutionID)}
	now := h.Now()
	at := model.FormatTime(now)

	var plan []resumeItem
	if run.ExecutionID == in.ExecutionID {
		// A retry of this execution's own call: the run is ours already.
		log.Info("run already taken over by this execution; finishing the resume")
		if plan, err = h.readPlan(ctx, rs, run, out.ItemsKey, in.IncludeFailed); err != nil {
			return model.InitializeOutput{}, err
		}
	} else {
		ended, err := h.lastExecutionEnd(ctx, run, now)
		if err != nil {
			return model.InitializeOutput{}, err
		}
		if plan, err = planResume(ctx, rs, run.RunID, run.ConfigName, in.IncludeFailed); err != nil {
			return model.InitializeOutput{}, err
		}
		if len(plan) == 0 {
			reason := fmt.Sprintf("every task of run %s is COMPLETED: nothing to resume", run.RunID)
			if !in.IncludeFailed {
				reason = fmt.Sprintf("every task of run %s is COMPLETED or FAILED_PERMANENT: nothing to resume (include_failed runs the failed ones again)", run.RunID)
			}
			return model.InitializeOutput{}, &model.InvalidInputError{Field: "resume_run_id", Reason: reason}
		}
		if err := checkBudget(run, budget); err != nil {
			return model.InitializeOutput{}, err
		}
		executions := slices.Clone(run.Executions)
		if len(executions) == 0 && run.ExecutionID != "" {
			// A run made before runs listed their executions.
			executions = []model.Execution{{ExecutionID: run.ExecutionID, Kind: model.ExecutionStart, StartedAt: run.CreatedAt, Tasks: run.TotalTasks}}
		}
		if n := len(executions); n > 0 && executions[n-1].EndedAt == "" {
			executions[n-1].EndedAt = ended
		}
		executions = append(executions, model.Execution{ExecutionID: in.ExecutionID, Kind: model.ExecutionResume, StartedAt: at,
			Tasks: len(plan), IncludeFailed: in.IncludeFailed})
		err = rs.ClaimResume(ctx, store.ResumeClaim{RunID: run.RunID, Seen: run, Executions: executions,
			BudgetUSD: budget, StopAfterFailures: stopAfter, At: at})
		if errors.Is(err, store.ErrRunChanged) {
			return model.InitializeOutput{}, &model.RunBusyError{RunID: run.RunID, Reason: "it changed while this resume was being planned (another resume or stop?): look at it and try again"}
		}
		if err != nil {
			return model.InitializeOutput{}, err
		}
		if err := h.putPlan(ctx, out.ItemsKey, plan); err != nil {
			return model.InitializeOutput{}, err
		}
	}
	released, err := h.release(ctx, rs, run.RunID, in.ExecutionID, plan, at)
	if err != nil {
		return model.InitializeOutput{}, err
	}
	// The released tasks' earlier outcomes no longer count; no count of the
	// earlier execution is in flight (it has ended), and none of this one's
	// yet (its Map starts after this call).
	if err := rs.Recount(ctx, run.RunID, at); err != nil {
		return model.InitializeOutput{}, err
	}
	executions := len(run.Executions)
	if run.ExecutionID != in.ExecutionID {
		executions++ // the run as read before this call's claim
	}
	log.Info("run resumed", "tasks", len(plan), "released", released, "include_failed", in.IncludeFailed,
		"executions", executions, "budget_usd", deref(budget))
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// validateResume checks a resume's input: the run is named, the rest is the run's own.
func validateResume(in model.InitializeInput) error {
	switch {
	case in.ConfigName != "":
		return &model.InvalidInputError{Field: "config_name", Reason: "a resumed run keeps its own: give resume_run_id alone"}
	case in.TaskIDs != nil || in.TaskListKey != "":
		return &model.InvalidInputError{Field: "task_ids", Reason: "a resumed run runs its own unfinished tasks: give resume_run_id alone"}
	case in.ReuseRunID != "":
		return &model.InvalidInputError{Field: "reuse_run_id", Reason: "is for a new run, not a resume"}
	case in.ExecutionID == "":
		return &model.InvalidInputError{Field: "execution_id", Reason: "a resume is an execution of the state machine (arcbench resume): pass $$.Execution.Id"}
	}
	return model.ValidateName("resume_run_id", in.ResumeRunID)
}

// checkBudget refuses a resume whose run has spent its budget already: its
// first count would stop it again.
func checkBudget(run *store.Run, budget *string) error {
	limit := run.BudgetUSD
	if budget != nil {
		limit = *budget
	}
	if limit == "" {
		return nil
	}
	spent, err := money.Cost(cmp.Or(run.TotalCostUSD, "0"))
	if err != nil {
		spent = run.TotalCostUSD
	}
	if c, err := money.Compare(spent, limit); err == nil && c >= 0 {
		return &model.InvalidInputError{Field: "budget_usd", Reason: fmt.Sprintf("run %s has spent $%s of its $%s budget: resume it with a higher budget", run.RunID, spent, limit)}
	}
	return nil
}

// lastExecutionEnd says when the run's last execution ended, or why the
// run cannot be resumed yet (*model.RunBusyError): that execution is still
// running, or ended so recently that its end is still being recorded.
func (h *Handler) lastExecutionEnd(ctx context.Context, run *store.Run, now time.Time) (string, error) {
	fallback := run.EndedAt()
	if run.ExecutionID == "" || h.Executions == nil {
		// No execution to ask (a run made by invoking initialize): the record decides.
		if run.Status == model.RunRunning {
			return "", &model.RunBusyError{RunID: run.RunID, Reason: "it is RUNNING"}
		}
		return fallback, nil
	}
	desc, err := h.Executions.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(run.ExecutionID)})
	var gone *sfntypes.ExecutionDoesNotExist
	switch {
	case errors.As(err, &gone):
		// Past Step Functions' 90 days of history: long over.
		return fallback, nil
	case err != nil:
		return "", fmt.Errorf("describe the last execution of run %s: %w", run.RunID, err)
	case desc.Status == sfntypes.ExecutionStatusRunning || desc.Status == sfntypes.ExecutionStatusPendingRedrive:
		return "", &model.RunBusyError{RunID: run.RunID, Reason: fmt.Sprintf("its execution %s is still running: wait for it to end, or stop it (arcbench stop %s)", run.ExecutionID, run.RunID)}
	}
	ended := now
	if desc.StopDate != nil {
		ended = *desc.StopDate
	}
	if run.NotifiedAt == "" && now.Sub(ended) < ResumeSettle {
		return "", &model.RunBusyError{RunID: run.RunID, Reason: fmt.Sprintf("its execution ended %s at %s and its end is still being recorded (the run reaper): try again after %s",
			desc.Status, model.FormatTime(ended), model.FormatTime(ended.Add(ResumeSettle)))}
	}
	return model.FormatTime(ended), nil
}

// planResume lists the tasks a resume runs again, with each one's first
// attempt number: past every number the task used before (its failed
// attempts, a stranded one, those whose compute or failure was recorded),
// since each attempt is recorded and counted once by its number. Attempts
// that failed count against MAX_RETRIES (the base excludes only stranded
// ones), unless includeFailed runs a FAILED_PERMANENT task afresh.
func planResume(ctx context.Context, st ResumeStore, runID, configName string, includeFailed bool) ([]resumeItem, error) {
	var plan []resumeItem
	err := st.EachTask(ctx, runID, func(t store.Task) error {
		var to string
		switch t.Status {
		case model.TaskCompleted:
			return nil
		case model.TaskFailedPermanent:
			if !includeFailed {
				return nil
			}
			to = model.TaskFailed
		case model.TaskInProgress, model.TaskNotRun:
			// The worker claims PENDING or FAILED only.
			to = model.TaskPending
			if t.RetryCount > 0 {
				to = model.TaskFailed
			}
		case model.TaskPending, model.TaskFailed:
		default:
			return nil // a status no worker or handler writes: left as it is
		}
		used := max(t.RetryCount, t.NotedAttempt, t.NoAnswerAttempt)
		for _, a := range t.ComputeAttempts {
			used = max(used, a)
		}
		if t.Status == model.TaskInProgress {
			used = max(used, t.RetryCount+1) // the stranded attempt's number
		}
		item := resumeItem{MapItem: model.MapItem{TaskID: t.TaskID, JobName: model.JobName(configName, t.TaskID), Attempt: used + 1, AttemptBase: used - t.RetryCount}}
		if t.Status == model.TaskFailedPermanent {
			item.AttemptBase = used
		}
		if to != "" {
			t := t
			item.release, item.to = &t, to
		}
		plan = append(plan, item)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(plan, func(a, b resumeItem) int { return strings.Compare(a.TaskID, b.TaskID) })
	return plan, nil
}

// putPlan writes the resume's items where the Map reads them.
func (h *Handler) putPlan(ctx context.Context, key string, plan []resumeItem) error {
	items := make([]model.MapItem, len(plan))
	for i, p := range plan {
		items[i] = p.MapItem
	}
	return h.writeItems(ctx, key, items)
}

// readPlan is, for a retried call, the plan its first call wrote; when that
// call died before writing it, nothing was released yet, and the plan is
// made again from the same records.
func (h *Handler) readPlan(ctx context.Context, st ResumeStore, run *store.Run, key string, includeFailed bool) ([]resumeItem, error) {
	plan, err := planResume(ctx, st, run.RunID, run.ConfigName, includeFailed)
	if err != nil {
		return nil, err
	}
	obj, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(key)})
	if _, missing := clients.NoObject(err); missing {
		return plan, h.putPlan(ctx, key, plan)
	}
	if err != nil {
		return nil, fmt.Errorf("read resume items s3://%s/%s: %w", h.Bucket, key, err)
	}
	defer obj.Body.Close()
	var items []model.MapItem
	if err := json.NewDecoder(obj.Body).Decode(&items); err != nil {
		return nil, fmt.Errorf("read resume items s3://%s/%s: %w", h.Bucket, key, err)
	}
	// The written plan's numbers stand; a task still to release is released
	// as the fresh plan says (the same, since nothing was released before it).
	fresh := make(map[string]resumeItem, len(plan))
	for _, p := range plan {
		fresh[p.TaskID] = p
	}
	out := make([]resumeItem, len(items))
	for i, it := range items {
		out[i] = resumeItem{MapItem: it, release: fresh[it.TaskID].release, to: fresh[it.TaskID].to}
	}
	return out, nil
}

// release makes the planned tasks claimable, a few at a time; a task that
// changed since it was planned (released by an earlier call) is left alone.
func (h *Handler) release(ctx context.Context, st ResumeStore, runID, executionID string, plan []resumeItem, at string) (int, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	var released atomic.Int64
	for _, p := range plan {
		if p.release == nil {
			continue
		}
		t := p.release
		g.Go(func() error {
			ok, err := st.ReleaseTask(gctx, runID, *t, p.to, model.TaskHistoryEntry{Status: t.Status, RetryCount: t.RetryCount,
				LastErrorType: t.LastErrorType, LastErrorCause: model.Truncate(t.LastErrorCause, 1000, "..."), WorkerError: model.Truncate(t.WorkerError, 1000, "..."),
				CostUSD: t.CostUSD, TokensInput: t.TokensInput, TokensOutput: t.TokensOutput, ReleasedAt: at, ReleasedBy: executionID})
			if ok {
				released.Add(1)
			}
			return err
		})
	}
	err := g.Wait()
	return int(released.Load()), err
}
