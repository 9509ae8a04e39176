package localrun

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/shared/config"
	"arcbench/shared/model"
	"arcbench/shared/worker"
)

type jobRequest struct {
	JobDefinition      string `json:"JobDefinition"`
	JobName            string `json:"JobName"`
	JobQueue           string `json:"JobQueue"`
	ContainerOverrides struct {
		Environment []struct {
			Name  string `json:"Name"`
			Value string `json:"Value"`
		} `json:"Environment"`
	} `json:"ContainerOverrides"`
}

// jobName is what Batch accepts as a job's name.
var jobName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)

// What Batch does at a job attempt's time limit (AWS Batch User Guide, "Job
// timeouts", https://docs.aws.amazon.com/batch/latest/userguide/job_timeouts.html):
// "your job's container receives a SIGTERM signal to give your application a
// chance to shut down gracefully. If the container is still running after 30
// seconds, a SIGKILL signal is sent" (ECS's stopTimeout, whose default on
// Fargate is 30 s), and "If a job is terminated for exceeding the timeout
// duration, it isn't retried" (whatever the job definition's retry
// strategy: the local run makes no Batch-level retries anyway). The job
// then ends FAILED with this reason (what DescribeJobs reports, as seen in
// the field, e.g. insitro/redun's BATCH_JOB_TIMEOUT_ERROR), whatever the
// container's exit code.
const (
	defaultStopTimeout = 30 * time.Second
	reasonTimeout      = model.JobTimeoutReason
	reasonExited       = "Essential container in task exited"
)

// stopTimeout is the time from SIGTERM to SIGKILL (tests shorten it).
var stopTimeout atomic.Int64

func init() { stopTimeout.Store(int64(defaultStopTimeout)) }

