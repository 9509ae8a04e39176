package operator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"os/user"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"arcbench/shared/model"
	"arcbench/shared/money"
)

// StartInput is what a new run is made of.
type StartInput struct {
	ConfigName  string
	DataSource  string
	TaskIDs     []string
	TriggeredBy string // default: the user
	CommitSHA   string // default: the git commit of the working directory, if any
	// Guards are the run's budget and early stop; unset, the stage's.
	Guards Guards
	// ReuseRunID takes that run's results for the tasks it COMPLETED with
	// the same config and task data, instead of running them again.
	ReuseRunID string
}

// Guards are what a run may spend and fail before it stops itself; each
// unset one is the stage's default.
type Guards struct {
	// BudgetUSD is the most model cost the run may reach ("": the stage's).
	BudgetUSD string
	// StopAfterFailures is how many attempts in a row may fail (0: never
	// stop early; nil: the stage's).
	StopAfterFailures *int
}

// input adds the guards given to a run's execution input, checked as
// initialize checks them.
func (g Guards) input(input map[string]any) error {
	if g.BudgetUSD != "" {
		b, err := money.Budget(g.BudgetUSD)
		if err != nil {
			return &Error{Msg: "--budget-usd: " + err.Error()}
		}
		input[model.AttrBudgetUSD] = json.Number(b)
	}
	if n := g.StopAfterFailures; n != nil {
		if *n < 0 {
			return &Error{Msg: fmt.Sprintf("--stop-after-failures %d: want 0 (never stop early) or more", *n)}
		}
		input[model.AttrStopAfterFailures] = *n
	}
	return nil
}

// Started is a run that was started.
type Started struct {
	RunID        string `json:"run_id"`
	ExecutionArn string `json:"execution_arn"`
	ConsoleURL   string `json:"console_url,omitempty"`
	TotalTasks   int    `json:"total_tasks"`
}

// Uploader is the part of the S3 API RunInput uses.
type Uploader interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// RunInput is the state machine's input for a run: the task list inline when
// small, else uploaded to the bucket under inputs/ and named by task_list_key.
func RunInput(ctx context.Context, up Uploader, bucket string, in StartInput, now time.Time) (map[string]any, error) {
	if err := model.ValidateName("config_name", in.ConfigName); err != nil {
		return nil, &Error{Msg: "--config: " + err.Error()}
	}
	if in.DataSource == "" {
		in.DataSource = model.DefaultDataSource
	}
	if err := model.ValidateName("data_source", in.DataSource); err != nil {
		return nil, &Error{Msg: "--data-source: " + err.Error()}
	}
	if err := model.ValidateTaskIDs("tasks", in.TaskIDs); err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	input := map[string]any{
		"config_name": in.ConfigName, "data_source": in.DataSource,
		"triggered_by": orDefault(in.TriggeredBy, currentUser()), "commit_sha": orDefault(in.CommitSHA, gitCommit()),
	}
	if err := in.Guards.input(input); err != nil {
		return nil, err
	}
	if in.ReuseRunID != "" {
		input["reuse_run_id"] = in.ReuseRunID
	}
	list, err := json.Marshal(in.TaskIDs)
	if err != nil {
		return nil, err
	}
	if len(list) <= model.InlineTaskListLimit {
		input["task_ids"] = in.TaskIDs
		return input, nil
	}
	key := model.TaskListPrefix + in.ConfigName + "-" + now.UTC().Format("20060102T150405") + "-" + randomHex(4) + ".json"
	if _, err := up.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(list), ContentType: aws.String("application/json"),
	}); err != nil {
		return nil, Explain(fmt.Errorf("upload the task list to s3://%s/%s: %w", bucket, key, err))
	}
	input["task_list_key"] = key
	return input, nil
}

// Start starts a run and waits until initialize has made it (a second or two),
// so that the run id it answers is the real one. Tasks without data in the
// bucket are refused before anything starts.
func (o *Operator) Start(ctx context.Context, in StartInput) (*Started, error) {
	if err := o.requireTaskData(ctx, in); err != nil {
		return nil, err
	}
	if in.ReuseRunID != "" {
		source, err := o.run(ctx, in.ReuseRunID)
		if err != nil {
			return nil, err
		}
		if source.ConfigName != in.ConfigName || source.DataSource != orDefault(in.DataSource, model.DefaultDataSource) {
			return nil, &Error{Msg: fmt.Sprintf("--reuse %s: that run evaluated %s on %s; only a run of the same --config and --data-source is reused",
				source.RunID, source.ConfigName, source.DataSource)}
		}
	}
	input, err := RunInput(ctx, o.S3, o.Stage.Bucket, in, o.Now())
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(input)
	out, err := o.SFN.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(o.Stage.StateMachineArn),
		Name:            aws.String(executionName(in.ConfigName, o.Now())),
		Input:           aws.String(string(body)),
	})
	if err != nil {
		return nil, Explain(fmt.Errorf("start an execution of %s: %w", o.Stage.StateMachineArn, err))
	}
	started := &Started{ExecutionArn: aws.ToString(out.ExecutionArn), TotalTasks: len(in.TaskIDs)}
	if !o.Local {
		started.ConsoleURL = o.consoleURL(started.ExecutionArn)
	}
	started.RunID, err = o.waitForRun(ctx, started.ExecutionArn)
	return started, err
}

// consoleURL is an execution's page in the Step Functions console.
func (o *Operator) consoleURL(arn string) string {
	return fmt.Sprintf("https://%s.console.aws.amazon.com/states/home?region=%s#/v2/executions/details/%s", o.Stage.Region, o.Stage.Region, arn)
}

// waitForRun finds the run an execution made, or says why there is none.
func (o *Operator) waitForRun(ctx context.Context, executionArn string) (string, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		runID, found, err := o.Store.RunOfExecution(ctx, executionArn)
		if err != nil {
			return "", Explain(err)
		}
		if found {
			return runID, nil
		}
		desc, err := o.SFN.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(executionArn)})
		if err != nil {
			return "", Explain(fmt.Errorf("describe execution %s: %w", executionArn, err))
		}
		if desc.Status != sfntypes.ExecutionStatusRunning {
			// It may have made its run and ended in the meantime.
			if runID, found, err := o.Store.RunOfExecution(ctx, executionArn); err == nil && found {
				return runID, nil
			}
			return "", &Error{Msg: fmt.Sprintf("execution %s ended %s before making a run: %s: %s",
				executionArn, desc.Status, aws.ToString(desc.Error), aws.ToString(desc.Cause))}
		}
		if time.Now().After(deadline) {
			return "", &Error{Msg: "execution " + executionArn + " has made no run after 2 minutes; look at it in the console"}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// executionName is <config>-<time>-<4 hex>: readable in the console, unique,
// within the 80 characters Step Functions allows.
func executionName(config string, now time.Time) string {
	name := unsafeName.ReplaceAllString(config, "-")
	if len(name) > 50 {
		name = name[:50]
	}
	return name + "-" + now.UTC().Format("20060102T150405") + "-" + randomHex(2)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// gitCommit is the commit of the working directory's repository, or "".
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
