package arcdata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"arcbench/shared/model"
)

// TaskFile is one task file of a folder: its id (the file name without
// .json), where it is, its bytes exactly as on disk (so that an upload can
// compare them with what is stored) and the task they decode to.
type TaskFile struct {
	ID   string
	Path string
	Body []byte
	Task Task
}

// ValidID checks a task id by the rule every id of the project follows
// (1–128 characters of [A-Za-z0-9._-]): ids become S3 keys, DynamoDB keys and
// environment values, so a file name outside it cannot be a task.
func ValidID(id string) error {
	err := model.ValidateName("task id", id)
	var bad *model.InvalidInputError
	if errors.As(err, &bad) {
		// Said of a file name, not of a handler's input.
		return fmt.Errorf("task id %s", bad.Reason)
	}
	return err
}

// LoadDir reads every <task_id>.json file directly in dir (other files and
// sub-folders are ignored) as an ARC task and checks it, sorted by id. The
// first bad file, or a folder without any .json file, is an error naming it.
func LoadDir(dir string) ([]TaskFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("task folder: %w", err)
	}
	var files []TaskFile
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if !isTaskFile(path, e) {
			continue
		}
		f, err := LoadFile(path)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("task folder %s has no .json files: want one <task_id>.json per task", dir)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].ID < files[j].ID })
	return files, nil
}

// isTaskFile tells whether a folder entry is a .json file, following a
// symbolic link (a folder of links to a dataset is a folder of tasks).
func isTaskFile(path string, e os.DirEntry) bool {
	if !strings.HasSuffix(e.Name(), ".json") {
		return false
	}
	if e.Type().IsRegular() {
		return true
	}
	if e.Type()&os.ModeSymlink == 0 {
		return false
	}
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}

// LoadFile reads one task file: its id is its name without .json. An error
// names the file and what is wrong with it.
func LoadFile(path string) (TaskFile, error) {
	id := strings.TrimSuffix(filepath.Base(path), ".json")
	if err := ValidID(id); err != nil {
		return TaskFile{}, fmt.Errorf("%s: %w (a task file is named <task_id>.json)", path, err)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		return TaskFile{}, err // names the file already
	}
	task, err := decodeTask(body)
	if err != nil {
		return TaskFile{}, fmt.Errorf("%s: %w", path, err)
	}
	return TaskFile{ID: id, Path: path, Body: body, Task: task}, nil
}

// decodeTask reads one ARC task, {"train":[...],"test":[...]}, and checks it.
func decodeTask(body []byte) (Task, error) {
	var t Task
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&t); err != nil {
		return Task{}, fmt.Errorf("not an ARC task (want {\"train\":[...],\"test\":[...]}): %w", err)
	}
	// A second value after the task is a broken file, not a task.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Task{}, errors.New("not an ARC task: more data after the task's JSON object")
	}
	if err := t.Validate(); err != nil {
		// Validate joins its problems with newlines; one line names them all.
		return Task{}, fmt.Errorf("not a valid ARC task: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return t, nil
}
