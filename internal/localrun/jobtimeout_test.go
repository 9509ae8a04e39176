package localrun_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"arcbench/internal/localrun"
	"arcbench/internal/report"
	"arcbench/shared/arcdata"
	"arcbench/shared/model"
)

// jobLog is one job's log: the worker's JSON lines and the runner's (the
// Batch side: what it did to the job, and how the job ended).
type jobLog struct {
	worker []map[string]any
	// ended is the runner's "job ended" line; timedOut and killed its lines
	// about the time limit (nil when there are none).
	ended, timedOut, killed map[string]any
}

// jobLogs reads the logs of a task's jobs, in the order they ran.
func jobLogs(t *testing.T, res *localrun.Result, taskID string) []jobLog {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(res.Dir, "logs", taskID+"-local-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var logs []jobLog
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		var l jobLog
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				continue // a worker of --worker-cmd may log anything
			}
			if rec["source"] != "arcbench local run (Batch)" {
				l.worker = append(l.worker, rec)
				continue
			}
			switch msg, _ := rec["msg"].(string); {
			case msg == "job ended":
				l.ended = rec
			case strings.HasPrefix(msg, "job attempt timed out"):
				l.timedOut = rec
			case strings.Contains(msg, "SIGKILL"):
				l.killed = rec
			}
		}
		f.Close()
		if l.ended == nil {
			t.Fatalf("%s: no job-ended line", p)
		}
		logs = append(logs, l)
	}
	return logs
}

// batchJob is the job description a failed RunTask state carries as Cause.
type batchJob struct {
	Status       string
	StatusReason string
	Container    struct{ ExitCode *int }
	Timeout      struct{ AttemptDurationSeconds int }
	Attempts     []struct {
		StatusReason string
		Container    struct{ ExitCode *int }
	}
}

// failure is the RunTask state's failure a job-ended line records, with its
// Cause decoded as Batch's job description.
func (l jobLog) failure(t *testing.T) (string, batchJob) {
	t.Helper()
	var job batchJob
	cause, _ := l.ended["cause"].(string)
	if err := json.Unmarshal([]byte(cause), &job); err != nil {
		t.Fatalf("the job's Cause is not a job description: %q", cause)
	}
	name, _ := l.ended["error"].(string)
	return name, job
}

