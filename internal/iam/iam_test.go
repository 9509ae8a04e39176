package iam_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"arcbench/internal/emulators"
	"arcbench/internal/iam"
	"arcbench/shared/clients"
	"arcbench/shared/metrics"
)

func policy(t *testing.T, doc string) iam.Policy {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	p, err := iam.ParsePolicy("test", v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMatchIsIAMsWildcard(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "anything:at/all", true},
		{"arn:aws:s3:::b/runs/*/items.json", "arn:aws:s3:::b/runs/r1/items.json", true},
		{"arn:aws:s3:::b/runs/*/items.json", "arn:aws:s3:::b/runs/a/b/items.json", true}, // * spans slashes
		{"arn:aws:s3:::b/runs/*/items.json", "arn:aws:s3:::b/runs/r1/items.jsonx", false},
		{"arn:aws:s3:::b/tasks/*/*.json", "arn:aws:s3:::b/tasks/evaluation/x.json", true},
		{"arn:aws:s3:::b/tasks/*/*.json", "arn:aws:s3:::b/tasks/x.json", false},
		{"secret:name-??????", "secret:name-AbC123", true},
		{"secret:name-??????", "secret:name-AbC12", false},
		{"a*b*c", "aXbYbZc", true},
		{"", "", true},
		{"", "x", false},
	} {
		if got := iam.Match(c.pattern, c.s); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestEvaluateAllowsWhatSomeStatementAllowsAndNoneDenies(t *testing.T) {
	p := policy(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:UpdateItem"],"Resource":"arn:aws:dynamodb:r:1:table/tasks"},
		{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::b/*"]},
		{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"},
		{"Effect":"Allow","NotAction":"iam:*","Resource":"arn:aws:sqs:*"},
		{"Effect":"Allow","Action":"cloudwatch:PutMetricData","Resource":"*","Condition":{"StringEquals":{"cloudwatch:namespace":"Arc/dev"}}},
		{"Effect":"Allow","Action":"logs:PutLogEvents","NotResource":"arn:aws:logs:*:*:log-group:secret*"}
	]}`)
	for _, c := range []struct {
		name string
		req  iam.Request
		want bool
	}{
		{"allowed action and resource", iam.Request{Action: "dynamodb:GetItem", Resources: []string{"arn:aws:dynamodb:r:1:table/tasks"}}, true},
		{"actions are case-insensitive", iam.Request{Action: "DynamoDB:getitem", Resources: []string{"arn:aws:dynamodb:r:1:table/tasks"}}, true},
		{"another table", iam.Request{Action: "dynamodb:GetItem", Resources: []string{"arn:aws:dynamodb:r:1:table/runs"}}, false},
		{"an index is not its table", iam.Request{Action: "dynamodb:GetItem", Resources: []string{"arn:aws:dynamodb:r:1:table/tasks/index/i"}}, false},
		{"an action not granted", iam.Request{Action: "dynamodb:Scan", Resources: []string{"arn:aws:dynamodb:r:1:table/tasks"}}, false},
		{"every resource must be allowed", iam.Request{Action: "dynamodb:GetItem", Resources: []string{"arn:aws:dynamodb:r:1:table/tasks", "arn:aws:dynamodb:r:1:table/runs"}}, false},
		{"wildcard action", iam.Request{Action: "s3:PutObject", Resources: []string{"arn:aws:s3:::b/k"}}, true},
		{"an explicit deny wins", iam.Request{Action: "s3:DeleteObject", Resources: []string{"arn:aws:s3:::b/k"}}, false},
		{"NotAction", iam.Request{Action: "sqs:SendMessage", Resources: []string{"arn:aws:sqs:r:1:q"}}, true},
		{"NotAction excludes", iam.Request{Action: "iam:PassRole", Resources: []string{"arn:aws:sqs:r:1:q"}}, false},
		{"condition met", iam.Request{Action: "cloudwatch:PutMetricData", Resources: []string{"*"}, Context: map[string]string{"cloudwatch:namespace": "Arc/dev"}}, true},
		{"condition not met", iam.Request{Action: "cloudwatch:PutMetricData", Resources: []string{"*"}, Context: map[string]string{"cloudwatch:namespace": "Arc/prod"}}, false},
		{"condition key absent", iam.Request{Action: "cloudwatch:PutMetricData", Resources: []string{"*"}}, false},
		{"NotResource", iam.Request{Action: "logs:PutLogEvents", Resources: []string{"arn:aws:logs:r:1:log-group:app"}}, true},
		{"NotResource excludes", iam.Request{Action: "logs:PutLogEvents", Resources: []string{"arn:aws:logs:r:1:log-group:secrets"}}, false},
		{"no resource at all", iam.Request{Action: "s3:PutObject"}, false},
	} {
		if d := iam.Evaluate([]iam.Policy{p}, c.req); d.Allowed != c.want {
			t.Errorf("%s: allowed %v, want %v (%+v)", c.name, d.Allowed, c.want, d)
		}
	}
	if d := iam.Evaluate([]iam.Policy{p}, iam.Request{Action: "s3:DeleteObject", Resources: []string{"arn:aws:s3:::b/k"}}); !d.Explicit || d.Resource != "arn:aws:s3:::b/k" {
		t.Errorf("deny decision %+v: want explicit, naming the resource", d)
	}
}

// What the check cannot evaluate is refused when the policies are loaded,
// never silently allowed or denied.
func TestParsePolicyRefusesWhatItDoesNotUnderstand(t *testing.T) {
	for doc, want := range map[string]string{
		`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"1.2.3.4"}}}]}`: `"IpAddress"`,
		`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"ForAnyValue:StringLike":{"k":"v"}}}]}`:     `"ForAnyValue:StringLike"`,
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}`:                                      `"Principal"`,
		`{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}`:                                                                     "Resource",
		`{"Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}`:                                                      "Maybe",
		`{"Statement":[],"Extra":1}`: `"Extra"`,
	} {
		var v any
		_ = json.Unmarshal([]byte(doc), &v)
		if _, err := iam.ParsePolicy("p", v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %s", doc, err, want)
		}
	}
}

func request(t *testing.T, method, url, target string, body string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, url, strings.NewReader(body))
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=SomeRole/20261202/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x")
	if target != "" {
		r.Header.Set("X-Amz-Target", target)
		r.Header.Set("Content-Type", "application/x-amz-json-1.0")
	}
	return r
}

func TestClassifyNamesActionAndResources(t *testing.T) {
	const table = "arn:aws:dynamodb:us-east-1:000000000000:table/"
	for _, c := range []struct {
		r         *http.Request
		action    string
		resources []string
	}{
		{request(t, "POST", "/", "DynamoDB_20120810.GetItem", `{"TableName":"tasks","Key":{}}`), "dynamodb:GetItem", []string{table + "tasks"}},
		{request(t, "POST", "/", "DynamoDB_20120810.Query", `{"TableName":"runs","IndexName":"execution-index"}`), "dynamodb:Query", []string{table + "runs/index/execution-index"}},
		{request(t, "POST", "/", "DynamoDB_20120810.BatchWriteItem", `{"RequestItems":{"tasks":[]}}`), "dynamodb:BatchWriteItem", []string{table + "tasks"}},
		{request(t, "GET", "/bucket/tasks/evaluation/a.json?x-id=GetObject", "", ""), "s3:GetObject", []string{"arn:aws:s3:::bucket/tasks/evaluation/a.json"}},
		{request(t, "HEAD", "/bucket/k", "", ""), "s3:GetObject", []string{"arn:aws:s3:::bucket/k"}},
		{request(t, "PUT", "/bucket/runs/r/items.json?x-id=PutObject", "", "[]"), "s3:PutObject", []string{"arn:aws:s3:::bucket/runs/r/items.json"}},
		{request(t, "GET", "/bucket?list-type=2&prefix=tasks%2F", "", ""), "s3:ListBucket", []string{"arn:aws:s3:::bucket"}},
		{request(t, "DELETE", "/bucket/k", "", ""), "s3:DeleteObject", []string{"arn:aws:s3:::bucket/k"}},
		{request(t, "POST", "/bucket/big?uploads", "", ""), "s3:PutObject", []string{"arn:aws:s3:::bucket/big"}},
	} {
		body := new(bytes.Buffer)
		_, _ = body.ReadFrom(c.r.Body)
		call, err := iam.Classify(c.r, body.Bytes(), "000000000000")
		if err != nil {
			t.Errorf("%s %s: %v", c.r.Method, c.r.URL, err)
			continue
		}
		if call.AccessKey != "SomeRole" || call.Action != c.action || strings.Join(call.Resources, ",") != strings.Join(c.resources, ",") {
			t.Errorf("%s %s: %s %s on %v, want %s on %v", c.r.Method, c.r.URL, call.AccessKey, call.Action, call.Resources, c.action, c.resources)
		}
	}
	for _, r := range []*http.Request{
		request(t, "POST", "/", "DynamoDB_20120810.TransactWriteItems", `{"TransactItems":[]}`),
		request(t, "POST", "/bucket?delete", "", ""),
		request(t, "PUT", "/bucket/k?tagging", "", ""),
	} {
		body := new(bytes.Buffer)
		_, _ = body.ReadFrom(r.Body)
		if _, err := iam.Classify(r, body.Bytes(), "0"); err == nil {
			t.Errorf("%s %s (%s): classified, want an error: the check must not guess", r.Method, r.URL, r.Header.Get("X-Amz-Target"))
		}
	}
}

// A refused request gets the service's own error, the one the SDK raises on
// AWS, and is recorded; an allowed one reaches the service.
func TestGuardAnswersAsEachServiceDoes(t *testing.T) {
	stack, err := emulators.StartStack(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Stop()
	admin := clients.NewLocal(stack.Endpoint)
	if _, err := admin.S3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	_, err = admin.DynamoDB.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName: aws.String("tasks"), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := policy(t, `{"Statement":[
		{"Effect":"Allow","Action":"dynamodb:PutItem","Resource":"arn:aws:dynamodb:us-east-1:000000000000:table/tasks"},
		{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/public/*"},
		{"Effect":"Allow","Action":"cloudwatch:PutMetricData","Resource":"*","Condition":{"StringEquals":{"cloudwatch:namespace":"Mine"}}}]}`)
	lister := policy(t, `{"Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::bkt","arn:aws:s3:::bkt/*"]}]}`)
	g := iam.NewGuard("000000000000", []*iam.Principal{{Role: "Worker", Account: "000000000000", Policies: []iam.Policy{p}},
		{Role: "Lister", Account: "000000000000", Policies: []iam.Policy{lister}}}, "local")
	stack.SetCheck(g.Check)
	worker := clients.NewLocalAs(stack.Endpoint, "Worker")
	ctx := context.Background()
	item := map[string]types.AttributeValue{"k": &types.AttributeValueMemberS{Value: "1"}}

	if _, err := worker.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("tasks"), Item: item}); err != nil {
		t.Errorf("allowed PutItem: %v", err)
	}
	_, err = worker.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("tasks"), Key: item})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDeniedException" || !strings.Contains(api.ErrorMessage(), "is not authorized to perform: dynamodb:GetItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/tasks") {
		t.Errorf("refused GetItem: %v, want DynamoDB's AccessDeniedException with AWS's message", err)
	}
	_, err = worker.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("private/x")})
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDenied" {
		t.Errorf("refused GetObject: %v, want S3's AccessDenied", err)
	}
	// A missing key: NoSuchKey only for a principal that may list the
	// bucket; AccessDenied, as on AWS, for one that may only get objects.
	_, err = worker.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("public/x")})
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDenied" {
		t.Errorf("allowed GetObject of a missing key without s3:ListBucket: %v, want AccessDenied", err)
	}
	_, err = clients.NewLocalAs(stack.Endpoint, "Lister").S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("public/x")})
	if !errors.As(err, &api) || api.ErrorCode() != "NoSuchKey" {
		t.Errorf("allowed GetObject of a missing key with s3:ListBucket: %v, want it to reach the server (NoSuchKey)", err)
	}
	mine := &metrics.Publisher{CloudWatch: worker.CloudWatch, Namespace: "Mine"}
	if err := mine.PublishRun(ctx, metrics.Run{ConfigName: "c", TotalCostUSD: "0", At: time.Now()}); err != nil {
		t.Errorf("allowed PutMetricData: %v", err)
	}
	other := &metrics.Publisher{CloudWatch: worker.CloudWatch, Namespace: "Other"}
	if err := other.PublishRun(ctx, metrics.Run{ConfigName: "c", TotalCostUSD: "0", At: time.Now()}); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("PutMetricData to another namespace: %v, want AccessDenied", err)
	}
	if _, err := clients.NewLocalAs(stack.Endpoint, "Nobody").DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("tasks"), Item: item}); !errors.As(err, &api) || api.ErrorCode() != "UnrecognizedClientException" {
		t.Errorf("unknown key: %v, want UnrecognizedClientException", err)
	}
	if _, err := admin.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("tasks"), Key: item}); err != nil {
		t.Errorf("the trusted key was checked: %v", err)
	}

	if got := g.Authorized()["Worker"]; got != 3 {
		t.Errorf("%d requests of Worker authorized, want 3", got)
	}
	var got []string
	for _, d := range g.Denials() {
		got = append(got, d.Principal+" "+d.Action+" "+d.Resource)
	}
	want := []string{
		"Worker dynamodb:GetItem arn:aws:dynamodb:us-east-1:000000000000:table/tasks",
		"Worker s3:GetObject arn:aws:s3:::bkt/private/x",
		"Worker cloudwatch:PutMetricData *",
		"Nobody dynamodb:PutItem arn:aws:dynamodb:us-east-1:000000000000:table/tasks",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("denials:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if m := g.MissingKeys(); len(m) != 1 || m[0].Principal != "Worker" || m[0].Resource != "arn:aws:s3:::bkt" {
		t.Errorf("missing keys answered AccessDenied: %v, want Worker's one", m)
	}
}
