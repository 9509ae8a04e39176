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

// RunReaperProps name the state machine to watch and the runs table.
type RunReaperProps struct {
	Stage        Stage
	Data         *Data
	StateMachine sfn.IStateMachine
}

// NewRunReaper makes sure a run never stays RUNNING after its execution
// ended badly in a way the state machine cannot catch itself: an execution
// timeout, an abort, a States.Runtime error, or a failure inside Initialize
// after the run was written. An EventBridge rule on the execution's status
// change starts a small Express state machine that finds the execution's run
// through the execution-index and marks it FAILED if it is still RUNNING.
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
			model.AttrRunID:  sfn.JsonPath_StringAt(jsii.String("$$.Map.Item.Value." + model.AttrRunID + ".S")),
			model.AttrStatus: sfn.JsonPath_StringAt(jsii.String("$.detail.status")),
		},
	})
	mark := markRunFailed(s, "MarkRunOfExecutionFailed", runs, "$."+model.AttrStatus, "")
	mark.AddCatch(sfn.NewSucceed(s, jsii.String("RunAlreadyFinished"), nil), &sfn.CatchProps{
		Errors: jsii.Strings("DynamoDB.ConditionalCheckFailedException"),
	})
	markEach.ItemProcessor(mark, nil)

	logGroup := awslogs.NewLogGroup(c, jsii.String("Logs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String("/aws/vendedlogs/states/" + p.Stage.PhysicalName("run-reaper")),
		Retention:     p.Stage.LogRetention,
		RemovalPolicy: p.Stage.RemovalPolicy(),
	})
	reaper := sfn.NewStateMachine(c, jsii.String("StateMachine"), &sfn.StateMachineProps{
		StateMachineName: jsii.String(p.Stage.PhysicalName("run-reaper")),
		StateMachineType: sfn.StateMachineType_EXPRESS,
		DefinitionBody:   sfn.DefinitionBody_FromChainable(findRun.Next(markEach)),
		Timeout:          awscdk.Duration_Minutes(jsii.Number(1)),
		TracingEnabled:   jsii.Bool(true),
		Logs: &sfn.LogOptions{
			Destination:          logGroup,
			Level:                sfn.LogLevel_ALL,
			IncludeExecutionData: jsii.Bool(true),
		},
	})
	suppress(reaper, "AwsSolutions-IAM5", "Granted by CDK for logging and tracing: log delivery and X-Ray actions have no resource type.", "Resource::*")
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
