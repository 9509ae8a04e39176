package scoring

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"arcbench/shared/arcdata"
)

// MaxGridSide is the most rows or columns an ARC grid has.
const MaxGridSide = 30

// maxKeptCells bounds the cells of the grids a Submission keeps (8 MiB,
// over a thousand 30x30 grids): past it, answers are still scored, their
// grids not kept.
const maxKeptCells = 1 << 20

// maxAttempts bounds the attempts read in one element, and maxListed those
// listed in a Submission: ARC asks for two per test pair, and a
// submission with thousands must not exhaust check-task's memory. Past
// maxListed, attempts are still scored.
const (
	maxAttempts = 10000
	maxListed   = 10000
)

// maxNotes bounds Submission.Notes: a submission may hold any number of
// faults, a note is for people.
const maxNotes = 20

// refused ends a note on what the official scorer rejects: it validates the
// whole submission (BenchmarkedTaskResults) before scoring, so one bad
// attempt aborts its run.
const refused = ": the ARC Prize scorer would refuse the submission"

// Answer is one attempt placed at a test pair.
type Answer struct {
	// Attempt is its key in the element: "attempt_1", "attempt_2", ...
	Attempt string
	// Grid is the coerced grid; nil when the attempt is null, empty ([] or
	// [[]]), unreadable, or larger than MaxGridSide (and than the task's
	// outputs) in either dimension: too large to keep. (Also nil past the
	// first 2^20 cells of grids a submission holds, with a note.)
	Grid arcdata.Grid
	// Empty: no grid (a null attempt, a [] or [[]] answer, or nothing
	// readable).
	Empty bool
	// Correct: the answer equals the test pair's expected output.
	Correct bool
}

// Submission is a submission read against a task.
type Submission struct {
	// Pairs[i] are the attempts placed at test pair i, in element order
	// then attempt-key order.
	Pairs [][]Answer
	// Answered counts the attempts (placed or not) whose answer is a
	// readable grid with at least one cell: 0 means the submission holds no
	// answer at all.
	Answered int
	// Notes say what could not be read or placed, and where the ARC Prize
	// scorer would differ or refuse; each names its element and attempt.
	Notes []string

	solved     []bool // test pairs an attempt answers right, listed or not
	answeredBy []int  // elements with an answer placed at each test pair
	listed     int    // attempts placed
	dropped    int    // notes over maxNotes
	kept       int    // cells of the grids read and kept
	unkept     int    // grids not kept past maxKeptCells
}

// Read reads a submission from r against task: a JSON list with one object
// per answered test pair, whose "attempt_..." keys hold the attempts, read
// as the official scorer reads it. A document that is not a JSON list, or
// not JSON, is an error (the Submission then holds what was read before);
// everything else is read as far as possible, what the official scorer
// would refuse being noted and counted wrong.
//
// Read streams, in bounded memory whatever the document's size: it holds
// one string token at a time (a string answer is parsed in place), reads
// a grid larger than MaxGridSide without keeping it, keeps at most 2^20
// cells of grids in all, lists at most 10,000 attempts (scoring the rest)
// and reads at most 10,000 attempts of an element.
func Read(task arcdata.Task, r io.Reader) (Submission, error) {
	rd := reader{task: task, side: MaxGridSide}
	for _, p := range task.Test { // keep grids as large as an output, so that none is missed
		rd.side = max(rd.side, len(p.Output), width(p.Output))
	}
	rd.sub.Pairs = make([][]Answer, len(task.Test))
	rd.sub.answeredBy = make([]int, len(task.Test))
	rd.sub.solved = make([]bool, len(task.Test))
	s := newScanner(r)
	switch c := s.peek(); {
	case c == '[':
	case kindOf(c) == "not JSON":
		return rd.sub, fmt.Errorf("submission: %w", s.errorf("expected a list"))
	default:
		return rd.sub, fmt.Errorf("submission is %s, not a JSON list of answered test pairs", kindOf(c))
	}
	err := s.list(func(pos int) error { return rd.element(s, pos) })
	if err == nil && !s.atEnd() {
		err = s.errorf("data after the list")
	}
	if err != nil {
		return rd.sub, fmt.Errorf("submission: %w", err)
	}
	rd.finish()
	return rd.sub, nil
}

func width(g arcdata.Grid) int {
	w := 0
	for _, row := range g {
		w = max(w, len(row))
	}
	return w
}

