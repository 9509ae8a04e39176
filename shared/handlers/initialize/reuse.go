package initialize

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"arcbench/shared/clients"
	"arcbench/shared/model"
	"arcbench/shared/money"
	"arcbench/shared/store"
)

// ReuseStore is what taking an earlier run's results needs of the run store.
type ReuseStore interface {
	EachTask(ctx context.Context, runID string, fn func(store.Task) error) error
	PutReusedTasks(ctx context.Context, runID string, reused []store.Reuse, now string) error
}

var _ ReuseStore = (*store.Store)(nil)

// reusable is what a new run takes from in.ReuseRunID: for each of its
// tasks that run COMPLETED (and check-task scored) under the same config
// and data source, whose task data is today the very file it was scored
// against (its SHA-256), that result. A task whose data changed, is
// missing, or was not completed there is run. The source must exist and
// evaluate the same configuration.
func (h *Handler) reusable(ctx context.Context, in model.InitializeInput) ([]store.Reuse, error) {
	rs, ok := h.Store.(ReuseStore)
	if !ok || h.Bucket == "" {
		return nil, errors.New("reuse needs the run store and the bucket (S3_BUCKET)")
	}
	if err := model.ValidateName("reuse_run_id", in.ReuseRunID); err != nil {
		return nil, err
	}
	source, err := h.Store.GetRun(ctx, in.ReuseRunID)
	var nf *model.RunNotFoundError
	if errors.As(err, &nf) {
		return nil, &model.InvalidInputError{Field: "reuse_run_id", Reason: fmt.Sprintf("run %s not found", in.ReuseRunID)}
	}
	if err != nil {
		return nil, err
	}
	if source.ConfigName != in.ConfigName || source.DataSource != in.DataSource {
		return nil, &model.InvalidInputError{Field: "reuse_run_id", Reason: fmt.Sprintf("run %s evaluated %s on %s, not %s on %s: only the same configuration's results are reused",
			source.RunID, source.ConfigName, source.DataSource, in.ConfigName, in.DataSource)}
	}
	wanted := make(map[string]bool, len(in.TaskIDs))
	for _, id := range in.TaskIDs {
		wanted[id] = true
	}
	var candidates []store.Task
	err = rs.EachTask(ctx, source.RunID, func(t store.Task) error {
		// Scored by check-task (pairs set) against data whose digest it kept.
		if wanted[t.TaskID] && t.Status == model.TaskCompleted && t.Pairs != nil && t.DataSHA256 != "" {
			candidates = append(candidates, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var (
		mu     sync.Mutex
		reused []store.Reuse
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, t := range candidates {
		g.Go(func() error {
			digest, err := h.digest(gctx, model.TaskDataKey(in.DataSource, t.TaskID))
			if err != nil || digest != t.DataSHA256 {
				return err // changed or missing data: the task is run
			}
			mu.Lock()
			reused = append(reused, store.Reuse{Source: t, SourceRun: source.RunID})
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return reused, nil
}

// digest is the SHA-256 of an object as check-task computes it ("" when
// there is no such object).
func (h *Handler) digest(ctx context.Context, key string) (string, error) {
	obj, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(key)})
	if _, missing := clients.NoObject(err); missing {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read s3://%s/%s: %w", h.Bucket, key, err)
	}
	defer obj.Body.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, obj.Body); err != nil {
		return "", fmt.Errorf("read s3://%s/%s: %w", h.Bucket, key, err)
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// reusedCost is what the reused results cost where they were paid.
func reusedCost(reused []store.Reuse) string {
	var sum money.Sum
	for _, r := range reused {
		_ = sum.Add(r.Cost()) // DynamoDB numbers, or "0"
	}
	return sum.String()
}
