package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"arcbench/shared/clients"
	"arcbench/shared/config"
)

// The deploy check (`arcbench deploy-check`, run by `make deploy` before
// `cdk deploy`) refuses a deploy that CloudFormation would fail for reasons
// known beforehand:
//
//   - a stack that does not exist yet, whose retained resources with fixed
//     names (tables, log groups) are still there from a destroyed copy of
//     the stage: CloudFormation fails creating them ("already exists");
//   - a job definition that names the API-keys secret without its complete
//     ARN, which Batch does not accept (infra/batch.go, apiKeysSecret).

// Tables is the part of the DynamoDB API the deploy check uses.
type Tables interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// LogGroups tells whether a CloudWatch Logs log group exists.
type LogGroups interface {
	LogGroupExists(ctx context.Context, name string) (bool, error)
}

// DeployCheck checks a synthesized stage against the account it is about to
// be deployed to.
type DeployCheck struct {
	CFN    CloudFormation
	Tables Tables
	Logs   LogGroups
}

// ConnectDeployCheck builds the check's clients from the SDK's configuration.
func ConnectDeployCheck(ctx context.Context) (*DeployCheck, error) {
	cfg, err := clients.Config(ctx)
	if err != nil {
		return nil, &Error{Msg: err.Error() + " (e.g. export AWS_REGION=us-east-1)"}
	}
	return &DeployCheck{
		CFN:    cloudformation.NewFromConfig(cfg),
		Tables: clients.FromConfig(cfg).DynamoDB,
		Logs:   NewLogsAPI(cfg),
	}, nil
}

// Retained is a resource the template keeps when its stack is deleted
// (DeletionPolicy Retain) under a fixed physical name: one that is still
// there blocks creating the stack again.
type Retained struct {
	LogicalID string
	Type      string
	Name      string
	// Protected is a table's deletion protection (the leftover's, as found).
	Protected bool
}

// retainedNames are the resource types whose fixed name a new stack cannot
// take while a retained copy holds it, with the property that names them.
// (The bucket's name is generated, so a new stack never collides with a
// retained bucket.)
var retainedNames = map[string]string{
	"AWS::DynamoDB::Table": "TableName",
	"AWS::Logs::LogGroup":  "LogGroupName",
}

// StackTemplate is what the deploy check reads of a stack template.
type StackTemplate struct {
	Resources map[string]struct {
		Type           string         `json:"Type"`
		DeletionPolicy string         `json:"DeletionPolicy"`
		Properties     map[string]any `json:"Properties"`
	} `json:"Resources"`
}

// ReadStackTemplate reads the stage's stack template from a cloud assembly
// (the folder `cdk synth -o DIR` writes).
func ReadStackTemplate(assembly, stage string) (*StackTemplate, error) {
	stack := config.StackName(stage)
	synth := fmt.Sprintf("synthesize it first: npx cdk synth -c stage=%s -o %s", stage, assembly)
	raw, err := os.ReadFile(filepath.Join(assembly, "manifest.json"))
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("%s is not a cloud assembly (%v): %s", assembly, err, synth)}
	}
	var manifest struct {
		Artifacts map[string]struct {
			Type       string `json:"type"`
			Properties struct {
				TemplateFile string `json:"templateFile"`
			} `json:"properties"`
		} `json:"artifacts"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(assembly, "manifest.json"), err)
	}
	a, ok := manifest.Artifacts[stack]
	if !ok || a.Type != "aws:cloudformation:stack" {
		return nil, &Error{Msg: fmt.Sprintf("the cloud assembly %s has no stack %s: %s", assembly, stack, synth)}
	}
	raw, err = os.ReadFile(filepath.Join(assembly, a.Properties.TemplateFile))
	if err != nil {
		return nil, err
	}
	var t StackTemplate
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("read %s: %w", a.Properties.TemplateFile, err)
	}
	return &t, nil
}

// RetainedNamed lists the template's retained resources with fixed names,
// by type and name.
func (t *StackTemplate) RetainedNamed() []Retained {
	var out []Retained
	for id, r := range t.Resources {
		prop, ok := retainedNames[r.Type]
		if !ok || r.DeletionPolicy != "Retain" {
			continue
		}
		// A name given by a reference or a function is not fixed.
		if name, ok := r.Properties[prop].(string); ok && name != "" {
			out = append(out, Retained{LogicalID: id, Type: r.Type, Name: name})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// completeSecretValueFrom is a job secret's ValueFrom in the form Batch
// documents: the secret's complete ARN (random suffix included), then
// :<json-key>:<version-stage>:<version-id> or nothing.
var completeSecretValueFrom = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}(:|$)`)

