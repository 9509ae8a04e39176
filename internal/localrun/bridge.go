package localrun

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"arcbench/internal/emulators"
)

//go:embed bridge.mjs
var bridgeScript []byte

// message is one line between the bridge and us.
type message struct {
	T     string          `json:"t"`
	ID    int64           `json:"id,omitempty"`
	Exec  string          `json:"exec,omitempty"`
	State string          `json:"state,omitempty"`
	Kind  string          `json:"kind,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`

	// events
	Type      string `json:"type,omitempty"`
	StateType string `json:"stateType,omitempty"`
	InBytes   int    `json:"inBytes,omitempty"`
	OutBytes  *int   `json:"outBytes,omitempty"`
	Attempt   int    `json:"attempt,omitempty"`

	// child and end
	Parent string          `json:"parent,omitempty"`
	Root   bool            `json:"root,omitempty"`
	Status string          `json:"status,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
	Cause  string          `json:"cause,omitempty"`
}

// stepError is how a task state fails: the Error name and Cause of AWS.
type stepError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

func (e *stepError) Error() string { return e.Name + ": " + e.Message }

// bridge is the Node process running the state machines.
type bridge struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	toJS io.WriteCloser
	from *bufio.Scanner
}

// interpreterModule is the interpreter's ES module in the project's
// node_modules, imported by its file URL: the script runs from memory, so no
// scratch file is left in the repository if the run is killed.
func interpreterModule(root string) (string, error) {
	path := filepath.Join(root, "node_modules", "aws-local-stepfunctions", "build", "main.node.esm.js")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("aws-local-stepfunctions not installed (%s): run `make deps` (npm ci) first", path)
	}
	return (&url.URL{Scheme: "file", Path: path}).String(), nil
}

// startBridge starts Node on the embedded script, given on its command line.
func startBridge(root string, stderr io.Writer) (*bridge, error) {
	node, err := emulators.Node(root)
	if err != nil {
		return nil, err
	}
	module, err := interpreterModule(root)
	if err != nil {
		return nil, err
	}
	script := strings.Replace(string(bridgeScript), "from 'aws-local-stepfunctions'", "from '"+module+"'", 1)
	// Scratch folders of earlier versions, which wrote the script into
	// node_modules, are cleaned at the next start.
	if stale, _ := filepath.Glob(filepath.Join(root, "node_modules", ".arcbench-bridge-*")); len(stale) > 0 {
		for _, dir := range stale {
			os.RemoveAll(dir)
		}
	}
	// fd 3: the bridge's messages to us; fd 4: ours to it. stdout and stderr
	// stay free for whatever the library prints.
	fromJSr, fromJSw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	toJSr, toJSw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(node, "--input-type=module", "--eval", script)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.ExtraFiles = []*os.File{fromJSw, toJSr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the state machine interpreter: %w", err)
	}
	fromJSw.Close()
	toJSr.Close()
	sc := bufio.NewScanner(fromJSr)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	return &bridge{cmd: cmd, toJS: toJSw, from: sc}, nil
}

func (b *bridge) send(v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err = b.toJS.Write(append(line, '\n'))
	return err
}

// next reads the bridge's next message; io.EOF when it is gone.
func (b *bridge) next() (*message, error) {
	if !b.from.Scan() {
		if err := b.from.Err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	var m message
	if err := json.Unmarshal(b.from.Bytes(), &m); err != nil {
		return nil, fmt.Errorf("bridge said %q: %w", strings.TrimSpace(b.from.Text()), err)
	}
	return &m, nil
}

func (b *bridge) stop() {
	_ = b.toJS.Close()
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	_ = b.cmd.Wait()
}
