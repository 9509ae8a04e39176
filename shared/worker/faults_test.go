package worker_test

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"arcbench/internal/testenv"
	"arcbench/shared/arcdata"
	"arcbench/shared/model"
	"arcbench/shared/worker"
)

func TestParseFaults(t *testing.T) {
	fs, err := worker.ParseFaults(" a:1=fail-after-claim, *:*=die-after-claim,b:*=exit-0-without-work,,c:12=claim-then-exit-0,x:y:2=complete-then-die,")
	want := worker.Faults{
		{TaskID: "a", Attempt: 1, Mode: worker.FailAfterClaim},
		{TaskID: "*", Attempt: 0, Mode: worker.DieAfterClaim},
		{TaskID: "b", Attempt: 0, Mode: worker.Exit0WithoutWork},
		{TaskID: "c", Attempt: 12, Mode: worker.ClaimThenExit0},
		{TaskID: "x:y", Attempt: 2, Mode: worker.CompleteThenDie},
	}
	if err != nil || !reflect.DeepEqual(fs, want) {
		t.Fatalf("ParseFaults = %+v, %v", fs, err)
	}
	s := fs.String()
	if s != "a:1=fail-after-claim,*:*=die-after-claim,b:*=exit-0-without-work,c:12=claim-then-exit-0,x:y:2=complete-then-die" {
		t.Errorf("String() = %q", s)
	}
	if again, err := worker.ParseFaults(s); err != nil || !reflect.DeepEqual(again, fs) {
		t.Errorf("String() does not round-trip: %+v, %v", again, err)
	}
	if fs, err := worker.ParseFaults(" "); err != nil || fs != nil || fs.String() != "" {
		t.Errorf("empty: %+v, %v", fs, err)
	}

	for _, bad := range []string{"a1=fail-after-claim", "a:1", ":1=fail-after-claim", "a:0=fail-after-claim",
		"a:-1=fail-after-claim", "a:x=fail-after-claim", "a:1=explode", "a:1="} {
		_, err := worker.ParseFaults("ok:1=die-after-claim," + bad)
		if err == nil {
			t.Errorf("%q: no error", bad)
			continue
		}
		if !strings.Contains(err.Error(), strconv.Quote(bad)) || strings.Contains(err.Error(), `"ok:1`) {
			t.Errorf("%q: error %q does not name the bad entry (alone)", bad, err)
		}
		for _, m := range worker.Modes {
			if !strings.Contains(err.Error(), string(m)) {
				t.Errorf("%q: error %q does not list mode %s", bad, err, m)
			}
		}
	}
}

// pinnedSchedule is FailsAttempt(1, "0a1b2c3d", 0..5, 0.5) as it has always been.
var pinnedSchedule = []bool{true, false, true, false, true, false}

// The first matching entry wins; * matches any task or attempt.
func TestFaultsMatch(t *testing.T) {
	fs, err := worker.ParseFaults("a:1=claim-then-exit-0,*:1=fail-after-claim,a:*=die-after-claim")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		task    string
		attempt int
		want    worker.Mode
	}{{"a", 1, worker.ClaimThenExit0}, {"b", 1, worker.FailAfterClaim}, {"a", 2, worker.DieAfterClaim}, {"b", 2, ""}} {
		if got, ok := fs.Match(c.task, c.attempt); got != c.want || ok != (c.want != "") {
			t.Errorf("Match(%s, %d) = %q, %v; want %q", c.task, c.attempt, got, ok, c.want)
		}
	}
	if _, ok := worker.Faults(nil).Match("a", 1); ok {
		t.Error("no faults matched")
	}
}

