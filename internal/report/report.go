// Package report makes a run's results something to look at: one
// self-contained HTML page with the run's figures, every task as a tile
// coloured by its score, and each task's test inputs, expected outputs and
// attempts drawn as ARC grids; and a page comparing runs by score and cost.
// Everything is read from the run's records and bucket, as `arcbench
// results` reads them; nothing on the page is fetched from anywhere.
package report

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"arcbench/shared/arcdata"
	"arcbench/shared/model"
	"arcbench/shared/scoring"
	"arcbench/shared/store"
)

// Source is where a report reads a run: its records and its bucket's objects.
type Source interface {
	GetRun(ctx context.Context, runID string) (*store.Run, error)
	EachTask(ctx context.Context, runID string, fn func(store.Task) error) error
	// Object is an object's body; nil (and no error) when there is none.
	Object(ctx context.Context, key string) ([]byte, error)
}

// Run is the page's header: a run's figures, counted from its task records.
type Run struct {
	RunID       string   `json:"run_id"`
	ConfigName  string   `json:"config_name"`
	DataSource  string   `json:"data_source"`
	Status      string   `json:"status"`
	CreatedAt   string   `json:"created_at"`
	TriggeredBy string   `json:"triggered_by"`
	Score       *float64 `json:"score"`
	ScoredTasks int      `json:"scored_tasks"`
	StrictScore *float64 `json:"strict_score"`
	Total       int      `json:"total_tasks"`
	Completed   int      `json:"completed_tasks"`
	Failed      int      `json:"failed_tasks"`
	Pending     int      `json:"pending_tasks"`
	// NotRun never ran: the run was stopped (NOT_RUN), or ended before
	// them; ScoreOverRun is the score over the tasks that ran.
	NotRun       int      `json:"not_run_tasks"`
	ScoreOverRun *float64 `json:"score_over_run_tasks"`
	StopReason   string   `json:"stop_reason,omitempty"`
	Unscored     int      `json:"unscored_tasks"`
	Unanswered   int      `json:"unanswered_tasks"`
	// AfterJobFailure are tasks completed before their job failed (their
	// answers may be partial).
	AfterJobFailure int `json:"completed_after_job_failure"`
	Solved          int `json:"solved_tasks"`
	// CostUSD is the model's cost, ComputeCostUSD the Fargate cost of the
	// jobs (UnpricedJobs left out), CostWithComputeUSD both; CostPerTask is
	// that sum per task, which the score-against-cost chart plots.
	CostUSD            string  `json:"total_cost_usd"`
	ComputeCostUSD     string  `json:"compute_cost_usd"`
	CostWithComputeUSD string  `json:"cost_with_compute_usd"`
	UnpricedJobs       int     `json:"unpriced_jobs,omitempty"`
	CostPerTask        float64 `json:"cost_per_task_usd"`
	TokensIn           int64   `json:"total_input_tokens"`
	TokensOut          int64   `json:"total_output_tokens"`
	WallSeconds        float64 `json:"wall_seconds"`
	Attempts           int     `json:"attempts"`
	Retries            int     `json:"retries"`
	GeneratedAt        string  `json:"generated_at"`
	LastError          string  `json:"last_error,omitempty"`
	ErrorsInData       int     `json:"invalid_tasks,omitempty"`
	// UnreadableCosts are the tasks whose cost CostUSD leaves out.
	UnreadableCosts int `json:"unreadable_costs,omitempty"`
	// Resumes is how many times the run was resumed, Executions how many
	// ran it; ActiveSeconds is the sum of their run times, SpanSeconds the
	// time from its first start to its last end.
	Resumes       int     `json:"resumes"`
	Executions    int     `json:"executions"`
	ActiveSeconds float64 `json:"active_seconds"`
	SpanSeconds   float64 `json:"span_seconds"`
	// ReusedTasks took their results from run ReusedFrom instead of
	// running; ReusedCostUSD is what they cost there, not in CostUSD.
	ReusedFrom    string `json:"reused_from,omitempty"`
	ReusedTasks   int    `json:"reused_tasks,omitempty"`
	ReusedCostUSD string `json:"reused_cost_usd,omitempty"`
}

// Kinds of task, as the page filters them.
const (
	KindFailed   = "failed"   // FAILED or FAILED_PERMANENT
	KindUnsolved = "unsolved" // completed, score 0
	KindPartial  = "partial"  // completed, some test pairs right
	KindSolved   = "solved"   // completed, score 1
	KindUnscored = "unscored" // completed, no expected output to score against
	KindPending  = "pending"  // not finished
	KindNotRun   = "notrun"   // never run: the run was stopped, or ended, first
)

