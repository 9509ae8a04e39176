// Package testenv gives tests real servers: one dynalite per test binary,
// fresh tables per test, an S3-compatible server, a DynamoDB proxy that delays
// or throttles, and a CloudWatch stand-in that decodes the SDK's real requests.
package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/internal/emulators"
	"arcbench/shared/clients"
	"arcbench/shared/model"
)

var (
	mu       sync.Mutex
	dynalite *emulators.Dynalite
	s3srv    *emulators.S3
	tableSeq atomic.Int64
)

// Main runs a test binary's tests and stops whatever servers they started.
// Use it from TestMain: os.Exit(testenv.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if dynalite != nil {
		dynalite.Stop()
	}
	if s3srv != nil {
		s3srv.Stop()
	}
	return code
}

// Dynalite is the binary's dynalite endpoint, started on first use.
func Dynalite(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if dynalite == nil {
		d, err := emulators.StartDynalite(context.Background())
		if err != nil {
			t.Fatalf("start dynalite: %v", err)
		}
		dynalite = d
	}
	return dynalite.Endpoint
}

// S3 is the binary's S3-compatible server endpoint, started on first use.
func S3(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if s3srv == nil {
		s, err := emulators.StartS3()
		if err != nil {
			t.Fatalf("start S3 server: %v", err)
		}
		s3srv = s
	}
	return s3srv.Endpoint
}

// Endpoints are where a test's SDK clients send each service's requests.
type Endpoints struct {
	DynamoDB, S3, CloudWatch string
	// SNS is the SNS stand-in's ("" leaves AWS_ENDPOINT_URL_SNS unset).
	SNS string
}

// UseEndpoints points the SDK at the given servers the way a user would:
// through the SDK's own AWS_ENDPOINT_URL_<SERVICE> variables, with dummy
// credentials, so clients.New is exercised as in production.
func UseEndpoints(t testing.TB, e Endpoints) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_DYNAMODB":   e.DynamoDB,
		"AWS_ENDPOINT_URL_S3":         e.S3,
		"AWS_ENDPOINT_URL_CLOUDWATCH": e.CloudWatch,
		"AWS_ENDPOINT_URL_SNS":        e.SNS,
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  "us-east-1",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
}

// Clients builds the production clients for the current environment.
func Clients(t testing.TB) *clients.Clients {
	t.Helper()
	c, err := clients.New(context.Background())
	if err != nil {
		t.Fatalf("clients: %v", err)
	}
	return c
}

// DirectDynamoDB is a client that talks to dynalite itself (not through any
// proxy), for setting up and checking tables.
func DirectDynamoDB(t testing.TB) *dynamodb.Client {
	t.Helper()
	return clients.NewLocal(Dynalite(t)).DynamoDB
}

// DirectS3 is a client of the S3 server itself.
func DirectS3(t testing.TB) *s3.Client {
	t.Helper()
	return clients.NewLocal(S3(t)).S3
}

// Tables are the names of a test's own runs, tasks and rate-limits tables.
type Tables struct {
	Runs, Tasks, RateLimits string
}

// NewTables creates a fresh runs table (with its GSI), tasks table and
// rate-limits table, with the stack's keys, and points the handlers'
// (RUNS_TABLE, TASKS_TABLE) and the worker's (DYNAMODB_*_TABLE) variables at them.
func NewTables(t testing.TB) Tables {
	t.Helper()
	n := tableSeq.Add(1)
	tb := Tables{Runs: fmt.Sprintf("runs_%d_%d", os.Getpid(), n), Tasks: fmt.Sprintf("tasks_%d_%d", os.Getpid(), n),
		RateLimits: fmt.Sprintf("rate_limits_%d_%d", os.Getpid(), n)}
	if err := CreateTables(context.Background(), DirectDynamoDB(t), tb); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUNS_TABLE", tb.Runs)
	t.Setenv("TASKS_TABLE", tb.Tasks)
	t.Setenv("DYNAMODB_RUNS_TABLE", tb.Runs)
	t.Setenv("DYNAMODB_TASKS_TABLE", tb.Tasks)
	t.Setenv("DYNAMODB_RATE_LIMIT_TABLE", tb.RateLimits)
	return tb
}

// CreateTables creates the runs and tasks tables, and the rate-limits table when named.
func CreateTables(ctx context.Context, db *dynamodb.Client, tb Tables) error {
	s := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
	}
	key := func(name string, kt types.KeyType) types.KeySchemaElement {
		return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: kt}
	}
	inputs := []*dynamodb.CreateTableInput{{
		TableName:            aws.String(tb.Runs),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{s(model.AttrRunID), s(model.AttrConfigName), s(model.AttrCreatedAt)},
		KeySchema:            []types.KeySchemaElement{key(model.AttrRunID, types.KeyTypeHash)},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName:  aws.String(model.IndexConfigCreated),
			KeySchema:  []types.KeySchemaElement{key(model.AttrConfigName, types.KeyTypeHash), key(model.AttrCreatedAt, types.KeyTypeRange)},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	}, {
		TableName:            aws.String(tb.Tasks),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{s(model.AttrRunID), s(model.AttrTaskID)},
		KeySchema:            []types.KeySchemaElement{key(model.AttrRunID, types.KeyTypeHash), key(model.AttrTaskID, types.KeyTypeRange)},
	}}
	if tb.RateLimits != "" {
		inputs = append(inputs, &dynamodb.CreateTableInput{
			TableName:            aws.String(tb.RateLimits),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{s(model.AttrProvider)},
			KeySchema:            []types.KeySchemaElement{key(model.AttrProvider, types.KeyTypeHash)},
		})
	}
	for _, in := range inputs {
		if _, err := db.CreateTable(ctx, in); err != nil {
			return fmt.Errorf("create table %s: %w", *in.TableName, err)
		}
		w := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay = 10 * time.Millisecond
			o.MaxDelay = 100 * time.Millisecond
		})
		if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName}, 10*time.Second); err != nil {
			return fmt.Errorf("wait for table %s: %w", *in.TableName, err)
		}
	}
	return nil
}

// NewBucket creates a fresh bucket on the S3 server and sets S3_BUCKET to it.
func NewBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("bucket-%d-%d", os.Getpid(), tableSeq.Add(1))
	if _, err := DirectS3(t).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	t.Setenv("S3_BUCKET", name)
	return name
}