// A job still running at its time limit is stopped as Batch stops it: its
// worker gets SIGTERM and, as the benchmark's worker does, saves the pairs
// answered so far, marks the task COMPLETED and exits 0; the job fails all
// the same (RunTask: States.TaskFailed, Cause a job description FAILED with
// Batch's timeout reason and the exit code 0), and it is not run again: the
// table says the task is done. A one-pair task's hang comes after its
// answer: stopped too, with its whole submission. A job that ends in time
// succeeds.
func TestAJobIsStoppedAtItsTimeLimit(t *testing.T) {
	three := arcdata.Generate("dd000001", 1)
	for seed := int64(2); len(three.Test) < 3; seed++ {
		three.Test = append(three.Test, arcdata.Generate("dd000001", seed).Test...)
	}
	data := map[string][]byte{}
	for id, task := range map[string]arcdata.Task{"dd000001": three, "dd000002": arcdata.Generate("dd000002", 1), "dd000003": arcdata.Generate("dd000003", 1)} {
		data[id], _ = json.Marshal(task)
	}
	const limit = 2 * time.Second
	res, db := run(t, localrun.Options{TaskIDs: []string{"dd000001", "dd000002", "dd000003"}, TaskData: data,
		Faults: "dd000001:1=hang,dd000002:1=hang", JobTimeout: limit, MaxRetries: 3, Report: true})
	if res.Status != "SUCCEEDED" || res.RunStatus != model.RunCompleted {
		t.Fatalf("execution %s, run %s: %s %s", res.Status, res.RunStatus, res.Error, res.Cause)
	}
	got := tasksOf(t, db, res, res.RunID)
	for id, answered := range map[string]float64{"dd000001": 1, "dd000002": 1} {
		if g := got[id]; g.Status != model.TaskCompleted || g.RetryCount != 0 {
			t.Errorf("%s: %s with retry_count %d, want COMPLETED at the first attempt", id, g.Status, g.RetryCount)
		}
		logs := jobLogs(t, res, id)
		if len(logs) != 1 {
			t.Fatalf("%s: %d jobs, want 1: a job stopped at its time limit is not run again", id, len(logs))
		}
		l := logs[0]
		name, job := l.failure(t)
		if name != "States.TaskFailed" || job.Status != "FAILED" || job.StatusReason != "Job attempt duration exceeded timeout" ||
			job.Container.ExitCode == nil || *job.Container.ExitCode != 0 ||
			len(job.Attempts) != 1 || job.Attempts[0].StatusReason != job.StatusReason {
			t.Errorf("%s: RunTask failed with %s, job %+v; want States.TaskFailed, FAILED with the timeout reason, exit code 0", id, name, job)
		}
		if l.timedOut == nil || l.killed != nil {
			t.Errorf("%s: SIGTERM logged %v, SIGKILL logged %v: want SIGTERM only", id, l.timedOut != nil, l.killed != nil)
		}
		var stopped map[string]any
		for _, rec := range l.worker {
			if strings.HasPrefix(rec["msg"].(string), "stopped by SIGTERM") {
				stopped = rec
			}
		}
		if stopped == nil || stopped["pairs_answered"] != answered || stopped["exit_code"] != 0.0 {
			t.Errorf("%s: the worker's log %v: want it stopped by SIGTERM with %v pairs answered", id, l.worker, answered)
		}
	}
	if g := got["dd000003"]; g.Status != model.TaskCompleted {
		t.Errorf("dd000003: %s", g.Status)
	}
	if l := jobLogs(t, res, "dd000003"); len(l) != 1 || l[0].ended["status"] != "SUCCEEDED" || l[0].timedOut != nil {
		t.Errorf("dd000003, done in time: %+v", l)
	}
	if res.Calls["RunTask"] != 3 || res.Calls["HandleError"] != 0 {
		t.Errorf("RunTask ran %d times, HandleError %d: want 3 and 0", res.Calls["RunTask"], res.Calls["HandleError"])
	}
	if res.Wall < limit {
		t.Errorf("the run took %s, less than the time limit %s", res.Wall, limit)
	}

	// Done and paid for, scored on what was saved, and said so: the job's
	// error on the task, counted apart, marked on the report.
	byID := results(t, res)
	for id, pairs := range map[string]int{"dd000001": 3, "dd000002": 1} {
		r := byID[id]
		if !model.StoppedAtTimeLimit(r.JobError) || r.Pairs != pairs || r.Score == nil {
			t.Errorf("%s: job_error %q, %d pairs, score %v; want the timeout, %d pairs, a score", id, r.JobError, r.Pairs, r.Score, pairs)
		}
	}
	if r := byID["dd000001"]; r.PairsCorrect > 1 {
		t.Errorf("dd000001: %d pairs right, but only the first was answered", r.PairsCorrect)
	}
	if r := byID["dd000003"]; r.JobError != "" {
		t.Errorf("dd000003, done in time: job_error %q", r.JobError)
	}
	if m := aggregated(t, res).Metrics; m.CompletedAfterJobFailure != 2 || m.CompletedTasks != 3 {
		t.Errorf("metrics: %d completed, %d before their job failed; want 3 and 2", m.CompletedTasks, m.CompletedAfterJobFailure)
	}
	html, err := os.ReadFile(res.ReportPath)
	if err != nil {
		t.Fatalf("report: %v (%s)", err, res.ReportError)
	}
	raw, _ := report.Data(html)
	var page report.Page
	if err := json.Unmarshal(raw, &page); err != nil {
		t.Fatal(err)
	}
	for _, task := range page.Tasks {
		if stopped := task.ID != "dd000003"; task.Stopped != stopped {
			t.Errorf("report: task %s stopped_at_time_limit %v, want %v", task.ID, task.Stopped, stopped)
		}
	}
	if page.Run.AfterJobFailure != 2 {
		t.Errorf("report: %d tasks completed before their job failed, want 2", page.Run.AfterJobFailure)
	}
}

// A worker that ignores SIGTERM is killed once the stop timeout has passed
// too: the job fails with the timeout reason and exit code 137, and the
// task, never worked on, goes the way of any failed attempt.
func TestAJobThatIgnoresSIGTERMIsKilled(t *testing.T) {
	defer localrun.SetStopTimeout(500 * time.Millisecond)()
	pids := filepath.Join(t.TempDir(), "pids")
	worker := `echo $$ >> ` + pids + `; trap '' TERM; exec sleep 60`
	res, db := run(t, localrun.Options{TaskIDs: []string{"ee000001"}, WorkerCmd: worker, JobTimeout: time.Second, MaxRetries: 1})
	if res.Status != "SUCCEEDED" {
		t.Fatalf("execution %s: %s %s", res.Status, res.Error, res.Cause)
	}
	if g := tasksOf(t, db, res, res.RunID)["ee000001"]; g.Status != model.TaskFailedPermanent {
		t.Errorf("task %s, want FAILED_PERMANENT (MAX_RETRIES 1)", g.Status)
	}
	logs := jobLogs(t, res, "ee000001")
	if len(logs) != 1 {
		t.Fatalf("%d jobs, want 1", len(logs))
	}
	name, job := logs[0].failure(t)
	if name != "States.TaskFailed" || job.Status != "FAILED" || job.StatusReason != "Job attempt duration exceeded timeout" ||
		job.Container.ExitCode == nil || *job.Container.ExitCode != 137 {
		t.Errorf("RunTask failed with %s, job %+v; want FAILED with the timeout reason and exit code 137", name, job)
	}
	if logs[0].timedOut == nil || logs[0].killed == nil {
		t.Errorf("SIGTERM logged %v, SIGKILL logged %v: want both", logs[0].timedOut != nil, logs[0].killed != nil)
	}
	for _, pid := range pidsIn(pids) {
		if alive(pid) {
			t.Errorf("worker %d outlived its job", pid)
		}
	}
}
