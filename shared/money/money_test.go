package money

import (
	"strings"
	"testing"
)

func TestSumIsExact(t *testing.T) {
	cases := []struct {
		amounts []string
		want    string
	}{
		{nil, "0"},
		{[]string{"0.1", "0.2"}, "0.3"},
		{[]string{"0.0125", "0.0375"}, "0.05"},
		{[]string{"1E-3", "2"}, "2.001"},
		{[]string{"10", "-2.5"}, "7.5"},
		{[]string{"0.000000001", "123456789.1"}, "123456789.100000001"},
	}
	for _, c := range cases {
		var s Sum
		for _, a := range c.amounts {
			if err := s.Add(a); err != nil {
				t.Fatalf("Add(%q): %v", a, err)
			}
		}
		if got := s.String(); got != c.want {
			t.Errorf("sum of %v = %s, want %s", c.amounts, got, c.want)
		}
	}
}

func TestSumManySmallAmounts(t *testing.T) {
	var s Sum
	for range 10000 {
		if err := s.Add("0.0001"); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Number(); got != "1" {
		t.Errorf("10,000 x 0.0001 = %s, want 1", got)
	}
}

func TestAddRejectsNonDecimal(t *testing.T) {
	var s Sum
	for _, bad := range []string{"", "abc", "1/3", "NaN"} {
		if err := s.Add(bad); err == nil {
			t.Errorf("Add(%q) accepted a value that is not a decimal amount", bad)
		}
	}
	if s.String() != "0" {
		t.Errorf("rejected amounts changed the sum to %s", s.String())
	}
}

// Every amount is kept to 1e-12: one cost of 1E-50 cannot push a total past
// DynamoDB's 38 significant digits.
func TestAmountsAreKeptToAFixedScale(t *testing.T) {
	cases := []struct {
		amounts []string
		want    string
	}{
		{[]string{"1E-50"}, "0"},
		{[]string{"123456.789", "1E-50"}, "123456.789"},
		{[]string{"0.00011220000000000002"}, "0.0001122"}, // a float's noise, as the benchmark's worker writes costs
		{[]string{"0.0000000000005"}, "0"},                // half to even: down
		{[]string{"0.0000000000015"}, "0.000000000002"},   // half to even: up
		{[]string{"0.0000000000006", "0.0000000000006"}, "0.000000000002"},
	}
	for _, c := range cases {
		var s Sum
		for _, a := range c.amounts {
			if err := s.Add(a); err != nil {
				t.Fatal(err)
			}
		}
		if got := s.String(); got != c.want {
			t.Errorf("sum of %v = %s, want %s", c.amounts, got, c.want)
		}
	}
	var big Sum
	for range 100000 {
		_ = big.Add("999999999.999999999999")
	}
	if n := len(strings.ReplaceAll(big.String(), ".", "")); n > 38 {
		t.Errorf("100,000 maximal costs sum to %d digits, over DynamoDB's 38", n)
	}
}

func TestCostRefusesWhatIsNotAPrice(t *testing.T) {
	for _, bad := range []string{"-0.01", "1E+30", "abc", "", "0x10", "1/3", "1E+999999999"} {
		if _, err := Cost(bad); err == nil {
			t.Errorf("Cost(%q) accepted", bad)
		}
	}
	for in, want := range map[string]string{"0.0012": "0.0012", "1E-3": "0.001", "3": "3", "1E-50": "0"} {
		if got, err := Cost(in); err != nil || got != want {
			t.Errorf("Cost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestCostsShowModelComputeAndTheirExactSum(t *testing.T) {
	for _, c := range []struct {
		costs Costs
		want  string
	}{
		{Costs{ModelUSD: "0.1", ComputeUSD: "0.2"}, "$0.3 ($0.1 model + $0.2 compute)"},
		{Costs{ModelUSD: "0.0012", UnreadableCosts: 2, ComputeUSD: "0.000514270833", UnpricedJobs: 1},
			"$0.001714270833 ($0.0012 model + $0.000514270833 compute; 2 tasks with unreadable costs, 1 job unpriced left out)"},
		{Costs{}, "$0 ($0 model + $0 compute)"},
	} {
		if got := c.costs.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.costs, got, c.want)
		}
	}
}
