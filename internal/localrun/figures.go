package localrun

import (
	"fmt"
	"sort"
	"strings"
)

// Step Functions quotas the local run holds every execution to.
const (
	MaxPayloadBytes = 262144 // per state input or output
	MaxHistory      = 25000  // events per execution
)

// Execution is what one execution (the run's, or a Distributed Map's child)
// did, counted as AWS would record it.
type Execution struct {
	ARN            string `json:"arn"`
	Parent         string `json:"parent,omitempty"`
	Status         string `json:"status"`
	StatesEntered  int    `json:"states_entered"`
	LargestPayload int    `json:"largest_payload_bytes"`
	LargestAt      string `json:"largest_payload_state,omitempty"`
	// HistoryEvents is the execution's event history as AWS would write it:
	// the interpreter's own log is coarser (one event where AWS writes up to
	// six per task), so each interpreter event is weighed by state type.
	HistoryEvents int `json:"history_events"`
}

// record adds one interpreter event to the execution's figures. sync tells
// whether a Task state waits for a job (.sync), which adds a Submitted event.
func (e *Execution) record(m *message, sync bool) {
	if m.InBytes > e.LargestPayload {
		e.LargestPayload, e.LargestAt = m.InBytes, m.State+" (input)"
	}
	if m.OutBytes != nil && *m.OutBytes > e.LargestPayload {
		e.LargestPayload, e.LargestAt = *m.OutBytes, m.State+" (output)"
	}
	e.HistoryEvents += historyEvents(m.Type, m.StateType, sync)
	if m.Type == "StateEntered" {
		e.StatesEntered++
	}
}

// historyEvents is how many AWS history events stand behind one interpreter
// event:
//
//	Task:   TaskStateEntered, TaskScheduled, TaskStarted[, TaskSubmitted] ...
//	        TaskSucceeded, TaskStateExited | TaskFailed; a retry schedules,
//	        starts[, submits] and fails again.
//	Map:    MapStateEntered, MapStateStarted, per iteration MapIterationStarted
//	        and Succeeded/Failed, MapStateSucceeded, MapStateExited.
//	Distributed Map: MapStateEntered, MapRunStarted, MapRunSucceeded, MapStateExited.
//	Pass, Wait, Choice, Succeed, Fail: entered and exited.
func historyEvents(event, stateType string, sync bool) int {
	attempt := 2 // scheduled, started
	if sync {
		attempt = 3 // and submitted
	}
	switch event {
	case "ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimeout",
		"MapIterationStarted", "MapIterationSucceeded", "MapIterationFailed",
		"ParallelBranchStarted", "ParallelBranchSucceeded", "ParallelBranchFailed":
		return 1
	case "StateEntered":
		switch stateType {
		case "Task":
			return 1 + attempt
		case "Map", "Parallel", "DistributedMap":
			return 2
		}
		return 1
	case "StateExited":
		switch stateType {
		case "Task", "Map", "Parallel", "DistributedMap":
			return 2
		}
		return 1
	case "StateFailed":
		return 1
	case "StateRetried":
		// The failed attempt, then the next one scheduled and started.
		return 1 + attempt
	}
	return 0 // StateCaught: AWS shows the catch as the next state's entry
}

// Figures are a whole local run's numbers.
type Figures struct {
	Root     *Execution   `json:"root"`
	Children []*Execution `json:"children,omitempty"`
}

// Worst returns the child with the most history events and the one with the
// largest payload (nil without children).
func (f *Figures) Worst() (history, payload *Execution) {
	for _, c := range f.Children {
		if history == nil || c.HistoryEvents > history.HistoryEvents {
			history = c
		}
		if payload == nil || c.LargestPayload > payload.LargestPayload {
			payload = c
		}
	}
	return history, payload
}

// Violations lists every execution that broke a quota, saying which.
func (f *Figures) Violations() []string {
	var out []string
	all := append([]*Execution{f.Root}, f.Children...)
	for _, e := range all {
		if e == nil {
			continue
		}
		if e.LargestPayload > MaxPayloadBytes {
			out = append(out, fmt.Sprintf("%s: state payload of %d bytes at %s exceeds the %d-byte quota", e.ARN, e.LargestPayload, e.LargestAt, MaxPayloadBytes))
		}
		if e.HistoryEvents > MaxHistory {
			out = append(out, fmt.Sprintf("%s: %d history events exceed the %d-event quota", e.ARN, e.HistoryEvents, MaxHistory))
		}
	}
	sort.Strings(out)
	return out
}

// String is the figures as the run prints them.
func (f *Figures) String() string {
	var b strings.Builder
	r := f.Root
	fmt.Fprintf(&b, "  execution:        %d states entered, largest payload %d bytes (%s), %d history events\n",
		r.StatesEntered, r.LargestPayload, r.LargestAt, r.HistoryEvents)
	if len(f.Children) > 0 {
		h, p := f.Worst()
		entered := 0
		for _, c := range f.Children {
			entered += c.StatesEntered
		}
		fmt.Fprintf(&b, "  child executions: %d, %d states entered; most history events %d (%s); largest payload %d bytes (%s)\n",
			len(f.Children), entered, h.HistoryEvents, h.ARN, p.LargestPayload, p.LargestAt)
	}
	return b.String()
}
