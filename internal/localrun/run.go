// Package localrun runs the whole flow on a laptop: the synthesized template's
// tables and bucket on local emulators, its state machine on
// aws-local-stepfunctions, its Lambda states served in-process by the same
// handlers Lambda runs, its Batch state by local worker processes.
package localrun

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/internal/emulators"
	"arcbench/internal/iam"
	"arcbench/internal/operator"
	"arcbench/internal/report"
	"arcbench/shared/arcdata"
	"arcbench/shared/clients"
	"arcbench/shared/config"
	"arcbench/shared/handlers"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// Options are what `arcbench local run` takes.
type Options struct {
	// Assembly is a cloud assembly (cdk.out) to read; empty synthesizes Stage.
	Assembly string
	Stage    string
	// TaskIDs are the run's tasks; their data is TaskData's, or generated
	// from Seed.
	TaskIDs []string
	// TaskData holds each task's data file (ARC JSON) by id, as read from a
	// folder of task files; nil generates every task's data from Seed.
	TaskData   map[string][]byte
	ConfigName string
	DataSource string
	Seed       int64
	// FailRate is the share of worker attempts made to fail (baseline worker).
	FailRate float64
	// Faults makes the built-in worker misbehave at chosen attempts
	// (worker.ParseFaults' syntax: TASK:ATTEMPT=MODE,...).
	Faults string
	// WorkerEnv is added to every worker's environment, last (--worker-env).
	WorkerEnv map[string]string
	// WorkerCmd runs instead of the built-in baseline worker (through sh -c).
	WorkerCmd string
	// WorkerVersion is the built-in worker's ARCBENCH_WORKER_VERSION (pr77,
	// pr78 or silent); empty leaves its default.
	WorkerVersion string
	// JobTimeout, when set, overrides the job definition's attempt timeout
	// (Timeout.AttemptDurationSeconds), which a job's worker is stopped at.
	JobTimeout time.Duration
	// MaxRetries, when set, overrides MAX_RETRIES in the functions' and the
	// job definition's environment.
	MaxRetries int
	// Guards are the run's budget and early stop (unset: the template's).
	Guards operator.Guards
	// Parallel bounds the worker processes running at once.
	Parallel int
	// Dir holds the bucket's files and the workers' logs.
	Dir string
	// Keep leaves the emulators running after the run.
	Keep bool
	// NoIAM turns the IAM check off: every request is allowed.
	NoIAM bool
	// Report writes the run's report page beside aggregated.json.
	Report bool
	// Self is the arcbench executable (runs the built-in worker).
	Self string
	// Progress receives the progress bar; nil shows none.
	Progress func(done, failed, total int)
	Log      io.Writer
}