// Each mode, on the first attempt of its own task: what it writes, what it
// exits with.
func TestFaultModes(t *testing.T) {
	w := setup(t)
	runID := w.newRun(t, "fail0001", "die00001", "exit0001", "claim001", "compl001")
	t.Setenv(worker.EnvFaults, "fail0001:1=fail-after-claim,die00001:*=die-after-claim,exit0001:1=exit-0-without-work,"+
		"claim001:1=claim-then-exit-0,compl001:1=complete-then-die")
	runBefore := w.Run(t, runID)
	for _, c := range []struct {
		id     string
		mode   worker.Mode
		code   int
		status string
		// submitted: a submission was written; counted: retry_count is 1.
		submitted, counted bool
	}{
		{"fail0001", worker.FailAfterClaim, worker.ExitFailed, model.TaskFailed, false, true},
		{"die00001", worker.DieAfterClaim, worker.ExitKilled, model.TaskInProgress, false, false},
		{"exit0001", worker.Exit0WithoutWork, worker.ExitDone, model.TaskPending, false, false},
		{"claim001", worker.ClaimThenExit0, worker.ExitDone, model.TaskInProgress, false, false},
		{"compl001", worker.CompleteThenDie, worker.ExitKilled, model.TaskCompleted, true, false},
	} {
		before := w.Task(t, runID, c.id)
		w.Proxy.ResetCounts()
		code, stderr := work(t, runID, c.id)
		if code != c.code || !strings.Contains(stderr, `"fault":"`+string(c.mode)+`"`) {
			t.Errorf("%s: exit %d, want %d and the fault logged: %s", c.mode, code, c.code, stderr)
		}
		item := w.Task(t, runID, c.id)
		if s := testenv.S(item, model.AttrStatus); s != c.status {
			t.Errorf("%s: status %s, want %s", c.mode, s, c.status)
		}
		if rc := testenv.N(item, model.AttrRetryCount); (rc == "1") != c.counted {
			t.Errorf("%s: retry_count %s", c.mode, rc)
		}
		_, _, submitted := w.object(t, model.SubmissionKey(runID, c.id))
		if submitted != c.submitted {
			t.Errorf("%s: submission written %v, want %v", c.mode, submitted, c.submitted)
		}
		switch c.mode {
		case worker.Exit0WithoutWork:
			if !reflect.DeepEqual(before, item) {
				t.Errorf("%s: the task changed: %v", c.mode, item)
			}
			// One read to learn the attempt number, and nothing else.
			if g, total := w.Proxy.Requests("GetItem"), w.Proxy.Total(); g != 1 || total != 1 {
				t.Errorf("%s: %d GetItem of %d requests, want 1 of 1", c.mode, g, total)
			}
		case worker.FailAfterClaim:
			if e := testenv.S(item, model.AttrError); !strings.Contains(e, "injected failure") || !strings.Contains(e, string(c.mode)) {
				t.Errorf("%s: error %q", c.mode, e)
			}
		case worker.CompleteThenDie:
			task := arcdata.Generate(c.id, 1)
			predictions, _ := arcdata.Solve(task)
			if testenv.N(item, model.AttrCostUSD) != worker.CostUSD(worker.Usage(task, predictions)) {
				t.Errorf("%s: cost_usd %s", c.mode, testenv.N(item, model.AttrCostUSD))
			}
		}
		if c.mode != worker.Exit0WithoutWork && testenv.S(item, model.AttrWorkerID) != jobID {
			t.Errorf("%s: not claimed: %v", c.mode, item)
		}
	}
	if !reflect.DeepEqual(runBefore, w.Run(t, runID)) {
		t.Errorf("the run record changed: %v", w.Run(t, runID))
	}
}

// ATTEMPT is the task's retry_count + 1 as the worker finds it, before the
// claim (exit-0-without-work) as after it.
func TestFaultAttemptNumbers(t *testing.T) {
	w := setup(t)
	runID := w.newRun(t, "a77e0001")
	t.Setenv(worker.EnvFaults, "a77e0001:2=exit-0-without-work,a77e0001:1=fail-after-claim")
	if code, stderr := work(t, runID, "a77e0001"); code != worker.ExitFailed || !strings.Contains(stderr, `"attempt":1`) {
		t.Fatalf("attempt 1: exit %d, want 1: %s", code, stderr)
	}
	item := w.Task(t, runID, "a77e0001")
	if testenv.S(item, model.AttrStatus) != model.TaskFailed || testenv.N(item, model.AttrRetryCount) != "1" {
		t.Fatalf("after attempt 1: %v", item)
	}
	if code, stderr := work(t, runID, "a77e0001"); code != worker.ExitDone || !strings.Contains(stderr, `"attempt":2`) {
		t.Fatalf("attempt 2: exit %d, want 0: %s", code, stderr)
	}
	if after := w.Task(t, runID, "a77e0001"); !reflect.DeepEqual(item, after) {
		t.Fatalf("exit-0-without-work changed the task: %v", after)
	}

	t.Setenv(worker.EnvFaults, "*:1=claim-then-exit-0,a77e0001:2=die-after-claim")
	if code, stderr := work(t, runID, "a77e0001"); code != worker.ExitKilled || !strings.Contains(stderr, `"attempt":2`) {
		t.Fatalf("attempt 2 again: exit %d, want 137: %s", code, stderr)
	}
	if s := testenv.S(w.Task(t, runID, "a77e0001"), model.AttrStatus); s != model.TaskInProgress {
		t.Errorf("status %s after die-after-claim", s)
	}
}

