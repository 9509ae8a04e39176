package metrics

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

type recorder struct {
	inputs []*cloudwatch.PutMetricDataInput
	err    error
}

func (r *recorder) PutMetricData(_ context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	r.inputs = append(r.inputs, in)
	return &cloudwatch.PutMetricDataOutput{}, r.err
}

// describe writes a datum as name{dim=value,...} value unit.
func describe(d types.MetricDatum) string {
	var dims []string
	for _, dim := range d.Dimensions {
		dims = append(dims, aws.ToString(dim.Name)+"="+aws.ToString(dim.Value))
	}
	return aws.ToString(d.MetricName) + "{" + strings.Join(dims, ",") + "} " +
		strconv.FormatFloat(aws.ToFloat64(d.Value), 'f', -1, 64) + " " + string(d.Unit)
}

func TestEventData(t *testing.T) {
	at := time.Date(2026, 12, 5, 21, 28, 52, 0, time.UTC)
	cost, err := StageCostDatum("0.040497", at)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		datum types.MetricDatum
		want  string
	}{
		{RunStartedDatum("gpt-5", at), "RunStarted{ConfigName=gpt-5} 1 Count"},
		{RunEndedDatum("COMPLETED_WITH_ERRORS", at), "RunEnded{Status=COMPLETED_WITH_ERRORS} 1 Count"},
		{RunStoppedEarlyDatum(at), "RunStoppedEarly{} 1 Count"},
		{AttemptFailedDatum("NoAnswer", at), "AttemptFailed{Reason=NoAnswer} 1 Count"},
		{AttemptFailedDatum("  ", at), "AttemptFailed{Reason=Unknown} 1 Count"},
		{JobEndedDatum(JobFailed, at), "JobEnded{Status=FAILED} 1 Count"},
		{cost, "TotalCostUSD{} 0.040497 None"},
	} {
		if got := describe(c.datum); got != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
		if !aws.ToTime(c.datum.Timestamp).Equal(at) {
			t.Errorf("%s: timestamp %v, want %v", c.want, c.datum.Timestamp, at)
		}
	}
	if _, err := StageCostDatum("n/a", at); err == nil || !strings.Contains(err.Error(), `"n/a"`) {
		t.Errorf("an unreadable cost: error %v", err)
	}
	// A reason is cut on a character boundary, within CloudWatch's limit.
	long := strings.Repeat("é", 200)
	got := aws.ToString(AttemptFailedDatum(long, at).Dimensions[0].Value)
	if len(got) > maxDimensionValue || !strings.HasPrefix(long, got) || !utf8.ValidString(got) {
		t.Errorf("a 400-byte reason became %d bytes: %q", len(got), got)
	}
}

func TestPut(t *testing.T) {
	r := &recorder{}
	p := &Publisher{CloudWatch: r, Namespace: "ArcBenchmark/sandbox-x"}
	at := time.Now()
	if err := p.Put(context.Background()); err != nil || len(r.inputs) != 0 {
		t.Fatalf("nothing to put: %v, %d requests", err, len(r.inputs))
	}
	if err := p.Put(context.Background(), RunStartedDatum("c", at), JobEndedDatum(JobSucceeded, at)); err != nil {
		t.Fatal(err)
	}
	if len(r.inputs) != 1 || aws.ToString(r.inputs[0].Namespace) != "ArcBenchmark/sandbox-x" || len(r.inputs[0].MetricData) != 2 {
		t.Fatalf("want one request of two data in the namespace, got %+v", r.inputs)
	}
	r.err = errors.New("throttled")
	if err := p.Put(context.Background(), RunStoppedEarlyDatum(at)); err == nil || !strings.Contains(err.Error(), "ArcBenchmark/sandbox-x") {
		t.Errorf("a failed put: error %v, want one naming the namespace", err)
	}
}
