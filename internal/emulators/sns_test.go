package emulators_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"

	"arcbench/internal/emulators"
	"arcbench/shared/clients"
)

const topic = "arn:aws:sns:us-east-1:000000000000:arcbench-local-run-ended"

// recorder serves h and keeps a copy of every request it received, body and
// all, to check what the SDK really sent.
type recorder struct {
	h    http.Handler
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, r.Clone(context.Background()))
	rec.body = append(rec.body, b)
	rec.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(b))
	rec.h.ServeHTTP(w, r)
}

func snsClient(endpoint string) *sns.Client {
	return sns.NewFromConfig(aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}, func(o *sns.Options) { o.Retryer = retry.AddWithMaxAttempts(retry.NewStandard(), 1) })
}

// The SDK's Publish is a form-encoded POST (the AWS Query protocol) signed
// for "sns"; the stand-in reads it whole and answers so the call succeeds.
func TestSNSStandInDecodesTheSDKsPublish(t *testing.T) {
	st := &emulators.SNS{}
	rec := &recorder{h: st}
	srv := httptest.NewServer(rec)
	defer srv.Close()

	out, err := snsClient(srv.URL).Publish(context.Background(), &sns.PublishInput{
		TopicArn: aws.String(topic),
		Subject:  aws.String("arcbench run-x: COMPLETED, score 41.7%"),
		Message:  aws.String("line one\nline two & <three> = 100%"),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"status": {DataType: aws.String("String"), StringValue: aws.String("COMPLETED")},
			"score":  {DataType: aws.String("Number"), StringValue: aws.String("41.7")},
			"blob":   {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2, 255}},
		},
	})
	if err != nil {
		t.Fatalf("publish: %v (stand-in: %v)", err, st.Malformed())
	}

	// What went over the wire.
	if len(rec.reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(rec.reqs))
	}
	r, body := rec.reqs[0], rec.body[0]
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.URL.RawQuery != "" {
		t.Errorf("request %s %s", r.Method, r.URL)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q", ct)
	}
	if !emulators.IsSNS(r) || emulators.SigningService(r) != "sns" {
		t.Errorf("not recognized as SNS: Authorization %q", r.Header.Get("Authorization"))
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"Action": "Publish", "Version": "2010-03-31", "TopicArn": topic,
		"Subject": "arcbench run-x: COMPLETED, score 41.7%", "Message": "line one\nline two & <three> = 100%",
	} {
		if got := form[k]; len(got) != 1 || got[0] != want {
			t.Errorf("form %s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(string(body), "MessageAttributes.entry.1.Name=") ||
		!strings.Contains(string(body), "MessageAttributes.entry.3.Value.DataType=") {
		t.Errorf("message attributes not flattened as expected: %s", body)
	}

	// What the stand-in kept and answered.
	got := st.Published()
	if len(got) != 1 {
		t.Fatalf("published %+v", got)
	}
	p := got[0]
	if p.TopicArn != topic || p.Subject != "arcbench run-x: COMPLETED, score 41.7%" || p.Message != "line one\nline two & <three> = 100%" {
		t.Errorf("published %+v", p)
	}
	if p.MessageID == "" || aws.ToString(out.MessageId) != p.MessageID {
		t.Errorf("MessageId %q answered, %q kept", aws.ToString(out.MessageId), p.MessageID)
	}
	a := p.MessageAttributes
	if a["status"].DataType != "String" || a["status"].StringValue != "COMPLETED" ||
		a["score"].DataType != "Number" || a["score"].StringValue != "41.7" ||
		a["blob"].DataType != "Binary" || !bytes.Equal(a["blob"].BinaryValue, []byte{0, 1, 2, 255}) || len(a) != 3 {
		t.Errorf("attributes %+v", a)
	}
	if m := st.Malformed(); len(m) != 0 {
		t.Errorf("malformed: %v", m)
	}
}

// snsErrorBody is SNS's XML error, as the Query protocol writes it.
type snsErrorBody struct {
	XMLName   xml.Name `xml:"http://sns.amazonaws.com/doc/2010-03-31/ ErrorResponse"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

// Requests SNS would refuse get SNS's errors, which the SDK raises as its
// modeled exceptions; Fail answers InternalError.
func TestSNSStandInAnswersSNSErrors(t *testing.T) {
	st := &emulators.SNS{}
	srv := httptest.NewServer(st)
	defer srv.Close()
	client := snsClient(srv.URL)
	ctx := context.Background()
	publish := func(in sns.PublishInput) error {
		_, err := client.Publish(ctx, &in)
		return err
	}

	var invalid *types.InvalidParameterException
	for name, in := range map[string]sns.PublishInput{
		"a subject with a line break": {TopicArn: aws.String(topic), Message: aws.String("m"), Subject: aws.String("two\nlines")},
		"a 100-character subject":     {TopicArn: aws.String(topic), Message: aws.String("m"), Subject: aws.String(strings.Repeat("s", 100))},
		"an empty message":            {TopicArn: aws.String(topic), Message: aws.String("")},
		"a message over 256 KiB":      {TopicArn: aws.String(topic), Message: aws.String(strings.Repeat("x", 262145))},
		"a topic that is no ARN":      {TopicArn: aws.String("run-ended"), Message: aws.String("m")},
		"a target, not a topic":       {TargetArn: aws.String(topic), Message: aws.String("m")},
	} {
		if err := publish(in); !errors.As(err, &invalid) || invalid.ErrorCode() != "InvalidParameter" {
			t.Errorf("%s: %v, want InvalidParameter", name, err)
		}
	}
	if err := publish(sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("m"), Subject: aws.String(strings.Repeat("s", 99))}); err != nil {
		t.Errorf("a 99-character subject: %v", err)
	}
	var badValue *types.InvalidParameterValueException
	err := publish(sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("m"),
		MessageAttributes: map[string]types.MessageAttributeValue{"n": {DataType: aws.String("Number"), StringValue: aws.String("many")}}})
	if !errors.As(err, &badValue) {
		t.Errorf("a Number attribute that is no number: %v, want InvalidParameterValue", err)
	}

	st.CreateTopic(topic)
	var notFound *types.NotFoundException
	if err := publish(sns.PublishInput{TopicArn: aws.String(topic + "-other"), Message: aws.String("m")}); !errors.As(err, &notFound) {
		t.Errorf("an unknown topic: %v, want NotFound", err)
	}

	st.Fail = true
	var internal *types.InternalErrorException
	if err := publish(sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("m")}); !errors.As(err, &internal) {
		t.Errorf("Fail: %v, want InternalError", err)
	}
	st.Fail = false

	// Another action: refused, in SNS's shape.
	var api smithy.APIError
	if _, err := client.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("t")}); !errors.As(err, &api) || api.ErrorCode() != "InvalidAction" {
		t.Errorf("CreateTopic: %v, want InvalidAction", err)
	}

	if got := st.Published(); len(got) != 1 || got[0].Subject != strings.Repeat("s", 99) {
		t.Errorf("published %+v, want the one valid Publish", got)
	}

	// Requests no SDK sends, answered in SNS's XML error shape.
	for name, c := range map[string]struct {
		method, path, contentType, body, code string
	}{
		"GET":               {"GET", "/?Action=Publish&Version=2010-03-31&TopicArn=" + topic + "&Message=m", "", "", "InvalidParameter"},
		"JSON":              {"POST", "/", "application/json", `{"Action":"Publish"}`, "InvalidParameter"},
		"no action":         {"POST", "/", "application/x-www-form-urlencoded", "Version=2010-03-31&TopicArn=" + topic + "&Message=m", "InvalidAction"},
		"another version":   {"POST", "/", "application/x-www-form-urlencoded", "Action=Publish&Version=2009-01-01&TopicArn=" + topic + "&Message=m", "InvalidAction"},
		"TopicArn twice":    {"POST", "/", "application/x-www-form-urlencoded", "Action=Publish&Version=2010-03-31&TopicArn=" + topic + "&TopicArn=x&Message=m", "InvalidParameter"},
		"topicarn":          {"POST", "/", "application/x-www-form-urlencoded", "Action=Publish&Version=2010-03-31&topicarn=" + topic + "&Message=m", "InvalidParameter"},
		"unknown parameter": {"POST", "/", "application/x-www-form-urlencoded", "Action=Publish&Version=2010-03-31&TopicArn=" + topic + "&Message=m&Colour=red", "InvalidParameter"},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e snsErrorBody
		if err := xml.Unmarshal(b, &e); err != nil || resp.StatusCode != http.StatusBadRequest || e.Code != c.code || e.Type != "Sender" || e.RequestID == "" || e.Message == "" {
			t.Errorf("%s: %d %s, want 400 %s in SNS's ErrorResponse", name, resp.StatusCode, b, c.code)
		}
	}
	if got := st.Published(); len(got) != 1 {
		t.Errorf("published %d, want 1", len(got))
	}
}

// The Stack routes what is signed for sns to the stand-in, and nothing else:
// an S3 POST with a form body still reaches S3. The SNS client every process
// builds reaches it, also through AWS_ENDPOINT_URL_SNS alone.
func TestStackRoutesSNSToTheStandIn(t *testing.T) {
	ctx := context.Background()
	stack, err := emulators.StartStack(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Stop()
	c := clients.NewLocal(stack.Endpoint)
	if _, err := c.SNS.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("hello"), Subject: aws.String("hi")}); err != nil {
		t.Fatalf("publish: %v (stand-in: %v)", err, stack.SNS.Malformed())
	}
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	// An object whose content looks like an SNS Publish is S3's.
	form := "Action=Publish&Version=2010-03-31&TopicArn=" + url.QueryEscape(topic) + "&Message=m"
	if _, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("form"),
		Body: strings.NewReader(form), ContentType: aws.String("application/x-www-form-urlencoded")}); err != nil {
		t.Fatalf("S3 PutObject of a form: %v", err)
	}

	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // nothing listens there
	t.Setenv("AWS_ENDPOINT_URL_SNS", stack.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	fromEnv, err := clients.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fromEnv.SNS.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("via AWS_ENDPOINT_URL_SNS")}); err != nil {
		t.Fatalf("publish through AWS_ENDPOINT_URL_SNS: %v", err)
	}

	got := stack.Published()
	if len(got) != 2 || got[0].Message != "hello" || got[0].Subject != "hi" || got[1].Message != "via AWS_ENDPOINT_URL_SNS" {
		t.Errorf("published %+v", got)
	}
	if m := stack.SNS.Malformed(); len(m) != 0 {
		t.Errorf("malformed: %v", m)
	}
}
