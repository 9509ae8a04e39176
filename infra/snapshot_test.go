package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// snapshotStage is the stage whose template is kept under testdata/.
const snapshotStage = "sandbox-x"

// assetHash matches CDK's asset hashes: of a handler's source when bundling
// is skipped, of CDK's own providers, of the template's assets.
var assetHash = regexp.MustCompile(`[0-9a-f]{64}`)

// TestSnapshot compares the whole template, and its state machines'
// definitions pretty-printed, with testdata/. Refresh after an intended
// change with UPDATE_SNAPSHOTS=1 go test ./infra -run TestSnapshot.
func TestSnapshot(t *testing.T) {
	s := synth(t, snapshotStage)
	checkSnapshot(t, snapshotStage+".template.json", s.json)
	for _, sm := range resources(s.json, "AWS::StepFunctions::StateMachine") {
		name := props(sm)["StateMachineName"].(string)
		checkSnapshot(t, name+".asl.json", definition(t, sm))
	}
}

func checkSnapshot(t *testing.T, file string, v interface{}) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := assetHash.ReplaceAll(buf.Bytes(), []byte("<asset-hash>"))
	path := filepath.Join("testdata", file)
	if os.Getenv("UPDATE_SNAPSHOTS") != "" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with UPDATE_SNAPSHOTS=1)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the synthesized template; if the change is intended, run UPDATE_SNAPSHOTS=1 go test ./infra -run TestSnapshot\n%s",
			path, firstDifference(string(want), string(got)))
	}
}

// firstDifference shows the first differing line of two texts, with context.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		if i < len(w) && i < len(g) && w[i] == g[i] {
			continue
		}
		from := max(0, i-3)
		var b strings.Builder
		fmt.Fprintf(&b, "first difference at line %d:\n", i+1)
		for j := from; j < i; j++ {
			fmt.Fprintf(&b, "  %s\n", w[j])
		}
		for j := i; j < min(i+4, len(w)); j++ {
			fmt.Fprintf(&b, "- %s\n", w[j])
		}
		for j := i; j < min(i+4, len(g)); j++ {
			fmt.Fprintf(&b, "+ %s\n", g[j])
		}
		return b.String()
	}
	return "(no line differs)"
}
