// Command check-task is the check-task Lambda; its logic lives in arcbench/shared/handlers.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"arcbench/shared/handlers"
	"arcbench/shared/lambdaio"
)

func main() {
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stdout, nil)))
	deps, err := handlers.Load(context.Background())
	if err != nil {
		slog.Error("cannot start", "error", err.Error())
		os.Exit(1)
	}
	lambda.StartHandlerFunc(lambdaio.Func(handlers.NewCheckTask(deps).Handle))
}
