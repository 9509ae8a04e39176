package scoring_test

import (
	"encoding/json"
	"testing"

	"arcbench/shared/arcdata"
	"arcbench/shared/scoring"
)

// task has three test pairs with expected outputs [[1]], [[2]], [[3]].
func task() arcdata.Task {
	return arcdata.Task{
		Train: []arcdata.Pair{{Input: arcdata.Grid{{0}}, Output: arcdata.Grid{{0}}}},
		Test: []arcdata.Pair{
			{Input: arcdata.Grid{{0}}, Output: arcdata.Grid{{1}}},
			{Input: arcdata.Grid{{0}}, Output: arcdata.Grid{{2}}},
			{Input: arcdata.Grid{{0}}, Output: arcdata.Grid{{3}}},
		},
	}
}

// answer is one attempt as the benchmark's worker writes it.
func answer(grid any, pair int) map[string]any {
	return map[string]any{"answer": grid, "correct": nil, "metadata": map[string]any{"pair_index": pair, "model": "m"}}
}

func submission(t *testing.T, elements ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(elements)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestScoreIsTheShareOfTestPairsAnyAttemptSolved(t *testing.T) {
	cases := []struct {
		name         string
		sub          []map[string]any
		pairsCorrect int
	}{
		{"every pair by attempt_1", []map[string]any{
			{"attempt_1": answer([][]int{{1}}, 0), "attempt_2": nil},
			{"attempt_1": answer([][]int{{2}}, 1), "attempt_2": nil},
			{"attempt_1": answer([][]int{{3}}, 2), "attempt_2": nil},
		}, 3},
		{"attempt_2 counts as much as attempt_1", []map[string]any{
			{"attempt_1": answer([][]int{{9}}, 0), "attempt_2": answer([][]int{{1}}, 0)},
		}, 1},
		{"both attempts right counts the pair once", []map[string]any{
			{"attempt_1": answer([][]int{{1}}, 0), "attempt_2": answer([][]int{{1}}, 0)},
		}, 1},
		{"placed by pair_index, not by position (a pair without answers is left out)", []map[string]any{
			{"attempt_1": answer([][]int{{3}}, 2)},
			{"attempt_1": answer([][]int{{2}}, 1)},
		}, 2},
		{"an answer right for another pair does not count", []map[string]any{
			{"attempt_1": answer([][]int{{2}}, 0)},
		}, 0},
		{"empty answers never match", []map[string]any{
			{"attempt_1": answer([][]int{}, 0), "attempt_2": answer(nil, 0)},
		}, 0},
		{"a wrong shape does not match", []map[string]any{
			{"attempt_1": answer([][]int{{1, 1}}, 0)},
		}, 0},
		{"no answers at all", nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := scoring.Score(task(), submission(t, c.sub...))
			if err != nil {
				t.Fatal(err)
			}
			if r.Pairs != 3 || r.PairsCorrect != c.pairsCorrect {
				t.Fatalf("pairs %d/%d, want %d/3", r.PairsCorrect, r.Pairs, c.pairsCorrect)
			}
			if want := float64(c.pairsCorrect) / 3; r.Score == nil || *r.Score != want {
				t.Errorf("score %v, want %v", r.Score, want)
			}
			if r.Correct() != (c.pairsCorrect == 3) {
				t.Errorf("correct %v with %d of 3 pairs", r.Correct(), c.pairsCorrect)
			}
		})
	}
}

func TestElementsWithoutPairIndexArePlacedByPosition(t *testing.T) {
	sub := []byte(`[{"attempt_1":{"answer":[[1]]}},{"attempt_1":{"answer":[[2]]},"attempt_2":null}]`)
	r, err := scoring.Score(task(), sub)
	if err != nil || r.PairsCorrect != 2 {
		t.Fatalf("%d pairs correct (%v), want 2", r.PairsCorrect, err)
	}
}

