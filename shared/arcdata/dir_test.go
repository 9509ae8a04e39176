package arcdata

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
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

// grid is the JSON of a rows×cols grid of cell.
func grid(rows, cols int, cell string) string {
	row := "[" + strings.Repeat(cell+",", cols-1) + cell + "]"
	return "[" + strings.Repeat(row+",", rows-1) + row + "]"
}

// The refusals of a task file, each naming the file and the field at fault:
// the message after "<path>: " is want, exactly.
var badTasks = []struct {
	name, file, body, want string
}{
	// Not JSON, or not one object.
	{"not JSON", "0a1b2c3d.json", `{"train": [`, `not an ARC task (want {"train":[...],"test":[...]}): unexpected EOF`},
	{"a JSON list", "0a1b2c3d.json", `[1, 2, 3]`, `not an ARC task: a list, want an object {"train":[...],"test":[...]}`},
	{"null", "0a1b2c3d.json", `null`, `not an ARC task: null, want an object {"train":[...],"test":[...]}`},
	{"two objects", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[1]]}]} {}`, "not an ARC task: more data after the task's JSON object"},

	// Keys: exactly train and test, input and output, in lower case, once.
	{"Train and Test", "0a1b2c3d.json", `{"Train":[{"input":[[1]],"output":[[2]]}],"Test":[{"input":[[1]]}]}`, `unknown key "Train": an ARC task has exactly "train" and "test", in lower case`},
	{"another key", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[1]]}],"name":"x"}`, `unknown key "name": an ARC task has exactly "train" and "test", in lower case`},
	{"a run, not a task", "0a1b2c3d.json", `{"run_id": "run-1", "status": "COMPLETED"}`, `unknown key "run_id": an ARC task has exactly "train" and "test", in lower case`},
	{"Input", "0a1b2c3d.json", `{"train":[],"test":[{"Input":[[1]]}]}`, `test[0]: unknown key "Input": an ARC pair has only "input" and "output", in lower case`},
	{"another pair key", "0a1b2c3d.json", `{"train":[{"input":[[1]],"output":[[2]]},{"input":[[1]],"output":[[2]],"note":"x"}],"test":[{"input":[[1]]}]}`, `train[1]: unknown key "note": an ARC pair has only "input" and "output", in lower case`},
	{"test twice", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[1]]}],"test":[{"input":[[2]]}]}`, `key "test" appears twice`},
	{"input twice", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[1]],"input":[[2]]}]}`, `test[0]: key "input" appears twice`},
	{"no train", "0a1b2c3d.json", `{"test":[{"input":[[1]]}]}`, `no "train" key: an ARC task has exactly "train" and "test"`},
	{"no test", "0a1b2c3d.json", `{"train":[{"input":[[1]],"output":[[2]]}]}`, `no "test" key: an ARC task has exactly "train" and "test"`},

	// Pairs.
	{"no test pair", "0a1b2c3d.json", `{"train":[{"input":[[1]],"output":[[2]]}],"test":[]}`, "no test pair: an ARC task has at least one"},
	{"a train pair without output", "0a1b2c3d.json", `{"train":[{"input":[[1]]}],"test":[{"input":[[1]]}]}`, "train[0].output: missing (a train pair shows its output; only a test pair's may be withheld)"},
	{"a pair without input", "0a1b2c3d.json", `{"train":[],"test":[{"output":[[1]]}]}`, "test[0].input: missing"},
	{"train null", "0a1b2c3d.json", `{"train":null,"test":[{"input":[[1]]}]}`, "train: null, want a list of pairs"},
	{"a pair not an object", "0a1b2c3d.json", `{"train":[],"test":[[[1]]]}`, `test[0]: a list, want a pair {"input":[[...]],"output":[[...]]}`},

	// Grids: 1 to 30 rows of 1 to 30 cells, rectangular.
	{"31 rows", "007bbfb7.json", `{"train":[],"test":[{"input":[[1]],"output":` + grid(31, 3, "1") + `}]}`, "test[0].output: 31 rows, ARC grids have 1 to 30"},
	{"100x100", "0a1b2c3d.json", `{"train":[],"test":[{"input":` + grid(100, 100, "0") + `}]}`, "test[0].input: 100 rows, ARC grids have 1 to 30"},
	{"31 columns", "0a1b2c3d.json", `{"train":[{"input":` + grid(2, 31, "4") + `,"output":[[1]]}],"test":[{"input":[[1]]}]}`, "train[0].input: 31 columns, ARC grids have 1 to 30"},
	{"no rows", "0a1b2c3d.json", `{"train":[],"test":[{"input":[]}]}`, "test[0].input: 0 rows, ARC grids have 1 to 30"},
	{"an empty row", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[]]}]}`, "test[0].input: 0 columns, ARC grids have 1 to 30"},
	{"ragged rows", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[1,2],[3]]}]}`, "test[0].input: row 1 has 1 cells, row 0 has 2"},
	{"a row not a list", "0a1b2c3d.json", `{"train":[],"test":[{"input":[1,2]}]}`, "test[0].input: row 0 is the number 1, want a list of cells"},
	{"a null grid", "0a1b2c3d.json", `{"train":[{"input":null,"output":[[1]]}],"test":[{"input":[[1]]}]}`, "train[0].input: null, want a grid (a list of rows of integers 0-9)"},
	{"a null test output", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[1]],"output":null}]}`, "test[0].output: null, want a grid (a list of rows of integers 0-9); to withhold a test output, leave its key out"},
	{"a string grid", "0a1b2c3d.json", `{"train":[],"test":[{"input":"[[1]]"}]}`, `test[0].input: the string "[[1]]", want a grid (a list of rows of integers 0-9)`},

	// Cells: integers 0-9, written as integers.
	{"12", "0a1b2c3d.json", `{"train":[{"input":[[1]],"output":[[12]]}],"test":[{"input":[[1]]}]}`, "train[0].output: cell [0][0] is 12, not a colour 0-9"},
	{"-1", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[1,-1]]}]}`, "test[0].input: cell [0][1] is -1, not a colour 0-9"},
	{"a huge integer", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[99999999999999999999]]}]}`, "test[0].input: cell [0][0] is 99999999999999999999, not a colour 0-9"},
	{"1.0", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[0],[1.0]]}]}`, "test[0].input: cell [1][0] is 1.0, not an integer 0-9 (write colours as integers)"},
	{"1e0", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[1e0]]}]}`, "test[0].input: cell [0][0] is 1e0, not an integer 0-9 (write colours as integers)"},
	{"a string cell", "0a1b2c3d.json", `{"train":[],"test":[{"input":[["1"]]}]}`, `test[0].input: cell [0][0] is the string "1", not an integer 0-9`},
	{"a null cell", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[null]]}]}`, `test[0].input: cell [0][0] is null, not an integer 0-9`},
	{"a true cell", "0a1b2c3d.json", `{"train":[],"test":[{"input":[[true]]}]}`, `test[0].input: cell [0][0] is true, not an integer 0-9`},

	// Every problem Validate finds, on one line.
	{"two problems", "0a1b2c3d.json", `{"train":[{"input":[[1]]}],"test":[{"input":` + grid(31, 1, "2") + `}]}`, "train[0].output: missing (a train pair shows its output; only a test pair's may be withheld); test[0].input: 31 rows, ARC grids have 1 to 30"},

	// The file's name.
	{"a space in the id", "a b.json", `{"train":[],"test":[{"input":[[1]]}]}`, `task id "a b" has characters outside [A-Za-z0-9._-] (a task file is named <task_id>.json)`},
	{"no id", ".json", `{"train":[],"test":[{"input":[[1]]}]}`, "task id is required and must not be empty (a task file is named <task_id>.json)"},
	{"a long id", strings.Repeat("a", 129) + ".json", `{"train":[],"test":[{"input":[[1]]}]}`, "task id is 129 characters long"},
}

