package arcdata

import (
	"errors"
	"fmt"
	"io/fs"
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
// sub-folders are ignored) as an ARC task and checks it (Decode), sorted by
// id. The first bad file, a .json entry that cannot be read (a dangling
// symbolic link, say), or a folder without any .json file is an error naming
// it.
func LoadDir(dir string) ([]TaskFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("task folder: %w", err)
	}
	var files []TaskFile
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		ok, err := isTaskFile(path, e)
		if err != nil {
			return nil, err
		}
		if !ok {
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
// symbolic link (a folder of links to a dataset is a folder of tasks). A
// folder, or a link to one, is not a file; any other .json entry that is
// not a readable file is an error naming it, never skipped: skipped, a task
// would be missing from the upload or the run without a word.
func isTaskFile(path string, e os.DirEntry) (bool, error) {
	if !strings.HasSuffix(e.Name(), ".json") {
		return false, nil
	}
	mode := e.Type()
	if mode&os.ModeSymlink != 0 {
		info, err := os.Stat(path)
		if err != nil {
			target, _ := os.Readlink(path)
			if errors.Is(err, fs.ErrNotExist) {
				return false, fmt.Errorf("%s: cannot read: a symbolic link to %s, which does not exist", path, target)
			}
			return false, fmt.Errorf("%s: cannot read: a symbolic link to %s: %w", path, target, unwrapPath(err))
		}
		mode = info.Mode()
	}
	switch {
	case mode.IsRegular():
		return true, nil
	case mode.IsDir():
		return false, nil
	default:
		kind := "a special file"
		switch {
		case mode&fs.ModeNamedPipe != 0:
			kind = "a named pipe"
		case mode&fs.ModeSocket != 0:
			kind = "a socket"
		case mode&fs.ModeDevice != 0:
			kind = "a device"
		}
		return false, fmt.Errorf("%s: cannot read: %s, not a regular file", path, kind)
	}
}

// unwrapPath is an *fs.PathError's reason without its path, which the
// message names already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
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
		return TaskFile{}, fmt.Errorf("%s: cannot read: %w", path, unwrapPath(err))
	}
	task, err := Decode(body)
	if err != nil {
		return TaskFile{}, fmt.Errorf("%s: %w", path, err)
	}
	return TaskFile{ID: id, Path: path, Body: body, Task: task}, nil
}
