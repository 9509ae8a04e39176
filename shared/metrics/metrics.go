// Package metrics publishes a finished run's figures to CloudWatch.
package metrics

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// Metric names, all with the dimension DimensionConfigName.
const (
	RunCompleted        = "RunCompleted"
	TasksCompleted      = "TasksCompleted"
	TasksFailed         = "TasksFailed"
	Accuracy            = "Accuracy"
	Score               = "Score"
	TotalCostUSD        = "TotalCostUSD"
	DurationSeconds     = "DurationSeconds"
	DimensionConfigName = "ConfigName"
)

// CloudWatch is the part of the CloudWatch API the publisher uses.
type CloudWatch interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

var _ CloudWatch = (*cloudwatch.Client)(nil)

// Run is what a finished run reports.
type Run struct {
	ConfigName      string
	CompletedTasks  int
	FailedTasks     int
	Accuracy        float64  // 0..1; published as a percentage
	Score           *float64 // 0..1 (published as a percentage); nil: not published
	TotalCostUSD    string   // decimal text
	DurationSeconds float64
	At              time.Time
}

// Publisher puts a run's metrics in one namespace.
type Publisher struct {
	CloudWatch CloudWatch
	Namespace  string
}

// PublishRun sends the run's metrics (six, and Score when the run has one) in one request.
func (p *Publisher) PublishRun(ctx context.Context, r Run) error {
	data, err := RunData(r)
	if err != nil {
		return err
	}
	return p.Put(ctx, data...)
}

// RunData are a finished run's metrics by configuration: six, and Score
// when the run has one.
func RunData(r Run) ([]types.MetricDatum, error) {
	cost, err := strconv.ParseFloat(r.TotalCostUSD, 64)
	if err != nil && r.TotalCostUSD != "" {
		return nil, fmt.Errorf("total cost %q: %w", r.TotalCostUSD, err)
	}
	dims := []types.Dimension{{Name: aws.String(DimensionConfigName), Value: aws.String(r.ConfigName)}}
	datum := func(name string, v float64, unit types.StandardUnit) types.MetricDatum {
		return types.MetricDatum{MetricName: aws.String(name), Value: aws.Float64(v), Unit: unit, Dimensions: dims, Timestamp: aws.Time(r.At)}
	}
	data := []types.MetricDatum{
		datum(RunCompleted, 1, types.StandardUnitCount),
		datum(TasksCompleted, float64(r.CompletedTasks), types.StandardUnitCount),
		datum(TasksFailed, float64(r.FailedTasks), types.StandardUnitCount),
		datum(Accuracy, r.Accuracy*100, types.StandardUnitPercent),
		datum(TotalCostUSD, cost, types.StandardUnitNone),
		datum(DurationSeconds, r.DurationSeconds, types.StandardUnitSeconds),
	}
	if r.Score != nil {
		data = append(data, datum(Score, *r.Score*100, types.StandardUnitPercent))
	}
	return data, nil
}
