package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Operator commands refuse malformed input before they call anything: one
// line naming the problem, a non-zero exit.
func TestOperatorCommandsRefuseMalformedInput(t *testing.T) {
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name, body, want string
	}{
		{"numbers.json", `[1,2,3]`, "must hold task ids"},
		{"truncated.json", `["007bbfb7","00d62c1b"`, "not a JSON list of task ids"},
		{"binary.bin", "\x00\x01\x02\xff\xfe", "not a text file"},
		{"duplicates.txt", "007bbfb7\n00d62c1b\n007bbfb7\n", `"007bbfb7" repeats`},
		{"spaces.txt", "007bbfb7\nsome task\n", `"some task"`},
		{"slash.json", `["../etc"]`, `"../etc"`},
		{"empty.txt", "# nothing\n\n", "no task ids"},
	} {
		path := file(c.name, c.body)
		for _, args := range [][]string{
			{"start", "--stage", "nowhere", "--config", "cfg", "--tasks", path},
			{"local", "run", "--tasks", path},
		} {
			_, stderr, code := arcbench(t, "", args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code == 0 || len(lines) != 1 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, c.name) {
				t.Errorf("%s %s: exit %d, stderr %q; want one line naming the file and %q", args[0], c.name, code, stderr, c.want)
			}
		}
	}
	for _, cmd := range []string{"watch", "results", "retry", "stop"} {
		_, stderr, code := arcbench(t, "", cmd, "--stage", "nowhere", "run-abc\x01\x1b[2J")
		if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "is not a run id") {
			t.Errorf("%s with control characters in the run id: exit %d, stderr %q", cmd, code, stderr)
		}
	}
	if _, stderr, code := arcbench(t, "", "start", "--stage", "nowhere", "--config", "cfg", "--task", " 007bbfb7"); code == 0 || !strings.Contains(stderr, "[A-Za-z0-9._-]") {
		t.Errorf("start --task with a space: exit %d, %q", code, stderr)
	}
}
