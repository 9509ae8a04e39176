package main

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	sfn "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	tasks "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctionstasks"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"arcbench/shared/config"
	"arcbench/shared/model"
)

// WorkflowProps are the resources the state machine orchestrates.
type WorkflowProps struct {
	Stage     Stage
	Data      *Data
	Storage   *Storage
	Functions *Functions
	Batch     *Batch
}

// Workflow is the state machine of one run (docs/deploying.md: "The state machine"; docs/state-machine.md draws it).
type Workflow struct {
	StateMachine sfn.StateMachine
}

// NewWorkflow creates the state machine arc-benchmark-<stage>:
//
//	StampExecution → Initialize → ProcessTasks → Aggregate → Complete
//	ProcessTasks, per task: CheckRun → RunStopped? ─yes─► MarkNotRun → TaskFinished
//	                        RunTask ◄──────────────┘ no
//	                        RunTask ─ok or error─► CheckTask → TaskCompleted? ─yes─► TaskFinished
//	                        HandleError ◄─────────────────────────────────────┘ no
//	                        HandleError → RetryOrGiveUp ─retry─► PlanRetry → WaitBeforeRetry → CheckRun
//	                                                    └─completed─► CheckTask, otherwise─► TaskFinished
//	CheckTask or HandleError failing after their retries → GiveUpTask → TaskFinished
//	any failure after Initialize → MarkRunFailed → RunFailed
func NewWorkflow(scope constructs.Construct, id string, p WorkflowProps) *Workflow {
	c := constructs.NewConstruct(scope, &id)
	// States are named by their construct ids; a scope of their own keeps
	// them apart from the functions of the same names.
	s := constructs.NewConstruct(c, jsii.String("States"))
	stage, fns, runs := p.Stage, p.Functions, p.Data.Runs

	// StampExecution pairs the input with what makes initialize idempotent:
	// the same execution always yields the same run. The input is kept whole
	// because its optional fields (data_source, ...) may be absent, and a
	// path to an absent field fails the execution.
	stamp := sfn.NewPass(s, jsii.String("StampExecution"), &sfn.PassProps{
		Parameters: &map[string]interface{}{
			"input": sfn.JsonPath_EntirePayload(),
			"execution": map[string]interface{}{
				model.AttrExecutionID:  sfn.JsonPath_ExecutionId(),
				"execution_start_time": sfn.JsonPath_ExecutionStartTime(),
			},
		},
	})
	// Initialize's output carries every field later states read, defaults
	// filled in; from here on the state is that output.
	initialize := invoke(s, "Initialize", fns.Initialize, tasks.LambdaInvokeProps{
		Payload:    sfn.TaskInput_FromJsonPathAt(jsii.String("States.JsonMerge($.input, $.execution, false)")),
		OutputPath: jsii.String("$.Payload"),
	})

	processTasks := sfn.NewDistributedMap(s, jsii.String("ProcessTasks"), &sfn.DistributedMapProps{
		// Distributed: each task is a child execution with its own history,
		// which an inline Map would exhaust past about 1,600 tasks.
		MapExecutionType: sfn.StateMachineType_STANDARD, // .sync tasks need STANDARD children
		// The task list is read from the bucket, where initialize put it: it
		// never travels through state, whatever the run's size.
		ItemReader: sfn.NewS3JsonItemReader(&sfn.S3FileItemReaderProps{
			Bucket: p.Storage.Bucket,
			Key:    path("items_key"),
		}),
		// Children's results go to the bucket, not into the Map's output.
		ResultWriterV2: sfn.NewResultWriterV2(&sfn.ResultWriterV2Props{
			Bucket: p.Storage.Bucket,
			Prefix: jsii.String(model.MapResultsPrefix),
		}),
		// Each item (a model.MapItem) becomes a model.TaskItem, at its first
		// attempt: 1 in a new run, past the task's earlier attempts in a
		// resumed one (initialize numbers them).
		ItemSelector: &map[string]interface{}{
			model.AttrRunID:        path(model.AttrRunID),
			model.AttrTaskID:       sfn.JsonPath_StringAt(jsii.String("$$.Map.Item.Value." + model.AttrTaskID)),
			model.AttrConfigName:   path(model.AttrConfigName),
			model.AttrDataSource:   path(model.AttrDataSource),
			model.FieldAttempt:     sfn.JsonPath_NumberAt(jsii.String("$$.Map.Item.Value." + model.FieldAttempt)),
			model.FieldAttemptBase: sfn.JsonPath_NumberAt(jsii.String("$$.Map.Item.Value." + model.FieldAttemptBase)),
			model.FieldJobName:     sfn.JsonPath_StringAt(jsii.String("$$.Map.Item.Value." + model.FieldJobName)),
		},
		MaxConcurrency: jsii.Number(stage.MapConcurrency),
		// Every outcome is in the tasks table; nothing of the iterations is kept.
		ResultPath: sfn.JsonPath_DISCARD(),
		Label:      jsii.String("tasks"),
	})
	processTasks.ItemProcessor(taskIteration(s, p), nil)

	// From Aggregate on, the state is aggregate's output (run_id and totals):
	// the task list is no longer needed.
	aggregate := invoke(s, "Aggregate", fns.Aggregate, tasks.LambdaInvokeProps{
		Payload: sfn.TaskInput_FromObject(&map[string]interface{}{
			model.AttrRunID: path(model.AttrRunID),
		}),
		OutputPath: jsii.String("$.Payload"),
	})
	complete := invoke(s, "Complete", fns.Complete, tasks.LambdaInvokeProps{
		Payload: sfn.TaskInput_FromObject(&map[string]interface{}{
			model.AttrRunID: path(model.AttrRunID),
			"aggregation":   sfn.JsonPath_EntirePayload(),
		}),
		OutputPath: jsii.String("$.Payload"),
	})

	// Whatever fails after Initialize, the run must not stay RUNNING. Errors
	// no Catch can see (execution timeout, abort, States.Runtime) are left
	// to the run reaper.
	runFailed := sfn.NewFail(s, jsii.String("RunFailed"), &sfn.FailProps{
		ErrorPath: jsii.String("$.error.Error"),
		CausePath: jsii.String("$.error.Cause"),
	})
	markFailed := markRunFailed(s, "MarkRunFailed", runs, sfn.JsonPath_ExecutionId(), "$.error.Error", "$.error.Cause")
	markFailed.AddCatch(runFailed, &sfn.CatchProps{
		// The run already left RUNNING: nothing to mark.
		Errors:     jsii.Strings("DynamoDB.ConditionalCheckFailedException"),
		ResultPath: sfn.JsonPath_DISCARD(),
	})
	markFailed.Next(runFailed)
	catchAll := &sfn.CatchProps{Errors: jsii.Strings(*sfn.Errors_ALL()), ResultPath: jsii.String("$.error")}
	processTasks.AddCatch(markFailed, catchAll)
	aggregate.AddCatch(markFailed, catchAll)
	complete.AddCatch(markFailed, catchAll)

	definition := stamp.
		Next(initialize).
		Next(processTasks).
		Next(aggregate).
		Next(complete)

	logGroup := awslogs.NewLogGroup(c, jsii.String("Logs"), &awslogs.LogGroupProps{
		// The vendedlogs prefix keeps CloudWatch Logs' resource policy small.
		LogGroupName:  jsii.String("/aws/vendedlogs/states/" + stage.Prefix()),
		Retention:     stage.LogRetention,
		RemovalPolicy: stage.RemovalPolicy(),
	})
	sm := sfn.NewStateMachine(c, jsii.String("StateMachine"), &sfn.StateMachineProps{
		StateMachineName: jsii.String(stage.Prefix()),
		StateMachineType: sfn.StateMachineType_STANDARD,
		DefinitionBody:   sfn.DefinitionBody_FromChainable(definition),
		Timeout:          awscdk.Duration_Seconds(jsii.Number(stage.ExecutionTimeout.Seconds())),
		TracingEnabled:   jsii.Bool(true),
		Logs: &sfn.LogOptions{
			Destination:          logGroup,
			Level:                sfn.LogLevel_ALL,
			IncludeExecutionData: jsii.Bool(true),
		},
	})
	// RunTask waits for its job (.sync): Step Functions describes the job
	// until it ends, and terminates it when the execution stops, times out or
	// its Map fails. Job ids exist only at run time, so AWS's own policy for
	// the integration names every job.
	sm.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("batch:DescribeJobs", "batch:TerminateJob"),
		Resources: jsii.Strings("*"),
	}))
	suppress(sm, "AwsSolutions-IAM5", "Granted by CDK: log delivery and X-Ray actions have no resource type; "+
		"invoking a handler includes its versions (ARN:*); SubmitJob names any job definition (the queue is specific); "+
		"DescribeJobs and TerminateJob name job ids that exist only at run time (AWS's policy for submitJob.sync); "+
		"the Distributed Map describes, stops and redrives its own child executions only; "+
		"it reads its items (runs/<run_id>/items.json, a key known at run time) and writes its results (runs/map-results/) in the stage's own bucket, "+
		"which CDK grants on the bucket's objects.",
		"Resource::*",
		"Resource::arn:<AWS::Partition>:s3:::"+nagRef(p.Storage.Bucket)+"/*",
		"Resource::"+nagArn(fns.Initialize)+":*",
		"Resource::"+nagArn(fns.CheckTask)+":*",
		"Resource::"+nagArn(fns.HandleError)+":*",
		"Resource::"+nagArn(fns.Aggregate)+":*",
		"Resource::"+nagArn(fns.Complete)+":*",
		cdknag.RegexAppliesTo{Regex: jsii.String("/^Resource::arn:" + arnEnv + ":batch:" + arnEnv + ":" + arnEnv + `:job-definition\/\*$/`)},
		cdknag.RegexAppliesTo{Regex: jsii.String("/^Resource::arn:" + arnEnv + ":states:" + arnEnv + ":" + arnEnv + `:execution:.*:\*$/`)})
	return &Workflow{StateMachine: sm}
}

