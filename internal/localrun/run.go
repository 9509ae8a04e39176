// Package localrun runs the whole flow on a laptop: the synthesized template's
// tables and bucket on local emulators, its state machine on
// aws-local-stepfunctions, its Lambda states served in-process by the same
// handlers Lambda runs, its Batch state by local worker processes.
package localrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/internal/emulators"
	"arcbench/shared/arcdata"
	"arcbench/shared/clients"
	"arcbench/shared/config"
	"arcbench/shared/handlers"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
)

// Options are what `arcbench local run` takes.
type Options struct {
	// Assembly is a cloud assembly (cdk.out) to read; empty synthesizes Stage.
	Assembly string
	Stage    string
	// TaskIDs are the run's tasks; their data is generated from Seed.
	TaskIDs    []string
	ConfigName string
	DataSource string
	Seed       int64
	// FailRate is the share of worker attempts made to fail (baseline worker).
	FailRate float64
	// WorkerCmd runs instead of the built-in baseline worker (through sh -c).
	WorkerCmd string
	// MaxRetries, when set, overrides MAX_RETRIES in the functions' and the
	// job definition's environment.
	MaxRetries int
	// Parallel bounds the worker processes running at once.
	Parallel int
	// Dir holds the bucket's files and the workers' logs.
	Dir string
	// Keep leaves the emulators running after the run.
	Keep bool
	// Self is the arcbench executable (runs the built-in worker).
	Self string
	// Progress receives the progress bar; nil shows none.
	Progress func(done, failed, total int)
	Log      io.Writer
}

// Result is what a local run did.
type Result struct {
	Status         string          `json:"status"`
	Error          string          `json:"error,omitempty"`
	Cause          string          `json:"cause,omitempty"`
	Output         json.RawMessage `json:"output,omitempty"`
	RunID          string          `json:"run_id,omitempty"`
	AggregatedPath string          `json:"aggregated_path,omitempty"`
	Figures        Figures         `json:"figures"`
	// Calls counts the Task state invocations the run served, per state.
	Calls      map[string]int `json:"calls"`
	Violations []string       `json:"violations,omitempty"`
	Wall       time.Duration  `json:"wall_ns"`
	Endpoint   string         `json:"endpoint,omitempty"`
	Tables     []string       `json:"tables,omitempty"`
	Bucket     string         `json:"bucket,omitempty"`
	// Dir holds the run's template, bucket files and logs.
	Dir string `json:"dir"`
	// Stack is left running when Options.Keep is set; the caller stops it.
	Stack *emulators.Stack `json:"-"`
}

// runner holds one local run's state.
type runner struct {
	opts     Options
	tmpl     *Template
	clients  *clients.Clients
	stack    *emulators.Stack
	fns      map[string]lambdaio.RawFunc // by physical function name
	jobEnv   map[string]string
	bucket   string
	res      map[string]string // state name -> Resource
	br       *bridge
	workers  chan struct{}
	jobSeq   int64
	ctx      context.Context
	mu       sync.Mutex
	execs    map[string]*Execution
	children []*Execution
	done     int
	failed   int
	total    int
	calls    map[string]int
}

