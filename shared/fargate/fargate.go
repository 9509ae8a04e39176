// Package fargate prices what a Batch job ran on AWS Fargate: its vCPU and
// memory for the time it ran, at the On-Demand Linux price of its region and
// CPU architecture. The price table is the one place prices live; a region
// not in it has no price (ErrNoPrice), never a guessed one.
package fargate

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"

	"arcbench/shared/money"
)

// PriceSource is where the table's prices come from, and when they were read.
const PriceSource = "AWS Fargate pricing, https://aws.amazon.com/fargate/pricing/ " +
	"(On-Demand, Linux/x86 and Linux/ARM, per vCPU-hour and per GB-hour), as published on 2026-12-05"

// CPU architectures, as a job definition's RuntimePlatform names them.
const (
	ArchX86_64 = "X86_64"
	ArchARM64  = "ARM64"
)

// Price is what Fargate charges per hour for one vCPU and one GB of memory,
// in USD, as exact decimal text.
type Price struct {
	VCPUHour string
	GBHour   string
}

// prices are Fargate's On-Demand Linux prices by region and architecture
// (PriceSource). The US regions below share one price. To price another
// region, add its row from the same page.
var prices = map[string]map[string]Price{
	"us-east-1": usPrices,
	"us-east-2": usPrices,
	"us-west-2": usPrices,
}

var usPrices = map[string]Price{
	ArchX86_64: {VCPUHour: "0.04048", GBHour: "0.004445"},
	ArchARM64:  {VCPUHour: "0.03238", GBHour: "0.00356"},
}

// MinimumBilledSeconds is Fargate's minimum charge for a Linux task: per
// second, with a one-minute minimum.
const MinimumBilledSeconds = 60

// ErrNoPrice is returned for a region or architecture the table has no price for.
var ErrNoPrice = errors.New("no Fargate price")

// PriceOf is the price of a region and architecture.
func PriceOf(region, arch string) (Price, error) {
	if arch == "" {
		arch = ArchX86_64 // Fargate's default when a job definition names none
	}
	p, ok := prices[region][arch]
	if !ok {
		return Price{}, fmt.Errorf("%w for %s in %s (shared/fargate's table has %v)", ErrNoPrice, arch, region, Regions())
	}
	return p, nil
}

// Regions are the regions the table prices, sorted.
func Regions() []string {
	var out []string
	for r := range prices {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Size is a job's vCPU and memory as its job definition gives them: vCPU as
// Batch writes it ("0.25", "1"), memory in MiB.
type Size struct {
	VCPU      string
	MemoryMiB int
}

func (s Size) String() string {
	return fmt.Sprintf("%s vCPU, %s GiB", s.VCPU, strconv.FormatFloat(float64(s.MemoryMiB)/1024, 'f', -1, 64))
}

// sizes are the vCPU and memory pairs Fargate runs a Linux task with (Batch
// takes the same, AWS Batch user guide, "resourceRequirements"): memory from
// min to max MiB in steps of step.
var sizes = []struct {
	vcpu           string
	min, max, step int
}{
	{"0.25", 512, 2048, 512}, // 512, 1024, 2048: 1536 is refused
	{"0.5", 1024, 4096, 1024},
	{"1", 2048, 8192, 1024},
	{"2", 4096, 16384, 1024},
	{"4", 8192, 30720, 1024},
	{"8", 16384, 61440, 4096},
	{"16", 32768, 122880, 8192},
}

// Check tells whether Fargate runs a job of this size, and if not what it does run.
func (s Size) Check() error {
	for _, z := range sizes {
		if z.vcpu != s.VCPU {
			continue
		}
		ok := s.MemoryMiB >= z.min && s.MemoryMiB <= z.max && (s.MemoryMiB-z.min)%z.step == 0
		if z.vcpu == "0.25" && s.MemoryMiB == 1536 {
			ok = false
		}
		if !ok {
			return fmt.Errorf("memory %d MiB: a Fargate job of %s vCPU has %s MiB", s.MemoryMiB, s.VCPU, memoryChoices(z.vcpu, z.min, z.max, z.step))
		}
		return nil
	}
	var v []string
	for _, z := range sizes {
		v = append(v, z.vcpu)
	}
	return fmt.Errorf("vCPU %q: a Fargate job has %v vCPU", s.VCPU, v)
}

func memoryChoices(vcpu string, min, max, step int) string {
	if vcpu == "0.25" {
		return "512, 1024 or 2048"
	}
	return fmt.Sprintf("%d to %d in steps of %d", min, max, step)
}

// HourlyUSD is what a job of this size costs per hour at price p.
func (s Size) HourlyUSD(p Price) (*big.Rat, error) {
	vcpu, ok1 := new(big.Rat).SetString(s.VCPU)
	vh, ok2 := new(big.Rat).SetString(p.VCPUHour)
	gh, ok3 := new(big.Rat).SetString(p.GBHour)
	if !ok1 || !ok2 || !ok3 || vcpu.Sign() <= 0 || s.MemoryMiB <= 0 {
		return nil, fmt.Errorf("cannot price %s at %+v", s, p)
	}
	gb := big.NewRat(int64(s.MemoryMiB), 1024)
	return new(big.Rat).Add(new(big.Rat).Mul(vcpu, vh), new(big.Rat).Mul(gb, gh)), nil
}

// Run is one run of a job's container: its size and how long it ran.
type Run struct {
	Size
	Arch string
	// Millis is how long it ran, from Batch's StartedAt to its StoppedAt.
	Millis int64
}

// BilledSeconds is the time Fargate bills for a run: whole seconds, at
// least a minute.
func BilledSeconds(millis int64) int64 {
	s := (millis + 999) / 1000
	return max(s, MinimumBilledSeconds)
}

// Cost is what the runs cost in region: each billed per second with the
// one-minute minimum, summed, as exact decimal text (money.Scale places).
func Cost(region string, runs []Run) (string, error) {
	var total money.Sum
	for _, r := range runs {
		p, err := PriceOf(region, r.Arch)
		if err != nil {
			return "", err
		}
		hourly, err := r.HourlyUSD(p)
		if err != nil {
			return "", err
		}
		c := new(big.Rat).Mul(hourly, big.NewRat(BilledSeconds(r.Millis), 3600))
		if err := total.Add(c.FloatString(money.Scale + 2)); err != nil {
			return "", err
		}
	}
	return total.String(), nil
}
