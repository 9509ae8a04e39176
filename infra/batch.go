package main

import (
	"fmt"
	"math"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsbatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecr"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"arcbench/shared/config"
	"arcbench/shared/fargate"
	"arcbench/shared/model"
)

// The worker's job: one task per job (sized by the stage's WorkerSize), at
// most 30 minutes an attempt.
const (
	workerAttemptMinutes = 30
	// workerAttempts bounds Batch's own retries of infrastructure failures;
	// the worker's failures are retried by the state machine instead.
	workerAttempts = 3
)

// BatchProps are what the worker's job needs from the rest of the stack.
type BatchProps struct {
	Settings Settings
	Data     *Data
	Storage  *Storage
}

// Batch is where the worker runs: a Fargate compute environment, its queue
// and the worker's job definition.
type Batch struct {
	Queue         awsbatch.JobQueue
	JobDefinition awsbatch.EcsJobDefinition
}

// NewBatch creates the compute environment, the job queue and the job definition.
func NewBatch(scope constructs.Construct, id string, p BatchProps) *Batch {
	c := constructs.NewConstruct(scope, &id)
	stage := p.Settings.Stage

	vpc, subnets, assignPublicIP := network(c, p.Settings.VpcID)
	ce := awsbatch.NewFargateComputeEnvironment(c, jsii.String("ComputeEnvironment"), &awsbatch.FargateComputeEnvironmentProps{
		Vpc:        vpc,
		VpcSubnets: subnets,
		// Room for every job a run has in flight at once, at the job's size.
		MaxvCpus: jsii.Number(math.Max(1, math.Ceil(float64(stage.MapConcurrency)*workerVCPU(p.Settings.WorkerSize)))),
	})
	queue := awsbatch.NewJobQueue(c, jsii.String("Queue"), &awsbatch.JobQueueProps{
		JobQueueName: jsii.String(stage.PhysicalName("queue")),
		ComputeEnvironments: &[]*awsbatch.OrderedComputeEnvironment{
			{ComputeEnvironment: ce, Order: jsii.Number(1)},
		},
	})

	logGroup := awslogs.NewLogGroup(c, jsii.String("WorkerLogs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String("/aws/batch/" + stage.PhysicalName("worker")),
		Retention:     stage.LogRetention,
		RemovalPolicy: stage.RemovalPolicy(),
	})
	apiKeys := apiKeysSecret(c, p.Settings)
	secrets := map[string]awsbatch.Secret{}
	for _, key := range p.Settings.ProviderKeys {
		secrets[key] = awsbatch.Secret_FromSecretsManager(apiKeys, jsii.String(key))
	}
	data := p.Data
	container := awsbatch.NewEcsFargateContainerDefinition(c, jsii.String("Worker"), &awsbatch.EcsFargateContainerDefinitionProps{
		Image: awsecs.ContainerImage_FromEcrRepository(
			awsecr.Repository_FromRepositoryName(c, jsii.String("WorkerRepository"), jsii.String(p.Settings.WorkerRepository)),
			jsii.String(p.Settings.WorkerTag)),
		Cpu:    jsii.Number(workerVCPU(p.Settings.WorkerSize)),
		Memory: awscdk.Size_Mebibytes(jsii.Number(p.Settings.WorkerSize.MemoryMiB)),
		// The per-task variables (RUN_ID, TASK_ID, CONFIG_NAME, DATA_SOURCE,
		// S3_TASKS_PREFIX) come from the state machine's container overrides.
		Environment: &map[string]*string{
			config.WorkerEnvBucket:         p.Storage.Bucket.BucketName(),
			config.WorkerEnvRunsTable:      data.Runs.TableName(),
			config.WorkerEnvTasksTable:     data.Tasks.TableName(),
			config.WorkerEnvRateLimitTable: data.RateLimits.TableName(),
			config.WorkerEnvMaxRetries:     jsii.String(strconv.Itoa(config.DefaultMaxRetries)),
			config.WorkerEnvRegion:         awscdk.Aws_REGION(),
		},
		Secrets:        &secrets,
		JobRole:        workerRole(c, p),
		Logging:        awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{LogGroup: logGroup, StreamPrefix: jsii.String("worker")}),
		AssignPublicIp: assignPublicIP,
		// The image's architecture: Fargate starts an x86_64 image on ARM64
		// (or the reverse) only to fail it with "exec format error".
		FargateCpuArchitecture:       awsecs.CpuArchitecture_Of(jsii.String(p.Settings.WorkerArchitecture)),
		FargateOperatingSystemFamily: awsecs.OperatingSystemFamily_LINUX(),
	})
	jobDef := awsbatch.NewEcsJobDefinition(c, jsii.String("JobDefinition"), &awsbatch.EcsJobDefinitionProps{
		JobDefinitionName: jsii.String(stage.PhysicalName("worker")),
		Container:         container,
		Timeout:           awscdk.Duration_Minutes(jsii.Number(workerAttemptMinutes)),
		RetryAttempts:     jsii.Number(workerAttempts),
		// Batch retries a job whose failure matches no rule, so the list ends
		// with rules that exit on everything else: a worker's own exit code
		// (1 retryable, 2 configuration) is the state machine's to judge.
		RetryStrategies: &[]awsbatch.RetryStrategy{
			awsbatch.RetryStrategy_Of(awsbatch.Action_RETRY, awsbatch.Reason_SPOT_INSTANCE_RECLAIMED()), // host terminated
			awsbatch.RetryStrategy_Of(awsbatch.Action_RETRY, awsbatch.Reason_Custom(&awsbatch.CustomReason{OnStatusReason: jsii.String("Task failed to start*")})),
			awsbatch.RetryStrategy_Of(awsbatch.Action_RETRY, awsbatch.Reason_CANNOT_PULL_CONTAINER()),
			awsbatch.RetryStrategy_Of(awsbatch.Action_EXIT, awsbatch.Reason_Custom(&awsbatch.CustomReason{OnExitCode: jsii.String("*")})),
			awsbatch.RetryStrategy_Of(awsbatch.Action_EXIT, awsbatch.Reason_Custom(&awsbatch.CustomReason{OnStatusReason: jsii.String("*")})),
		},
	})
	suppress(container.ExecutionRole(), "AwsSolutions-IAM5", "ecr:GetAuthorizationToken has no resource type; pulling is limited to the worker's repository.",
		"Resource::*")
	return &Batch{Queue: queue, JobDefinition: jobDef}
}

