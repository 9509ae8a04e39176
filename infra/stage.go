package main

import (
	"arcbench/shared/config"
	"arcbench/shared/fargate"
	"arcbench/shared/money"

	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Context keys the app reads. cdk.json holds their defaults; `-c key=value`
// overrides them.
const (
	ctxStage            = "stage"
	ctxVpcID            = "vpcId"
	ctxWorkerRepository = "workerRepository"
	ctxWorkerTag        = "workerTag"
	ctxAPIKeysSecret    = "apiKeysSecret"
	// ctxAPIKeysSecretArn is the API-keys secret's complete ARN (with the
	// random suffix Secrets Manager appends): the form Batch documents for a
	// job's secrets (see apiKeysSecret in batch.go).
	ctxAPIKeysSecretArn = "apiKeysSecretArn"
	// ctxWorkerArchitecture is the CPU architecture of the worker image.
	ctxWorkerArchitecture = "workerArchitecture"
	// ctxProviderKeys lists the API keys (environment variable names) the
	// job reads from the API-keys secret, comma-separated; unset: the seven
	// of config.ProviderKeys.
	ctxProviderKeys = "providerKeys"
	// ctxNotifyEmails lists the addresses (comma-separated) subscribed by
	// email to the stage's notifications topic; empty: none.
	ctxNotifyEmails = "notifyEmails"
	// ctxDailySpendAlarmUSD is the model spend in USD per day above which an
	// alarm notifies; empty: no spend alarm.
	ctxDailySpendAlarmUSD = "dailySpendAlarmUsd"
	// ctxRunBudgetUSD is the stage's default run budget (USD of model cost)
	// for runs started without --budget-usd; empty: none.
	ctxRunBudgetUSD = "runBudgetUsd"
	// ctxStopAfterFailures is the stage's default early stop: a run stops
	// after this many attempts in a row failed (0: never).
	ctxStopAfterFailures = "stopAfterFailures"
	// ctxWorkerVCPU and ctxWorkerMemoryMiB size every job: vCPU as Batch
	// writes it ("0.25") and memory in MiB, one of Fargate's pairs.
	ctxWorkerVCPU      = "workerVcpu"
	ctxWorkerMemoryMiB = "workerMemoryMib"
)

// providerKey is what an environment variable the job reads may be named,
// leaving out the names Batch reserves (AWS_BATCH*).
var providerKey = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,127}$`)

// Worker architectures: the CPU architectures of a Fargate Linux job, as
// the job definition's RuntimePlatform names them.
const (
	ArchX86_64 = fargate.ArchX86_64
	ArchARM64  = fargate.ArchARM64
)

var workerArchitectures = []string{ArchX86_64, ArchARM64}

// completeSecretArn is a Secrets Manager secret's complete ARN: the secret's
// name and the hyphen and six random characters Secrets Manager appends.
var completeSecretArn = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:([A-Za-z0-9/_+=.@-]+)-[A-Za-z0-9]{6}$`)

// namePrefix starts every physical name, so that all of one project's
// resources sort together in the console.
const namePrefix = config.NamePrefix

// Stage is what differs between deployed copies of the app.
type Stage struct {
	Name string
	// Disposable stages (sandbox-*) are deleted whole by `cdk destroy`;
	// others retain their data.
	Disposable bool
	// MapConcurrency is how many tasks of one run are in flight at once.
	MapConcurrency int
	// ExecutionTimeout ends a run that has not finished by then.
	ExecutionTimeout time.Duration
	// RetryBackoff is the wait before a failed task's first retry; it
	// doubles for each retry after that.
	RetryBackoff time.Duration
	// LogRetention is how long every log group of the stage keeps events.
	LogRetention awslogs.RetentionDays
}

