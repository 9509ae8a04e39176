package emulators_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"arcbench/internal/emulators"
	"arcbench/shared/metrics"
)

// The SDK gzips PutMetricData bodies from a size on (every body when that
// size is 0, as in a configuration built by hand); CloudWatch takes both, and
// so must the stand-in, or a local run's metrics are refused.
func TestCloudWatchStandInTakesPlainAndGzippedRequests(t *testing.T) {
	for _, c := range []struct {
		name         string
		minCompress  int64
		wantEncoding string
	}{{"gzipped", 0, "gzip"}, {"plain", 10240, ""}} {
		t.Run(c.name, func(t *testing.T) {
			cw := &emulators.CloudWatch{}
			var encoding string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				encoding = r.Header.Get("Content-Encoding")
				cw.ServeHTTP(w, r)
			}))
			defer srv.Close()
			client := cloudwatch.NewFromConfig(aws.Config{
				Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
				Credentials:                 credentials.NewStaticCredentialsProvider("local", "local", ""),
				RequestMinCompressSizeBytes: c.minCompress,
			})
			p := &metrics.Publisher{CloudWatch: client, Namespace: "Test"}
			score := 0.25
			if err := p.PublishRun(context.Background(), metrics.Run{ConfigName: "cfg", CompletedTasks: 3, TotalCostUSD: "0.5", Score: &score, At: time.Now()}); err != nil {
				t.Fatalf("publish: %v (stand-in: %v)", err, cw.Malformed())
			}
			if encoding != c.wantEncoding {
				t.Errorf("request Content-Encoding %q, want %q: the case does not test what it says", encoding, c.wantEncoding)
			}
			puts := cw.Puts()
			if len(puts) != 1 || puts[0].Namespace != "Test" {
				t.Fatalf("puts %+v", puts)
			}
			got := map[string]float64{}
			for _, d := range puts[0].MetricData {
				got[d.MetricName] = d.Value
			}
			if got[metrics.TasksCompleted] != 3 || got[metrics.Score] != 25 || got[metrics.TotalCostUSD] != 0.5 {
				t.Errorf("metrics %v", got)
			}
		})
	}
}
