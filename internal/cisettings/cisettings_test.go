package cisettings_test

import (
	"strings"
	"testing"

	"arcbench/internal/cisettings"
)

// The repository's own settings are valid, and list what the workflows act on.
func TestTheRepositorysSettings(t *testing.T) {
	s, err := cisettings.LoadFrom("../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Where(func(st cisettings.Stage) bool { return st.Diff })) == 0 {
		t.Errorf("no stage is diffed on pull requests")
	}
	if _, ok := s.Stages[s.Benchmark.Stage]; !ok {
		t.Errorf("the benchmark stage %q is not listed", s.Benchmark.Stage)
	}
}

// A mistake in the settings is refused naming the field, never read as
// "off": a typo must not silently stop a deploy, or deploy prod on push.
func TestBadSettingsAreRefused(t *testing.T) {
	const secret = `"api_keys_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:arc-benchmark/api-keys-AbCdEf"`
	valid := `{"aws_account": "123456789012", "aws_region": "us-east-1", "prod_environment": "prod",
	  "stages": {"sandbox-ci": {"diff": true, "deploy": "push", ` + secret + `}, "prod": {"diff": true, "deploy": "environment", ` + secret + `}},
	  "benchmark": {"stage": "prod", "data_source": "evaluation", "budget_usd": "100"}}`
	if _, err := cisettings.Parse([]byte(valid)); err != nil {
		t.Fatalf("valid settings refused: %v", err)
	}
	for _, c := range []struct{ from, to, want string }{
		{`"aws_account": "123456789012"`, `"aws_account": "1234"`, "aws_account"},
		{`"aws_region": "us-east-1"`, `"aws_region": "virginia"`, "aws_region"},
		{`"deploy": "environment"`, `"deploy": "push"`, "stages.prod: only sandbox stages deploy on every push"},
		{`"deploy": "push"`, `"deploy": "on-push"`, `stages.sandbox-ci.deploy "on-push"`},
		{`"prod_environment": "prod",`, ``, "needs prod_environment"},
		{`"diff": true, "deploy": "push"`, `"dif": true, "deploy": "push"`, `unknown field "dif"`},
		{`"stage": "prod"`, `"stage": "staging"`, `benchmark.stage "staging"`},
		{`"budget_usd": "100"`, `"budget_usd": "lots"`, "benchmark.budget_usd"},
		{`"sandbox-ci": {`, `"Sandbox_CI": {`, "stages.Sandbox_CI"},
		{`api-keys-AbCdEf"}, "prod"`, `api-keys"}, "prod"`, "stages.sandbox-ci.api_keys_secret_arn"},
	} {
		bad := strings.Replace(valid, c.from, c.to, 1)
		if bad == valid {
			t.Fatalf("case %q does not change the settings", c.want)
		}
		if _, err := cisettings.Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s -> %s: %v, want an error naming %q", c.from, c.to, err, c.want)
		}
	}
}
