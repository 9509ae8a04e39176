package localrun_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"arcbench/internal/localrun"
	"arcbench/shared/arcdata"
	"arcbench/shared/clients"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// cli runs arcbench against a kept local stage, as a user would.
func cli(t *testing.T, s *localrun.Session, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL="+s.Stack.Endpoint, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID="+localrun.TrustedKey, "AWS_SECRET_ACCESS_KEY=local", "ARCBENCH_STAGE=local",
		"AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// cliStart starts a run of ids on a kept local stage through the CLI, as a
// user would (arcbench start --tasks FILE), and returns what it printed.
func cliStart(t *testing.T, s *localrun.Session, dir, config string, ids []string) (started struct {
	RunID string `json:"run_id"`
}) {
	t.Helper()
	tasks := filepath.Join(dir, "ids.txt")
	if err := os.WriteFile(tasks, []byte(strings.Join(ids, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := cli(t, s, "start", "--config", config, "--tasks", tasks, "--json")
	if code != 0 {
		t.Fatalf("start: %s", stderr)
	}
	if err := json.Unmarshal([]byte(out), &started); err != nil {
		t.Fatalf("start printed %q", out)
	}
	return started
}

func pidsIn(path string) []int {
	raw, _ := os.ReadFile(path)
	var pids []int
	for _, f := range strings.Fields(string(raw)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func completedTasks(t *testing.T, st *store.Store, runID string) map[string]bool {
	t.Helper()
	done := map[string]bool{}
	if err := st.EachTask(context.Background(), runID, func(task store.Task) error {
		if task.Status == model.TaskCompleted {
			done[task.TaskID] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return done
}

// `arcbench stop` half-way through a run: the execution and its children
// stop, every job is terminated (no worker process is left), a task
// completed after the stop is one whose worker was stopped mid-task and
// saved what it had (as the benchmark's does on TerminateJob's SIGTERM), and
// the run ends STOPPED with the reason. Without batch:TerminateJob the jobs
// run on, as on AWS. The stopped run then reads as such everywhere: its
// tasks that never ran are "not run", results need no watch, and the score
// is the same in watch, results and runs.
func TestStoppingARunStopsItsJobs(t *testing.T) {
	for _, c := range []struct {
		name        string
		assembly    func(t *testing.T) string
		jobsSurvive bool
	}{
		{"with the template's permissions", func(*testing.T) string { return assembly }, false},
		{"without batch:TerminateJob", func(t *testing.T) string {
			return withoutPermission(t, "WorkflowStateMachineRole", "batch:TerminateJob", "*")
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			pids := filepath.Join(dir, "pids")
			// Each job records its process and takes a while before it works.
			worker := fmt.Sprintf(`echo $$ >> %q; sleep 1; exec %q worker`, pids, binary)
			ids := arcdata.IDs(12, 6)
			s, err := localrun.Open(context.Background(), localrun.Options{Assembly: c.assembly(t), Self: binary, Dir: dir,
				TaskIDs: ids, Seed: 6, WorkerCmd: worker, Parallel: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			started := cliStart(t, s, dir, "stoppable", ids)
			st := store.New(clients.NewLocal(s.Stack.Endpoint).DynamoDB, "arc-benchmark-local-runs", "arc-benchmark-local-tasks")

			// Half-way: some tasks done, jobs running.
			deadline := time.Now().Add(60 * time.Second)
			for len(completedTasks(t, st, started.RunID)) < 2 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			out, stderr, code := cli(t, s, "stop", started.RunID, "--reason", "the model server is down")
			if code != 0 || strings.TrimSpace(out) != "run "+started.RunID+" stopped: STOPPED (the model server is down)" {
				t.Fatalf("stop: exit %d, %q %q", code, out, stderr)
			}
			done := completedTasks(t, st, started.RunID)
			if len(done) == 0 || len(done) == len(ids) {
				t.Fatalf("%d of %d tasks completed when stopped: not half-way", len(done), len(ids))
			}

			time.Sleep(2500 * time.Millisecond) // longer than any job's sleep: a surviving job would have worked
			var survivors []int
			for _, pid := range pidsIn(pids) {
				if alive(pid) {
					survivors = append(survivors, pid)
				}
			}
			// Jobs that ran on are alive still, or completed tasks after the
			// stop (on a loaded machine they may all have ended by now).
			ranOn := len(survivors) > 0 || len(completedTasks(t, st, started.RunID)) > len(done)
			switch {
			case c.jobsSurvive && !ranOn:
				t.Errorf("no job ran on after the stop, though the state machine may not terminate them")
			case !c.jobsSurvive && len(survivors) > 0:
				t.Errorf("%d worker processes alive after the stop (%v)", len(survivors), survivors)
			}
			for _, pid := range survivors {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
			if !c.jobsSurvive {
				for id := range completedTasks(t, st, started.RunID) {
					if !done[id] && !stoppedMidTask(t, s.Dir, id) {
						t.Errorf("task %s completed after its run was stopped, and not by a worker stopped mid-task", id)
					}
				}
				readsAsStopped(t, s, started.RunID, len(ids))
			}
			run, err := st.GetRun(context.Background(), started.RunID)
			if err != nil {
				t.Fatal(err)
			}
			if run.Status != model.RunStopped || run.StopKind != model.StopOperator || run.StopReason != "the model server is down" || run.LastErrorType != "" {
				t.Errorf("run %s, stopped by %s: %q (error %s), want STOPPED by an operator with the reason", run.Status, run.StopKind, run.StopReason, run.LastErrorType)
			}
			if _, stderr, code := cli(t, s, "stop", started.RunID); code == 0 || !strings.Contains(stderr, "STOPPED already") {
				t.Errorf("a second stop: exit %d, %q", code, stderr)
			}
		})
	}
}

// stoppedMidTask tells whether a task's worker logged that SIGTERM stopped it.
func stoppedMidTask(t *testing.T, dir, taskID string) bool {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", taskID+"-local-*.log"))
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil && bytes.Contains(b, []byte("stopped by SIGTERM")) {
			return true
		}
	}
	return false
}

// readsAsStopped checks what the operator commands say of a stopped run:
// results without watching (the run reaper aggregated it), its tasks never
// run counted as not run, one score everywhere.
func readsAsStopped(t *testing.T, s *localrun.Session, runID string, total int) {
	t.Helper()
	var snap struct {
		Status string   `json:"status"`
		Score  *float64 `json:"score"`
		NotRun int      `json:"not_run_tasks"`
		Done   bool     `json:"done"`
	}
	out, stderr, code := cli(t, s, "watch", runID, "--json", "--interval", "1s")
	if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &snap) != nil || !snap.Done || snap.NotRun == 0 || snap.NotRun >= total {
		t.Fatalf("watch --json of the stopped run: exit %d, %q %q: want it done, with tasks not run", code, out, stderr)
	}
	out, _, _ = cli(t, s, "watch", runID)
	if want := fmt.Sprintf(", %d not run of %d", snap.NotRun, total); !strings.Contains(out, want) {
		t.Errorf("watch says %q, want %q", out, want)
	}
	out, stderr, code = cli(t, s, "results", runID)
	if want := fmt.Sprintf("%d not run", snap.NotRun); code != 0 || !strings.Contains(out, want) || strings.Contains(out+stderr, "watch") {
		t.Errorf("results of the stopped run: exit %d, %q %q: want its figures with %q, and no watching", code, out, stderr, want)
	}
	if want := "score " + percentOf(snap.Score) + " over"; !strings.Contains(out, want) {
		t.Errorf("results say %q, want %q, as watch says", out, want)
	}
	out, _, _ = cli(t, s, "runs", "--json")
	var runs []struct {
		RunID string   `json:"run_id"`
		Score *float64 `json:"score"`
	}
	_ = json.Unmarshal([]byte(out), &runs)
	for _, r := range runs {
		if r.RunID == runID && percentOf(r.Score) != percentOf(snap.Score) {
			t.Errorf("runs shows score %s, watch %s", percentOf(r.Score), percentOf(snap.Score))
		}
	}
}

func percentOf(s *float64) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *s*100)
}

func TestStoppingAnUnknownRunSaysHowToFindOne(t *testing.T) {
	s, err := localrun.Open(context.Background(), localrun.Options{Assembly: assembly, Self: binary, Dir: t.TempDir(), TaskIDs: arcdata.IDs(1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, stderr, code := cli(t, s, "stop", "run-nope")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code == 0 || len(lines) != 1 || !strings.Contains(stderr, "arcbench runs --stage local") {
		t.Errorf("exit %d, stderr %q: want one line naming the fix", code, stderr)
	}
}

// withTimeout copies the assembly with the run's execution timeout cut to
// seconds.
func withTimeout(t *testing.T, seconds int) string {
	t.Helper()
	return editedAssembly(t, func(raw []byte) ([]byte, bool) {
		edited := regexp.MustCompile(`(\\"TimeoutSeconds\\":)(\d{4,})`).ReplaceAll(raw, []byte(fmt.Sprintf("${1}%d", seconds)))
		return edited, !bytes.Equal(edited, raw)
	})
}

// withoutGiveUp copies an assembly with the catches that give a task up
// (GiveUpTask) removed, so that a failing check fails its child execution.
func withoutGiveUp(t *testing.T, from string) string {
	t.Helper()
	catch := regexp.MustCompile(`,\\"Catch\\":\[\{\\"ErrorEquals\\":\[\\"States\.ALL\\"\],\\"ResultPath\\":\\"\$\.error\\",\\"Next\\":\\"GiveUpTask\\"\}\]`)
	return editedAssemblyOf(t, from, func(raw []byte) ([]byte, bool) {
		edited := catch.ReplaceAll(raw, nil)
		return edited, !bytes.Equal(edited, raw)
	})
}

// A run whose execution times out, or whose Map fails, terminates its queued
// and running jobs: no worker is left, and the jobs still queued never run.
func TestATimedOutOrFailedRunStopsItsJobs(t *testing.T) {
	for _, c := range []struct {
		name     string
		assembly func(t *testing.T) string
		status   string
	}{
		{"timed out", func(t *testing.T) string { return withTimeout(t, 3) }, "TIMED_OUT"},
		// check-task may not read the task record, and nothing catches its
		// failure (the stage's state machine gives such a task up and goes
		// on; this one is edited so that the Map's own failure is tested):
		// the first child fails, and with it the Map (no failure tolerated).
		{"its Map failed", func(t *testing.T) string {
			return withoutGiveUp(t, withoutPermission(t, "FunctionsCheckTaskRole", "dynamodb:GetItem", "DataTasks"))
		}, "FAILED"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pids := filepath.Join(t.TempDir(), "pids")
			worker := fmt.Sprintf(`echo $$ >> %q; sleep 1; exec %q worker`, pids, binary)
			const n = 12
			res, db := runDenied(t, localrun.Options{Assembly: c.assembly(t), TaskIDs: arcdata.IDs(n, 8), Seed: 8, WorkerCmd: worker, Parallel: 2})
			if res.Status != c.status {
				t.Fatalf("execution %s (%s), want %s", res.Status, res.Error, c.status)
			}
			time.Sleep(1500 * time.Millisecond)
			started := pidsIn(pids)
			for _, pid := range started {
				if alive(pid) {
					t.Errorf("worker %d is alive after the execution ended %s", pid, res.Status)
				}
			}
			if len(started) >= n {
				t.Errorf("%d of %d jobs ran: the queued ones should have been terminated", len(started), n)
			}
			// A running job is stopped as ECS stops its container: SIGTERM
			// first (the benchmark's worker then saves what it has).
			logs, _ := filepath.Glob(filepath.Join(res.Dir, "logs", "*-local-*.log"))
			sigterms := 0
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil && bytes.Contains(b, []byte("job terminated (the execution stopped): SIGTERM sent")) {
					sigterms++
				}
			}
			if sigterms == 0 {
				t.Errorf("no running job was sent SIGTERM when the execution ended %s", res.Status)
			}
			if s := str(runRecord(t, db, res, res.RunID), "status"); s != model.RunFailed {
				t.Errorf("run %s, want FAILED", s)
			}
		})
	}
}