// partialSecrets names the secrets the template's job definitions read by
// anything but a literal complete ARN.
func (t *StackTemplate) partialSecrets() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range t.Resources {
		if r.Type != "AWS::Batch::JobDefinition" {
			continue
		}
		cp, _ := r.Properties["ContainerProperties"].(map[string]any)
		secrets, _ := cp["Secrets"].([]any)
		for _, s := range secrets {
			s, _ := s.(map[string]any)
			if v, ok := s["ValueFrom"].(string); ok && completeSecretValueFrom.MatchString(v) {
				continue
			}
			name := secretName(joinedText(s["ValueFrom"]))
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// joinedText is a template value as text: Fn::Join's literal parts
// concatenated (references dropped).
func joinedText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		if join, ok := v["Fn::Join"].([]any); ok && len(join) == 2 {
			parts, _ := join[1].([]any)
			var b strings.Builder
			for _, p := range parts {
				if s, ok := p.(string); ok {
					b.WriteString(s)
				}
			}
			return b.String()
		}
	}
	return ""
}

// secretName is the secret's name in a (partial) ARN with a json-key:
// what follows ":secret:" up to the next colon.
func secretName(arn string) string {
	_, rest, ok := strings.Cut(arn, ":secret:")
	if !ok {
		return arn
	}
	name, _, _ := strings.Cut(rest, ":")
	return name
}

// Run checks the stage's synthesized template in assembly: it answers one
// line when the deploy can go ahead, else an *Error that says what is in
// the way and how to clear it.
func (d *DeployCheck) Run(ctx context.Context, stage, assembly string) (string, error) {
	if stage == "" {
		return "", &Error{Msg: "no stage: give --stage NAME or set " + config.EnvStage}
	}
	t, err := ReadStackTemplate(assembly, stage)
	if err != nil {
		return "", err
	}
	var problems []string
	for _, name := range t.partialSecrets() {
		problems = append(problems, fmt.Sprintf("the job definition reads the secret %q by a partial ARN (without its random suffix), which Batch does not accept: "+
			"its jobs would fail to start. Synthesize with the complete ARN: make deploy STAGE=%s API_KEYS_SECRET_ARN=$(aws secretsmanager describe-secret --secret-id %s --query ARN --output text)",
			name, stage, name))
	}

	// A problem found in the template alone is reported even when the
	// account cannot be asked.
	fail := func(err error) (string, error) {
		if len(problems) == 0 {
			return "", err
		}
		return "", &Error{Msg: strings.Join(append(problems, err.Error()), "\n")}
	}
	stack := config.StackName(stage)
	status, err := d.stackStatus(ctx, stack)
	if err != nil {
		return fail(err)
	}
	var verdict string
	// A stack whose creation rolled back is deleted and created anew by cdk
	// deploy, so its retained names matter as much as a missing stack's.
	if status != "" && status != "ROLLBACK_COMPLETE" {
		verdict = fmt.Sprintf("stack %s exists (%s): the deploy updates it", stack, status)
	} else {
		retained := t.RetainedNamed()
		left, err := d.leftovers(ctx, retained)
		if err != nil {
			return fail(err)
		}
		if len(left) > 0 {
			problems = append(problems, leftoversProblem(stack, stage, assembly, status, left))
		}
		state := "does not exist"
		if status != "" {
			state = "is " + status + " (cdk deploy deletes it and creates it again)"
		}
		verdict = fmt.Sprintf("stack %s %s and none of its %d retained resources with fixed names is left over: the deploy creates it", stack, state, len(retained))
	}
	if len(problems) > 0 {
		return "", &Error{Msg: strings.Join(problems, "\n")}
	}
	return verdict, nil
}

