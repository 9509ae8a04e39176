package testenv

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/shared/config"
	"arcbench/shared/handlers"
	"arcbench/shared/model"
)

// Env is one test's world: its own tables and bucket on the shared servers,
// DynamoDB reached through a proxy, a CloudWatch stand-in, and the handlers'
// dependencies built exactly as a Lambda's main builds them.
type Env struct {
	Tables     Tables
	Bucket     string
	Proxy      *Proxy
	CloudWatch *CloudWatch
	DB         *dynamodb.Client // dynalite itself, for set-up and checks
	Deps       handlers.Deps

	// SNS records what the handlers publish; they publish only with
	// NOTIFY_TOPIC_ARN set.
	SNS *SNS
}

// Setup builds an Env. env holds extra environment variables (e.g. MAX_RETRIES).
func Setup(t testing.TB, env map[string]string) *Env {
	t.Helper()
	e := &Env{Proxy: NewProxy(t, Dynalite(t)), CloudWatch: NewCloudWatch(t), SNS: NewSNS(t), DB: DirectDynamoDB(t)}
	UseEndpoints(t, Endpoints{DynamoDB: e.Proxy.URL, S3: S3(t), CloudWatch: e.CloudWatch.URL, SNS: e.SNS.URL})
	t.Setenv("MAX_RETRIES", "")
	t.Setenv("CLOUDWATCH_NAMESPACE", "")
	t.Setenv(config.EnvRunBudgetUSD, "")
	t.Setenv(config.EnvStopAfterFailures, "")
	t.Setenv(config.EnvNotifyTopicARN, "")
	t.Setenv(config.EnvStage, "")
	e.Tables = NewTables(t)
	e.Bucket = NewBucket(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	deps, err := handlers.Load(context.Background())
	if err != nil {
		t.Fatalf("load handler configuration: %v", err)
	}
	e.Deps = deps
	return e
}

// Run reads a run record straight from dynalite; nil when there is none.
func (e *Env) Run(t testing.TB, runID string) map[string]types.AttributeValue {
	t.Helper()
	out, err := e.DB.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(e.Tables.Runs),
		Key:            map[string]types.AttributeValue{model.AttrRunID: &types.AttributeValueMemberS{Value: runID}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("get run %s: %v", runID, err)
	}
	return out.Item
}

// Task reads one task record; nil when there is none.
func (e *Env) Task(t testing.TB, runID, taskID string) map[string]types.AttributeValue {
	t.Helper()
	out, err := e.DB.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(e.Tables.Tasks),
		Key: map[string]types.AttributeValue{
			model.AttrRunID:  &types.AttributeValueMemberS{Value: runID},
			model.AttrTaskID: &types.AttributeValueMemberS{Value: taskID},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("get task %s/%s: %v", runID, taskID, err)
	}
	return out.Item
}

// Count is the number of items in a table.
func (e *Env) Count(t testing.TB, table string) int {
	t.Helper()
	n := 0
	p := dynamodb.NewScanPaginator(e.DB, &dynamodb.ScanInput{TableName: aws.String(table), Select: types.SelectCount})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		n += int(page.Count)
	}
	return n
}

// Tasks reads every task record of a run, decoded into maps.
func (e *Env) Tasks(t testing.TB, runID string) []map[string]any {
	t.Helper()
	var all []map[string]any
	p := dynamodb.NewQueryPaginator(e.DB, &dynamodb.QueryInput{
		TableName:                 aws.String(e.Tables.Tasks),
		KeyConditionExpression:    aws.String("run_id = :r"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": &types.AttributeValueMemberS{Value: runID}},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("query tasks of %s: %v", runID, err)
		}
		var items []map[string]any
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &items); err != nil {
			t.Fatal(err)
		}
		all = append(all, items...)
	}
	return all
}

// PutTask writes a task record as a worker would have left it.
func (e *Env) PutTask(t testing.TB, item map[string]any) {
	t.Helper()
	av, err := attributevalue.MarshalMap(item)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.DB.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.Tables.Tasks), Item: av}); err != nil {
		t.Fatalf("put task: %v", err)
	}
}

// S returns a string attribute, N a number attribute's text.
func S(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// N returns a number attribute's decimal text ("" when absent).
func N(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		return v.Value
	}
	return ""
}

// NewRun initializes a run of the given tasks (config "cfg") through the
// initialize handler and returns its id.
func (e *Env) NewRun(t testing.TB, ids ...string) string {
	t.Helper()
	out, err := handlers.NewInitialize(e.Deps).Handle(context.Background(), model.InitializeInput{ConfigName: "cfg", TaskIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	return out.RunID
}
