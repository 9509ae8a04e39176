package localrun

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Watchdog is a process that outlives a local run only to stop what the run
// started: the run tells it, through its stdin, each process group it starts
// ("+PGID") and ends ("-PGID"); when its stdin ends (the run closed it, or
// died, even by kill -9) it kills every group still listed, and first every
// descendant of the group's leader: a job's leader is its init (JobInit),
// which keeps even the job's processes that left its group as descendants.
// Workers that run a shell's children, which no parent-death signal
// reaches, die with it.
func Watchdog(in io.Reader) {
	live := map[int]bool{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if len(line) < 2 {
			continue
		}
		pgid, err := strconv.Atoi(line[1:])
		if err != nil || pgid <= 1 {
			continue
		}
		live[pgid] = line[0] == '+'
	}
	var wg sync.WaitGroup
	for pgid, running := range live {
		if running {
			wg.Go(func() { killGroupTree(pgid) })
		}
	}
	wg.Wait()
}

// killGroupTree kills a listed group: its leader's descendants (while the
// leader lives, so that orphans stay among them), then the group.
func killGroupTree(pgid int) {
	// A leader that has gone may have left its pid to another process: only
	// one that still leads the group is this run's.
	if st, ok := procStat(pgid); ok && st.pgrp == pgid {
		killDescendants(pgid)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// watchdog is the run's end of the pipe to its watchdog process.
type watchdog struct {
	mu  sync.Mutex
	out io.WriteCloser
	cmd *exec.Cmd
}

// startWatchdog starts `self local watchdog` in a process group of its own,
// so that nothing aimed at the run's group stops it.
func startWatchdog(self string) (*watchdog, error) {
	cmd := exec.Command(self, "local", "watchdog")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the run's watchdog: %w", err)
	}
	return &watchdog{out: out, cmd: cmd}, nil
}

// started and ended tell the watchdog of a process group.
func (w *watchdog) started(pgid int) { w.say('+', pgid) }
func (w *watchdog) ended(pgid int)   { w.say('-', pgid) }

func (w *watchdog) say(op byte, pgid int) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, _ = fmt.Fprintf(w.out, "%c%d\n", op, pgid)
}

// close ends the watchdog: it kills what is still listed, and exits.
func (w *watchdog) close() {
	if w == nil {
		return
	}
	w.mu.Lock()
	_ = w.out.Close()
	w.mu.Unlock()
	_ = w.cmd.Wait()
}

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER (linux/prctl.h).
const prSetChildSubreaper = 36

// JobInit is `arcbench local job [--control-fd=N] [--] PATH ARGV0 ARGS...`,
// the first process of a local Batch job, as a container has one. It runs
// the worker (PATH, with ARGV0 ARGS... as its argv, and this process's
// environment, stdin, stdout, stderr and process group, which the run
// signals) and, once the worker has exited or the run asks (by closing the
// pipe on fd N, or by dying, even by kill -9), kills every process the
// worker started, however it detached (a new session, a double fork), and
// exits with the worker's exit code (128+S for signal S, as a container
// reports it).
//
// Why a subreaper: on AWS a container's every process dies with it; here,
// without root, cgroups (they need a delegated subtree, from systemd) and
// PID namespaces (CAP_SYS_ADMIN, or user namespaces, often disabled) are not
// at hand, but PR_SET_CHILD_SUBREAPER is (Linux 3.4+, unprivileged): every
// orphan among this process's descendants is re-parented to it instead of
// to the system's init, so that the job's processes stay its descendants,
// found through /proc, until it has killed them. One per job, not the run
// as subreaper: an orphan would not say which job it came from, and would
// go to the system's init when the run is killed.
func JobInit(args []string) int {
	var control *os.File
	if len(args) > 0 && strings.HasPrefix(args[0], "--control-fd=") {
		fd, err := strconv.Atoi(strings.TrimPrefix(args[0], "--control-fd="))
		if err != nil || fd < 3 {
			fmt.Fprintln(os.Stderr, "arcbench local job: bad", args[0])
			return 2
		}
		// The worker must not inherit the run's control pipe.
		syscall.CloseOnExec(fd)
		control, args = os.NewFile(uintptr(fd), "control"), args[1:]
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: arcbench local job [--control-fd=N] [--] PATH ARGV0 [ARGS...]")
		return 2
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		fmt.Fprintln(os.Stderr, "arcbench local job: PR_SET_CHILD_SUBREAPER:", errno, "(what the worker detaches may outlive the job)")
	}
	// The run stops a job with SIGTERM to its group, this process's too: the
	// worker has it already, and this process lives on to report how the
	// worker ends. (Caught, not ignored: an ignored signal would stay
	// ignored in the worker.)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGTERM)
	worker, err := os.StartProcess(args[0], args[1:], &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "arcbench local job:", err)
		return 127 // as a shell answers a command it cannot run
	}
	exited := make(chan syscall.WaitStatus, 1)
	go reapChildren(worker.Pid, exited)
	stop := make(chan struct{})
	if control != nil {
		go func() {
			_, _ = io.Copy(io.Discard, control) // EOF: closed, or the run died
			close(stop)
		}()
	}
	var ws syscall.WaitStatus
	select {
	case ws = <-exited:
	case <-stop:
		killDescendants(os.Getpid()) // the worker among them
		ws = <-exited
	}
	// The job's end is its container's: nothing the worker started stays.
	killDescendants(os.Getpid())
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// reapChildren waits for this process's children, the orphans it adopts
// as a subreaper too (so that none stays a zombie), and reports the
// worker's status. It is the process's only waiter: another would take the
// worker's status.
func reapChildren(worker int, exited chan<- syscall.WaitStatus) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case err == syscall.EINTR:
		case err != nil:
			time.Sleep(10 * time.Millisecond) // no child now; orphans may come
		case pid == worker:
			exited <- ws
		}
	}
}

// sweepLimit bounds killDescendants: a process stuck in the kernel (state D)
// may take long to die of SIGKILL.
const sweepLimit = 10 * time.Second

// killDescendants SIGKILLs root's descendants until none is left alive.
// Each round may leave orphans of the processes it killed, or children
// forked meanwhile: when root is a subreaper, those are still its
// descendants, found by the next round.
func killDescendants(root int) {
	deadline := time.Now().Add(sweepLimit)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		pids := liveDescendants(root)
		if len(pids) == 0 || time.Now().After(deadline) {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(wait)
	}
}

// stat is what /proc/<pid>/stat says of a process that killDescendants needs.
type stat struct {
	state      byte
	ppid, pgrp int
}

// procStat reads /proc/<pid>/stat: "pid (comm) state ppid pgrp ...", where
// comm may hold spaces and parentheses.
func procStat(pid int) (stat, bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, false
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return stat{}, false
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return stat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return stat{}, false
	}
	return stat{state: f[0][0], ppid: ppid, pgrp: pgrp}, true
}

// liveDescendants lists root's descendants that are not zombies (dead,
// waiting to be reaped), from the parent of every process in /proc: it
// needs no kernel option, unlike /proc/<pid>/task/<tid>/children.
func liveDescendants(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	states := map[int]byte{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := procStat(pid); ok {
			children[st.ppid] = append(children[st.ppid], pid)
			states[pid] = st.state
		}
	}
	var out []int
	for queue := children[root]; len(queue) > 0; queue = queue[1:] {
		pid := queue[0]
		if s := states[pid]; s != 'Z' && s != 'X' {
			out = append(out, pid)
		}
		queue = append(queue, children[pid]...)
	}
	return out
}
