package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"arcbench/internal/emulators"
	"arcbench/internal/localrun"
	"arcbench/shared/arcdata"
)

// synthesized is the app synthesized for the stage "local", once per benchmark.
func synthesized(b *testing.B) string {
	root, err := emulators.Root()
	if err != nil {
		b.Fatal(err)
	}
	assembly := filepath.Join(b.TempDir(), "cdk.out")
	if err := localrun.Synthesize(context.Background(), root, "local", assembly, os.Stderr); err != nil {
		b.Fatal(err)
	}
	return assembly
}

// BenchmarkLocalRunIAM is what enforcing the template's IAM costs a local
// run: 1,000 tasks with the check on, then off, in pairs so that the
// machine's drift falls on both (target: under 10% slower).
func BenchmarkLocalRunIAM(b *testing.B) {
	assembly := synthesized(b)
	run := func(iam bool) *localrun.Result {
		res, err := localrun.Run(context.Background(), localrun.Options{
			Assembly: assembly, TaskIDs: arcdata.IDs(1000, 1), ConfigName: "bench", DataSource: "evaluation",
			Seed: 1, Self: binary, Dir: b.TempDir(), Parallel: 16, NoIAM: !iam,
		})
		if err != nil {
			b.Fatal(err)
		}
		if res.Status != "SUCCEEDED" || (res.IAM != nil && len(res.IAM.Denials) > 0) {
			b.Fatalf("execution %s (%s), IAM %+v", res.Status, res.Cause, res.IAM)
		}
		return res
	}
	var on, off float64
	var authorized int
	for range b.N {
		with, without := run(true), run(false)
		on, off = on+with.Wall.Seconds(), off+without.Wall.Seconds()
		authorized = with.IAM.Authorized
	}
	n := float64(b.N)
	b.ReportMetric(on/n, "wall-s-iam")
	b.ReportMetric(off/n, "wall-s-no-iam")
	b.ReportMetric((on/off-1)*100, "iam-overhead-%")
	b.ReportMetric(float64(authorized), "requests-authorized")
}

// BenchmarkLocalRun is a whole local run with the built-in worker: wall time
// and the quota figures (largest payload, most history events in any one
// execution), then its report page (measureReport), at 120 tasks (the size
// of ARC-AGI-2's evaluation set) and 10,000.
func BenchmarkLocalRun(b *testing.B) {
	assembly := synthesized(b)
	for _, n := range []int{120, 10000} {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) {
			for range b.N {
				res, err := localrun.Run(context.Background(), localrun.Options{
					Assembly: assembly, TaskIDs: arcdata.IDs(n, 1), ConfigName: "bench", DataSource: "evaluation",
					Seed: 1, Self: binary, Dir: b.TempDir(), Parallel: 16, Keep: true,
				})
				if err != nil {
					b.Fatal(err)
				}
				defer res.Session.Close()
				if res.Status != "SUCCEEDED" || len(res.Violations) > 0 {
					b.Fatalf("execution %s (%s), violations %v", res.Status, res.Cause, res.Violations)
				}
				history, payload := res.Figures.Worst()
				b.ReportMetric(res.Wall.Seconds(), "wall-s")
				b.ReportMetric(float64(max(res.Figures.Root.LargestPayload, payload.LargestPayload)), "largest-payload-B")
				b.ReportMetric(float64(max(res.Figures.Root.HistoryEvents, history.HistoryEvents)), "most-history-events")
				b.ReportMetric(float64(res.Figures.Root.HistoryEvents), "run-execution-events")
				b.ReportMetric(float64(len(res.Figures.Children)), "child-executions")
				measureReport(b, res, n)
			}
		})
	}
}
