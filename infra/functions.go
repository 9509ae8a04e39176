package main

import (
	"strconv"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"arcbench/shared/config"
	"arcbench/shared/model"
)

// FunctionsProps are what the handlers need from the rest of the stack.
type FunctionsProps struct {
	Stage Stage
	// Guards are the stage's defaults for a run's budget and early stop.
	Guards     RunGuards
	ModuleRoot string
	Data       *Data
	Storage    *Storage
}

// Functions are the Go handlers of the state machine.
type Functions struct {
	Initialize  awslambda.Function
	CheckTask   awslambda.Function
	HandleError awslambda.Function
	Aggregate   awslambda.Function
	Complete    awslambda.Function
}

// MetricsNamespace is where complete publishes a stage's run metrics: one
// namespace per stage, so that sandbox runs never show on prod's graphs.
func MetricsNamespace(stage Stage) string { return config.DefaultNamespace + "/" + stage.Name }

// NewFunctions creates the handlers, each named arc-benchmark-<stage>-<name>,
// with its own role allowed exactly the calls its handler makes.
func NewFunctions(scope constructs.Construct, id string, p FunctionsProps) *Functions {
	c := constructs.NewConstruct(scope, &id)
	runs, tasks := p.Data.Runs, p.Data.Tasks
	env := func(extra map[string]*string) map[string]*string {
		e := map[string]*string{
			config.EnvRunsTable:  runs.TableName(),
			config.EnvTasksTable: tasks.TableName(),
		}
		for k, v := range extra {
			e[k] = v
		}
		return e
	}
	f := &Functions{
		// Initialize writes 10,000 tasks in 400 batches, resubmitting what
		// DynamoDB throttles; aggregate reads them all back.
		Initialize: newGoFunction(c, "Initialize", model.HandlerInitialize, p, 5*time.Minute, env(map[string]*string{
			config.EnvBucket:            p.Storage.Bucket.BucketName(),
			config.EnvRunBudgetUSD:      jsii.String(p.Guards.BudgetUSD),
			config.EnvStopAfterFailures: jsii.String(strconv.Itoa(p.Guards.StopAfterFailures)),
		})),
		// CheckTask reads the task record after every job and scores a
		// completed task: the task data and the submission, read as a stream
		// (a 16 MiB submission stays well inside its memory).
		CheckTask: newGoFunction(c, "CheckTask", model.HandlerCheckTask, p, 30*time.Second, env(map[string]*string{
			config.EnvBucket: p.Storage.Bucket.BucketName(),
		})),
		HandleError: newGoFunction(c, "HandleError", model.HandlerHandleError, p, 30*time.Second, env(map[string]*string{
			config.EnvMaxRetries:   jsii.String(strconv.Itoa(config.DefaultMaxRetries)),
			config.EnvRetryBackoff: jsii.String(strconv.Itoa(int(p.Stage.RetryBackoff.Seconds()))),
		})),
		Aggregate: newGoFunction(c, "Aggregate", model.HandlerAggregate, p, 5*time.Minute, env(map[string]*string{
			config.EnvBucket: p.Storage.Bucket.BucketName(),
		})),
		Complete: newGoFunction(c, "Complete", model.HandlerComplete, p, 30*time.Second, env(map[string]*string{
			config.EnvNamespace: jsii.String(MetricsNamespace(p.Stage)),
		})),
	}

	// The grants mirror the calls each handler makes through shared/store,
	// S3 and CloudWatch; a new call there needs its action here.
	grantItems(f.Initialize, runs, "dynamodb:GetItem", "dynamodb:PutItem")
	grantItems(f.Initialize, tasks, "dynamodb:BatchWriteItem")
	// Initialize reads task lists uploaded for large runs and writes the
	// run's items, the list the Map reads: nothing else in the bucket.
	items, taskLists := model.ItemsKey("*"), model.TaskListPrefix+"*"
	grantObjects(f.Initialize, p.Storage.Bucket, "s3:PutObject", items)
	grantObjects(f.Initialize, p.Storage.Bucket, "s3:GetObject", taskLists)
	// To resume a run it asks whether the run's last execution has ended,
	// reads its tasks, takes the run over (UpdateItem), releases the tasks
	// it runs again and recounts the run; it writes, and a retried call
	// reads back, the resuming execution's own items.
	resumeItems := model.AnyResumeItemsKey
	grantItems(f.Initialize, runs, "dynamodb:UpdateItem")
	grantItems(f.Initialize, tasks, "dynamodb:Query", "dynamodb:UpdateItem")
	grantObjects(f.Initialize, p.Storage.Bucket, "s3:PutObject", resumeItems)
	grantObjects(f.Initialize, p.Storage.Bucket, "s3:GetObject", resumeItems)
	// A new run that reuses an earlier run's results reads the task data
	// (whose digest must be the one scored) and the earlier run's tasks.
	taskData := model.TaskDataKey("*", "*")
	grantObjects(f.Initialize, p.Storage.Bucket, "s3:GetObject", taskData)
	executions := awscdk.Arn_Format(&awscdk.ArnComponents{
		Service: jsii.String("states"), Resource: jsii.String("execution"), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
		ResourceName: jsii.String(p.Stage.Prefix() + ":*"),
	}, awscdk.Stack_Of(c))
	awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee: f.Initialize, Actions: jsii.Strings("states:DescribeExecution"), ResourceArns: &[]*string{executions},
	})
	suppress(f.Initialize.Role(), "AwsSolutions-IAM5", "Initialize writes runs/<run_id>/items.json and runs/<run_id>/items-<execution>.json of any run, "+
		"reads the uploaded task lists under inputs/, a resume's own items and tasks/<data_source>/<task_id>.json (to reuse an earlier run's results), and describes the execution of a run it resumes "+
		"(any execution of the stage's own state machine, arc-benchmark-<stage>:*): the wildcards stand for ids and names only.",
		"Resource::"+nagArn(p.Storage.Bucket)+"/"+items, "Resource::"+nagArn(p.Storage.Bucket)+"/"+taskLists,
		"Resource::"+nagArn(p.Storage.Bucket)+"/"+resumeItems, "Resource::"+nagArn(p.Storage.Bucket)+"/"+taskData,
		cdknag.RegexAppliesTo{Regex: jsii.String("/^Resource::arn:" + arnEnv + ":states:" + arnEnv + ":" + arnEnv + ":execution:" + p.Stage.Prefix() + `:\*$/`)})

	grantItems(f.CheckTask, tasks, "dynamodb:GetItem", "dynamodb:UpdateItem")
	// It counts the task in the run's live counters (GetItem: a refused
	// count reads the run to tell a missing run from a repeated count).
	grantItems(f.CheckTask, runs, "dynamodb:GetItem", "dynamodb:UpdateItem")
	// It reads the task data and the worker's submission: the job role can
	// write submissions nowhere else.
	submissions := model.SubmissionKey("*", "*")
	grantObjects(f.CheckTask, p.Storage.Bucket, "s3:GetObject", taskData)
	grantObjects(f.CheckTask, p.Storage.Bucket, "s3:GetObject", submissions)
	suppress(f.CheckTask.Role(), "AwsSolutions-IAM5", "CheckTask reads tasks/<data_source>/<task_id>.json and runs/<run_id>/submissions/<task_id>.json of any run: the wildcards stand for ids only.",
		"Resource::"+nagArn(p.Storage.Bucket)+"/"+taskData, "Resource::"+nagArn(p.Storage.Bucket)+"/"+submissions)

	// GetItem: a refused update reads the task to say why.
	grantItems(f.HandleError, tasks, "dynamodb:GetItem", "dynamodb:UpdateItem")
	grantItems(f.HandleError, runs, "dynamodb:GetItem", "dynamodb:UpdateItem")
	// A run that stops itself early (too many failures in a row) stops its
	// own execution: any execution of the stage's state machine, whose
	// execution ids exist only at run time.
	awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee: f.HandleError, Actions: jsii.Strings("states:StopExecution"), ResourceArns: &[]*string{executions},
	})
	suppress(f.HandleError.Role(), "AwsSolutions-IAM5", "HandleError stops the execution of a run that failed too many attempts in a row: "+
		"any execution of the stage's own state machine (arc-benchmark-<stage>:*), whose names exist only at run time.",
		cdknag.RegexAppliesTo{Regex: jsii.String("/^Resource::arn:" + arnEnv + ":states:" + arnEnv + ":" + arnEnv + ":execution:" + p.Stage.Prefix() + `:\*$/`)})

	grantItems(f.Aggregate, runs, "dynamodb:GetItem", "dynamodb:UpdateItem")
	grantItems(f.Aggregate, tasks, "dynamodb:Query")
	aggregated := model.AggregatedKey("*")
	grantObjects(f.Aggregate, p.Storage.Bucket, "s3:PutObject", aggregated)
	// For a run that ended before check-task saw all its completions,
	// aggregate checks them as check-task does: its task reads and writes
	// and its two reads of the bucket.
	grantItems(f.Aggregate, tasks, "dynamodb:GetItem", "dynamodb:UpdateItem")
	grantObjects(f.Aggregate, p.Storage.Bucket, "s3:GetObject", taskData)
	grantObjects(f.Aggregate, p.Storage.Bucket, "s3:GetObject", submissions)
	suppress(f.Aggregate.Role(), "AwsSolutions-IAM5", "Aggregate writes runs/<run_id>/results/aggregated.json of any run, and reads tasks/<data_source>/<task_id>.json "+
		"and runs/<run_id>/submissions/<task_id>.json to check what an ended run left unchecked: the wildcards stand for ids only.",
		"Resource::"+nagArn(p.Storage.Bucket)+"/"+aggregated, "Resource::"+nagArn(p.Storage.Bucket)+"/"+taskData, "Resource::"+nagArn(p.Storage.Bucket)+"/"+submissions)

	grantItems(f.Complete, runs, "dynamodb:GetItem", "dynamodb:UpdateItem")
	// Complete counts the task records itself: the table decides the status.
	grantItems(f.Complete, tasks, "dynamodb:Query")
	awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee:      f.Complete,
		Actions:      jsii.Strings("cloudwatch:PutMetricData"),
		ResourceArns: jsii.Strings("*"),
		Conditions: &map[string]*map[string]interface{}{
			"StringEquals": {"cloudwatch:namespace": MetricsNamespace(p.Stage)},
		},
	})
	suppress(f.Complete.Role(), "AwsSolutions-IAM5", "cloudwatch:PutMetricData has no resource type; the cloudwatch:namespace condition limits it to the stage's namespace.",
		"Resource::*")
	return f
}

