package config

import (
	"fmt"
	"regexp"
	"strings"
)

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

// MaxStageLength keeps the longest derived name within the tightest limit:
// a Lambda function name (64), arc-benchmark-<stage>-handle-error.
const MaxStageLength = 32

var stagePattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// ValidateStageName checks a stage's name: 1 to MaxStageLength lowercase
// letters, digits and single inner hyphens.
func ValidateStageName(name string) error {
	if len(name) > MaxStageLength || !stagePattern.MatchString(name) {
		return fmt.Errorf("stage %q: want 1 to %d lowercase letters, digits and single inner hyphens (e.g. sandbox-teal, prod)", name, MaxStageLength)
	}
	if name == CIStackSuffix {
		return fmt.Errorf("stage %q: reserved, since %s is the account's CI stack (its GitHub roles)", name, StackName(name))
	}
	return nil
}

// CIStackSuffix names the per-account stack of the GitHub workflows' roles,
// arc-benchmark-ci: no stage may take the name.
const CIStackSuffix = "ci"

// IsSandbox tells a disposable stage (sandbox-*), deleted whole by `cdk
// destroy`, from one that keeps its data.
func IsSandbox(name string) bool { return strings.HasPrefix(name, "sandbox-") }
