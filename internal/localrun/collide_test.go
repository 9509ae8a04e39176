package localrun_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"arcbench/internal/localrun"
	"arcbench/shared/arcdata"
)

// Two local runs started at once from one checkout, into one folder, both
// succeed, each in a folder of its own: the same millisecond (made certain
// here) gives the second a suffix, not the first's folder and bucket.
func TestRunsStartedAtOnceDoNotCollide(t *testing.T) {
	at := time.Date(2026, 12, 5, 21, 28, 43, 860_000_000, time.UTC)
	defer localrun.StopClock(at)()
	dir := t.TempDir()
	var (
		wg   sync.WaitGroup
		res  [2]*localrun.Result
		errs [2]error
	)
	for i := range res {
		wg.Go(func() {
			res[i], errs[i] = localrun.Run(context.Background(), localrun.Options{Assembly: assembly, Self: binary, Dir: dir,
				TaskIDs: arcdata.IDs(2, int64(i+1)), Seed: int64(i + 1), ConfigName: "collide"})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		if res[i].Status != "SUCCEEDED" {
			t.Errorf("run %d: execution %s: %s %s", i+1, res[i].Status, res[i].Error, res[i].Cause)
		}
	}
	names := []string{filepath.Base(res[0].Dir), filepath.Base(res[1].Dir)}
	if names[0] > names[1] {
		names[0], names[1] = names[1], names[0]
	}
	if filepath.Dir(res[0].Dir) != dir || filepath.Dir(res[1].Dir) != dir || names[0] != "20261205-212843.860" || names[1] != "20261205-212843.860-2" {
		t.Errorf("the runs' folders %s and %s; want 20261205-212843.860 and 20261205-212843.860-2 in %s", res[0].Dir, res[1].Dir, dir)
	}
	for i, r := range res {
		if !strings.HasPrefix(r.AggregatedPath, r.Dir+string(filepath.Separator)) {
			t.Errorf("run %d: aggregated.json %q is not in its folder %s", i+1, r.AggregatedPath, r.Dir)
		}
	}
}
