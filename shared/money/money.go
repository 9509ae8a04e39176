// Package money sums decimal amounts exactly, at a fixed scale. DynamoDB
// stores numbers as decimal strings of at most 38 significant digits; a sum
// of costs goes through big.Rat, never float64 (0.1 + 0.2 is 0.3), and every
// amount is kept to Scale decimal places, so that no valid cost (1E-50, say)
// can push a total past DynamoDB's precision.
package money

import (
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// Scale is how many decimal places amounts are kept to: 1e-12 USD, far
// below any real price, and 26 digits left for the whole dollars.
const Scale = 12

// MaxCost bounds one task's cost: more is a worker's error, not a price.
const MaxCost = 1_000_000_000

var unit = new(big.Int).Exp(big.NewInt(10), big.NewInt(Scale), nil)

// Sum is an exact running total of decimal amounts, each kept to Scale
// places. The zero value is 0.
type Sum struct {
	r big.Rat
}

// Add adds one decimal amount ("0.0125", "3", "1E-3"), rounded to Scale
// places (half to even).
func (s *Sum) Add(amount string) error {
	r, err := parse(amount)
	if err != nil {
		return err
	}
	s.r.Add(&s.r, r)
	return nil
}

// decimalText is a decimal number as DynamoDB and JSON write one (big.Rat
// would also take 0x10 and 1/3).
var decimalText = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$`) // an exponent of 1E+999999999 would take big.Rat minutes

// parse reads a decimal amount, rounded to Scale places.
func parse(amount string) (*big.Rat, error) {
	var r big.Rat
	if !decimalText.MatchString(amount) {
		return nil, fmt.Errorf("%q is not a decimal amount", amount)
	}
	if _, ok := r.SetString(amount); !ok || !isDecimal(&r) {
		return nil, fmt.Errorf("%q is not a decimal amount", amount)
	}
	// round(r * 10^Scale) / 10^Scale, half to even
	scaled := new(big.Rat).Mul(&r, new(big.Rat).SetInt(unit))
	q, m := new(big.Int).QuoRem(scaled.Num(), scaled.Denom(), new(big.Int))
	twice := new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2))
	if c := twice.Cmp(scaled.Denom()); c > 0 || (c == 0 && q.Bit(0) == 1) {
		if scaled.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return new(big.Rat).SetFrac(q, unit), nil
}

// Cost reads one task's cost, as a worker wrote it: a decimal amount from 0
// to MaxCost, returned as exact text at Scale places at most.
func Cost(text string) (string, error) {
	r, err := parse(text)
	if err != nil {
		return "", err
	}
	if r.Sign() < 0 || r.Cmp(new(big.Rat).SetInt64(MaxCost)) > 0 {
		return "", fmt.Errorf("%q is not a cost: want 0 to %d USD", text, MaxCost)
	}
	return r.FloatString(decimalPlaces(r.Denom())), nil
}

// Shown is a total as a person reads it: "$0.2574", and beside it the
// tasks whose cost could not be read and is not in it ("$0.2574 + 8 tasks
// with unreadable costs"): a total never leaves something out silently.
func Shown(total string, unreadable int) string {
	s := "$" + total
	switch {
	case unreadable == 1:
		s += " + 1 task with an unreadable cost"
	case unreadable > 1:
		s += fmt.Sprintf(" + %d tasks with unreadable costs", unreadable)
	}
	return s
}

// String is the exact decimal text of the total, without trailing zeros.
func (s *Sum) String() string {
	return s.r.FloatString(decimalPlaces(s.r.Denom()))
}

// Number is the total as a JSON number with its exact digits.
func (s *Sum) Number() json.Number {
	return json.Number(s.String())
}

var (
	two  = big.NewInt(2)
	five = big.NewInt(5)
)

// decimalPlaces is the fewest digits after the point that represent a value
// with denominator d exactly; d must be 2^a·5^b, the answer is max(a, b).
func decimalPlaces(d *big.Int) int {
	a, rest := factorOut(d, two)
	b, _ := factorOut(rest, five)
	return max(a, b)
}

func isDecimal(r *big.Rat) bool {
	_, rest := factorOut(r.Denom(), two)
	_, rest = factorOut(rest, five)
	return rest.Cmp(big.NewInt(1)) == 0
}

func factorOut(n, p *big.Int) (int, *big.Int) {
	k := 0
	q, m := new(big.Int), new(big.Int)
	n = new(big.Int).Set(n)
	for n.Sign() != 0 {
		q.QuoRem(n, p, m)
		if m.Sign() != 0 {
			break
		}
		n.Set(q)
		k++
	}
	return k, n
}

// Compare compares two decimal amounts exactly: -1, 0 or +1 as a < b, a == b,
// a > b (each rounded to Scale places, as every amount here is).
func Compare(a, b string) (int, error) {
	ra, err := parse(a)
	if err != nil {
		return 0, err
	}
	rb, err := parse(b)
	if err != nil {
		return 0, err
	}
	return ra.Cmp(rb), nil
}

// Budget reads a run's budget: an amount of USD above 0 (and at most
// MaxCost), returned as exact text as Cost returns it. Handlers, the CDK
// context and the CLI read budgets with it alike.
func Budget(text string) (string, error) {
	b, err := Cost(text)
	if err != nil || b == "0" {
		return "", fmt.Errorf("%q is not a budget: want an amount of USD above 0 (e.g. 25 or 12.50)", text)
	}
	return b, nil
}

// Plus is the sum of two totals, as a new total.
func (s *Sum) Plus(o *Sum) *Sum {
	var t Sum
	t.r.Add(&s.r, &o.r)
	return &t
}

// Add sums decimal amounts (each as Sum.Add reads it) exactly: what a model
// cost and a compute cost make together.
func Add(amounts ...string) (string, error) {
	var s Sum
	for _, a := range amounts {
		if a == "" {
			continue
		}
		if err := s.Add(a); err != nil {
			return "", err
		}
	}
	return s.String(), nil
}

// Costs are a run's or a task's costs as recorded: the model's (what the
// worker recorded, UnreadableCosts tasks left out) and the compute's (the
// Fargate cost of its jobs, UnpricedJobs left out for want of a price).
type Costs struct {
	ModelUSD        string
	UnreadableCosts int
	ComputeUSD      string
	UnpricedJobs    int
}

// Total is model and compute cost together, exact ("0" for none).
func (c Costs) Total() string {
	t, err := Add(c.ModelUSD, c.ComputeUSD)
	if err != nil {
		return c.ModelUSD
	}
	return t
}

// String shows the costs as a person reads them, the sum first:
// "$0.0151 ($0.0123 model + $0.0028 compute)", and what the sum leaves out:
// "...; 2 tasks with unreadable costs, 1 job unpriced)".
func (c Costs) String() string {
	var out []string
	switch {
	case c.UnreadableCosts == 1:
		out = append(out, "1 task with an unreadable cost")
	case c.UnreadableCosts > 1:
		out = append(out, fmt.Sprintf("%d tasks with unreadable costs", c.UnreadableCosts))
	}
	switch {
	case c.UnpricedJobs == 1:
		out = append(out, "1 job unpriced")
	case c.UnpricedJobs > 1:
		out = append(out, fmt.Sprintf("%d jobs unpriced", c.UnpricedJobs))
	}
	s := fmt.Sprintf("$%s ($%s model + $%s compute", c.Total(), orZero(c.ModelUSD), orZero(c.ComputeUSD))
	if len(out) > 0 {
		s += "; " + strings.Join(out, ", ") + " left out"
	}
	return s + ")"
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}