// stackStatus is the stack's status, "" when it does not exist.
func (d *DeployCheck) stackStatus(ctx context.Context, stack string) (string, error) {
	out, err := d.CFN.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	var api smithy.APIError
	switch {
	case errors.As(err, &api) && api.ErrorCode() == "ValidationError" && strings.Contains(api.ErrorMessage(), "does not exist"):
		return "", nil
	case err != nil:
		return "", Explain(fmt.Errorf("describe stack %s: %w", stack, err))
	case len(out.Stacks) == 0:
		return "", nil
	}
	return string(out.Stacks[0].StackStatus), nil
}

// leftovers are the retained resources that exist.
func (d *DeployCheck) leftovers(ctx context.Context, retained []Retained) ([]Retained, error) {
	var left []Retained
	for _, r := range retained {
		switch r.Type {
		case "AWS::DynamoDB::Table":
			out, err := d.Tables.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(r.Name)})
			var nf *dbtypes.ResourceNotFoundException
			if errors.As(err, &nf) {
				continue
			}
			if err != nil {
				return nil, Explain(fmt.Errorf("describe table %s: %w", r.Name, err))
			}
			r.Protected = aws.ToBool(out.Table.DeletionProtectionEnabled)
		case "AWS::Logs::LogGroup":
			ok, err := d.Logs.LogGroupExists(ctx, r.Name)
			if err != nil {
				return nil, Explain(fmt.Errorf("describe log group %s: %w", r.Name, err))
			}
			if !ok {
				continue
			}
		}
		left = append(left, r)
	}
	return left, nil
}

// leftoversProblem says which retained resources are in the way of creating
// the stack, one line each, and the two ways out: delete them, or import
// them into the new stack.
func leftoversProblem(stack, stage, assembly, status string, left []Retained) string {
	var b strings.Builder
	state := "does not exist"
	if status != "" {
		state = "is " + status + " (cdk deploy deletes it and creates it again)"
	}
	fmt.Fprintf(&b, "stack %s %s, but %d of its retained resources are still there from an earlier deploy of stage %s, "+
		"and CloudFormation fails to create a resource whose name is taken (\"already exists\"):\n", stack, state, len(left), stage)
	for _, r := range left {
		fmt.Fprintf(&b, "  %-21s %s\n", r.Type, r.Name)
	}
	b.WriteString("Either delete them (their data is lost):\n")
	for _, r := range left {
		switch r.Type {
		case "AWS::DynamoDB::Table":
			if r.Protected {
				fmt.Fprintf(&b, "  aws dynamodb update-table --table-name %s --no-deletion-protection-enabled\n", r.Name)
			}
			fmt.Fprintf(&b, "  aws dynamodb delete-table --table-name %s\n", r.Name)
		case "AWS::Logs::LogGroup":
			fmt.Fprintf(&b, "  aws logs delete-log-group --log-group-name %s\n", r.Name)
		}
	}
	fmt.Fprintf(&b, "or import them into the new stack, keeping their data: npx cdk import --app %s "+
		"(it asks for each resource's identifier: give the table or log group name above, and skip the others), then make deploy STAGE=%s again", assembly, stage)
	return b.String()
}

// LogsAPI tells whether a log group exists, through CloudWatch Logs.
type LogsAPI struct {
	Client interface {
		DescribeLogGroups(ctx context.Context, in *cloudwatchlogs.DescribeLogGroupsInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeLogGroupsOutput, error)
	}
}

// NewLogsAPI builds the CloudWatch Logs client of a loaded configuration
// (AWS_ENDPOINT_URL_CLOUDWATCH_LOGS and AWS_ENDPOINT_URL apply, as for every client).
func NewLogsAPI(cfg aws.Config) *LogsAPI {
	return &LogsAPI{Client: cloudwatchlogs.NewFromConfig(cfg)}
}

// LogGroupExists lists the log groups whose names start with name, page by
// page, until it finds name itself.
func (l *LogsAPI) LogGroupExists(ctx context.Context, name string) (bool, error) {
	pages := cloudwatchlogs.NewDescribeLogGroupsPaginator(l.Client, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(name)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return false, err
		}
		for _, g := range page.LogGroups {
			if aws.ToString(g.LogGroupName) == name {
				return true, nil
			}
		}
	}
	return false, nil
}
