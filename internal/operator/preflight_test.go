package operator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/internal/operator"
	"arcbench/shared/clients"
)

// The deploy check runs against the local stage's own CloudFormation API
// (DescribeStacks knows arc-benchmark-local only: any other stage's stack
// does not exist) and its dynalite, and a CloudWatch Logs stand-in that
// decodes DescribeLogGroups as CloudWatch Logs takes it (JSON 1.1).

// logsStandIn serves DescribeLogGroups over a fixed set of log groups, by
// name, one group per page.
type logsStandIn struct {
	URL    string
	groups []string

	mu       sync.Mutex
	requests int
	bad      []string
}

var signedForLogs = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/us-east-1/logs/aws4_request, SignedHeaders=[^,]*x-amz-target[^,]*, Signature=[0-9a-f]{64}$`)

func newLogsStandIn(t *testing.T, groups ...string) *logsStandIn {
	l := &logsStandIn{groups: slices.Sorted(slices.Values(groups))}
	srv := httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if len(l.bad) > 0 {
			t.Errorf("the CloudWatch Logs stand-in refused requests: %v", l.bad)
		}
	})
	l.URL = srv.URL
	return l
}

func (l *logsStandIn) serve(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		l.bad = append(l.bad, msg)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "InvalidParameterException", "message": msg})
	}
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		fail("%s %s", r.Method, r.URL.Path)
		return
	case r.Header.Get("X-Amz-Target") != "Logs_20140328.DescribeLogGroups":
		fail("X-Amz-Target %q", r.Header.Get("X-Amz-Target"))
		return
	case r.Header.Get("Content-Type") != "application/x-amz-json-1.1":
		fail("Content-Type %q", r.Header.Get("Content-Type"))
		return
	case !signedForLogs.MatchString(r.Header.Get("Authorization")):
		fail("not signed for logs in us-east-1: %q", r.Header.Get("Authorization"))
		return
	}
	body, _ := io.ReadAll(r.Body)
	var in struct {
		LogGroupNamePrefix string `json:"logGroupNamePrefix"`
		NextToken          string `json:"nextToken"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		fail("body %s: %v", body, err)
		return
	}
	var match []string
	for _, g := range l.groups {
		if strings.HasPrefix(g, in.LogGroupNamePrefix) {
			match = append(match, g)
		}
	}
	from := 0
	if in.NextToken != "" {
		from, _ = strconv.Atoi(in.NextToken)
	}
	out := map[string]any{"logGroups": []map[string]any{}}
	if from < len(match) {
		out["logGroups"] = []map[string]any{{"logGroupName": match[from], "arn": "arn:aws:logs:us-east-1:000000000000:log-group:" + match[from] + ":*"}}
		if from+1 < len(match) {
			out["nextToken"] = strconv.Itoa(from + 1)
		}
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// writeAssembly writes a cloud assembly of one stage's stack with the given
// resources, as `cdk synth -o` lays it out.
func writeAssembly(t *testing.T, stage string, resources map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	stack := "arc-benchmark-" + stage
	write := func(name string, v any) {
		raw, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(stack+".template.json", map[string]any{"Resources": resources})
	write("manifest.json", map[string]any{"version": "48.0.0", "artifacts": map[string]any{
		stack: map[string]any{"type": "aws:cloudformation:stack", "environment": "aws://unknown-account/unknown-region",
			"properties": map[string]any{"templateFile": stack + ".template.json"}},
	}})
	return dir
}

func cfnTable(policy string, name any) map[string]any {
	return map[string]any{"Type": "AWS::DynamoDB::Table", "DeletionPolicy": policy, "UpdateReplacePolicy": policy,
		"Properties": map[string]any{"TableName": name, "BillingMode": "PAY_PER_REQUEST"}}
}

func cfnLogGroup(policy, name string) map[string]any {
	return map[string]any{"Type": "AWS::Logs::LogGroup", "DeletionPolicy": policy, "UpdateReplacePolicy": policy,
		"Properties": map[string]any{"LogGroupName": name, "RetentionInDays": 180}}
}

// jobDefinition reads one provider key from the secret at valueFrom.
func jobDefinition(valueFrom any) map[string]any {
	return map[string]any{"Type": "AWS::Batch::JobDefinition", "Properties": map[string]any{
		"Type": "container", "ContainerProperties": map[string]any{
			"Secrets": []any{map[string]any{"Name": "OPENAI_API_KEY", "ValueFrom": valueFrom}}}}}
}

const completeSecret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:arc-benchmark/api-keys-AbCdEf:OPENAI_API_KEY::"

// partialSecret is what a secret imported by name gives (infra without apiKeysSecretArn).
var partialSecret = map[string]any{"Fn::Join": []any{"", []any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":secretsmanager:",
	map[string]any{"Ref": "AWS::Region"}, ":", map[string]any{"Ref": "AWS::AccountId"}, ":secret:arc-benchmark/api-keys:OPENAI_API_KEY::"}}}

var preflightStages atomic.Int64

// freshStage is a stage with no stack and no tables yet.
func freshStage() string { return fmt.Sprintf("preflight-%d", preflightStages.Add(1)) }

func createTable(t *testing.T, name string) {
	t.Helper()
	_, err := clients.NewLocal(session.Stack.Endpoint).DynamoDB.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          dbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dbtypes.AttributeDefinition{{AttributeName: aws.String("run_id"), AttributeType: dbtypes.ScalarAttributeTypeS}},
		KeySchema:            []dbtypes.KeySchemaElement{{AttributeName: aws.String("run_id"), KeyType: dbtypes.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("create table %s: %v", name, err)
	}
}

// protected answers DescribeTable as DynamoDB does for tables created with
// deletion protection (dynalite predates the flag).
type protected struct {
	operator.Tables
	names []string
}

func (p protected) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	out, err := p.Tables.DescribeTable(ctx, in, opts...)
	if err == nil && slices.Contains(p.names, aws.ToString(in.TableName)) {
		out.Table.DeletionProtectionEnabled = aws.Bool(true)
	}
	return out, err
}

// deployCheck is the check against the local stage and the logs stand-in,
// built in-process.
func deployCheck(logs *logsStandIn, protectedTables ...string) *operator.DeployCheck {
	cfg := aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(session.Stack.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
	logsCfg := cfg.Copy()
	logsCfg.BaseEndpoint = aws.String(logs.URL) // no CloudWatch Logs server here: the stand-in
	l := operator.NewLogsAPI(logsCfg)
	return &operator.DeployCheck{
		CFN:    cloudformation.NewFromConfig(cfg),
		Tables: protected{Tables: clients.NewLocal(session.Stack.Endpoint).DynamoDB, names: protectedTables},
		Logs:   l,
	}
}

func TestDeployCheckNamesEveryLeftoverAndBothWaysOut(t *testing.T) {
	stage := freshStage()
	p := "arc-benchmark-" + stage
	createTable(t, p+"-runs")
	createTable(t, p+"-rate-limits")
	createTable(t, p+"-scratch") // retained by nobody: a disposable table
	logs := newLogsStandIn(t,
		"/aws/lambda/"+p+"-initialize",
		"/aws/lambda/"+p+"-initialize-old", // shares the prefix of one that is gone
		"/aws/lambda/"+p+"-check-task-old",
		"/aws/vendedlogs/states/"+p,
		"/aws/vendedlogs/states/"+p+"-run-reaper")
	dir := writeAssembly(t, stage, map[string]any{
		"Runs":          cfnTable("Retain", p+"-runs"),
		"Tasks":         cfnTable("Retain", p+"-tasks"), // not there
		"RateLimits":    cfnTable("Retain", p+"-rate-limits"),
		"Scratch":       cfnTable("Delete", p+"-scratch"),
		"Generated":     cfnTable("Retain", map[string]any{"Fn::Join": []any{"-", []any{p, "gen"}}}), // not a fixed name
		"InitLogs":      cfnLogGroup("Retain", "/aws/lambda/"+p+"-initialize"),
		"CheckLogs":     cfnLogGroup("Retain", "/aws/lambda/"+p+"-check-task"), // only a longer name is there
		"WorkflowLogs":  cfnLogGroup("Retain", "/aws/vendedlogs/states/"+p),
		"ReaperLogs":    cfnLogGroup("Delete", "/aws/vendedlogs/states/"+p+"-run-reaper"),
		"JobDefinition": jobDefinition(completeSecret),
	})
	_, err := deployCheck(logs, p+"-runs").Run(context.Background(), stage, dir)
	if err == nil {
		t.Fatal("leftovers of a retained stage were not reported")
	}
	want := fmt.Sprintf(`stack %[1]s does not exist, but 4 of its retained resources are still there from an earlier deploy of stage %[2]s, and CloudFormation fails to create a resource whose name is taken ("already exists"):
  AWS::DynamoDB::Table  %[1]s-rate-limits
  AWS::DynamoDB::Table  %[1]s-runs
  AWS::Logs::LogGroup   /aws/lambda/%[1]s-initialize
  AWS::Logs::LogGroup   /aws/vendedlogs/states/%[1]s
Either delete them (their data is lost):
  aws dynamodb delete-table --table-name %[1]s-rate-limits
  aws dynamodb update-table --table-name %[1]s-runs --no-deletion-protection-enabled
  aws dynamodb delete-table --table-name %[1]s-runs
  aws logs delete-log-group --log-group-name /aws/lambda/%[1]s-initialize
  aws logs delete-log-group --log-group-name /aws/vendedlogs/states/%[1]s
or import them into the new stack, keeping their data: npx cdk import --app %[3]s (it asks for each resource's identifier: give the table or log group name above, and skip the others), then make deploy STAGE=%[2]s again`, p, stage, dir)
	if err.Error() != want {
		t.Errorf("the check said:\n%s\nwant:\n%s", err, want)
	}
	// One lookup per retained log group with a fixed name.
	if logs.requests != 3 {
		t.Errorf("%d DescribeLogGroups requests for 3 retained log groups", logs.requests)
	}

	// Once they are gone, the deploy may go ahead.
	db := clients.NewLocal(session.Stack.Endpoint).DynamoDB
	for _, name := range []string{p + "-runs", p + "-rate-limits"} {
		if _, err := db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		// A deleted table is DELETING for a while (on AWS as in dynalite,
		// whose delay is a timer that a loaded machine runs late): gone is
		// when DescribeTable no longer finds it.
		if err := dynamodb.NewTableNotExistsWaiter(db, func(o *dynamodb.TableNotExistsWaiterOptions) { o.MinDelay = 50 * time.Millisecond }).
			Wait(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	line, err := deployCheck(newLogsStandIn(t)).Run(context.Background(), stage, dir)
	if err != nil {
		t.Fatalf("nothing is left, yet: %v", err)
	}
	if want := "stack " + p + " does not exist and none of its 6 retained resources with fixed names is left over: the deploy creates it"; line != want {
		t.Errorf("the check said %q, want %q", line, want)
	}
}

// TestDeployCheckCommand runs `arcbench deploy-check` as make deploy does:
// exit 0 and one line when the stack exists (its retained tables are its
// own), exit 1 naming the fix for a secret read by a partial ARN.
func TestDeployCheckCommand(t *testing.T) {
	logs := newLogsStandIn(t)
	t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", logs.URL)
	runs := table("-runs")
	if runs == "" {
		t.Fatal("the local stage has no runs table")
	}
	existing := writeAssembly(t, "local", map[string]any{
		"Runs": cfnTable("Retain", runs), "JobDefinition": jobDefinition(completeSecret),
	})
	out, stderr, code := arcbench(t, "deploy-check", "--stage", "local", "--assembly", existing)
	if code != 0 || out != "deploy-check: stack arc-benchmark-local exists (CREATE_COMPLETE): the deploy updates it\n" {
		t.Errorf("an existing stack: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if logs.requests != 0 {
		t.Errorf("%d log group lookups for a stack that exists", logs.requests)
	}

	stage := freshStage()
	partial := writeAssembly(t, stage, map[string]any{"JobDefinition": jobDefinition(partialSecret)})
	out, stderr, code = arcbench(t, "deploy-check", "--stage", stage, "--assembly", partial)
	want := fmt.Sprintf(`arcbench: the job definition reads the secret "arc-benchmark/api-keys" by a partial ARN (without its random suffix), which Batch does not accept: its jobs would fail to start. `+
		`Synthesize with the complete ARN: make deploy STAGE=%s API_KEYS_SECRET_ARN=$(aws secretsmanager describe-secret --secret-id arc-benchmark/api-keys --query ARN --output text)`+"\n", stage)
	if code != 1 || out != "" || stderr != want {
		t.Errorf("a partial secret ARN: exit %d, stdout %q, stderr:\n%s\nwant:\n%s", code, out, stderr, want)
	}

	out, stderr, code = arcbench(t, "deploy-check", "--stage", stage, "--assembly", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "is not a cloud assembly") || !strings.Contains(stderr, "npx cdk synth -c stage="+stage) {
		t.Errorf("no assembly: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

func TestRetainedNamedIsSortedAndSkipsGeneratedNames(t *testing.T) {
	dir := writeAssembly(t, "prod", map[string]any{
		"B": cfnTable("Retain", "arc-benchmark-prod-tasks"), "A": cfnTable("Retain", "arc-benchmark-prod-runs"),
		"L": cfnLogGroup("Retain", "/aws/batch/arc-benchmark-prod-worker"), "D": cfnTable("Delete", "x"),
		"G": cfnTable("Retain", map[string]any{"Ref": "Name"}),
		"S": map[string]any{"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "Properties": map[string]any{}},
	})
	tmpl, err := operator.ReadStackTemplate(dir, "prod")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range tmpl.RetainedNamed() {
		got = append(got, r.LogicalID+" "+r.Name)
	}
	want := []string{"A arc-benchmark-prod-runs", "B arc-benchmark-prod-tasks", "L /aws/batch/arc-benchmark-prod-worker"}
	if !slices.Equal(got, want) {
		t.Errorf("retained with fixed names: %v, want %v", got, want)
	}
}