// arnEnv matches an ARN's partition, region or account as cdk-nag writes it:
// a token such as <AWS::Region>, or a literal when vpcId gives the stack a
// concrete environment.
const arnEnv = `(?:<[^>]+>|[^:]+)`

// taskIteration is one task's life inside ProcessTasks: run the worker's
// job, then read the task record, whatever the job's exit code: COMPLETED
// ends the iteration (scored), anything else is a failed attempt that
// handle-error counts before the task is run again or given up.
func taskIteration(s constructs.Construct, p WorkflowProps) sfn.IChainable {
	runTask := tasks.NewBatchSubmitJob(s, jsii.String("RunTask"), &tasks.BatchSubmitJobProps{
		// <config>-<task_id> in Batch's job-name alphabet (model.JobName),
		// computed by initialize since ASL cannot rewrite strings: an
		// operator finds a task's jobs by name in the Batch console.
		JobName:          path(model.FieldJobName),
		JobQueueArn:      p.Batch.Queue.JobQueueArn(),
		JobDefinitionArn: p.Batch.JobDefinition.JobDefinitionArn(),
		ContainerOverrides: &tasks.BatchContainerOverrides{
			Environment: &map[string]*string{
				config.WorkerEnvRunID:      path(model.AttrRunID),
				config.WorkerEnvTaskID:     path(model.AttrTaskID),
				config.WorkerEnvConfigName: path(model.AttrConfigName),
				config.WorkerEnvDataSource: path(model.AttrDataSource),
				// The worker reads <S3_TASKS_PREFIX>/<task_id>.json: the data
				// source's folder (model.TaskDataPrefix).
				config.WorkerEnvTasksPrefix: sfn.JsonPath_Format(jsii.String(model.TaskDataRoot+"/{}"), path(model.AttrDataSource)),
			},
		},
		// The job description (a few KB) goes to CheckTask, which prices the
		// job's compute from it, and no further: CheckTask's output is the
		// item. (A failed job's description is its error's Cause.)
		ResultPath: jsii.String("$." + model.FieldJob),
	})
	runTask.AddRetry(&sfn.RetryProps{
		// Batch API faults and throttling (SubmitJob allows 50 a second per
		// account); a failed job is States.TaskFailed and goes to CheckTask.
		Errors:         jsii.Strings("Batch.AWSBatchException", "Batch.ServerException", "Batch.TooManyRequestsException"),
		Interval:       awscdk.Duration_Seconds(jsii.Number(5)),
		MaxAttempts:    jsii.Number(6),
		BackoffRate:    jsii.Number(2),
		JitterStrategy: sfn.JitterType_FULL,
	})

	// CheckTask's output is the next state: the item, the task's status and,
	// when it is not COMPLETED, the error to record (model.CheckTaskOutput).
	checkTask := invoke(s, "CheckTask", p.Functions.CheckTask, tasks.LambdaInvokeProps{
		Payload:    sfn.TaskInput_FromJsonPathAt(jsii.String("$")),
		OutputPath: jsii.String("$.Payload"),
	})
	// A failed job may have completed its task before it died: the task
	// record says, not the exit code.
	runTask.AddCatch(checkTask, &sfn.CatchProps{Errors: jsii.Strings(*sfn.Errors_ALL()), ResultPath: jsii.String("$.error")})
	runTask.Next(checkTask)

	handleError := invoke(s, "HandleError", p.Functions.HandleError, tasks.LambdaInvokeProps{
		Payload: sfn.TaskInput_FromObject(&map[string]interface{}{
			model.AttrRunID:        path(model.AttrRunID),
			model.AttrTaskID:       path(model.AttrTaskID),
			model.FieldAttempt:     sfn.JsonPath_NumberAt(jsii.String("$." + model.FieldAttempt)),
			model.FieldAttemptBase: sfn.JsonPath_NumberAt(jsii.String("$." + model.FieldAttemptBase)),
			"error":                path("error"),
		}),
		ResultSelector: &map[string]interface{}{
			model.AttrStatus:       sfn.JsonPath_StringAt(jsii.String("$.Payload." + model.AttrStatus)),
			model.AttrRetryCount:   sfn.JsonPath_NumberAt(jsii.String("$.Payload." + model.AttrRetryCount)),
			model.FieldWaitSeconds: sfn.JsonPath_NumberAt(jsii.String("$.Payload." + model.FieldWaitSeconds)),
		},
		ResultPath: jsii.String("$.handled"),
	})

	// TaskFinished ends an iteration with {}: whatever a Map collects from
	// 10,000 iterations must stay far below the 256 KiB payload quota.
	finished := sfn.NewPass(s, jsii.String("TaskFinished"), &sfn.PassProps{
		Result: sfn.Result_FromObject(&map[string]interface{}{}),
	})
	checkTask.Next(sfn.NewChoice(s, jsii.String("TaskCompleted"), nil).
		When(sfn.Condition_StringEquals(jsii.String("$."+model.AttrStatus), jsii.String(model.TaskCompleted)), finished, nil).
		Otherwise(handleError))

	// PlanRetry rebuilds the item (dropping the error and handle-error's
	// answer) for the next attempt, with the wait handle-error computed: no
	// table of waits that a larger MAX_RETRIES would index past.
	planRetry := sfn.NewPass(s, jsii.String("PlanRetry"), &sfn.PassProps{
		Parameters: &map[string]interface{}{
			model.AttrRunID:        path(model.AttrRunID),
			model.AttrTaskID:       path(model.AttrTaskID),
			model.AttrConfigName:   path(model.AttrConfigName),
			model.AttrDataSource:   path(model.AttrDataSource),
			model.FieldAttempt:     sfn.JsonPath_MathAdd(sfn.JsonPath_NumberAt(jsii.String("$."+model.FieldAttempt)), jsii.Number(1)),
			model.FieldAttemptBase: sfn.JsonPath_NumberAt(jsii.String("$." + model.FieldAttemptBase)),
			model.FieldJobName:     path(model.FieldJobName),
			model.FieldWaitSeconds: sfn.JsonPath_NumberAt(jsii.String("$.handled." + model.FieldWaitSeconds)),
		},
	})
	wait := sfn.NewWait(s, jsii.String("WaitBeforeRetry"), &sfn.WaitProps{
		Time: sfn.WaitTime_SecondsPath(jsii.String("$." + model.FieldWaitSeconds)),
	})
	planRetry.Next(wait)

	// Before each attempt, the run's guard: a run stopped (its budget
	// reached, too many failures in a row, an operator) starts no attempt;
	// the task ends NOT_RUN. One strongly consistent read of one attribute,
	// in the state machine (no Lambda call per attempt): a stop written
	// before this read is always seen.
	checkRun := tasks.NewDynamoGetItem(s, jsii.String("CheckRun"), &tasks.DynamoGetItemProps{
		Table: p.Data.Runs,
		Key: &map[string]tasks.DynamoAttributeValue{
			model.AttrRunID: tasks.DynamoAttributeValue_FromString(path(model.AttrRunID)),
		},
		ConsistentRead:       jsii.Bool(true),
		ProjectionExpression: &[]tasks.DynamoProjectionExpression{tasks.NewDynamoProjectionExpression().WithAttribute(jsii.String(model.AttrStopReason))},
		ResultPath:           jsii.String("$." + fieldGuard),
	})
	checkRun.AddRetry(dynamoRetry())
	markNotRun := markTaskNotRun(s, "MarkNotRun", p.Data.Tasks)
	// A task that left PENDING or FAILED meanwhile (it cannot, with no job
	// of its own running) keeps its status.
	markNotRun.AddCatch(finished, &sfn.CatchProps{Errors: jsii.Strings("DynamoDB.ConditionalCheckFailedException"), ResultPath: sfn.JsonPath_DISCARD()})
	markNotRun.Next(finished)
	checkRun.Next(sfn.NewChoice(s, jsii.String("RunStopped"), nil).
		When(sfn.Condition_IsPresent(jsii.String("$."+fieldGuard+".Item."+model.AttrStopReason)), markNotRun, nil).
		Otherwise(runTask))
	wait.Next(checkRun)

	// One task can never fail the run: when check-task or handle-error
	// still fails on it after their retries, the task is failed for good with
	// the reason, and the Map goes on. (Its live count is left to aggregate,
	// which sets every counter from the task records.)
	giveUp := giveUpTask(s, "GiveUpTask", p.Data.Tasks)
	giveUp.AddCatch(finished, &sfn.CatchProps{Errors: jsii.Strings(*sfn.Errors_ALL()), ResultPath: sfn.JsonPath_DISCARD()})
	giveUp.Next(finished)
	checkTask.AddCatch(giveUp, &sfn.CatchProps{Errors: jsii.Strings(*sfn.Errors_ALL()), ResultPath: jsii.String("$.error")})
	handleError.AddCatch(giveUp, &sfn.CatchProps{Errors: jsii.Strings(*sfn.Errors_ALL()), ResultPath: jsii.String("$.error")})

	handleError.Next(sfn.NewChoice(s, jsii.String("RetryOrGiveUp"), nil).
		When(sfn.Condition_StringEquals(jsii.String("$.handled."+model.AttrStatus), jsii.String(model.RetryScheduled)), planRetry, nil).
		// Completed after all (handle-error never changes such a task): score it.
		When(sfn.Condition_StringEquals(jsii.String("$.handled."+model.AttrStatus), jsii.String(model.TaskCompleted)), checkTask, nil).
		Otherwise(finished))
	return checkRun
}

