package config

// NamePrefix starts every physical name of a stage: arc-benchmark-<stage>-<part>.
const NamePrefix = "arc-benchmark"

// EnvStage is the stage the operator commands use when --stage is not given.
const EnvStage = "ARCBENCH_STAGE"

// StackName is a stage's stack (and state machine) name: arc-benchmark-<stage>.
func StackName(stage string) string { return NamePrefix + "-" + stage }

// The stack's outputs: how the operator commands find a deployed stage's
// resources.
const (
	OutputStateMachineArn = "StateMachineArn"
	OutputRunsTable       = "RunsTableName"
	OutputTasksTable      = "TasksTableName"
	OutputRateLimitsTable = "RateLimitsTableName"
	OutputBucket          = "BucketName"
	OutputJobQueue        = "JobQueueArn"
	OutputJobDefinition   = "JobDefinitionArn"
)