// Task is one task on the page. Grids are rows of digits ("0120"): one
// character per cell, the ARC colour 0–9, the most compact form a browser
// reads at once.
type Task struct {
	ID           string   `json:"id"`
	Kind         string   `json:"kind"`
	Status       string   `json:"status"`
	Score        *float64 `json:"score"`
	Pairs        int      `json:"pairs"`
	PairsCorrect int      `json:"pairs_correct"`
	CostUSD      string   `json:"cost,omitempty"`
	// ComputeCostUSD is the Fargate cost of the task's jobs, every attempt.
	ComputeCostUSD string `json:"compute_cost,omitempty"`
	TokensIn       int64  `json:"tokens_in,omitempty"`
	TokensOut      int64  `json:"tokens_out,omitempty"`
	Attempts       int    `json:"attempts"`
	Reason         string `json:"reason,omitempty"`
	ExitCode       *int   `json:"exit_code,omitempty"`
	// WorkerError is what the worker itself recorded of its last failure.
	WorkerError string `json:"worker_error,omitempty"`
	// JobError is the failure of the job that ended after the task was
	// completed; Stopped says it was the job's time limit.
	JobError   string `json:"job_error,omitempty"`
	Stopped    bool   `json:"stopped_at_time_limit,omitempty"`
	Unanswered bool   `json:"unanswered,omitempty"`
	Note       string `json:"note,omitempty"`
	// ReusedFrom is the run whose result (answers, marks) the task took
	// instead of running; ReusedCostUSD what it cost there.
	ReusedFrom    string `json:"reused_from,omitempty"`
	ReusedCostUSD string `json:"reused_cost,omitempty"`
	// History is what the task was each time a resume ran it again, oldest first.
	History []Earlier `json:"history,omitempty"`
	Tests   []Test    `json:"tests,omitempty"`
}

