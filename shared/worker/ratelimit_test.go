package worker_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"arcbench/shared/arcdata"
	"arcbench/shared/worker"
)

// Workers of one provider share its bucket: concurrent workers each take one
// token per test pair, none lost to a race (the clock stands still, so
// nothing refills), and whoever comes first creates the item.
func TestRateLimitSharedBucket(t *testing.T) {
	w := setup(t)
	ids := arcdata.IDs(5, 3)
	runID := w.newRun(t, ids...)
	t0 := time.Date(2026, 12, 2, 0, 48, 51, 674977000, time.UTC)
	pairs := 0
	var wg sync.WaitGroup
	for _, id := range ids {
		pairs += len(arcdata.Generate(id, 1).Test)
		wk := newWorker(t, runID, id)
		wk.Now = func() time.Time { return t0 }
		wk.Sleep = func(context.Context, time.Duration) error {
			t.Error("waited, with tokens to spare")
			return errors.New("no waiting")
		}
		wg.Go(func() {
			if res, err := wk.Handle(context.Background()); err != nil || !res.Claimed {
				t.Errorf("%s: claimed %v, %v", id, res.Claimed, err)
			}
		})
	}
	wg.Wait()
	tokens, ok := w.bucket(t)
	if !ok || tokens != float64(worker.RateLimitCapacity-pairs) {
		t.Errorf("bucket has %v tokens (found %v), want %d - %d pairs", tokens, ok, worker.RateLimitCapacity, pairs)
	}
}

// An empty bucket makes the worker wait for it to refill, one token per call.
func TestRateLimitWaitsWhenEmpty(t *testing.T) {
	w := setup(t)
	id := "ba5e0001"
	runID := w.newRun(t, id)
	pairs := len(arcdata.Generate(id, 1).Test)
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	w.putBucket(t, "0.5", now)
	var slept time.Duration
	wk := newWorker(t, runID, id)
	wk.Now = func() time.Time { return now }
	wk.Sleep = func(_ context.Context, d time.Duration) error {
		slept += d
		now = now.Add(d)
		return nil
	}
	if _, err := wk.Handle(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Half a token short for the first call, a whole one for each other.
	want := time.Duration((float64(pairs) - 0.5) / worker.RateLimitPerSecond * float64(time.Second))
	if slept < want-time.Millisecond || slept > want+time.Duration(pairs)*2*time.Millisecond {
		t.Errorf("waited %v for %d calls, want about %v", slept, pairs, want)
	}
	if tokens, _ := w.bucket(t); tokens < 0 || tokens > 0.1 || math.IsNaN(tokens) {
		t.Errorf("bucket has %v tokens, want about 0", tokens)
	}
}
