package iam_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/internal/emulators"
	"arcbench/internal/iam"
	"arcbench/shared/clients"
)

const (
	account   = "000000000000"
	tasksARN  = "arn:aws:dynamodb:us-east-1:000000000000:table/tasks"
	namespace = "Arc/dev"
)

// A DynamoDB GetItem carries no cloudwatch:namespace; a PutMetricData to
// namespace does.
var (
	getItem = iam.Request{Action: "dynamodb:GetItem", Resources: []string{tasksARN}}
	putDev  = iam.Request{Action: "cloudwatch:PutMetricData", Resources: []string{"*"}, Context: map[string]string{"cloudwatch:namespace": namespace}}
)

// conditionHolds tells whether a Condition block (JSON) holds for req, as
// seen from an Allow statement (the request is allowed) and from a Deny
// statement beside an unconditional Allow (the request is refused by it).
func conditionHolds(t *testing.T, cond string, req iam.Request) (inAllow, inDeny bool) {
	t.Helper()
	allow := policy(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":`+cond+`}]}`)
	deny := policy(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
		{"Effect":"Deny","Action":"*","Resource":"*","Condition":`+cond+`}]}`)
	d := iam.Evaluate([]iam.Policy{deny}, req)
	return iam.Evaluate([]iam.Policy{allow}, req).Allowed, !d.Allowed && d.Explicit
}

type conditionCase struct {
	name  string
	cond  string
	req   iam.Request
	holds bool
}

func checkConditions(t *testing.T, cases []conditionCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inAllow, inDeny := conditionHolds(t, c.cond, c.req)
			if inAllow != c.holds {
				t.Errorf("Allow with %s: allowed %v, want %v", c.cond, inAllow, c.holds)
			}
			if inDeny != c.holds {
				t.Errorf("Deny with %s: denied %v, want %v", c.cond, inDeny, c.holds)
			}
		})
	}
}

// IAM User Guide, "Condition operators": "If the key that you specify in a
// policy condition is not present in the request context, the values do not
// match and the condition is false. If the policy condition requires that
// the key is not matched, such as StringNotLike or ArnNotLike, and the right
// key is not present, the condition is true." Each case is decided in an
// Allow statement and in a Deny statement.
func TestStringConditionOperatorsOnAbsentAndPresentKeys(t *testing.T) {
	checkConditions(t, []conditionCase{
		{"absent/StringEquals", `{"StringEquals":{"cloudwatch:namespace":"Arc/dev"}}`, getItem, false},
		{"absent/StringEqualsIgnoreCase", `{"StringEqualsIgnoreCase":{"cloudwatch:namespace":"Arc/dev"}}`, getItem, false},
		{"absent/StringLike", `{"StringLike":{"cloudwatch:namespace":"*"}}`, getItem, false},
		{"absent/StringNotEquals", `{"StringNotEquals":{"cloudwatch:namespace":"Arc/dev"}}`, getItem, true},
		{"absent/StringNotEqualsIgnoreCase", `{"StringNotEqualsIgnoreCase":{"cloudwatch:namespace":"Arc/dev"}}`, getItem, true},
		{"absent/StringNotLike", `{"StringNotLike":{"cloudwatch:namespace":"Arc/*"}}`, getItem, true},
		{"absent/StringNotLike star", `{"StringNotLike":{"cloudwatch:namespace":"*"}}`, getItem, true},
		{"present/StringEquals match", `{"StringEquals":{"cloudwatch:namespace":"Arc/dev"}}`, putDev, true},
		{"present/StringEquals other", `{"StringEquals":{"cloudwatch:namespace":"Arc/prod"}}`, putDev, false},
		{"present/StringEquals is case-sensitive", `{"StringEquals":{"cloudwatch:namespace":"arc/dev"}}`, putDev, false},
		{"present/StringNotEquals match", `{"StringNotEquals":{"cloudwatch:namespace":"Arc/dev"}}`, putDev, false},
		{"present/StringNotEquals other", `{"StringNotEquals":{"cloudwatch:namespace":"Arc/prod"}}`, putDev, true},
		{"present/StringEqualsIgnoreCase", `{"StringEqualsIgnoreCase":{"cloudwatch:namespace":"arc/DEV"}}`, putDev, true},
		{"present/StringNotEqualsIgnoreCase", `{"StringNotEqualsIgnoreCase":{"cloudwatch:namespace":"arc/DEV"}}`, putDev, false},
		{"present/StringLike", `{"StringLike":{"cloudwatch:namespace":"Arc/*"}}`, putDev, true},
		{"present/StringLike ?", `{"StringLike":{"cloudwatch:namespace":"Arc/d?v"}}`, putDev, true},
		{"present/StringNotLike", `{"StringNotLike":{"cloudwatch:namespace":"Arc/*"}}`, putDev, false},
		{"present/StringNotLike other", `{"StringNotLike":{"cloudwatch:namespace":"Other/*"}}`, putDev, true},
		{"present/key names are case-insensitive", `{"StringEquals":{"CloudWatch:NameSpace":"Arc/dev"}}`, putDev, true},
	})
}

// "If the policy key is present in the context of the request, process the
// key as specified in the policy. If the key is not present, evaluate the
// condition element as true."
func TestIfExistsOperators(t *testing.T) {
	checkConditions(t, []conditionCase{
		{"StringEqualsIfExists absent", `{"StringEqualsIfExists":{"cloudwatch:namespace":"Arc/prod"}}`, getItem, true},
		{"StringEqualsIfExists present, match", `{"StringEqualsIfExists":{"cloudwatch:namespace":"Arc/dev"}}`, putDev, true},
		{"StringEqualsIfExists present, other", `{"StringEqualsIfExists":{"cloudwatch:namespace":"Arc/prod"}}`, putDev, false},
		{"StringNotEqualsIfExists absent", `{"StringNotEqualsIfExists":{"cloudwatch:namespace":"Arc/dev"}}`, getItem, true},
		{"StringNotEqualsIfExists present, match", `{"StringNotEqualsIfExists":{"cloudwatch:namespace":"Arc/dev"}}`, putDev, false},
		{"StringNotEqualsIfExists present, other", `{"StringNotEqualsIfExists":{"cloudwatch:namespace":"Arc/prod"}}`, putDev, true},
		{"StringEqualsIgnoreCaseIfExists absent", `{"StringEqualsIgnoreCaseIfExists":{"cloudwatch:namespace":"x"}}`, getItem, true},
		{"StringEqualsIgnoreCaseIfExists present", `{"StringEqualsIgnoreCaseIfExists":{"cloudwatch:namespace":"ARC/DEV"}}`, putDev, true},
		{"StringNotEqualsIgnoreCaseIfExists absent", `{"StringNotEqualsIgnoreCaseIfExists":{"cloudwatch:namespace":"x"}}`, getItem, true},
		{"StringNotEqualsIgnoreCaseIfExists present", `{"StringNotEqualsIgnoreCaseIfExists":{"cloudwatch:namespace":"ARC/DEV"}}`, putDev, false},
		{"StringLikeIfExists absent", `{"StringLikeIfExists":{"cloudwatch:namespace":"Other/*"}}`, getItem, true},
		{"StringLikeIfExists present, match", `{"StringLikeIfExists":{"cloudwatch:namespace":"Arc/*"}}`, putDev, true},
		{"StringLikeIfExists present, other", `{"StringLikeIfExists":{"cloudwatch:namespace":"Other/*"}}`, putDev, false},
		{"StringNotLikeIfExists absent", `{"StringNotLikeIfExists":{"cloudwatch:namespace":"Arc/*"}}`, getItem, true},
		{"StringNotLikeIfExists present, match", `{"StringNotLikeIfExists":{"cloudwatch:namespace":"Arc/*"}}`, putDev, false},
	})
}

// "Use a Null condition operator to check if a condition key is absent at
// the time of authorization. In the policy statement, use either true (the
// key doesn't exist — it is null) or false (the key exists and its value is
// not null)."
func TestNullOperator(t *testing.T) {
	checkConditions(t, []conditionCase{
		{"true, absent", `{"Null":{"cloudwatch:namespace":"true"}}`, getItem, true},
		{"true, present", `{"Null":{"cloudwatch:namespace":"true"}}`, putDev, false},
		{"false, absent", `{"Null":{"cloudwatch:namespace":"false"}}`, getItem, false},
		{"false, present", `{"Null":{"cloudwatch:namespace":"false"}}`, putDev, true},
		{"a JSON boolean", `{"Null":{"cloudwatch:namespace":true}}`, getItem, true},
		{"an empty value is present", `{"Null":{"cloudwatch:namespace":"false"}}`,
			iam.Request{Action: "cloudwatch:PutMetricData", Resources: []string{"*"}, Context: map[string]string{"cloudwatch:namespace": ""}}, true},
	})
}

// IAM User Guide, "Conditions with multiple context keys or values": values
// of one key are ORed (NORed for a negated operator), keys and operators
// ANDed.
func TestMultipleValuesKeysAndOperators(t *testing.T) {
	checkConditions(t, []conditionCase{
		{"OR of values, one matches", `{"StringEquals":{"cloudwatch:namespace":["Arc/prod","Arc/dev"]}}`, putDev, true},
		{"OR of values, none matches", `{"StringEquals":{"cloudwatch:namespace":["Arc/prod","Arc/test"]}}`, putDev, false},
		{"OR of values, absent", `{"StringLike":{"cloudwatch:namespace":["Arc/*","*"]}}`, getItem, false},
		{"NOR of values, one matches", `{"StringNotEquals":{"cloudwatch:namespace":["Arc/prod","Arc/dev"]}}`, putDev, false},
		{"NOR of values, none matches", `{"StringNotEquals":{"cloudwatch:namespace":["Arc/prod","Arc/test"]}}`, putDev, true},
		{"NOR of patterns, one matches", `{"StringNotLike":{"cloudwatch:namespace":["Other/*","Arc/d*"]}}`, putDev, false},
		{"NOR of values, absent", `{"StringNotEquals":{"cloudwatch:namespace":["Arc/prod","Arc/dev"]}}`, getItem, true},
		{"NOR ignoring case", `{"StringNotEqualsIgnoreCase":{"cloudwatch:namespace":["x","ARC/DEV"]}}`, putDev, false},
		{"Null, both values", `{"Null":{"cloudwatch:namespace":["true","false"]}}`, getItem, true},
		{"AND of operators, both hold", `{"StringLike":{"cloudwatch:namespace":"Arc/*"},"StringNotEquals":{"cloudwatch:namespace":"Arc/prod"}}`, putDev, true},
		{"AND of operators, one fails", `{"StringLike":{"cloudwatch:namespace":"Arc/*"},"StringNotEquals":{"cloudwatch:namespace":"Arc/dev"}}`, putDev, false},
		{"AND of keys, one absent", `{"StringLike":{"cloudwatch:namespace":"Arc/*","s3:prefix":"*"}}`, putDev, false},
		{"AND of negated keys, one absent", `{"StringNotLike":{"cloudwatch:namespace":"Other/*","s3:prefix":"secret/*"}}`, putDev, true},
		{"AND of negated keys, one matches", `{"StringNotLike":{"cloudwatch:namespace":"Arc/*","s3:prefix":"secret/*"}}`, putDev, false},
		{"AND with Null and IfExists", `{"Null":{"s3:prefix":"true"},"StringEqualsIfExists":{"cloudwatch:namespace":"Arc/dev"}}`, putDev, true},
	})
}

// What the check cannot evaluate exactly is refused when the policy is
// loaded: operators whose keys it does not supply (ARNs, booleans,
// numbers...), keys it does not supply at all, malformed values, policy
// variables.
func TestParsePolicyRefusesConditionsItCannotEvaluateExactly(t *testing.T) {
	for cond, want := range map[string]string{
		`{"ArnEquals":{"cloudwatch:namespace":"arn:aws:s3:::b"}}`:    `"ArnEquals"`,
		`{"ArnLike":{"cloudwatch:namespace":"arn:aws:s3:::*"}}`:      `"ArnLike"`,
		`{"ArnNotEquals":{"cloudwatch:namespace":"arn:aws:s3:::b"}}`: `"ArnNotEquals"`,
		`{"ArnNotLike":{"cloudwatch:namespace":"arn:aws:s3:::*"}}`:   `"ArnNotLike"`,
		`{"Bool":{"cloudwatch:namespace":"true"}}`:                   `"Bool"`,
		`{"NumericNotEquals":{"cloudwatch:namespace":"1"}}`:          `"NumericNotEquals"`,
		`{"NullIfExists":{"cloudwatch:namespace":"true"}}`:           `"NullIfExists"`,
		`{"ForAllValues:StringEquals":{"cloudwatch:namespace":"x"}}`: `"ForAllValues:StringEquals"`,
		`{"ForAnyValue:StringNotLike":{"cloudwatch:namespace":"x"}}`: `"ForAnyValue:StringNotLike"`,
		`{"Null":{"cloudwatch:namespace":"yes"}}`:                    `"yes"`,
		`{"StringEquals":{"aws:SecureTransport":"true"}}`:            `"aws:SecureTransport"`,
		`{"StringNotEquals":{"aws:PrincipalTag/team":"a"}}`:          `"aws:PrincipalTag/team"`,
		`{"StringEquals":{"cloudwatch:namespace":[]}}`:               "no value",
		`{"StringEquals":{"cloudwatch:namespace":5}}`:                "5",
		`{"StringEquals":{"cloudwatch:namespace":{"a":"b"}}}`:        "cloudwatch:namespace",
		`{"StringLike":{"s3:prefix":"home/${aws:username}/*"}}`:      "${aws:username}",
	} {
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":` + cond + `}]}`
		var v any
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatal(err)
		}
		if _, err := iam.ParsePolicy("p", v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %s", cond, err, want)
		}
	}
	// A policy variable in a resource is substituted under 2012-10-17, and a
	// literal string under the older language.
	var v any
	_ = json.Unmarshal([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:userid}/*"}]}`), &v)
	if _, err := iam.ParsePolicy("p", v); err == nil || !strings.Contains(err.Error(), "${aws:userid}") {
		t.Errorf("a policy variable in a resource: %v, want it refused", err)
	}
	p := policy(t, `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${x}/*"}]}`)
	if !iam.Evaluate([]iam.Policy{p}, iam.Request{Action: "s3:GetObject", Resources: []string{"arn:aws:s3:::b/${x}/k"}}).Allowed {
		t.Error("under 2008-10-17 ${x} is a literal string")
	}
}

// A worker whose policy denies everything but metrics in its namespace
// (a Deny with StringNotEquals on cloudwatch:namespace) is refused its S3
// reads, whose context has no such key, as AWS refuses them.
func TestGuardAppliesADenyWhoseNegatedConditionNamesAnAbsentKey(t *testing.T) {
	p := policy(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["s3:GetObject","cloudwatch:PutMetricData"],"Resource":["arn:aws:s3:::bkt/*","*"]},
		{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"cloudwatch:namespace":"Arc/dev"}}}]}`)
	g := iam.NewGuard(account, []*iam.Principal{{Role: "Worker", Account: account, Policies: []iam.Policy{p}}}, "local")
	rec := httptest.NewRecorder()
	g.Check(&fakeS3{}).ServeHTTP(rec, signed("GET", "/bkt/exists", "Worker"))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "<Code>AccessDenied</Code>") ||
		!strings.Contains(rec.Body.String(), "with an explicit deny in an identity-based policy") {
		t.Errorf("GetObject under a Deny whose negated condition names an absent key: %d %s, want S3's AccessDenied, an explicit deny", rec.Code, rec.Body)
	}
	if d := g.Denials(); len(d) != 1 || d[0].Reason != "an explicit deny" {
		t.Errorf("denials %v, want the explicit deny", d)
	}
}

// ListBucket carries s3:prefix when the request names a prefix, so a policy
// that conditions on it decides; without a prefix the check cannot tell what
// AWS puts in the context, and refuses loudly rather than guess.
func TestGuardEvaluatesS3PrefixOnListBucket(t *testing.T) {
	allowTasks := policy(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::bkt","Condition":{"StringLike":{"s3:prefix":"tasks/*"}}}]}`)
	denyOthers := policy(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::bkt"},
		{"Effect":"Deny","Action":"s3:ListBucket","Resource":"*","Condition":{"StringNotLike":{"s3:prefix":"tasks/*"}}}]}`)
	g := iam.NewGuard(account, []*iam.Principal{
		{Role: "Tasks", Account: account, Policies: []iam.Policy{allowTasks}},
		{Role: "DenyOthers", Account: account, Policies: []iam.Policy{denyOthers}},
	}, "local")
	h := g.Check(&fakeS3{})
	for _, c := range []struct {
		path, role string
		status     int
	}{
		{"/bkt?list-type=2&prefix=tasks%2Fevaluation%2F", "Tasks", 200},
		{"/bkt?list-type=2&prefix=runs%2F", "Tasks", 403},
		{"/bkt?list-type=2", "Tasks", 403},
		{"/bkt?list-type=2&prefix=tasks%2F", "DenyOthers", 200},
		{"/bkt?list-type=2&prefix=runs%2F", "DenyOthers", 403},
		{"/bkt?list-type=2", "DenyOthers", 403},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, signed("GET", c.path, c.role))
		if rec.Code != c.status {
			t.Errorf("GET %s as %s: %d, want %d (%s)", c.path, c.role, rec.Code, c.status, rec.Body)
		}
	}
	var reasons []string
	for _, d := range g.Denials() {
		reasons = append(reasons, d.Principal+": "+d.Reason)
	}
	got := strings.Join(reasons, "\n")
	if len(reasons) != 4 || !strings.Contains(got, "Tasks: no statement allows it") || !strings.Contains(got, "DenyOthers: an explicit deny") ||
		strings.Count(got, "s3:prefix") != 2 {
		t.Errorf("denials:\n%s\nwant two refusals on the policies, two naming s3:prefix as undecidable", got)
	}
}

func dynamoRequest(t *testing.T, target, body string) *http.Request {
	t.Helper()
	return request(t, "POST", "/", target, body)
}

func classify(t *testing.T, r *http.Request) (iam.Call, error) {
	t.Helper()
	body, _ := io.ReadAll(r.Body)
	return iam.Classify(r, body, account)
}

// DynamoDB reads its members by their exact names (and dynalite reads them
// with JSON.parse, the last duplicate winning): a body that names a table
// twice, or under a name that differs from TableName only by case, is
// refused as unclassifiable, in either order.
func TestClassifyRefusesAmbiguousDynamoDBMembers(t *testing.T) {
	for _, body := range []string{
		`{"TableName":"runs","tablename":"tasks","Item":{}}`,
		`{"tablename":"tasks","TableName":"runs","Item":{}}`,
		`{"TableName":"tasks","tablename":"runs","Item":{}}`,
		`{"TABLENAME":"tasks","TableName":"runs","Item":{}}`,
		`{"TableName":"tasks","TableName":"runs","Item":{}}`,
		`{"TableName":"runs","TableName":"tasks","Item":{}}`,
		`{"tableName":"tasks","Item":{}}`,
		`{"TableName":"tasks","Item":{},"Item":{}}`,
	} {
		_, err := classify(t, dynamoRequest(t, "DynamoDB_20120810.PutItem", body))
		if err == nil {
			t.Errorf("PutItem %s: classified, want it refused", body)
		}
	}
	for _, c := range []struct{ target, body string }{
		{"DynamoDB_20120810.Query", `{"TableName":"runs","IndexName":"i","indexName":"j"}`},
		{"DynamoDB_20120810.BatchWriteItem", `{"RequestItems":{"tasks":[]},"requestItems":{"runs":[]}}`},
		{"DynamoDB_20120810.BatchWriteItem", `{"requestItems":{"runs":[]},"RequestItems":{"tasks":[]}}`},
		{"DynamoDB_20120810.BatchWriteItem", `{"RequestItems":{"tasks":[]},"RequestItems":{"runs":[]}}`},
		{"DynamoDB_20120810.BatchGetItem", `{"RequestItems":{"tasks":{},"tasks":{}}}`},
	} {
		if _, err := classify(t, dynamoRequest(t, c.target, c.body)); err == nil {
			t.Errorf("%s %s: classified, want it refused", c.target, c.body)
		}
	}
}

// Each operation's resources are what the service acts on: IndexName counts
// for Query and Scan only, RequestItems for the batch operations only, and
// an operation, API version or table name the check does not know is refused.
func TestClassifyResolvesEachDynamoDBOperationsResources(t *testing.T) {
	const table = "arn:aws:dynamodb:us-east-1:000000000000:table/"
	for _, c := range []struct {
		op, body  string
		resources []string
	}{
		{"GetItem", `{"TableName":"tasks","Key":{}}`, []string{table + "tasks"}},
		{"GetItem", `{"TableName":"tasks","IndexName":"runs-index","Key":{}}`, []string{table + "tasks"}},
		{"GetItem", `{"TableName":"runs","RequestItems":{"tasks":{}},"Key":{}}`, []string{table + "runs"}},
		{"PutItem", `{"TableName":"runs","IndexName":"x-index","Item":{}}`, []string{table + "runs"}},
		{"UpdateItem", `{"TableName":"runs","RequestItems":{"tasks":{}},"Key":{}}`, []string{table + "runs"}},
		{"DeleteItem", `{"TableName":"runs","Key":{}}`, []string{table + "runs"}},
		{"Query", `{"TableName":"runs"}`, []string{table + "runs"}},
		{"Query", `{"TableName":"runs","IndexName":"execution-index"}`, []string{table + "runs/index/execution-index"}},
		{"Scan", `{"TableName":"tasks","IndexName":"status-index"}`, []string{table + "tasks/index/status-index"}},
		{"Scan", `{"TableName":"tasks"}`, []string{table + "tasks"}},
		{"BatchWriteItem", `{"RequestItems":{"tasks":[],"runs":[]}}`, []string{table + "runs", table + "tasks"}},
		{"BatchWriteItem", `{"TableName":"rate","RequestItems":{"tasks":[]}}`, []string{table + "tasks"}},
		{"BatchGetItem", `{"RequestItems":{"runs":{},"Runs":{}}}`, []string{table + "Runs", table + "runs"}},
		{"DescribeTable", `{"TableName":"tasks"}`, []string{table + "tasks"}},
		{"CreateTable", `{"TableName":"tasks","KeySchema":[],"GlobalSecondaryIndexes":[{"IndexName":"i"}]}`, []string{table + "tasks"}},
		{"DeleteTable", `{"TableName":"tasks"}`, []string{table + "tasks"}},
		{"UpdateTable", `{"TableName":"tasks"}`, []string{table + "tasks"}},
		{"DescribeTimeToLive", `{"TableName":"tasks"}`, []string{table + "tasks"}},
		{"ListTables", `{}`, []string{"*"}},
	} {
		call, err := classify(t, dynamoRequest(t, "DynamoDB_20120810."+c.op, c.body))
		if err != nil {
			t.Errorf("%s %s: %v", c.op, c.body, err)
			continue
		}
		got := slices.Sorted(slices.Values(call.Resources))
		if strings.Join(got, ",") != strings.Join(c.resources, ",") || call.Action != "dynamodb:"+c.op {
			t.Errorf("%s %s: %s on %v, want dynamodb:%s on %v", c.op, c.body, call.Action, got, c.op, c.resources)
		}
	}
	for _, c := range []struct{ target, body string }{
		{"DynamoDB_20111205.GetItem", `{"TableName":"tasks","Key":{}}`},
		{"DynamoDB_20120810.ListTagsOfResource", `{"ResourceArn":"` + table + `tasks"}`},
		{"DynamoDB_20120810.TagResource", `{"ResourceArn":"` + table + `tasks","Tags":[]}`},
		{"DynamoDB_20120810.GetItem", `{"TableName":"` + table + `tasks","Key":{}}`},
		{"DynamoDB_20120810.GetItem", `{"TableName":"ta","Key":{}}`},
		{"DynamoDB_20120810.GetItem", `{"TableName":"tasks/index/x","Key":{}}`},
		{"DynamoDB_20120810.Query", `{"TableName":"tasks","IndexName":"*"}`},
		{"DynamoDB_20120810.BatchGetItem", `{"RequestItems":{"tasks/x":{}}}`},
		{"DynamoDB_20120810.BatchGetItem", `{"RequestItems":{}}`},
		{"DynamoDB_20120810.GetItem", `{"TableName":null,"Key":{}}`},
		{"DynamoDB_20120810.GetItem", `[{"TableName":"tasks"}]`},
		{"DynamoDB_20120810.GetItem", `{"TableName":"tasks"} {"TableName":"runs"}`},
		{"DynamoDB_20120810.GetItem.x", `{"TableName":"tasks"}`},
	} {
		if call, err := classify(t, dynamoRequest(t, c.target, c.body)); err == nil {
			t.Errorf("%s %s: classified as %s on %v, want it refused", c.target, c.body, call.Action, call.Resources)
		}
	}
}

// Through the real endpoint: a worker allowed the tasks table alone names
// the runs table in TableName and the tasks table in a case variant, which
// dynalite (like DynamoDB) ignores. The write must be refused with DynamoDB's
// AccessDeniedException and never reach the runs table.
func TestGuardRefusesADynamoDBBodyThatNamesTwoTables(t *testing.T) {
	stack, err := emulators.StartStack(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Stop()
	ctx := context.Background()
	admin := clients.NewLocal(stack.Endpoint)
	for _, name := range []string{"tasks", "runs"} {
		_, err = admin.DynamoDB.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: types.KeyTypeHash}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := dynamodb.NewTableExistsWaiter(admin.DynamoDB, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
		}).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	p := policy(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["dynamodb:PutItem","dynamodb:GetItem"],"Resource":"`+tasksARN+`"}]}`)
	g := iam.NewGuard(account, []*iam.Principal{{Role: "Worker", Account: account, Policies: []iam.Policy{p}}}, "local")
	stack.SetCheck(g.Check)
	for _, body := range []string{
		`{"TableName":"runs","tablename":"tasks","Item":{"k":{"S":"evil-1"}}}`,
		`{"tablename":"tasks","TableName":"runs","Item":{"k":{"S":"evil-2"}}}`,
		`{"TableName":"tasks","TableName":"runs","Item":{"k":{"S":"evil-3"}}}`,
	} {
		req, _ := http.NewRequest("POST", stack.Endpoint+"/", strings.NewReader(body))
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=Worker/20261202/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x")
		req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
		req.Header.Set("X-Amz-Target", "DynamoDB_20120810.PutItem")
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Amzn-ErrorType") != "AccessDeniedException" {
			t.Errorf("PutItem %s: %d %s, want DynamoDB's AccessDeniedException", body, resp.StatusCode, out)
		}
	}
	scan, err := admin.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("runs")})
	if err != nil {
		t.Fatal(err)
	}
	if scan.Count != 0 {
		t.Errorf("the runs table holds %d items the worker may not write", scan.Count)
	}
	for _, d := range g.Denials() {
		if d.Action != "?" {
			t.Errorf("denial %v: want it refused as unclassifiable", d)
		}
	}
}

// S3 keeps a key as written: it has no folders, so `..` is two dots, not a
// parent. The local S3 server (its folder backend) resolves dot segments and
// empty segments, so such keys are refused, with S3's AccessDenied naming the
// key, before it sees them; so are encoded slashes and dots that decode to
// them.
func TestClassifyRefusesS3KeysTheLocalServerWouldResolve(t *testing.T) {
	for _, path := range []string{
		"/bkt/runs/x/submissions/../../../tasks/evaluation/t.json",
		"/bkt/runs/x/submissions/%2e%2e/%2E%2E/../tasks/evaluation/t.json",
		"/bkt/runs/x/submissions/..%2F..%2F..%2Ftasks/evaluation/t.json",
		"/bkt/runs/x/submissions/%2e%2e%2f%2e%2e%2f%2e%2e%2ftasks/evaluation/t.json",
		"/bkt/runs/x/submissions/./t.json",
		"/bkt/runs/x/submissions/.%2Ft.json",
		"/bkt/runs/x/submissions//t.json",
		"/bkt/runs/x/submissions/%2Ft.json",
		"/bkt//runs/x/submissions/t.json",
		"/bkt/runs/x/submissions/t.json/",
		"/bkt/..",
		"/bkt/.",
		"/../bkt/runs/x/submissions/t.json",
		"/%2e%2e/bkt/runs/x/submissions/t.json",
		"/bkt%2Fruns/x/submissions/t.json",
	} {
		for _, method := range []string{"PUT", "GET", "HEAD", "DELETE"} {
			if call, err := classify(t, signed(method, path, "Worker")); err == nil {
				t.Errorf("%s %s: classified as %s on %v, want it refused", method, path, call.Action, call.Resources)
			}
		}
	}
	// What S3 and the local server both keep as written is classified as the
	// key the server stores.
	for path, key := range map[string]string{
		"/bkt/runs/x/submissions/%252e%252e.json":       "runs/x/submissions/%2e%2e.json",
		"/bkt/runs/x/submissions/..t.json":              "runs/x/submissions/..t.json",
		"/bkt/runs/x/submissions/.../t.json":            "runs/x/submissions/.../t.json",
		"/bkt/runs/x/submissions/a%20b.json":            "runs/x/submissions/a b.json",
		"/bkt/runs/x/submissions/sub%2Fdir/t.json":      "runs/x/submissions/sub/dir/t.json",
		"/bkt/runs/x/submissions/%2E..%2Et.json":        "runs/x/submissions/....t.json",
		"/bkt/runs/x/submissions/t.json?x-id=PutObject": "runs/x/submissions/t.json",
	} {
		call, err := classify(t, signed("PUT", path, "Worker"))
		if err != nil || call.Action != "s3:PutObject" || len(call.Resources) != 1 || call.Resources[0] != "arn:aws:s3:::bkt/"+key {
			t.Errorf("PUT %s: %v %v, want s3:PutObject on %s", path, call.Resources, err, key)
		}
	}
}

// Through the guard in front of the real S3 server with its folder backend,
// as a local run serves it: a worker allowed runs/*/submissions/*.json alone
// cannot reach tasks/ with dot segments, plain or encoded; it gets S3's
// AccessDenied naming the key, and the task object is untouched. A key the
// server keeps as written is stored under the key the check authorized.
func TestGuardKeepsS3KeysAsTheServerStoresThem(t *testing.T) {
	s3h, err := emulators.NewS3Handler(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := policy(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::bkt/runs/*/submissions/*.json"}]}`)
	g := iam.NewGuard(account, []*iam.Principal{{Role: "Worker", Account: account, Policies: []iam.Policy{p}}}, "local")
	h := g.Check(s3h)
	do := func(method, path, role, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+role+"/20261202/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x")
		if method == "PUT" {
			r.Header.Set("Content-Length", fmt.Sprint(len(body)))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	if rec := do("PUT", "/bkt", "local", ""); rec.Code != 200 {
		t.Fatalf("create bucket: %d %s", rec.Code, rec.Body)
	}
	const task = `{"train":[],"test":[]}`
	if rec := do("PUT", "/bkt/tasks/evaluation/t.json", "local", task); rec.Code != 200 {
		t.Fatalf("seed the task: %d %s", rec.Code, rec.Body)
	}
	for _, path := range []string{
		"/bkt/runs/x/submissions/../../../tasks/evaluation/t.json",
		"/bkt/runs/x/submissions/%2e%2e/%2e%2e/%2e%2e/tasks/evaluation/t.json",
		"/bkt/runs/x/submissions/..%2F..%2F..%2Ftasks/evaluation/t.json",
		"/bkt/runs/x/submissions/%2E%2E%2F%2E%2E%2F%2E%2E%2Ftasks%2Fevaluation%2Ft.json",
		"/bkt/runs/x/submissions/./../../../tasks/evaluation/t.json",
		"/bkt/runs/x/submissions//../../../tasks/evaluation/t.json",
	} {
		rec := do("PUT", path, "Worker", `{"overwritten":true}`)
		body := rec.Body.String()
		if rec.Code != http.StatusForbidden || rec.Header().Get("Content-Type") != "application/xml" ||
			!strings.Contains(body, "<Code>AccessDenied</Code>") || !strings.Contains(body, "tasks/evaluation/t.json") {
			t.Errorf("PUT %s: %d %s, want S3's AccessDenied naming the key", path, rec.Code, body)
		}
	}
	if rec := do("GET", "/bkt/tasks/evaluation/t.json", "local", ""); rec.Body.String() != task {
		t.Errorf("the task object now holds %q, want %q untouched", rec.Body, task)
	}
	for _, d := range g.Denials() {
		if d.Principal != "Worker" || !strings.Contains(d.Reason, "tasks/evaluation/t.json") {
			t.Errorf("denial %v: want the worker's, its reason naming the key", d)
		}
	}
	if n := len(g.Denials()); n != 6 {
		t.Errorf("%d denials, want 6", n)
	}
	// Keys S3 and the server both keep as written: stored under the key that
	// was authorized, read back by it.
	for path, key := range map[string]string{
		"/bkt/runs/x/submissions/%252e%252e.json": "runs/x/submissions/%252e%252e.json",
		"/bkt/runs/x/submissions/...json":         "runs/x/submissions/...json",
		"/bkt/runs/x/submissions/sub%2Fa.json":    "runs/x/submissions/sub/a.json",
	} {
		if rec := do("PUT", path, "Worker", path); rec.Code != 200 {
			t.Errorf("PUT %s: %d %s", path, rec.Code, rec.Body)
			continue
		}
		if rec := do("GET", "/bkt/"+key, "Worker", ""); rec.Code != 200 || rec.Body.String() != path {
			t.Errorf("GET /bkt/%s after PUT %s: %d %q", key, path, rec.Code, rec.Body)
		}
	}
}