// fieldGuard is where CheckRun puts what it read of the run: {"Item": {...}},
// with stop_reason when the run is stopped.
const fieldGuard = "run_guard"

// markTaskNotRun ends the task at $.run_id / $.task_id NOT_RUN: its run was
// stopped before this attempt. Only a task waiting for an attempt (PENDING,
// or FAILED between retries, whose last error stays on the record) is
// changed.
func markTaskNotRun(s constructs.Construct, id string, taskTable awsdynamodb.ITable) tasks.DynamoUpdateItem {
	return retriedUpdate(tasks.NewDynamoUpdateItem(s, jsii.String(id), &tasks.DynamoUpdateItemProps{
		Table:               taskTable,
		Key:                 stateTaskKey(),
		UpdateExpression:    jsii.String("SET #status = :not_run, #updated_at = :now"),
		ConditionExpression: jsii.String("#status IN (:pending, :failed)"),
		ExpressionAttributeNames: &map[string]*string{
			"#status":     jsii.String(model.AttrStatus),
			"#updated_at": jsii.String(model.AttrUpdatedAt),
		},
		ExpressionAttributeValues: &map[string]tasks.DynamoAttributeValue{
			":not_run": tasks.DynamoAttributeValue_FromString(jsii.String(model.TaskNotRun)),
			":pending": tasks.DynamoAttributeValue_FromString(jsii.String(model.TaskPending)),
			":failed":  tasks.DynamoAttributeValue_FromString(jsii.String(model.TaskFailed)),
			":now":     tasks.DynamoAttributeValue_FromString(sfn.JsonPath_StateEnteredTime()),
		},
		ResultPath: sfn.JsonPath_DISCARD(),
	}))
}

