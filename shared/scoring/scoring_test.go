package scoring_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"arcbench/shared/arcdata"
	"arcbench/shared/scoring"
)

// The official cases: submissions the ARC Prize scorer (arc-agi-benchmarking
// at 28e67d5, pydantic 2.13.4) was run on, with what it gave, and what we
// give. Numbered as the cases first run on it (1-44, 64-122); p and s are
// more, run for this port. T1 has one test pair whose output is G; T2 has
// two, G and H.
const (
	G = `[[1,1],[1,1]]`
	H = `[[2,2]]`
	// meta is the metadata an official attempt carries (AttemptMetadata's
	// required fields).
	meta = `"model":"m","provider":"p","start_timestamp":"2023-01-01T00:00:00","end_timestamp":"2023-01-01T00:00:01",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"c"}}],"kwargs":{},` +
		`"usage":{"prompt_tokens":10,"completion_tokens":10,"total_tokens":20,"completion_tokens_details":{"reasoning_tokens":5,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},` +
		`"cost":{"prompt_cost":0.05,"completion_cost":0.05,"total_cost":0.1}`
	noIndex = "" // A's index when the metadata has no pair_index
)

// A is an attempt answering answer (JSON) with metadata.pair_index index
// (JSON; none when noIndex), and any extra members.
func A(answer, index string, extra ...string) string {
	m := meta
	if index != noIndex {
		m += `,"pair_index":` + index
	}
	return `{"answer":` + answer + `,"metadata":{` + m + `}` + strings.Join(append([]string{""}, extra...), ",") + `}`
}

// q quotes s as a JSON string.
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func tk(outputs ...string) arcdata.Task {
	t := arcdata.Task{Train: []arcdata.Pair{{Input: arcdata.Grid{{0}}, Output: arcdata.Grid{{0}}}}, Test: []arcdata.Pair{}}
	for _, o := range outputs {
		p := arcdata.Pair{Input: arcdata.Grid{{0}}}
		if o != "" {
			if err := json.Unmarshal([]byte(o), &p.Output); err != nil {
				panic(err)
			}
		}
		t.Test = append(t.Test, p)
	}
	return t
}

var (
	T1 = tk(G)
	T2 = tk(G, H)
)

const unscored = -1.0

// refuses: the official scorer raises (ValidationError, TypeError,
// KeyError...) and scores nothing.
const refuses = "refuses"

type official struct {
	name     string
	task     arcdata.Task
	sub      string
	official string  // what the ARC Prize scorer gives: a score, or refuses
	score    float64 // ours; unscored for nil
	correct  int     // pairs correct
	notes    bool    // we say something
	err      bool    // Score fails (the document is not a JSON list)
}

