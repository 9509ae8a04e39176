package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"arcbench/shared/model"
)

// Data is the three tables: runs, tasks and the worker's provider rate limits.
type Data struct {
	Runs       awsdynamodb.Table
	Tasks      awsdynamodb.Table
	RateLimits awsdynamodb.Table
}

// NewData creates the tables, on demand, named arc-benchmark-<stage>-<table>.
func NewData(scope constructs.Construct, id string, stage Stage) *Data {
	c := constructs.NewConstruct(scope, &id)
	table := func(id, part, partition, sort string) awsdynamodb.Table {
		props := &awsdynamodb.TableProps{
			TableName:    jsii.String(stage.PhysicalName(part)),
			PartitionKey: stringAttr(partition),
			BillingMode:  awsdynamodb.BillingMode_PAY_PER_REQUEST,
			PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
				PointInTimeRecoveryEnabled: jsii.Bool(!stage.Disposable),
			},
			DeletionProtection: jsii.Bool(!stage.Disposable),
			RemovalPolicy:      stage.RemovalPolicy(),
		}
		if sort != "" {
			props.SortKey = stringAttr(sort)
		}
		t := awsdynamodb.NewTable(c, &id, props)
		if stage.Disposable {
			suppress(t, "AwsSolutions-DDB3", "Sandbox stages are disposable: their tables are deleted with the stack, so there is nothing to recover.")
		}
		return t
	}
	d := &Data{
		Runs:       table("Runs", "runs", model.AttrRunID, ""),
		Tasks:      table("Tasks", "tasks", model.AttrRunID, model.AttrTaskID),
		RateLimits: table("RateLimits", "rate-limits", model.AttrProvider, ""),
	}
	d.Runs.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
		IndexName:      jsii.String(model.IndexConfigCreated),
		PartitionKey:   stringAttr(model.AttrConfigName),
		SortKey:        stringAttr(model.AttrCreatedAt),
		ProjectionType: awsdynamodb.ProjectionType_ALL,
	})
	d.Runs.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
		IndexName:      jsii.String(model.IndexExecution),
		PartitionKey:   stringAttr(model.AttrExecutionID),
		ProjectionType: awsdynamodb.ProjectionType_KEYS_ONLY,
	})
	return d
}

func stringAttr(name string) *awsdynamodb.Attribute {
	return &awsdynamodb.Attribute{Name: jsii.String(name), Type: awsdynamodb.AttributeType_STRING}
}
