package main

import (
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arcbench/shared/model"
)

// TestBundling builds the handlers for real, as `cdk synth` does, and checks
// that each function has an asset of its own holding its handler as a
// linux/arm64 executable named bootstrap.
func TestBundling(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every handler")
	}
	const stage = "sandbox-bundle"
	app := newApp(t, true, map[string]interface{}{ctxStage: stage})
	noPanic(t, "synthesize with bundling", func() {
		if _, err := build(app); err != nil {
			t.Fatal(err)
		}
		app.Synth(nil)
	})
	out := *app.Outdir()
	stackName := namePrefix + "-" + stage
	var template map[string]interface{}
	readJSON(t, filepath.Join(out, stackName+".template.json"), &template)
	var manifest struct {
		Files map[string]struct {
			Source struct {
				Path string `json:"path"`
			} `json:"source"`
		} `json:"files"`
	}
	readJSON(t, filepath.Join(out, stackName+".assets.json"), &manifest)

	seen := map[string]string{} // asset hash -> handler
	for _, name := range model.Handlers {
		_, fn := one(t, template, "AWS::Lambda::Function", "FunctionName", stackName+"-"+name)
		hash := strings.TrimSuffix(props(fn)["Code"].(map[string]interface{})["S3Key"].(string), ".zip")
		if other, dup := seen[hash]; dup {
			t.Errorf("%s and %s share the asset %s", name, other, hash)
		}
		seen[hash] = name
		asset, ok := manifest.Files[hash]
		if !ok {
			t.Errorf("%s: asset %s is not in the assembly's manifest", name, hash)
			continue
		}
		checkBootstrap(t, name, filepath.Join(out, asset.Source.Path, "bootstrap"))
	}
}

// checkBootstrap checks one handler binary: executable, ELF for arm64, built
// by Go for linux/arm64 without cgo from the handler's own main package.
func checkBootstrap(t *testing.T, name, path string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	if info.Mode().Perm()&0o111 == 0 {
		t.Errorf("%s: bootstrap is not executable (%v)", name, info.Mode())
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Errorf("%s: bootstrap is not ELF: %v", name, err)
		return
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_AARCH64 || f.Type != elf.ET_EXEC {
		t.Errorf("%s: bootstrap is %v %v %v, want ELFCLASS64 EM_AARCH64 ET_EXEC", name, f.Class, f.Machine, f.Type)
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Errorf("%s: no Go build info: %v", name, err)
		return
	}
	if want := "arcbench/functions/" + name; bi.Path != want {
		t.Errorf("%s: bootstrap is %s, want %s", name, bi.Path, want)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for key, want := range map[string]string{"GOOS": "linux", "GOARCH": "arm64", "CGO_ENABLED": "0", "-tags": "lambda.norpc"} {
		if settings[key] != want {
			t.Errorf("%s: built with %s=%q, want %q", name, key, settings[key], want)
		}
	}
	if _, stamped := settings["vcs.revision"]; stamped {
		t.Errorf("%s: bootstrap carries a VCS stamp, so its asset would change with every commit", name)
	}
}

func readJSON(t *testing.T, path string, v interface{}) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
