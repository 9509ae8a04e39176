package arcdata

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeTask writes the generated task id as dir/<id>.json and returns its bytes.
func writeTask(t *testing.T, dir, id string) []byte {
	t.Helper()
	body, err := json.Marshal(Generate(id, 3))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, id+".json"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	return body
}

func TestLoadDirSortsByIDAndIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	want := map[string][]byte{}
	for _, id := range []string{"ff00aa11", "00d62c1b", "7b.task_2-x"} {
		want[id] = writeTask(t, dir, id)
	}
	// Not tasks: other files, a sub-folder (even one named like a task file)
	// and the tasks inside it.
	for name, body := range map[string]string{"README.md": "# tasks", "ids.txt": "00d62c1b\n", "solutions.json.bak": "{"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"training", "nested.json"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		writeTask(t, filepath.Join(dir, sub), "deadbeef")
	}

	files, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range files {
		ids = append(ids, f.ID)
		if string(f.Body) != string(want[f.ID]) {
			t.Errorf("%s: Body is not the file's bytes", f.ID)
		}
		if f.Path != filepath.Join(dir, f.ID+".json") {
			t.Errorf("%s: Path %s", f.ID, f.Path)
		}
		if len(f.Task.Train) == 0 || len(f.Task.Test) != 1 {
			t.Errorf("%s: Task not decoded: %+v", f.ID, f.Task)
		}
	}
	if wantIDs := []string{"00d62c1b", "7b.task_2-x", "ff00aa11"}; !slices.Equal(ids, wantIDs) {
		t.Errorf("ids %v, want %v", ids, wantIDs)
	}
}

func TestLoadDirNamesTheBadFile(t *testing.T) {
	cases := []struct {
		name, file, body, want string
	}{
		{"not JSON", "0a1b2c3d.json", `{"train": [`, "not an ARC task"},
		{"a JSON list", "0a1b2c3d.json", `[1, 2, 3]`, "not an ARC task"},
		{"two objects", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[1]]}]} {}`, "more data after"},
		{"no test pair", "0a1b2c3d.json", `{"run_id": "run-1", "status": "COMPLETED"}`, "no test pair"},
		{"not a colour", "0a1b2c3d.json", `{"train":[{"input":[[1]],"output":[[12]]}],"test":[{"input":[[1]]}]}`, "train[0].output: cell [0][0] is 12"},
		{"ragged grid", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[1,2],[3]]}]}`, "test[0].input: row 1 has 1 cells"},
		{"a space in the id", "a b.json", `{"train":[],"test":[{"input":[[1]]}]}`, `task id "a b" has characters outside [A-Za-z0-9._-]`},
		{"no id", ".json", `{"train":[],"test":[{"input":[[1]]}]}`, "task id is required"},
		{"a long id", strings.Repeat("a", 129) + ".json", `{"train":[],"test":[{"input":[[1]]}]}`, "task id is 129 characters long"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTask(t, dir, "00d62c1b")
			writeTask(t, dir, "ff00aa11")
			bad := filepath.Join(dir, c.file)
			if err := os.WriteFile(bad, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			files, err := LoadDir(dir)
			if err == nil {
				t.Fatalf("no error; loaded %d files", len(files))
			}
			msg := err.Error()
			if !strings.Contains(msg, bad) || !strings.Contains(msg, c.want) {
				t.Errorf("error %q, want one naming %s and saying %q", msg, bad, c.want)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if files != nil {
				t.Errorf("files returned with the error")
			}
		})
	}
}

func TestLoadDirRejectsAFolderWithoutTasks(t *testing.T) {
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "notes.txt"), []byte("none here"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(empty); err == nil || !strings.Contains(err.Error(), empty) || !strings.Contains(err.Error(), "no .json files") {
		t.Errorf("a folder without tasks: %v", err)
	}
	missing := filepath.Join(empty, "nope")
	if _, err := LoadDir(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("a missing folder: %v", err)
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"007bbfb7", "a", "A.b_c-9", strings.Repeat("z", 128)} {
		if err := ValidID(id); err != nil {
			t.Errorf("ValidID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "a b", "a/b", "ü", strings.Repeat("z", 129)} {
		if err := ValidID(id); err == nil {
			t.Errorf("ValidID(%q) accepted", id)
		}
	}
}