func officialCases() []official {
	return []official{
		// The element and attempt shapes.
		{"1 both attempts placed, attempt_1 right", T1, `[{"attempt_1":` + A(G, "0") + `,"attempt_2":` + A(`[[0]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{"2 element is a list of attempts", T1, `[[` + A(G, "0") + `]]`, refuses, 0, 0, true, false},
		{"3 top level is an object", T1, `{"test_pairs":[{"attempt_1":` + A(G, "0") + `}]}`, refuses, 0, 0, false, true},
		{"3 top level is an object by index", T1, `{"0":{"attempt_1":` + A(G, "0") + `}}`, refuses, 0, 0, false, true},
		{"4 attempts under an 'attempts' key are no attempts", T1, `[{"attempts":[` + A(G, "0") + `]}]`, "0.0", 0, 0, false, false},
		{"5 attempt_3 right", T1, `[{"attempt_1":` + A(`[[0]]`, "0") + `,"attempt_2":` + A(`[[0]]`, "0") + `,"attempt_3":` + A(G, "0") + `}]`, "1.0", 1, 1, false, false},
		{"6 only attempt_2", T1, `[{"attempt_2":` + A(G, "0") + `}]`, "1.0", 1, 1, false, false},
		{"7 Attempt_1 is not an attempt key", T1, `[{"Attempt_1":` + A(G, "0") + `}]`, "0.0", 0, 0, false, false},
		{"7 attempt1 is not an attempt key", T1, `[{"attempt1":` + A(G, "0") + `}]`, "0.0", 0, 0, false, false},
		{"8 attempt_foo is an attempt key", T1, `[{"attempt_foo":` + A(G, "0") + `}]`, "1.0", 1, 1, false, false},
		{"9 empty submission", T1, `[]`, "0.0", 0, 0, false, false},
		{"9 empty element", T1, `[{}]`, "0.0", 0, 0, false, false},
		{"10 null element", T1, `[null]`, refuses, 0, 0, true, false},
		{"10 top level null", T1, `null`, refuses, 0, 0, false, true},
		{"115 unknown keys everywhere", T1, `[{"attempt_1":` + A(G, "0", `"foo":1`) + `,"bar":2}]`, "1.0", 1, 1, false, false},
		{"117 duplicate key: the last wins", T1, `[{"attempt_1":` + A(`[[0]]`, "0") + `,"attempt_1":` + A(G, "0") + `}]`, "1.0", 1, 1, false, false},
		{"117 duplicate key: the last wins, wrong", T1, `[{"attempt_1":` + A(G, "0") + `,"attempt_1":` + A(`[[0]]`, "0") + `}]`, "0.0", 0, 0, false, false},
		{"p15 duplicate answer key: the last wins", T1, `[{"attempt_1":{"answer":5,"answer":` + G + `,"metadata":{` + meta + `,"pair_index":0}}}]`, "1.0", 1, 1, false, false},
		{"75 attempt is a string", T1, `[{"attempt_1":"x"}]`, refuses, 0, 0, true, false},
		{"p4 attempt is a list", T1, `[{"attempt_1":[` + G + `]}]`, refuses, 0, 0, true, false},
		{"p17 attempt is a boolean", T1, `[{"attempt_1":true}]`, refuses, 0, 0, true, false},
		{"38 attempt without answer", T1, `[{"attempt_1":{"metadata":{` + meta + `}}}]`, refuses, 0, 0, true, false},
		{"71 attempt without metadata: placed by position", T1, `[{"attempt_1":{"answer":` + G + `}}]`, refuses, 1, 1, true, false},
		{"p3 null metadata: placed by position", T1, `[{"attempt_1":{"answer":` + G + `,"metadata":null}}]`, refuses, 1, 1, true, false},
		{"74 metadata without its required fields (not checked)", T1, `[{"attempt_1":{"answer":` + G + `,"metadata":{}}}]`, refuses, 1, 1, false, false},
		{"37 the submitted correct is ignored", T1, `[{"attempt_1":` + A(`[[0]]`, "0", `"correct":true`) + `}]`, "0.0", 0, 0, false, false},
		{"111 correct 'yes'", T1, `[{"attempt_1":` + A(G, "0", `"correct":"yes"`) + `}]`, "1.0", 1, 1, false, false},
		{"73 empty answer, correct true", T1, `[{"attempt_1":` + A(`[]`, "0", `"correct":true`) + `}]`, "0.0", 0, 0, false, false},
		{"79 naive and aware timestamps (not checked)", T1, `[{"attempt_1":` + strings.Replace(A(G, "0"), `"end_timestamp":"2023-01-01T00:00:01"`, `"end_timestamp":"2023-01-01T00:00:01Z"`, 1) + `}]`, refuses, 1, 1, false, false},
		{"112 empty answer, no choices (not checked)", T1, `[{"attempt_1":` + strings.Replace(A(`[]`, "0"), `"choices":[{"index":0,"message":{"role":"assistant","content":"c"}}]`, `"choices":[]`, 1) + `}]`, refuses, 0, 0, false, false},
		{"113 wrong answer, no choices", T1, `[{"attempt_1":` + strings.Replace(A(`[[0]]`, "0"), `"choices":[{"index":0,"message":{"role":"assistant","content":"c"}}]`, `"choices":[]`, 1) + `}]`, "0.0", 0, 0, false, false},
		{"110 correct 'maybe' (not checked)", T1, `[{"attempt_1":` + A(G, "0", `"correct":"maybe"`) + `}]`, refuses, 1, 1, false, false},
		{"p14 Infinity in metadata", T1, `[{"attempt_1":` + strings.Replace(A(G, "0"), `"total_cost":0.1`, `"total_cost":Infinity`, 1) + `}]`, "1.0", 1, 1, false, false},
		{"122 attempt_1 wrong, attempt_2 null", T1, `[{"attempt_1":` + A(`[[0]]`, "0") + `,"attempt_2":null}]`, "0.0", 0, 0, false, false},

		// Placement.
		{"11 no pair_index is 0, not the position", T2, `[{"attempt_1":` + A(G, noIndex) + `},{"attempt_1":` + A(H, noIndex) + `}]`, "0.5", 0.5, 1, true, false},
		{"116 no pair_index, both at 0", tk(G, `[[2]]`), `[{"attempt_1":` + A(G, noIndex) + `},{"attempt_1":` + A(`[[2]]`, noIndex) + `}]`, "0.5", 0.5, 1, true, false},
		{"12 null pair_index", T2, `[{"attempt_1":` + A(G, "null") + `},{"attempt_1":` + A(H, "null") + `}]`, refuses, 1, 2, true, false},
		{"p1 null pair_index after a valid one is never looked at", T2, `[{"attempt_1":` + A(G, "0") + `,"attempt_2":` + A(G, "null") + `}]`, "0.5", 0.5, 1, false, false},
		{"p2 null pair_index before a valid one", T2, `[{"attempt_1":` + A(G, "null") + `,"attempt_2":` + A(G, "0") + `}]`, refuses, 0.5, 1, true, false},
		{"13 out-of-range pair_index: by position", T2, `[{"attempt_1":` + A(G, "5") + `},{"attempt_1":` + A(H, "-1") + `}]`, "1.0", 1, 2, true, false},
		{"118 pair_index 10**30: by position", T1, `[{"attempt_1":` + A(G, "1000000000000000000000000000000") + `}]`, "1.0", 1, 1, true, false},
		{`14 pair_index "1"`, T2, `[{"attempt_1":` + A(H, `"1"`) + `}]`, "0.5", 0.5, 1, false, false},
		{"14 pair_index 1.0", T2, `[{"attempt_1":` + A(H, `1.0`) + `}]`, "0.5", 0.5, 1, false, false},
		{"14 pair_index true", T2, `[{"attempt_1":` + A(H, `true`) + `}]`, "0.5", 0.5, 1, false, false},
		{`p8 pair_index " 0 "`, T1, `[{"attempt_1":` + A(G, `" 0 "`) + `}]`, "1.0", 1, 1, false, false},
		{"p9 pair_index false", T1, `[{"attempt_1":` + A(G, `false`) + `}]`, "1.0", 1, 1, false, false},
		{"15 pair_index 1.5: by position", T2, `[{"attempt_1":` + A(H, `1.5`) + `}]`, refuses, 0, 0, true, false},
		{`15 pair_index "abc": by position`, T2, `[{"attempt_1":` + A(H, `"abc"`) + `}]`, refuses, 0, 0, true, false},
		{"p6 pair_index NaN", T1, `[{"attempt_1":` + A(G, `NaN`) + `}]`, refuses, 1, 1, true, false},
		{"p7 pair_index 1e20", T1, `[{"attempt_1":` + A(G, `1e20`) + `}]`, refuses, 1, 1, true, false},
		{"16 out of order", T2, `[{"attempt_1":` + A(H, "1") + `},{"attempt_1":` + A(G, "0") + `}]`, "1.0", 1, 2, false, false},
		{"17 two elements solve pair 0", T2, `[{"attempt_1":` + A(G, "0") + `},{"attempt_1":` + A(G, "0") + `}]`, "1.0", 0.5, 1, true, false},
		{"18 three elements solve pair 0", T2, `[{"attempt_1":` + A(G, "0") + `},{"attempt_1":` + A(G, "0") + `},{"attempt_1":` + A(G, "0") + `}]`, "1.5", 0.5, 1, true, false},
		{"19 two elements without pair_index solve the only pair", T1, `[{"attempt_1":` + A(G, noIndex) + `},{"attempt_1":` + A(G, noIndex) + `}]`, "2.0", 1, 1, true, false},
		{"p18 two elements solve pair 2 of 3", tk(G, G, G), `[{"attempt_1":` + A(G, "2") + `},{"attempt_1":` + A(G, "2") + `}]`, "0.6666666666666666", 1.0 / 3, 1, true, false},
		{"20 a third element placed nowhere is skipped", T2, `[{"attempt_1":` + A(G, "0") + `},{"attempt_1":` + A(H, "1") + `},{"attempt_1":` + A(H, "7") + `}]`, "1.0", 1, 2, true, false},
		{"121 a second element placed nowhere is skipped", T1, `[{"attempt_1":` + A(G, "0") + `},{"attempt_1":` + A(G, "1") + `}]`, "1.0", 1, 1, true, false},
		{"21 an extra element without pair_index goes to 0", T2, `[{"attempt_1":` + A(`[[0]]`, "0") + `},{"attempt_1":` + A(H, "1") + `},{"attempt_1":` + A(G, noIndex) + `}]`, "1.0", 1, 2, true, false},
		{"22 one pair of two", T2, `[{"attempt_1":` + A(G, "0") + `}]`, "0.5", 0.5, 1, false, false},
		{"23 attempt_2 decides when attempt_1's index is out of range", T2, `[{"attempt_1":` + A(H, "9") + `,"attempt_2":` + A(`[[0]]`, "1") + `}]`, "0.5", 0.5, 1, true, false},
		{"24 attempt_1 decides for both", T2, `[{"attempt_1":` + A(`[[0]]`, "0") + `,"attempt_2":` + A(H, "1") + `}]`, "0.0", 0, 0, false, false},
		{"25 attempt_10 sorts before attempt_2", T2, `[{"attempt_2":` + A(G, "0") + `,"attempt_10":` + A(`[[0]]`, "1") + `}]`, "0.0", 0, 0, false, false},
		{"26 all attempts null: by position", T2, `[{"attempt_1":` + A(G, "0") + `},{"attempt_1":null,"attempt_2":null}]`, "0.5", 0.5, 1, false, false},
		{"27 null attempt_1, attempt_2 right", T2, `[{"attempt_1":` + A(G, "0") + `},{"attempt_1":null,"attempt_2":` + A(H, "1") + `}]`, "1.0", 1, 2, false, false},
		{"p5 an empty element takes position 0", T1, `[{},{"attempt_1":` + A(G, noIndex) + `}]`, "1.0", 1, 1, false, false},
		{"28 a task without test pairs", tk(), `[{"attempt_1":` + A(G, "0") + `}]`, "0.0", unscored, 0, true, false},
		{"67 a test pair without output", tk(""), `[{"attempt_1":` + A(`[[1]]`, "0") + `}]`, "0.0", unscored, 0, false, false},

		// Cells.
		{"29 string cells", T1, `[{"attempt_1":` + A(`[["1","1"],["1","1"]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{"29 whole float cells", T1, `[{"attempt_1":` + A(`[[1.0,1.0],[1.0,1.0]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{"29 boolean cells", T1, `[{"attempt_1":` + A(`[[true,true],[true,true]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{"29 numeric strings", T1, `[{"attempt_1":` + A(`[["1.0"," 1 "],["+1","01"]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{"82 exponents", T1, `[{"attempt_1":` + A(`[[1e0,1.00],[10e-1,1]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{"30 cell 1.5", T1, `[{"attempt_1":` + A(`[[1.5,1],[1,1]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{`30 cell "1.5"`, T1, `[{"attempt_1":` + A(`[["1.5",1],[1,1]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{`30 cell "true"`, T1, `[{"attempt_1":` + A(`[["true",1],[1,1]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{"30 cell null", T1, `[{"attempt_1":` + A(`[[null,1],[1,1]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{"30 1-D answer", T1, `[{"attempt_1":` + A(`[1,1,1,1]`, "0") + `}]`, refuses, 0, 0, true, false},
		{"30 number answer", T1, `[{"attempt_1":` + A(`5`, "0") + `}]`, refuses, 0, 0, true, false},
		{"30 null answer", T1, `[{"attempt_1":` + A(`null`, "0") + `}]`, refuses, 0, 0, true, false},
		{"60 3-D answer", T1, `[{"attempt_1":` + A(`[[[1]]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{"119 two grids", T1, `[{"attempt_1":` + A(`[`+G+`,`+G+`]`, "0") + `}]`, refuses, 0, 0, true, false},
		{"76 object answer", T1, `[{"attempt_1":` + A(`{"0":[1,1]}`, "0") + `}]`, refuses, 0, 0, true, false},
		{"81 NaN cell", T1, `[{"attempt_1":` + A(`[[NaN]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{"100 object rows", tk(`[[1,0]]`), `[{"attempt_1":` + A(`[{"a":1}]`, "0") + `}]`, refuses, 0, 0, true, false},
		{"34 empty answer", T1, `[{"attempt_1":` + A(`[]`, "0") + `}]`, "0.0", 0, 0, false, false},
		{"36 [[]]", T1, `[{"attempt_1":` + A(`[[]]`, "0") + `}]`, "0.0", 0, 0, false, false},
		{"36 ragged", T1, `[{"attempt_1":` + A(`[[1,1],[1]]`, "0") + `}]`, "0.0", 0, 0, false, false},
		{"65 negative", tk(`[[-1]]`), `[{"attempt_1":` + A(`[[-1]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{"p10 1e-400 is 0", tk(`[[0]]`), `[{"attempt_1":` + A(`[[1e-400]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{"p11 -0", tk(`[[0]]`), `[{"attempt_1":` + A(`[[-0]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{"p13 1e20 is refused", tk(`[[0]]`), `[{"attempt_1":` + A(`[[1e20]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{"huge ints are ints, equal to no colour", tk(`[[-1,1]]`), `[{"attempt_1":` + A(`[[-18446744073709551615,18446744073709551617]]`, "0") + `}]`, "0.0", 0, 0, false, false},
		{`90 cell "1.5"`, tk(`[[1,0]]`), `[{"attempt_1":` + A(`[["1.5",0]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{`91 cell "1e0"`, tk(`[[1,0]]`), `[{"attempt_1":` + A(`[["1e0",0]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{"93 true, false", tk(`[[1,0]]`), `[{"attempt_1":` + A(`[[true,false]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{"94 1.0, -0.0", tk(`[[1,0]]`), `[{"attempt_1":` + A(`[[1.0,-0.0]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{`95 "+1", "-0"`, tk(`[[1,0]]`), `[{"attempt_1":` + A(`[["+1","-0"]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{`44 "1_0" is 10`, tk(`[[1,0]]`), `[{"attempt_1":` + A(`[["1_0",0]]`, "0") + `}]`, "0.0", 0, 0, false, false},
		{`97 "0x1"`, tk(`[[1,0]]`), `[{"attempt_1":` + A(`[["0x1",0]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{`98 ""`, tk(`[[1,0]]`), `[{"attempt_1":` + A(`[["",0]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{`101 fullwidth "１"`, tk(`[[1,0]]`), `[{"attempt_1":` + A(`[["１",0]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{`102 "1.00"`, tk(`[[1,0]]`), `[{"attempt_1":` + A(`[["1.00",0]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{`103 " 1.0 ", "0"`, tk(`[[1,0]]`), `[{"attempt_1":` + A(`[[" 1.0 ","0"]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{`"\u00a01_0.0\u3000" is 10`, tk(`[[10]]`), `[{"attempt_1":` + A(`[["\u00a01_0.0\u3000"]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{`"1." is refused`, tk(`[[1]]`), `[{"attempt_1":` + A(`[["1."]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{`"1__0" is refused`, tk(`[[10]]`), `[{"attempt_1":` + A(`[["1__0"]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{`"0__9" is 9`, tk(`[[9]]`), `[{"attempt_1":` + A(`[["0__9"]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{`"0-6" is -6`, tk(`[[-6]]`), `[{"attempt_1":` + A(`[["0-6"]]`, "0") + `}]`, "1.0", 1, 1, false, false},
		{`"1-6" is refused`, tk(`[[-6]]`), `[{"attempt_1":` + A(`[["1-6"]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{"a string of 4301 digits is refused", tk(`[[1]]`), `[{"attempt_1":` + A(`[[1,"`+strings.Repeat("1", 4301)+`"]]`, "0") + `}]`, refuses, 0, 0, true, false},
		{"a string of 4300 digits is an int", tk(`[[1]]`), `[{"attempt_1":` + A(`[[1,"`+strings.Repeat("1", 4300)+`"]]`, "0") + `}]`, "0.0", 0, 0, false, false},

		// Answers given as strings.
		{"31 a JSON string", T1, `[{"attempt_1":` + A(q(G), "0") + `}]`, "1.0", 1, 1, false, false},
		{"31 prose with a grid", T1, `[{"attempt_1":` + A(q("The answer is [[1, 1], [1, 1]] done."), "0") + `}]`, "1.0", 1, 1, false, false},
		{"31 boxed first", T1, `[{"attempt_1":` + A(q(`\boxed{[[1,1],[1,1]]} then [[0]]`), "0") + `}]`, "1.0", 1, 1, false, false},
		{"31 string cells in a string", T1, `[{"attempt_1":` + A(q(`[["1","1"],["1","1"]]`), "0") + `}]`, "1.0", 1, 1, false, false},
		{"32 the last grid of a string", T1, `[{"attempt_1":` + A(q("[[1,1],[1,1]] or maybe [[0,0],[0,0]]"), "0") + `}]`, "0.0", 0, 0, false, false},
		{"33 empty string", T1, `[{"attempt_1":` + A(q(""), "0") + `}]`, refuses, 0, 0, true, false},
		{"33 no grid in the string", T1, `[{"attempt_1":` + A(q("no grid here"), "0") + `}]`, refuses, 0, 0, true, false},
		{`33 "[]"`, T1, `[{"attempt_1":` + A(q("[]"), "0") + `}]`, refuses, 0, 0, true, false},
		{"33 string ends with }", T1, `[{"attempt_1":` + A(q(`{"grid": [[1,1],[1,1]]}`), "0") + `}]`, refuses, 0, 0, true, false},
		{`36 "[[]]"`, T1, `[{"attempt_1":` + A(q("[[]]"), "0") + `}]`, "0.0", 0, 0, false, false},
		{"68 tuples", T1, `[{"attempt_1":` + A(q("((1,1),(1,1))"), "0") + `}]`, refuses, 0, 0, true, false},
		{"69 single quotes", T1, `[{"attempt_1":` + A(q("[['1','1'],['1','1']]"), "0") + `}]`, refuses, 0, 0, true, false},
		{"104 booleans in a string", tk(`[[1,0]]`), `[{"attempt_1":` + A(q("[[true, false]]"), "0") + `}]`, "1.0", 1, 1, false, false},
		{"105 floats in a string", tk(`[[1,0]]`), `[{"attempt_1":` + A(q("[[1.0, 0.0]]"), "0") + `}]`, "1.0", 1, 1, false, false},
		{"s1 boxed [] is an empty answer", T1, `[{"attempt_1":` + A(q(`\boxed{[]}`), "0") + `}]`, "0.0", 0, 0, false, false},
		{"s3 boxed, spaces stripped", T1, `[{"attempt_1":` + A(q("\\boxed{  [[1,1],[1,1]] \n}"), "0") + `}]`, "1.0", 1, 1, false, false},
		{`s4 boxed, "\x1c" stripped as Python does`, T1, `[{"attempt_1":` + A(q("\\boxed{[[1,1],[1,1]]\x1c}"), "0") + `}]`, "1.0", 1, 1, false, false},
		{"s5 boxed unreadable, then the last grid", T1, `[{"attempt_1":` + A(q(`\boxed{oops} [[1,1],[1,1]]`), "0") + `}]`, "1.0", 1, 1, false, false},
		{"s6 boxed with bad cells is final", T1, `[{"attempt_1":` + A(q(`\boxed{[["a"]]} [[1,1],[1,1]]`), "0") + `}]`, refuses, 0, 0, true, false},
		{"s7 an unmatched ]", T1, `[{"attempt_1":` + A(q(`[[1,1],[1,1]]]`), "0") + `}]`, refuses, 0, 0, true, false},
		{"s8 a } last", T1, `[{"attempt_1":` + A(q(`[[1,1],[1,1]] }`), "0") + `}]`, refuses, 0, 0, true, false},
		{"s10 3-D in a string", T1, `[{"attempt_1":` + A(q(`[[[1]]]`), "0") + `}]`, refuses, 0, 0, true, false},
		{"s11 only the first boxed", T1, `[{"attempt_1":` + A(q(`\boxed{x} \boxed{[[1,1],[1,1]]}`), "0") + `}]`, refuses, 0, 0, true, false},
		{"s13 boxed 1-D, then the last grid", T1, `[{"attempt_1":` + A(q(`\boxed{[1,1]} [[1,1],[1,1]]`), "0") + `}]`, "1.0", 1, 1, false, false},
		{"s15 boxed unclosed, then the last grid", T1, `[{"attempt_1":` + A(q(`\boxed{[[1,1],[1,1]]`), "0") + `}]`, "1.0", 1, 1, false, false},
		{"s17 text after the grid", T1, `[{"attempt_1":` + A(q(`[[1,1],[1,1]]x`), "0") + `}]`, "1.0", 1, 1, false, false},
		{"s20 a list of strings", T1, `[{"attempt_1":` + A(q(`["ab"]`), "0") + `}]`, refuses, 0, 0, true, false},

		// Documents.
		{"80 not JSON", T1, `[{`, refuses, 0, 0, false, true},
		{"p12 data after the list", T1, `[] x`, refuses, 0, 0, false, true},
	}
}

func TestScoreAsTheARCPrizeScorer(t *testing.T) {
	for _, c := range officialCases() {
		t.Run(c.name, func(t *testing.T) {
			r, err := scoring.Score(c.task, strings.NewReader(c.sub))
			if (err != nil) != c.err {
				t.Fatalf("error %v, want error %v", err, c.err)
			}
			switch {
			case c.score == unscored && r.Score != nil:
				t.Errorf("score %v, want unscored", *r.Score)
			case c.score != unscored && (r.Score == nil || *r.Score != c.score):
				t.Errorf("score %v, want %v (the ARC Prize scorer: %s)", fmtScore(r.Score), c.score, c.official)
			}
			if r.PairsCorrect != c.correct {
				t.Errorf("%d pairs correct, want %d", r.PairsCorrect, c.correct)
			}
			if (len(r.Notes) > 0) != c.notes {
				t.Errorf("notes %q, want notes %v", r.Notes, c.notes)
			}
			if c.official == refuses && !c.err && !slices.ContainsFunc(r.Notes, func(n string) bool {
				return strings.Contains(n, "ARC Prize scorer would")
			}) && c.notes {
				t.Errorf("notes %q do not say the ARC Prize scorer would refuse it", r.Notes)
			}
			if o, err := strconv.ParseFloat(c.official, 64); err == nil && o != c.score && c.score != unscored &&
				!slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "would count each") }) {
				t.Errorf("we differ from the ARC Prize scorer (%s) without saying so: %q", c.official, r.Notes)
			}
			if len(r.Marks) != len(c.task.Test) {
				t.Errorf("marks %q for %d test pairs", r.Marks, len(c.task.Test))
			}
		})
	}
}

func fmtScore(s *float64) string {
	if s == nil {
		return "nil"
	}
	return fmt.Sprint(*s)
}

func TestMarksAndAnswers(t *testing.T) {
	sub := `[{"attempt_2":` + A(H, "1") + `,"attempt_1":null,"attempt_3":` + A(`[[0]]`, "1") + `,"attempt_4":` + A(`[]`, "1") + `},
		{"attempt_1":` + A(`[[1,1],[1]]`, "0") + `,"attempt_2":` + A(`[[1.5]]`, "0") + `,"attempt_3":` + A(q("[[1,1],[1,1]]"), "0") + `}]`
	r, err := scoring.Score(T2, strings.NewReader(sub))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0-1", "-10-"}; !slices.Equal(r.Marks, want) {
		t.Errorf("marks %q, want %q", r.Marks, want)
	}
	if r.PairsCorrect != 2 || !r.Correct() || r.Answered != 4 {
		t.Errorf("result %+v: want both pairs right, 4 answers", r)
	}
	s, err := scoring.Read(T2, strings.NewReader(sub))
	if err != nil {
		t.Fatal(err)
	}
	names := func(as []scoring.Answer) (out []string) {
		for _, a := range as {
			out = append(out, a.Attempt)
		}
		return out
	}
	if got := names(s.Pairs[0]); !slices.Equal(got, []string{"attempt_1", "attempt_2", "attempt_3"}) {
		t.Errorf("pair 0 attempts %q", got)
	}
	if got := names(s.Pairs[1]); !slices.Equal(got, []string{"attempt_1", "attempt_2", "attempt_3", "attempt_4"}) {
		t.Errorf("pair 1 attempts %q", got)
	}
	if a := s.Pairs[0][0]; !arcdata.Equal(a.Grid, arcdata.Grid{{1, 1}, {1}}) || a.Empty || a.Correct {
		t.Errorf("a ragged grid is kept and wrong: %+v", a)
	}
	if a := s.Pairs[0][1]; a.Grid != nil || !a.Empty || a.Correct {
		t.Errorf("an unreadable answer is empty: %+v", a)
	}
	if a := s.Pairs[0][2]; !arcdata.Equal(a.Grid, arcdata.Grid{{1, 1}, {1, 1}}) || !a.Correct {
		t.Errorf("a string answer is parsed: %+v", a)
	}
	if a := s.Pairs[1][0]; a.Grid != nil || !a.Empty {
		t.Errorf("a null attempt is empty: %+v", a)
	}
	if a := s.Pairs[1][3]; a.Grid != nil || !a.Empty || a.Correct {
		t.Errorf("[] is empty: %+v", a)
	}
	if len(s.Notes) != 1 || !strings.Contains(s.Notes[0], "element 1 attempt_2") {
		t.Errorf("notes %q, want one on element 1's attempt_2", s.Notes)
	}
}

func TestAnsweredCountsReadableGrids(t *testing.T) {
	for _, c := range []struct {
		name string
		sub  string
		want int
	}{
		{"nothing", `[]`, 0},
		{"null attempts only", `[{"attempt_1":null,"attempt_2":null},{"attempt_1":null}]`, 0},
		{"[] answers only", `[{"attempt_1":` + A(`[]`, "0") + `,"attempt_2":` + A(q(`\boxed{[]}`), "0") + `}]`, 0},
		{"[[]] has no cell", `[{"attempt_1":` + A(`[[]]`, "0") + `,"attempt_2":` + A(`[[],[]]`, "0") + `}]`, 0},
		{"unreadable answers only", `[{"attempt_1":` + A(`[[null]]`, "0") + `,"attempt_2":` + A(q("no grid"), "0") + `,"attempt_3":"x","attempt_4":{"metadata":{}}},null]`, 0},
		{"one readable grid, unplaced", `[{},{"attempt_1":` + A(`[[7]]`, "5") + `}]`, 1},
		{"a grid too large to keep", `[{"attempt_1":` + A(`[`+strings.Repeat(`[0],`, 40)+`[0]]`, "0") + `}]`, 1},
		{"one per attempt, a duplicate key once", `[{"attempt_1":` + A(`[[0]]`, "0") + `,"attempt_1":` + A(`[[0]]`, "0") + `,"attempt_2":` + A(`[[0]]`, "0") + `}]`, 2},
	} {
		r, err := scoring.Score(T1, strings.NewReader(c.sub))
		if err != nil || r.Answered != c.want {
			t.Errorf("%s: answered %d (%v), want %d", c.name, r.Answered, err, c.want)
		}
	}
}

func TestTooLargeGridsAreReadNotKept(t *testing.T) {
	wide := `[[` + strings.Repeat(`1,`, 30) + `1]]`
	tall := `[` + strings.Repeat(`[1],`, 30) + `[1]]`
	bad := `[` + strings.Repeat(`[1],`, 30) + `[1.5]]`
	sub := `[{"attempt_1":` + A(wide, "0") + `,"attempt_2":` + A(tall, "0") + `,"attempt_3":` + A(bad, "0") + `}]`
	s, err := scoring.Read(T1, strings.NewReader(sub))
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range s.Pairs[0] {
		if a.Grid != nil || a.Correct || a.Empty != (i == 2) {
			t.Errorf("%s: %+v, want no grid kept, wrong, empty only when unreadable", a.Attempt, a)
		}
	}
	if s.Answered != 2 || len(s.Notes) != 3 {
		t.Errorf("answered %d, notes %q", s.Answered, s.Notes)
	}
	// A task whose output is larger than ARC's: grids as large are kept.
	big := tk(tall)
	r, err := scoring.Score(big, strings.NewReader(`[{"attempt_1":`+A(tall, "0")+`}]`))
	if err != nil || !r.Correct() {
		t.Errorf("a 31-row output answered: %+v, %v", r, err)
	}
}

func TestNotesAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := range 1000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("null")
	}
	b.WriteString("]")
	r, err := scoring.Score(T1, strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Notes) != 21 || r.Notes[20] != "and 980 more notes" {
		t.Errorf("%d notes, the last %q", len(r.Notes), r.Notes[len(r.Notes)-1])
	}
}

func TestUnreadableDocumentScoresZeroWithAnError(t *testing.T) {
	for _, body := range []string{``, `   `, `{"attempt_1":{}}`, `[{"attempt_1":`, `[{"attempt_1":null},]`, `"[]"`, `[1] [2]`,
		`[{"attempt_1":{"answer":[[1]],"metadata":{"pair_index":01}}}]`, `[` + strings.Repeat(`[`, 20000) + strings.Repeat(`]`, 20000) + `]`} {
		r, err := scoring.Score(T2, strings.NewReader(body))
		if err == nil {
			t.Errorf("%.40q: no error", body)
		}
		if r.Pairs != 2 || r.Score == nil || *r.Score != 0 || !slices.Equal(r.Marks, []string{"", ""}) || r.Answered != 0 {
			t.Errorf("%.40q: result %+v, want score 0 of 2 pairs, empty marks", body, r)
		}
	}
	r, err := scoring.Score(tk(""), strings.NewReader(`{}`))
	if err == nil || r.Score != nil || r.Pairs != 0 {
		t.Errorf("unscorable task: %+v, %v; want no score and the error", r, err)
	}
	fail := errors.New("connection reset")
	_, err = scoring.Score(T1, io.MultiReader(strings.NewReader(`[{"attempt_1":`), iotest{fail}))
	if !errors.Is(err, fail) {
		t.Errorf("error %v, want the reader's", err)
	}
}

type iotest struct{ err error }

func (r iotest) Read([]byte) (int, error) { return 0, r.err }

func TestStringsAreUnescaped(t *testing.T) {
	// Keys and strings are read as Python reads them: escapes included.
	sub := `[{"attempt\u005f1":` + A(`"[[1,1],\n[1,1]]"`, `"\u0030"`) + `,"attempt_\ud83d\ude00":null,"attempt_\ud800":null}]`
	s, err := scoring.Read(T1, strings.NewReader(sub))
	if err != nil {
		t.Fatal(err)
	}
	// Python sorts "\ud800" (a lone surrogate) before "\U0001F600"; read as
	// U+FFFD it still does.
	if len(s.Pairs[0]) != 3 || s.Pairs[0][0].Attempt != "attempt_1" || !s.Pairs[0][0].Correct ||
		s.Pairs[0][1].Attempt != "attempt_\uFFFD" || s.Pairs[0][2].Attempt != "attempt_\U0001F600" {
		t.Errorf("answers %+v", s.Pairs[0])
	}
}

func TestTaskWithoutExpectedOutputsIsUnscored(t *testing.T) {
	task := tk("", "")
	r, err := scoring.Score(task, strings.NewReader(`[{"attempt_1":`+A(`[[1]]`, "0")+`}]`))
	if err != nil || r.Pairs != 0 || r.Score != nil || r.Correct() || r.Answered != 1 || !slices.Equal(r.Marks, []string{"0", ""}) {
		t.Errorf("result %+v, err %v: want unscored, the answer read", r, err)
	}
}

func TestPairsWithoutOutputAreLeftOutOfTheShare(t *testing.T) {
	task := tk(G, "")
	r, err := scoring.Score(task, strings.NewReader(`[{"attempt_1":`+A(G, "0")+`},{"attempt_1":`+A(H, "1")+`}]`))
	if err != nil || r.Pairs != 1 || r.PairsCorrect != 1 || *r.Score != 1 || !r.Correct() {
		t.Errorf("result %+v, err %v: want 1 of 1 scorable pair", r, err)
	}
}

// The baseline's answers for generated tasks are right exactly when its rule
// is known: the scoring agrees with arcdata's own check.
func TestScoringAgreesWithTheBaselineOnGeneratedTasks(t *testing.T) {
	for _, id := range arcdata.IDs(200, 4) {
		task := arcdata.Generate(id, 4)
		preds, _ := arcdata.Solve(task)
		var elems []map[string]any
		for i, p := range preds {
			elems = append(elems, map[string]any{"attempt_1": map[string]any{"answer": p, "correct": nil, "metadata": map[string]any{"pair_index": i}}, "attempt_2": nil})
		}
		body, err := json.Marshal(elems)
		if err != nil {
			t.Fatal(err)
		}
		r, err := scoring.Score(task, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if r.Correct() != arcdata.Correct(task, preds) {
			t.Errorf("task %s: scored correct=%v, arcdata says %v", id, r.Correct(), arcdata.Correct(task, preds))
		}
	}
}

func TestPastTheBoundsAttemptsAreScoredNotKept(t *testing.T) {
	zeros := `[` + strings.Repeat(`[`+strings.Repeat(`0,`, 29)+`0],`, 29) + `[` + strings.Repeat(`0,`, 29) + `0]]`
	var out arcdata.Grid
	if err := json.Unmarshal([]byte(zeros), &out); err != nil {
		t.Fatal(err)
	}
	task := arcdata.Task{Test: []arcdata.Pair{{Input: out, Output: out}, {Input: out, Output: arcdata.Grid{{1}}}}}
	elements := func(n int, e string) string { return `[` + strings.Repeat(e+`,`, n-1) + e + `]` }

	// Grids past 2^20 cells (1165 of 900) are compared, not kept.
	sub := elements(1200, `{"attempt_1":{"answer":`+zeros+`,"metadata":{"pair_index":0}}}`)
	s, err := scoring.Read(task, strings.NewReader(sub))
	if err != nil {
		t.Fatal(err)
	}
	if first, last := s.Pairs[0][0], s.Pairs[0][1199]; first.Grid == nil || !first.Correct || last.Grid != nil || last.Empty || !last.Correct {
		t.Errorf("first %v, last %v: want the first kept, the last not, both right", first.Correct, last)
	}
	if !slices.ContainsFunc(s.Notes, func(n string) bool { return strings.Contains(n, "35 grids past the first 1048576 cells") }) {
		t.Errorf("notes %q", s.Notes)
	}

	// Attempts past the first 10,000 are scored, not listed.
	sub = elements(10001, `{"attempt_1":{"answer":[[0]],"metadata":{"pair_index":1}}}`)
	sub = sub[:len(sub)-1] + `,{"attempt_1":{"answer":[[1]],"metadata":{"pair_index":1}}}]`
	r, err := scoring.Score(task, strings.NewReader(sub))
	if err != nil {
		t.Fatal(err)
	}
	if r.PairsCorrect != 1 || r.Answered != 10002 || len(r.Marks[1]) != 10000 || strings.Contains(r.Marks[1], "1") {
		t.Errorf("pairs correct %d, answered %d, %d marks", r.PairsCorrect, r.Answered, len(r.Marks[1]))
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "2 attempts past the first 10000") }) {
		t.Errorf("notes %q", r.Notes)
	}

	// An element's attempts past its 10,000th are not read (the ARC Prize
	// scorer would read them: a deliberate divergence).
	var b strings.Builder
	b.WriteString(`[{`)
	for i := range 10000 {
		fmt.Fprintf(&b, `"attempt_%05d":null,`, i)
	}
	b.WriteString(`"attempt_99999":{"answer":[[1]],"metadata":{"pair_index":1}}}]`)
	r, err = scoring.Score(task, strings.NewReader(b.String()))
	if err != nil || r.PairsCorrect != 0 || len(r.Marks[0]) != 10000 || !slices.ContainsFunc(r.Notes, func(n string) bool {
		return strings.Contains(n, "element 0 has over 10000 attempts")
	}) {
		t.Errorf("%d pairs correct, %d marks, notes %q, %v", r.PairsCorrect, len(r.Marks[0]), r.Notes, err)
	}
}

// Big submissions, each 16 MiB (check-task's limit), and whether they hold
// an answer.
type big struct {
	name     string
	body     []byte
	answered bool
}

func bigSubmissions() []big {
	const size = 16 << 20
	fill := func(head, item, last, tail string) []byte {
		var b bytes.Buffer
		b.WriteString(head)
		for b.Len() < size-len(last)-len(tail)-len(item) {
			b.WriteString(item)
		}
		b.WriteString(last + tail)
		return b.Bytes()
	}
	g := `[` + strings.Repeat(`[`+strings.Repeat(`0,`, 29)+`0],`, 29) + `[` + strings.Repeat(`0,`, 29) + `0]]`
	var nulls bytes.Buffer
	nulls.WriteString(`[{`)
	for i := 0; nulls.Len() < size-32; i++ {
		fmt.Fprintf(&nulls, `"attempt_%d":null,`, i)
	}
	nulls.WriteString(`"attempt_x":null}]`)
	return []big{
		{"a grid of 4M rows", fill(`[{"attempt_1":{"metadata":{"pair_index":0},"answer":[`, `[0],`, `[0]`, `]}}]`), true},
		{"a 16 MiB string answer", fill(`[{"attempt_1":{"metadata":{"pair_index":0},"answer":"[`, `[0],`, `[0]`, `]"}}]`), true},
		{"8k 30x30 grids", fill(`[`, `{"attempt_1":{"answer":`+g+`,"metadata":{"pair_index":0}}},`, `{}`, `]`), true},
		{"370k elements at one pair", fill(`[`, `{"attempt_1":{"answer":[[0]],"metadata":{}}},`, `{}`, `]`), true},
		{"a million null attempts in an element", nulls.Bytes(), false},
	}
}

// heapPeak runs f, sampling the heap in use, and returns the peak over
// what was in use before, and the bytes f allocated.
func heapPeak(f func()) (peak, alloc uint64) {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan struct{})
	peakc := make(chan uint64)
	go func() {
		var m runtime.MemStats
		var p uint64
		for {
			runtime.ReadMemStats(&m)
			p = max(p, m.HeapInuse)
			select {
			case <-done:
				peakc <- p
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	f()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	close(done)
	p := max(<-peakc, after.HeapInuse)
	return p - min(p, before.HeapInuse), after.TotalAlloc - before.TotalAlloc
}

// A 16 MiB submission is read in bounded memory: check-task has 256 MiB.
// Reading the whole document and unmarshalling it, as before, took (peak
// heap / allocated) 475/701 MiB on the 4M rows, 128/240 MiB on the 30x30
// grids, 51/83 MiB on the string; streaming takes under 40 MiB on each.
func TestBigSubmissionsInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 80 MiB")
	}
	const limit = 48 << 20
	for _, c := range bigSubmissions() {
		var r scoring.Result
		var err error
		peak, alloc := heapPeak(func() { r, err = scoring.Score(T1, bytes.NewReader(c.body)) })
		t.Logf("%s (%.1f MiB): peak heap %.1f MiB, allocated %.1f MiB", c.name, float64(len(c.body))/(1<<20), float64(peak)/(1<<20), float64(alloc)/(1<<20))
		if err != nil || (r.Answered > 0) != c.answered || r.PairsCorrect != 0 {
			t.Errorf("%s: %+v, %v; want it read, wrong", c.name, r, err)
		}
		if peak > limit || alloc > limit {
			t.Errorf("%s: peak heap %d MiB, allocated %d MiB; want under %d MiB", c.name, peak>>20, alloc>>20, limit>>20)
		}
	}
}

func BenchmarkRead16MiB(b *testing.B) {
	for _, c := range bigSubmissions() {
		b.Run(strings.ReplaceAll(c.name, " ", "_"), func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := scoring.Read(T1, bytes.NewReader(c.body)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