// invoke calls a handler through the Lambda integration, retrying what is
// transient and nothing else: InvalidInputError, RunNotFoundError and
// TaskNotFoundError fail at once. CDK adds the retry of Lambda's own service
// exceptions.
func invoke(s constructs.Construct, id string, fn awslambda.IFunction, props tasks.LambdaInvokeProps) tasks.LambdaInvoke {
	props.LambdaFunction = fn
	t := tasks.NewLambdaInvoke(s, jsii.String(id), &props)
	t.AddRetry(&sfn.RetryProps{
		// ServiceError is a handler's AWS fault (DynamoDB, S3). Every
		// handler is safe to repeat: handle-error sets the attempt's number
		// rather than adding to it.
		Errors:         jsii.Strings(model.ErrService, "Lambda.TooManyRequestsException"),
		Interval:       awscdk.Duration_Seconds(jsii.Number(2)),
		MaxAttempts:    jsii.Number(5),
		BackoffRate:    jsii.Number(2),
		JitterStrategy: sfn.JitterType_FULL,
	})
	return t
}

// markRunFailed sets the run at $.run_id FAILED with the error type and cause
// found at the given paths (cause optional), only while it is RUNNING under
// the given execution: a run that completed stays completed, a run resumed
// by a later execution is that one's, and a missing run is not created.
func markRunFailed(s constructs.Construct, id string, runs awsdynamodb.ITable, execution *string, errorType, errorCause string) tasks.DynamoUpdateItem {
	set := []string{"#status = :failed", "#updated_at = :now", "#error_type = :error_type"}
	names := map[string]*string{
		"#status":     jsii.String(model.AttrStatus),
		"#updated_at": jsii.String(model.AttrUpdatedAt),
		"#error_type": jsii.String(model.AttrLastErrorType),
		"#execution":  jsii.String(model.AttrExecutionID),
	}
	values := map[string]tasks.DynamoAttributeValue{
		":execution":  tasks.DynamoAttributeValue_FromString(execution),
		":failed":     tasks.DynamoAttributeValue_FromString(jsii.String(model.RunFailed)),
		":running":    tasks.DynamoAttributeValue_FromString(jsii.String(model.RunRunning)),
		":now":        tasks.DynamoAttributeValue_FromString(sfn.JsonPath_StateEnteredTime()),
		":error_type": tasks.DynamoAttributeValue_FromString(sfn.JsonPath_StringAt(jsii.String(errorType))),
	}
	if errorCause != "" {
		set = append(set, "#error_cause = :error_cause")
		names["#error_cause"] = jsii.String(model.AttrLastErrorCause)
		values[":error_cause"] = tasks.DynamoAttributeValue_FromString(sfn.JsonPath_StringAt(jsii.String(errorCause)))
	}
	return retriedUpdate(tasks.NewDynamoUpdateItem(s, jsii.String(id), &tasks.DynamoUpdateItemProps{
		Table: runs,
		Key: &map[string]tasks.DynamoAttributeValue{
			model.AttrRunID: tasks.DynamoAttributeValue_FromString(path(model.AttrRunID)),
		},
		UpdateExpression:          jsii.String("SET " + strings.Join(set, ", ")),
		ConditionExpression:       jsii.String("#status = :running AND #execution = :execution"),
		ExpressionAttributeNames:  &names,
		ExpressionAttributeValues: &values,
		ResultPath:                sfn.JsonPath_DISCARD(),
	}))
}