func TestWhatCannotBePlacedIsNamedAndCountsWrong(t *testing.T) {
	sub := []byte(`[{"attempt_1":{"answer":[[1]],"metadata":{"pair_index":7}}},
		"not an object",
		{"attempt_1":{"answer":"[[2]]","metadata":{"pair_index":1}}},
		{"attempt_1":{"answer":[[3]],"metadata":{"pair_index":2}}}]`)
	r, err := scoring.Score(task(), sub)
	if err != nil {
		t.Fatal(err)
	}
	if r.PairsCorrect != 1 || len(r.Ignored) != 3 {
		t.Errorf("%d pairs correct, ignored %q; want 1 correct and the three bad elements named", r.PairsCorrect, r.Ignored)
	}
}

func TestTaskWithoutExpectedOutputsIsUnscored(t *testing.T) {
	tk := task()
	for i := range tk.Test {
		tk.Test[i].Output = nil
	}
	r, err := scoring.Score(tk, []byte(`[{"attempt_1":{"answer":[[1]]}}]`))
	if err != nil || r.Pairs != 0 || r.Score != nil || r.Correct() {
		t.Errorf("result %+v, err %v: want unscored (no pairs, no score)", r, err)
	}
}

func TestPairsWithoutOutputAreLeftOutOfTheShare(t *testing.T) {
	tk := task()
	tk.Test[1].Output = nil
	r, err := scoring.Score(tk, []byte(`[{"attempt_1":{"answer":[[1]],"metadata":{"pair_index":0}}}]`))
	if err != nil || r.Pairs != 2 || r.PairsCorrect != 1 || *r.Score != 0.5 {
		t.Errorf("result %+v, err %v: want 1 of 2 scorable pairs", r, err)
	}
}

func TestMalformedSubmissionScoresZeroWithAnError(t *testing.T) {
	for _, body := range []string{``, `{"attempt_1":{}}`, `[{"attempt_1":`} {
		r, err := scoring.Score(task(), []byte(body))
		if err == nil {
			t.Errorf("%q: no error", body)
		}
		if r.Pairs != 3 || r.Score == nil || *r.Score != 0 {
			t.Errorf("%q: result %+v, want score 0 of 3 pairs", body, r)
		}
	}
}

// The baseline's answers for generated tasks are right exactly when its rule
// is known: the scoring agrees with arcdata's own check.
func TestScoringAgreesWithTheBaselineOnGeneratedTasks(t *testing.T) {
	for _, id := range arcdata.IDs(200, 4) {
		tk := arcdata.Generate(id, 4)
		preds, _ := arcdata.Solve(tk)
		var elems []map[string]any
		for i, p := range preds {
			elems = append(elems, map[string]any{"attempt_1": answer(p, i), "attempt_2": nil})
		}
		r, err := scoring.Score(tk, submission(t, elems...))
		if err != nil {
			t.Fatal(err)
		}
		if r.Correct() != arcdata.Correct(tk, preds) {
			t.Errorf("task %s: scored correct=%v, arcdata says %v", id, r.Correct(), arcdata.Correct(tk, preds))
		}
	}
}

// Place keeps every attempt where it belongs, empty ones too, each marked.
func TestPlaceMarksEveryAttempt(t *testing.T) {
	answers, ignored, err := scoring.Place(task(), submission(t,
		map[string]any{"attempt_2": answer([][]int{{2}}, 1), "attempt_1": answer(nil, 1)},
		map[string]any{"attempt_1": answer([][]int{{7}}, 0)},
	))
	if err != nil || len(ignored) > 0 {
		t.Fatal(err, ignored)
	}
	if len(answers) != 3 || len(answers[0]) != 1 || len(answers[1]) != 2 || len(answers[2]) != 0 {
		t.Fatalf("answers per pair %v", answers)
	}
	if a := answers[1]; a[0].Attempt != "attempt_1" || a[0].Grid != nil || a[0].Correct || a[1].Attempt != "attempt_2" || !a[1].Correct {
		t.Errorf("pair 1: %+v, want an empty attempt_1 and a correct attempt_2", a)
	}
	if a := answers[0][0]; a.Correct || len(a.Grid) != 1 {
		t.Errorf("pair 0: %+v, want a wrong answer", a)
	}
}
