package worker

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"arcbench/shared/config"
	"arcbench/shared/model"
)

// The benchmark worker's own defaults, for what the job does not set.
const (
	DefaultRunsTable      = "arc_benchmark_runs"
	DefaultTasksTable     = "arc_task_progress"
	DefaultRateLimitTable = "arc_rate_limits"
	DefaultRegion         = "us-west-2"
)

// Version is which of the benchmark worker's versions the built-in worker
// counts on the run record as (ARCBENCH_WORKER_VERSION): the benchmark's
// pull requests differ there, and the orchestration must hold up to each.
type Version string

// EnvWorkerVersion picks the Version; DefaultVersion when unset.
const EnvWorkerVersion = "ARCBENCH_WORKER_VERSION"

// The versions.
const (
	// PR77 adds a completion to the run's completed_tasks, total_cost_usd
	// and token totals with a plain "+", and a task it marks
	// FAILED_PERMANENT to failed_tasks.
	PR77 Version = "pr77"
	// PR78 is PR77 without the failed_tasks + 1 ("fix double-counting").
	PR78 Version = "pr78"
	// Silent counts nothing on the run record: no run update at all.
	Silent Version = "silent"

	DefaultVersion = PR77
)

// Versions are the accepted versions, in the order the help lists them.
var Versions = []Version{PR77, PR78, Silent}

// countsCompletions tells whether the version adds a completion to the run.
func (v Version) countsCompletions() bool { return v != Silent }

// countsPermanentFailures tells whether the version adds a task it marks
// FAILED_PERMANENT to the run's failed_tasks.
func (v Version) countsPermanentFailures() bool { return v == PR77 }

// Config is the worker's configuration, read from the container's
// environment: what the Batch job definition sets and what the state machine
// adds per task.
type Config struct {
	// Required.
	RunID      string // RUN_ID
	TaskID     string // TASK_ID
	ConfigName string // CONFIG_NAME: the submission's test_id
	Bucket     string // S3_BUCKET: task data in, submissions out

	RunPrefix      string // S3_PREFIX [runs/<RUN_ID>]: submissions go under it
	TasksPrefix    string // S3_TASKS_PREFIX [tasks]: the task is <prefix>/<TASK_ID>.json
	RunsTable      string // DYNAMODB_RUNS_TABLE [arc_benchmark_runs]
	TasksTable     string // DYNAMODB_TASKS_TABLE [arc_task_progress]
	RateLimitTable string // DYNAMODB_RATE_LIMIT_TABLE [arc_rate_limits]
	MaxRetries     int    // MAX_RETRIES [3]: the failure that reaches it is permanent
	// WorkerID is AWS_BATCH_JOB_ID, or <hostname>-<pid> outside Batch.
	WorkerID string

	// Injected misbehaviour: ARCBENCH_FAULTS, ARCBENCH_FAIL_RATE [0] in
	// [0, 1] and ARCBENCH_FAIL_SEED [1].
	Faults   Faults
	FailRate float64
	FailSeed int64
	// Version is ARCBENCH_WORKER_VERSION [pr77].
	Version Version
}

// ConfigError is a missing or malformed setting (exit 2): the worker has
// touched nothing.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return "configuration: " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// ConfigFromEnv reads the configuration once, at start-up; values are
// trimmed, and DATA_SOURCE is ignored, as the benchmark's worker ignores it.
// The error (a *ConfigError) names every missing or malformed variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	or := func(name, def string) string {
		if v := get(name); v != "" {
			return v
		}
		return def
	}
	c := Config{
		RunID:          get(config.WorkerEnvRunID),
		TaskID:         get(config.WorkerEnvTaskID),
		ConfigName:     get(config.WorkerEnvConfigName),
		Bucket:         get(config.WorkerEnvBucket),
		TasksPrefix:    strings.TrimRight(or(config.WorkerEnvTasksPrefix, model.TaskDataRoot), "/"),
		RunsTable:      or(config.WorkerEnvRunsTable, DefaultRunsTable),
		TasksTable:     or(config.WorkerEnvTasksTable, DefaultTasksTable),
		RateLimitTable: or(config.WorkerEnvRateLimitTable, DefaultRateLimitTable),
		MaxRetries:     config.DefaultMaxRetries,
		WorkerID:       get(config.WorkerEnvBatchJobID),
		FailSeed:       DefaultFailSeed,
		Version:        DefaultVersion,
	}
	c.RunPrefix = strings.TrimRight(or(config.WorkerEnvRunPrefix, model.RunPrefix(c.RunID)), "/")
	if c.WorkerID == "" {
		host, _ := os.Hostname()
		c.WorkerID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}

	var errs []error
	var missing []string
	for _, v := range []struct{ name, value string }{
		{config.WorkerEnvRunID, c.RunID},
		{config.WorkerEnvTaskID, c.TaskID},
		{config.WorkerEnvConfigName, c.ConfigName},
		{config.WorkerEnvBucket, c.Bucket},
	} {
		if v.value == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("missing %s", strings.Join(missing, ", ")))
	}
	if v := get(config.WorkerEnvMaxRetries); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s=%q: must be a positive integer", config.WorkerEnvMaxRetries, v))
		} else {
			c.MaxRetries = n
		}
	}
	if v := get(EnvFailRate); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r >= 0 && r <= 1) {
			errs = append(errs, fmt.Errorf("%s=%q: must be a number from 0 to 1", EnvFailRate, v))
		} else {
			c.FailRate = r
		}
	}
	if v := get(EnvFailSeed); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: must be an integer", EnvFailSeed, v))
		} else {
			c.FailSeed = s
		}
	}
	if v := get(EnvWorkerVersion); v != "" {
		if !slices.Contains(Versions, Version(v)) {
			errs = append(errs, fmt.Errorf("%s=%q: must be one of %s", EnvWorkerVersion, v, versionList()))
		} else {
			c.Version = Version(v)
		}
	}
	faults, err := ParseFaults(get(EnvFaults))
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", EnvFaults, err))
	}
	c.Faults = faults
	if err := errors.Join(errs...); err != nil {
		return Config{}, &ConfigError{Err: err}
	}
	return c, nil
}

func versionList() string {
	names := make([]string, len(Versions))
	for i, v := range Versions {
		names[i] = string(v)
	}
	return strings.Join(names, ", ")
}