// kindOf names the kind of JSON value starting with c.
func kindOf(c byte) string {
	switch {
	case c == '[':
		return "a list"
	case c == '{':
		return "an object"
	case c == '"':
		return "a string"
	case c == 'n':
		return "null"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == '-' || isDigit(c) || c == 'N' || c == 'I':
		return "a number"
	}
	return "not JSON"
}

type reader struct {
	task  arcdata.Task
	side  int // grids with more rows or columns are not kept
	sub   Submission
	cells cells
	atts  []attempt
}

func (rd *reader) note(format string, args ...any) {
	if len(rd.sub.Notes) >= maxNotes {
		rd.sub.dropped++
		return
	}
	rd.sub.Notes = append(rd.sub.Notes, fmt.Sprintf(format, args...))
}

// attempt is one attempt of an element, as read.
type attempt struct {
	key       string
	null      bool // the value is null: an attempt that never answers
	object    bool // an object, as schemas.py's Attempt must be
	answer    bool // it has an "answer" key
	g         grid
	rows      arcdata.Grid // the grid kept
	matches   []int        // the test pairs whose output the answer equals
	meta      bool         // it has a "metadata" object
	index     int          // its pair_index (clamped when huge), when indexKind is isInt
	indexKind intKind
}

// answers tells whether the attempt's answer is a grid with a cell.
func (a attempt) answers() bool { return a.object && a.g.ok && a.g.cells > 0 }

// element reads one element of the submission: an object whose keys
// starting "attempt_" hold its attempts (schemas.py
// TestPairAttempts.validate_attempts), and places them.
func (rd *reader) element(s *scanner, pos int) error {
	if c := s.peek(); c != '{' {
		rd.note("element %d is %s, not an object of attempts%s", pos, kindOf(c), refused)
		return s.skip()
	}
	atts := rd.atts[:0] // reused: the attempts' grids are not
	keys := 0
	err := s.object(func(key []byte) error {
		if !bytes.HasPrefix(key, []byte("attempt_")) { // exactly that prefix: not "Attempt_1", not "attempt1"
			return s.skip()
		}
		if keys++; keys > maxAttempts {
			if keys == maxAttempts+1 {
				rd.note("element %d has over %d attempts: the rest are not read", pos, maxAttempts)
			}
			return s.skip()
		}
		a, err := rd.attempt(s, string(key))
		atts = append(atts, a)
		return err
	})
	rd.atts = atts
	if err != nil {
		return err
	}
	// Python keeps a duplicate key's last value, and sorts the keys as
	// strings ("attempt_10" before "attempt_2").
	slices.SortStableFunc(atts, func(a, b attempt) int { return strings.Compare(a.key, b.key) })
	last := atts[:0]
	for i, a := range atts {
		if i+1 == len(atts) || atts[i+1].key != a.key {
			last = append(last, a)
		}
	}
	rd.check(pos, last)
	rd.place(pos, last)
	return nil
}

// attempt reads one attempt: null, or an object with an "answer" and a
// "metadata" object whose "pair_index" says which test pair it answers
// (schemas.py Attempt and AttemptMetadata; the other fields are not read).
func (rd *reader) attempt(s *scanner, key string) (attempt, error) {
	a := attempt{key: key, indexKind: notInt}
	if s.peek() != '{' {
		if s.peek() == 'n' {
			l, err := s.literal()
			a.null = l == litNull
			return a, err
		}
		return a, s.skip()
	}
	a.object = true
	err := s.object(func(k []byte) error {
		var err error
		switch string(k) {
		case "answer":
			a.answer = true
			a.g, err = readAnswer(s, rd.side, &rd.cells)
		case "metadata":
			a.meta, a.index, a.indexKind, err = readMetadata(s)
		default:
			err = s.skip()
		}
		return err
	})
	// Compared now, so that a grid need not be kept to be scored.
	if a.answers() && !a.g.large {
		for i, p := range rd.task.Test {
			if p.Output != nil && a.g.equal(p.Output) {
				a.matches = append(a.matches, i)
			}
		}
		if rd.sub.kept += a.g.cells; rd.sub.kept <= maxKeptCells {
			a.rows = a.g.keep()
		} else {
			rd.sub.unkept++
		}
	}
	a.g.buf = nil
	return a, err
}

