// Package bench measures the handlers against dynalite, directly and behind a
// proxy that adds 8 ms to every request (the round trip to real DynamoDB), in
// the set-up the originals were measured in (BENCHMARKS.md), and prints each figure beside the
// original Python handlers' (`make bench`).
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"golang.org/x/sync/errgroup"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/model"
)

var (
	binary  string // arcbench
	peakRSS string // bench/peakrss
)

func TestMain(m *testing.M) {
	// The handlers' logs would drown the figures.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	dir, err := os.MkdirTemp("", "arcbench-bench")
	if err != nil {
		panic(err)
	}
	if binary, err = testenv.BuildCLI(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	peakRSS = filepath.Join(dir, "peakrss")
	if out, err := exec.Command("go", "build", "-o", peakRSS, "./peakrss").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build peakrss: %v\n%s", err, out)
		os.Exit(1)
	}
	code := testenv.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// The original handlers' medians (measured as BENCHMARKS.md says), handler time in seconds.
var baseline = map[string]float64{
	"initialize/tasks=400/delay=0ms":   0.13,
	"initialize/tasks=400/delay=8ms":   0.30,
	"initialize/tasks=10000/delay=0ms": 1.85,
	"initialize/tasks=10000/delay=8ms": 5.48,
	"aggregate/tasks=400/delay=0ms":    0.16,
	"aggregate/tasks=400/delay=8ms":    0.18,
	"aggregate/tasks=10000/delay=0ms":  0.75,
	"aggregate/tasks=10000/delay=8ms":  0.83,
}

var (
	sizes  = []int{400, 10000}
	delays = []time.Duration{0, 8 * time.Millisecond}
)

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%08x", i*2654435761%(1<<32)) // ARC-style 8-hex ids
	}
	return out
}

func reportBaseline(b *testing.B, key string, elapsed time.Duration) {
	if base, ok := baseline[key]; ok {
		b.ReportMetric(base/(elapsed.Seconds()/float64(b.N)), "x-faster-than-original")
	}
}

func BenchmarkInitialize(b *testing.B) {
	for _, n := range sizes {
		for _, d := range delays {
			name := fmt.Sprintf("tasks=%d/delay=%dms", n, d.Milliseconds())
			b.Run(name, func(b *testing.B) {
				env := testenv.Setup(b, nil)
				env.Proxy.Delay = d
				h := handlers.NewInitialize(env.Deps)
				in := model.InitializeInput{ConfigName: "bench", TaskIDs: ids(n)}
				env.Proxy.ResetCounts()
				b.ResetTimer()
				start := time.Now()
				for range b.N {
					if _, err := h.Handle(context.Background(), in); err != nil {
						b.Fatal(err)
					}
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(env.Proxy.Total())/float64(b.N), "requests/op")
				reportBaseline(b, "initialize/"+name, elapsed)
			})
		}
	}
}

