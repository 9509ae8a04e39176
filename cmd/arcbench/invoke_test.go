package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "arcbench-cli")
	if err != nil {
		panic(err)
	}
	if binary, err = testenv.BuildCLI(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := testenv.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// arcbench runs the CLI with the test's environment and returns stdout,
// stderr and the exit code.
func arcbench(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func TestInvokePrintsTheResponse(t *testing.T) {
	env := testenv.Setup(t, nil)
	out, stderr, code := arcbench(t, `{"config_name":"cli","task_ids":["a","b"]}`, "invoke", "initialize")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var resp map[string]any
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("stdout is not JSON: %q", out)
	}
	runID, _ := resp["run_id"].(string)
	if testenv.S(env.Run(t, runID), "status") != "RUNNING" || resp["total_tasks"] != float64(2) {
		t.Errorf("response %s; run record %v", out, env.Run(t, runID))
	}
	if !strings.Contains(stderr, `"run_id":"`+runID+`"`) {
		t.Errorf("stderr lacks a JSON log line with the run id: %q", stderr)
	}
}

func TestInvokeErrorIsLambdasShape(t *testing.T) {
	testenv.Setup(t, nil)
	out, _, code := arcbench(t, `{"config_name":"","task_ids":["a"]}`, "invoke", "initialize")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	var resp struct{ ErrorType, ErrorMessage string }
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("stdout is not JSON: %q", out)
	}
	if resp.ErrorType != "InvalidInputError" || !strings.Contains(resp.ErrorMessage, "config_name") {
		t.Errorf("got %+v", resp)
	}
	var raw map[string]any
	_ = json.Unmarshal([]byte(out), &raw)
	if _, ok := raw["errorType"]; !ok || len(raw) != 2 {
		t.Errorf("want exactly errorType and errorMessage, got %s", out)
	}
}

func TestInvokeStopsOnMalformedConfiguration(t *testing.T) {
	testenv.Setup(t, nil)
	t.Setenv("MAX_RETRIES", "abc")
	out, stderr, code := arcbench(t, `{"run_id":"r","task_id":"t","error":{"Error":"E","Cause":"c"}}`, "invoke", "handle-error")
	if code == 0 || out != "" {
		t.Errorf("exit %d, stdout %q: want a failure and no response", code, out)
	}
	if !strings.Contains(stderr, "MAX_RETRIES") {
		t.Errorf("stderr %q does not name MAX_RETRIES", stderr)
	}
}

func TestInvokeUnknownHandler(t *testing.T) {
	_, stderr, code := arcbench(t, `{}`, "invoke", "nope")
	if code != 2 || !strings.Contains(stderr, "initialize, check-task, handle-error, aggregate, complete") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// With AWS_ENDPOINT_URL alone, every client talks to one endpoint, as with
// LocalStack: here a router that sends each request to the server for its
// protocol. S3 must use path-style addressing for this to work.
func TestOneEndpointForEveryService(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"CLOUDWATCH_NAMESPACE": "OneEndpoint"})
	proxyTo := func(raw string) *httputil.ReverseProxy {
		u, _ := url.Parse(raw)
		return httputil.NewSingleHostReverseProxy(u)
	}
	dynamo, s3srv, cw := proxyTo(testenv.Dynalite(t)), proxyTo(testenv.S3(t)), proxyTo(env.CloudWatch.URL)
	router := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("X-Amz-Target") != "":
			dynamo.ServeHTTP(w, r)
		case r.Header.Get("Smithy-Protocol") != "":
			cw.ServeHTTP(w, r)
		default:
			s3srv.ServeHTTP(w, r)
		}
	}))
	defer router.Close()
	for _, k := range []string{"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_CLOUDWATCH"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_ENDPOINT_URL", router.URL)
	t.Setenv("AWS_REGION", "") // an emulator endpoint is enough; no region needed

	out, stderr, code := arcbench(t, `{"config_name":"one","task_ids":["a"]}`, "invoke", "initialize")
	if code != 0 {
		t.Fatalf("initialize: exit %d: %s", code, stderr)
	}
	var init struct {
		RunID string `json:"run_id"`
	}
	_ = json.Unmarshal([]byte(out), &init)
	out, stderr, code = arcbench(t, `{"run_id":"`+init.RunID+`"}`, "invoke", "aggregate")
	if code != 0 {
		t.Fatalf("aggregate: exit %d: %s", code, stderr)
	}
	var agg map[string]any
	_ = json.Unmarshal([]byte(out), &agg)
	if _, err := testenv.DirectS3(t).HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String("runs/" + init.RunID + "/results/aggregated.json"),
	}); err != nil {
		t.Errorf("aggregated.json not in the bucket: %v", err)
	}
	agg["run_id"] = init.RunID
	event, _ := json.Marshal(map[string]any{"run_id": init.RunID, "aggregation": agg})
	if _, stderr, code = arcbench(t, string(event), "invoke", "complete"); code != 0 {
		t.Fatalf("complete: exit %d: %s", code, stderr)
	}
	// initialize's RunStarted, then complete's run metrics.
	if puts := env.CloudWatch.Puts(); len(puts) != 2 || puts[0].Namespace != "OneEndpoint" || puts[1].Namespace != "OneEndpoint" {
		t.Errorf("CloudWatch got %+v through the shared endpoint", puts)
	}
	if testenv.S(env.Run(t, init.RunID), "status") != "COMPLETED" {
		t.Errorf("run not completed")
	}
}