// Run performs one local run from start to end.
func Run(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	if opts.Stage == "" {
		opts.Stage = "local"
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 8
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	root, err := emulators.Root()
	if err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		opts.Dir = filepath.Join(root, ".arcbench", "local")
	}
	runDir := filepath.Join(opts.Dir, time.Now().UTC().Format("20060102-150405.000"))
	tmpl, err := template(ctx, root, opts, runDir)
	if err != nil {
		return nil, err
	}
	stack, err := emulators.StartStack(ctx, filepath.Join(runDir, "s3"))
	if err != nil {
		return nil, err
	}
	r := &runner{opts: opts, tmpl: tmpl, stack: stack, clients: clients.NewLocal(stack.Endpoint),
		execs: map[string]*Execution{}, calls: map[string]int{}, workers: make(chan struct{}, opts.Parallel), ctx: ctx, total: len(opts.TaskIDs)}
	result := &Result{Endpoint: stack.Endpoint}
	defer func() {
		if opts.Keep {
			result.Stack = stack
		} else {
			stack.Stop()
		}
	}()
	// The handlers log as on Lambda, into the run's folder (and to Log).
	if err := os.MkdirAll(filepath.Join(runDir, "logs"), 0o755); err != nil {
		return nil, err
	}
	handlerLog, err := os.Create(filepath.Join(runDir, "logs", "handlers.log"))
	if err != nil {
		return nil, err
	}
	defer handlerLog.Close()
	slog.SetDefault(slog.New(slog.NewJSONHandler(io.MultiWriter(handlerLog, opts.Log), nil)))
	result.Dir = runDir
	if err := r.prepare(ctx, result, runDir); err != nil {
		return nil, err
	}
	if err := r.execute(ctx, result, root); err != nil {
		return nil, err
	}
	result.Wall = time.Since(start)
	return result, nil
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
func (r *runner) prepare(ctx context.Context, result *Result, runDir string) error {
	var err error
	if result.Tables, err = createTables(ctx, r.tmpl, r.clients.DynamoDB); err != nil {
		return err
	}
	buckets, err := createBuckets(ctx, r.tmpl, r.clients.S3)
	if err != nil {
		return err
	}
	if len(buckets) != 1 {
		return fmt.Errorf("template has %d buckets, want 1", len(buckets))
	}
	r.bucket, result.Bucket = buckets[0], buckets[0]
	if err := r.seed(ctx); err != nil {
		return err
	}
	fns, err := functions(r.tmpl)
	if err != nil {
		return err
	}
	r.fns = map[string]lambdaio.RawFunc{}
	for name, f := range fns {
		if r.opts.MaxRetries > 0 && f.Env[config.EnvMaxRetries] != "" {
			f.Env[config.EnvMaxRetries] = fmt.Sprint(r.opts.MaxRetries)
		}
		cfg, err := config.FromEnv(func(k string) string { return f.Env[k] })
		if err != nil {
			return fmt.Errorf("function %s: %w", name, err)
		}
		h, err := handlers.Raw(f.Handler, handlers.Deps{Config: cfg, Clients: r.clients, Now: time.Now})
		if err != nil {
			return err
		}
		r.fns[name] = h
	}
	if r.jobEnv, err = jobEnvironment(r.tmpl); err != nil {
		return err
	}
	if r.opts.MaxRetries > 0 {
		r.jobEnv[config.WorkerEnvMaxRetries] = fmt.Sprint(r.opts.MaxRetries)
	}
	return nil
}

// seed writes each task's ARC-style data to tasks/<data_source>/<id>.json.
func (r *runner) seed(ctx context.Context) error {
	for _, id := range r.opts.TaskIDs {
		body, err := json.Marshal(arcdata.Generate(id, r.opts.Seed))
		if err != nil {
			return err
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

// execute runs the state machine (and the reaper, when the run ends badly)
// through the bridge, serving its tasks until it ends.
func (r *runner) execute(ctx context.Context, result *Result, root string) error {
	run, reaper, reaperOn, err := stateMachines(r.tmpl)
	if err != nil {
		return err
	}
	r.res = resources(run.Definition, nil)
	if reaper != nil {
		resources(reaper.Definition, r.res)
	}
	br, err := startBridge(root, r.opts.Log)
	if err != nil {
		return err
	}
	r.br = br
	defer br.stop()

	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	input := map[string]any{"config_name": r.opts.ConfigName, "data_source": r.opts.DataSource, "triggered_by": who}
	if err := r.addTaskList(ctx, input); err != nil {
		return err
	}
	execARN := strings.Replace(run.ARN, ":stateMachine:", ":execution:", 1) + ":local-" + time.Now().UTC().Format("20060102T150405")
	end, err := r.start(ctx, run, execARN, input)
	if err != nil {
		return err
	}
	result.Status, result.Output, result.Cause = end.Status, end.Output, end.Cause
	if len(end.Error) > 0 {
		_ = json.Unmarshal(end.Error, &result.Error)
	}
	if end.Status != "SUCCEEDED" && reaper != nil && contains(reaperOn, end.Status) {
		// As EventBridge would: the execution's status change starts the reaper.
		event := map[string]any{
			"source": "aws.states", "detail-type": "Step Functions Execution Status Change",
			"detail": map[string]any{"executionArn": execARN, "stateMachineArn": run.ARN, "status": end.Status},
		}
		rend, err := r.start(ctx, reaper, strings.Replace(reaper.ARN, ":stateMachine:", ":execution:", 1)+":local-reaper", event)
		if err != nil {
			return err
		}
		if rend.Status != "SUCCEEDED" {
			return fmt.Errorf("the run reaper failed: %s", rend.Cause)
		}
	}
	r.mu.Lock()
	result.Figures = Figures{Root: r.execs[execARN], Children: r.children}
	result.Calls = r.calls
	r.mu.Unlock()
	result.Violations = result.Figures.Violations()
	var out struct {
		RunID string `json:"run_id"`
	}
	_ = json.Unmarshal(end.Output, &out)
	result.RunID = out.RunID
	if result.RunID != "" && r.stack.S3Dir != "" {
		p := filepath.Join(r.stack.S3Dir, "buckets", r.bucket, filepath.FromSlash(model.AggregatedKey(result.RunID)))
		if _, err := os.Stat(p); err == nil {
			result.AggregatedPath = p
		}
	}
	return nil
}

// InlineTaskListLimit is the most bytes of task ids an execution's input
// carries; a longer list is uploaded and passed as task_list_key, as
// `arcbench start` does, far from the 256 KiB input quota.
const InlineTaskListLimit = 32 << 10

// addTaskList puts the task list into the execution's input: inline when
// small, else uploaded under inputs/ and named by task_list_key.
func (r *runner) addTaskList(ctx context.Context, input map[string]any) error {
	list, err := json.Marshal(r.opts.TaskIDs)
	if err != nil {
		return err
	}
	if len(list) <= InlineTaskListLimit {
		input["task_ids"] = r.opts.TaskIDs
		return nil
	}
	key := model.TaskListPrefix + "local-" + time.Now().UTC().Format("20060102T150405.000") + ".json"
	if _, err := r.clients.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(r.bucket), Key: aws.String(key), Body: bytes.NewReader(list), ContentType: aws.String("application/json"),
	}); err != nil {
		return fmt.Errorf("upload the task list: %w", err)
	}
	input["task_list_key"] = key
	return nil
}

// start runs one root execution to its end, serving its calls.
func (r *runner) start(ctx context.Context, sm *stateMachine, execARN string, input any) (*message, error) {
	r.mu.Lock()
	r.execs[execARN] = &Execution{ARN: execARN}
	r.mu.Unlock()
	if err := r.br.send(map[string]any{
		"t": "start", "definition": sm.Definition, "input": input,
		"executionArn": execARN, "stateMachineArn": sm.ARN, "resources": r.res,
	}); err != nil {
		return nil, fmt.Errorf("start execution: %w", err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := r.br.next()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the state machine interpreter exited unexpectedly (see its output above)")
		}
		if err != nil {
			return nil, err
		}
		switch m.T {
		case "call":
			r.mu.Lock()
			r.calls[m.State]++
			r.mu.Unlock()
			go r.serve(m)
		case "event":
			r.mu.Lock()
			if e := r.execs[m.Exec]; e != nil {
				e.record(m, strings.HasSuffix(r.res[m.State], ".sync"))
				if m.Exec == execARN && strings.HasPrefix(m.Type, "MapIteration") && m.Type != "MapIterationStarted" {
					r.done++
				}
			}
			r.mu.Unlock()
			r.progress()
		case "child":
			r.mu.Lock()
			e := &Execution{ARN: m.Exec, Parent: m.Parent}
			r.execs[m.Exec] = e
			r.children = append(r.children, e)
			r.mu.Unlock()
		case "end":
			r.mu.Lock()
			if e := r.execs[m.Exec]; e != nil {
				e.Status = m.Status
			}
			if !m.Root {
				r.done++
			}
			r.mu.Unlock()
			r.progress()
			if m.Root && m.Exec == execARN {
				return m, nil
			}
		}
	}
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
		return r.readItems(m.Input)
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
		out, err := r.invoke(in.FunctionName, in.Payload)
		if err != nil {
			return nil, err
		}
		return map[string]any{"ExecutedVersion": "$LATEST", "Payload": out, "StatusCode": 200}, nil
	case strings.HasPrefix(resource, "arn:aws:lambda:"):
		return r.invoke(resource, m.Input)
	case strings.HasPrefix(resource, "arn:aws:states:::batch:submitJob"):
		return r.submitJob(m.Input)
	case strings.HasPrefix(resource, "arn:aws:states:::dynamodb:"):
		return r.dynamodb(strings.TrimPrefix(resource, "arn:aws:states:::dynamodb:"), m.Input, "DynamoDB.")
	case strings.HasPrefix(resource, "arn:aws:states:::aws-sdk:dynamodb:"):
		return r.dynamodb(strings.TrimPrefix(resource, "arn:aws:states:::aws-sdk:dynamodb:"), m.Input, "DynamoDb.")
	}
	return nil, &stepError{Name: "States.Runtime", Message: fmt.Sprintf("state %s: resource %s is not supported by the local run", m.State, resource)}
}

// invoke calls one of our handlers in-process through its JSON boundary. A
// handler error fails the state as Lambda would: the errorType as Error, the
// error document as Cause.
func (r *runner) invoke(function string, payload json.RawMessage) (json.RawMessage, error) {
	name := function[strings.LastIndex(function, ":")+1:]
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

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// sortedKeys is for stable output.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
