package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"arcbench/shared/config"
	"arcbench/shared/model"
)

func TestTables(t *testing.T) {
	s := synth(t, snapshotStage)
	key := func(name, kind string) map[string]interface{} {
		return map[string]interface{}{"AttributeName": name, "KeyType": kind}
	}
	for _, c := range []struct {
		table string
		props map[string]interface{}
	}{
		{"runs", map[string]interface{}{
			"KeySchema": []interface{}{key(model.AttrRunID, "HASH")},
			"GlobalSecondaryIndexes": assertions.Match_ArrayWith(&[]interface{}{
				map[string]interface{}{
					"IndexName":  model.IndexConfigCreated,
					"KeySchema":  []interface{}{key(model.AttrConfigName, "HASH"), key(model.AttrCreatedAt, "RANGE")},
					"Projection": map[string]interface{}{"ProjectionType": "ALL"},
				},
			}),
		}},
		{"tasks", map[string]interface{}{
			"KeySchema":              []interface{}{key(model.AttrRunID, "HASH"), key(model.AttrTaskID, "RANGE")},
			"GlobalSecondaryIndexes": assertions.Match_Absent(),
		}},
		{"rate-limits", map[string]interface{}{
			"KeySchema": []interface{}{key("provider", "HASH")},
		}},
	} {
		c.props["TableName"] = "arc-benchmark-" + snapshotStage + "-" + c.table
		c.props["BillingMode"] = "PAY_PER_REQUEST"
		noPanic(t, c.table+" table", func() {
			s.template.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), c.props)
		})
	}
}

func TestFunctions(t *testing.T) {
	s := synth(t, snapshotStage)
	tableRef := func(table string) map[string]interface{} {
		id, _ := one(t, s.json, "AWS::DynamoDB::Table", "TableName", "arc-benchmark-"+snapshotStage+"-"+table)
		return map[string]interface{}{"Ref": id}
	}
	bucketID := sortedKeys(resources(s.json, "AWS::S3::Bucket"))[0]
	tables := map[string]interface{}{config.EnvRunsTable: tableRef("runs"), config.EnvTasksTable: tableRef("tasks")}
	with := func(k string, v interface{}) map[string]interface{} {
		env := map[string]interface{}{k: v}
		for k, v := range tables {
			env[k] = v
		}
		return env
	}
	with2 := func(k1 string, v1 interface{}, k2 string, v2 interface{}) map[string]interface{} {
		env := with(k1, v1)
		env[k2] = v2
		return env
	}
	// Each function's memory, and the Go runtime told to stay inside it
	// (Lambda kills a function at its limit, with nothing to catch).
	namespace := config.DefaultNamespace + "/" + snapshotStage
	topicID, _ := one(t, s.json, "AWS::SNS::Topic", "TopicName", "arc-benchmark-"+snapshotStage+"-runs")
	for name, env := range map[string]map[string]interface{}{
		"initialize": func() map[string]interface{} {
			// No run budget by default; early stop after 20 failures in a row.
			env := with2(config.EnvBucket, map[string]interface{}{"Ref": bucketID}, config.EnvRunBudgetUSD, "")
			env[config.EnvStopAfterFailures] = fmt.Sprint(config.DefaultStopAfterFailures)
			env[config.EnvNamespace] = namespace // RunStarted
			return env
		}(),
		"check-task": with2(config.EnvBucket, map[string]interface{}{"Ref": bucketID}, config.EnvNamespace, namespace), // JobEnded
		"handle-error": func() map[string]interface{} {
			env := with2(config.EnvMaxRetries, fmt.Sprint(config.DefaultMaxRetries), config.EnvRetryBackoff, "15")
			env[config.EnvNamespace] = namespace // AttemptFailed
			return env
		}(),
		"aggregate": with(config.EnvBucket, map[string]interface{}{"Ref": bucketID}),
		"complete": func() map[string]interface{} {
			// A run's end is told on the stage's topic, naming the stage.
			env := with2(config.EnvNamespace, namespace, config.EnvNotifyTopicARN, map[string]interface{}{"Ref": topicID})
			env[config.EnvStage] = snapshotStage
			return env
		}(),
	} {
		env[config.EnvGoMemLimit] = fmt.Sprintf("%dMiB", config.FunctionMemoryMiB[name]*8/10)
		noPanic(t, name, func() {
			s.template.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]interface{}{
				"FunctionName":  "arc-benchmark-" + snapshotStage + "-" + name,
				"Runtime":       "provided.al2023",
				"Architectures": []interface{}{"arm64"},
				"Handler":       "bootstrap",
				"MemorySize":    config.FunctionMemoryMiB[name],
				"Environment":   map[string]interface{}{"Variables": assertions.Match_ObjectEquals(&env)},
				"LoggingConfig": assertions.Match_ObjectLike(&map[string]interface{}{"LogFormat": "JSON"}),
			})
			s.template.HasResourceProperties(jsii.String("AWS::Logs::LogGroup"), map[string]interface{}{
				"LogGroupName":    "/aws/lambda/arc-benchmark-" + snapshotStage + "-" + name,
				"RetentionInDays": 14,
			})
		})
	}
	// Each function has its own asset, even with bundling skipped.
	keys := map[string]string{}
	for id, fn := range resources(s.json, "AWS::Lambda::Function") {
		if strings.HasPrefix(id, "Functions") {
			code := props(fn)["Code"].(map[string]interface{})
			if other, dup := keys[code["S3Key"].(string)]; dup {
				t.Errorf("%s and %s share one asset", id, other)
			}
			keys[code["S3Key"].(string)] = id
		}
	}
	if len(keys) != len(model.Handlers) {
		t.Errorf("want %d handler assets, got %d", len(model.Handlers), len(keys))
	}
}

