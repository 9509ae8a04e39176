package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// outRoot holds every cloud assembly the tests write.
var outRoot string

func TestMain(m *testing.M) {
	var err error
	if outRoot, err = os.MkdirTemp("", "arcbench-infra-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	jsii.Close()
	os.RemoveAll(outRoot)
	os.Exit(code)
}

// noPanic runs f and turns a panic (how a failed jsii call or assertion
// surfaces in Go) into a test failure instead of a dead test binary.
func noPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: %v", what, r)
		}
	}()
	f()
}

// cdkContext is cdk.json's context (feature flags and defaults): without it
// the tests would synthesize a different template than `cdk synth` does.
func cdkContext(t *testing.T) map[string]interface{} {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "cdk.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Context map[string]interface{} `json:"context"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatalf("cdk.json: %v", err)
	}
	return file.Context
}

// testSecretArn stands for the API-keys secret's complete ARN, which every
// deploy gives (apiKeysSecretArn): the tests synthesize what is deployed.
const testSecretArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:arc-benchmark/api-keys-AbCdEf"

// newApp is an app with cdk.json's context, apiKeysSecretArn set to
// testSecretArn, and the given overrides (a nil value removes a key). Unless
// bundle is set it skips bundling, so that unit tests build no handler and a
// handler's code never shows in their templates.
func newApp(t *testing.T, bundle bool, overrides map[string]interface{}) awscdk.App {
	t.Helper()
	ctx := cdkContext(t)
	ctx[ctxAPIKeysSecretArn] = testSecretArn
	for k, v := range overrides {
		if v == nil {
			delete(ctx, k)
		} else {
			ctx[k] = v
		}
	}
	if !bundle {
		ctx["aws:cdk:bundling-stacks"] = []string{}
	}
	out, err := os.MkdirTemp(outRoot, "cdk.out-")
	if err != nil {
		t.Fatal(err)
	}
	return awscdk.NewApp(&awscdk.AppProps{
		Context:            &ctx,
		Outdir:             jsii.String(out),
		AnalyticsReporting: jsii.Bool(false),
	})
}

// synthesized is one stage's stack as `cdk synth` makes it (cdk-nag included).
type synthesized struct {
	stack    *Stack
	template assertions.Template
	json     map[string]interface{}
}

var (
	synthMu    sync.Mutex
	synthCache = map[string]*synthesized{}
)

// synth builds the stage's app once per test binary: a synthesis takes
// seconds, and the templates are read, never changed.
func synth(t *testing.T, stage string) *synthesized {
	t.Helper()
	return synthWith(t, stage, map[string]interface{}{ctxStage: stage})
}

// synthWith builds an app of the given context once per test binary, cached
// under key.
func synthWith(t *testing.T, key string, context map[string]interface{}) *synthesized {
	t.Helper()
	synthMu.Lock()
	defer synthMu.Unlock()
	if s, ok := synthCache[key]; ok {
		return s
	}
	app := newApp(t, false, context)
	s := &synthesized{}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("synthesize %s: %v%s", key, r, validationReport(*app.Outdir()))
			}
		}()
		stack, err := build(app)
		if err != nil {
			t.Fatal(err)
		}
		s.stack = stack
		s.template = assertions.Template_FromStack(stack.Stack, nil)
		s.json = toGo(t, s.template.ToJSON())
	}()
	synthCache[key] = s
	return s
}

// validationReport is the failed checks of a synthesis (cdk-nag's findings
// among them), as CDK writes them to the cloud assembly.
func validationReport(outdir string) string {
	raw, err := os.ReadFile(filepath.Join(outdir, "validation-report.json"))
	if err != nil {
		return ""
	}
	var report struct {
		PluginReports []struct {
			Violations []struct {
				RuleName           string `json:"ruleName"`
				Description        string `json:"description"`
				ViolatingResources []struct {
					ResourceLogicalID string `json:"resourceLogicalId"`
				} `json:"violatingResources"`
			} `json:"violations"`
		} `json:"pluginReports"`
	}
	if err := json.Unmarshal(raw, &report); err != nil {
		return "\n" + string(raw)
	}
	var b strings.Builder
	for _, p := range report.PluginReports {
		for _, v := range p.Violations {
			var where []string
			for _, r := range v.ViolatingResources {
				where = append(where, r.ResourceLogicalID)
			}
			fmt.Fprintf(&b, "\n  %s at %v: %.200s", v.RuleName, where, v.Description)
		}
	}
	return b.String()
}

// toGo turns a jsii value into plain Go maps and slices.
func toGo(t *testing.T, v interface{}) map[string]interface{} {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]interface{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// resources are the template's resources of one type, by logical id.
func resources(tmpl map[string]interface{}, typ string) map[string]map[string]interface{} {
	out := map[string]map[string]interface{}{}
	for id, r := range tmpl["Resources"].(map[string]interface{}) {
		res := r.(map[string]interface{})
		if res["Type"] == typ {
			out[id] = res
		}
	}
	return out
}

// props is a resource's Properties.
func props(res map[string]interface{}) map[string]interface{} {
	p, _ := res["Properties"].(map[string]interface{})
	return p
}

// one is the only resource of a type whose property key equals value.
func one(t *testing.T, tmpl map[string]interface{}, typ, key, value string) (string, map[string]interface{}) {
	t.Helper()
	var ids []string
	var found map[string]interface{}
	for id, r := range resources(tmpl, typ) {
		if props(r)[key] == value {
			ids = append(ids, id)
			found = r
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%s with %s=%q: found %d (%v)", typ, key, value, len(ids), ids)
	}
	return ids[0], found
}

// definition resolves a state machine's DefinitionString: literal parts
// joined, references written as ${Ref} or ${LogicalId.Attribute}, so that a
// reviewer reads the flow and a test parses it.
func definition(t *testing.T, sm map[string]interface{}) map[string]interface{} {
	t.Helper()
	var text string
	switch d := props(sm)["DefinitionString"].(type) {
	case string:
		text = d
	case map[string]interface{}:
		join := d["Fn::Join"].([]interface{})
		var b strings.Builder
		for _, part := range join[1].([]interface{}) {
			b.WriteString(reference(part))
		}
		text = b.String()
	default:
		t.Fatalf("DefinitionString of unexpected shape %T", d)
	}
	var def map[string]interface{}
	if err := json.Unmarshal([]byte(text), &def); err != nil {
		t.Fatalf("definition is not JSON: %v\n%s", err, text)
	}
	return def
}

func reference(part interface{}) string {
	switch p := part.(type) {
	case string:
		return p
	case map[string]interface{}:
		if ref, ok := p["Ref"].(string); ok {
			return "${" + ref + "}"
		}
		if att, ok := p["Fn::GetAtt"].([]interface{}); ok {
			return fmt.Sprintf("${%v.%v}", att[0], att[1])
		}
	}
	raw, _ := json.Marshal(part)
	return "${" + string(raw) + "}"
}

// states are all states of a definition, nested ones included, by name; a
// name used twice fails the test (local runners key overrides by name).
func states(t *testing.T, def map[string]interface{}) map[string]map[string]interface{} {
	t.Helper()
	all := map[string]map[string]interface{}{}
	var walk func(graph map[string]interface{})
	walk = func(graph map[string]interface{}) {
		for name, s := range graph["States"].(map[string]interface{}) {
			st := s.(map[string]interface{})
			if _, dup := all[name]; dup {
				t.Errorf("state name %q is used twice", name)
			}
			all[name] = st
			if proc, ok := st["ItemProcessor"].(map[string]interface{}); ok {
				walk(proc)
			}
		}
	}
	walk(def)
	return all
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