// Result is what a local run did.
type Result struct {
	Status string          `json:"status"`
	Error  string          `json:"error,omitempty"`
	Cause  string          `json:"cause,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
	RunID  string          `json:"run_id,omitempty"`
	// RunStatus is the run record's status when the execution ended
	// (COMPLETED, COMPLETED_WITH_ERRORS, FAILED; RUNNING if nothing ended it).
	RunStatus string `json:"run_status,omitempty"`
	// StopReason says why a STOPPED run stopped.
	StopReason string `json:"stop_reason,omitempty"`
	// FailedBy counts the run's failed tasks by their last error type
	// (NoAnswer, States.TaskFailed, ...): why they failed, at a glance.
	FailedBy       map[string]int `json:"failed_by,omitempty"`
	AggregatedPath string         `json:"aggregated_path,omitempty"`
	// ReportPath is the run's report page, with Options.Report; ReportError
	// says why there is none.
	ReportPath  string  `json:"report_path,omitempty"`
	ReportError string  `json:"report_error,omitempty"`
	Figures     Figures `json:"figures"`
	// Calls counts the Task state invocations the run served, per state.
	Calls map[string]int `json:"calls"`
	// Notifications are the messages the run's end published to the
	// stage's topic: one per run.
	Notifications []Notification `json:"notifications,omitempty"`
	// IAM is what the IAM check allowed and refused (nil when it is off).
	IAM        *Access       `json:"iam,omitempty"`
	Violations []string      `json:"violations,omitempty"`
	Wall       time.Duration `json:"wall_ns"`
	Endpoint   string        `json:"endpoint,omitempty"`
	Tables     []string      `json:"tables,omitempty"`
	Bucket     string        `json:"bucket,omitempty"`
	// Dir holds the run's template, bucket files and logs.
	Dir string `json:"dir"`
	// Session is left running when Options.Keep is set; the caller closes it.
	Session *Session `json:"-"`
}

// runner holds one local run's state.
type runner struct {
	opts      Options
	tmpl      *Template
	clients   *clients.Clients
	stack     *emulators.Stack
	fns       map[string]lambdaio.RawFunc // by physical function name
	functions map[string]*function
	job       *job
	guard     *iam.Guard // nil: no IAM check
	bucket    string
	res       map[string]string // state name -> Resource
	br        *bridge
	workers   chan struct{}
	jobSeq    int64
	ctx       context.Context
	run       *stateMachine // the run's state machine
	reaper    *stateMachine // started when an execution ends in reaperOn
	reaperOn  []string

	mu      sync.Mutex
	execs   map[string]*Execution
	roots   map[string]*root     // executions started at the top, by ARN
	jobs    map[string]*localJob // submitted jobs, queued or running, by id
	watch   *watchdog            // nil without Options.Self
	stopped map[string]bool      // executions that stopped or failed: they submit nothing more
	as      map[string]*clients.Clients
	done    int
	failed  int
	total   int
	pumpErr error
}

// root is an execution started at the top (not a Map child) and what it did.
type root struct {
	sm      *stateMachine
	started time.Time
	end     *message      // set when it ended
	endedAt time.Time     // when it ended (DescribeExecution's stopDate)
	ended   chan struct{} // closed when it ended
	once    sync.Once
	calls   map[string]int
}

// finish records the execution's end, once: its own end message, or the
// interpreter's failure, whichever comes first.
func (r *runner) finish(rt *root, m *message) {
	rt.once.Do(func() {
		r.mu.Lock()
		rt.end, rt.endedAt = m, time.Now()
		r.mu.Unlock()
		close(rt.ended)
	})
}

// Session is a local stage, up and ready to run executions: the emulators
// with the template's tables and bucket, the handlers, and the interpreter.
type Session struct {
	r *runner
	// Stack is the emulators behind their one endpoint.
	Stack *emulators.Stack
	// Dir holds the session's template, bucket files and logs.
	Dir    string
	Tables []string
	Bucket string
	closed sync.Once
	cancel context.CancelFunc
	log    *os.File
}

// Open brings a local stage up: synthesizes (or reads) the template, starts
// the emulators, creates the template's tables and bucket, seeds the task data
// of opts.TaskIDs and starts the interpreter. Close stops everything.
func Open(ctx context.Context, opts Options) (*Session, error) {
	if opts.Stage == "" {
		opts.Stage = "local"
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 8
	}
	if opts.DataSource == "" {
		opts.DataSource = model.DefaultDataSource
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	rootDir, err := emulators.Root()
	if err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		opts.Dir = filepath.Join(rootDir, ".arcbench", "local")
	}
	dir, err := runFolder(opts.Dir, clock().UTC())
	if err != nil {
		return nil, err
	}
	tmpl, err := template(ctx, rootDir, opts, dir)
	if err != nil {
		return nil, err
	}
	// The watchdog stops every process the run starts, even if the run is
	// killed: it comes first, the emulators are its first charges.
	var watch *watchdog
	if opts.Self != "" {
		if watch, err = startWatchdog(opts.Self); err != nil {
			return nil, err
		}
	}
	stack, err := emulators.StartStack(ctx, filepath.Join(dir, "s3"))
	if err != nil {
		watch.close()
		return nil, err
	}
	watch.started(stack.Dynalite.PID())
	// Workers and handler calls live as long as the session: Close (or the
	// caller's ctx) stops the ones still running, even those of a Map that failed.
	ctx, cancel := context.WithCancel(ctx)
	s := &Session{Stack: stack, Dir: dir, cancel: cancel}
	s.r = &runner{opts: opts, tmpl: tmpl, stack: stack, clients: clients.NewLocalAs(stack.Endpoint, TrustedKey), as: map[string]*clients.Clients{}, watch: watch,
		execs: map[string]*Execution{}, roots: map[string]*root{}, jobs: map[string]*localJob{}, stopped: map[string]bool{}, workers: make(chan struct{}, opts.Parallel), ctx: ctx}
	if err := s.open(ctx, rootDir); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// clock names a run's folder (a test stops it to make two runs collide).
var clock = time.Now

// runFolder creates a new run's folder in parent, named for t to the
// millisecond, with -2, -3... added when another run (from this checkout or
// another process) has that name already: os.Mkdir creates it or fails with
// EEXIST, atomically, so two runs never share one (and its bucket's files).
func runFolder(parent string, t time.Time) (string, error) {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	stamp := t.Format("20060102-150405.000")
	for n := 1; n <= 1000; n++ {
		dir := filepath.Join(parent, stamp)
		if n > 1 {
			dir = fmt.Sprintf("%s-%d", dir, n)
		}
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: 1000 runs named %s already", parent, stamp)
}

func (s *Session) open(ctx context.Context, rootDir string) error {
	r := s.r
	// The handlers log as on Lambda, into the session's folder (and to Log).
	if err := os.MkdirAll(filepath.Join(s.Dir, "logs"), 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(s.Dir, "logs", "handlers.log"))
	if err != nil {
		return err
	}
	s.log = f
	slog.SetDefault(slog.New(slog.NewJSONHandler(io.MultiWriter(f, r.opts.Log), nil)))
	if s.Tables, s.Bucket, err = r.prepare(ctx); err != nil {
		return err
	}
	if r.run, r.reaper, r.reaperOn, err = stateMachines(r.tmpl); err != nil {
		return err
	}
	if !r.opts.NoIAM {
		if err := r.checkIAM(); err != nil {
			return fmt.Errorf("IAM check: %w (run with --no-iam to skip it)", err)
		}
	}
	r.res = resources(r.run.Definition, nil)
	if r.reaper != nil {
		resources(r.reaper.Definition, r.res)
	}
	if r.br, err = startBridge(rootDir, r.opts.Log); err != nil {
		return err
	}
	r.watch.started(r.br.cmd.Process.Pid)
	go r.pump()
	r.mountAPIs()
	return nil
}

// Close stops the interpreter, the workers and the emulators.
func (s *Session) Close() {
	s.closed.Do(func() {
		s.cancel()
		s.r.stopWorkers()
		if s.r.br != nil {
			s.r.br.stop()
		}
		s.Stack.Stop()
		s.r.watch.close()
		if s.log != nil {
			s.log.Close()
		}
	})
}

// Run performs one local run from start to end: Open, one execution of the
// run's state machine over opts.TaskIDs, and Close unless opts.Keep (then
// Result.Session is the caller's to close).
func Run(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	s, err := Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	input, err := s.r.runInput(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.r.mu.Lock()
	s.r.total = len(opts.TaskIDs)
	s.r.mu.Unlock()
	result, err := s.Execute(ctx, input)
	if err != nil || !opts.Keep {
		s.Close()
	}
	if err != nil {
		return nil, err
	}
	if opts.Keep {
		result.Session = s
	}
	result.Wall = time.Since(start)
	return result, nil
}

// Execute runs the run's state machine on input to its end (and the run
// reaper, as EventBridge would start it, when the execution ends badly).
func (s *Session) Execute(ctx context.Context, input map[string]any) (*Result, error) {
	r := s.r
	arn := r.executionARN(r.run, "")
	rt, err := r.startExecution(arn, r.run, input)
	if err != nil {
		return nil, err
	}
	select {
	case <-rt.ended:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := r.pumpError(); err != nil {
		return nil, err
	}
	return s.result(arn, rt), nil
}

// result is what an ended execution did.
func (s *Session) result(arn string, rt *root) *Result {
	r := s.r
	end := rt.end
	res := &Result{Endpoint: s.Stack.Endpoint, Dir: s.Dir, Tables: s.Tables, Bucket: s.Bucket,
		Status: end.Status, Output: end.Output, Cause: end.Cause}
	if len(end.Error) > 0 {
		_ = json.Unmarshal(end.Error, &res.Error)
	}
	r.mu.Lock()
	res.Figures = Figures{Root: r.execs[arn]}
	for _, e := range r.execs {
		if e.Parent == arn {
			res.Figures.Children = append(res.Figures.Children, e)
		}
	}
	res.Calls = maps.Clone(rt.calls)
	r.mu.Unlock()
	if r.guard != nil {
		res.IAM = &Access{ByPrincipal: r.guard.Authorized(), Denials: r.guard.Denials(), MissingKeys: r.guard.MissingKeys()}
		for _, n := range res.IAM.ByPrincipal {
			res.IAM.Authorized += n
		}
	}
	sort.Slice(res.Figures.Children, func(i, j int) bool { return res.Figures.Children[i].ARN < res.Figures.Children[j].ARN })
	res.Violations = res.Figures.Violations()
	var out struct {
		RunID string `json:"run_id"`
	}
	_ = json.Unmarshal(end.Output, &out)
	res.RunID = out.RunID
	st := r.store()
	if res.RunID == "" {
		// The execution failed before Complete: find its run, if it made one.
		res.RunID, _, _ = st.RunOfExecution(r.ctx, arn)
	}
	if res.RunID != "" {
		if run, err := st.GetRun(r.ctx, res.RunID); err == nil {
			res.RunStatus, res.StopReason = run.Status, run.StopReason
		}
		if failed, err := st.FailedTasks(r.ctx, res.RunID, model.TaskFailed, model.TaskFailedPermanent); err == nil && len(failed) > 0 {
			res.FailedBy = map[string]int{}
			for _, f := range failed {
				res.FailedBy[cmp.Or(f.ErrorType, "unknown")]++
			}
		}
	}
	res.Notifications = s.notifications(res.RunID)
	if res.RunID != "" && s.Stack.S3Dir != "" {
		p := filepath.Join(s.Stack.S3Dir, "buckets", s.Bucket, filepath.FromSlash(model.AggregatedKey(res.RunID)))
		if _, err := os.Stat(p); err == nil {
			res.AggregatedPath = p
		}
		if r.opts.Report {
			res.ReportPath, res.ReportError = r.writeReport(res.RunID, filepath.Join(filepath.Dir(p), "report.html"))
		}
	}
	return res
}

// template reads the given assembly or synthesizes the stage into runDir.
func template(ctx context.Context, root string, opts Options, runDir string) (*Template, error) {
	if opts.Assembly != "" {
		return LoadAssembly(opts.Assembly)
	}
	dir := filepath.Join(runDir, "cdk.out")
	if err := Synthesize(ctx, root, opts.Stage, dir, opts.Log); err != nil {
		return nil, err
	}
	return LoadAssembly(dir)
}

// prepare creates the template's tables and bucket, seeds the task data and
// builds the handlers as the template configures them.
func (r *runner) prepare(ctx context.Context) (tables []string, bucket string, err error) {
	if tables, err = createTables(ctx, r.tmpl, r.clients.DynamoDB); err != nil {
		return nil, "", err
	}
	buckets, err := createBuckets(ctx, r.tmpl, r.clients.S3)
	if err != nil {
		return nil, "", err
	}
	if len(buckets) != 1 {
		return nil, "", fmt.Errorf("template has %d buckets, want 1", len(buckets))
	}
	r.bucket = buckets[0]
	if err := createTopics(r.tmpl, r.stack.SNS); err != nil {
		return nil, "", err
	}
	return tables, r.bucket, r.handlers(ctx)
}

// handlers seeds the task data and builds the handlers and the job's
// environment as the template configures them.
func (r *runner) handlers(ctx context.Context) error {
	if err := r.seed(ctx); err != nil {
		return err
	}
	fns, err := functions(r.tmpl)
	if err != nil {
		return err
	}
	r.functions = fns
	r.fns = map[string]lambdaio.RawFunc{}
	for name, f := range fns {
		if r.opts.MaxRetries > 0 && f.Env[config.EnvMaxRetries] != "" {
			f.Env[config.EnvMaxRetries] = fmt.Sprint(r.opts.MaxRetries)
		}
		// Lambda sets AWS_REGION on every function (a template cannot).
		f.Env[config.EnvRegion] = Region
		cfg, err := config.FromEnv(func(k string) string { return f.Env[k] })
		if err != nil {
			return fmt.Errorf("function %s: %w", name, err)
		}
		// Each handler signs as its function's role, as on Lambda.
		h, err := handlers.Raw(f.Handler, handlers.Deps{Config: cfg, Clients: r.clientsAs(f.Role), Now: time.Now})
		if err != nil {
			return err
		}
		r.fns[name] = h
	}
	if r.job, err = jobDefinition(r.tmpl); err != nil {
		return err
	}
	if r.opts.MaxRetries > 0 {
		r.job.Env[config.WorkerEnvMaxRetries] = fmt.Sprint(r.opts.MaxRetries)
	}
	return nil
}

// checkIAM authorizes, from now on, every request of the roles the run acts
// as (each function's, the job's, the state machines' and the rule's) against
// the policies the template gives them.
func (r *runner) checkIAM() error {
	roles := []string{r.job.Role, r.run.Role}
	for _, f := range r.functions {
		roles = append(roles, f.Role)
	}
	if r.reaper != nil {
		roles = append(roles, r.reaper.Role)
		if r.reaper.StartedBy != "" {
			roles = append(roles, r.reaper.StartedBy)
		}
	}
	slices.Sort(roles)
	ps, err := principals(r.tmpl, slices.Compact(roles))
	if err != nil {
		return err
	}
	r.guard = iam.NewGuard(AccountID, ps, TrustedKey)
	r.stack.SetCheck(r.guard.Check)
	return nil
}

// clientsAs are SDK clients that sign as role: the IAM check tells the
// principals apart by their access key.
func (r *runner) clientsAs(role string) *clients.Clients {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.as[role]
	if c == nil {
		c = clients.NewLocalAs(r.stack.Endpoint, role)
		r.as[role] = c
	}
	return c
}

// authorize checks a call the state machine's integrations make, as the
// role of the state machine running the execution; nil without IAM check.
func (r *runner) authorize(execARN, action string, resources ...string) error {
	if r.guard == nil {
		return nil
	}
	return r.guard.Authorize(r.roleOf(execARN), iam.Request{Action: action, Resources: resources})
}

// roleOf is the execution role of the state machine an execution runs.
func (r *runner) roleOf(execARN string) string { return r.smOf(execARN).Role }

// smOf is the state machine an execution (or a Map child of it) runs.
func (r *runner) smOf(execARN string) *stateMachine {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt := r.roots[r.rootOf(execARN)]; rt != nil {
		return rt.sm
	}
	return r.run
}

// seed writes each task's data (given, or generated ARC-style) to
// tasks/<data_source>/<id>.json.
func (r *runner) seed(ctx context.Context) error {
	for _, id := range r.opts.TaskIDs {
		body, given := r.opts.TaskData[id]
		if !given && r.opts.TaskData != nil {
			return fmt.Errorf("task %s has no data among the %d task files given", id, len(r.opts.TaskData))
		}
		if !given {
			var err error
			if body, err = json.Marshal(arcdata.Generate(id, r.opts.Seed)); err != nil {
				return err
			}
		}
		if _, err := r.clients.S3.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(r.bucket), Key: aws.String(model.TaskDataKey(r.opts.DataSource, id)),
			Body: bytes.NewReader(body), ContentType: aws.String("application/json"),
		}); err != nil {
			return fmt.Errorf("seed task %s: %w", id, err)
		}
	}
	return nil
}

// writeReport writes a run's report page to path.
func (r *runner) writeReport(runID, path string) (string, string) {
	page, err := report.Build(r.ctx, report.StageSource{Store: r.store(), S3: r.clients.S3, Bucket: r.bucket}, runID, time.Now())
	if err == nil {
		err = os.MkdirAll(filepath.Dir(path), 0o755)
	}
	var f *os.File
	if err == nil {
		f, err = os.Create(path)
	}
	if err == nil {
		err = report.Write(f, page)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return "", err.Error()
	}
	return path, ""
}

// store reads the stage's runs and tasks tables, named as the job
// definition names them to the worker.
func (r *runner) store() *store.Store {
	return store.New(r.clients.DynamoDB, r.job.Env[config.WorkerEnvRunsTable], r.job.Env[config.WorkerEnvTasksTable])
}

// runInput is the execution input of a run over opts.TaskIDs, as `arcbench
// start` makes it.
func (r *runner) runInput(ctx context.Context) (map[string]any, error) {
	return operator.RunInput(ctx, r.clients.S3, r.bucket, operator.StartInput{
		ConfigName: r.opts.ConfigName, DataSource: r.opts.DataSource, TaskIDs: r.opts.TaskIDs, Guards: r.opts.Guards,
	}, time.Now())
}

// executionARN names a new execution of sm (name, or a fresh one).
func (r *runner) executionARN(sm *stateMachine, name string) string {
	if name == "" {
		r.mu.Lock()
		name = fmt.Sprintf("local-%s-%d", time.Now().UTC().Format("20060102T150405"), len(r.roots)+1)
		r.mu.Unlock()
	}
	return strings.Replace(sm.ARN, ":stateMachine:", ":execution:", 1) + ":" + name
}

// startExecution starts an execution of sm; its end is signalled on the
// returned root's ended channel. When a run's execution ends badly the run
// reaper follows, as EventBridge would start it, before the end is signalled.
func (r *runner) startExecution(arn string, sm *stateMachine, input any) (*root, error) {
	rt := &root{sm: sm, started: time.Now(), ended: make(chan struct{}), calls: map[string]int{}}
	r.mu.Lock()
	if _, dup := r.roots[arn]; dup {
		r.mu.Unlock()
		return nil, fmt.Errorf("execution %s already exists", arn)
	}
	r.roots[arn] = rt
	r.execs[arn] = &Execution{ARN: arn}
	r.mu.Unlock()
	if err := r.br.send(map[string]any{
		"t": "start", "definition": sm.Definition, "input": input,
		"executionArn": arn, "stateMachineArn": sm.ARN,
	}); err != nil {
		return nil, fmt.Errorf("start execution: %w", err)
	}
	return rt, nil
}

// ended records a root execution's end and starts the reaper if due.
func (r *runner) ended(arn string, rt *root, m *message) {
	if rt.sm == r.run && m.Status != "SUCCEEDED" && r.reaper != nil && slices.Contains(r.reaperOn, m.Status) && r.ruleMayStart(r.reaper) {
		// The reaper's LetTerminatedJobsEnd waits out a terminated job's stop
		// timeout, in which its worker may still save and complete its task;
		// the interpreter skips waits locally, so the jobs' ends are awaited.
		r.awaitJobs(arn, time.Duration(stopTimeout.Load())+5*time.Second)
		event := map[string]any{
			"source": "aws.states", "detail-type": "Step Functions Execution Status Change",
			"detail": map[string]any{"executionArn": arn, "stateMachineArn": r.run.ARN, "status": m.Status},
		}
		reaped, err := r.startExecution(r.executionARN(r.reaper, ""), r.reaper, event)
		if err == nil {
			<-reaped.ended
			if reaped.end.Status != "SUCCEEDED" {
				err = fmt.Errorf("%s: %s", reaped.end.Status, reaped.end.Cause)
			}
		}
		if err != nil {
			fmt.Fprintln(r.opts.Log, "arcbench: the run reaper failed:", err)
		}
	}
	r.finish(rt, m)
}

// awaitJobs waits, up to limit, until no job of the execution (or of its
// Map children) has a worker process still running.
func (r *runner) awaitJobs(execARN string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		running := false
		r.mu.Lock()
		for _, j := range r.jobs {
			if (j.exec == execARN || strings.HasPrefix(j.exec, execARN+"/")) && j.cmd != nil && !j.ended {
				running = true
				break
			}
		}
		r.mu.Unlock()
		if !running {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopExecution stops a running execution as StopExecution does: it ends
// ABORTED with error and cause, and its Map children and their jobs stop too.
// Stopping one that has ended changes nothing.
func (r *runner) stopExecution(arn, errName, cause string) error {
	r.mu.Lock()
	rt := r.roots[arn]
	r.mu.Unlock()
	if rt == nil {
		return fmt.Errorf("Execution Does Not Exist: '%s'", arn)
	}
	return r.br.send(map[string]any{"t": "stop", "exec": arn, "error": errName, "cause": cause})
}

// ruleMayStart tells whether the EventBridge rule's role may start sm: when
// it may not, EventBridge cannot deliver, and sm does not run.
func (r *runner) ruleMayStart(sm *stateMachine) bool {
	if r.guard == nil || sm.StartedBy == "" {
		return true
	}
	if err := r.guard.Authorize(sm.StartedBy, iam.Request{Action: "states:StartExecution", Resources: []string{sm.ARN}}); err != nil {
		fmt.Fprintln(r.opts.Log, "arcbench: the run reaper cannot be started:", err)
		return false
	}
	return true
}

// pump reads the interpreter's messages for the session's whole life.
func (r *runner) pump() {
	for {
		m, err := r.br.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the state machine interpreter exited unexpectedly (run with -v to see its output)")
			}
			r.fail(err)
			return
		}
		switch m.T {
		case "call":
			r.mu.Lock()
			if rt := r.roots[r.rootOf(m.Exec)]; rt != nil {
				rt.calls[m.State]++
			}
			r.mu.Unlock()
			go r.serve(m)
		case "event":
			r.mu.Lock()
			if e := r.execs[m.Exec]; e != nil {
				e.record(m, strings.HasSuffix(r.res[m.State], ".sync"))
			}
			r.mu.Unlock()
		case "terminate":
			go r.terminateJobs(m.Exec)
		case "child":
			r.mu.Lock()
			r.execs[m.Exec] = &Execution{ARN: m.Exec, Parent: m.Parent}
			r.mu.Unlock()
		case "end":
			r.mu.Lock()
			if e := r.execs[m.Exec]; e != nil {
				e.Status = m.Status
			}
			if !m.Root {
				r.done++
			}
			rt := r.roots[m.Exec]
			r.mu.Unlock()
			r.progress()
			if m.Root && rt != nil {
				go r.ended(m.Exec, rt, m)
			}
		}
	}
}

// rootOf is the top execution an execution belongs to. Callers hold r.mu.
func (r *runner) rootOf(arn string) string {
	for {
		e := r.execs[arn]
		if e == nil || e.Parent == "" {
			return arn
		}
		arn = e.Parent
	}
}

// fail ends every running execution with the interpreter's failure.
func (r *runner) fail(err error) {
	r.mu.Lock()
	r.pumpErr = err
	var open []*root
	for _, rt := range r.roots {
		if rt.end == nil {
			open = append(open, rt)
		}
	}
	r.mu.Unlock()
	for _, rt := range open {
		r.finish(rt, &message{Status: "FAILED", Cause: err.Error()})
	}
}

func (r *runner) pumpError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pumpErr
}

