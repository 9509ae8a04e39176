package config

import (
	"strings"
	"testing"

	"arcbench/shared/model"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{RunsTable: "arc_benchmark_runs", TasksTable: "arc_benchmark_tasks", MaxRetries: 3, Namespace: "ArcBenchmark", RetryBackoff: 15,
		StopAfterFailures: 20}
	if c != want {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
}

func TestFromEnv(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		"RUNS_TABLE": "r", "TASKS_TABLE": "t", "S3_BUCKET": "b", "MAX_RETRIES": "5", "CLOUDWATCH_NAMESPACE": "N", "RETRY_BACKOFF_SECONDS": "60",
		"RUN_BUDGET_USD": "12.5", "STOP_AFTER_FAILURES": "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c != (Config{RunsTable: "r", TasksTable: "t", Bucket: "b", MaxRetries: 5, Namespace: "N", RetryBackoff: 60, RunBudgetUSD: "12.5"}) {
		t.Errorf("got %+v", c)
	}
}

func TestMalformedMaxRetriesIsNamed(t *testing.T) {
	for _, v := range []string{"abc", "0", "-2", "1.5"} {
		_, err := FromEnv(env(map[string]string{"MAX_RETRIES": v}))
		if err == nil || !strings.Contains(err.Error(), "MAX_RETRIES") {
			t.Errorf("MAX_RETRIES=%q: error %v, want one naming MAX_RETRIES", v, err)
		}
	}
}

func TestMalformedGuardsAreNamed(t *testing.T) {
	for name, values := range map[string][]string{"RUN_BUDGET_USD": {"abc", "0", "-1", "NaN"}, "STOP_AFTER_FAILURES": {"abc", "-1", "2.5"}} {
		for _, v := range values {
			if _, err := FromEnv(env(map[string]string{name: v})); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%q: error %v, want one naming it", name, v, err)
			}
		}
	}
}

func TestMalformedRetryBackoffIsNamed(t *testing.T) {
	for _, v := range []string{"abc", "-1", "3601", "1.5"} {
		_, err := FromEnv(env(map[string]string{"RETRY_BACKOFF_SECONDS": v}))
		if err == nil || !strings.Contains(err.Error(), "RETRY_BACKOFF_SECONDS") {
			t.Errorf("RETRY_BACKOFF_SECONDS=%q: error %v, want one naming it", v, err)
		}
	}
}

// Every handler has its memory declared once, here, for infra and tests.
func TestEveryHandlerHasItsMemory(t *testing.T) {
	for _, name := range model.Handlers {
		if FunctionMemoryMiB[name] < 128 {
			t.Errorf("%s: memory %d MiB", name, FunctionMemoryMiB[name])
		}
	}
	if len(FunctionMemoryMiB) != len(model.Handlers) {
		t.Errorf("memory for %d functions, %d handlers", len(FunctionMemoryMiB), len(model.Handlers))
	}
	if got := GoMemLimit(256); got != "204MiB" {
		t.Errorf("GOMEMLIMIT for 256 MiB: %s", got)
	}
}
