// Package money sums decimal amounts exactly. DynamoDB stores numbers as
// decimal strings; a sum of costs goes through big.Rat, never float64, so
// 0.1 + 0.2 is 0.3.
package money

import (
	"encoding/json"
	"fmt"
	"math/big"
)

// Sum is an exact running total of decimal amounts. The zero value is 0.
type Sum struct {
	r big.Rat
}

// Add adds one decimal amount ("0.0125", "3", "1E-3").
func (s *Sum) Add(amount string) error {
	var r big.Rat
	if _, ok := r.SetString(amount); !ok || !isDecimal(&r) {
		return fmt.Errorf("%q is not a decimal amount", amount)
	}
	s.r.Add(&s.r, &r)
	return nil
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
