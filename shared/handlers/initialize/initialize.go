// Package initialize creates a run: its run record and one PENDING task record
// per task.
package initialize

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"arcbench/shared/clients"
	"arcbench/shared/lambdaio"
	"arcbench/shared/metrics"
	"arcbench/shared/model"
	"arcbench/shared/money"
	"arcbench/shared/store"
)

// Store is what initialize needs of the run store.
type Store interface {
	GetRun(ctx context.Context, runID string) (*store.Run, error)
	CreateRun(ctx context.Context, r store.Run) (bool, error)
	PutTasks(ctx context.Context, runID string, taskIDs []string, now string) error
}

var _ Store = (*store.Store)(nil)

// S3 is the part of the S3 API initialize uses: it reads uploaded task lists
// and writes the run's items for the Map.
type S3 interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

var _ S3 = (*s3.Client)(nil)

// Metrics publishes the stage's metrics (RunStarted).
type Metrics interface {
	Put(ctx context.Context, data ...types.MetricDatum) error
}

var _ Metrics = (*metrics.Publisher)(nil)

// MetricsTimeout bounds the CloudWatch call: metrics never hold a run up.
const MetricsTimeout = 3 * time.Second

// Handler is the initialize Lambda.
type Handler struct {
	Store Store
	S3    S3
	// Bucket holds task lists and the run's items; empty: the task list
	// comes back inline in the output.
	Bucket string
	Now    func() time.Time
	// RunBudgetUSD ("" none) and StopAfterFailures are the stage's defaults
	// for a run whose input names none.
	RunBudgetUSD      string
	StopAfterFailures int
	// Metrics counts the runs it creates (nil: not counted).
	Metrics Metrics
	// Executions tells whether a run's last execution has ended, before a
	// resume (nil: the run record's status decides).
	Executions Executions
}

// Handle validates the input, then writes every task record, the run's items
// (the task list the Map reads, with each task's job name) and, last, the run record: a run record is
// only ever there with all its tasks. With an execution_id the run id is a
// pure function of the input, so a retried call finds the run the first call
// made and writes nothing.
func (h *Handler) Handle(ctx context.Context, in model.InitializeInput) (model.InitializeOutput, error) {
	if in.ResumeRunID != "" {
		return h.resume(ctx, in)
	}
	if err := validate(&in); err != nil {
		return model.InitializeOutput{}, err
	}
	budget, stopAfter, err := h.guards(in)
	if err != nil {
		return model.InitializeOutput{}, err
	}
	if in.TaskListKey != "" {
		ids, err := h.readTaskList(ctx, in.TaskListKey)
		if err != nil {
			return model.InitializeOutput{}, err
		}
		in.TaskIDs = ids
	}
	runID, err := h.runID(in)
	if err != nil {
		return model.InitializeOutput{}, err
	}
	out := model.InitializeOutput{
		RunID:      runID,
		ConfigName: in.ConfigName,
		DataSource: in.DataSource,
		TotalTasks: len(in.TaskIDs),
	}
	if h.Bucket != "" {
		out.ItemsKey = model.ItemsKey(runID)
	} else {
		out.TaskIDs = in.TaskIDs
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

	// Results taken from an earlier run are not run again: the Map gets the rest.
	toRun := in.TaskIDs
	var reused []store.Reuse
	if in.ReuseRunID != "" {
		if reused, err = h.reusable(ctx, in); err != nil {
			return model.InitializeOutput{}, err
		}
		taken := make(map[string]bool, len(reused))
		for _, r := range reused {
			taken[r.Source.TaskID] = true
		}
		toRun = make([]string, 0, len(in.TaskIDs)-len(reused))
		for _, id := range in.TaskIDs {
			if !taken[id] {
				toRun = append(toRun, id)
			}
		}
	}

	// The task records and the items are independent: write both at once.
	now := model.FormatTime(h.Now())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return h.Store.PutTasks(gctx, runID, toRun, now) })
	if len(reused) > 0 {
		g.Go(func() error { return h.Store.(ReuseStore).PutReusedTasks(gctx, runID, reused, now) })
	}
	if out.ItemsKey != "" {
		g.Go(func() error { return h.putItems(gctx, out.ItemsKey, in.ConfigName, toRun) })
	}
	if err := g.Wait(); err != nil {
		return model.InitializeOutput{}, err
	}
	// The token makes the SDK's own retry of this write, after a lost
	// response, find the run it made rather than "a run id taken".
	token, err := randomHex(8)
	if err != nil {
		return model.InitializeOutput{}, err
	}
	created, err := h.Store.CreateRun(ctx, store.Run{
		RunID:        runID,
		ConfigName:   in.ConfigName,
		DataSource:   in.DataSource,
		CreatedAt:    now,
		TriggeredBy:  in.TriggeredBy,
		CommitSHA:    in.CommitSHA,
		ExecutionID:  in.ExecutionID,
		TotalTasks:   len(in.TaskIDs),
		RequestToken: token,

		BudgetUSD:         budget,
		StopAfterFailures: stopAfter,
	}.WithReused(in.ReuseRunID, len(reused), reusedCost(reused)))
	if err != nil {
		return model.InitializeOutput{}, err
	}
	if !created && in.ExecutionID == "" {
		// A random id collided with an existing run: nothing of ours was recorded as a run.
		return model.InitializeOutput{}, fmt.Errorf("run id %s already taken", runID)
	}
	log.Info("run initialized", "total_tasks", len(in.TaskIDs), "reused_tasks", len(reused), "data_source", in.DataSource, "created", created,
		"budget_usd", budget, "stop_after_failures", stopAfter)
	if created && h.Metrics != nil {
		// Only the call that made the run counts it; never fatal.
		mctx, cancel := context.WithTimeout(ctx, MetricsTimeout)
		defer cancel()
		if err := h.Metrics.Put(mctx, metrics.RunStartedDatum(in.ConfigName, h.Now())); err != nil {
			log.Error("RunStarted not published; the run goes on", "error", err.Error())
		}
	}
	return out, nil
}

