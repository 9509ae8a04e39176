package arcdata

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestGenerateIsDeterministic(t *testing.T) {
	a, _ := json.Marshal(Generate("007bbfb7", 1))
	b, _ := json.Marshal(Generate("007bbfb7", 1))
	if string(a) != string(b) {
		t.Fatalf("same id and seed gave different tasks:\n%s\n%s", a, b)
	}
	c, _ := json.Marshal(Generate("007bbfb7", 2))
	d, _ := json.Marshal(Generate("00d62c1b", 1))
	if string(a) == string(c) || string(a) == string(d) {
		t.Fatal("another seed or id gave the same task")
	}
}

func TestGenerateShape(t *testing.T) {
	for _, id := range IDs(300, 7) {
		task := Generate(id, 7)
		if err := task.Validate(); err != nil {
			t.Fatalf("%s: invalid task: %v", id, err)
		}
		if n := len(task.Train); n < MinTrain || n > MaxTrain {
			t.Errorf("%s: %d train pairs", id, n)
		}
		if len(task.Test) != 1 {
			t.Errorf("%s: %d test pairs", id, len(task.Test))
		}
		rule := Rule(id, 7)
		for _, p := range append(append([]Pair{}, task.Train...), task.Test...) {
			h, w := len(p.Input), len(p.Input[0])
			if h < MinSide || h > MaxSide || w < MinSide || w > MaxSide {
				t.Errorf("%s: %dx%d grid", id, h, w)
			}
			if f, ok := geometric[rule]; ok && !Equal(f(p.Input), p.Output) {
				t.Errorf("%s: output is not %s of the input", id, rule)
			}
		}
	}
}

func TestTaskMarshalsToARCJSON(t *testing.T) {
	b, err := json.Marshal(Generate("3aa6fb7a", 1))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string][]map[string][][]int
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("not ARC's shape: %v\n%s", err, b)
	}
	if len(raw) != 2 || raw["train"] == nil || raw["test"] == nil {
		t.Fatalf("want exactly train and test, got %s", b)
	}
	for _, p := range append(raw["train"], raw["test"]...) {
		if len(p) != 2 || p["input"] == nil || p["output"] == nil {
			t.Fatalf("want pairs of input and output, got %v", p)
		}
	}
	if !strings.HasPrefix(string(b), `{"train":[{"input":[[`) {
		t.Fatalf("unexpected JSON: %.60s", b)
	}
	var back Task
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, Generate("3aa6fb7a", 1)) {
		t.Fatalf("round trip changed the task (%v)", err)
	}
}

// Solve is right exactly on the tasks whose rule it knows, and that is most
// of them but not all.
func TestSolveIsRightExactlyOnKnownRules(t *testing.T) {
	const n = 500
	correct := 0
	rules := map[string]int{}
	for _, id := range IDs(n, 42) {
		task := Generate(id, 42)
		rule := Rule(id, 42)
		rules[rule]++
		got, ok := Solve(task)
		right := Correct(task, got)
		if ok != Known(rule) || right != Known(rule) {
			t.Errorf("%s (%s): ok=%v correct=%v, want both %v", id, rule, ok, right, Known(rule))
		}
		if right {
			correct++
		}
	}
	for _, r := range append(append([]string{}, KnownRules...), UnknownRules...) {
		if rules[r] == 0 {
			t.Errorf("no task of %d uses %s", n, r)
		}
	}
	acc := float64(correct) / n
	if acc < 0.80 || acc > 0.95 {
		t.Errorf("accuracy %.3f, want about %.2f", acc, 1-UnknownPercent/100.0)
	}
	t.Logf("accuracy %.3f over %d tasks; rules %v", acc, n, rules)
}