// NewStage validates a stage name and returns its configuration.
func NewStage(name string) (Stage, error) {
	if err := config.ValidateStageName(name); err != nil {
		return Stage{}, err
	}
	if config.IsSandbox(name) {
		return Stage{
			Name:             name,
			Disposable:       true,
			MapConcurrency:   16,
			ExecutionTimeout: 12 * time.Hour,
			RetryBackoff:     15 * time.Second,
			LogRetention:     awslogs.RetentionDays_TWO_WEEKS,
		}, nil
	}
	// Sized for a 10,000-task run within a day: Fargate starts about 20 tasks
	// a second and Batch takes 50 submissions a second, so 256 at once keeps
	// both well within their quotas.
	return Stage{
		Name:             name,
		MapConcurrency:   256,
		ExecutionTimeout: 72 * time.Hour,
		RetryBackoff:     time.Minute,
		LogRetention:     awslogs.RetentionDays_SIX_MONTHS,
	}, nil
}

// Prefix is arc-benchmark-<stage>: the stack's and the state machine's name.
func (s Stage) Prefix() string { return namePrefix + "-" + s.Name }

// PhysicalName is arc-benchmark-<stage>-<part>.
func (s Stage) PhysicalName(part string) string { return s.Prefix() + "-" + part }

// RemovalPolicy is what `cdk destroy` does to the stage's stateful resources.
func (s Stage) RemovalPolicy() awscdk.RemovalPolicy {
	if s.Disposable {
		return awscdk.RemovalPolicy_DESTROY
	}
	return awscdk.RemovalPolicy_RETAIN
}

// Settings are the app's inputs, read from the CDK context.
type Settings struct {
	Stage Stage
	// VpcID names an existing VPC to run the jobs in; empty creates one.
	VpcID            string
	WorkerRepository string
	WorkerTag        string
	// APIKeysSecret names the Secrets Manager secret with the providers' API keys.
	APIKeysSecret string
	// APIKeysSecretArn is that secret's complete ARN; empty when not given,
	// and then the stage's jobs cannot read the keys (see apiKeysSecret).
	APIKeysSecretArn string
	// WorkerArchitecture is the worker image's CPU architecture, ArchX86_64
	// or ArchARM64.
	WorkerArchitecture string
	// ProviderKeys are the keys of the API-keys secret the job reads, each
	// into the environment variable of its name.
	ProviderKeys []string
	// NotifyEmails are subscribed by email to the stage's notifications
	// (alarms, runs ended); none by default.
	NotifyEmails []string
	// DailySpendAlarmUSD is the model spend per day (USD) above which an
	// alarm notifies; nil: no spend alarm.
	DailySpendAlarmUSD *float64
	// Guards are the stage's defaults for a run's budget and early stop.
	Guards RunGuards
	// WorkerSize is every job's vCPU and memory.
	WorkerSize fargate.Size
}

// RunGuards are a stage's defaults for the runs started without their own:
// a budget (exact decimal text, "" for none) and how many attempts in a row
// may fail before a run stops itself (0: never).
type RunGuards struct {
	BudgetUSD         string
	StopAfterFailures int
}

// contextText reads a context value given as text (`-c key=value`) or as a
// JSON number or string (cdk.json); nil is "".
func contextText(v interface{}) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return strings.TrimSpace(v), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("a %T: want a number or text", v)
}

// runGuards reads the runBudgetUsd and stopAfterFailures settings, checked
// as initialize checks a run's own.
func runGuards(budget, stopAfter interface{}) (RunGuards, []string) {
	g := RunGuards{StopAfterFailures: config.DefaultStopAfterFailures}
	var errs []string
	if text, err := contextText(budget); err != nil {
		errs = append(errs, fmt.Sprintf("context %q: %v", ctxRunBudgetUSD, err))
	} else if text != "" {
		if g.BudgetUSD, err = money.Budget(text); err != nil {
			errs = append(errs, fmt.Sprintf("context %q: %v, or \"\" for none", ctxRunBudgetUSD, err))
		}
	}
	if text, err := contextText(stopAfter); err != nil {
		errs = append(errs, fmt.Sprintf("context %q: %v", ctxStopAfterFailures, err))
	} else if text != "" {
		n, err := strconv.Atoi(text)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Sprintf("context %q is %q: want a whole number of attempts, 0 (never stop early) or more", ctxStopAfterFailures, text))
		}
		g.StopAfterFailures = n
	}
	return g, errs
}