// submitJob runs the Batch job as a local worker process with exactly the
// environment the job definition and the state's overrides would give the
// container, plus AWS_ENDPOINT_URL and access keys naming the job's role. A
// non-zero exit fails the state as Batch does: States.TaskFailed with the
// job description as Cause. sync is the .sync integration, which also
// describes the job until it ends and terminates it if the execution stops.
func (r *runner) submitJob(execARN string, raw json.RawMessage, sync bool) (any, error) {
	var req jobRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, &stepError{Name: "Batch.ClientException", Message: err.Error()}
	}
	if !jobName.MatchString(req.JobName) {
		return nil, &stepError{Name: "Batch.ClientException", Message: fmt.Sprintf(
			"Job name %q: up to 128 letters, numbers, hyphens and underscores, starting with a letter or number (Service: AWSBatch; Status Code: 400; Error Code: ClientException)", req.JobName)}
	}
	if err := r.authorizeSubmit(execARN, req, sync); err != nil {
		return nil, err
	}
	env := maps.Clone(r.job.Env)
	for _, e := range req.ContainerOverrides.Environment {
		env[e.Name] = e.Value
	}
	env[config.EnvEndpoint] = r.stack.Endpoint
	// The container's credentials are its job role's.
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = r.job.Role, "local"
	env["AWS_DEFAULT_REGION"] = Region
	env[worker.EnvFailRate] = fmt.Sprint(r.opts.FailRate)
	env[worker.EnvFailSeed] = fmt.Sprint(r.opts.Seed)
	if r.opts.Faults != "" {
		env[worker.EnvFaults] = r.opts.Faults
	}
	if r.opts.WorkerVersion != "" {
		env[worker.EnvWorkerVersion] = r.opts.WorkerVersion
	}
	timeout, err := r.attemptTimeout()
	if err != nil {
		return nil, &stepError{Name: "Batch.ClientException", Message: err.Error()}
	}
	// The provider keys come from the stage's secret on AWS (those its job
	// definition names); here from the caller, with the endpoints that point
	// a provider SDK at a local server.
	for _, k := range slices.Concat(r.job.Secrets, config.ProviderEndpoints) {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	maps.Copy(env, r.opts.WorkerEnv)
	list := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		list = append(list, k+"="+env[k])
	}

	n := atomic.AddInt64(&r.jobSeq, 1)
	jobID := fmt.Sprintf("local-%06d", n)
	// Submitted: the job waits in the queue (for a worker slot) until it runs.
	j := &localJob{id: jobID, exec: execARN}
	r.mu.Lock()
	if r.endedExec(execARN) {
		r.mu.Unlock()
		return nil, &stepError{Name: "States.Runtime", Message: "execution " + execARN + " has stopped: no job is submitted"}
	}
	r.jobs[jobID] = j
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.jobs, jobID)
		r.mu.Unlock()
	}()
	var worker *exec.Cmd
	if r.opts.WorkerCmd != "" {
		worker = exec.Command("sh", "-c", r.opts.WorkerCmd)
	} else {
		worker = exec.Command(r.opts.Self, "worker")
	}
	cmd := exec.CommandContext(r.ctx, worker.Path)
	cmd.Args = worker.Args
	if r.jobInit() {
		// The job's first process is its init (JobInit, as a container has
		// one), which runs the worker and, when the job ends, kills what the
		// worker started, even what left its group: nothing outlives a
		// container on AWS.
		cmd = exec.CommandContext(r.ctx, r.opts.Self, append([]string{"local", "job", "--control-fd=3", "--", worker.Path}, worker.Args...)...)
	}
	cmd.Err = worker.Err // a worker that cannot be found fails Start, as before
	cmd.Env = list
	// The job's processes form a group, signalled as one when the job is
	// stopped, as ECS signals a container's.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { r.halt(j, cmd.Process.Pid); return nil }
	logPath := filepath.Join(filepath.Dir(r.stack.S3Dir), "logs", fmt.Sprintf("%s-%s.log", env[config.WorkerEnvTaskID], jobID))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The runner's own lines in the job's log say what Batch did to it.
	j.log = slog.New(slog.NewJSONHandler(logFile, nil)).With("source", "arcbench local run (Batch)", "job_id", jobID)

	r.workers <- struct{}{}
	started := time.Now()
	runErr := r.runWorker(j, cmd, timeout)
	<-r.workers
	r.mu.Lock()
	timedOut := j.timedOut
	r.mu.Unlock()
	code := 0
	if errors.Is(runErr, errTerminated) {
		// Terminated while queued: it never ran, as Batch fails a job
		// terminated while RUNNABLE.
		job := map[string]any{"JobId": jobID, "JobName": req.JobName, "Status": "FAILED", "StatusReason": "Terminated by Step Functions: the execution stopped"}
		cause, _ := json.Marshal(job)
		return nil, &stepError{Name: "States.TaskFailed", Message: string(cause)}
	}
	if runErr != nil {
		var ee *exec.ExitError
		if !errors.As(runErr, &ee) {
			return nil, &stepError{Name: "Batch.ClientException", Message: fmt.Sprintf("start worker: %v", runErr)}
		}
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal()) // as a container's exit code reports a signal: 137 for SIGKILL
		}
	}
	stopped := time.Now().UnixMilli()
	attempt := map[string]any{"Container": map[string]any{"ExitCode": code, "LogStreamName": logPath},
		"StartedAt": started.UnixMilli(), "StoppedAt": stopped}
	// As DescribeJobs describes a Fargate job: its size and platform from
	// the job definition, which its compute is priced from.
	container := map[string]any{"ExitCode": code, "LogStreamName": logPath, "ResourceRequirements": r.job.Resources}
	if r.job.Platform != nil {
		container["RuntimePlatform"] = r.job.Platform
	}
	job := map[string]any{
		"JobId": jobID, "JobName": req.JobName, "JobQueue": req.JobQueue, "JobDefinition": req.JobDefinition,
		"CreatedAt": started.UnixMilli(), "StartedAt": started.UnixMilli(), "StoppedAt": stopped,
		"PlatformCapabilities": []string{"FARGATE"},
		"Container":            container,
		"Attempts":             []any{attempt},
	}
	if timeout > 0 {
		job["Timeout"] = map[string]any{"AttemptDurationSeconds": int(timeout.Seconds())}
	}
	if code == 0 && !timedOut {
		job["Status"] = "SUCCEEDED"
		j.log.Info("job ended", "status", job["Status"], "exit_code", code)
		return job, nil
	}
	// A job stopped at its time limit fails, even when its worker then
	// exited 0; it is not retried.
	job["Status"] = "FAILED"
	job["StatusReason"], attempt["StatusReason"] = reasonExited, reasonExited
	if timedOut {
		job["StatusReason"], attempt["StatusReason"] = reasonTimeout, reasonTimeout
	}
	cause, _ := json.Marshal(job)
	failure := &stepError{Name: "States.TaskFailed", Message: string(cause)}
	j.log.Warn("job ended", "status", job["Status"], "status_reason", job["StatusReason"], "exit_code", code,
		"error", failure.Name, "cause", failure.Message)
	return nil, failure
}

