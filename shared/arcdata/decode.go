package arcdata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// A task's JSON is read strictly, the way the benchmark's Python worker reads
// it (task["train"], pair["input"], cells as written): Go's decoder alone
// would match "Train" to train, keep the first or the last of a repeated
// key as it happens to, and skip keys it does not know, so a file the
// uploader accepted could still fail (or read otherwise) in the worker.
//
// The rules, with Validate's: the task is an object with exactly "train" and
// "test", each a list of pairs; a pair is an object with "input" and
// "output" and nothing else (a test pair's "output" may be left out, when
// the answer is withheld); no key appears twice; every grid is a list of
// rows, every row a list of cells, every cell an integer written as one
// (1, not 1.0 or "1").

// Decode reads one ARC task file's bytes and checks it (Validate): the one
// test of a task file that the loader, the uploader and, through
// Task.UnmarshalJSON, every reader of a task use. Its error is one line and
// names the field at fault, e.g. "test[0].output: 31 rows, ARC grids have 1
// to 30".
func Decode(body []byte) (Task, error) {
	var raw json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return Task{}, fmt.Errorf("not an ARC task (want {\"train\":[...],\"test\":[...]}): %w", err)
	}
	// A second value after the task is a broken file, not a task.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Task{}, errors.New("not an ARC task: more data after the task's JSON object")
	}
	t, err := readTask(raw)
	if err != nil {
		return Task{}, err
	}
	if err := t.Validate(); err != nil {
		// Validate joins its problems with newlines; one line names them all.
		return Task{}, errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return t, nil
}

// UnmarshalJSON reads a task by Decode's rules of shape (exact keys, none
// twice, integer cells); what Validate checks is left to Validate, as
// before, so that a reader says which it was.
func (t *Task) UnmarshalJSON(b []byte) error {
	task, err := readTask(b)
	if err != nil {
		return err
	}
	*t = task
	return nil
}

// MarshalJSON writes a task in ARC's shape, an absent list of pairs as []
// (not null, which no reader of tasks accepts).
func (t Task) MarshalJSON() ([]byte, error) {
	type plain Task // Task's fields and tags, without its methods
	p := plain(t)
	if p.Train == nil {
		p.Train = []Pair{}
	}
	if p.Test == nil {
		p.Test = []Pair{}
	}
	return json.Marshal(p)
}

// taskReader walks one task's JSON token by token.
type taskReader struct{ dec *json.Decoder }

// readTask reads the task in b, a single JSON value.
func readTask(b []byte) (Task, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	r := &taskReader{dec: dec}
	var t Task
	tok, err := r.token()
	if err != nil {
		return Task{}, err
	}
	if tok != json.Delim('{') {
		return Task{}, fmt.Errorf("not an ARC task: %s, want an object {\"train\":[...],\"test\":[...]}", describe(tok))
	}
	seen := map[string]bool{}
	for dec.More() {
		key, err := r.key()
		if err != nil {
			return Task{}, err
		}
		switch {
		case key != "train" && key != "test":
			return Task{}, fmt.Errorf("unknown key %q: an ARC task has exactly \"train\" and \"test\", in lower case", key)
		case seen[key]:
			return Task{}, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		pairs, err := r.pairs(key)
		if err != nil {
			return Task{}, err
		}
		if key == "train" {
			t.Train = pairs
		} else {
			t.Test = pairs
		}
	}
	if _, err := r.token(); err != nil { // the closing brace
		return Task{}, err
	}
	for _, key := range []string{"train", "test"} {
		if !seen[key] {
			return Task{}, fmt.Errorf("no %q key: an ARC task has exactly \"train\" and \"test\"", key)
		}
	}
	return t, nil
}

func (r *taskReader) token() (json.Token, error) {
	tok, err := r.dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not an ARC task: %w", err)
	}
	return tok, nil
}

