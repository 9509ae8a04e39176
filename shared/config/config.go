// Package config holds the names of every environment variable arcbench reads
// or sets, their defaults, and the handlers' typed configuration parsed from them.
package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"arcbench/shared/money"
)

// Environment variables of the Lambda handlers (set by the CDK app, read by the handlers).
const (
	EnvRunsTable  = "RUNS_TABLE"
	EnvTasksTable = "TASKS_TABLE"
	EnvBucket     = "S3_BUCKET"
	EnvMaxRetries = "MAX_RETRIES"
	EnvNamespace  = "CLOUDWATCH_NAMESPACE"
	// EnvRetryBackoff is the wait before a failed task's first retry, in
	// seconds; it doubles for each retry after that.
	EnvRetryBackoff = "RETRY_BACKOFF_SECONDS"
	// EnvEndpoint is the SDK's own variable: one endpoint for every service (an emulator).
	EnvEndpoint = "AWS_ENDPOINT_URL"
	// EnvRunBudgetUSD and EnvStopAfterFailures are a stage's defaults for a
	// run's budget (USD of model cost; unset: none) and early stop (attempts
	// failed in a row; 0: never), for runs whose input names none.
	EnvRunBudgetUSD      = "RUN_BUDGET_USD"
	EnvStopAfterFailures = "STOP_AFTER_FAILURES"
	// EnvGoMemLimit is the Go runtime's soft memory limit, set on every
	// function to a share of its memory.
	EnvGoMemLimit = "GOMEMLIMIT"
	EnvRegion     = "AWS_REGION"
	// EnvNotifyTopicARN is the stage's SNS topic, where a run's end is told
	// (unset: told nowhere); the stage's name (EnvStage) goes in the message.
	EnvNotifyTopicARN = "NOTIFY_TOPIC_ARN"
)

// Environment variables of the worker container (the Batch job definition and
// the state machine's per-task overrides).
const (
	WorkerEnvBucket         = "S3_BUCKET"
	WorkerEnvRunsTable      = "DYNAMODB_RUNS_TABLE"
	WorkerEnvTasksTable     = "DYNAMODB_TASKS_TABLE"
	WorkerEnvRateLimitTable = "DYNAMODB_RATE_LIMIT_TABLE"
	WorkerEnvMaxRetries     = "MAX_RETRIES"
	WorkerEnvRegion         = "AWS_REGION"
	WorkerEnvRunID          = "RUN_ID"
	WorkerEnvTaskID         = "TASK_ID"
	WorkerEnvConfigName     = "CONFIG_NAME"
	WorkerEnvDataSource     = "DATA_SOURCE"
	// WorkerEnvTasksPrefix is where the worker reads <prefix>/<task_id>.json:
	// model.TaskDataPrefix of the run's data source, set per task.
	WorkerEnvTasksPrefix = "S3_TASKS_PREFIX"
	// WorkerEnvRunPrefix is the folder of the run's objects (default
	// runs/<RUN_ID>); its result_s3_key is relative to it.
	WorkerEnvRunPrefix = "S3_PREFIX"
	// WorkerEnvBatchJobID is set by Batch; the worker records it as worker_id.
	WorkerEnvBatchJobID = "AWS_BATCH_JOB_ID"
)

// WorkerEnv are the variables the job itself sets on the worker's container
// (the job definition's and the state machine's overrides): no provider key
// may take one of these names.
var WorkerEnv = []string{WorkerEnvBucket, WorkerEnvRunsTable, WorkerEnvTasksTable, WorkerEnvRateLimitTable,
	WorkerEnvMaxRetries, WorkerEnvRegion, WorkerEnvRunID, WorkerEnvTaskID, WorkerEnvConfigName, WorkerEnvDataSource,
	WorkerEnvTasksPrefix, WorkerEnvRunPrefix}

// ProviderKeys are the model providers' API keys the worker reads from its
// environment by default (a stage names its own with the context key
// providerKeys): each a JSON key of the stage's API-keys secret, passed on
// from the caller's environment in local runs.
var ProviderKeys = []string{
	"OPENAI_API_KEY",
	"ANTHROPIC_API_KEY",
	"GOOGLE_API_KEY",
	"DEEPSEEK_API_KEY",
	"XAI_API_KEY",
	"FIREWORKS_API_KEY",
	"OPENROUTER_API_KEY",
}

