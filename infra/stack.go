package main

import (
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"arcbench/shared/config"
)

// Stack is one stage of arcbench: every resource of the architecture.
type Stack struct {
	awscdk.Stack
	Data      *Data
	Storage   *Storage
	Batch     *Batch
	Functions *Functions
	Workflow  *Workflow
	// Notifications is the stage's SNS topic: alarms notify it, and the
	// complete handler and the run reaper publish "run ended" to it
	// (Notifications.GrantPublish).
	Notifications *Notifications
	Monitoring    *Monitoring
}

// NewStack composes the constructs; moduleRoot is the directory of go.mod,
// where functions/<name> are built from.
func NewStack(scope constructs.Construct, s Settings, moduleRoot string) *Stack {
	props := &awscdk.StackProps{
		Description: jsii.String("arcbench benchmark orchestration, stage " + s.Stage.Name),
		Tags:        &map[string]*string{"arcbench:stage": jsii.String(s.Stage.Name)},
	}
	if s.VpcID != "" {
		// Only a VPC lookup needs a concrete account and region (the CLI's
		// credentials); without one the stack deploys to any environment.
		props.Env = &awscdk.Environment{
			Account: jsii.String(os.Getenv("CDK_DEFAULT_ACCOUNT")),
			Region:  jsii.String(os.Getenv("CDK_DEFAULT_REGION")),
		}
	}
	stack := awscdk.NewStack(scope, jsii.String(s.Stage.Prefix()), props)
	st := &Stack{Stack: stack}
	st.Data = NewData(stack, "Data", s.Stage)
	st.Storage = NewStorage(stack, "Storage", s.Stage)
	// Before the functions and the reaper, which publish to its topic.
	st.Notifications = NewNotifications(stack, "Notifications", NotificationsProps{Stage: s.Stage, Emails: s.NotifyEmails})
	st.Batch = NewBatch(stack, "Batch", BatchProps{Settings: s, Data: st.Data, Storage: st.Storage})
	st.Functions = NewFunctions(stack, "Functions", FunctionsProps{Stage: s.Stage, Guards: s.Guards, ModuleRoot: moduleRoot, Data: st.Data, Storage: st.Storage})
	st.Functions.TellRunEnds(s.Stage, st.Notifications)
	st.Workflow = NewWorkflow(stack, "Workflow", WorkflowProps{Stage: s.Stage, Data: st.Data, Storage: st.Storage, Functions: st.Functions, Batch: st.Batch})
	NewRunReaper(stack, "RunReaper", RunReaperProps{Stage: s.Stage, Data: st.Data, Functions: st.Functions, StateMachine: st.Workflow.StateMachine})
	st.Monitoring = NewMonitoring(stack, "Monitoring", MonitoringProps{Stage: s.Stage, Functions: st.Functions,
		StateMachine: st.Workflow.StateMachine, Topic: st.Notifications.Topic, DailySpendAlarmUSD: s.DailySpendAlarmUSD})

	output := func(id string, value *string, what string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(what)})
	}
	output(config.OutputStateMachineArn, st.Workflow.StateMachine.StateMachineArn(), "Start a run here")
	output(config.OutputRunsTable, st.Data.Runs.TableName(), "Runs table")
	output(config.OutputTasksTable, st.Data.Tasks.TableName(), "Tasks table")
	output(config.OutputRateLimitsTable, st.Data.RateLimits.TableName(), "Provider rate-limits table")
	output(config.OutputBucket, st.Storage.Bucket.BucketName(), "Task data, submissions and results")
	output(config.OutputJobQueue, st.Batch.Queue.JobQueueArn(), "Batch job queue of the worker")
	output(config.OutputJobDefinition, st.Batch.JobDefinition.JobDefinitionArn(), "Batch job definition of the worker")
	output("NotificationsTopicArn", st.Notifications.Topic.TopicArn(), "Alarms and runs ended: subscribe here")
	output("DashboardName", st.Monitoring.Dashboard.DashboardName(), "CloudWatch dashboard of the stage")
	return st
}
