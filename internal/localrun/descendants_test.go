package localrun_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"arcbench/internal/localrun"
	"arcbench/shared/arcdata"
)

// escaping is a --worker-cmd whose worker first starts three processes that
// leave it as daemons do, each recording its pid in dir/escaped.<worker's
// pid>: one in a new session (setsid), one orphaned by a double fork (it
// keeps the job's process group), one both (a new session, orphaned); then
// it runs then.
func escaping(t *testing.T, dir, then string) string {
	t.Helper()
	script := filepath.Join(dir, "escape.sh")
	const body = `f="$1/escaped.$$"
setsid sh -c 'echo $$ >> "$0"; exec sleep 600' "$f" &
sh -c 'sleep 601 & echo $! >> "$0"' "$f"
sh -c 'setsid sh -c "echo \$\$ >> \"\$0\"; exec sleep 602" "$0" &' "$f"
while [ "$(wc -l < "$f" 2>/dev/null || echo 0)" -lt 3 ]; do sleep 0.05; done
`
	if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("sh %q %q; %s", script, dir, then)
}

// escaped lists the pids the escaping workers recorded, once jobs of them
// have recorded all three (within a minute).
func escaped(t *testing.T, dir string, jobs int) []int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "escaped.*"))
		var pids []int
		for _, f := range files {
			pids = append(pids, pidsIn(f)...)
		}
		if len(pids) >= 3*jobs {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs recorded %d escaping processes in a minute, want 3 each", len(files), len(pids))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noneAlive fails the test for each of pids alive once within has passed
// (0: now), and kills it. It returns how long they took to go.
func noneAlive(t *testing.T, pids []int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		var survivors []int
		for _, pid := range pids {
			if alive(pid) {
				survivors = append(survivors, pid)
			}
		}
		if len(survivors) == 0 {
			return time.Since(start)
		}
		if time.Since(start) >= within {
			for _, pid := range survivors {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Errorf("process %d (%s), which a job started and detached, outlived it", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A job's every process ends with it, as with a container: those its worker
// started in a new session or orphaned by a double fork too, whether the
// job ends by itself (they are gone when it has ended) or at its time limit.
func TestNothingAJobStartsOutlivesIt(t *testing.T) {
	for _, c := range []struct {
		name    string
		then    string
		timeout time.Duration
		status  string
	}{
		{"its worker works and exits", "exec %q worker", 0, "SUCCEEDED"},
		{"stopped at its time limit", "exec sleep 60", 2 * time.Second, "FAILED"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			then := c.then
			if strings.Contains(then, "%q") {
				then = fmt.Sprintf(then, binary)
			}
			res, _ := run(t, localrun.Options{TaskIDs: arcdata.IDs(2, 4), Seed: 4, WorkerCmd: escaping(t, dir, then), JobTimeout: c.timeout, MaxRetries: 1})
			if res.Status != "SUCCEEDED" {
				t.Fatalf("execution %s: %s %s", res.Status, res.Error, res.Cause)
			}
			for _, l := range jobLogs(t, res, "*") {
				if l.ended["status"] != c.status {
					t.Errorf("a job ended %v, want %s", l.ended["status"], c.status)
				}
			}
			// The jobs have ended: what they started is gone already.
			noneAlive(t, escaped(t, dir, 2), 0)
		})
	}
}

// `arcbench stop`, and the end of the run (Close, what Ctrl-C comes to),
// leave none of the processes a running job detached.
func TestNothingAJobStartsOutlivesItsRun(t *testing.T) {
	defer localrun.SetStopTimeout(time.Second)()
	for _, c := range []struct {
		name string
		end  func(t *testing.T, s *localrun.Session, runID string)
		// within is how long the processes may take to go once end returns.
		within time.Duration
	}{
		{"stopped", func(t *testing.T, s *localrun.Session, runID string) {
			if out, stderr, code := cli(t, s, "stop", runID); code != 0 {
				t.Fatalf("stop: exit %d, %q %q", code, out, stderr)
			}
		}, 10 * time.Second},
		// Close returns once everything it stops is gone.
		{"closed", func(_ *testing.T, s *localrun.Session, _ string) { s.Close() }, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ids := arcdata.IDs(2, 5)
			s, err := localrun.Open(context.Background(), localrun.Options{Assembly: assembly, Self: binary, Dir: dir,
				TaskIDs: ids, Seed: 5, WorkerCmd: escaping(t, dir, "exec sleep 600"), Parallel: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			started := cliStart(t, s, dir, "detaching", ids)
			pids := escaped(t, dir, 2)
			c.end(t, s, started.RunID)
			t.Logf("gone %s after the run was %s", noneAlive(t, pids, c.within), c.name)
		})
	}
}

// Ctrl-C of `arcbench local run`, and kill -9 of it (the watchdog's case),
// leave none of the processes its running jobs detached.
func TestNothingAJobStartsOutlivesAnInterruptedOrKilledRun(t *testing.T) {
	for _, c := range []struct {
		name   string
		sig    syscall.Signal
		within time.Duration
	}{
		{"Ctrl-C", syscall.SIGINT, 2 * time.Second}, // the emulators die of their parent's death, a moment after it
		{"kill -9", syscall.SIGKILL, 10 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(binary, "local", "run", "--assembly", assembly, "--count", "2", "--dir", dir,
				"--worker-cmd", escaping(t, dir, "exec sleep 600"))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill() }()
			pids := escaped(t, dir, 2)
			// The jobs' inits, as the workers, must go too.
			pids = append(pids, descendants(cmd.Process.Pid)...)
			_ = cmd.Process.Signal(c.sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("the run did not end within 20 s of %s: %s", c.name, out.String())
			}
			t.Logf("gone %s after the run exited (%s)", noneAlive(t, pids, c.within), c.name)
		})
	}
}
