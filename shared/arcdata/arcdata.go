// Package arcdata makes ARC-style tasks and solves them: the data of local runs
// and the "model" of the built-in baseline worker.
//
// Every task is generated from its id and a seed alone, so a test (or the local
// runner) can tell in advance what a run will find: Rule names the
// transformation a task uses, and Known tells whether the baseline solver
// knows it. Generate guarantees that Solve answers a task correctly exactly
// when its rule is known; a small, deterministic share of tasks (about one in
// eight) uses a rule the solver does not know, so a baseline run's accuracy is
// below 1.
package arcdata

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
)

// Grid is an ARC grid: rows of colours 0–9. An alias, so that [][]int and
// [][][]int values pass as grids without conversion.
type Grid = [][]int

// Pair is one example: an input grid and the output the rule makes of it. A
// test pair's output may be absent (nil) when the answer is withheld.
type Pair struct {
	Input  Grid `json:"input"`
	Output Grid `json:"output,omitempty"`
}

// Task is an ARC task, in ARC's JSON shape:
// {"train":[{"input":[[..]],"output":[[..]]},..],"test":[{"input":..,"output":..}]},
// read strictly (see Decode and UnmarshalJSON) and checked by Validate.
type Task struct {
	Train []Pair `json:"train"`
	Test  []Pair `json:"test"`
}

// Rules: the transformations a task's output makes of its input.
const (
	RuleFlipHorizontal = "flip_horizontal"    // mirror left to right
	RuleFlipVertical   = "flip_vertical"      // mirror top to bottom
	RuleTranspose      = "transpose"          // rows become columns
	RuleRotate90       = "rotate_90"          // a quarter turn clockwise
	RuleRotate180      = "rotate_180"         // a half turn
	RuleRecolour       = "colour_permutation" // each colour replaced by another, the same everywhere
	RuleRollRight      = "roll_right"         // every row shifted right by one, wrapping (unknown to Solve)
	RuleRollDown       = "roll_down"          // every column shifted down by one, wrapping (unknown to Solve)
)

// KnownRules are the rules Solve tries, in the order it tries them.
var KnownRules = []string{RuleFlipHorizontal, RuleFlipVertical, RuleTranspose, RuleRotate90, RuleRotate180, RuleRecolour}

// UnknownRules are rules some tasks use that Solve does not know.
var UnknownRules = []string{RuleRollRight, RuleRollDown}

// UnknownPercent is the share of tasks, in percent (by a hash of id and seed),
// that use an unknown rule.
const UnknownPercent = 12

// Known tells whether Solve knows a rule.
func Known(rule string) bool { return slices.Contains(KnownRules, rule) }

// Limits of generated tasks.
const (
	MinSide, MaxSide   = 3, 10
	MinTrain, MaxTrain = 2, 4
	Colours            = 10
)

// Rule is the rule of the task Generate(taskID, seed) makes.
func Rule(taskID string, seed int64) string {
	r := newRNG(taskID, seed)
	if pick := r.intn(100); pick < UnknownPercent {
		return UnknownRules[pick%len(UnknownRules)]
	}
	return KnownRules[r.intn(len(KnownRules))]
}

// Generate makes the task with this id under this seed: 2–4 train pairs and
// one test pair (with its output), grids of 3–10 cells a side and colours
// 0–9, each output the task's Rule applied to its input. The same id and seed
// always give the same task. Solve answers it correctly if and only if its
// rule is Known.
func Generate(taskID string, seed int64) Task {
	rule := Rule(taskID, seed)
	r := newRNG("grids/"+taskID, seed) // a stream of its own, apart from Rule's
	var t Task
	// Random grids tell their rule apart from every other almost always; the
	// rare draw that does not (a symmetric grid, a colour missing from the
	// train inputs) is drawn again, so the guarantee above holds exactly.
	for range 64 {
		t = draw(r, rule)
		got, ok := Solve(t)
		if ok == Known(rule) && (!ok || Correct(t, got)) {
			break
		}
	}
	return t
}

