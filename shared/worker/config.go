package worker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"arcbench/shared/config"
)

// Fault injection, for local runs: the share of attempts that fail on purpose
// and the seed of the schedule that picks them (see FailsAttempt).
const (
	EnvFailRate     = "ARCBENCH_FAIL_RATE"
	EnvFailSeed     = "ARCBENCH_FAIL_SEED"
	DefaultFailSeed = 1
)

// Config is the worker's configuration, read from the container's
// environment: what the Batch job definition sets and what the state machine
// adds per task.
type Config struct {
	// Required.
	Bucket     string // S3_BUCKET: task data in, submissions out
	TasksTable string // DYNAMODB_TASKS_TABLE
	RunID      string // RUN_ID
	TaskID     string // TASK_ID
	DataSource string // DATA_SOURCE: the task data is tasks/<DATA_SOURCE>/<TASK_ID>.json

	// Optional: the baseline worker reads no runs or rate-limit table, and
	// retries are the state machine's business; a MAX_RETRIES that is set must
	// still be a positive integer.
	RunsTable      string // DYNAMODB_RUNS_TABLE
	RateLimitTable string // DYNAMODB_RATE_LIMIT_TABLE
	MaxRetries     int    // MAX_RETRIES [3]
	ConfigName     string // CONFIG_NAME: recorded in the submission

	// Fault injection: ARCBENCH_FAIL_RATE [0] in [0, 1], ARCBENCH_FAIL_SEED [1].
	FailRate float64
	FailSeed int64
}

// ConfigFromEnv reads the configuration once, at start-up. The error (a
// *ConfigError) names every missing or malformed variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	c := Config{
		Bucket:         get(config.WorkerEnvBucket),
		TasksTable:     get(config.WorkerEnvTasksTable),
		RunID:          get(config.WorkerEnvRunID),
		TaskID:         get(config.WorkerEnvTaskID),
		DataSource:     get(config.WorkerEnvDataSource),
		RunsTable:      get(config.WorkerEnvRunsTable),
		RateLimitTable: get(config.WorkerEnvRateLimitTable),
		MaxRetries:     config.DefaultMaxRetries,
		ConfigName:     get(config.WorkerEnvConfigName),
		FailSeed:       DefaultFailSeed,
	}
	var errs []error
	var missing []string
	for _, v := range []struct{ name, value string }{
		{config.WorkerEnvBucket, c.Bucket},
		{config.WorkerEnvTasksTable, c.TasksTable},
		{config.WorkerEnvRunID, c.RunID},
		{config.WorkerEnvTaskID, c.TaskID},
		{config.WorkerEnvDataSource, c.DataSource},
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
	if err := errors.Join(errs...); err != nil {
		return Config{}, &ConfigError{Err: err}
	}
	return c, nil
}