// newGoFunction creates the function for the handler in functions/<name>,
// with its log group and a role of its own: CDK's default role would carry
// the AWS managed AWSLambdaBasicExecutionRole policy, which reaches every
// log group in the account.
func newGoFunction(scope constructs.Construct, id, name string, p FunctionsProps, timeout time.Duration, env map[string]*string) awslambda.Function {
	memoryMiB := config.FunctionMemoryMiB[name]
	functionName := p.Stage.PhysicalName(name)
	logGroup := awslogs.NewLogGroup(scope, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String("/aws/lambda/" + functionName),
		Retention:     p.Stage.LogRetention,
		RemovalPolicy: p.Stage.RemovalPolicy(),
	})
	role := awsiam.NewRole(scope, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
	})
	logGroup.GrantWrite(role)
	// The Go runtime collects before the function's memory runs out rather
	// than after: Lambda kills a function at its limit, with no error to catch.
	env[config.EnvGoMemLimit] = jsii.String(config.GoMemLimit(memoryMiB))
	return awslambda.NewFunction(scope, jsii.String(id), &awslambda.FunctionProps{
		FunctionName:  jsii.String(functionName),
		Description:   jsii.String("arcbench " + name + " handler (" + p.Stage.Name + ")"),
		Runtime:       awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:  awslambda.Architecture_ARM_64(),
		Handler:       jsii.String("bootstrap"),
		Code:          goHandlerCode(p.ModuleRoot, name),
		MemorySize:    jsii.Number(memoryMiB),
		Timeout:       awscdk.Duration_Seconds(jsii.Number(timeout.Seconds())),
		Environment:   &env,
		Role:          role,
		LogGroup:      logGroup,
		LoggingFormat: awslambda.LoggingFormat_JSON,
	})
}

