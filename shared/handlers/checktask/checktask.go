// Package checktask decides, after every job, whether the attempt succeeded:
// from the task record, never from the job's exit code. A COMPLETED task is
// scored at once (the official ARC-AGI score, from its submission and the
// task data); anything else is a failed attempt for handle-error.
package checktask

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"arcbench/shared/arcdata"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
	"arcbench/shared/scoring"
	"arcbench/shared/store"
)

// Store is what check-task needs of the run store.
type Store interface {
	GetTask(ctx context.Context, runID, taskID string) (store.Task, error)
	SaveScore(ctx context.Context, runID, taskID string, sc store.Score) error
}

var _ Store = (*store.Store)(nil)

// S3 is the part of the S3 API check-task uses: it reads the submission and
// the task data.
type S3 interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

var _ S3 = (*s3.Client)(nil)

// MaxObjectBytes bounds what check-task reads of a submission or of task data
// (ARC tasks and their submissions are kilobytes).
const MaxObjectBytes = 16 << 20

// Handler is the check-task Lambda.
type Handler struct {
	Store  Store
	S3     S3
	Bucket string
}

// Handle reads the task record after a job. COMPLETED: the task is scored
// (once; a repeated call answers the stored score) and the answer is
// COMPLETED, even when the job itself failed after the task was done.
// Otherwise the answer carries the task's status and the error handle-error
// records: the job's own, or TaskNotCompleted for a job that succeeded
// without completing its task.
func (h *Handler) Handle(ctx context.Context, in model.CheckTaskInput) (model.CheckTaskOutput, error) {
	if err := validate(in); err != nil {
		return model.CheckTaskOutput{}, err
	}
	log := lambdaio.Logger(ctx).With("run_id", in.RunID, "task_id", in.TaskID, "attempt", in.Attempt)
	for range 3 {
		t, err := h.Store.GetTask(ctx, in.RunID, in.TaskID)
		if err != nil {
			return model.CheckTaskOutput{}, err
		}
		if t.Status != model.TaskCompleted {
			out := model.CheckTaskOutput{TaskItem: in.TaskItem, Status: t.Status, Error: in.Error}
			if out.Error == nil {
				out.Error = &model.TaskError{Error: model.ErrTaskNotCompleted, Cause: fmt.Sprintf(
					"the job of attempt %d ended without an error, but task %s is %s: its worker did not complete it",
					in.Attempt, in.TaskID, t.Status)}
			}
			log.Warn("attempt failed: the task is not completed", "status", t.Status, "job_failed", in.Error != nil, "error", out.Error.Error)
			return out, nil
		}
		sc := storedScore(t)
		if sc == nil {
			s, err := h.score(ctx, in, t)
			if err != nil {
				return model.CheckTaskOutput{}, err
			}
			if err := h.Store.SaveScore(ctx, in.RunID, in.TaskID, s); errors.Is(err, store.ErrNotCompleted) {
				continue // the worker changed it under us: read it again
			} else if err != nil {
				return model.CheckTaskOutput{}, err
			}
			sc = &s
		}
		attrs := []any{"status", t.Status, "pairs", sc.Pairs, "pairs_correct", sc.PairsCorrect}
		if sc.Score != nil {
			attrs = append(attrs, "score", *sc.Score)
		}
		if sc.Error != "" {
			attrs = append(attrs, "score_error", sc.Error)
		}
		if in.Error != nil {
			// Done and paid for: a job that failed after the write is not retried.
			attrs = append(attrs, "job_failed_after_completion", in.Error.Error)
		}
		log.Info("task completed and scored", attrs...)
		return model.CheckTaskOutput{TaskItem: in.TaskItem, Status: model.TaskCompleted, Score: sc.Score}, nil
	}
	return model.CheckTaskOutput{}, fmt.Errorf("task %s of run %s: its status kept changing while it was scored", in.TaskID, in.RunID)
}

func validate(in model.CheckTaskInput) error {
	switch {
	case in.RunID == "":
		return &model.InvalidInputError{Field: "run_id", Reason: "is required"}
	case in.TaskID == "":
		return &model.InvalidInputError{Field: "task_id", Reason: "is required"}
	}
	if err := model.ValidateName("data_source", in.DataSource); err != nil {
		return err
	}
	if in.Attempt < 1 {
		return &model.InvalidInputError{Field: "attempt", Reason: fmt.Sprintf("must be the attempt's number, 1 or more, got %d", in.Attempt)}
	}
	return nil
}

// storedScore is the score check-task already wrote, nil when none.
func storedScore(t store.Task) *store.Score {
	if t.Pairs == nil {
		return nil
	}
	return &store.Score{Pairs: *t.Pairs, PairsCorrect: t.PairsCorrect, Score: t.Score, Error: t.ScoreError}
}

// score scores a completed task. What is missing or unreadable (the task
// data, the submission) scores 0 with the reason recorded: the task is done,
// its answer just cannot be counted. Only service faults are errors.
func (h *Handler) score(ctx context.Context, in model.CheckTaskInput, t store.Task) (store.Score, error) {
	zero := 0.0
	dataKey := model.TaskDataKey(in.DataSource, in.TaskID)
	body, unusable, err := h.read(ctx, dataKey)
	if err != nil {
		return store.Score{}, err
	}
	var task arcdata.Task
	if unusable == "" {
		if err := json.Unmarshal(body, &task); err != nil {
			unusable = "is not an ARC task: " + err.Error()
		} else if err := task.Validate(); err != nil {
			unusable = err.Error()
		}
	}
	if unusable != "" {
		return store.Score{Score: &zero, Error: "task data " + dataKey + " " + unusable}, nil
	}
	subKey := model.ResolveResultKey(in.RunID, t.ResultS3Key)
	if subKey == "" {
		subKey = model.SubmissionKey(in.RunID, in.TaskID)
	}
	sub, unusable, err := h.read(ctx, subKey)
	if err != nil {
		return store.Score{}, err
	}
	if unusable != "" {
		r, _ := scoring.Score(task, []byte("[]"))
		return fromResult(r, "submission "+subKey+" "+unusable), nil
	}
	r, err := scoring.Score(task, sub)
	note := ""
	switch {
	case err != nil:
		note = fmt.Sprintf("submission %s: %v", subKey, err)
	case len(r.Ignored) > 0:
		note = fmt.Sprintf("submission %s: ignored %s", subKey, strings.Join(r.Ignored, "; "))
	}
	return fromResult(r, note), nil
}

func fromResult(r scoring.Result, note string) store.Score {
	return store.Score{Pairs: r.Pairs, PairsCorrect: r.PairsCorrect, Score: r.Score, Error: note}
}

// read returns an object's body, or why it cannot be used (no such object,
// too large); err is a service fault.
func (h *Handler) read(ctx context.Context, key string) (body []byte, unusable string, err error) {
	obj, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(key)})
	var noKey *s3types.NoSuchKey
	if errors.As(err, &noKey) {
		return nil, "does not exist", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read s3://%s/%s: %w", h.Bucket, key, err)
	}
	defer obj.Body.Close()
	body, err = io.ReadAll(io.LimitReader(obj.Body, MaxObjectBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("read s3://%s/%s: %w", h.Bucket, key, err)
	}
	if len(body) > MaxObjectBytes {
		return nil, fmt.Sprintf("is over %d bytes", MaxObjectBytes), nil
	}
	return body, "", nil
}
