package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"arcbench/internal/cidiff"
	"arcbench/internal/cisettings"
)

// workflow is a GitHub workflow as the tests read it.
type workflow struct {
	On          map[string]any  `yaml:"on"`
	Permissions map[string]any  `yaml:"permissions"`
	Jobs        map[string]*job `yaml:"jobs"`
}

type job struct {
	Environment any               `yaml:"environment"`
	Permissions map[string]any    `yaml:"permissions"`
	Env         map[string]string `yaml:"env"`
	Steps       []step            `yaml:"steps"`
}

type step struct {
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	With map[string]string `yaml:"with"`
	Env  map[string]string `yaml:"env"`
}

const workflowsDir = "../../.github/workflows"

func readWorkflows(t *testing.T) map[string]*workflow {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(workflowsDir, "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows in %s: %v", workflowsDir, err)
	}
	out := map[string]*workflow{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var w workflow
		if err := yaml.Unmarshal(raw, &w); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = &w
	}
	return out
}

// The three workflows the repository promises, on their triggers: pull
// requests test, lint and diff; pushes to main deploy, prod only through a
// GitHub environment; a benchmark trigger (or the same by hand) starts runs.
func TestWorkflowsTriggers(t *testing.T) {
	ws := readWorkflows(t)
	for name, events := range map[string][]string{
		"pull-request.yml": {"pull_request"},
		"deploy.yml":       {"push"},
		"benchmark.yml":    {"repository_dispatch", "workflow_dispatch"},
	} {
		w := ws[name]
		if w == nil {
			t.Errorf("no workflow %s", name)
			continue
		}
		var got []string
		for e := range w.On {
			got = append(got, e)
		}
		slices.Sort(got)
		slices.Sort(events)
		if !slices.Equal(got, events) {
			t.Errorf("%s runs on %v, want %v", name, got, events)
		}
	}
	if push, _ := ws["deploy.yml"].On["push"].(map[string]any); push == nil || !slices.Contains(anyStrings(push["branches"]), "main") || len(anyStrings(push["branches"])) != 1 {
		t.Errorf("deploy runs on push to %v, want main only", ws["deploy.yml"].On["push"])
	}
	s, err := cisettings.LoadFrom("../..")
	if err != nil {
		t.Fatal(err)
	}
	// The stages kept (prod) deploy in the job bound to the reviewed environment only.
	deploy := ws["deploy.yml"]
	if env := deploy.Jobs["reviewed"].Environment; env != "${{ needs.stages.outputs.environment }}" {
		t.Errorf("the reviewed deploy's environment is %v", env)
	}
	if deploy.Jobs["sandbox"].Environment != nil {
		t.Errorf("the sandbox deploy waits for an environment")
	}
	if len(s.Where(func(st cisettings.Stage) bool { return st.Deploy == cisettings.DeployThroughEnvironment })) > 0 && s.ProdEnvironment == "" {
		t.Errorf("settings deploy through an environment without naming it")
	}
}

func anyStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// AWS is reached only through OIDC: every job that configures credentials
// assumes a role (never long-lived keys) and may ask for an OIDC token; the
// roles are the CI stack's, by the names it gives them.
func TestWorkflowsReachAWSOnlyThroughOIDC(t *testing.T) {
	roles := regexp.MustCompile(`^arn:aws:iam::\$\{\{ [a-z.]+\.outputs\.account \}\}:role/(` + strings.Join([]string{
		regexp.QuoteMeta(cisettings.RoleDiff), regexp.QuoteMeta(cisettings.RoleDeploy), regexp.QuoteMeta(cisettings.RoleStart),
		`cdk-hnb659fds-lookup-role-\$\{\{ needs\.stages\.outputs\.account \}\}-\$\{\{ needs\.stages\.outputs\.region \}\}`}, "|") + `)$`)
	for name, w := range readWorkflows(t) {
		raw, _ := os.ReadFile(filepath.Join(workflowsDir, name))
		for _, secret := range []string{"aws-access-key-id", "aws-secret-access-key", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("%s mentions %s: AWS only through OIDC roles", name, secret)
			}
		}
		for id, j := range w.Jobs {
			uses := false
			for _, st := range j.Steps {
				if !strings.HasPrefix(st.Uses, "aws-actions/configure-aws-credentials@") {
					continue
				}
				uses = true
				if !roles.MatchString(st.With["role-to-assume"]) {
					t.Errorf("%s/%s assumes %q: want one of the CI stack's roles", name, id, st.With["role-to-assume"])
				}
			}
			perms := j.Permissions
			if perms == nil {
				perms = w.Permissions
			}
			if uses && perms["id-token"] != "write" {
				t.Errorf("%s/%s configures AWS credentials without id-token: write", name, id)
			}
		}
	}
}

