package testenv

import (
	"fmt"
	"os/exec"
	"path/filepath"

	"arcbench/internal/emulators"
)

// BuildCLI builds the arcbench binary into dir, for tests that run it as
// users do (and as the local run starts its built-in worker).
func BuildCLI(dir string) (string, error) {
	root, err := emulators.Root()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "arcbench")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/arcbench")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build arcbench: %v\n%s", err, out)
	}
	return bin, nil
}
