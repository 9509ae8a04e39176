// Package operator is what `arcbench start|watch|results|runs|retry` do on a
// deployed stage: it finds the stage's resources by its stack's outputs and
// reads and starts runs through the same store the handlers use.
package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/smithy-go"

	"arcbench/shared/clients"
	"arcbench/shared/config"
	"arcbench/shared/store"
)

// Stage is a deployed stage's resources, from its stack's outputs.
type Stage struct {
	Name            string
	StackName       string
	Region          string
	StateMachineArn string
	RunsTable       string
	TasksTable      string
	Bucket          string
}

// StepFunctions is the part of the Step Functions API the operator uses.
type StepFunctions interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, opts ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
	StopExecution(ctx context.Context, in *sfn.StopExecutionInput, opts ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error)
}

// Operator acts on one stage.
type Operator struct {
	Stage *Stage
	SFN   StepFunctions
	S3    *s3.Client
	Store *store.Store
	Now   func() time.Time
	// Local is true when the SDK talks to emulators (AWS_ENDPOINT_URL): there
	// is no console to link to.
	Local bool
}

// Connect loads the AWS configuration (profile, region, AWS_ENDPOINT_URL as
// the SDK reads them), finds the stage's stack and builds the clients.
func Connect(ctx context.Context, stageName string) (*Operator, error) {
	if stageName == "" {
		return nil, &Error{Msg: "no stage: give --stage NAME or set " + config.EnvStage}
	}
	cfg, err := clients.Config(ctx)
	if err != nil {
		return nil, &Error{Msg: err.Error() + " (e.g. export AWS_REGION=us-east-1)"}
	}
	st, err := FindStage(ctx, cloudformation.NewFromConfig(cfg), stageName, cfg.Region)
	if err != nil {
		return nil, err
	}
	c := clients.FromConfig(cfg)
	return &Operator{
		Stage: st,
		SFN:   sfn.NewFromConfig(cfg),
		S3:    c.S3,
		Store: store.New(c.DynamoDB, st.RunsTable, st.TasksTable),
		Now:   time.Now,
		Local: cfg.BaseEndpoint != nil,
	}, nil
}

// CloudFormation is the part of the CloudFormation API FindStage uses.
type CloudFormation interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, opts ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

// FindStage reads a stage's resources from its stack's outputs.
func FindStage(ctx context.Context, cfn CloudFormation, name, region string) (*Stage, error) {
	stack := config.StackName(name)
	out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) && api.ErrorCode() == "ValidationError" && strings.Contains(api.ErrorMessage(), "does not exist") {
			return nil, &Error{Msg: fmt.Sprintf("stage %q not found: no stack %s in %s; deploy it (make deploy STAGE=%s) or point AWS_REGION/AWS_PROFILE at its account", name, stack, region, name)}
		}
		return nil, Explain(fmt.Errorf("describe stack %s: %w", stack, err))
	}
	if len(out.Stacks) == 0 {
		return nil, &Error{Msg: fmt.Sprintf("stage %q not found: no stack %s in %s", name, stack, region)}
	}
	outputs := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	st := &Stage{Name: name, StackName: stack, Region: region,
		StateMachineArn: outputs[config.OutputStateMachineArn], RunsTable: outputs[config.OutputRunsTable],
		TasksTable: outputs[config.OutputTasksTable], Bucket: outputs[config.OutputBucket]}
	for k, v := range map[string]string{config.OutputStateMachineArn: st.StateMachineArn, config.OutputRunsTable: st.RunsTable,
		config.OutputTasksTable: st.TasksTable, config.OutputBucket: st.Bucket} {
		if v == "" {
			return nil, &Error{Msg: fmt.Sprintf("stack %s has no output %s: redeploy the stage with this version (make deploy STAGE=%s)", stack, k, name)}
		}
	}
	return st, nil
}

// Error is a mistake the user can fix: one line, naming the fix.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// Explain turns the SDK's errors an operator commonly meets into one line
// that names the fix; others pass through.
func Explain(err error) error {
	var ue *Error
	if err == nil || errors.As(err, &ue) {
		return err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "failed to retrieve credentials") || strings.Contains(msg, "get credentials") ||
		strings.Contains(msg, "no EC2 IMDS role found") || strings.Contains(msg, "AnonymousCredentials"):
		return &Error{Msg: "no AWS credentials: set AWS_PROFILE (and run `aws sso login`) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"}
	case strings.Contains(msg, "ExpiredToken") || strings.Contains(msg, "token has expired"):
		return &Error{Msg: "your AWS credentials have expired: refresh them (e.g. `aws sso login`)"}
	case strings.Contains(msg, "UnrecognizedClientException") || strings.Contains(msg, "InvalidClientTokenId"):
		return &Error{Msg: "AWS does not recognize your credentials: check AWS_PROFILE or your access keys"}
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host"):
		return &Error{Msg: "cannot reach AWS (" + firstLine(msg) + "): check your network, AWS_REGION or AWS_ENDPOINT_URL"}
	}
	return err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
