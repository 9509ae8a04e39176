package localrun

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Watchdog is a process that outlives a local run only to stop what the run
// started: the run tells it, through its stdin, each process group it starts
// ("+PGID") and ends ("-PGID"); when its stdin ends (the run closed it, or
// died, even by kill -9) it kills every group still listed. Workers that run
// a shell's children, which no parent-death signal reaches, die with it.
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
	for pgid, running := range live {
		if running {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
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