// The failure schedule is a pure function of seed, task and attempt, and
// fails about the share of attempts the rate asks for.
func TestFailsAttemptSchedule(t *testing.T) {
	ids := arcdata.IDs(100, 9)
	for _, rate := range []float64{0.1, 0.3, 0.5} {
		for _, seed := range []int64{1, 2} {
			fails, n := 0, 0
			for _, id := range ids {
				for attempt := range 4 {
					n++
					f := worker.FailsAttempt(seed, id, attempt, rate)
					if f != worker.FailsAttempt(seed, id, attempt, rate) {
						t.Fatal("not deterministic")
					}
					if f {
						fails++
					}
				}
			}
			if share := float64(fails) / float64(n); share < rate-0.07 || share > rate+0.07 {
				t.Errorf("rate %.1f seed %d: %d of %d attempts fail (%.3f)", rate, seed, fails, n, share)
			}
		}
	}
	differ := 0
	for _, id := range ids {
		if worker.FailsAttempt(1, id, 0, 0.5) != worker.FailsAttempt(2, id, 0, 0.5) {
			differ++
		}
		if worker.FailsAttempt(1, id, 0, 0) || !worker.FailsAttempt(1, id, 0, 1) {
			t.Fatal("rate 0 never fails, rate 1 always does")
		}
		// A lower rate fails a subset of what a higher rate fails.
		if worker.FailsAttempt(3, id, 1, 0.2) && !worker.FailsAttempt(3, id, 1, 0.6) {
			t.Fatal("schedules of one seed are not nested")
		}
	}
	if differ < 20 {
		t.Errorf("seeds 1 and 2 differ on only %d of %d tasks", differ, len(ids))
	}
	// Pinned values: other packages' tests derive runs from this schedule.
	var got []bool
	for attempt := range 6 {
		got = append(got, worker.FailsAttempt(1, "0a1b2c3d", attempt, 0.5))
	}
	if want := pinnedSchedule; !reflect.DeepEqual(got, want) {
		t.Errorf("FailsAttempt(1, 0a1b2c3d, 0..5, 0.5) = %v, want %v", got, want)
	}
}

// An attempt FailsAttempt picks (its attempt argument the retry_count at
// claim time) fails through the worker's own failure path; the next one,
// not picked, completes.
func TestFailRate(t *testing.T) {
	w := setup(t)
	const id, rate = "f00dcafe", 0.5
	seed := int64(1)
	for !worker.FailsAttempt(seed, id, 0, rate) || worker.FailsAttempt(seed, id, 1, rate) {
		seed++
	}
	runID := w.newRun(t, id)
	t.Setenv(worker.EnvFailRate, "0.5")
	t.Setenv(worker.EnvFailSeed, strconv.FormatInt(seed, 10))

	code, stderr := work(t, runID, id)
	item := w.Task(t, runID, id)
	if code != worker.ExitFailed || testenv.S(item, model.AttrStatus) != model.TaskFailed || testenv.N(item, model.AttrRetryCount) != "1" ||
		!strings.Contains(testenv.S(item, model.AttrError), worker.EnvFailRate) {
		t.Fatalf("attempt 1: exit %d, task %v: %s", code, item, stderr)
	}
	if code, stderr := work(t, runID, id); code != worker.ExitDone {
		t.Fatalf("attempt 2: exit %d: %s", code, stderr)
	}
	item = w.Task(t, runID, id)
	if testenv.S(item, model.AttrStatus) != model.TaskCompleted || testenv.N(item, model.AttrRetryCount) != "1" {
		t.Errorf("after attempt 2: %v", item)
	}
	// A fault entry for the attempt overrides the schedule.
	runID = w.newRun(t, id)
	t.Setenv(worker.EnvFailRate, "1")
	if code, _ := work(t, runID, id, worker.EnvFaults, id+":1=claim-then-exit-0"); code != worker.ExitDone ||
		testenv.S(w.Task(t, runID, id), model.AttrStatus) != model.TaskInProgress {
		t.Errorf("with a fault and rate 1: exit %d, task %v", code, w.Task(t, runID, id))
	}
}
