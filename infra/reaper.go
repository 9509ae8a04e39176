package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	sfn "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	tasks "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctionstasks"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"arcbench/shared/model"
)

// reaperSettleSeconds is how long the reaper waits before it aggregates a
// run: the 30 s a terminated job's container has between SIGTERM and
// SIGKILL, and some.
const reaperSettleSeconds = 40

// RunReaperProps name the state machine to watch, the runs table and the
// functions it calls: aggregate, and complete to announce the run's end.
type RunReaperProps struct {
	Stage        Stage
	Data         *Data
	Functions    *Functions
	StateMachine sfn.IStateMachine
}

// NewRunReaper makes sure a run never stays RUNNING after its execution
// ended badly in a way the state machine cannot catch itself: an execution
// timeout, an abort, a States.Runtime error, or a failure inside Initialize
// after the run was written. An EventBridge rule on the execution's status
// change starts a small Express state machine that finds the execution's run
// through the execution-index, marks it FAILED if it is still RUNNING,
// aggregates it and has complete announce its end (the run-end message and
// metrics, once per run): a stopped, timed-out or failed run has its
// aggregated.json, its figures on its record and its message, as a finished
// one does. It is the one place that tells the end of those runs.
func NewRunReaper(scope constructs.Construct, id string, p RunReaperProps) {
	c := constructs.NewConstruct(scope, &id)
	s := constructs.NewConstruct(c, jsii.String("States"))
	runs := p.Data.Runs

	findRun := tasks.NewCallAwsService(s, jsii.String("FindRunOfExecution"), &tasks.CallAwsServiceProps{
		Service:      jsii.String("dynamodb"),
		Action:       jsii.String("query"),
		IamAction:    jsii.String("dynamodb:Query"),
		IamResources: jsii.Strings(*runs.TableArn() + "/index/" + model.IndexExecution),
		Parameters: &map[string]interface{}{
			"TableName":                runs.TableName(),
			"IndexName":                model.IndexExecution,
			"KeyConditionExpression":   "#execution = :execution",
			"ExpressionAttributeNames": map[string]interface{}{"#execution": model.AttrExecutionID},
			"ExpressionAttributeValues": map[string]interface{}{
				":execution": map[string]interface{}{"S": sfn.JsonPath_StringAt(jsii.String("$.detail.executionArn"))},
			},
		},
		ResultSelector: &map[string]interface{}{"items": sfn.JsonPath_ObjectAt(jsii.String("$.Items"))},
		ResultPath:     jsii.String("$.found"),
	})
	// A Map, because the query answers a list: empty when the execution
	// failed before initialize wrote its run.
	markEach := sfn.NewMap(s, jsii.String("MarkRunsOfExecutionFailed"), &sfn.MapProps{
		ItemsPath: jsii.String("$.found.items"),
		ItemSelector: &map[string]interface{}{
			model.AttrRunID:       sfn.JsonPath_StringAt(jsii.String("$$.Map.Item.Value." + model.AttrRunID + ".S")),
			model.AttrStatus:      sfn.JsonPath_StringAt(jsii.String("$.detail.status")),
			model.AttrExecutionID: sfn.JsonPath_StringAt(jsii.String("$.detail.executionArn")),
		},
	})
	// Only while the run is still this execution's: a run resumed since
	// belongs to its new execution, which tells its end.
	mark := markRunFailed(s, "MarkRunOfExecutionFailed", runs, path(model.AttrExecutionID), "$."+model.AttrStatus, "")
	// Its jobs were terminated with the execution: each has up to the stop
	// timeout (30 s after SIGTERM, in which the benchmark's worker may still
	// complete its task) before the records are final.
	settle := sfn.NewWait(s, jsii.String("LetTerminatedJobsEnd"), &sfn.WaitProps{
		Time: sfn.WaitTime_Duration(awscdk.Duration_Seconds(jsii.Number(reaperSettleSeconds))),
	})
	aggregate := invoke(s, "AggregateRun", p.Functions.Aggregate, tasks.LambdaInvokeProps{
		Payload:    sfn.TaskInput_FromObject(&map[string]interface{}{model.AttrRunID: path(model.AttrRunID), model.AttrExecutionID: path(model.AttrExecutionID)}),
		ResultPath: sfn.JsonPath_DISCARD(),
	})
	// After the aggregation, so the message counts what aggregate counted.
	announce := invoke(s, "AnnounceRunEnd", p.Functions.Complete, tasks.LambdaInvokeProps{
		Payload: sfn.TaskInput_FromObject(&map[string]interface{}{model.AttrRunID: path(model.AttrRunID), model.FieldAnnounce: true,
			model.AttrExecutionID: path(model.AttrExecutionID)}),
		ResultPath: sfn.JsonPath_DISCARD(),
	})
	// A run marked FAILED before (by arcbench stop, or inside the state
	// machine) is aggregated all the same.
	mark.AddCatch(settle, &sfn.CatchProps{
		Errors:     jsii.Strings("DynamoDB.ConditionalCheckFailedException"),
		ResultPath: sfn.JsonPath_DISCARD(),
	})
	markEach.ItemProcessor(mark.Next(settle).Next(aggregate).Next(announce), nil)

	logGroup := awslogs.NewLogGroup(c, jsii.String("Logs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String("/aws/vendedlogs/states/" + p.Stage.PhysicalName("run-reaper")),
		Retention:     p.Stage.LogRetention,
		RemovalPolicy: p.Stage.RemovalPolicy(),
	})
	reaper := sfn.NewStateMachine(c, jsii.String("StateMachine"), &sfn.StateMachineProps{
		StateMachineName: jsii.String(p.Stage.PhysicalName("run-reaper")),
		StateMachineType: sfn.StateMachineType_EXPRESS,
		DefinitionBody:   sfn.DefinitionBody_FromChainable(findRun.Next(markEach)),
		Timeout:          awscdk.Duration_Minutes(jsii.Number(3)),
		TracingEnabled:   jsii.Bool(true),
		Logs: &sfn.LogOptions{
			Destination:          logGroup,
			Level:                sfn.LogLevel_ALL,
			IncludeExecutionData: jsii.Bool(true),
		},
	})
	suppress(reaper, "AwsSolutions-IAM5", "Granted by CDK for logging and tracing: log delivery and X-Ray actions have no resource type; "+
		"invoking the aggregate and complete functions includes their versions (ARN:*).",
		"Resource::*", "Resource::"+nagArn(p.Functions.Aggregate)+":*", "Resource::"+nagArn(p.Functions.Complete)+":*")
	awsevents.NewRule(c, jsii.String("ExecutionEnded"), &awsevents.RuleProps{
		Description: jsii.String("Runs of " + p.Stage.Prefix() + " whose execution failed, timed out or was aborted"),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.states"),
			DetailType: jsii.Strings("Step Functions Execution Status Change"),
			Detail: &map[string]interface{}{
				"stateMachineArn": []*string{p.StateMachine.StateMachineArn()},
				"status":          []string{"FAILED", "TIMED_OUT", "ABORTED"},
			},
		},
		Targets: &[]awsevents.IRuleTarget{awseventstargets.NewSfnStateMachine(reaper, nil)},
	})
}
