package localrun_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"arcbench/internal/localrun"
	"arcbench/shared/arcdata"
	"arcbench/shared/model"
)

// withoutPermission copies the assembly with one action taken out of the
// policies of the roles whose logical id starts with rolePrefix, in the
// statements whose resources mention resource.
func withoutPermission(t *testing.T, rolePrefix, action, resource string) string {
	t.Helper()
	return editedResources(t, func(resources map[string]any) bool {
		removed := 0
		for _, r := range resources {
			res := r.(map[string]any)
			if res["Type"] != "AWS::IAM::Policy" {
				continue
			}
			props := res["Properties"].(map[string]any)
			ours := slices.ContainsFunc(props["Roles"].([]any), func(role any) bool {
				ref, _ := role.(map[string]any)["Ref"].(string)
				return strings.HasPrefix(ref, rolePrefix)
			})
			if !ours {
				continue
			}
			doc := props["PolicyDocument"].(map[string]any)
			var kept []any
			for _, st := range doc["Statement"].([]any) {
				stmt := st.(map[string]any)
				if res, _ := json.Marshal(stmt["Resource"]); !strings.Contains(string(res), resource) {
					kept = append(kept, stmt)
					continue
				}
				var actions []any
				for _, a := range asList(stmt["Action"]) {
					if a == action {
						removed++
					} else {
						actions = append(actions, a)
					}
				}
				if len(actions) > 0 {
					stmt["Action"] = actions
					kept = append(kept, stmt)
				}
			}
			doc["Statement"] = kept
		}
		return removed > 0
	})
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

// Every permission the run uses is needed: taken out of the template, a
// local run is refused the calls that use it, names them, and ends as a
// deployed run would.
func TestARemovedPermissionFailsTheRunNamingIt(t *testing.T) {
	for _, c := range []struct {
		kind, role, action, resource string
		// runStatus is how the run ends without it.
		runStatus string
	}{
		// check-task cannot read the task record: every check fails
		// (a ServiceError, retried), every child with it, and the Map.
		{"a handler", "FunctionsCheckTaskRole", "dynamodb:GetItem", "DataTasks", model.RunFailed},
		// The worker cannot add to the run's counters: like the
		// benchmark's, it fails its completed task again, every attempt.
		{"the worker", "BatchWorkerRole", "dynamodb:UpdateItem", "DataRuns", model.RunFailed},
		// The state machine cannot invoke its handlers: Initialize fails,
		// and no run is made.
		{"the state machine", "WorkflowStateMachineRole", "lambda:InvokeFunction", "FunctionsInitialize", ""},
	} {
		t.Run(c.kind, func(t *testing.T) {
			res, _ := runDenied(t, localrun.Options{Assembly: withoutPermission(t, c.role, c.action, c.resource), TaskIDs: arcdata.IDs(2, 4), Seed: 4, MaxRetries: 1})
			if res.IAM == nil || len(res.IAM.Denials) == 0 {
				t.Fatalf("no request was refused; IAM %+v", res.IAM)
			}
			d := res.IAM.Denials[0]
			t.Logf("%d denials, first %s; run %s, execution %s %s; calls %v", len(res.IAM.Denials), d, res.RunStatus, res.Status, res.Error, res.Calls)
			if !strings.HasPrefix(d.Principal, c.role) || d.Action != c.action || !strings.Contains(d.Resource, map[string]string{
				"DataTasks": "-tasks", "DataRuns": "-runs", "FunctionsInitialize": "-initialize"}[c.resource]) {
				t.Errorf("first denial %s, want %s* refused %s on %s", d, c.role, c.action, c.resource)
			}
			if res.RunStatus != c.runStatus {
				t.Errorf("run %q (execution %s: %s), want %q", res.RunStatus, res.Status, res.Error, c.runStatus)
			}
		})
	}
}
