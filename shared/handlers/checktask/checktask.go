// Package checktask decides, after every job, whether the attempt succeeded:
// from the task record, never from the job's exit code. A COMPLETED task is
// scored at once (the official ARC-AGI score, from its submission and the
// task data) and counted in the run's live counters; a COMPLETED task with no
// answer at all and no spend was not served by its model, and is a failed
// attempt (NoAnswer); anything else is a failed attempt for handle-error.
package checktask

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/shared/arcdata"
	"arcbench/shared/clients"
	"arcbench/shared/fargate"
	"arcbench/shared/lambdaio"
	"arcbench/shared/metrics"
	"arcbench/shared/model"
	"arcbench/shared/scoring"
	"arcbench/shared/store"
)

// Store is what check-task needs of the run store.
type Store interface {
	GetTask(ctx context.Context, runID, taskID string) (store.Task, error)
	SaveScore(ctx context.Context, runID, taskID string, sc store.Score) error
	RevertNoAnswer(ctx context.Context, n store.NoAnswer) error
	Count(ctx context.Context, o store.Outcome) error
	ClaimCount(ctx context.Context, runID, taskID, status, owner string) (string, error)
	RefreshCounters(ctx context.Context, runID, at string) error
	RecordCompute(ctx context.Context, c store.ComputeUse) (bool, error)
}

// Metrics publishes metric data (metrics.Publisher).
type Metrics interface {
	Put(ctx context.Context, data ...types.MetricDatum) error
}

var _ Store = (*store.Store)(nil)

// S3 is the part of the S3 API check-task uses: it reads the submission and
// the task data.
type S3 interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

var _ S3 = (*s3.Client)(nil)

// MaxObjectBytes bounds what check-task reads of a submission or of task data
// (ARC tasks and their submissions are kilobytes). A submission is read as
// a stream (scoring.Read), so its size does not set check-task's memory.
const MaxObjectBytes = 16 << 20

// maxNoteLength bounds score_error on the task record.
const maxNoteLength = 2000

// Handler is the check-task Lambda.
type Handler struct {
	Store  Store
	S3     S3
	Bucket string
	// Region is where the jobs ran: their compute is priced at its Fargate price.
	Region string
	// Metrics, when set, gets a JobEnded datum per job (shared/metrics).
	Metrics Metrics
	Now     func() time.Time
}