// readMetadata reads an attempt's metadata for its pair_index: absent, it
// is 0 (AttemptMetadata.pair_index: Optional[int] = 0); present, it is
// coerced as any int.
func readMetadata(s *scanner) (object bool, index int, kind intKind, err error) {
	if s.peek() != '{' {
		return false, 0, notInt, s.skip()
	}
	err = s.object(func(k []byte) error {
		if string(k) != "pair_index" {
			return s.skip()
		}
		var err error
		index, kind, err = s.intValue()
		return err
	})
	return true, index, kind, err
}

// check notes what of an element's attempts the official scorer refuses
// (or we do not keep), and counts its answers.
func (rd *reader) check(pos int, atts []attempt) {
	for _, a := range atts {
		switch {
		case a.null:
		case !a.object:
			rd.note("element %d %s is not an attempt object%s", pos, a.key, refused)
		case !a.answer:
			rd.note("element %d %s has no answer%s", pos, a.key, refused) // check_answer_present raises KeyError
		case !a.g.ok:
			rd.note("element %d %s: answer %s%s", pos, a.key, a.g.why, refused)
		case a.g.large:
			rd.note("element %d %s: answer is %dx%d, larger than any output: not kept", pos, a.key, a.g.n, a.g.width)
		}
		switch {
		case a.object && !a.meta:
			rd.note("element %d %s has no metadata object%s", pos, a.key, refused)
		case a.object && a.indexKind == notInt:
			rd.note("element %d %s: metadata.pair_index is not an integer%s", pos, a.key, refused)
		}
		if a.answers() {
			rd.sub.Answered++
		}
	}
}

// place places an element's attempts (sorted by key) as scoring.py's
// score_task does: at the pair_index of the first non-null attempt whose
// index is a test pair's, else at the element's position; an element
// placed at no test pair is skipped.
func (rd *reader) place(pos int, atts []attempt) {
	n := len(rd.task.Test)
	pair := -1
	for _, a := range atts {
		if !a.object || !a.meta || a.indexKind == notInt {
			continue // no index (the official scorer refuses these)
		}
		if a.indexKind == isNull { // 0 <= None raises TypeError, once the loop gets here
			rd.note("element %d %s: metadata.pair_index is null: the ARC Prize scorer would fail on it", pos, a.key)
			continue
		}
		if 0 <= a.index && a.index < n {
			pair = a.index
			break
		}
		if a.indexKind == isHuge {
			rd.note("element %d %s: metadata.pair_index is out of range", pos, a.key)
		} else {
			rd.note("element %d %s: metadata.pair_index %d is out of range", pos, a.key, a.index)
		}
	}
	if pair < 0 {
		if pos >= n {
			if len(atts) > 0 {
				rd.note("element %d answers no test pair: skipped", pos)
			}
			return
		}
		pair = pos
	}
	answered := false
	for _, a := range atts {
		ans := Answer{Attempt: a.key, Empty: !a.answers()}
		if !ans.Empty && !a.g.large {
			ans.Grid = a.rows
			ans.Correct = slices.Contains(a.matches, pair)
		}
		answered = answered || !ans.Empty
		rd.sub.solved[pair] = rd.sub.solved[pair] || ans.Correct
		if rd.sub.listed++; rd.sub.listed <= maxListed {
			rd.sub.Pairs[pair] = append(rd.sub.Pairs[pair], ans)
		}
	}
	if answered {
		rd.sub.answeredBy[pair]++
	}
}

// finish notes the test pairs several elements answer: we count a pair
// once, score_task counts each element that solves it (so a task can
// score over 1).
func (rd *reader) finish() {
	var dup []string
	for i, n := range rd.sub.answeredBy {
		if n > 1 {
			dup = append(dup, fmt.Sprintf("test pair %d is answered by %d elements: counted once; the ARC Prize scorer would count each", i, n))
		}
	}
	notes := append(dup, rd.sub.Notes...)
	if len(notes) > maxNotes {
		rd.sub.dropped += len(notes) - maxNotes
		notes = notes[:maxNotes]
	}
	if rd.sub.listed > maxListed {
		notes = append(notes, fmt.Sprintf("%d attempts past the first %d are scored, not listed", rd.sub.listed-maxListed, maxListed))
	}
	if rd.sub.unkept > 0 {
		notes = append(notes, fmt.Sprintf("%d grids past the first %d cells are scored, not kept", rd.sub.unkept, maxKeptCells))
	}
	if rd.sub.dropped > 0 {
		notes = append(notes, fmt.Sprintf("and %d more notes", rd.sub.dropped))
	}
	rd.sub.Notes = notes
}
