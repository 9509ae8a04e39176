// Command infra is the arcbench CDK app: `cdk synth -c stage=<stage>` runs it
// (cdk.json: `go run ./infra`) and gets one stack, arc-benchmark-<stage>.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "infra:", err)
		os.Exit(1)
	}
}

func run() error {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	if _, err := build(app); err != nil {
		return err
	}
	app.Synth(nil)
	return nil
}

// build adds the stage's stack to app (and, with context githubRepository,
// the CI stack arc-benchmark-ci), checked by cdk-nag's AWS Solutions rules:
// an unsuppressed finding fails `cdk synth`.
func build(app awscdk.App) (*Stack, error) {
	settings, err := SettingsFromContext(app.Node())
	if err != nil {
		return nil, err
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	// With context githubRepository, the account's CI stack too (ci.go).
	if _, err := buildCI(app, root); err != nil {
		return nil, err
	}
	stack := NewStack(app, settings, root)
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return stack, nil
}

// moduleRoot finds go.mod from the working directory up: the CLI runs the app
// at the top of the repository, `go test` in infra/.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in the working directory or above it")
		}
		dir = parent
	}
}
