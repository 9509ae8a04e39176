package lambdaio

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"arcbench/shared/model"
)

type input struct {
	Name  string   `json:"name"`
	Items []string `json:"items"`
	Inner *struct {
		N int `json:"n"`
	} `json:"inner"`
}

// The error type name that reaches Step Functions is decided here: check it
// through aws-lambda-go's own handler, as the Lambda runtime calls it.
func TestErrorTypeThroughTheLambdaRuntime(t *testing.T) {
	cases := []struct {
		name, event string
		err         error
		wantType    string
		wantInMsg   string
	}{
		{"wrong type", `{"name":1}`, nil, "InvalidInputError", "name: must be a string"},
		{"wrong element type", `{"items":[1]}`, nil, "InvalidInputError", "items: must be a string"},
		{"nested wrong type", `{"inner":{"n":"x"}}`, nil, "InvalidInputError", "inner.n: must be an integer"},
		{"not an object", `"x"`, nil, "InvalidInputError", "event: must be an object"},
		{"handler's invalid input", `{}`, &model.InvalidInputError{Field: "name", Reason: "is required"}, "InvalidInputError", "name: is required"},
		{"wrapped run not found", `{}`, fmt.Errorf("load: %w", &model.RunNotFoundError{RunID: "r1"}), "RunNotFoundError", `load: run "r1" not found`},
		{"task not found", `{}`, &model.TaskNotFoundError{RunID: "r", TaskID: "t"}, "TaskNotFoundError", "task"},
		{"service fault", `{}`, fmt.Errorf("query tasks of r1: %w", errors.New("connection reset")), "ServiceError", "query tasks of r1: connection reset"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := lambda.NewHandler(Func(func(context.Context, input) (string, error) { return "ok", c.err }))
			_, err := h.Invoke(context.Background(), []byte(c.event))
			var lerr messages.InvokeResponse_Error
			if !errors.As(err, &lerr) {
				t.Fatalf("error %v (%T) is not a Lambda error", err, err)
			}
			if lerr.Type != c.wantType {
				t.Errorf("errorType %q, want %q", lerr.Type, c.wantType)
			}
			if !strings.Contains(lerr.Message, c.wantInMsg) {
				t.Errorf("errorMessage %q lacks %q", lerr.Message, c.wantInMsg)
			}
		})
	}
}

func TestRawReturnsTheResponseAsJSON(t *testing.T) {
	f := Raw(func(_ context.Context, in input) (map[string]int, error) {
		return map[string]int{"n": len(in.Items)}, nil
	})
	out, err := f(context.Background(), []byte(`{"items":["a","b"]}`))
	if err != nil || string(out) != `{"n":2}` {
		t.Errorf("got %s, %v", out, err)
	}
}

// Lambda itself refuses an Invoke whose payload is not JSON, so only the CLI
// and the local runner ever see malformed JSON; Raw types it too.
func TestRawTypesMalformedJSON(t *testing.T) {
	f := Raw(func(context.Context, input) (string, error) { return "", nil })
	_, err := f(context.Background(), []byte(`{"name":`))
	var lerr messages.InvokeResponse_Error
	if !errors.As(err, &lerr) || lerr.Type != "InvalidInputError" || !strings.Contains(lerr.Message, "event: malformed JSON") {
		t.Errorf("got %v", err)
	}
}