func TestLoadDirNamesTheBadFileAndField(t *testing.T) {
	for _, c := range badTasks {
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
			if want := bad + ": " + c.want; !strings.HasPrefix(msg, want) {
				t.Errorf("error %q\nwant      %q", msg, want)
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

// The worker and check-task read a task with json.Unmarshal and then
// Validate it: together they refuse what Decode refuses.
func TestUnmarshalAndValidateRefuseWhatDecodeRefuses(t *testing.T) {
	for _, c := range badTasks {
		if c.file != "0a1b2c3d.json" && c.file != "007bbfb7.json" || c.name == "two objects" {
			continue // the file's name, or trailing data: Decode's (and the reader's) own
		}
		_, derr := Decode([]byte(c.body))
		var task Task
		err := json.Unmarshal([]byte(c.body), &task)
		if err == nil {
			err = task.Validate()
		}
		if err == nil || derr == nil {
			t.Errorf("%s: Unmarshal+Validate: %v; Decode: %v", c.name, err, derr)
			continue
		}
		if c.name != "not JSON" && !strings.HasPrefix(strings.ReplaceAll(err.Error(), "\n", "; "), derr.Error()) {
			t.Errorf("%s: Unmarshal+Validate says %q, Decode %q", c.name, err, derr)
		}
	}
}

func TestDecodeAcceptsWithheldOutputsAndGridsOf1To30(t *testing.T) {
	body := `{"train":[{"input":` + grid(30, 30, "9") + `,"output":[[0]]}],` +
		`"test":[{"input":[[1]]},{"input":[[2,3]],"output":[[3,2]]},{"output":[[5]],"input":` + grid(1, 30, "7") + `}]}`
	task, err := Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if task.Test[0].Output != nil || !Equal(task.Test[1].Output, Grid{{3, 2}}) || len(task.Test[2].Input[0]) != 30 || len(task.Train[0].Input) != 30 {
		t.Errorf("decoded %+v", task)
	}
	var viaJSON Task
	if err := json.Unmarshal([]byte(body), &viaJSON); err != nil || !reflect.DeepEqual(viaJSON, task) {
		t.Errorf("json.Unmarshal: %v, %+v", err, viaJSON)
	}

	// In a folder too, and in any order of keys, with white space.
	dir := t.TempDir()
	withheld := "{\n  \"test\": [ {\"input\": [[0, 1], [2, 3]]} ],\n  \"train\": [ {\"output\": [[1]], \"input\": [[2]]} ]\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "e3721c99.json"), []byte(withheld), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p := files[0].Task.Test[0]; p.Output != nil || !Equal(p.Input, Grid{{0, 1}, {2, 3}}) || string(files[0].Body) != withheld {
		t.Errorf("loaded %+v", files[0])
	}
}

// Every generated task is written as a valid ARC task file and reads back
// the same.
func TestGeneratedTasksDecode(t *testing.T) {
	for _, id := range IDs(300, 11) {
		task := Generate(id, 11)
		body, err := json.Marshal(task)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(body)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if !reflect.DeepEqual(back, task) {
			t.Fatalf("%s: read back otherwise", id)
		}
	}
	// A task made in Go without train pairs is written with "train": [], a
	// list, and reads back.
	body, err := json.Marshal(Task{Test: []Pair{{Input: Grid{{1}}}}})
	if err != nil || string(body) != `{"train":[],"test":[{"input":[[1]]}]}` {
		t.Fatalf("%s, %v", body, err)
	}
	if _, err := Decode(body); err != nil {
		t.Error(err)
	}
}

func TestLoadDirRefusesEntriesItCannotRead(t *testing.T) {
	dir := t.TempDir()
	writeTask(t, dir, "00d62c1b")
	dangling := filepath.Join(dir, "0badf00d.json")
	if err := os.Symlink("../elsewhere/0badf00d.json", dangling); err != nil {
		t.Fatal(err)
	}
	_, err := LoadDir(dir)
	if want := dangling + ": cannot read: a symbolic link to ../elsewhere/0badf00d.json, which does not exist"; err == nil || err.Error() != want {
		t.Errorf("a dangling link: %v\nwant %s", err, want)
	}

	dir = t.TempDir()
	writeTask(t, dir, "00d62c1b")
	loop := filepath.Join(dir, "10091009.json")
	if err := os.Symlink("10091009.json", loop); err != nil {
		t.Fatal(err)
	}
	_, err = LoadDir(dir)
	if want := loop + ": cannot read: a symbolic link to 10091009.json: too many levels of symbolic links"; err == nil || err.Error() != want {
		t.Errorf("a link to itself: %v\nwant %s", err, want)
	}

	dir = t.TempDir()
	writeTask(t, dir, "00d62c1b")
	fifo := filepath.Join(dir, "f1f0f1f0.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadDir(dir)
	if want := fifo + ": cannot read: a named pipe, not a regular file"; err == nil || err.Error() != want {
		t.Errorf("a named pipe: %v\nwant %s", err, want)
	}
}

// A folder of links to a dataset is a folder of tasks; a link to a folder,
// like a folder, is not a task.
func TestLoadDirFollowsSymlinks(t *testing.T) {
	data, dir := t.TempDir(), t.TempDir()
	body := writeTask(t, data, "00d62c1b")
	if err := os.Symlink(filepath.Join(data, "00d62c1b.json"), filepath.Join(dir, "00d62c1b.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(data, filepath.Join(dir, "data.json")); err != nil {
		t.Fatal(err)
	}
	files, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].ID != "00d62c1b" || string(files[0].Body) != string(body) || files[0].Path != filepath.Join(dir, "00d62c1b.json") {
		t.Errorf("loaded %+v", files)
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
