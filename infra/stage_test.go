package main

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"arcbench/shared/config"
)

func TestNewStage(t *testing.T) {
	for _, name := range []string{"sandbox-teal", "prod", "staging-2", "a", strings.Repeat("x", config.MaxStageLength)} {
		if _, err := NewStage(name); err != nil {
			t.Errorf("NewStage(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "Sandbox-Teal", "sandbox_teal", "sandbox-", "-prod", "sandbox--teal", "prod.1", "sandbox teal", strings.Repeat("x", config.MaxStageLength+1)} {
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
		s, err := SettingsFromContext(newApp(t, false, map[string]interface{}{ctxAPIKeysSecretArn: nil}).Node())
		if err != nil {
			t.Fatal(err)
		}
		want := Settings{WorkerRepository: "arc-benchmark-worker", WorkerTag: "latest", APIKeysSecret: "arc-benchmark/api-keys", WorkerArchitecture: ArchX86_64}
		if s.Stage.Name != "sandbox-dev" || s.VpcID != "" || s.WorkerRepository != want.WorkerRepository ||
			s.WorkerTag != want.WorkerTag || s.APIKeysSecret != want.APIKeysSecret || s.APIKeysSecretArn != "" ||
			s.WorkerArchitecture != want.WorkerArchitecture {
			t.Errorf("cdk.json defaults: got %+v", s)
		}
	})
}

// settingsError is SettingsFromContext's error for cdk.json's context with
// the given overrides; "" when the settings are accepted.
func settingsError(t *testing.T, overrides map[string]interface{}) (Settings, string) {
	t.Helper()
	var (
		s   Settings
		err error
	)
	noPanic(t, "settings", func() {
		s, err = SettingsFromContext(newApp(t, false, overrides).Node())
	})
	if err != nil {
		return s, err.Error()
	}
	return s, ""
}

func TestWorkerArchitectureSetting(t *testing.T) {
	for _, arch := range []string{ArchX86_64, ArchARM64} {
		if s, msg := settingsError(t, map[string]interface{}{ctxWorkerArchitecture: arch}); msg != "" || s.WorkerArchitecture != arch {
			t.Errorf("workerArchitecture %s: %+v, %s", arch, s, msg)
		}
	}
	for _, arch := range []string{"arm64", "x86_64", "amd64", "ARM64 "} {
		_, msg := settingsError(t, map[string]interface{}{ctxWorkerArchitecture: arch})
		for _, want := range []string{`"workerArchitecture"`, fmt.Sprintf("%q", arch), "X86_64, ARM64"} {
			if !strings.Contains(msg, want) {
				t.Errorf("workerArchitecture %q: error %q does not name %s", arch, msg, want)
			}
		}
	}
	if _, msg := settingsError(t, map[string]interface{}{ctxWorkerArchitecture: nil}); !strings.Contains(msg, `"workerArchitecture" is missing`) {
		t.Errorf("no workerArchitecture: error %q", msg)
	}
}

func TestAPIKeysSecretArnSetting(t *testing.T) {
	if s, msg := settingsError(t, map[string]interface{}{ctxAPIKeysSecretArn: testSecretArn}); msg != "" || s.APIKeysSecretArn != testSecretArn {
		t.Errorf("a complete ARN: %+v, %s", s, msg)
	}
	for arn, want := range map[string]string{
		// The partial ARN (no random suffix) is what Batch does not document.
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:arc-benchmark/api-keys": "not a complete secret ARN",
		"arc-benchmark/api-keys-AbCdEf":                                               "not a complete secret ARN",
		"arn:aws:ssm:us-east-1:123456789012:parameter/arc-benchmark/api-keys-AbCdEf":  "not a complete secret ARN",
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:other/keys-AbCdEf":      `names the secret "other/keys" but "apiKeysSecret" is "arc-benchmark/api-keys"`,
	} {
		if _, msg := settingsError(t, map[string]interface{}{ctxAPIKeysSecretArn: arn}); !strings.Contains(msg, want) || !strings.Contains(msg, `"apiKeysSecretArn"`) {
			t.Errorf("apiKeysSecretArn %q: error %q, want one naming the key and saying %s", arn, msg, want)
		}
	}
}

// TestWorkerJobDefinition: the job definition runs the image's architecture
// on Linux, and reads each provider key from the API-keys secret in the
// form Batch documents (complete ARN, :<json-key>::), which its execution
// role may read and nothing else of Secrets Manager.
func TestWorkerJobDefinition(t *testing.T) {
	container := func(tmpl map[string]interface{}) map[string]interface{} { return container(t, tmpl) }
	secretGrants := func(tmpl map[string]interface{}) []string {
		role := container(tmpl)["ExecutionRoleArn"].(map[string]interface{})["Fn::GetAtt"].([]interface{})[0].(string)
		var out []string
		for _, g := range grants(tmpl, role) {
			if strings.HasPrefix(g, "secretsmanager:") {
				out = append(out, g)
			}
		}
		return out
	}

	s := synth(t, snapshotStage)
	c := container(s.json)
	if got := jsonText(c["RuntimePlatform"]); got != `{"CpuArchitecture":"X86_64","OperatingSystemFamily":"LINUX"}` {
		t.Errorf("RuntimePlatform %s, want X86_64 on LINUX (cdk.json's default)", got)
	}
	valueFrom := map[string]interface{}{}
	for _, sec := range c["Secrets"].([]interface{}) {
		sec := sec.(map[string]interface{})
		valueFrom[sec["Name"].(string)] = sec["ValueFrom"]
	}
	if len(valueFrom) != len(config.ProviderKeys) {
		t.Errorf("secrets %v, want the %d provider keys", sortedKeys(valueFrom), len(config.ProviderKeys))
	}
	for _, key := range config.ProviderKeys {
		if got, want := valueFrom[key], testSecretArn+":"+key+"::"; got != want {
			t.Errorf("secret %s ValueFrom %v, want %s", key, got, want)
		}
	}
	want := []string{"secretsmanager:DescribeSecret on " + testSecretArn, "secretsmanager:GetSecretValue on " + testSecretArn}
	if got := secretGrants(s.json); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the execution role may %v, want exactly %v", got, want)
	}

	// ARM64, and no apiKeysSecretArn: the secret by name (partial ARN), read
	// as <name>-??????, and a warning at synth.
	noPanic(t, "ARM64 without the secret's ARN", func() {
		app := newApp(t, false, map[string]interface{}{ctxStage: "sandbox-arm", ctxWorkerArchitecture: ArchARM64, ctxAPIKeysSecretArn: nil})
		stack, err := build(app)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := toGo(t, assertions.Template_FromStack(stack.Stack, nil).ToJSON())
		c := container(tmpl)
		if got := jsonText(c["RuntimePlatform"]); got != `{"CpuArchitecture":"ARM64","OperatingSystemFamily":"LINUX"}` {
			t.Errorf("RuntimePlatform %s, want ARM64 on LINUX", got)
		}
		partial := "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:arc-benchmark/api-keys"
		for _, sec := range c["Secrets"].([]interface{}) {
			sec := sec.(map[string]interface{})
			if got, want := resourceText(sec["ValueFrom"]), partial+":"+sec["Name"].(string)+"::"; got != want {
				t.Errorf("secret %s ValueFrom %s, want %s", sec["Name"], got, want)
			}
		}
		want := []string{"secretsmanager:DescribeSecret on " + partial + "-??????", "secretsmanager:GetSecretValue on " + partial + "-??????"}
		if got := secretGrants(tmpl); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("the execution role may %v, want exactly %v", got, want)
		}
		assertions.Annotations_FromStack(stack.Stack).HasWarning(jsii.String("*"),
			assertions.Match_StringLikeRegexp(jsii.String("without its complete ARN.*"+ctxAPIKeysSecretArn)))
	})
}