// Handle reads the task record after a job. COMPLETED: the task is scored
// and counted (once; a repeated call answers the stored score) and the
// answer is COMPLETED, even when the job itself failed after the task was
// done (the job's error is kept on the task), unless the submission holds no
// answer and the record no spend: then the task is moved back to FAILED and
// the answer is a NoAnswer failure. Otherwise the answer carries the task's
// status and the error handle-error records: the job's own, or
// TaskNotCompleted for a job that succeeded without completing its task.
func (h *Handler) Handle(ctx context.Context, in model.CheckTaskInput) (model.CheckTaskOutput, error) {
	if err := validate(in); err != nil {
		return model.CheckTaskOutput{}, err
	}
	log := lambdaio.Logger(ctx).With("run_id", in.RunID, "task_id", in.TaskID, "attempt", in.Attempt)
	owner := store.NewOwner()
	if err := h.recordCompute(ctx, log, in, owner); err != nil {
		return model.CheckTaskOutput{}, err
	}
	for range 3 {
		t, err := h.Store.GetTask(ctx, in.RunID, in.TaskID)
		if err != nil {
			return model.CheckTaskOutput{}, err
		}
		if t.Status != model.TaskCompleted {
			out := model.CheckTaskOutput{TaskItem: in.TaskItem, Status: t.Status, Error: in.Error}
			switch {
			case t.Status == model.TaskFailed && t.NoAnswerAttempt == in.Attempt && t.LastErrorType == model.ErrNoAnswer:
				// This attempt's completion was refused by an earlier call
				// whose answer was lost: answer as it did.
				out.Error = &model.TaskError{Error: model.ErrNoAnswer, Cause: t.LastErrorCause}
			case out.Error == nil:
				out.Error = &model.TaskError{Error: model.ErrTaskNotCompleted, Cause: fmt.Sprintf(
					"the job of attempt %d ended without an error, but task %s is %s: its worker did not complete it",
					in.Attempt, in.TaskID, t.Status)}
			}
			log.Warn("attempt failed: the task is not completed", "status", t.Status, "job_failed", in.Error != nil, "error", out.Error.Error)
			return out, nil
		}
		if t.Pairs == nil {
			v, err := h.judge(ctx, in, t)
			if err != nil {
				return model.CheckTaskOutput{}, err
			}
			if v.noAnswer != "" {
				out, err := h.refuse(ctx, in, t, v.noAnswer)
				if errors.Is(err, store.ErrNotCompleted) {
					continue // the record changed under us: judge it again
				}
				if err == nil {
					log.Warn("attempt failed: completed without an answer, nothing spent", "error", model.ErrNoAnswer, "cause", v.noAnswer)
				}
				return out, err
			}
			// The score's write elects this call to count the task.
			v.score.Owner = owner
			if err := h.Store.SaveScore(ctx, in.RunID, in.TaskID, v.score); errors.Is(err, store.ErrNotCompleted) {
				continue // changed or scored under us (or our answer was lost): read it again
			} else if err != nil {
				return model.CheckTaskOutput{}, err
			}
			t = scored(t, v.score)
			t.CountedAs, t.CountOwner = model.TaskCompleted, owner
		}
		if t.CountedAs == "" {
			// Scored before counts were kept (a run under way across an upgrade).
			if t.CountOwner, err = h.Store.ClaimCount(ctx, in.RunID, in.TaskID, model.TaskCompleted, owner); err != nil {
				return model.CheckTaskOutput{}, err
			}
		}
		if t.CountOwner == owner {
			if err := h.Store.Count(ctx, store.Outcome{RunID: in.RunID, TaskID: in.TaskID, Status: model.TaskCompleted,
				CostUSD: t.CostUSD, TokensIn: t.TokensInput, TokensOut: t.TokensOutput, UnreadableCost: t.UnreadableCost(), At: h.now()}); err != nil {
				return model.CheckTaskOutput{}, err
			}
		}
		attrs := []any{"status", t.Status, "pairs", *t.Pairs, "pairs_correct", t.PairsCorrect}
		if t.Score != nil {
			attrs = append(attrs, "score", *t.Score)
		}
		if t.ScoreError != "" {
			attrs = append(attrs, "score_error", t.ScoreError)
		}
		if t.JobError != "" {
			// Done and paid for: a job that failed after the write is not retried.
			attrs = append(attrs, "job_failed_after_completion", t.JobError)
		}
		if t.Unanswered() {
			attrs = append(attrs, "unanswered", true)
		}
		log.Info("task completed and scored", attrs...)
		return model.CheckTaskOutput{TaskItem: in.TaskItem, Status: model.TaskCompleted, Score: t.Score}, nil
	}
	return model.CheckTaskOutput{}, fmt.Errorf("task %s of run %s: its status kept changing while it was scored", in.TaskID, in.RunID)
}

func (h *Handler) now() string { return model.FormatTime(h.Now()) }