// attemptTimeout is how long a job's attempt may run: Options.JobTimeout,
// else the job definition's Timeout.AttemptDurationSeconds; 0 (none, Batch's
// default) when it has no Timeout.
func (r *runner) attemptTimeout() (time.Duration, error) {
	if r.opts.JobTimeout > 0 {
		return r.opts.JobTimeout, nil
	}
	ids := r.tmpl.OfType("AWS::Batch::JobDefinition")
	if len(ids) != 1 {
		return 0, fmt.Errorf("template has %d job definitions, want 1", len(ids))
	}
	raw, err := r.tmpl.Prop(ids[0], "Timeout")
	if err != nil || raw == nil {
		return 0, err
	}
	t, _ := raw.(map[string]any)
	v := t["AttemptDurationSeconds"]
	if v == nil {
		return 0, nil
	}
	secs, err := strconv.Atoi(fmt.Sprint(v))
	if err != nil || secs < 1 {
		return 0, fmt.Errorf("job definition %s: Timeout.AttemptDurationSeconds %v is not a whole number of seconds", ids[0], v)
	}
	return time.Duration(secs) * time.Second, nil
}

// authorizeSubmit checks what the Batch integration calls as the state
// machine's role: SubmitJob on the queue and the job definition and, for
// .sync, the managed EventBridge rule it watches the job through and
// DescribeJobs. (TerminateJob is checked when a job is to be stopped.)
func (r *runner) authorizeSubmit(execARN string, req jobRequest, sync bool) error {
	check := func(action string, resources ...string) error {
		if err := r.authorize(execARN, action, resources...); err != nil {
			return integrationError("Batch.AWSBatchException", err, "AWSBatch")
		}
		return nil
	}
	if err := check("batch:SubmitJob", req.JobQueue, req.JobDefinition); err != nil || !sync {
		return err
	}
	rule := arn("events", "rule/StepFunctionsGetEventsForBatchJobsRule")
	for _, action := range []string{"events:PutTargets", "events:PutRule", "events:DescribeRule"} {
		if err := check(action, rule); err != nil {
			return err
		}
	}
	return check("batch:DescribeJobs", "*")
}

