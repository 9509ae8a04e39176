// Package lambdaio is the JSON boundary every handler sits behind, the same
// for Lambda, `arcbench invoke` and the local runner: it decodes the event
// into the handler's input type (bad JSON and mistyped fields become
// InvalidInputError naming the field) and turns the handler's error into the
// Lambda error whose type name the state machine matches on.
package lambdaio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"arcbench/shared/model"
)

// HandlerFunc is a handler's typed method, e.g. (*initialize.Handler).Handle.
type HandlerFunc[I, O any] func(context.Context, I) (O, error)

// RawFunc takes an event as JSON and returns the response as JSON.
type RawFunc func(ctx context.Context, event []byte) ([]byte, error)

// Func wraps a typed handler for lambda.StartHandlerFunc: the event arrives raw
// so that decoding errors are ours to type.
func Func[I, O any](h HandlerFunc[I, O]) func(context.Context, json.RawMessage) (O, error) {
	return func(ctx context.Context, event json.RawMessage) (O, error) {
		var in I
		if err := Decode(event, &in); err != nil {
			var zero O
			return zero, AsLambdaError(err)
		}
		out, err := h(ctx, in)
		if err != nil {
			return out, AsLambdaError(err)
		}
		return out, nil
	}
}

// Raw wraps a typed handler as JSON in, JSON out.
func Raw[I, O any](h HandlerFunc[I, O]) RawFunc {
	f := Func(h)
	return func(ctx context.Context, event []byte) ([]byte, error) {
		out, err := f(ctx, event)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, AsLambdaError(fmt.Errorf("encode response: %w", err))
		}
		return b, nil
	}
}

// Decode reads an event into v. Malformed JSON, a JSON value that is not an
// object, and a field of the wrong JSON type are *model.InvalidInputError.
func Decode(event []byte, v any) error {
	err := json.Unmarshal(event, v)
	var (
		syntax   *json.SyntaxError
		mistyped *json.UnmarshalTypeError
		invalid  *model.InvalidInputError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &invalid):
		return invalid
	case errors.As(err, &syntax):
		return &model.InvalidInputError{Field: "event", Reason: fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, err)}
	case errors.As(err, &mistyped):
		field := mistyped.Field
		if field == "" {
			field = "event"
		}
		return &model.InvalidInputError{Field: field, Reason: fmt.Sprintf("must be %s, not a JSON %s", describe(mistyped.Type), mistyped.Value)}
	default:
		return &model.InvalidInputError{Field: "event", Reason: err.Error()}
	}
}

// describe names a Go type the way a JSON author thinks of it.
func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list of " + plural(t.Elem())
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	}
	return t.String()
}

func plural(t reflect.Type) string {
	d := describe(t)
	for _, article := range []string{"a ", "an "} {
		if len(d) > len(article) && d[:len(article)] == article {
			return d[len(article):] + "s"
		}
	}
	return d
}

// AsLambdaError gives an error the type name the state machine matches on:
// InvalidInputError, RunNotFoundError, TaskNotFoundError, or ServiceError for
// everything else (AWS faults, which are worth retrying). The message keeps
// the whole wrapped context.
func AsLambdaError(err error) error {
	var lerr messages.InvokeResponse_Error
	if errors.As(err, &lerr) {
		return lerr
	}
	return messages.InvokeResponse_Error{Type: ErrorType(err), Message: err.Error()}
}

// ErrorType is the Lambda error type name of err.
func ErrorType(err error) string {
	var (
		invalid  *model.InvalidInputError
		noRun    *model.RunNotFoundError
		noTask   *model.TaskNotFoundError
		partial  *model.InconsistentRunError
		busy     *model.RunBusyError
		reported messages.InvokeResponse_Error
	)
	switch {
	case errors.As(err, &reported):
		return reported.Type
	case errors.As(err, &invalid):
		return model.ErrInvalidInput
	case errors.As(err, &noRun):
		return model.ErrRunNotFound
	case errors.As(err, &noTask):
		return model.ErrTaskNotFound
	case errors.As(err, &partial):
		return model.ErrInconsistent
	case errors.As(err, &busy):
		return model.ErrRunBusy
	}
	return model.ErrService
}

// Logger is the default logger with the Lambda request id, when there is one.
func Logger(ctx context.Context) *slog.Logger {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return slog.Default().With("request_id", lc.AwsRequestID)
	}
	return slog.Default()
}