func (r *runner) progress() {
	if r.opts.Progress == nil {
		return
	}
	r.mu.Lock()
	done, failed, total := min(r.done, r.total), r.failed, r.total
	r.mu.Unlock()
	r.opts.Progress(done, failed, total)
}

// serve performs one Task state and answers the bridge.
func (r *runner) serve(m *message) {
	out, err := r.perform(m)
	answer := map[string]any{"t": "answer", "id": m.ID}
	var se *stepError
	switch {
	case errors.As(err, &se):
		answer["error"] = se
	case err != nil:
		answer["error"] = &stepError{Name: "States.TaskFailed", Message: err.Error()}
	default:
		answer["output"] = out
	}
	if err := r.br.send(answer); err != nil {
		fmt.Fprintln(r.opts.Log, "arcbench: answer the interpreter:", err)
	}
}

func (r *runner) perform(m *message) (any, error) {
	resource := r.res[m.State]
	switch m.Kind {
	case "readItems":
		// The Map starts a child execution of its own state machine per item.
		if err := r.authorize(m.Exec, "states:StartExecution", r.smOf(m.Exec).ARN); err != nil {
			return nil, integrationError("States.Runtime", err, "AWSStepFunctions")
		}
		return r.readItems(m.Exec, m.Input)
	case "writeResults":
		return r.writeResults(m.Exec, m.Input)
	}
	switch {
	case resource == "arn:aws:states:::lambda:invoke":
		var in struct {
			FunctionName string          `json:"FunctionName"`
			Payload      json.RawMessage `json:"Payload"`
		}
		if err := json.Unmarshal(m.Input, &in); err != nil {
			return nil, err
		}
		out, err := r.invoke(m.Exec, in.FunctionName, in.Payload)
		if err != nil {
			return nil, err
		}
		return map[string]any{"ExecutedVersion": "$LATEST", "Payload": out, "StatusCode": 200}, nil
	case strings.HasPrefix(resource, "arn:aws:lambda:"):
		return r.invoke(m.Exec, resource, m.Input)
	case strings.HasPrefix(resource, "arn:aws:states:::batch:submitJob"):
		return r.submitJob(m.Exec, m.Input, strings.HasSuffix(resource, ".sync"))
	case strings.HasPrefix(resource, "arn:aws:states:::dynamodb:"):
		return r.dynamodb(m.Exec, strings.TrimPrefix(resource, "arn:aws:states:::dynamodb:"), m.Input, "DynamoDB.")
	case strings.HasPrefix(resource, "arn:aws:states:::aws-sdk:dynamodb:"):
		return r.dynamodb(m.Exec, strings.TrimPrefix(resource, "arn:aws:states:::aws-sdk:dynamodb:"), m.Input, "DynamoDb.")
	}
	return nil, &stepError{Name: "States.Runtime", Message: fmt.Sprintf("state %s: resource %s is not supported by the local run", m.State, resource)}
}

