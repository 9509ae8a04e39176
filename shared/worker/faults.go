package worker

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

// Injected misbehaviour, for local runs and end-to-end tests: every way a
// real worker can let the orchestration down, on the attempts a test picks.
const (
	// EnvFaults lists faults by task and attempt (see ParseFaults).
	EnvFaults = "ARCBENCH_FAULTS"
	// EnvFailRate and EnvFailSeed fail a share of attempts, picked by
	// FailsAttempt, through the worker's own failure path.
	EnvFailRate     = "ARCBENCH_FAIL_RATE"
	EnvFailSeed     = "ARCBENCH_FAIL_SEED"
	DefaultFailSeed = 1
)

// Mode is one kind of injected misbehaviour.
type Mode string

// The modes of ARCBENCH_FAULTS.
const (
	// FailAfterClaim claims the task, then fails the attempt as a provider
	// error would: the worker marks the task failed itself and exits 1.
	FailAfterClaim Mode = "fail-after-claim"
	// DieAfterClaim claims the task, then exits 137 (a killed container)
	// at once, leaving it IN_PROGRESS.
	DieAfterClaim Mode = "die-after-claim"
	// Exit0WithoutWork exits 0 without claiming or writing anything: a
	// worker whose claim response was lost.
	Exit0WithoutWork Mode = "exit-0-without-work"
	// ClaimThenExit0 claims the task, then exits 0 without writing anything else.
	ClaimThenExit0 Mode = "claim-then-exit-0"
	// CompleteThenDie marks the task COMPLETED, then exits 137 before the
	// run's counters are updated.
	CompleteThenDie Mode = "complete-then-die"
	// NoAnswer: the model is never reached (every provider call fails, as
	// with HTTP 500, a revoked key or no server). As the benchmark's worker
	// does, each pair's attempt is left empty and the attempt goes on: the
	// submission is [], the task is marked COMPLETED with cost_usd 0,
	// tokens_input 0 and tokens_output 0, the run's counters are added to
	// (+1 completed, +0 cost), exit 0.
	NoAnswer Mode = "no-answer"
	// EmptyAnswer: the model answers every pair and is billed, but with no
	// usable grid: each pair's attempt_1 has "answer": [] (correct false
	// where the output is known), with the tokens and cost of a normal
	// answer, which the task's tokens and cost_usd record; COMPLETED, exit 0.
	EmptyAnswer Mode = "empty-answer"
	// Hang: the worker's second model call never returns until the worker
	// is signalled. For a task of two or more test pairs that is the call
	// for the second pair; for a task of one pair, a second call (attempt_2
	// of that pair) the worker makes only in this mode, after answering the
	// pair and before writing the submission. On SIGTERM (Batch's at the
	// attempt's time limit) the hung call is given up, unbilled, and the
	// worker saves what it has: the first pair's answer (the whole
	// submission of a one-pair task), COMPLETED with the cost so far, exit
	// 0. On SIGINT it exits 130, nothing marked. Unsignalled it hangs
	// until killed.
	Hang Mode = "hang"
	// SubmissionLost: the attempt goes as usual (answered, billed, the
	// task COMPLETED with its cost and tokens and result_s3_key, exit 0), but
	// its submission never reaches the bucket, as if it had been deleted.
	SubmissionLost Mode = "submission-lost"
	// CostUnreadable: a normal attempt whose worker records its cost as text
	// that is not a number (cost_usd "n/a"); it adds nothing to the run's cost.
	CostUnreadable Mode = "cost-unreadable"
)

// Modes are the accepted modes, in the order the help lists them.
var Modes = []Mode{FailAfterClaim, DieAfterClaim, Exit0WithoutWork, ClaimThenExit0, CompleteThenDie, NoAnswer, EmptyAnswer, Hang, SubmissionLost, CostUnreadable}

// AnyTask is the TASK_ID of a fault that applies to every task.
const AnyTask = "*"

// Fault injects Mode on one attempt of one task.
type Fault struct {
	TaskID string // a task id, or AnyTask
	// Attempt is the 1-based attempt number (the task's retry_count + 1 when
	// the worker finds it); 0 is every attempt ("*").
	Attempt int
	Mode    Mode
}

// Faults is an ARCBENCH_FAULTS list; the first entry that matches wins.
type Faults []Fault