// TestFunctionPermissions checks each handler's role grants exactly what the
// handler calls, on the resources it calls them on.
func TestFunctionPermissions(t *testing.T) {
	s := synth(t, snapshotStage)
	arn := func(typ, key, value string) string {
		id, _ := one(t, s.json, typ, key, value)
		return "${" + id + ".Arn}"
	}
	table := func(name string) string {
		return arn("AWS::DynamoDB::Table", "TableName", "arc-benchmark-"+snapshotStage+"-"+name)
	}
	runs, tasks := table("runs"), table("tasks")
	bucket := "${" + sortedKeys(resources(s.json, "AWS::S3::Bucket"))[0] + ".Arn}"
	// The stage's metrics (shared/metrics/events.go) in its namespace only,
	// and the run-end message on its topic, encrypted with its key.
	putMetrics := `cloudwatch:PutMetricData on * if {"StringEquals":{"cloudwatch:namespace":"ArcBenchmark/` + snapshotStage + `"}}`
	topicID, _ := one(t, s.json, "AWS::SNS::Topic", "TopicName", "arc-benchmark-"+snapshotStage+"-runs")
	keyID := sortedKeys(resources(s.json, "AWS::KMS::Key"))[0]
	for name, want := range map[string][]string{
		"initialize": {
			"dynamodb:GetItem on " + runs, "dynamodb:PutItem on " + runs,
			"dynamodb:BatchWriteItem on " + tasks,
			// The run's items for the Map, and task lists uploaded for large runs: no other object.
			"s3:PutObject on " + bucket + "/runs/*/items.json",
			"s3:GetObject on " + bucket + "/inputs/*",
			putMetrics, // RunStarted
			// To resume a run: whether its last execution has ended, its
			// tasks read and released, the run taken over and recounted,
			// and the resume's own items written and read back.
			"states:DescribeExecution on arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:arc-benchmark-" + snapshotStage + ":*",
			"dynamodb:UpdateItem on " + runs,
			"dynamodb:Query on " + tasks, "dynamodb:UpdateItem on " + tasks,
			"s3:PutObject on " + bucket + "/runs/*/items-*.json",
			"s3:GetObject on " + bucket + "/runs/*/items-*.json",
			// To reuse an earlier run's results: the task data's digest.
			"s3:GetObject on " + bucket + "/tasks/*/*.json",
		},
		"check-task": {
			"dynamodb:GetItem on " + tasks, "dynamodb:UpdateItem on " + tasks,
			// It counts a completed task in the run's live counters.
			"dynamodb:GetItem on " + runs, "dynamodb:UpdateItem on " + runs,
			// The task data and the worker's submissions: no other object.
			"s3:GetObject on " + bucket + "/tasks/*/*.json",
			"s3:GetObject on " + bucket + "/runs/*/submissions/*.json",
			putMetrics, // JobEnded
		},
		"handle-error": {
			"dynamodb:GetItem on " + runs, "dynamodb:UpdateItem on " + runs,
			"dynamodb:GetItem on " + tasks, "dynamodb:UpdateItem on " + tasks,
			// A run that stops itself early stops its own execution.
			"states:StopExecution on arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:arc-benchmark-" + snapshotStage + ":*",
			putMetrics, // AttemptFailed
		},
		"aggregate": {
			"dynamodb:GetItem on " + runs, "dynamodb:UpdateItem on " + runs,
			"dynamodb:Query on " + tasks,
			"s3:PutObject on " + bucket + "/runs/*/results/aggregated.json",
			// An ended run's completions check-task never saw are checked
			// as check-task checks them.
			"dynamodb:GetItem on " + tasks, "dynamodb:UpdateItem on " + tasks,
			"s3:GetObject on " + bucket + "/tasks/*/*.json",
			"s3:GetObject on " + bucket + "/runs/*/submissions/*.json",
		},
		"complete": {
			"dynamodb:GetItem on " + runs, "dynamodb:UpdateItem on " + runs,
			"dynamodb:Query on " + tasks,
			putMetrics,
			"sns:Publish on ${" + topicID + "}",
			"kms:Decrypt on ${" + keyID + ".Arn}", "kms:GenerateDataKey* on ${" + keyID + ".Arn}",
		},
	} {
		functionName := "arc-benchmark-" + snapshotStage + "-" + name
		logs := arn("AWS::Logs::LogGroup", "LogGroupName", "/aws/lambda/"+functionName)
		want = append(want, "logs:CreateLogStream on "+logs, "logs:PutLogEvents on "+logs)
		_, fn := one(t, s.json, "AWS::Lambda::Function", "FunctionName", functionName)
		role := props(fn)["Role"].(map[string]interface{})["Fn::GetAtt"].([]interface{})[0].(string)
		got := grants(s.json, role)
		if role := resources(s.json, "AWS::IAM::Role")[role]; props(role)["ManagedPolicyArns"] != nil {
			t.Errorf("%s: role has managed policies %v", name, props(role)["ManagedPolicyArns"])
		}
		sort.Strings(want)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s may:\n  %s\nwant:\n  %s", name, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
}

// The job role holds exactly the calls the benchmark's worker makes, and
// the state machine's role what its integrations call, DescribeJobs and
// TerminateJob among them (AWS's policy for submitJob.sync).
func TestJobAndStateMachinePermissions(t *testing.T) {
	s := synth(t, snapshotStage)
	table := func(name string) string {
		id, _ := one(t, s.json, "AWS::DynamoDB::Table", "TableName", "arc-benchmark-"+snapshotStage+"-"+name)
		return "${" + id + ".Arn}"
	}
	bucket := "${" + sortedKeys(resources(s.json, "AWS::S3::Bucket"))[0] + ".Arn}"
	_, jobDef := one(t, s.json, "AWS::Batch::JobDefinition", "JobDefinitionName", "arc-benchmark-"+snapshotStage+"-worker")
	jobRole := props(jobDef)["ContainerProperties"].(map[string]interface{})["JobRoleArn"].(map[string]interface{})["Fn::GetAtt"].([]interface{})[0].(string)
	want := []string{
		"dynamodb:GetItem on " + table("tasks"), "dynamodb:UpdateItem on " + table("tasks"),
		"dynamodb:UpdateItem on " + table("runs"),
		"dynamodb:GetItem on " + table("rate-limits"), "dynamodb:PutItem on " + table("rate-limits"), "dynamodb:UpdateItem on " + table("rate-limits"),
		"s3:GetObject on " + bucket + "/tasks/*/*.json",
		"s3:PutObject on " + bucket + "/runs/*/submissions/*.json",
	}
	sort.Strings(want)
	if got := grants(s.json, jobRole); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the job role may:\n  %s\nwant exactly the worker's calls:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	_, sm := one(t, s.json, "AWS::StepFunctions::StateMachine", "StateMachineName", "arc-benchmark-"+snapshotStage)
	smRole := props(sm)["RoleArn"].(map[string]interface{})["Fn::GetAtt"].([]interface{})[0].(string)
	got := strings.Join(grants(s.json, smRole), "\n")
	tasksID, _ := one(t, s.json, "AWS::DynamoDB::Table", "TableName", "arc-benchmark-"+snapshotStage+"-tasks")
	for _, w := range []string{"batch:DescribeJobs on *", "batch:TerminateJob on *", "batch:SubmitJob on ${", "lambda:InvokeFunction on ${Functions",
		// GiveUpTask fails a task for good when its check keeps failing.
		"dynamodb:UpdateItem on arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${" + tasksID + "}"} {
		if !strings.Contains(got, w) {
			t.Errorf("the state machine's role lacks %s:\n%s", w, got)
		}
	}
}

// grants lists what a role's inline policies allow, one action on one
// resource per line, sorted.
func grants(tmpl map[string]interface{}, roleID string) []string {
	var out []string
	for _, p := range resources(tmpl, "AWS::IAM::Policy") {
		attached := false
		for _, r := range props(p)["Roles"].([]interface{}) {
			attached = attached || r.(map[string]interface{})["Ref"] == roleID
		}
		if !attached {
			continue
		}
		doc := props(p)["PolicyDocument"].(map[string]interface{})
		for _, st := range doc["Statement"].([]interface{}) {
			stmt := st.(map[string]interface{})
			cond := ""
			if c, ok := stmt["Condition"]; ok {
				raw, _ := json.Marshal(c)
				cond = " if " + string(raw)
			}
			for _, action := range list(stmt["Action"]) {
				for _, res := range list(stmt["Resource"]) {
					out = append(out, fmt.Sprintf("%s %s on %s%s", stmt["Effect"], action, resourceText(res), cond))
				}
			}
		}
	}
	for i, g := range out {
		out[i] = strings.TrimPrefix(g, "Allow ")
	}
	sort.Strings(out)
	return out
}

func list(v interface{}) []interface{} {
	if l, ok := v.([]interface{}); ok {
		return l
	}
	return []interface{}{v}
}

// resourceText writes an IAM resource as text: Fn::Join parts concatenated.
func resourceText(v interface{}) string {
	if m, ok := v.(map[string]interface{}); ok {
		if join, ok := m["Fn::Join"].([]interface{}); ok {
			var b strings.Builder
			for _, part := range join[1].([]interface{}) {
				b.WriteString(reference(part))
			}
			return b.String()
		}
	}
	return reference(v)
}

// TestRetainOrDestroy checks the stage rules: a sandbox-* stage is removed
// whole by cdk destroy, any other keeps its data, recoverable.
func TestRetainOrDestroy(t *testing.T) {
	for _, c := range []struct {
		stage      string
		policy     string
		protected  bool
		autoDelete int
		versioning interface{}
	}{
		{snapshotStage, "Delete", false, 1, nil},
		{"prod", "Retain", true, 0, map[string]interface{}{"Status": "Enabled"}},
	} {
		s := synth(t, c.stage)
		stateful := []string{"AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::Logs::LogGroup"}
		for _, typ := range stateful {
			for id, r := range resources(s.json, typ) {
				if r["DeletionPolicy"] != c.policy || r["UpdateReplacePolicy"] != c.policy {
					t.Errorf("%s: %s %s: DeletionPolicy %v, UpdateReplacePolicy %v; want %s",
						c.stage, typ, id, r["DeletionPolicy"], r["UpdateReplacePolicy"], c.policy)
				}
			}
		}
		for id, r := range resources(s.json, "AWS::DynamoDB::Table") {
			pitr := props(r)["PointInTimeRecoverySpecification"].(map[string]interface{})["PointInTimeRecoveryEnabled"]
			if pitr != c.protected || props(r)["DeletionProtectionEnabled"] != c.protected {
				t.Errorf("%s: table %s: PITR %v, deletion protection %v; want %v", c.stage, id, pitr, props(r)["DeletionProtectionEnabled"], c.protected)
			}
		}
		if n := len(resources(s.json, "Custom::S3AutoDeleteObjects")); n != c.autoDelete {
			t.Errorf("%s: %d auto-delete-objects resources, want %d", c.stage, n, c.autoDelete)
		}
		for id, b := range resources(s.json, "AWS::S3::Bucket") {
			got, _ := json.Marshal(props(b)["VersioningConfiguration"])
			want, _ := json.Marshal(c.versioning)
			if string(got) != string(want) {
				t.Errorf("%s: bucket %s versioning %s, want %s", c.stage, id, got, want)
			}
		}
	}
}

// TestStagesSideBySide synthesizes two stages in one app: they must share no
// physical name, so both can live in one account.
func TestStagesSideBySide(t *testing.T) {
	names := map[string]string{} // resource type and physical name -> stage
	noPanic(t, "two stages", func() {
		app := newApp(t, false, nil)
		base, err := SettingsFromContext(app.Node())
		if err != nil {
			t.Fatal(err)
		}
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		stacks := map[string]*Stack{}
		for _, name := range []string{"sandbox-a", "sandbox-b"} {
			s := base
			if s.Stage, err = NewStage(name); err != nil {
				t.Fatal(err)
			}
			stacks[name] = NewStack(app, s, root)
		}
		for name, stack := range stacks {
			tmpl := toGo(t, assertions.Template_FromStack(stack.Stack, nil).ToJSON())
			found := map[string]string{"AWS::CloudFormation::Stack " + *stack.StackName(): *stack.StackName()}
			for _, r := range tmpl["Resources"].(map[string]interface{}) {
				res := r.(map[string]interface{})
				for key, v := range props(res) {
					// An inline policy's name is scoped to its role, not the account.
					if v, ok := v.(string); ok && strings.HasSuffix(key, "Name") && key != "PolicyName" {
						found[fmt.Sprint(res["Type"], " ", v)] = v
					}
				}
			}
			if len(found) < 15 {
				t.Errorf("%s: only %d physical names found: %v", name, len(found), found)
			}
			for key, n := range found {
				if !strings.Contains(n, name) {
					t.Errorf("%s: physical name %q does not derive from the stage", name, n)
				}
				if other, dup := names[key]; dup {
					t.Errorf("%s is used by %s and %s", key, other, name)
				}
				names[key] = name
			}
		}
	})
}

// TestNag applies cdk-nag's AWS Solutions rules as `cdk synth` does: no
// finding may stand unsuppressed, and every suppression says why.
func TestNag(t *testing.T) {
	for _, stage := range []string{snapshotStage, "prod"} {
		s := synth(t, stage)
		noPanic(t, stage+" annotations", func() {
			a := assertions.Annotations_FromStack(s.stack.Stack)
			nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
			report := func(kind string, found interface{}) {
				var msgs []struct {
					ID    string `json:"id"`
					Entry struct {
						Data interface{} `json:"data"`
					} `json:"entry"`
				}
				raw, _ := json.Marshal(found)
				if err := json.Unmarshal(raw, &msgs); err != nil {
					t.Fatal(err)
				}
				for _, m := range msgs {
					t.Errorf("%s: unsuppressed cdk-nag %s at %s: %v", stage, kind, m.ID, m.Entry.Data)
				}
			}
			report("error", a.FindError(jsii.String("*"), nag))
			report("warning", a.FindWarning(jsii.String("*"), nag))
		})
		for id, r := range s.json["Resources"].(map[string]interface{}) {
			meta, _ := r.(map[string]interface{})["Metadata"].(map[string]interface{})
			nag, _ := meta["cdk_nag"].(map[string]interface{})
			for _, rule := range list(nag["rules_to_suppress"]) {
				if rule, ok := rule.(map[string]interface{}); ok && len(strings.TrimSpace(fmt.Sprint(rule["reason"]))) < 20 {
					t.Errorf("%s: %s suppresses %v without a reason", stage, id, rule["id"])
				}
			}
		}
	}
}

// TestExistingVpc: with vpcId the jobs run in that VPC, in its private
// subnets when it has them, and no VPC is created. The lookup's answer is
// given as context, as cdk.context.json would after a real lookup.
func TestExistingVpc(t *testing.T) {
	const account, region, vpcID = "123456789012", "eu-west-1", "vpc-0123456789abcdef0"
	t.Setenv("CDK_DEFAULT_ACCOUNT", account)
	t.Setenv("CDK_DEFAULT_REGION", region)
	subnet := func(id, zone, cidr string) map[string]interface{} {
		return map[string]interface{}{"subnetId": id, "availabilityZone": zone, "cidr": cidr, "routeTableId": "rtb-" + id[len("subnet-"):]}
	}
	lookup := map[string]interface{}{
		"vpcId":        vpcID,
		"vpcCidrBlock": "10.0.0.0/16",
		"subnetGroups": []interface{}{
			map[string]interface{}{"name": "Private", "type": "Private", "subnets": []interface{}{
				subnet("subnet-0000000000000000a", region+"a", "10.0.1.0/24"),
				subnet("subnet-0000000000000000b", region+"b", "10.0.2.0/24"),
			}},
			map[string]interface{}{"name": "Public", "type": "Public", "subnets": []interface{}{
				subnet("subnet-0000000000000000c", region+"a", "10.0.3.0/24"),
				subnet("subnet-0000000000000000d", region+"b", "10.0.4.0/24"),
			}},
		},
	}
	key := "vpc-provider:account=" + account + ":filter.vpc-id=" + vpcID + ":region=" + region + ":returnAsymmetricSubnets=true"
	noPanic(t, "existing VPC", func() {
		app := newApp(t, false, map[string]interface{}{ctxStage: "sandbox-vpc", ctxVpcID: vpcID, key: lookup})
		stack, err := build(app)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := assertions.Template_FromStack(stack.Stack, nil)
		tmpl.ResourceCountIs(jsii.String("AWS::EC2::VPC"), jsii.Number(0))
		tmpl.HasResourceProperties(jsii.String("AWS::Batch::ComputeEnvironment"), map[string]interface{}{
			"ComputeResources": assertions.Match_ObjectLike(&map[string]interface{}{
				"Subnets": []interface{}{"subnet-0000000000000000a", "subnet-0000000000000000b"},
			}),
		})
		tmpl.HasResourceProperties(jsii.String("AWS::Batch::JobDefinition"), map[string]interface{}{
			"ContainerProperties": assertions.Match_ObjectLike(&map[string]interface{}{
				"NetworkConfiguration": map[string]interface{}{"AssignPublicIp": "DISABLED"},
			}),
		})
	})
}

func TestOutputs(t *testing.T) {
	s := synth(t, snapshotStage)
	outputs, _ := s.json["Outputs"].(map[string]interface{})
	for _, name := range []string{"StateMachineArn", "RunsTableName", "TasksTableName", "RateLimitsTableName", "BucketName", "JobQueueArn", "JobDefinitionArn"} {
		if _, ok := outputs[name]; !ok {
			t.Errorf("no output %s (outputs: %v)", name, sortedKeys(outputs))
		}
	}
}