// key reads an object's key (the decoder has checked it is a string).
func (r *taskReader) key() (string, error) {
	tok, err := r.token()
	if err != nil {
		return "", err
	}
	key, _ := tok.(string)
	return key, nil
}

// pairs reads the list of pairs at path ("train" or "test").
func (r *taskReader) pairs(path string) ([]Pair, error) {
	tok, err := r.token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("%s: %s, want a list of pairs", path, describe(tok))
	}
	pairs := []Pair{}
	for i := 0; r.dec.More(); i++ {
		p, err := r.pair(fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, p)
	}
	_, err = r.token() // ]
	return pairs, err
}

// pair reads one pair; a key left out stays nil, for Validate to judge.
func (r *taskReader) pair(path string) (Pair, error) {
	var p Pair
	tok, err := r.token()
	if err != nil {
		return p, err
	}
	if tok != json.Delim('{') {
		return p, fmt.Errorf("%s: %s, want a pair {\"input\":[[...]],\"output\":[[...]]}", path, describe(tok))
	}
	seen := map[string]bool{}
	for r.dec.More() {
		key, err := r.key()
		if err != nil {
			return p, err
		}
		switch {
		case key != "input" && key != "output":
			return p, fmt.Errorf("%s: unknown key %q: an ARC pair has only \"input\" and \"output\", in lower case", path, key)
		case seen[key]:
			return p, fmt.Errorf("%s: key %q appears twice", path, key)
		}
		seen[key] = true
		g, err := r.grid(path + "." + key)
		if err != nil {
			return p, err
		}
		if key == "input" {
			p.Input = g
		} else {
			p.Output = g
		}
	}
	_, err = r.token() // }
	return p, err
}

// grid reads the grid at path: a list of rows of integer cells. Its size
// and colours are Validate's to check; an empty list is an empty grid, not
// a missing one.
func (r *taskReader) grid(path string) (Grid, error) {
	tok, err := r.token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('[') {
		err := fmt.Errorf("%s: %s, want a grid (a list of rows of integers 0-9)", path, describe(tok))
		if tok == nil && strings.HasPrefix(path, "test[") && strings.HasSuffix(path, ".output") {
			err = fmt.Errorf("%w; to withhold a test output, leave its key out", err)
		}
		return nil, err
	}
	g := Grid{}
	for i := 0; r.dec.More(); i++ {
		tok, err := r.token()
		if err != nil {
			return nil, err
		}
		if tok != json.Delim('[') {
			return nil, fmt.Errorf("%s: row %d is %s, want a list of cells", path, i, describe(tok))
		}
		row := []int{}
		for j := 0; r.dec.More(); j++ {
			tok, err := r.token()
			if err != nil {
				return nil, err
			}
			c, err := cell(tok)
			if err != nil {
				return nil, fmt.Errorf("%s: cell [%d][%d] is %s", path, i, j, err)
			}
			row = append(row, c)
		}
		if _, err := r.token(); err != nil { // ]
			return nil, err
		}
		g = append(g, row)
	}
	_, err = r.token() // ]
	return g, err
}

// cell reads a cell: an integer, written as one. Its range is Validate's to
// check, except that of an integer too large for an int.
func cell(tok json.Token) (int, error) {
	n, ok := tok.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%s, not an integer 0-9", describe(tok))
	}
	s := n.String()
	if strings.ContainsAny(s, ".eE") {
		return 0, fmt.Errorf("%s, not an integer 0-9 (write colours as integers)", s)
	}
	c, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s, not a colour 0-9", s)
	}
	return c, nil
}

// describe names a JSON value by its first token, for an error.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return "the number " + v.String()
	case string:
		const most = 20
		if len(v) > most {
			return fmt.Sprintf("the string %q...", v[:most])
		}
		return fmt.Sprintf("the string %q", v)
	case json.Delim:
		if v == '[' {
			return "a list"
		}
		return "an object"
	}
	return fmt.Sprint(tok)
}
