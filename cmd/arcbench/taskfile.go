package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"arcbench/shared/model"
)

// maxTaskFileBytes bounds a task file: 100,000 ids of 128 characters.
const maxTaskFileBytes = 16 << 20

// readTaskFile reads a file of task ids: a JSON list of strings, or one id a
// line (blank lines and # comments skipped). Anything else is one line
// naming the problem: not text, a JSON list holding something else,
// truncated JSON, an id against the rule, a repeated id.
func readTaskFile(path string) ([]string, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("--tasks %s: %s", path, fmt.Sprintf(format, a...))
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--tasks: %w", err)
	}
	if info.Size() > maxTaskFileBytes {
		return nil, fail("is %d bytes, more than a task list (%d bytes at most)", info.Size(), maxTaskFileBytes)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--tasks: %w", err)
	}
	if !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 {
		return nil, fail("is not a text file of task ids (one per line, or a JSON list)")
	}
	var ids []string
	if trimmed := bytes.TrimSpace(raw); bytes.HasPrefix(trimmed, []byte("[")) {
		var list model.TaskIDs
		if err := json.Unmarshal(trimmed, &list); err != nil {
			var bad *model.InvalidInputError
			if errors.As(err, &bad) {
				return nil, fail("the JSON list must hold task ids (strings): %s", strings.TrimPrefix(bad.Field+" "+bad.Reason, "task_ids "))
			}
			return nil, fail("is not a JSON list of task ids: %v", err)
		}
		ids = list
	} else {
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(make([]byte, 64<<10), maxTaskFileBytes)
		for sc.Scan() {
			if id := strings.TrimSpace(sc.Text()); id != "" && !strings.HasPrefix(id, "#") {
				ids = append(ids, id)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fail("%v", err)
		}
	}
	if len(ids) == 0 {
		return nil, fail("no task ids in the file (one per line, or a JSON list)")
	}
	if err := model.ValidateTaskIDs("tasks", ids); err != nil {
		return nil, fail("%s", strings.TrimPrefix(err.Error(), "invalid input: "))
	}
	return ids, nil
}

// runIDArg takes exactly one argument, a run id by the rule run ids follow:
// a malformed one is refused before any call is made.
func runIDArg(cmd *cobra.Command, args []string) error {
	if err := cobra.ExactArgs(1)(cmd, args); err != nil {
		return err
	}
	if err := model.ValidateRunID(args[0]); err != nil {
		return &exitError{code: 2, err: err}
	}
	return nil
}