// giveUpTask fails the task at $.run_id / $.task_id for good with the error
// at $.error (what check-task or handle-error kept failing with), if the
// task exists: no Lambda call, since a Lambda may be what fails.
func giveUpTask(s constructs.Construct, id string, taskTable awsdynamodb.ITable) tasks.DynamoUpdateItem {
	return retriedUpdate(tasks.NewDynamoUpdateItem(s, jsii.String(id), &tasks.DynamoUpdateItemProps{
		Table: taskTable,
		Key:   stateTaskKey(),
		UpdateExpression: jsii.String("SET #status = :permanent, #given_up = :true, #error_type = :error_type, " +
			"#error_cause = :error_cause, #error_at = :now, #updated_at = :now"),
		ConditionExpression: jsii.String("attribute_exists(#task_id)"),
		ExpressionAttributeNames: &map[string]*string{
			"#status":      jsii.String(model.AttrStatus),
			"#given_up":    jsii.String(model.AttrGivenUp),
			"#error_type":  jsii.String(model.AttrLastErrorType),
			"#error_cause": jsii.String(model.AttrLastErrorCause),
			"#error_at":    jsii.String(model.AttrLastErrorAt),
			"#updated_at":  jsii.String(model.AttrUpdatedAt),
			"#task_id":     jsii.String(model.AttrTaskID),
		},
		ExpressionAttributeValues: &map[string]tasks.DynamoAttributeValue{
			":permanent":   tasks.DynamoAttributeValue_FromString(jsii.String(model.TaskFailedPermanent)),
			":true":        tasks.DynamoAttributeValue_FromBoolean(jsii.Bool(true)),
			":error_type":  tasks.DynamoAttributeValue_FromString(sfn.JsonPath_StringAt(jsii.String("$.error.Error"))),
			":error_cause": tasks.DynamoAttributeValue_FromString(sfn.JsonPath_StringAt(jsii.String("$.error.Cause"))),
			":now":         tasks.DynamoAttributeValue_FromString(sfn.JsonPath_StateEnteredTime()),
		},
		ResultPath: sfn.JsonPath_DISCARD(),
	}))
}

