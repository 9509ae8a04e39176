// Package scoring is the official ARC-AGI score of a task, computed from the
// worker's submission and the task data as the ARC Prize's scorer computes
// it (arcprize/arc-agi-benchmarking at 28e67d5: scoring/scoring.py,
// schemas.py, utils/parsing.py; checked by running it, pydantic 2.13.4): a
// test pair is solved when any attempt placed at it equals its expected
// output, and a task scores the share of its test pairs solved. A run's
// score is the mean over its tasks (model.Counts).
//
// Read takes every submission shape that scorer accepts, as it does: the
// "attempt_..." keys of each element in string order; placement by
// metadata.pair_index, else by position; cells and indexes coerced to
// ints as pydantic v2 does ("1", 1.0 and true are 1); string answers
// parsed as parse_and_validate_json does. Each rule cites its source.
//
// Where we differ, deliberately:
//   - A test pair counts once, however many elements answer it; the ARC
//     Prize scorer counts every element that solves it, so that a task can
//     score over 1. A note says so.
//   - Test pairs without an expected output are left out of the share, and
//     a task with none is unscored (Score nil); the ARC Prize scorer
//     counts them unsolved.
//   - What the ARC Prize scorer refuses (it validates the whole submission
//     before scoring, and an error aborts its run) we read as far as it
//     goes, and say so in a note: an element that is not an object
//     answers nothing; an attempt that is not an object, has no answer, or
//     whose answer is neither a grid of integers nor a string holding one
//     is wrong; an attempt with no metadata, a pair_index that is not an
//     integer, or a null one where its placement loop would fail on it, is
//     placed as if it had no index (by the next attempt's, else by
//     position).
//   - Of an attempt's metadata we read pair_index only: its other fields,
//     which the ARC Prize scorer requires and checks (model, provider,
//     timestamps, choices, kwargs, usage, cost), and "correct", are not
//     checked.
//   - For bounded memory, an element's attempts past its 10,000th are not
//     read (a note says so).
//   - Python's JSON limits are not reproduced: the ARC Prize scorer cannot
//     load a document with an integer over 4300 digits, nesting beyond its
//     recursion limit or invalid UTF-8; we read it.
package scoring

import (
	"io"
	"strings"

	"arcbench/shared/arcdata"
)

// Result is one task's score.
type Result struct {
	// Pairs are the task's test pairs that have an expected output; 0 means
	// the task cannot be scored (Score is then nil).
	Pairs int
	// PairsCorrect are those an attempt answered exactly.
	PairsCorrect int
	// Score is PairsCorrect / Pairs, nil when Pairs is 0.
	Score *float64
	// Answered is Submission.Answered: 0 when the submission holds no answer.
	Answered int
	// Marks[i] is test pair i's attempts as placed: one byte per attempt,
	// '1' correct, '0' wrong, '-' empty (no grid). len(Marks) == len(task.Test).
	Marks []string
	// Notes are Submission.Notes.
	Notes []string
}

// Correct tells whether every scorable test pair was solved.
func (r Result) Correct() bool { return r.Pairs > 0 && r.PairsCorrect == r.Pairs }

// Score scores a submission read from r (see Read). On a Read error it
// returns a Result with Score 0 (nil when the task is unscorable), Marks
// of empty strings, and the error.
func Score(task arcdata.Task, r io.Reader) (Result, error) {
	res := Result{Marks: make([]string, len(task.Test))}
	for _, p := range task.Test {
		if p.Output != nil {
			res.Pairs++
		}
	}
	if res.Pairs > 0 {
		res.Score = new(float64)
	}
	sub, err := Read(task, r)
	if err != nil {
		return res, err
	}
	res.Answered, res.Notes = sub.Answered, sub.Notes
	for i, answers := range sub.Pairs {
		var b strings.Builder
		for _, a := range answers {
			switch {
			case a.Correct:
				b.WriteByte('1')
			case a.Empty:
				b.WriteByte('-')
			default:
				b.WriteByte('0')
			}
		}
		res.Marks[i] = b.String()
		if task.Test[i].Output != nil && sub.solved[i] {
			res.PairsCorrect++
		}
	}
	if res.Pairs > 0 {
		*res.Score = float64(res.PairsCorrect) / float64(res.Pairs)
	}
	return res, nil
}
