package localrun_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"arcbench/internal/localrun"
	"arcbench/shared/config"
	"arcbench/shared/model"
)

// secret-template prints the API-keys secret a stage's jobs read: exactly
// the job definition's secrets (the stage's providerKeys), a placeholder
// each; a stage that names other keys gets those.
func TestTheSecretTemplateIsTheJobsKeys(t *testing.T) {
	keys := func(asm string) map[string]string {
		t.Helper()
		var out, stderr bytes.Buffer
		cmd := exec.Command(binary, "secret-template", "--assembly", asm)
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("secret-template: %v: %s", err, stderr.String())
		}
		var secret map[string]string
		if err := json.Unmarshal(out.Bytes(), &secret); err != nil {
			t.Fatalf("secret-template printed %q: %v", out.String(), err)
		}
		return secret
	}
	secret := keys(assembly)
	if len(secret) != len(config.ProviderKeys) {
		t.Errorf("%d keys, want the %d of the default: %v", len(secret), len(config.ProviderKeys), secret)
	}
	for _, k := range config.ProviderKeys {
		if secret[k] != "<"+strings.ToLower(k)+">" {
			t.Errorf("key %s: %q, want a placeholder", k, secret[k])
		}
	}
	// A stage whose job reads one more key (as -c providerKeys=... makes it).
	more := editedResources(t, func(res map[string]any) bool {
		for _, r := range res {
			r := r.(map[string]any)
			if r["Type"] != "AWS::Batch::JobDefinition" {
				continue
			}
			cp := r["Properties"].(map[string]any)["ContainerProperties"].(map[string]any)
			cp["Secrets"] = append(cp["Secrets"].([]any), map[string]any{"Name": "TOGETHER_API_KEY", "ValueFrom": "arn:aws:secretsmanager:us-east-1:000000000000:secret:k-AbCdEf:TOGETHER_API_KEY::"})
			return true
		}
		return false
	})
	if got := keys(more); len(got) != len(config.ProviderKeys)+1 || got["TOGETHER_API_KEY"] == "" {
		t.Errorf("keys %v, want the seven and TOGETHER_API_KEY", got)
	}
}

// A local run passes the worker exactly the provider keys the stage's job
// definition reads, from the caller's environment: a key the stage names
// beyond the default seven reaches the worker, one it does not name stays out.
func TestALocalRunPassesTheStagesProviderKeys(t *testing.T) {
	t.Setenv("TOGETHER_API_KEY", "together-local")
	t.Setenv("SOME_OTHER_API_KEY", "not-for-the-worker")
	asm := editedResources(t, func(res map[string]any) bool {
		for _, r := range res {
			r := r.(map[string]any)
			if r["Type"] == "AWS::Batch::JobDefinition" {
				cp := r["Properties"].(map[string]any)["ContainerProperties"].(map[string]any)
				cp["Secrets"] = append(cp["Secrets"].([]any), map[string]any{"Name": "TOGETHER_API_KEY", "ValueFrom": "arn:aws:secretsmanager:us-east-1:000000000000:secret:k-AbCdEf:TOGETHER_API_KEY::"})
				return true
			}
		}
		return false
	})
	seen := filepath.Join(t.TempDir(), "env")
	worker := fmt.Sprintf(`echo "$TOGETHER_API_KEY/${SOME_OTHER_API_KEY:-unset}" > %q; exec %q worker`, seen, binary)
	res, _ := run(t, localrun.Options{Assembly: asm, TaskIDs: []string{"pk000001"}, WorkerCmd: worker})
	if res.RunStatus != model.RunCompleted {
		t.Fatalf("run %s: %s %s", res.RunStatus, res.Error, res.Cause)
	}
	if got, _ := os.ReadFile(seen); strings.TrimSpace(string(got)) != "together-local/unset" {
		t.Errorf("the worker saw %q, want the stage's key and not the other", got)
	}
}