func TestSolveByHand(t *testing.T) {
	g := Grid{{1, 2, 3}, {4, 5, 6}}
	cases := map[string]Grid{
		RuleFlipHorizontal: {{3, 2, 1}, {6, 5, 4}},
		RuleFlipVertical:   {{4, 5, 6}, {1, 2, 3}},
		RuleTranspose:      {{1, 4}, {2, 5}, {3, 6}},
		RuleRotate90:       {{4, 1}, {5, 2}, {6, 3}},
		RuleRotate180:      {{6, 5, 4}, {3, 2, 1}},
		RuleRecolour:       {{2, 3, 4}, {5, 6, 7}},
		RuleRollRight:      {{3, 1, 2}, {6, 4, 5}},
		RuleRollDown:       {{4, 5, 6}, {1, 2, 3}},
	}
	for rule, want := range cases {
		if f, ok := geometric[rule]; ok && !Equal(f(g), want) {
			t.Errorf("%s of %v = %v, want %v", rule, g, f(g), want)
		}
	}
	// A recolouring learnt from one pair applies to a new grid of the same colours.
	task := Task{
		Train: []Pair{{Input: g, Output: cases[RuleRecolour]}},
		Test:  []Pair{{Input: Grid{{6, 5}, {4, 1}}, Output: Grid{{7, 6}, {5, 2}}}},
	}
	if got, ok := Solve(task); !ok || !Correct(task, got) {
		t.Errorf("recolour: got %v ok=%v", got, ok)
	}
	// A colour the train pairs never showed cannot be recoloured.
	task.Test[0].Input = Grid{{9}}
	if got, ok := Solve(task); ok || !Equal(got[0], Grid{{9}}) {
		t.Errorf("unseen colour: got %v ok=%v, want the input back and ok=false", got, ok)
	}
}

func TestSolveRefusesMalformedTasks(t *testing.T) {
	for name, task := range map[string]Task{
		"no train":     {Test: []Pair{{Input: Grid{{1}}}}},
		"no test":      {Train: []Pair{{Input: Grid{{1}}, Output: Grid{{1}}}}},
		"ragged":       {Train: []Pair{{Input: Grid{{1, 2}, {3}}, Output: Grid{{1}}}}, Test: []Pair{{Input: Grid{{1}}}}},
		"bad colour":   {Train: []Pair{{Input: Grid{{1}}, Output: Grid{{11}}}}, Test: []Pair{{Input: Grid{{1}}}}},
		"empty input":  {Train: []Pair{{Input: Grid{{1}}, Output: Grid{{1}}}}, Test: []Pair{{Input: Grid{}}}},
		"train no out": {Train: []Pair{{Input: Grid{{1}}}}, Test: []Pair{{Input: Grid{{1}}}}},
	} {
		got, ok := Solve(task) // must not panic
		if ok || len(got) != len(task.Test) {
			t.Errorf("%s: ok=%v, %d grids", name, ok, len(got))
		}
		if name != "no train" && task.Validate() == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}

func TestCorrect(t *testing.T) {
	task := Task{Test: []Pair{{Input: Grid{{1}}, Output: Grid{{2}}}}}
	if !Correct(task, [][][]int{{{2}}}) || Correct(task, [][][]int{{{1}}}) || Correct(task, nil) {
		t.Error("Correct compares predictions with test outputs")
	}
	task.Test[0].Output = nil
	if Correct(task, [][][]int{{{2}}}) {
		t.Error("a withheld output is never answered correctly")
	}
}

func TestIDs(t *testing.T) {
	ids := IDs(1000, 3)
	if len(ids) != 1000 {
		t.Fatalf("%d ids", len(ids))
	}
	hex8 := regexp.MustCompile(`^[0-9a-f]{8}$`)
	seen := map[string]bool{}
	for _, id := range ids {
		if !hex8.MatchString(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	if !reflect.DeepEqual(ids, IDs(1000, 3)) || reflect.DeepEqual(ids[:10], IDs(10, 4)) {
		t.Error("IDs must be a function of the seed")
	}
	if !reflect.DeepEqual(IDs(10, 3), ids[:10]) {
		t.Error("IDs(n) must be a prefix of IDs(m > n)")
	}
	if IDs(0, 1) != nil {
		t.Error("IDs(0) must be empty")
	}
}
