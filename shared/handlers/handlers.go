// Package handlers builds the Lambda handlers from one process's
// configuration and clients: what each functions/<name>/main.go, `arcbench
// invoke` and the local runner share, so all three run the same code.
package handlers

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"arcbench/shared/clients"
	"arcbench/shared/config"
	"arcbench/shared/handlers/aggregate"
	"arcbench/shared/handlers/checktask"
	"arcbench/shared/handlers/complete"
	"arcbench/shared/handlers/handleerror"
	"arcbench/shared/handlers/initialize"
	"arcbench/shared/lambdaio"
	"arcbench/shared/metrics"
	"arcbench/shared/model"
	"arcbench/shared/store"
)

// Deps are what every handler is built from.
type Deps struct {
	Config  config.Config
	Clients *clients.Clients
	Now     func() time.Time
}

// Load reads the configuration from the environment and builds the clients:
// once, at start-up.
func Load(ctx context.Context) (Deps, error) {
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		return Deps{}, err
	}
	c, err := clients.New(ctx)
	if err != nil {
		return Deps{}, err
	}
	return Deps{Config: cfg, Clients: c, Now: time.Now}, nil
}

func (d Deps) store() *store.Store {
	return store.New(d.Clients.DynamoDB, d.Config.RunsTable, d.Config.TasksTable)
}

// NewInitialize builds the initialize handler.
func NewInitialize(d Deps) *initialize.Handler {
	return &initialize.Handler{Store: d.store(), S3: d.Clients.S3, Bucket: d.Config.Bucket, Now: d.Now,
		RunBudgetUSD: d.Config.RunBudgetUSD, StopAfterFailures: d.Config.StopAfterFailures,
		Metrics: d.metrics(), Executions: d.Clients.StepFunctions}
}

// NewCheckTask builds the check-task handler.
func NewCheckTask(d Deps) *checktask.Handler {
	return &checktask.Handler{Store: d.store(), S3: d.Clients.S3, Bucket: d.Config.Bucket, Region: d.Config.Region, Now: d.Now,
		Metrics: d.metrics()}
}

// NewHandleError builds the handle-error handler.
func NewHandleError(d Deps) *handleerror.Handler {
	return &handleerror.Handler{Store: d.store(), Executions: d.Clients.StepFunctions, MaxRetries: d.Config.MaxRetries, RetryBackoff: d.Config.RetryBackoff, Now: d.Now,
		Metrics: d.metrics()}
}

// NewAggregate builds the aggregate handler.
func NewAggregate(d Deps) *aggregate.Handler {
	// For an ended run, aggregate gives the completions check-task never
	// saw their check (check-task's own code, with aggregate's clients).
	check := NewCheckTask(d)
	return &aggregate.Handler{Store: d.store(), S3: d.Clients.S3, Bucket: d.Config.Bucket, Check: check, Now: d.Now}
}

// NewComplete builds the complete handler.
func NewComplete(d Deps) *complete.Handler {
	return &complete.Handler{
		Store:   d.store(),
		Metrics: d.metrics(),
		Now:     d.Now,
		// The run's end is told on the stage's topic (none configured: told nowhere).
		SNS:      d.Clients.SNS,
		TopicARN: d.Config.NotifyTopicARN,
		Stage:    d.Config.Stage,
	}
}

// metrics publishes in the stage's namespace (the handlers' metrics:
// shared/metrics/events.go).
func (d Deps) metrics() *metrics.Publisher {
	return &metrics.Publisher{CloudWatch: d.Clients.CloudWatch, Namespace: d.Config.Namespace}
}

// Raw builds the named handler as JSON in, JSON out.
func Raw(name string, d Deps) (lambdaio.RawFunc, error) {
	switch name {
	case model.HandlerInitialize:
		return lambdaio.Raw(NewInitialize(d).Handle), nil
	case model.HandlerCheckTask:
		return lambdaio.Raw(NewCheckTask(d).Handle), nil
	case model.HandlerHandleError:
		return lambdaio.Raw(NewHandleError(d).Handle), nil
	case model.HandlerAggregate:
		return lambdaio.Raw(NewAggregate(d).Handle), nil
	case model.HandlerComplete:
		return lambdaio.Raw(NewComplete(d).Handle), nil
	}
	return nil, fmt.Errorf("unknown handler %q: want one of %v", name, model.Handlers)
}

// Known tells whether name is a handler.
func Known(name string) bool { return slices.Contains(model.Handlers, name) }