// DefaultWorkerSize is the smallest Fargate size, which holds the
// benchmark's worker with room to spare: it waits on its model, and its
// process peaks near 80 MB (docs/operating.md, "Compute cost").
var DefaultWorkerSize = fargate.Size{VCPU: "0.25", MemoryMiB: 512}

// workerSize reads the workerVcpu and workerMemoryMib settings (absent: the
// default), checked against the sizes Fargate runs.
func workerSize(vcpu, memory interface{}) (fargate.Size, error) {
	size := DefaultWorkerSize
	if text, err := contextText(vcpu); err != nil {
		return size, fmt.Errorf("context %q: %v", ctxWorkerVCPU, err)
	} else if text != "" {
		size.VCPU = text
	}
	if text, err := contextText(memory); err != nil {
		return size, fmt.Errorf("context %q: %v", ctxWorkerMemoryMiB, err)
	} else if text != "" {
		n, err := strconv.Atoi(text)
		if err != nil {
			return size, fmt.Errorf("context %q is %q: want a whole number of MiB", ctxWorkerMemoryMiB, text)
		}
		size.MemoryMiB = n
	}
	if err := size.Check(); err != nil {
		return size, fmt.Errorf("context %q and %q: %v", ctxWorkerVCPU, ctxWorkerMemoryMiB, err)
	}
	return size, nil
}

// providerKeys reads the providerKeys setting: environment variable names,
// comma-separated, each once, none that the job sets itself or Batch reserves.
func providerKeys(list string) ([]string, error) {
	var keys []string
	for _, k := range strings.Split(list, ",") {
		k = strings.TrimSpace(k)
		switch {
		case !providerKey.MatchString(k):
			return nil, fmt.Errorf("%q is not an environment variable name (A-Z, 0-9 and _, starting with a letter)", k)
		case strings.HasPrefix(k, "AWS_"):
			return nil, fmt.Errorf("%q: AWS_ names are the SDK's and Batch's, not a provider's", k)
		case slices.Contains(keys, k):
			return nil, fmt.Errorf("%q is listed twice", k)
		case slices.Contains(config.WorkerEnv, k):
			return nil, fmt.Errorf("%q is a variable the job sets itself", k)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// emailAddress is an email address, checked loosely: one @, no spaces or
// list separators, a dot in the domain. SNS sends a confirmation request to
// each; an address that cannot receive it is never subscribed.
var emailAddress = regexp.MustCompile(`^[^\s@,;<>"]+@[^\s@,;<>"]+\.[^\s@,;<>".]+$`)

// maxEmailLength is an address's longest (RFC 5321: 254 characters).
const maxEmailLength = 254

// notifyEmails reads the notifyEmails setting: addresses, comma-separated,
// each once; blank means none.
func notifyEmails(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var emails []string
	seen := map[string]bool{}
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
			return nil, fmt.Errorf("an empty address in %q", list)
		case len(e) > maxEmailLength || !emailAddress.MatchString(e):
			return nil, fmt.Errorf("%q is not an email address (want name@example.com)", e)
		case seen[strings.ToLower(e)]:
			return nil, fmt.Errorf("%q is listed twice", e)
		}
		seen[strings.ToLower(e)] = true
		emails = append(emails, e)
	}
	return emails, nil
}

// dailySpendAlarm reads the dailySpendAlarmUsd setting: an amount of USD
// above 0, as text (`-c dailySpendAlarmUsd=50`) or a JSON number (cdk.json);
// nil and "" mean no spend alarm.
func dailySpendAlarm(v interface{}) (*float64, error) {
	const want = `want an amount of USD above 0 (e.g. 50), or "" for no spend alarm`
	var amount float64
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		if strings.TrimSpace(v) == "" {
			return nil, nil
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
			return nil, fmt.Errorf("%q: %s", v, want)
		}
		amount = f
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			return nil, fmt.Errorf("%v: %s", v, want)
		}
		amount = v
	default:
		return nil, fmt.Errorf("a %T: %s", v, want)
	}
	return &amount, nil
}