// grantObjects allows one object action on the keys matching pattern.
func grantObjects(grantee awsiam.IGrantable, bucket awss3.IBucket, action, pattern string) {
	awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee:      grantee,
		Actions:      jsii.Strings(action),
		ResourceArns: jsii.Strings(*bucket.ArnForObjects(jsii.String(pattern))),
	})
}

// grantItems allows item-level actions on the table itself and not on its
// indexes, which Table.Grant would add as a wildcard.
func grantItems(grantee awsiam.IGrantable, table awsdynamodb.Table, actions ...string) {
	awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee:      grantee,
		Actions:      jsii.Strings(actions...),
		ResourceArns: jsii.Strings(*table.TableArn()),
	})
}

// TellRunEnds lets the handlers publish what shared/metrics/events.go says
// each publishes, and complete tell a run's end on the stage's topic (for
// the runs it completes, and those the run reaper asks it to announce):
// PutMetricData in the stage's namespace for initialize (RunStarted),
// check-task (JobEnded) and handle-error (AttemptFailed), as complete has it; sns:Publish on the topic,
// with its key, for complete.
func (f *Functions) TellRunEnds(stage Stage, n *Notifications) {
	for _, fn := range []awslambda.Function{f.Initialize, f.CheckTask, f.HandleError} {
		fn.AddEnvironment(jsii.String(config.EnvNamespace), jsii.String(MetricsNamespace(stage)), nil)
		GrantPutMetrics(fn.Role(), stage)
	}
	f.Complete.AddEnvironment(jsii.String(config.EnvNotifyTopicARN), n.Topic.TopicArn(), nil)
	f.Complete.AddEnvironment(jsii.String(config.EnvStage), jsii.String(stage.Name), nil)
	n.GrantPublish(f.Complete)
}
