package iam_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"

	"arcbench/internal/emulators"
	"arcbench/internal/iam"
	"arcbench/shared/clients"
)

const (
	runEnded = "arn:aws:sns:us-east-1:000000000000:arcbench-dev-RunEnded-1A2B3C"
	other    = "arn:aws:sns:us-east-1:000000000000:someone-elses"
)

// snsCall is the request the SDK sends for a Publish, as the check gets it.
func snsCall(t *testing.T, in *sns.PublishInput) (*http.Request, []byte) {
	t.Helper()
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		got = r.Clone(context.Background())
		r.Body = io.NopCloser(bytes.NewReader(body))
		(&emulators.SNS{}).ServeHTTP(w, r)
	}))
	defer srv.Close()
	if _, err := clients.NewLocalAs(srv.URL, "Notifier").SNS.Publish(context.Background(), in); err != nil {
		t.Fatalf("publish: %v", err)
	}
	return got, body
}

// A Publish is sns:Publish on its TopicArn, exactly as given; any other SNS
// request is not classified.
func TestClassifySNSPublish(t *testing.T) {
	r, body := snsCall(t, &sns.PublishInput{TopicArn: aws.String(runEnded), Message: aws.String("m"), Subject: aws.String("s"),
		MessageAttributes: map[string]types.MessageAttributeValue{"status": {DataType: aws.String("String"), StringValue: aws.String("FAILED")}}})
	call, err := iam.Classify(r, body, "000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if call.Service != iam.SNS || call.AccessKey != "Notifier" || call.Action != "sns:Publish" ||
		strings.Join(call.Resources, ",") != runEnded || len(call.Context) != 0 || len(call.Unknown) != 0 {
		t.Errorf("classified %+v, want sns:Publish on %s", call, runEnded)
	}

	form := func(body string) *http.Request {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=Notifier/20261202/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=x")
		return r
	}
	for name, body := range map[string]string{
		"another action":        "Action=CreateTopic&Version=2010-03-31&Name=t",
		"a batch":               "Action=PublishBatch&Version=2010-03-31&TopicArn=" + runEnded,
		"TopicArn twice":        "Action=Publish&Version=2010-03-31&TopicArn=" + other + "&TopicArn=" + runEnded + "&Message=m",
		"a case variant":        "Action=Publish&Version=2010-03-31&TopicArn=" + runEnded + "&topicArn=" + other + "&Message=m",
		"a target, not a topic": "Action=Publish&Version=2010-03-31&TargetArn=" + runEnded + "&Message=m",
		"no topic":              "Action=Publish&Version=2010-03-31&Message=m",
		"no version":            "Action=Publish&TopicArn=" + runEnded + "&Message=m",
	} {
		if call, err := iam.Classify(form(body), []byte(body), "000000000000"); err == nil {
			t.Errorf("%s: classified as %s on %v, want an error: the check must not guess", name, call.Action, call.Resources)
		} else if call.Service != iam.SNS {
			t.Errorf("%s: service %q, want sns (its refusal is answered in SNS's shape)", name, call.Service)
		}
	}
}

// Through Guard.Check, with the SDK: a Publish the policy allows reaches the
// stand-in; one it does not is answered as SNS answers an IAM denial (403
// AuthorizationError, "SNS:Publish" in its message), as is an SNS action the
// check does not know; an unknown key gets InvalidClientTokenId.
func TestGuardChecksSNSPublish(t *testing.T) {
	p := policy(t, `{"Statement":[{"Effect":"Allow","Action":"sns:Publish","Resource":"`+runEnded+`"}]}`)
	g := iam.NewGuard("000000000000", []*iam.Principal{{Role: "Notifier", Account: "000000000000", Policies: []iam.Policy{p}}}, "local")
	st := &emulators.SNS{}
	srv := httptest.NewServer(g.Check(st))
	defer srv.Close()
	ctx := context.Background()
	notifier := clients.NewLocalAs(srv.URL, "Notifier").SNS

	if _, err := notifier.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(runEnded), Message: aws.String("run ended"), Subject: aws.String("arcbench run-x: COMPLETED")}); err != nil {
		t.Errorf("allowed Publish: %v", err)
	}

	_, err := notifier.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(other), Message: aws.String("m")})
	var denied *types.AuthorizationErrorException
	var resp *awshttp.ResponseError
	want := "User: arn:aws:sts::000000000000:assumed-role/Notifier/arcbench-local is not authorized to perform: SNS:Publish on resource: " +
		other + " because no identity-based policy allows the SNS:Publish action"
	if !errors.As(err, &denied) || denied.ErrorCode() != "AuthorizationError" || denied.ErrorMessage() != want {
		t.Errorf("refused Publish: %v, want SNS's AuthorizationError %q", err, want)
	}
	if !errors.As(err, &resp) || resp.HTTPStatusCode() != http.StatusForbidden {
		t.Errorf("refused Publish: %v, want HTTP 403", err)
	}

	if _, err := notifier.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("t")}); !errors.As(err, &denied) ||
		!strings.Contains(denied.ErrorMessage(), "does not know SNS CreateTopic") {
		t.Errorf("CreateTopic: %v, want a loud AuthorizationError", err)
	}

	var api smithy.APIError
	if _, err := clients.NewLocalAs(srv.URL, "Nobody").SNS.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(runEnded), Message: aws.String("m")}); !errors.As(err, &api) || api.ErrorCode() != "InvalidClientTokenId" {
		t.Errorf("unknown key: %v, want InvalidClientTokenId", err)
	}

	if _, err := clients.NewLocalAs(srv.URL, "local").SNS.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(other), Message: aws.String("trusted")}); err != nil {
		t.Errorf("the trusted key was checked: %v", err)
	}

	if got := st.Published(); len(got) != 2 || got[0].TopicArn != runEnded || got[1].Message != "trusted" {
		t.Errorf("published %+v, want the allowed and the trusted Publish only", got)
	}
	if got := g.Authorized()["Notifier"]; got != 1 {
		t.Errorf("%d requests of Notifier authorized, want 1", got)
	}
	var got []string
	for _, d := range g.Denials() {
		got = append(got, d.Principal+" "+d.Action+" "+d.Resource)
	}
	wantDenials := []string{"Notifier sns:Publish " + other, "Notifier ? /", "Nobody sns:Publish " + runEnded}
	if strings.Join(got, "\n") != strings.Join(wantDenials, "\n") {
		t.Errorf("denials:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantDenials, "\n"))
	}
}
