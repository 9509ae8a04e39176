package model_test

import (
	"regexp"
	"strings"
	"testing"

	"arcbench/shared/model"
)

// batchJobName is what Batch accepts as a job's name (SubmitJob's jobName).
var batchJobName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)

func TestJobName(t *testing.T) {
	config200 := strings.Repeat("c", 200)
	task128 := strings.Repeat("t", 128)
	task127 := strings.Repeat("u", 127)
	task126 := strings.Repeat("v", 126)
	for _, c := range []struct {
		name, config, task, want string
	}{
		{"plain", "baseline", "007bbfb7", "baseline-007bbfb7"},
		{"dots", "gpt-5.1_high", "task.v2.json", "gpt-5_1_high-task_v2_json"},
		{"leading underscore", "_private", "007bbfb7", "private-007bbfb7"},
		{"leading dot and hyphen", ".-cfg", "a", "cfg-a"},
		{"config with nothing to keep", "..", "a", "a"},
		{"task id with a leading dot, config dropped", "cfg", "." + strings.Repeat("w", 127), strings.Repeat("w", 127)},
		{"other characters", "é cfg", "a/b", "cfg-a_b"},
		{"200-character config: the config is cut, the task id kept", config200, "007bbfb7", strings.Repeat("c", 128-1-8) + "-007bbfb7"},
		{"128-character task id: all of it, no config", "cfg", task128, task128},
		{"longer task id: cut at 128", "cfg", task128 + "xyz", task128},
		{"127-character task id: no room for config and hyphen", "cfg", task127, task127},
		{"126-character task id: one character of config", "cfg", task126, "c-" + task126},
		{"nothing usable", "..", "..", "job"},
	} {
		got := model.JobName(c.config, c.task)
		if got != c.want {
			t.Errorf("%s: JobName(%q, %q) = %q, want %q", c.name, c.config, c.task, got, c.want)
		}
		if !batchJobName.MatchString(got) {
			t.Errorf("%s: JobName(%q, %q) = %q, which Batch refuses", c.name, c.config, c.task, got)
		}
	}
}