// stateTaskKey is the tasks table's key of the task at $.run_id / $.task_id.
func stateTaskKey() *map[string]tasks.DynamoAttributeValue {
	return &map[string]tasks.DynamoAttributeValue{
		model.AttrRunID:  tasks.DynamoAttributeValue_FromString(path(model.AttrRunID)),
		model.AttrTaskID: tasks.DynamoAttributeValue_FromString(path(model.AttrTaskID)),
	}
}

// retriedUpdate retries a DynamoDB update integration (dynamoRetry).
func retriedUpdate(t tasks.DynamoUpdateItem) tasks.DynamoUpdateItem {
	t.AddRetry(dynamoRetry())
	return t
}

// dynamoRetry retries a DynamoDB integration on throttling and faults.
func dynamoRetry() *sfn.RetryProps {
	return &sfn.RetryProps{
		Errors:         jsii.Strings("DynamoDB.ProvisionedThroughputExceededException", "DynamoDB.ThrottlingException", "DynamoDB.InternalServerErrorException"),
		Interval:       awscdk.Duration_Seconds(jsii.Number(1)),
		MaxAttempts:    jsii.Number(5),
		BackoffRate:    jsii.Number(2),
		JitterStrategy: sfn.JitterType_FULL,
	}
}

// path is the JSONPath $.<field> of the state's input.
func path(field string) *string { return sfn.JsonPath_StringAt(jsii.String("$." + field)) }
