// Package scoring is the official ARC-AGI score of a task, computed from the
// worker's submission and the task data, as the ARC Prize scores it: a test
// pair is solved when any attempt's answer equals its expected output, and a
// task scores the share of its test pairs solved. A run's score is the mean
// over its tasks (model.Counts).
package scoring

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"arcbench/shared/arcdata"
)

// Result is one task's score.
type Result struct {
	// Pairs are the task's test pairs that have an expected output; 0 means
	// the task cannot be scored (Score is then nil).
	Pairs int
	// PairsCorrect are those any attempt answered exactly.
	PairsCorrect int
	// Score is PairsCorrect / Pairs, nil when Pairs is 0.
	Score *float64
	// Ignored lists what of the submission could not be read or placed (an
	// element that is not an object, a pair index out of range, an answer
	// that is not a grid): it counts as a wrong answer, and is said so.
	Ignored []string
}

// Correct tells whether every scorable test pair was solved.
func (r Result) Correct() bool { return r.Pairs > 0 && r.PairsCorrect == r.Pairs }

// attempt is one answer in a submission: its grid and the test pair it
// answers (metadata.pair_index). Everything else the worker records is ours
// to ignore.
type attempt struct {
	Answer   json.RawMessage `json:"answer"`
	Metadata struct {
		PairIndex *int `json:"pair_index"`
	} `json:"metadata"`
}

// Answer is one attempt's answer to one test pair, as the submission places it.
type Answer struct {
	// Attempt names it in the submission ("attempt_1", "attempt_2", ...).
	Attempt string
	// Grid is the answer; nil for an empty attempt (no parsable answer).
	Grid arcdata.Grid
	// Correct: the grid equals the pair's expected output.
	Correct bool
}

// Place reads a submission in the benchmark's shape (a JSON list with one
// element per answered test pair, each an object of attempts "attempt_1",
// "attempt_2", ...; null when empty) and places each attempt at the test
// pair it answers: by its metadata.pair_index, else by the element's
// position (pairs without any answer are left out of the list). answers[i]
// are pair i's attempts, in attempt order. What cannot be read or placed is
// listed in ignored; a submission that is not a JSON list is an error.
func Place(task arcdata.Task, submission []byte) (answers [][]Answer, ignored []string, err error) {
	answers = make([][]Answer, len(task.Test))
	var elements []json.RawMessage
	if err := json.Unmarshal(submission, &elements); err != nil {
		return answers, nil, fmt.Errorf("submission is not a JSON list of answered test pairs: %w", err)
	}
	for i, raw := range elements {
		var attempts map[string]json.RawMessage
		if err := json.Unmarshal(raw, &attempts); err != nil || attempts == nil {
			ignored = append(ignored, fmt.Sprintf("element %d is not an object of attempts", i))
			continue
		}
		placed, index := readAttempts(i, attempts, &ignored)
		if index < 0 || index >= len(task.Test) {
			ignored = append(ignored, fmt.Sprintf("element %d answers test pair %d of %d", i, index, len(task.Test)))
			continue
		}
		want := task.Test[index].Output
		for j := range placed {
			got := placed[j].Grid
			placed[j].Correct = want != nil && len(got) > 0 && arcdata.Equal(got, want)
		}
		answers[index] = append(answers[index], placed...)
	}
	return answers, ignored, nil
}

// Score scores a submission against the task's data (see Place for its
// shape). A pair is solved when any of its attempts is correct; empty
// answers never match. A submission that is not a JSON list is an error;
// the task then scores 0.
func Score(task arcdata.Task, submission []byte) (Result, error) {
	var r Result
	for _, p := range task.Test {
		if p.Output != nil {
			r.Pairs++
		}
	}
	if r.Pairs == 0 {
		return r, nil
	}
	zero := 0.0
	r.Score = &zero
	answers, ignored, err := Place(task, submission)
	r.Ignored = ignored
	if err != nil {
		return r, err
	}
	for i, p := range task.Test {
		if p.Output != nil && slices.ContainsFunc(answers[i], func(a Answer) bool { return a.Correct }) {
			r.PairsCorrect++
		}
	}
	s := float64(r.PairsCorrect) / float64(r.Pairs)
	r.Score = &s
	return r, nil
}

// readAttempts decodes one element's attempts (empty ones included, with no
// grid) and the pair they answer (the first pair_index in attempt order,
// else the element's position).
func readAttempts(position int, attempts map[string]json.RawMessage, ignored *[]string) ([]Answer, int) {
	index := -1
	var placed []Answer
	for _, name := range slices.Sorted(maps.Keys(attempts)) {
		raw := attempts[name]
		if !strings.HasPrefix(name, "attempt") || string(raw) == "null" {
			continue
		}
		var a attempt
		if err := json.Unmarshal(raw, &a); err != nil {
			*ignored = append(*ignored, fmt.Sprintf("element %d: %s is not an attempt object", position, name))
			continue
		}
		if a.Metadata.PairIndex != nil && index < 0 {
			index = *a.Metadata.PairIndex
		}
		ans := Answer{Attempt: name}
		if len(a.Answer) > 0 && string(a.Answer) != "null" {
			if err := json.Unmarshal(a.Answer, &ans.Grid); err != nil {
				*ignored = append(*ignored, fmt.Sprintf("element %d: %s's answer is not a grid of integers", position, name))
				continue
			}
		}
		placed = append(placed, ans)
	}
	if index < 0 {
		index = position
	}
	return placed, index
}
