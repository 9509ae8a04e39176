package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/spf13/cobra"

	"arcbench/shared/handlers"
	"arcbench/shared/lambdaio"
	"arcbench/shared/model"
)

func newInvokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "invoke NAME",
		Short: "Run one handler once, in-process, on an event read from stdin",
		Long: `Run one handler (` + strings.Join(model.Handlers, ", ") + `) once, with the
configuration Lambda would give it (the same environment variables: RUNS_TABLE,
TASKS_TABLE, S3_BUCKET, MAX_RETRIES, CLOUDWATCH_NAMESPACE, AWS_ENDPOINT_URL...).
The event is JSON on stdin; the response is JSON on stdout (exit 0). A handler
error prints {"errorType": ..., "errorMessage": ...} as Lambda would and exits 1.`,
		Example: `  echo '{"config_name":"gpt-test","task_ids":["a","b"]}' | arcbench invoke initialize`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !handlers.Known(name) {
				return &exitError{code: 2, err: fmt.Errorf("unknown handler %q: want one of %s", name, strings.Join(model.Handlers, ", "))}
			}
			event, err := io.ReadAll(cmd.InOrStdin())
			if err != nil {
				return fmt.Errorf("read event from stdin: %w", err)
			}
			deps, err := handlers.Load(cmd.Context())
			if err != nil {
				return err
			}
			h, err := handlers.Raw(name, deps)
			if err != nil {
				return err
			}
			out, err := h(cmd.Context(), event)
			if err != nil {
				var lerr messages.InvokeResponse_Error
				if !errors.As(lambdaio.AsLambdaError(err), &lerr) {
					return err
				}
				b, _ := json.Marshal(lerr)
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return &exitError{code: 1}
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(out))
			return nil
		},
	}
}