// ProviderEndpoints are the provider SDKs' endpoint settings a local run
// passes on to the worker like the keys: how a model server on loopback is
// plugged in.
var ProviderEndpoints = []string{"OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"}

// FunctionMemoryMiB is each handler's Lambda memory, by handler name
// (model.Handler*): infra sizes the functions with it (and sets GOMEMLIMIT
// from it), and tests hold a handler's peak memory against it. Aggregate
// holds every task's line of aggregated.json at once.
var FunctionMemoryMiB = map[string]int{
	"initialize":   256,
	"check-task":   256,
	"handle-error": 256,
	"aggregate":    512,
	"complete":     256,
}

// GoMemLimit is GOMEMLIMIT for a function of memoryMiB: 80%, leaving the
// rest to what the Go runtime does not count (stacks, the binary, the
// Lambda runtime's own).
func GoMemLimit(memoryMiB int) string { return strconv.Itoa(memoryMiB*8/10) + "MiB" }

// Defaults, as the original handlers had them.
const (
	DefaultRunsTable  = "arc_benchmark_runs"
	DefaultTasksTable = "arc_benchmark_tasks"
	DefaultMaxRetries = 3
	DefaultNamespace  = "ArcBenchmark"
	// DefaultRetryBackoff is the first retry's wait, in seconds.
	DefaultRetryBackoff = 15
	// MaxRetryBackoff caps any retry's wait, in seconds: an hour.
	MaxRetryBackoff = 3600
	// DefaultStopAfterFailures stops a run after this many attempts in a
	// row failed: a revoked key or a provider outage stops a run in minutes,
	// not after every task's MAX_RETRIES.
	DefaultStopAfterFailures = 20
)

// Config is what every handler is configured with.
type Config struct {
	RunsTable  string
	TasksTable string
	// Bucket is empty when no bucket is configured: aggregate then skips its S3 write.
	Bucket     string
	MaxRetries int
	Namespace  string
	// RetryBackoff is the first retry's wait, in seconds.
	RetryBackoff int
	// RunBudgetUSD is the stage's default run budget (decimal text; "" none);
	// StopAfterFailures its default early stop (0: never).
	RunBudgetUSD      string
	StopAfterFailures int
	// NotifyTopicARN is where a run's end is published ("" nowhere); Stage
	// names the stage in the message's commands.
	NotifyTopicARN string
	Stage          string
	// Region is the function's AWS region (Lambda sets AWS_REGION): what
	// check-task prices a job's compute in.
	Region string
}

// FromEnv reads the configuration once, at start-up. The error names every
// malformed variable.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		RunsTable:    orDefault(getenv(EnvRunsTable), DefaultRunsTable),
		TasksTable:   orDefault(getenv(EnvTasksTable), DefaultTasksTable),
		Bucket:       strings.TrimSpace(getenv(EnvBucket)),
		MaxRetries:   DefaultMaxRetries,
		Namespace:    orDefault(getenv(EnvNamespace), DefaultNamespace),
		RetryBackoff: DefaultRetryBackoff,

		StopAfterFailures: DefaultStopAfterFailures,
		Region:            strings.TrimSpace(getenv(EnvRegion)),
		NotifyTopicARN:    strings.TrimSpace(getenv(EnvNotifyTopicARN)),
		Stage:             strings.TrimSpace(getenv(EnvStage)),
	}
	var errs []error
	if v := strings.TrimSpace(getenv(EnvMaxRetries)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s=%q: must be a positive integer", EnvMaxRetries, v))
		} else {
			c.MaxRetries = n
		}
	}
	if v := strings.TrimSpace(getenv(EnvRetryBackoff)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxRetryBackoff {
			errs = append(errs, fmt.Errorf("%s=%q: must be a whole number of seconds from 0 to %d", EnvRetryBackoff, v, MaxRetryBackoff))
		} else {
			c.RetryBackoff = n
		}
	}
	if v := strings.TrimSpace(getenv(EnvStopAfterFailures)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: must be a whole number, 0 or more (0: never)", EnvStopAfterFailures, v))
		} else {
			c.StopAfterFailures = n
		}
	}
	if v := strings.TrimSpace(getenv(EnvRunBudgetUSD)); v != "" {
		if b, err := money.Budget(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvRunBudgetUSD, err))
		} else {
			c.RunBudgetUSD = b
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

func orDefault(v, def string) string {
	if v = strings.TrimSpace(v); v != "" {
		return v
	}
	return def
}