// invoke calls one of our handlers in-process through its JSON boundary. A
// handler error fails the state as Lambda would: the errorType as Error, the
// error document as Cause.
func (r *runner) invoke(execARN, function string, payload json.RawMessage) (json.RawMessage, error) {
	name := function[strings.LastIndex(function, ":")+1:]
	if err := r.authorize(execARN, "lambda:InvokeFunction", arn("lambda", "function:"+name)); err != nil {
		return nil, integrationError("Lambda.AWSLambdaException", err, "AWSLambda")
	}
	h, ok := r.fns[name]
	if !ok {
		return nil, &stepError{Name: "Lambda.ResourceNotFoundException", Message: "Function not found: " + function}
	}
	out, err := h(r.ctx, payload)
	if err != nil {
		doc := map[string]any{"errorType": lambdaio.ErrorType(err), "errorMessage": errorMessage(err)}
		cause, _ := json.Marshal(doc)
		return nil, &stepError{Name: lambdaio.ErrorType(err), Message: string(cause)}
	}
	if strings.HasSuffix(name, "-"+model.HandlerHandleError) {
		var ans model.HandleErrorOutput
		if json.Unmarshal(out, &ans) == nil && ans.Status == model.FailedPermanent {
			r.mu.Lock()
			r.failed++
			r.mu.Unlock()
		}
	}
	return out, nil
}

func errorMessage(err error) string {
	var doc struct {
		Message string `json:"errorMessage"`
	}
	b, _ := json.Marshal(lambdaio.AsLambdaError(err))
	_ = json.Unmarshal(b, &doc)
	return doc.Message
}
