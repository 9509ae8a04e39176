package main

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
)

func TestNewStage(t *testing.T) {
	for _, name := range []string{"sandbox-teal", "prod", "staging-2", "a", strings.Repeat("x", maxStageLength)} {
		if _, err := NewStage(name); err != nil {
			t.Errorf("NewStage(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "Sandbox-Teal", "sandbox_teal", "sandbox-", "-prod", "sandbox--teal", "prod.1", "sandbox teal", strings.Repeat("x", maxStageLength+1)} {
		if _, err := NewStage(name); err == nil {
			t.Errorf("NewStage(%q) was accepted", name)
		}
	}
}

func TestStageRules(t *testing.T) {
	sandbox, _ := NewStage("sandbox-teal")
	prod, _ := NewStage("prod")
	if !sandbox.Disposable || sandbox.RemovalPolicy() != awscdk.RemovalPolicy_DESTROY {
		t.Errorf("sandbox-teal: want disposable, DESTROY; got %+v", sandbox)
	}
	if prod.Disposable || prod.RemovalPolicy() != awscdk.RemovalPolicy_RETAIN {
		t.Errorf("prod: want retained, RETAIN; got %+v", prod)
	}
	if notSandbox, _ := NewStage("sandbox"); notSandbox.Disposable {
		t.Error(`"sandbox" (no suffix) is not a sandbox-* stage, yet disposable`)
	}
	if got := sandbox.PhysicalName("handle-error"); got != "arc-benchmark-sandbox-teal-handle-error" {
		t.Errorf("PhysicalName = %q", got)
	}
	if got := backoffExpression(prod, 4); got != "States.ArrayGetItem(States.Array(60, 60, 120, 240), $.handled.retry_count)" {
		t.Errorf("backoff for retries 1..3 of prod = %q", got)
	}
}

func TestSettingsFromContext(t *testing.T) {
	var errText string
	noPanic(t, "settings", func() {
		app := newApp(t, false, map[string]interface{}{ctxStage: "Prod!", ctxWorkerTag: ""})
		_, err := SettingsFromContext(app.Node())
		if err == nil {
			t.Fatal("a malformed stage and an empty workerTag were accepted")
		}
		errText = err.Error()
	})
	for _, want := range []string{`stage "Prod!"`, `"workerTag" is empty`} {
		if !strings.Contains(errText, want) {
			t.Errorf("error %q does not mention %s", errText, want)
		}
	}
	noPanic(t, "defaults", func() {
		s, err := SettingsFromContext(newApp(t, false, nil).Node())
		if err != nil {
			t.Fatal(err)
		}
		want := Settings{WorkerRepository: "arc-benchmark-worker", WorkerTag: "latest", APIKeysSecret: "arc-benchmark/api-keys"}
		if s.Stage.Name != "sandbox-dev" || s.VpcID != "" || s.WorkerRepository != want.WorkerRepository ||
			s.WorkerTag != want.WorkerTag || s.APIKeysSecret != want.APIKeysSecret {
			t.Errorf("cdk.json defaults: got %+v", s)
		}
	})
}
