package localrun

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
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
	dir  string
	mu   sync.Mutex
	toJS io.WriteCloser
	from *bufio.Scanner
}

// startBridge starts Node on the embedded script. It must live beside
// node_modules for its import to resolve, so it is written into a folder
// there.
func startBridge(root string, stderr io.Writer) (*bridge, error) {
	node, err := emulators.Node(root)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Join(root, "node_modules"), ".arcbench-bridge-")
	if err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "bridge.mjs")
	if err := os.WriteFile(script, bridgeScript, 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
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
	cmd := exec.Command(node, script)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.ExtraFiles = []*os.File{fromJSw, toJSr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the state machine interpreter: %w", err)
	}
	fromJSw.Close()
	toJSr.Close()
	sc := bufio.NewScanner(fromJSr)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	return &bridge{cmd: cmd, dir: dir, toJS: toJSw, from: sc}, nil
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
	os.RemoveAll(b.dir)
}