// seed writes a run of n finished tasks as workers leave them: most
// completed with a cost, a result key and a verdict, some failed.
func seed(b *testing.B, env *testenv.Env, n int) string {
	b.Helper()
	out, err := handlers.NewInitialize(env.Deps).Handle(context.Background(), model.InitializeInput{ConfigName: "bench", TaskIDs: ids(n)})
	if err != nil {
		b.Fatal(err)
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	putTasks(b, env, out.RunID, ids(n), func(i int, item map[string]types.AttributeValue) {
		if i%10 == 9 {
			item["status"] = s(model.TaskFailedPermanent)
			item["retry_count"] = &types.AttributeValueMemberN{Value: "3"}
			item["last_error_type"] = s("States.TaskFailed")
		} else {
			item["status"] = s(model.TaskCompleted)
			item["cost_usd"] = &types.AttributeValueMemberN{Value: fmt.Sprintf("0.%04d", 1+i%997)}
			item["is_correct"] = &types.AttributeValueMemberBOOL{Value: i%3 == 0}
			item["result_s3_key"] = s(model.SubmissionKey(out.RunID, item["task_id"].(*types.AttributeValueMemberS).Value))
			item["tokens_input"] = &types.AttributeValueMemberN{Value: "12000"}
			item["tokens_output"] = &types.AttributeValueMemberN{Value: "800"}
		}
	})
	return out.RunID
}

// putTasks writes the task records of ids in run runID, each as set sets
// its fields beside the key, times and retry_count 0, 25 to a batch.
func putTasks(b *testing.B, env *testenv.Env, runID string, taskIDs []string, set func(i int, item map[string]types.AttributeValue)) {
	b.Helper()
	var (
		reqs = make([]types.WriteRequest, 0, 25)
		g    errgroup.Group
	)
	g.SetLimit(8)
	flush := func() {
		if len(reqs) == 0 {
			return
		}
		pending := map[string][]types.WriteRequest{env.Tables.Tasks: reqs}
		g.Go(func() error {
			for len(pending) > 0 {
				res, err := env.DB.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: pending})
				if err != nil {
					return err
				}
				pending = res.UnprocessedItems
			}
			return nil
		})
		reqs = make([]types.WriteRequest, 0, 25)
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	for i, id := range taskIDs {
		item := map[string]types.AttributeValue{
			"run_id": s(runID), "task_id": s(id), "created_at": s(model.FormatTime(time.Now())),
			"updated_at": s(model.FormatTime(time.Now())), "retry_count": &types.AttributeValueMemberN{Value: "0"},
		}
		set(i, item)
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
		if len(reqs) == 25 {
			flush()
		}
	}
	flush()
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// stoppedRun writes a run of n tasks that an execution stopped half-way,
// as a resume finds it: half COMPLETED (scored, counted), a tenth of the
// rest FAILED_PERMANENT, the others NOT_RUN; the run STOPPED, its end told.
func stoppedRun(b *testing.B, env *testenv.Env, n int, execution string) string {
	b.Helper()
	out, err := handlers.NewInitialize(env.Deps).Handle(context.Background(), model.InitializeInput{ConfigName: "bench", TaskIDs: ids(n),
		ExecutionID: execution, ExecutionStartTime: model.FormatTime(time.Now())})
	if err != nil {
		b.Fatal(err)
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	putTasks(b, env, out.RunID, ids(n), func(i int, item map[string]types.AttributeValue) {
		switch {
		case i%2 == 0:
			item["status"] = s(model.TaskCompleted)
			item["counted_as"] = s(model.TaskCompleted)
			item["pairs"] = &types.AttributeValueMemberN{Value: "1"}
			item["score"] = &types.AttributeValueMemberN{Value: "1"}
			item["cost_usd"] = &types.AttributeValueMemberN{Value: "0.0100"}
		case i%10 == 1:
			item["status"] = s(model.TaskFailedPermanent)
			item["counted_as"] = s(model.TaskFailedPermanent)
			item["retry_count"] = &types.AttributeValueMemberN{Value: "3"}
		default:
			item["status"] = s(model.TaskNotRun)
		}
	})
	if _, err := env.DB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: &env.Tables.Runs, Key: map[string]types.AttributeValue{"run_id": s(out.RunID)},
		UpdateExpression:          aws.String("SET #s = :stopped, stop_reason = :why, notified_at = :now"),
		ExpressionAttributeNames:  map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":stopped": s(model.RunStopped), ":why": s("budget"), ":now": s(model.FormatTime(time.Now()))},
	}); err != nil {
		b.Fatal(err)
	}
	return out.RunID
}

// BenchmarkResume is initialize taking a stopped run over with
// include_failed: it plans from every task record, claims the run, writes
// the plan, releases the unfinished tasks (half the run) and recounts.
func BenchmarkResume(b *testing.B) {
	for _, n := range sizes {
		for _, d := range delays {
			b.Run(fmt.Sprintf("tasks=%d/delay=%dms", n, d.Milliseconds()), func(b *testing.B) {
				env := testenv.Setup(b, nil)
				h := handlers.NewInitialize(env.Deps)
				h.Executions = nil // the run record's status decides: no Step Functions here
				var elapsed time.Duration
				var requests int
				for i := range b.N {
					b.StopTimer()
					env.Proxy.Delay = 0
					runID := stoppedRun(b, env, n, fmt.Sprintf("arn:aws:states:us-east-1:000000000000:execution:arc-benchmark-bench:start-%d", i))
					env.Proxy.Delay = d
					env.Proxy.ResetCounts()
					b.StartTimer()
					start := time.Now()
					out, err := h.Handle(context.Background(), model.InitializeInput{ResumeRunID: runID, IncludeFailed: true,
						ExecutionID:        fmt.Sprintf("arn:aws:states:us-east-1:000000000000:execution:arc-benchmark-bench:resume-%d", i),
						ExecutionStartTime: model.FormatTime(time.Now())})
					elapsed += time.Since(start)
					requests += env.Proxy.Total()
					if err != nil || out.RunID != runID {
						b.Fatalf("resume of %s: %v (%+v)", runID, err, out)
					}
				}
				b.StopTimer()
				b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/resume")
				b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
			})
		}
	}
}