// The benchmark workflow takes the payload the benchmark repository sends
// (arcprize/arc-agi-benchmarking's trigger-benchmarks.yml: event_type
// benchmark-trigger, client_payload {configs: a JSON list, triggered_by,
// commit_sha}), and workflow_dispatch's inputs by the same names, into
// the script that starts the runs.
func TestBenchmarkWorkflowReadsTheTriggersPayload(t *testing.T) {
	w := readWorkflows(t)["benchmark.yml"]
	if types := anyStrings(w.On["repository_dispatch"].(map[string]any)["types"]); !slices.Equal(types, []string{"benchmark-trigger"}) {
		t.Errorf("repository_dispatch types %v, want [benchmark-trigger]", types)
	}
	inputs, _ := w.On["workflow_dispatch"].(map[string]any)["inputs"].(map[string]any)
	for _, in := range []string{"configs", "triggered_by", "commit_sha"} {
		if _, ok := inputs[in]; !ok {
			t.Errorf("workflow_dispatch has no input %s", in)
		}
	}
	j := w.Jobs["start"]
	for env, want := range map[string][]string{
		"CONFIGS":      {"toJSON(github.event.client_payload.configs)", "inputs.configs"},
		"TRIGGERED_BY": {"github.event.client_payload.triggered_by", "inputs.triggered_by"},
		"COMMIT_SHA":   {"github.event.client_payload.commit_sha", "inputs.commit_sha"},
	} {
		for _, w := range want {
			if !strings.Contains(j.Env[env], w) {
				t.Errorf("%s = %q lacks %s", env, j.Env[env], w)
			}
		}
	}
	ran := false
	for _, st := range j.Steps {
		if strings.TrimSpace(st.Run) == ".github/scripts/start-benchmarks" {
			ran = true
		}
	}
	if !ran {
		t.Errorf("the start job does not run .github/scripts/start-benchmarks")
	}
}

