// Package clients builds the AWS SDK clients every handler and the CLI use,
// once per process. With AWS_ENDPOINT_URL set they all talk to that one
// endpoint (an emulator, as with LocalStack); the SDK's per-service
// AWS_ENDPOINT_URL_<SERVICE> variables work too.
package clients

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// LocalRegion is the region used when an emulator endpoint is set and no
// region is: emulators accept any, and the SDK insists on one.
const LocalRegion = "us-east-1"

// Clients are the SDK clients of one process.
type Clients struct {
	DynamoDB   *dynamodb.Client
	S3         *s3.Client
	CloudWatch *cloudwatch.Client
	SNS        *sns.Client
	// StepFunctions stops a run's execution when the run stops itself.
	StepFunctions *sfn.Client
}

// New loads the SDK's configuration (environment, shared files, Lambda's role)
// and builds the clients.
func New(ctx context.Context) (*Clients, error) {
	cfg, err := Config(ctx)
	if err != nil {
		return nil, err
	}
	return FromConfig(cfg), nil
}

// Config loads the SDK's configuration as every arcbench process does: with
// an emulator endpoint and no region, the region is LocalRegion.
func Config(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		if len(customEndpoints(os.Environ())) == 0 {
			return aws.Config{}, fmt.Errorf("no AWS region: set AWS_REGION (or a profile with a region)")
		}
		cfg.Region = LocalRegion
	}
	return cfg, nil
}

// FromConfig builds the clients of a loaded configuration, honouring the
// environment's custom endpoints.
func FromConfig(cfg aws.Config) *Clients {
	return fromConfig(cfg, customEndpoints(os.Environ()))
}

// NewLocal builds clients of local emulators at one endpoint, with dummy
// credentials, whatever the process environment says.
func NewLocal(endpoint string) *Clients { return NewLocalAs(endpoint, "local") }

// NewLocalAs builds clients of local emulators that sign their requests with
// accessKey: how a local run tells its principals apart.
func NewLocalAs(endpoint, accessKey string) *Clients {
	cfg := aws.Config{
		Region:       LocalRegion,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, "local", ""),
	}
	return fromConfig(cfg, map[string]bool{"": true})
}

func fromConfig(cfg aws.Config, custom map[string]bool) *Clients {
	return &Clients{
		DynamoDB: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			// Throttling is retried with backoff until it clears; no client-side
			// retry quota, so a burst of throttles never turns into a lost write.
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = 10
				so.Backoff = dynamoDBBackoff
				so.RateLimiter = ratelimit.None
			})
		}),
		S3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			// Emulators serve buckets by path, not by virtual host.
			o.UsePathStyle = custom["S3"] || custom[""]
			// Emulators send no checksums; the SDK would say so on every read,
			// in plain text among our JSON logs.
			o.DisableLogOutputChecksumValidationSkipped = true
		}),
		CloudWatch: cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
			// Metrics are never worth delaying a run for.
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = 2
				so.MaxBackoff = 200 * time.Millisecond
			})
		}),
		// A run's end is told once: a failed Publish (throttled, 5xx, a lost
		// connection) is retried with exponential backoff and jitter, within
		// the caller's deadline. Its endpoint is the configuration's, or
		// AWS_ENDPOINT_URL_SNS.
		SNS: sns.NewFromConfig(cfg, func(o *sns.Options) {
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = 5
				so.MaxBackoff = 2 * time.Second
			})
		}),
		// The SDK's own retries; StopExecution is safe to repeat.
		StepFunctions: sfn.NewFromConfig(cfg),
	}
}

// dynamoDBBackoff starts at 25–50 ms and doubles up to 5 s, as DynamoDB
// advises (and as the v1 SDK did for it); the SDK's default starts near a
// second, which a Lambda pays in full on every throttle.
var dynamoDBBackoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) {
	d := 5 * time.Second
	if attempt < 8 {
		d = min(d, 50*time.Millisecond<<attempt)
	}
	return d/2 + rand.N(d/2+1), nil
})

// customEndpoints tells which services have a custom endpoint in the
// environment: "" for AWS_ENDPOINT_URL, "S3" for AWS_ENDPOINT_URL_S3, and so on.
func customEndpoints(environ []string) map[string]bool {
	const prefix = "AWS_ENDPOINT_URL"
	set := map[string]bool{}
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if value == "" || !strings.HasPrefix(name, prefix) {
			continue
		}
		set[strings.TrimPrefix(strings.TrimPrefix(name, prefix), "_")] = true
	}
	return set
}