// SettingsFromContext reads and checks every context key; the error names
// each one that is missing or malformed.
func SettingsFromContext(node constructs.Node) (Settings, error) {
	var errs []string
	get := func(key string, required bool) string {
		switch v := node.TryGetContext(jsii.String(key)).(type) {
		case nil:
			if required {
				errs = append(errs, fmt.Sprintf("context %q is missing (cdk.json sets its default)", key))
			}
		case string:
			if v != "" || !required {
				return v
			}
			errs = append(errs, fmt.Sprintf("context %q is empty", key))
		default:
			errs = append(errs, fmt.Sprintf("context %q must be a string, not %T", key, v))
		}
		return ""
	}
	s := Settings{
		VpcID:              get(ctxVpcID, false),
		WorkerRepository:   get(ctxWorkerRepository, true),
		WorkerTag:          get(ctxWorkerTag, true),
		APIKeysSecret:      get(ctxAPIKeysSecret, true),
		APIKeysSecretArn:   get(ctxAPIKeysSecretArn, false),
		WorkerArchitecture: get(ctxWorkerArchitecture, true),
	}
	s.ProviderKeys = config.ProviderKeys
	if keys := get(ctxProviderKeys, false); keys != "" {
		var err error
		if s.ProviderKeys, err = providerKeys(keys); err != nil {
			errs = append(errs, fmt.Sprintf("context %q: %v", ctxProviderKeys, err))
		}
	}
	if emails, err := notifyEmails(get(ctxNotifyEmails, false)); err != nil {
		errs = append(errs, fmt.Sprintf("context %q: %v", ctxNotifyEmails, err))
	} else {
		s.NotifyEmails = emails
	}
	if amount, err := dailySpendAlarm(node.TryGetContext(jsii.String(ctxDailySpendAlarmUSD))); err != nil {
		errs = append(errs, fmt.Sprintf("context %q: %v", ctxDailySpendAlarmUSD, err))
	} else {
		s.DailySpendAlarmUSD = amount
	}
	if size, err := workerSize(node.TryGetContext(jsii.String(ctxWorkerVCPU)), node.TryGetContext(jsii.String(ctxWorkerMemoryMiB))); err != nil {
		errs = append(errs, err.Error())
	} else {
		s.WorkerSize = size
	}
	guards, guardErrs := runGuards(node.TryGetContext(jsii.String(ctxRunBudgetUSD)), node.TryGetContext(jsii.String(ctxStopAfterFailures)))
	s.Guards, errs = guards, append(errs, guardErrs...)
	if a := s.WorkerArchitecture; a != "" && !slices.Contains(workerArchitectures, a) {
		errs = append(errs, fmt.Sprintf("context %q is %q: want one of %s (the worker image's CPU architecture)",
			ctxWorkerArchitecture, a, strings.Join(workerArchitectures, ", ")))
	}
	if arn := s.APIKeysSecretArn; arn != "" {
		switch m := completeSecretArn.FindStringSubmatch(arn); {
		case m == nil:
			errs = append(errs, fmt.Sprintf("context %q is %q, not a complete secret ARN: want arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>, "+
				"as `aws secretsmanager describe-secret --secret-id <name> --query ARN --output text` prints it", ctxAPIKeysSecretArn, arn))
		case s.APIKeysSecret != "" && m[1] != s.APIKeysSecret:
			errs = append(errs, fmt.Sprintf("context %q names the secret %q but %q is %q: give both the same secret",
				ctxAPIKeysSecretArn, m[1], ctxAPIKeysSecret, s.APIKeysSecret))
		}
	}
	if name := get(ctxStage, true); name != "" {
		stage, err := NewStage(name)
		if err != nil {
			errs = append(errs, err.Error())
		}
		s.Stage = stage
	}
	if len(errs) > 0 {
		return Settings{}, errors.New(strings.Join(errs, "; "))
	}
	return s, nil
}