// The stage names the provider keys its job reads (the benchmark's
// models.yml names more providers than the seven of the default): exactly
// those, each from the API-keys secret; a malformed list stops synth.
func TestProviderKeysSetting(t *testing.T) {
	if s, msg := settingsError(t, nil); msg != "" || strings.Join(s.ProviderKeys, ",") != strings.Join(config.ProviderKeys, ",") {
		t.Errorf("default: %v, %s; want the seven of config.ProviderKeys", s.ProviderKeys, msg)
	}
	want := []string{"OPENAI_API_KEY", "TOGETHER_API_KEY", "DASHSCOPE_API_KEY"}
	if s, msg := settingsError(t, map[string]interface{}{ctxProviderKeys: " OPENAI_API_KEY, TOGETHER_API_KEY,DASHSCOPE_API_KEY"}); msg != "" ||
		strings.Join(s.ProviderKeys, ",") != strings.Join(want, ",") {
		t.Errorf("three keys: %v, %s", s.ProviderKeys, msg)
	}
	for list, why := range map[string]string{
		"openai_api_key":                "not an environment variable name",
		"OPENAI_API_KEY,":               `"" is not an environment variable name`,
		"OPENAI_API_KEY,OPENAI_API_KEY": "listed twice",
		"AWS_SECRET_ACCESS_KEY":         "AWS_ names",
		"OPENAI_API_KEY," + "S3_BUCKET": "a variable the job sets itself",
		"HUGGING FACE":                  "not an environment variable name",
	} {
		if _, msg := settingsError(t, map[string]interface{}{ctxProviderKeys: list}); !strings.Contains(msg, `"providerKeys"`) || !strings.Contains(msg, why) {
			t.Errorf("providerKeys %q: error %q, want it to name the key and say %s", list, msg, why)
		}
	}
	noPanic(t, "three keys", func() {
		app := newApp(t, false, map[string]interface{}{ctxStage: "sandbox-keys", ctxProviderKeys: strings.Join(want, ","), ctxAPIKeysSecretArn: testSecretArn})
		stack, err := build(app)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, sec := range container(t, toGo(t, assertions.Template_FromStack(stack.Stack, nil).ToJSON()))["Secrets"].([]interface{}) {
			sec := sec.(map[string]interface{})
			got = append(got, sec["Name"].(string))
			if sec["ValueFrom"] != testSecretArn+":"+sec["Name"].(string)+"::" {
				t.Errorf("secret %s ValueFrom %v", sec["Name"], sec["ValueFrom"])
			}
		}
		sort.Strings(got)
		sorted := append([]string(nil), want...)
		sort.Strings(sorted)
		if strings.Join(got, ",") != strings.Join(sorted, ",") {
			t.Errorf("the job reads %v, want exactly %v", got, sorted)
		}
	})
}

