package money

import "testing"

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