func draw(r *rng, rule string) Task {
	// A palette of 3–6 colours per task, so that a colour permutation can be
	// learnt from the train pairs.
	palette := r.perm(Colours)[:3+r.intn(4)]
	var recolour []int
	if rule == RuleRecolour {
		for {
			recolour = r.perm(Colours)
			if !isIdentityOn(recolour, palette) {
				break
			}
		}
	}
	pair := func() Pair {
		h, w := MinSide+r.intn(MaxSide-MinSide+1), MinSide+r.intn(MaxSide-MinSide+1)
		in := make(Grid, h)
		for i := range in {
			in[i] = make([]int, w)
			for j := range in[i] {
				in[i][j] = palette[r.intn(len(palette))]
			}
		}
		var out Grid
		if rule == RuleRecolour {
			out = mapColours(in, recolour)
		} else {
			out = geometric[rule](in)
		}
		return Pair{Input: in, Output: out}
	}
	t := Task{Train: make([]Pair, MinTrain+r.intn(MaxTrain-MinTrain+1))}
	for i := range t.Train {
		t.Train[i] = pair()
	}
	t.Test = []Pair{pair()}
	return t
}

func isIdentityOn(perm, colours []int) bool {
	for _, c := range colours {
		if perm[c] != c {
			return false
		}
	}
	return true
}

// Solve is the baseline model: it tries each known rule on the train pairs and
// applies the first that fits them all to the test inputs. ok is false when no
// known rule fits (or the task is malformed); the grids are then the test
// inputs unchanged, the baseline's fallback guess.
func Solve(t Task) (grids [][][]int, ok bool) {
	fallback := make([][][]int, len(t.Test))
	for i, p := range t.Test {
		fallback[i] = clone(p.Input)
	}
	if len(t.Train) == 0 || t.Validate() != nil {
		return fallback, false
	}
	for _, rule := range KnownRules {
		apply, fits := learn(rule, t.Train)
		if !fits {
			continue
		}
		out := make([][][]int, len(t.Test))
		for i, p := range t.Test {
			if out[i], fits = apply(p.Input); !fits {
				break
			}
		}
		if fits {
			return out, true
		}
	}
	return fallback, false
}

// learn fits a rule to the train pairs: the function it makes of a new input
// (false when the input is outside what was learnt), and whether every pair
// agrees with it.
func learn(rule string, train []Pair) (func(Grid) (Grid, bool), bool) {
	if f, ok := geometric[rule]; ok {
		for _, p := range train {
			if !Equal(f(p.Input), p.Output) {
				return nil, false
			}
		}
		return func(g Grid) (Grid, bool) { return f(g), true }, true
	}
	if rule != RuleRecolour {
		return nil, false
	}
	m := make([]int, Colours)
	for i := range m {
		m[i] = -1
	}
	for _, p := range train {
		if !sameShape(p.Input, p.Output) {
			return nil, false
		}
		for i, row := range p.Input {
			for j, c := range row {
				o := p.Output[i][j]
				if m[c] != -1 && m[c] != o {
					return nil, false
				}
				m[c] = o
			}
		}
	}
	return func(g Grid) (Grid, bool) {
		for _, row := range g {
			for _, c := range row {
				if m[c] == -1 {
					return nil, false
				}
			}
		}
		return mapColours(g, m), true
	}, true
}

// Correct tells whether predicted answers every test pair of t exactly. A
// test pair without an output is never answered correctly.
func Correct(t Task, predicted [][][]int) bool {
	if len(predicted) != len(t.Test) || len(t.Test) == 0 {
		return false
	}
	for i, p := range t.Test {
		if p.Output == nil || !Equal(predicted[i], p.Output) {
			return false
		}
	}
	return true
}

// Equal tells whether two grids have the same shape and cells.
func Equal(a, b Grid) bool {
	return slices.EqualFunc(a, b, func(x, y []int) bool { return slices.Equal(x, y) })
}

// GridMaxSide is the most rows, and the most columns, an ARC grid has; the
// fewest is 1.
const GridMaxSide = 30

