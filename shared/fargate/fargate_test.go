package fargate

import (
	"errors"
	"testing"
)

func TestCostIsBilledPerSecondWithAMinuteMinimum(t *testing.T) {
	small := Size{VCPU: "0.25", MemoryMiB: 512}
	for _, c := range []struct {
		name   string
		region string
		runs   []Run
		want   string
	}{
		// 0.25 × 0.04048 + 0.5 × 0.004445 = 0.0123425 USD an hour; 60 s is 1/60 of it.
		{"a 10 s job pays the minute", "us-east-1", []Run{{Size: small, Arch: ArchX86_64, Millis: 10_000}}, "0.000205708333"},
		{"a minute", "us-east-1", []Run{{Size: small, Arch: ArchX86_64, Millis: 60_000}}, "0.000205708333"},
		// An hour and a part second: 3601 s.
		{"seconds round up", "us-east-1", []Run{{Size: small, Millis: 3_600_001}}, "0.012345928472"},
		// 1 × 0.03238 + 2 × 0.00356 = 0.0395 an hour, for 30 minutes.
		{"arm64", "us-west-2", []Run{{Size: Size{VCPU: "1", MemoryMiB: 2048}, Arch: ArchARM64, Millis: 1_800_000}}, "0.01975"},
		// Two attempts of one job (Batch retried it): each pays its own minute.
		{"each run is billed", "us-east-2", []Run{{Size: small, Millis: 1}, {Size: small, Millis: 1}}, "0.000411416666"}, // each rounded to 1e-12,
	} {
		got, err := Cost(c.region, c.runs)
		if err != nil || got != c.want {
			t.Errorf("%s: Cost = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

func TestARegionWithoutAPriceIsNeverGuessed(t *testing.T) {
	_, err := Cost("eu-central-1", []Run{{Size: Size{VCPU: "0.25", MemoryMiB: 512}, Millis: 60_000}})
	if !errors.Is(err, ErrNoPrice) {
		t.Fatalf("Cost in an unlisted region: %v, want ErrNoPrice", err)
	}
	if _, err := PriceOf("us-east-1", "S390X"); !errors.Is(err, ErrNoPrice) {
		t.Fatalf("an unknown architecture: %v, want ErrNoPrice", err)
	}
}

func TestOnlyFargateSizesPass(t *testing.T) {
	for _, ok := range []Size{{"0.25", 512}, {"0.25", 1024}, {"0.25", 2048}, {"0.5", 4096}, {"1", 2048}, {"4", 30720}, {"16", 122880}} {
		if err := ok.Check(); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	for _, bad := range []Size{{"0.25", 1536}, {"0.25", 4096}, {"1", 1024}, {"1", 2500}, {"3", 8192}, {"", 512}, {"0.5", 0}} {
		if err := bad.Check(); err == nil {
			t.Errorf("%v passed; Fargate does not run it", bad)
		}
	}
}