// The start script, run with a stand-in arcbench on the payload the
// benchmark sends: a run per config, each with the trigger's triggered_by
// and commit_sha and the settings' stage, data source and budget; the run ids
// and their watch commands in the job summary; a config that fails to
// start is reported there and the others still start (exit 1 after all).
func TestStartBenchmarksStartsEachConfigAndReportsFailures(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	fake := filepath.Join(dir, "arcbench")
	// Fails for the config "broken-config" as arcbench does (one line on stderr, exit 1).
	script := `#!/usr/bin/env bash
echo "$*" >> ` + calls + `
for a in "$@"; do case $a in broken-config) echo "arcbench: 3 of 120 tasks have no data under s3://b/tasks/evaluation/" >&2; exit 1;; esac; done
config=""; prev=""; for a in "$@"; do [ "$prev" = --config ] && config=$a; prev=$a; done
echo "{\"run_id\":\"run-$config-1\",\"execution_arn\":\"arn\",\"total_tasks\":120}"
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(configs string) (summary string, code int) {
		sum := filepath.Join(dir, "summary-"+strings.Repeat("x", len(configs)%7))
		os.Remove(sum)
		cmd := exec.Command("../../.github/scripts/start-benchmarks")
		cmd.Env = append(os.Environ(), "ARCBENCH="+fake, "CONFIGS="+configs, "STAGE=prod", "DATA_SOURCE=evaluation",
			"TRIGGERED_BY=octocat", "COMMIT_SHA=0123abc", "BUDGET_USD=100", "SUMMARY="+sum)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		b, _ := os.ReadFile(sum)
		return string(b), code
	}

	summary, code := run(`["gpt-5-2025-08-07-high","broken-config","claude-opus-4-5-20251101-thinking-32k"]`)
	if code != 1 {
		t.Errorf("exit %d with a config that failed to start, want 1", code)
	}
	for _, want := range []string{
		"| `gpt-5-2025-08-07-high` | `run-gpt-5-2025-08-07-high-1` | `arcbench watch run-gpt-5-2025-08-07-high-1 --stage prod` |",
		"| `claude-opus-4-5-20251101-thinking-32k` | `run-claude-opus-4-5-20251101-thinking-32k-1` |",
		"| `broken-config` | **not started**: arcbench: 3 of 120 tasks have no data",
		"1 of 3 configs did not start.",
		"Triggered by octocat at commit `0123abc`",
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	raw, _ := os.ReadFile(calls)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 3 {
		t.Fatalf("arcbench called %d times, want once per config:\n%s", len(lines), raw)
	}
	for _, l := range lines {
		for _, want := range []string{"start --stage prod --config ", "--all-tasks --data-source evaluation --triggered-by octocat --commit-sha 0123abc --budget-usd 100 --json"} {
			if !strings.Contains(l, want) {
				t.Errorf("arcbench %s: lacks %q", l, want)
			}
		}
	}

	os.Remove(calls)
	for _, bad := range []string{`gpt-5`, `[]`, `[1]`, `{"configs":["a"]}`} {
		if summary, code := run(bad); code != 1 || !strings.Contains(summary, "No run started") {
			t.Errorf("configs %s: exit %d, summary %q", bad, code, summary)
		}
	}
	if _, err := os.Stat(calls); err == nil {
		t.Errorf("arcbench was called for configs that are not a list of names")
	}
}

// The label the pull-request workflow reads is the one the check names.
func TestPullRequestWorkflowReadsTheAllowLabel(t *testing.T) {
	w := readWorkflows(t)["pull-request.yml"]
	if got := w.Jobs["diff"].Env["ALLOW"]; !strings.Contains(got, "'"+cidiff.AllowLabel+"'") {
		t.Errorf("ALLOW = %q, want the label %s", got, cidiff.AllowLabel)
	}
}

// scriptCommands are the command lines of a shell script (a workflow step's
// run, or a script a step runs) that run make or arcbench: lines joined at a
// trailing backslash; the start script's "$arcbench" is arcbench.
func scriptCommands(file, script string) []docCommand {
	var cmds []docCommand
	lines := strings.Split(script, "\n")
	for i := 0; i < len(lines); i++ {
		first := i
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
		}
		// A command substitution or condition around the command: check the command.
		for _, prefix := range []string{"if out=$(", "if ", "out=$(", "then ", "else "} {
			line = strings.TrimPrefix(line, prefix)
		}
		line = strings.ReplaceAll(line, `"$arcbench"`, "arcbench")
		if startsCommand(line) {
			cmds = append(cmds, docCommand{file: file, line: first + 1, text: line})
		}
	}
	return cmds
}

// Every make target and arcbench command the workflows run, in their steps
// and in the scripts they run, exists, with the flags used: a renamed target
// or flag fails here, not in GitHub after a merge.
func TestWorkflowCommandsExist(t *testing.T) {
	c := newDocChecker(t)
	seen := map[string]int{}
	check := func(cmds []docCommand) {
		for _, cmd := range cmds {
			words := strings.Fields(cmd.text)
			seen[words[0]]++
			for _, p := range c.check(cmd) {
				t.Errorf("%s: %s", cmd, p)
			}
		}
	}
	for name, w := range readWorkflows(t) {
		for id, j := range w.Jobs {
			for i, st := range j.Steps {
				check(scriptCommands(name+"/"+id+"/step "+strconv.Itoa(i+1), st.Run))
			}
		}
	}
	scripts, _ := filepath.Glob("../../.github/scripts/*")
	for _, s := range scripts {
		raw, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		check(scriptCommands(filepath.Base(s), string(raw)))
	}
	// What the checker must have seen: the make targets of CI and the CLI's start and ci commands.
	if seen["make"] < 6 || seen["go"] < 2 || seen["arcbench"] < 1 {
		t.Errorf("found %v command lines: the workflows' commands were not read", seen)
	}
}
