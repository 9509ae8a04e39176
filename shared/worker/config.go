package worker

import (
	"errors"
	"fmt"
	"os"
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