// dynamodb performs a DynamoDB service integration by sending its parameters
// (already in the API's shape) through the local endpoint, signed as the
// state machine's role. Errors are named as Step Functions names them:
// <prefix><exception>.
func (r *runner) dynamodb(execARN, action string, params json.RawMessage, prefix string) (any, error) {
	op := strings.ToUpper(action[:1]) + action[1:]
	req, err := http.NewRequestWithContext(r.ctx, http.MethodPost, r.stack.Endpoint, bytes.NewReader(params))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	// dynalite checks that a request is signed, not the signature.
	now := time.Now().UTC()
	req.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+r.roleOf(execARN)+"/"+now.Format("20060102")+"/"+Region+"/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, &stepError{Name: prefix + "InternalServerErrorException", Message: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type     string `json:"__type"`
			Message  string `json:"message"`
			Message2 string `json:"Message"`
		}
		_ = json.Unmarshal(body, &e)
		name := e.Type[strings.LastIndex(e.Type, "#")+1:]
		return nil, &stepError{Name: prefix + name, Message: e.Message + e.Message2}
	}
	var out any
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// readItems reads a Distributed Map's items from the local bucket (a JSON
// array object, as ItemReader with InputType JSON reads it), as the state
// machine's role.
func (r *runner) readItems(execARN string, raw json.RawMessage) (any, error) {
	var in struct {
		Bucket       string `json:"Bucket"`
		Key          string `json:"Key"`
		ReaderConfig struct {
			InputType string `json:"InputType"`
		} `json:"ReaderConfig"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, err
	}
	if t := in.ReaderConfig.InputType; t != "" && t != "JSON" {
		return nil, &stepError{Name: "States.Runtime", Message: "the local run reads ItemReader InputType JSON only, not " + t}
	}
	obj, err := r.clientsAs(r.roleOf(execARN)).S3.GetObject(r.ctx, &s3.GetObjectInput{Bucket: aws.String(in.Bucket), Key: aws.String(in.Key)})
	if err != nil {
		return nil, &stepError{Name: "States.ItemReaderFailed", Message: err.Error()}
	}
	defer obj.Body.Close()
	var items []any
	if err := json.NewDecoder(obj.Body).Decode(&items); err != nil {
		return nil, &stepError{Name: "States.ItemReaderFailed", Message: fmt.Sprintf("s3://%s/%s is not a JSON array: %v", in.Bucket, in.Key, err)}
	}
	return items, nil
}

// writeResults writes a Distributed Map's results as ResultWriter does (as
// the state machine's role): a manifest and the results of succeeded and
// failed children under the prefix.
func (r *runner) writeResults(execARN string, raw json.RawMessage) (any, error) {
	var in struct {
		Bucket  string `json:"Bucket"`
		Prefix  string `json:"Prefix"`
		Results []any  `json:"results"`
		Failed  int    `json:"failed"`
		Total   int    `json:"total"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, err
	}
	mapRun := execARN[strings.LastIndex(execARN, ":")+1:]
	base := strings.TrimSuffix(in.Prefix, "/") + "/" + mapRun + "/"
	succeeded := make([]any, 0, len(in.Results))
	for _, res := range in.Results {
		if res != nil {
			succeeded = append(succeeded, map[string]any{"Output": res, "Status": "SUCCEEDED"})
		}
	}
	files := map[string]any{"SUCCEEDED_0.json": succeeded}
	manifest := map[string]any{
		"DestinationBucket": in.Bucket, "MapRunArn": execARN, "ResultFiles": map[string]any{
			"SUCCEEDED": []any{map[string]any{"Key": base + "SUCCEEDED_0.json"}}, "FAILED": []any{}, "PENDING": []any{},
		},
	}
	files["manifest.json"] = manifest
	s3c := r.clientsAs(r.roleOf(execARN)).S3
	for name, doc := range files {
		body, _ := json.Marshal(doc)
		if _, err := s3c.PutObject(r.ctx, &s3.PutObjectInput{
			Bucket: aws.String(in.Bucket), Key: aws.String(base + name), Body: bytes.NewReader(body), ContentType: aws.String("application/json"),
		}); err != nil {
			return nil, &stepError{Name: "States.ResultWriterFailed", Message: err.Error()}
		}
	}
	return map[string]any{"ResultWriterDetails": map[string]any{"Bucket": in.Bucket, "Key": base + "manifest.json"}}, nil
}

// localJob is a submitted job: queued until a worker slot is free, then
// running as a process; terminated when its execution stopped, or stopped
// at its attempt timeout.
type localJob struct {
	id, exec string // its id, and the execution that submitted it
	cmd      *exec.Cmd
	// control is the write end of the pipe to the job's init (nil without
	// one): closing it makes the init kill the job's every process.
	control    *os.File
	terminated bool
	log        *slog.Logger // the runner's lines in the job's log
	// timedOut: its attempt timeout passed and SIGTERM was sent; kill
	// sends SIGKILL once the stop timeout has passed too; ended: its process
	// has exited (and its group may be gone: signal it no more).
	timedOut, ended bool
	kill            *time.Timer
}

var errTerminated = errors.New("job terminated before it started")

// endedExec tells whether an execution, or one it belongs to, has ended
// badly (terminateJobs saw it). Callers hold r.mu.
func (r *runner) endedExec(execARN string) bool {
	for arn := execARN; ; {
		if r.stopped[arn] {
			return true
		}
		i := strings.LastIndex(arn, "/")
		if i < 0 {
			return false
		}
		arn = arn[:i]
	}
}