// Earlier is what a task was when a resume released it to run again.
type Earlier struct {
	At       string `json:"at"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
}

// Test is one test pair: its input, its expected output (none when withheld)
// and each attempt's answer.
type Test struct {
	Input    []string  `json:"input"`
	Expected []string  `json:"expected,omitempty"`
	Answers  []Attempt `json:"answers"`
}

// Attempt is one attempt's answer; Grid is nil for an empty attempt, and
// Correct is nil when there is no expected output to hold it against.
type Attempt struct {
	Name    string   `json:"name"`
	Grid    []string `json:"grid"`
	Correct *bool    `json:"correct"`
}

// Palette is the standard ARC palette: the colour of each cell value 0–9.
var Palette = []string{"#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF", "#870C25"}

// Page is everything a report page shows.
type Page struct {
	Palette []string `json:"palette"`
	Run     Run      `json:"run"`
	Tasks   []Task   `json:"tasks"`
}

// readers bounds the objects read at once (task data and submissions).
const readers = 16

// Build reads a run and everything its page shows: the task records, each
// task's data and submission (at most readers at a time). Tasks come in the
// order that puts what needs a look first: failed, unsolved, partly solved,
// unscored, unfinished, solved; by id within each.
func Build(ctx context.Context, src Source, runID string, now time.Time) (*Page, error) {
	run, err := src.GetRun(ctx, runID)
	if err != nil {
		return nil, err
	}
	var tally store.Tally
	var records []store.Task
	if err := src.EachTask(ctx, runID, func(t store.Task) error {
		tally.Add(t)
		records = append(records, t)
		return nil
	}); err != nil {
		return nil, err
	}
	page := &Page{Palette: Palette, Run: header(run, &tally, now), Tasks: make([]Task, len(records))}

	// Each task's grids, read concurrently.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan int)
	)
	for range readers {
		wg.Go(func() {
			for i := range next {
				t, err := task(ctx, src, run, records[i])
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				page.Tasks[i] = t
				mu.Unlock()
			}
		})
	}
	for i := range records {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	reused := 0
	for _, t := range page.Tasks {
		page.Run.Attempts += t.Attempts
		if t.Kind == KindSolved {
			page.Run.Solved++
		}
		if t.ReusedFrom != "" {
			reused++
		}
	}
	// A reused task made no attempt in this run: it is not one that ran.
	page.Run.Retries = max(0, page.Run.Attempts-(page.Run.Total-page.Run.Pending-page.Run.NotRun-reused))
	sort.SliceStable(page.Tasks, func(i, j int) bool {
		a, b := rank[page.Tasks[i].Kind], rank[page.Tasks[j].Kind]
		if a != b {
			return a < b
		}
		return page.Tasks[i].ID < page.Tasks[j].ID
	})
	return page, nil
}

// rank is the order of kinds on the page: what needs a look first.
var rank = map[string]int{KindFailed: 0, KindUnsolved: 1, KindPartial: 2, KindUnscored: 3, KindPending: 4, KindNotRun: 5, KindSolved: 6}

func header(run *store.Run, tally *store.Tally, now time.Time) Run {
	c := &tally.Counts
	if run.Status != model.RunRunning {
		c.Ended()
	}
	h := Run{
		RunID: run.RunID, ConfigName: run.ConfigName, DataSource: run.DataSource, Status: run.Status,
		CreatedAt: run.CreatedAt, TriggeredBy: run.TriggeredBy,
		Score: c.Score(), ScoredTasks: c.Scored(), StrictScore: c.StrictScore(), Total: c.Total, Completed: c.Completed, Failed: c.Failed,
		Pending: c.Pending, NotRun: c.NotRun, ScoreOverRun: c.ScoreOverRun(), StopReason: run.StopReason, Unscored: c.Unscored, Unanswered: c.Unanswered, AfterJobFailure: c.AfterJobFailure, CostUSD: tally.Cost.String(),
		TokensIn: tally.TokensIn, TokensOut: tally.TokensOut, GeneratedAt: model.FormatTime(now),
		ErrorsInData: tally.InvalidTasks, UnreadableCosts: tally.UnreadableCosts,
		ComputeCostUSD: tally.Compute.String(), CostWithComputeUSD: tally.Cost.Plus(&tally.Compute).String(), UnpricedJobs: tally.UnpricedJobs,
	}
	if cost, err := tally.Cost.Plus(&tally.Compute).Number().Float64(); err == nil && c.Total > 0 {
		h.CostPerTask = cost / float64(c.Total)
	}
	h.WallSeconds = run.DurationSeconds
	if h.WallSeconds == 0 {
		if started, err := model.ParseTime(run.CreatedAt); err == nil {
			end := now
			if done, err := model.ParseTime(run.CompletedAt); err == nil {
				end = done
			}
			h.WallSeconds = end.Sub(started).Seconds()
		}
	}
	if run.LastErrorType != "" {
		h.LastError = run.LastErrorType + ": " + firstLine(run.LastErrorCause)
	}
	active, span := run.Times(now)
	h.Resumes, h.Executions = run.Resumes(), max(1, len(run.Executions))
	h.ActiveSeconds, h.SpanSeconds = active.Seconds(), span.Seconds()
	if run.ReusedFrom != "" {
		h.ReusedFrom, h.ReusedTasks, h.ReusedCostUSD = run.ReusedFrom, tally.Reused, tally.ReusedCost.String()
	}
	return h
}

// task is one task's tile and details: its record, and its grids from the
// task data and the submission. The marks drawn are those check-task stored
// when it scored the task (the data may have changed since: then a note
// says so); only a task scored before marks were stored is marked afresh.
func task(ctx context.Context, src Source, run *store.Run, r store.Task) (Task, error) {
	t := Task{ID: r.TaskID, Status: r.Status, Score: r.Score, PairsCorrect: r.PairsCorrect,
		CostUSD: r.CostUSD, ComputeCostUSD: r.ComputeCostUSD, TokensIn: r.TokensInput, TokensOut: r.TokensOutput,
		Reason: r.Reason, ExitCode: r.ExitCode, Attempts: attempts(r), WorkerError: r.WorkerError,
		ReusedFrom: r.ReusedFrom, ReusedCostUSD: r.ReusedCostUSD}
	for _, h := range r.History {
		t.History = append(t.History, earlier(h))
	}
	if r.Pairs != nil {
		t.Pairs = *r.Pairs
	}
	t.Kind = kind(r)
	if t.Kind == KindPending && run.Status != model.RunRunning {
		// The run has ended: this task never will.
		t.Kind = KindNotRun
	}
	if r.Status == model.TaskCompleted {
		t.JobError, t.Stopped, t.Unanswered = r.JobError, model.StoppedAtTimeLimit(r.JobError), r.Unanswered()
	}
	if t.Kind == KindFailed && t.Reason == "" {
		t.Reason = r.LastErrorType
		if r.LastErrorType == model.ErrNoAnswer || r.GivenUp {
			t.Reason += ": " + firstLine(r.LastErrorCause)
		}
	}
	var notes []string
	if r.ScoreError != "" {
		notes = append(notes, r.ScoreError)
	}
	for _, v := range r.Invalid {
		notes = append(notes, fmt.Sprintf("%s=%s: %s", v.Attribute, v.Value, v.Reason))
	}
	key := model.TaskDataKey(run.DataSource, r.TaskID)
	data, err := src.Object(ctx, key)
	if err != nil {
		return t, err
	}
	var arc arcdata.Task
	if data == nil || json.Unmarshal(data, &arc) != nil {
		notes = append(notes, "no readable task data at "+key)
		t.Note = strings.Join(notes, "; ")
		return t, nil
	}
	if r.DataSHA256 != "" {
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != r.DataSHA256 {
			notes = append(notes, "the task data at "+key+" changed since this task was scored: the expected outputs shown are today's, the marks are as scored")
		}
	}
	var pairs [][]scoring.Answer
	if r.Status == model.TaskCompleted {
		key := r.SubmissionKey(run.RunID)
		sub, err := src.Object(ctx, key)
		if err != nil {
			return t, err
		}
		if sub != nil {
			read, _ := scoring.Read(arc, bytes.NewReader(sub))
			pairs = read.Pairs
		}
	}
	for i, p := range arc.Test {
		test := Test{Input: rows(p.Input), Expected: rows(p.Output), Answers: []Attempt{}}
		var stored string
		if i < len(r.Marks) {
			stored = r.Marks[i]
		}
		if i < len(pairs) {
			for j, a := range pairs[i] {
				at := Attempt{Name: a.Attempt, Grid: rows(a.Grid)}
				switch {
				case len(stored) == len(pairs[i]):
					ok := stored[j] == '1'
					at.Correct = &ok
				case p.Output != nil:
					ok := a.Correct
					at.Correct = &ok
				}
				test.Answers = append(test.Answers, at)
			}
		}
		t.Tests = append(t.Tests, test)
	}
	t.Note = strings.Join(notes, "; ")
	return t, nil
}

// earlier is a history entry as the page shows it: its error briefly, as
// a failed task's reason (the worker's own words, or a NoAnswer's cause).
func earlier(h model.TaskHistoryEntry) Earlier {
	said := ""
	switch {
	case h.WorkerError != "":
		said = firstLine(h.WorkerError)
	case h.LastErrorType == model.ErrNoAnswer:
		said = firstLine(h.LastErrorCause)
	}
	return Earlier{At: h.ReleasedAt, Status: h.Status, Attempts: attempts(store.Task{Status: h.Status, RetryCount: h.RetryCount}),
		Error: strings.Join(slices.DeleteFunc([]string{h.LastErrorType, said}, func(s string) bool { return s == "" }), ": ")}
}

// attempts is how many attempts a task has had: every failed one, and the
// one that completed it (or is under way); none for a task reused from
// another run, which ran there.
func attempts(r store.Task) int {
	if r.ReusedFrom != "" {
		return 0
	}
	switch r.Status {
	case model.TaskCompleted, model.TaskInProgress:
		return r.RetryCount + 1
	}
	return r.RetryCount
}

func kind(r store.Task) string {
	switch r.Status {
	case model.TaskFailed, model.TaskFailedPermanent:
		return KindFailed
	case model.TaskNotRun:
		return KindNotRun
	case model.TaskCompleted:
	default:
		return KindPending
	}
	switch {
	case r.Pairs != nil && *r.Pairs == 0 && r.Score == nil:
		return KindUnscored
	case r.Score == nil || *r.Score == 0:
		return KindUnsolved
	case *r.Score >= 1:
		return KindSolved
	}
	return KindPartial
}

// rows writes a grid as rows of digits; nil stays nil. A cell outside 0–9
// (the data is not ARC's) is drawn as "?".
func rows(g arcdata.Grid) []string {
	if g == nil {
		return nil
	}
	out := make([]string, len(g))
	for i, row := range g {
		b := make([]byte, len(row))
		for j, c := range row {
			if c >= 0 && c <= 9 {
				b[j] = byte('0' + c)
			} else {
				b[j] = '?'
			}
		}
		out[i] = string(b)
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