func BenchmarkAggregate(b *testing.B) {
	for _, n := range sizes {
		for _, d := range delays {
			name := fmt.Sprintf("tasks=%d/delay=%dms", n, d.Milliseconds())
			b.Run(name, func(b *testing.B) {
				env := testenv.Setup(b, nil)
				runID := seed(b, env, n)
				env.Proxy.Delay = d
				h := handlers.NewAggregate(env.Deps)
				env.Proxy.ResetCounts()
				b.ResetTimer()
				start := time.Now()
				for range b.N {
					out, err := h.Handle(context.Background(), model.AggregateInput{RunID: runID})
					if err != nil {
						b.Fatal(err)
					}
					if out.TotalTasks != n {
						b.Fatalf("aggregated %d tasks, want %d", out.TotalTasks, n)
					}
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(env.Proxy.Total())/float64(b.N), "requests/op")
				reportBaseline(b, "aggregate/"+name, elapsed)
			})
		}
	}
}

// invoke runs `arcbench invoke NAME` as a fresh process and returns its wall
// time (the process alone) and its peak RSS in MB (measured through peakrss,
// a small process in between, with the time that adds not counted).
func invoke(b *testing.B, name string, event []byte) (time.Duration, float64) {
	b.Helper()
	run := func(args ...string) time.Duration {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = lambdaLikeEnv()
		cmd.Stdin = bytes.NewReader(event)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("arcbench invoke %s: %v\n%s%s", name, err, out.String(), errOut.String())
		}
		return time.Since(start)
	}
	elapsed := run(binary, "invoke", name)
	out := filepath.Join(b.TempDir(), "rss")
	run(peakRSS, out, binary, "invoke", name)
	kib, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	var rss float64
	fmt.Sscan(string(kib), &rss)
	return elapsed, rss / 1024
}

// lambdaLikeEnv is the environment less AWS_CA_BUNDLE: Lambda sets none, and
// where a machine sets one (this workplace does, for its proxy) the SDK parses
// the whole bundle at start-up, about 3 ms, even for plain-http endpoints.
func lambdaLikeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_CA_BUNDLE=") {
			env = append(env, kv)
		}
	}
	return env
}

// BenchmarkColdStart is a fresh process per call, as the original's figures are:
// start-up, configuration, clients and the call.
func BenchmarkColdStart(b *testing.B) {
	for _, d := range delays {
		b.Run(fmt.Sprintf("initialize-1-task/delay=%dms", d.Milliseconds()), func(b *testing.B) {
			env := testenv.Setup(b, nil)
			env.Proxy.Delay = d
			event, _ := json.Marshal(model.InitializeInput{ConfigName: "cold", TaskIDs: []string{"t1"}})
			b.ResetTimer()
			var total time.Duration
			for range b.N {
				elapsed, _ := invoke(b, model.HandlerInitialize, event)
				total += elapsed
			}
			base := map[time.Duration]float64{0: 0.31, 8 * time.Millisecond: 0.39}[d]
			b.ReportMetric(base/(total.Seconds()/float64(b.N)), "x-faster-than-original")
		})
	}
}

// BenchmarkAggregateProcess measures aggregate's whole process at 10,000
// tasks: wall time and peak memory (median over runs) against the original's
// 1.04 s and 106 MB.
func BenchmarkAggregateProcess(b *testing.B) {
	env := testenv.Setup(b, nil)
	runID := seed(b, env, 10000)
	event, _ := json.Marshal(model.AggregateInput{RunID: runID})
	seconds, rss := processes(b, model.HandlerAggregate, event)
	b.ReportMetric(rss, "peak-RSS-MB")
	b.ReportMetric(106/rss, "x-less-memory-than-original")
	b.ReportMetric(1.04/seconds, "x-faster-than-original")
}

// processes runs b.N fresh `arcbench invoke` processes and returns their mean
// wall time in seconds and the median of their peak RSS in MB (the original's
// figures are medians too).
func processes(b *testing.B, name string, event []byte) (seconds, rss float64) {
	b.ResetTimer()
	var total time.Duration
	peaks := make([]float64, 0, b.N)
	for range b.N {
		elapsed, peak := invoke(b, name, event)
		total += elapsed
		peaks = append(peaks, peak)
	}
	slices.Sort(peaks)
	return total.Seconds() / float64(b.N), peaks[len(peaks)/2]
}

// BenchmarkAggregateScale is how aggregate's whole process grows with the
// run: wall time and peak memory at 1,000, 10,000 and 100,000 task records,
// against a 1,024 MB Lambda and its 15-minute limit.
func BenchmarkAggregateScale(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) {
			env := testenv.Setup(b, nil)
			runID := seed(b, env, n)
			event, _ := json.Marshal(model.AggregateInput{RunID: runID})
			seconds, rss := processes(b, model.HandlerAggregate, event)
			b.ReportMetric(rss, "peak-RSS-MB")
			b.ReportMetric(1024/rss, "x-within-1024MB")
			b.ReportMetric(900/seconds, "x-within-15min")
		})
	}
}