// apiKeysSecret is the providers' API-keys secret as the job definition
// references it: each key's ValueFrom is <secret ARN>:<json-key>::.
//
// AWS documents ValueFrom as the secret's full ARN, random suffix included
// (Batch API Secret: "the full Amazon Resource Name (ARN) of the AWS Secrets
// Manager secret"; the Batch user guide's json-key examples all read
// ...:secret:appauthexample-AbCdEf:username1::). A secret imported by name
// (Secret_FromSecretNameV2) has only a partial ARN, without the suffix,
// which is not a documented form and is reported to fail when the job
// starts (AccessDeniedException, ResourceInitializationError). So the secret
// is imported by its complete ARN, the context key apiKeysSecretArn, and
// the execution role may read exactly that secret. Without the key, synth
// still succeeds (local runs and tests read no secret) with the partial
// form and a warning, and `arcbench deploy-check`, which `make deploy`
// runs, refuses to deploy it, printing how to find the ARN.
func apiKeysSecret(scope constructs.Construct, s Settings) awssecretsmanager.ISecret {
	if s.APIKeysSecretArn != "" {
		return awssecretsmanager.Secret_FromSecretCompleteArn(scope, jsii.String("ApiKeys"), jsii.String(s.APIKeysSecretArn))
	}
	awscdk.Annotations_Of(scope).AddWarningV2(jsii.String("arcbench:apiKeysSecretArn"), jsii.String(fmt.Sprintf(
		"the job definition names the API-keys secret %q without its complete ARN, which Batch does not accept: jobs would fail to start. "+
			"Give -c %s=$(aws secretsmanager describe-secret --secret-id %s --query ARN --output text)",
		s.APIKeysSecret, ctxAPIKeysSecretArn, s.APIKeysSecret)), nil)
	return awssecretsmanager.Secret_FromSecretNameV2(scope, jsii.String("ApiKeys"), jsii.String(s.APIKeysSecret))
}

// network returns the VPC for the jobs and their subnets: an existing VPC when
// vpcID is set (looked up, so the stack then needs an account and region),
// else a new one that costs nothing idle: public subnets only, no NAT gateway.
// assignPublicIP is whether the jobs need a public IP: a Fargate task in a
// public subnet without one cannot reach ECR, Secrets Manager or the providers.
func network(scope constructs.Construct, vpcID string) (vpc awsec2.IVpc, subnets *awsec2.SubnetSelection, assignPublicIP *bool) {
	if vpcID != "" {
		vpc = awsec2.Vpc_FromLookup(scope, jsii.String("Vpc"), &awsec2.VpcLookupOptions{VpcId: jsii.String(vpcID)})
		// CDK's default choice: private subnets when the VPC has them, else public.
		selected := vpc.SelectSubnets(nil)
		return vpc, &awsec2.SubnetSelection{Subnets: selected.Subnets}, selected.HasPublic
	}
	vpc = awsec2.NewVpc(scope, jsii.String("Vpc"), &awsec2.VpcProps{
		MaxAzs:      jsii.Number(2),
		NatGateways: jsii.Number(0),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: jsii.String("public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24)},
		},
	})
	suppress(vpc, "AwsSolutions-VPC7", "The VPC carries only the workers' outbound calls to AWS APIs and model providers; flow logs would add per-GB cost with no reader. Use vpcId to run in a VPC that has them.")
	return vpc, &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC}, jsii.Bool(true)
}

// workerRole is the worker's own identity, allowed exactly the calls the
// benchmark's worker makes (docs/running-locally.md: "The worker in production"): it claims,
// completes and fails tasks (GetItem, UpdateItem), adds to the run's
// counters (UpdateItem), keeps the providers' rate limits (GetItem, PutItem,
// UpdateItem), reads task data and writes its submissions.
func workerRole(scope constructs.Construct, p BatchProps) awsiam.IRole {
	role := awsiam.NewRole(scope, jsii.String("WorkerRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("ecs-tasks.amazonaws.com"), nil),
	})
	grantItems(role, p.Data.Tasks, "dynamodb:GetItem", "dynamodb:UpdateItem")
	grantItems(role, p.Data.Runs, "dynamodb:UpdateItem")
	grantItems(role, p.Data.RateLimits, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
	bucket := p.Storage.Bucket
	taskData, submissions := model.TaskDataKey("*", "*"), model.SubmissionKey("*", "*")
	grantObjects(role, bucket, "s3:GetObject", taskData)
	grantObjects(role, bucket, "s3:PutObject", submissions)
	suppress(role, "AwsSolutions-IAM5", "The wildcards stand for ids only: tasks/<data_source>/<task_id>.json (read) and runs/<run_id>/submissions/<task_id>.json (write).",
		"Resource::"+nagArn(bucket)+"/"+taskData,
		"Resource::"+nagArn(bucket)+"/"+submissions)
	return role
}

// workerVCPU is the job's vCPU as a number (the size was checked when read).
func workerVCPU(s fargate.Size) float64 {
	v, _ := strconv.ParseFloat(s.VCPU, 64)
	return v
}