// ParseFaults reads a comma-separated list of TASK_ID:ATTEMPT=MODE entries,
// where TASK_ID and ATTEMPT may be "*". Empty entries are ignored. The error
// names the bad entry and the accepted modes.
func ParseFaults(spec string) (Faults, error) {
	var fs Faults
	for entry := range strings.SplitSeq(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		f, err := parseFault(entry)
		if err != nil {
			return nil, fmt.Errorf("fault %q: %w; want TASK_ID:ATTEMPT=MODE (TASK_ID or ATTEMPT may be *) with MODE one of %s",
				entry, err, modeList())
		}
		fs = append(fs, f)
	}
	return fs, nil
}

func parseFault(entry string) (Fault, error) {
	where, mode, ok := strings.Cut(entry, "=")
	if !ok {
		return Fault{}, fmt.Errorf("no =MODE")
	}
	i := strings.LastIndexByte(where, ':')
	if i < 0 {
		return Fault{}, fmt.Errorf("no :ATTEMPT")
	}
	f := Fault{TaskID: strings.TrimSpace(where[:i]), Mode: Mode(strings.TrimSpace(mode))}
	if f.TaskID == "" {
		return Fault{}, fmt.Errorf("no TASK_ID")
	}
	if a := strings.TrimSpace(where[i+1:]); a != "*" {
		n, err := strconv.Atoi(a)
		if err != nil || n < 1 {
			return Fault{}, fmt.Errorf("attempt %q is not * or a number from 1", a)
		}
		f.Attempt = n
	}
	if !slices.Contains(Modes, f.Mode) {
		return Fault{}, fmt.Errorf("unknown mode %q", f.Mode)
	}
	return f, nil
}

func modeList() string {
	names := make([]string, len(Modes))
	for i, m := range Modes {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}

// String writes the fault as ParseFaults reads it.
func (f Fault) String() string {
	attempt := "*"
	if f.Attempt > 0 {
		attempt = strconv.Itoa(f.Attempt)
	}
	return f.TaskID + ":" + attempt + "=" + string(f.Mode)
}

// String writes the list as ParseFaults reads it.
func (fs Faults) String() string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.String()
	}
	return strings.Join(parts, ",")
}

// Match is the mode of the first entry for attempt (1-based) of taskID.
func (fs Faults) Match(taskID string, attempt int) (Mode, bool) {
	for _, f := range fs {
		if (f.TaskID == AnyTask || f.TaskID == taskID) && (f.Attempt == 0 || f.Attempt == attempt) {
			return f.Mode, true
		}
	}
	return "", false
}

// mayExitWithoutWork tells whether some entry could make the worker exit
// before its claim: only then does it read the task's attempt number first.
func (fs Faults) mayExitWithoutWork(taskID string) bool {
	for _, f := range fs {
		if (f.TaskID == AnyTask || f.TaskID == taskID) && f.Mode == Exit0WithoutWork {
			return true
		}
	}
	return false
}

// FailsAttempt tells whether fault injection fails attempt number attempt
// (the task's retry_count at claim time, 0 first) of a task, at failure rate
// rate under seed. It is a pure function, so a test can derive a run's
// outcome from the schedule: u = splitmix64(FNV-1a-64(seed as 8 bytes
// little-endian, task id, a zero byte, attempt as 8 bytes little-endian)),
// its top 53 bits as a fraction in [0, 1); the attempt fails when u < rate.
// Rate 0 never fails, rate 1 always does.
func FailsAttempt(seed int64, taskID string, attempt int, rate float64) bool {
	if rate <= 0 {
		return false
	}
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(taskID))
	h.Write([]byte{0})
	binary.LittleEndian.PutUint64(b[:], uint64(attempt))
	h.Write(b[:])
	z := h.Sum64()
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	u := float64(z>>11) / (1 << 53)
	return u < rate
}

// InjectedFailure is an attempt failed on purpose (ARCBENCH_FAULTS'
// fail-after-claim, or ARCBENCH_FAIL_RATE): it takes the worker's own
// failure path, as a provider error would.
type InjectedFailure struct {
	TaskID  string
	Attempt int    // 1-based
	Reason  string // what picked it
}

func (e *InjectedFailure) Error() string {
	return fmt.Sprintf("injected failure of task %s, attempt %d (%s)", e.TaskID, e.Attempt, e.Reason)
}