// guards are the run's budget (exact decimal text, "" for none) and early
// stop, from its input or the stage's defaults.
func (h *Handler) guards(in model.InitializeInput) (budget string, stopAfter int, err error) {
	given, givenStop, err := inputGuards(in)
	if err != nil {
		return "", 0, err
	}
	budget, stopAfter = h.RunBudgetUSD, h.StopAfterFailures
	if given != nil {
		budget = *given
	} else if budget != "" {
		if budget, err = money.Budget(budget); err != nil {
			return "", 0, &model.InvalidInputError{Field: "budget_usd", Reason: err.Error()}
		}
	}
	if givenStop != nil {
		stopAfter = *givenStop
	}
	return budget, stopAfter, nil
}

// inputGuards are the guards the input itself gives, checked: the budget
// as exact decimal text; nil for one not given.
func inputGuards(in model.InitializeInput) (budget *string, stopAfter *int, err error) {
	if in.BudgetUSD != nil {
		b, err := money.Budget(string(*in.BudgetUSD))
		if err != nil {
			return nil, nil, &model.InvalidInputError{Field: "budget_usd", Reason: err.Error()}
		}
		budget = &b
	}
	if n := in.StopAfterFailures; n != nil && *n < 0 {
		return nil, nil, &model.InvalidInputError{Field: "stop_after_failures", Reason: fmt.Sprintf("must be 0 (never) or more, got %d", *n)}
	}
	return budget, in.StopAfterFailures, nil
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
	switch {
	case in.TaskListKey != "" && in.TaskIDs != nil:
		return &model.InvalidInputError{Field: "task_list_key", Reason: "give task_ids or task_list_key, not both"}
	case in.TaskListKey != "":
		if !strings.HasPrefix(in.TaskListKey, model.TaskListPrefix) || strings.Contains(in.TaskListKey, "..") {
			return &model.InvalidInputError{Field: "task_list_key", Reason: fmt.Sprintf("%q is not under %s in the bucket", in.TaskListKey, model.TaskListPrefix)}
		}
	default:
		if err := model.ValidateTaskIDs("task_ids", in.TaskIDs); err != nil {
			return err
		}
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

// readTaskList reads an uploaded task list: a JSON list of task ids. A list
// that is missing or malformed is bad input.
func (h *Handler) readTaskList(ctx context.Context, key string) ([]string, error) {
	if h.Bucket == "" {
		return nil, &model.InvalidInputError{Field: "task_list_key", Reason: "no bucket is configured (S3_BUCKET) to read it from"}
	}
	obj, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(key)})
	if why, missing := clients.NoObject(err); missing {
		return nil, &model.InvalidInputError{Field: "task_list_key", Reason: fmt.Sprintf("s3://%s/%s %s", h.Bucket, key, why)}
	}
	if err != nil {
		return nil, fmt.Errorf("read task list s3://%s/%s: %w", h.Bucket, key, err)
	}
	defer obj.Body.Close()
	var ids model.TaskIDs
	if err := json.NewDecoder(obj.Body).Decode(&ids); err != nil {
		var invalid *model.InvalidInputError
		if errors.As(err, &invalid) {
			invalid.Field = strings.Replace(invalid.Field, "task_ids", "task_list_key", 1)
			return nil, invalid
		}
		return nil, &model.InvalidInputError{Field: "task_list_key", Reason: fmt.Sprintf("s3://%s/%s is not a JSON list of task ids: %v", h.Bucket, key, err)}
	}
	if err := model.ValidateTaskIDs("task_list_key", ids); err != nil {
		return nil, err
	}
	return ids, nil
}

// putItems writes the task list where the Map reads it: one model.MapItem
// per task, with the name of its Batch jobs, which ASL could not compute.
func (h *Handler) putItems(ctx context.Context, key, configName string, ids []string) error {
	items := make([]model.MapItem, len(ids))
	for i, id := range ids {
		items[i] = model.MapItem{TaskID: id, JobName: model.JobName(configName, id), Attempt: 1}
	}
	return h.writeItems(ctx, key, items)
}

// writeItems writes a list of Map items at key, where the Map reads them.
func (h *Handler) writeItems(ctx context.Context, key string, items []model.MapItem) error {
	body, err := json.Marshal(items)
	if err != nil {
		return err
	}
	if _, err := h.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(h.Bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String("application/json"),
	}); err != nil {
		return fmt.Errorf("put items s3://%s/%s: %w", h.Bucket, key, err)
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

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// RunID formats a run id.
func RunID(configName string, at time.Time, hex8 string) string {
	return "run-" + configName + "-" + at.UTC().Format("20060102-150405") + "-" + hex8
}