// refuse moves a completion without an answer back to FAILED and undoes
// what its worker added to the run's counters.
func (h *Handler) refuse(ctx context.Context, in model.CheckTaskInput, t store.Task, cause string) (model.CheckTaskOutput, error) {
	at := h.now()
	if err := h.Store.RevertNoAnswer(ctx, store.NoAnswer{RunID: in.RunID, TaskID: in.TaskID, Attempt: in.Attempt,
		Cause: cause, SeenUpdatedAt: t.UpdatedAt, At: at}); err != nil {
		return model.CheckTaskOutput{}, err
	}
	if err := h.Store.RefreshCounters(ctx, in.RunID, at); err != nil {
		return model.CheckTaskOutput{}, err
	}
	return model.CheckTaskOutput{TaskItem: in.TaskItem, Status: model.TaskFailed,
		Error: &model.TaskError{Error: model.ErrNoAnswer, Cause: cause}}, nil
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

// scored is t with the score just saved.
func scored(t store.Task, sc store.Score) store.Task {
	t.Pairs, t.PairsCorrect, t.Score, t.ScoreError = &sc.Pairs, sc.PairsCorrect, sc.Score, sc.Error
	t.AnsweredAttempts, t.Marks, t.DataSHA256, t.JobError = &sc.Answered, sc.Marks, sc.DataSHA256, sc.JobError
	return t
}

// verdict is what check-task makes of a completed task: its score, or why
// its completion is refused (noAnswer).
type verdict struct {
	score    store.Score
	noAnswer string
}

// judge scores a completed task. What is missing or unreadable (the task
// data, the submission) scores 0 with the reason recorded: the task is done,
// its answer just cannot be counted. A submission with no answer at all, on
// a record with no spend, is no result (noAnswer). Only service faults are
// errors.
func (h *Handler) judge(ctx context.Context, in model.CheckTaskInput, t store.Task) (verdict, error) {
	var v verdict
	if model.IsJobFailure(in.Error) {
		v.score.JobError = jobError(in.Error)
	}
	task, digest, unusable, err := h.taskData(ctx, in)
	if err != nil {
		return v, err
	}
	v.score.DataSHA256 = digest
	subKey := model.ResolveResultKey(in.RunID, t.ResultS3Key)
	if subKey == "" {
		subKey = model.SubmissionKey(in.RunID, in.TaskID)
	}
	r, subNote, err := h.score(ctx, task, subKey)
	if err != nil {
		return v, err
	}
	if r.Answered == 0 && !t.Spent() {
		why := "the submission holds no answer"
		if subNote != "" {
			why = subNote
		}
		v.noAnswer = fmt.Sprintf("task %s was marked COMPLETED with no answer and no tokens or cost recorded: its model was not reached (%s)", in.TaskID, why)
		if t.WorkerError != "" {
			v.noAnswer += model.WorkerSaid + t.WorkerError
		}
		return v, nil
	}
	notes := r.Notes
	if subNote != "" {
		notes = append([]string{subNote}, notes...)
	}
	if unusable != "" {
		// Unscorable data: the answers cannot be held against anything.
		zero := 0.0
		v.score.Score, v.score.Answered = &zero, r.Answered
		v.score.Error = note([]string{unusable})
		return v, nil
	}
	v.score.Pairs, v.score.PairsCorrect, v.score.Score = r.Pairs, r.PairsCorrect, r.Score
	v.score.Answered, v.score.Marks, v.score.Error = r.Answered, r.Marks, note(notes)
	return v, nil
}

// taskData reads and checks the task's data: the task, the SHA-256 of the
// file as read, or why it cannot be scored against (unusable).
func (h *Handler) taskData(ctx context.Context, in model.CheckTaskInput) (task arcdata.Task, digest, unusable string, err error) {
	key := model.TaskDataKey(in.DataSource, in.TaskID)
	body, why, err := h.open(ctx, key)
	if err != nil || why != "" {
		return task, "", prefixed("task data "+key, why), err
	}
	defer body.Close()
	raw, err := io.ReadAll(io.LimitReader(body, MaxObjectBytes+1))
	if err != nil {
		return task, "", "", fmt.Errorf("read s3://%s/%s: %w", h.Bucket, key, err)
	}
	if len(raw) > MaxObjectBytes {
		return task, "", fmt.Sprintf("task data %s is over %d bytes", key, MaxObjectBytes), nil
	}
	sum := sha256.Sum256(raw)
	digest = hex.EncodeToString(sum[:])
	if err := json.Unmarshal(raw, &task); err != nil {
		return arcdata.Task{}, digest, "task data " + key + " is not an ARC task: " + err.Error(), nil
	}
	if err := task.Validate(); err != nil {
		return arcdata.Task{}, digest, "task data " + key + ": " + err.Error(), nil
	}
	return task, digest, "", nil
}

// score reads the submission at key as a stream and scores it against task
// (with no test pairs when its data is unusable: the answers are still
// counted). note says why the submission could not be read.
func (h *Handler) score(ctx context.Context, task arcdata.Task, key string) (scoring.Result, string, error) {
	body, why, err := h.open(ctx, key)
	if err != nil {
		return scoring.Result{}, "", err
	}
	if why != "" {
		r, _ := scoring.Score(task, strings.NewReader("[]"))
		return r, prefixed("submission "+key, why), nil
	}
	defer body.Close()
	lr := &limitReader{r: body, left: MaxObjectBytes}
	r, err := scoring.Score(task, lr)
	switch {
	case lr.over:
		r, _ = scoring.Score(task, strings.NewReader("[]"))
		return r, fmt.Sprintf("submission %s is over %d bytes: not read", key, MaxObjectBytes), nil
	case lr.err != nil:
		return scoring.Result{}, "", fmt.Errorf("read s3://%s/%s: %w", h.Bucket, key, lr.err)
	case err != nil:
		return r, fmt.Sprintf("submission %s: %v", key, err), nil
	}
	return r, "", nil
}

// open opens an object, or says why it cannot be read (no such object, or
// access denied: without s3:ListBucket, S3 answers a missing key with 403,
// and a task is never failed for want of one object); err is a service fault.
func (h *Handler) open(ctx context.Context, key string) (body io.ReadCloser, unusable string, err error) {
	obj, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(key)})
	if why, missing := clients.NoObject(err); missing {
		return nil, why, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read s3://%s/%s: %w", h.Bucket, key, err)
	}
	return obj.Body, "", nil
}

