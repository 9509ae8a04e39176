// Package cisettings reads ci/settings.json, the one file that says where
// the repository's GitHub workflows act: the AWS account and region, which
// stages a pull request diffs and which a push to main deploys (prod only
// through a GitHub environment with required reviewers), and where a
// benchmark trigger starts its runs. The workflows read it with jq, the CDK
// app's CI stack (arc-benchmark-ci) with this package, so the roles trust
// exactly what the workflows do.
package cisettings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"

	"arcbench/shared/config"
	"arcbench/shared/money"
)

// Path is the settings file, relative to the repository's root.
const Path = "ci/settings.json"

// The roles the workflows assume, made by the CI stack (arc-benchmark-ci):
// fixed names, so that a workflow builds their ARNs from the account.
const (
	// RoleDiff: pull requests' cdk diff (read-only).
	RoleDiff = "arc-benchmark-ci-diff"
	// RoleDeploy: pushes to main; it may only assume the CDK bootstrap's roles.
	RoleDeploy = "arc-benchmark-ci-deploy"
	// RoleStart: a benchmark trigger's arcbench start.
	RoleStart = "arc-benchmark-ci-start"
)

// How a push to main deploys a stage (Stage.Deploy).
const (
	// DeployNever: diffed on pull requests only.
	DeployNever = ""
	// DeployOnPush deploys the stage on every push to main: sandbox stages.
	DeployOnPush = "push"
	// DeployThroughEnvironment deploys on a push to main only once the
	// GitHub environment ProdEnvironment's required reviewers approve.
	DeployThroughEnvironment = "environment"
)

// Stage is what the workflows do with one stage.
type Stage struct {
	// Diff: pull requests show its `cdk diff` as a comment.
	Diff bool `json:"diff"`
	// Deploy is DeployNever, DeployOnPush or DeployThroughEnvironment.
	Deploy string `json:"deploy"`
	// APIKeysSecretARN is the complete ARN of the stage's provider keys
	// (context apiKeysSecretArn, which every synth of a deploy needs).
	APIKeysSecretARN string `json:"api_keys_secret_arn"`
}

// Benchmark is where a benchmark trigger starts its runs: every task of
// the data source on the stage, within the budget.
type Benchmark struct {
	Stage             string `json:"stage"`
	DataSource        string `json:"data_source"`
	BudgetUSD         string `json:"budget_usd,omitempty"`
	StopAfterFailures *int   `json:"stop_after_failures,omitempty"`
}

// Settings are ci/settings.json.
type Settings struct {
	AWSAccount string           `json:"aws_account"`
	AWSRegion  string           `json:"aws_region"`
	Stages     map[string]Stage `json:"stages"`
	// ProdEnvironment is the GitHub environment (with required reviewers)
	// that DeployThroughEnvironment stages deploy in.
	ProdEnvironment string    `json:"prod_environment"`
	Benchmark       Benchmark `json:"benchmark"`
}

var (
	account     = regexp.MustCompile(`^\d{12}$`)
	region      = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)
	environment = regexp.MustCompile(`^[A-Za-z0-9._-]{1,255}$`)
	secretARN   = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$`)
)

// Load reads and checks the settings file at path.
func Load(path string) (*Settings, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(raw)
}

// LoadFrom reads the settings of the repository at root.
func LoadFrom(root string) (*Settings, error) { return Load(filepath.Join(root, Path)) }

// Parse reads and checks settings; an unknown field is an error (a typo
// must not silently turn a stage's deploy off).
func Parse(raw []byte) (*Settings, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var s Settings
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", Path, err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", Path, err)
	}
	return &s, nil
}

func (s *Settings) check() error {
	switch {
	case !account.MatchString(s.AWSAccount):
		return fmt.Errorf("aws_account %q: want the 12 digits of an AWS account", s.AWSAccount)
	case !region.MatchString(s.AWSRegion):
		return fmt.Errorf("aws_region %q: want a region such as us-east-1", s.AWSRegion)
	case len(s.Stages) == 0:
		return fmt.Errorf("stages: none listed")
	}
	for _, name := range s.StageNames() {
		st := s.Stages[name]
		if err := config.ValidateStageName(name); err != nil {
			return fmt.Errorf("stages.%s: %w", name, err)
		}
		switch st.Deploy {
		case DeployNever, DeployOnPush:
		case DeployThroughEnvironment:
			if !environment.MatchString(s.ProdEnvironment) {
				return fmt.Errorf("stages.%s: deploy %q needs prod_environment, the GitHub environment with required reviewers", name, st.Deploy)
			}
		default:
			return fmt.Errorf("stages.%s.deploy %q: want %q, %q or none", name, st.Deploy, DeployOnPush, DeployThroughEnvironment)
		}
		if st.Deploy == DeployOnPush && !config.IsSandbox(name) {
			return fmt.Errorf("stages.%s: only sandbox stages deploy on every push; a stage that keeps its data deploys through %q", name, DeployThroughEnvironment)
		}
		if (st.Diff || st.Deploy != DeployNever) && !secretARN.MatchString(st.APIKeysSecretARN) {
			return fmt.Errorf("stages.%s.api_keys_secret_arn %q: want the secret's complete ARN (it ends in -XXXXXX)", name, st.APIKeysSecretARN)
		}
	}
	b := s.Benchmark
	if _, ok := s.Stages[b.Stage]; !ok {
		return fmt.Errorf("benchmark.stage %q: not one of the stages listed", b.Stage)
	}
	if b.DataSource == "" {
		return fmt.Errorf("benchmark.data_source: required")
	}
	if b.BudgetUSD != "" {
		if _, err := money.Budget(b.BudgetUSD); err != nil {
			return fmt.Errorf("benchmark.budget_usd: %w", err)
		}
	}
	if n := b.StopAfterFailures; n != nil && *n < 0 {
		return fmt.Errorf("benchmark.stop_after_failures %d: want 0 or more", *n)
	}
	return nil
}

// StageNames are the stages listed, sorted.
func (s *Settings) StageNames() []string {
	names := make([]string, 0, len(s.Stages))
	for n := range s.Stages {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Where lists the stages for which keep holds, sorted.
func (s *Settings) Where(keep func(Stage) bool) []string {
	return slices.DeleteFunc(s.StageNames(), func(n string) bool { return !keep(s.Stages[n]) })
}
