package metrics

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// The stage's metrics beside a finished run's (PublishRun's), in the same
// namespace, ArcBenchmark/<stage>. The stage's dashboard and alarms
// (infra/monitoring.go) read exactly these names and dimensions: a datum
// published with other dimensions is another metric, which they do not see.
//
//	metric           unit   dimensions  published by, when
//	RunStarted       Count  ConfigName  initialize: once per run it creates (not when a repeated call
//	                                    finds the run it made)
//	RunEnded         Count  Status      once per run, with its final status (COMPLETED,
//	                                    COMPLETED_WITH_ERRORS, FAILED, STOPPED): complete when it sets
//	                                    it; the run reaper (complete's announce) for a run whose
//	                                    execution failed, timed out or was aborted
//	RunStoppedEarly  Count  (none)      once per run that ends STOPPED (its budget, early stop after
//	                                    failed attempts, an operator), beside its RunEnded
//	AttemptFailed    Count  Reason      handle-error: once per failed attempt it records (not for a
//	                                    repeated report); Reason is the error's name, the Error of
//	                                    the state machine's error (States.TaskFailed, NoAnswer,
//	                                    TaskNotCompleted, ...), never its Cause
//	JobEnded         Count  Status      check-task: once per Batch job that ran (the call that records
//	                                    its compute), Status JobSucceeded (it was called without an
//	                                    error) or JobFailed (with the job's error).
//	                                    Batch itself publishes no CloudWatch metrics of jobs
//	TotalCostUSD     None   (none)      beside RunEnded, once per run: the run's total cost in USD
//	                                    (with complete's PublishRun TotalCostUSD by ConfigName when
//	                                    complete ends the run). It is the stage's spend summed
//	                                    over configurations at publication, which the daily spend
//	                                    alarm reads: an alarm cannot sum a SEARCH over ConfigName
//
// Every count is a datum of value 1 with unit Count; build them with the
// functions below and send them with Publisher.Put. "Once per run" holds by
// the run's notified_at (store.ClaimNotice): whoever claims a run's end
// publishes RunEnded, RunStoppedEarly, TotalCostUSD and the SNS message. The RunCompleted,
// TasksCompleted, ... of PublishRun keep their dimension ConfigName.
const (
	RunStarted      = "RunStarted"
	RunEnded        = "RunEnded"
	RunStoppedEarly = "RunStoppedEarly"
	AttemptFailed   = "AttemptFailed"
	JobEnded        = "JobEnded"

	// DimensionStatus is a run's final status (RunEnded) or a job's (JobEnded).
	DimensionStatus = "Status"
	// DimensionReason is why an attempt failed (AttemptFailed).
	DimensionReason = "Reason"
)

// A job's final status in JobEnded: Batch's names for a job that succeeded
// or failed.
const (
	JobSucceeded = "SUCCEEDED"
	JobFailed    = "FAILED"
)

// UnknownReason stands for an empty reason: CloudWatch refuses an empty
// dimension value.
const UnknownReason = "Unknown"

// maxDimensionValue keeps a dimension value readable in a legend (CloudWatch
// takes up to 1024 characters).
const maxDimensionValue = 255

// RunStartedDatum counts a run initialize created.
func RunStartedDatum(configName string, at time.Time) types.MetricDatum {
	return count(RunStarted, at, DimensionConfigName, configName)
}

// RunEndedDatum counts a run that ended with the given final status.
func RunEndedDatum(status string, at time.Time) types.MetricDatum {
	return count(RunEnded, at, DimensionStatus, status)
}

// RunStoppedEarlyDatum counts a run that ended STOPPED.
func RunStoppedEarlyDatum(at time.Time) types.MetricDatum {
	return count(RunStoppedEarly, at)
}

// AttemptFailedDatum counts a failed attempt; reason is the error's name.
func AttemptFailedDatum(reason string, at time.Time) types.MetricDatum {
	return count(AttemptFailed, at, DimensionReason, reason)
}

// JobEndedDatum counts a Batch job that ended: status is JobSucceeded or JobFailed.
func JobEndedDatum(status string, at time.Time) types.MetricDatum {
	return count(JobEnded, at, DimensionStatus, status)
}

// StageCostDatum is a finished run's total cost (decimal text, as PublishRun
// takes it) as the stage's TotalCostUSD, without dimensions.
func StageCostDatum(totalCostUSD string, at time.Time) (types.MetricDatum, error) {
	cost, err := strconv.ParseFloat(strings.TrimSpace(totalCostUSD), 64)
	if err != nil {
		return types.MetricDatum{}, fmt.Errorf("total cost %q: %w", totalCostUSD, err)
	}
	return types.MetricDatum{MetricName: aws.String(TotalCostUSD), Value: aws.Float64(cost), Unit: types.StandardUnitNone, Timestamp: aws.Time(at)}, nil
}

// Put sends data (built with the functions above) in one request.
func (p *Publisher) Put(ctx context.Context, data ...types.MetricDatum) error {
	if len(data) == 0 {
		return nil
	}
	if _, err := p.CloudWatch.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(p.Namespace), MetricData: data}); err != nil {
		return fmt.Errorf("put metrics in %s: %w", p.Namespace, err)
	}
	return nil
}

// count is one occurrence of a metric, with dimensions given as name, value pairs.
func count(name string, at time.Time, dims ...string) types.MetricDatum {
	d := types.MetricDatum{MetricName: aws.String(name), Value: aws.Float64(1), Unit: types.StandardUnitCount, Timestamp: aws.Time(at)}
	for i := 0; i+1 < len(dims); i += 2 {
		d.Dimensions = append(d.Dimensions, types.Dimension{Name: aws.String(dims[i]), Value: aws.String(dimensionValue(dims[i+1]))})
	}
	return d
}

// dimensionValue is v as CloudWatch takes a dimension value: not empty nor
// blank, and cut to maxDimensionValue bytes on a character boundary.
func dimensionValue(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return UnknownReason
	}
	if len(v) > maxDimensionValue {
		cut := maxDimensionValue
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	return v
}