// limitReader reads at most left bytes of r, remembering whether r held
// more (over) and r's own failure (err), which the JSON decoder would
// otherwise report as a malformed document.
type limitReader struct {
	r    io.Reader
	left int64
	over bool
	err  error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			l.over = true
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err != nil && err != io.EOF {
		l.err = err
	}
	return n, err
}

// jobError is a failed job's error as a person reads it: Batch's status
// reason and the container's exit code when the cause is a job description.
func jobError(e *model.TaskError) string {
	reason, code := model.JobFailure(e.Cause)
	msg := e.Error
	if reason != "" {
		msg += ": " + reason
	}
	if code != nil {
		msg += fmt.Sprintf(" (exit code %d)", *code)
	}
	return msg
}

func prefixed(what, why string) string {
	if why == "" {
		return ""
	}
	return what + " " + why
}

// note joins notes for score_error, cut to fit a task record comfortably.
func note(notes []string) string {
	return model.Truncate(strings.Join(notes, "; "), maxNoteLength, "... (truncated)")
}

// recordCompute records what the attempt's job ran, from its description: a
// succeeded job's (in.Job) or a failed one's (the Cause of its error). A job
// that never started (terminated while queued) ran nothing; an input with no
// job (a repeated check, a failed submit) has nothing to record.
func (h *Handler) recordCompute(ctx context.Context, log *slog.Logger, in model.CheckTaskInput, owner string) error {
	desc := []byte(in.Job)
	if len(desc) == 0 && in.Error != nil && in.Error.Error == model.ErrJobFailed {
		desc = []byte(in.Error.Cause)
	}
	usage, ok := model.JobUsageOf(desc)
	if !ok || len(usage.Runs) == 0 {
		return nil
	}
	runs := make([]fargate.Run, len(usage.Runs))
	var seconds int64
	for i, r := range usage.Runs {
		runs[i] = fargate.Run{Size: fargate.Size{VCPU: usage.VCPU, MemoryMiB: usage.MemoryMiB}, Arch: usage.Arch, Millis: r.Millis()}
		seconds += fargate.BilledSeconds(r.Millis())
	}
	cost, err := fargate.Cost(h.Region, runs)
	if err != nil {
		// Kept as seconds, counted as unpriced: a cost is never guessed.
		log.Warn("the job's compute cannot be priced", "error", err)
		cost = ""
	}
	owned, err := h.Store.RecordCompute(ctx, store.ComputeUse{RunID: in.RunID, TaskID: in.TaskID, Attempt: in.Attempt,
		CostUSD: cost, Seconds: seconds, Owner: owner, At: h.now()})
	if err != nil || !owned || h.Metrics == nil {
		return err
	}
	// Once per job, by the call that recorded it. A metric is not worth
	// failing the attempt's check for: a lost datum is logged.
	status := metrics.JobSucceeded
	if in.Error != nil {
		status = metrics.JobFailed
	}
	if err := h.Metrics.Put(ctx, metrics.JobEndedDatum(status, h.Now())); err != nil {
		log.Warn("publish JobEnded", "error", err)
	}
	return nil
}