// runWorker runs a job's worker process, known to the runner while it runs
// so that a stopped execution, or Close, can stop its whole group. A job
// terminated while it waited is not started. One still running when timeout
// (if any) has passed is stopped as Batch stops it (timeOut).
func (r *runner) runWorker(j *localJob, cmd *exec.Cmd, timeout time.Duration) error {
	r.mu.Lock()
	if j.terminated {
		r.mu.Unlock()
		return errTerminated
	}
	var control *os.File
	if r.jobInit() {
		// The run holds the only write end: the init sees EOF when the run
		// closes it (halt), or dies, even by kill -9.
		rd, wr, err := os.Pipe()
		if err != nil {
			r.mu.Unlock()
			return err
		}
		cmd.ExtraFiles = []*os.File{rd} // fd 3
		control, j.control = rd, wr
	}
	err := cmd.Start()
	if control != nil {
		_ = control.Close() // the init has its own
	}
	if err != nil {
		if j.control != nil {
			_ = j.control.Close()
		}
		r.mu.Unlock()
		return err
	}
	j.cmd = cmd
	r.mu.Unlock()
	pgid := cmd.Process.Pid // the init (or the worker) leads the job's group
	r.watch.started(pgid)
	if timeout > 0 {
		limit := time.AfterFunc(timeout, func() { r.timeOut(j, pgid, timeout) })
		defer limit.Stop()
	}
	err = cmd.Wait()
	r.mu.Lock()
	j.ended = true
	if j.kill != nil {
		j.kill.Stop()
	}
	r.mu.Unlock()
	// A job's end is its container's: the init has killed what the worker
	// left; without one, whatever is left in its group goes.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if j.control != nil {
		_ = j.control.Close()
	}
	r.watch.ended(pgid)
	return err
}

// jobInit tells whether jobs run under an init (JobInit): those of
// --worker-cmd, which may start anything. The built-in worker starts no
// process: it runs alone, as before, sparing each job an arcbench start
// (~0.1 s of CPU, the AWS SDK's package initialization).
func (r *runner) jobInit() bool { return r.opts.WorkerCmd != "" && r.opts.Self != "" }

// halt kills every process of a running job at once: its init does, once
// its control pipe is closed (it then exits as the worker did: 137); a job
// without an init loses its group.
func (r *runner) halt(j *localJob, pgid int) {
	if j.control != nil {
		_ = j.control.Close()
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// timeOut stops a job whose attempt ran for its time limit: SIGTERM to its
// process group (the container's processes), SIGKILL once the stop timeout
// has passed too, unless it has ended by then.
func (r *runner) timeOut(j *localJob, pgid int, timeout time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j.ended {
		return
	}
	j.timedOut = true
	j.log.Warn("job attempt timed out: SIGTERM sent", "attempt_duration_seconds", timeout.Seconds(), "sigkill_in_seconds", time.Duration(stopTimeout.Load()).Seconds())
	r.stop(j, pgid)
}

// stop stops a running job's container as ECS does (StopTask, which both
// Batch's time limit and TerminateJob come to): SIGTERM to its group, then
// SIGKILL to its every process once the stop timeout has passed. Callers
// hold r.mu.
func (r *runner) stop(j *localJob, pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	j.kill = time.AfterFunc(time.Duration(stopTimeout.Load()), func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !j.ended {
			j.log.Warn("job still running after the stop timeout: SIGKILL sent")
			r.halt(j, pgid)
		}
	})
}

// stopWorkers kills every running job's processes, and keeps queued jobs
// from starting.
func (r *runner) stopWorkers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.jobs {
		j.terminated = true
		if j.cmd != nil {
			r.halt(j, j.cmd.Process.Pid)
		}
	}
}

// terminateJobs stops the queued and running jobs of an execution and of
// its Map children, as Step Functions does when an execution stops:
// TerminateJob, as the state machine's role (a queued job never runs, a
// running one is stopped as ECS stops a task). A job it may not terminate
// runs on, as it would on AWS.
func (r *runner) terminateJobs(execARN string) {
	r.mu.Lock()
	r.stopped[execARN] = true
	var doomed []*localJob
	for _, j := range r.jobs {
		if j.exec == execARN || strings.HasPrefix(j.exec, execARN+"/") {
			doomed = append(doomed, j)
		}
	}
	r.mu.Unlock()
	for _, j := range doomed {
		if err := r.authorize(execARN, "batch:TerminateJob", arn("batch", "job/"+j.id)); err != nil {
			fmt.Fprintln(r.opts.Log, "arcbench: job", j.id, "keeps running:", err)
			continue
		}
		r.mu.Lock()
		j.terminated = true
		if j.cmd != nil && !j.ended && j.kill == nil {
			// A running job gets what its container would: SIGTERM (the
			// benchmark's worker then saves what it has), SIGKILL 30 s later.
			j.log.Warn("job terminated (the execution stopped): SIGTERM sent")
			r.stop(j, j.cmd.Process.Pid)
		}
		r.mu.Unlock()
	}
}