// Validate checks a task by ARC's rules (with Decode's, which only a reader of
// its JSON can check): at least one test pair; every pair with an input and
// every train pair with an output (a test pair's may be withheld, nil); every
// grid 1 to 30 rows of 1 to 30 cells, rectangular, of colours 0–9. Each
// problem names its field, e.g. "test[0].output: 31 rows, ARC grids have 1 to
// 30"; all of them are joined.
func (t Task) Validate() error {
	var errs []error
	check := func(what string, g Grid) {
		if err := validGrid(g); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	if len(t.Test) == 0 {
		errs = append(errs, errors.New("no test pair: an ARC task has at least one"))
	}
	for i, p := range t.Train {
		check(fmt.Sprintf("train[%d].input", i), p.Input)
		if p.Output == nil {
			errs = append(errs, fmt.Errorf("train[%d].output: missing (a train pair shows its output; only a test pair's may be withheld)", i))
		} else {
			check(fmt.Sprintf("train[%d].output", i), p.Output)
		}
	}
	for i, p := range t.Test {
		check(fmt.Sprintf("test[%d].input", i), p.Input)
		if p.Output != nil { // else withheld
			check(fmt.Sprintf("test[%d].output", i), p.Output)
		}
	}
	return errors.Join(errs...)
}

// validGrid checks one grid's size, shape and colours: its first problem.
func validGrid(g Grid) error {
	if g == nil {
		return errors.New("missing")
	}
	if len(g) < 1 || len(g) > GridMaxSide {
		return fmt.Errorf("%d rows, ARC grids have 1 to %d", len(g), GridMaxSide)
	}
	w := len(g[0])
	if w < 1 || w > GridMaxSide {
		return fmt.Errorf("%d columns, ARC grids have 1 to %d", w, GridMaxSide)
	}
	for i, row := range g {
		if len(row) != w {
			return fmt.Errorf("row %d has %d cells, row 0 has %d", i, len(row), w)
		}
		for j, c := range row {
			if c < 0 || c >= Colours {
				return fmt.Errorf("cell [%d][%d] is %d, not a colour 0-9", i, j, c)
			}
		}
	}
	return nil
}

// Cells is the number of cells of a grid.
func Cells(g Grid) int {
	n := 0
	for _, row := range g {
		n += len(row)
	}
	return n
}

// IDs gives n distinct ARC-looking task ids (8 lower-case hex digits), the
// same for the same seed.
func IDs(n int, seed int64) []string {
	if n <= 0 {
		return nil
	}
	r := newRNG("ids", seed)
	ids := make([]string, 0, n)
	seen := make(map[string]bool, n)
	for len(ids) < n {
		id := fmt.Sprintf("%08x", uint32(r.next()>>32))
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// The geometric rules, as functions of a (rectangular) grid.
var geometric = map[string]func(Grid) Grid{
	RuleFlipHorizontal: func(g Grid) Grid { return remap(len(g), width(g), func(i, j int) int { return g[i][width(g)-1-j] }) },
	RuleFlipVertical:   func(g Grid) Grid { return remap(len(g), width(g), func(i, j int) int { return g[len(g)-1-i][j] }) },
	RuleTranspose:      func(g Grid) Grid { return remap(width(g), len(g), func(i, j int) int { return g[j][i] }) },
	RuleRotate90:       func(g Grid) Grid { return remap(width(g), len(g), func(i, j int) int { return g[len(g)-1-j][i] }) },
	RuleRotate180: func(g Grid) Grid {
		return remap(len(g), width(g), func(i, j int) int { return g[len(g)-1-i][width(g)-1-j] })
	},
	RuleRollRight: func(g Grid) Grid {
		w := width(g)
		return remap(len(g), w, func(i, j int) int { return g[i][(j+w-1)%w] })
	},
	RuleRollDown: func(g Grid) Grid {
		h := len(g)
		return remap(h, width(g), func(i, j int) int { return g[(i+h-1)%h][j] })
	},
}

func width(g Grid) int {
	if len(g) == 0 {
		return 0
	}
	return len(g[0])
}

// remap builds an h×w grid whose cell (i, j) is at(i, j).
func remap(h, w int, at func(i, j int) int) Grid {
	out := make(Grid, h)
	for i := range out {
		out[i] = make([]int, w)
		for j := range out[i] {
			out[i][j] = at(i, j)
		}
	}
	return out
}

func mapColours(g Grid, m []int) Grid {
	return remap(len(g), width(g), func(i, j int) int { return m[g[i][j]] })
}

func sameShape(a, b Grid) bool {
	return len(a) == len(b) && width(a) == width(b)
}

func clone(g Grid) Grid {
	out := make(Grid, len(g))
	for i, row := range g {
		out[i] = slices.Clone(row)
	}
	return out
}

// rng is splitmix64: small, and its sequence for a seed is fixed forever
// (math/rand's helpers promise less), which the "same id and seed, same
// task" guarantee needs.
type rng struct{ s uint64 }

func newRNG(taskID string, seed int64) *rng {
	h := fnv.New64a()
	h.Write([]byte(taskID))
	return &rng{s: h.Sum64() ^ mix(uint64(seed))}
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix(r.s)
}

// intn is uniform enough in [0, n) for small n.
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

func (r *rng) perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := r.intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// mix is splitmix64's finalizer.
func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