// container is the job definition's container properties.
func container(t *testing.T, tmpl map[string]interface{}) map[string]interface{} {
	t.Helper()
	for _, jd := range resources(tmpl, "AWS::Batch::JobDefinition") {
		return props(jd)["ContainerProperties"].(map[string]interface{})
	}
	t.Fatal("no job definition")
	return nil
}

// The job's size is a stage setting, the smallest Fargate size by default,
// checked against the sizes Fargate runs; the compute environment has room
// for every job a run has in flight at that size.
func TestWorkerSizeSetting(t *testing.T) {
	s := synth(t, snapshotStage)
	c := container(t, s.json)
	if got := jsonText(c["ResourceRequirements"]); got != `[{"Type":"MEMORY","Value":"512"},{"Type":"VCPU","Value":"0.25"}]` {
		t.Errorf("ResourceRequirements %s, want 0.25 vCPU and 512 MiB (the default)", got)
	}
	for _, ce := range resources(s.json, "AWS::Batch::ComputeEnvironment") {
		if got := jsonText(props(ce)["ComputeResources"].(map[string]interface{})["MaxvCpus"]); got != "4" {
			t.Errorf("MaxvCpus %s, want 4: 16 jobs at once × 0.25 vCPU", got)
		}
	}
	if st, msg := settingsError(t, map[string]interface{}{ctxWorkerVCPU: "2", ctxWorkerMemoryMiB: 8192.0}); msg != "" || st.WorkerSize.VCPU != "2" || st.WorkerSize.MemoryMiB != 8192 {
		t.Errorf("2 vCPU, 8192 MiB: %+v, %s", st.WorkerSize, msg)
	}
	for _, bad := range []map[string]interface{}{
		{ctxWorkerVCPU: "0.25", ctxWorkerMemoryMiB: "1536"},
		{ctxWorkerVCPU: "3", ctxWorkerMemoryMiB: "8192"},
		{ctxWorkerVCPU: "1", ctxWorkerMemoryMiB: "lots"},
	} {
		if _, msg := settingsError(t, bad); !strings.Contains(msg, "a Fargate job") && !strings.Contains(msg, "whole number of MiB") {
			t.Errorf("%v: error %q, want one saying what Fargate runs", bad, msg)
		}
	}
}
