package main

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"arcbench/internal/cisettings"
	"arcbench/shared/config"
	"arcbench/shared/model"
)

// testRepository is the repository the CI stack is synthesized for.
const testRepository = "acme/arcbench"

// testProviderArn stands for an account's existing GitHub OIDC provider, in
// the account of ci/settings.json.
const testProviderArn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"

// ciSynthesized is the CI stack of one app, and the settings it was made of.
type ciSynthesized struct {
	stack    awscdk.Stack
	json     map[string]interface{}
	settings *cisettings.Settings
}

var (
	ciMu    sync.Mutex
	ciCache = map[string]*ciSynthesized{}
)

// synthCI is the CI stack as `cdk synth -c githubRepository=acme/arcbench`
// makes it (the app's build: the stage's stack beside it, cdk-nag over
// both), once per test binary.
func synthCI(t *testing.T) *ciSynthesized {
	t.Helper()
	s := synthWith(t, "ci", map[string]interface{}{ctxStage: snapshotStage, ctxGitHubRepository: testRepository})
	return ciOf(t, "ci", s.stack.Node().Scope())
}

// synthCIOnly builds only the CI stack (buildCI, checked by cdk-nag) of an
// app with the given context: for the cases the whole build adds nothing to.
func synthCIOnly(t *testing.T, key string, context map[string]interface{}) *ciSynthesized {
	t.Helper()
	ciMu.Lock()
	cached := ciCache[key]
	ciMu.Unlock()
	if cached != nil {
		return cached
	}
	app := newApp(t, false, context)
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	noPanic(t, key, func() {
		if _, err := buildCI(app, root); err != nil {
			t.Fatal(err)
		}
		awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	})
	return ciOf(t, key, app)
}

// ciOf finds and templates the CI stack of app.
func ciOf(t *testing.T, key string, app constructs.IConstruct) *ciSynthesized {
	t.Helper()
	ciMu.Lock()
	defer ciMu.Unlock()
	if s, ok := ciCache[key]; ok {
		return s
	}
	child := app.Node().TryFindChild(jsii.String(CIStackName))
	if child == nil {
		t.Fatalf("%s: no stack %s in the app", key, CIStackName)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	s := &ciSynthesized{stack: awscdk.Stack_Of(child)}
	if s.settings, err = cisettings.LoadFrom(root); err != nil {
		t.Fatal(err)
	}
	noPanic(t, "synthesize "+key, func() {
		s.json = toGo(t, assertions.Template_FromStack(s.stack, nil).ToJSON())
	})
	ciCache[key] = s
	return s
}

// role is the CI stack's role named name: its logical id and properties.
func (s *ciSynthesized) role(t *testing.T, name string) (string, map[string]interface{}) {
	t.Helper()
	id, r := one(t, s.json, "AWS::IAM::Role", "RoleName", name)
	return id, props(r)
}

// trust is the one statement of a role's trust policy.
func trust(t *testing.T, name string, role map[string]interface{}) map[string]interface{} {
	t.Helper()
	statements := list(role["AssumeRolePolicyDocument"].(map[string]interface{})["Statement"])
	if len(statements) != 1 {
		t.Fatalf("%s: trust policy has %d statements, want 1: %s", name, len(statements), jsonText(statements))
	}
	return statements[0].(map[string]interface{})
}

func sub(s string) string { return "repo:" + testRepository + ":" + s }

// TestCITrust checks each role's trust policy whole: only GitHub's tokens
// (aud sts.amazonaws.com) of this repository, with exactly the subjects of
// the workflows that use the role, compared with StringEquals.
func TestCITrust(t *testing.T) {
	s := synthCI(t)
	providerID := sortedKeys(resources(s.json, "AWS::IAM::OIDCProvider"))
	if len(providerID) != 1 {
		t.Fatalf("want one OIDC provider, got %v", providerID)
	}
	main := sub("ref:refs/heads/main")
	env := sub("environment:" + s.settings.ProdEnvironment)
	// The repository's settings deploy a sandbox stage on push and prod
	// through its environment: the deploy role must trust both.
	if s.settings.ProdEnvironment == "" ||
		len(s.settings.Where(func(st cisettings.Stage) bool { return st.Deploy == cisettings.DeployOnPush })) == 0 ||
		len(s.settings.Where(func(st cisettings.Stage) bool { return st.Deploy == cisettings.DeployThroughEnvironment })) == 0 {
		t.Fatalf("%s no longer deploys on push and through an environment: adjust this test", cisettings.Path)
	}
	for name, want := range map[string][]string{
		CIDiffRoleName:   {sub("pull_request")},
		CIDeployRoleName: {main, env},
		CIStartRoleName:  {main},
	} {
		_, role := s.role(t, name)
		st := trust(t, name, role)
		if st["Effect"] != "Allow" || st["Action"] != "sts:AssumeRoleWithWebIdentity" {
			t.Errorf("%s: trust %v %v, want Allow sts:AssumeRoleWithWebIdentity", name, st["Effect"], st["Action"])
		}
		if got := jsonText(st["Principal"]); got != jsonText(map[string]interface{}{"Federated": map[string]interface{}{"Ref": providerID[0]}}) {
			t.Errorf("%s: trusts %s, want only the stack's GitHub OIDC provider", name, got)
		}
		cond, _ := st["Condition"].(map[string]interface{})
		if ops := sortedKeys(cond); strings.Join(ops, ",") != "StringEquals" {
			t.Errorf("%s: condition operators %v, want StringEquals only (no StringLike, no pattern)", name, ops)
			continue
		}
		eq := cond["StringEquals"].(map[string]interface{})
		if keys := sortedKeys(eq); strings.Join(keys, ",") != "token.actions.githubusercontent.com:aud,token.actions.githubusercontent.com:sub" {
			t.Errorf("%s: condition keys %v, want exactly aud and sub", name, keys)
		}
		if aud := eq["token.actions.githubusercontent.com:aud"]; aud != "sts.amazonaws.com" {
			t.Errorf("%s: aud %v, want sts.amazonaws.com", name, aud)
		}
		var got []string
		for _, v := range list(eq["token.actions.githubusercontent.com:sub"]) {
			got = append(got, fmt.Sprint(v))
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s trusts subjects\n  %s\nwant\n  %s", name, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		for _, g := range got {
			if strings.ContainsAny(g, "*?") || !strings.HasPrefix(g, "repo:"+testRepository+":") {
				t.Errorf("%s: subject %q is not one of %s's exact subjects", name, g, testRepository)
			}
			if name == CIDiffRoleName && (strings.Contains(g, ":ref:") || strings.Contains(g, ":environment:")) {
				t.Errorf("the diff role trusts %q: pull requests only, never main or an environment", g)
			}
		}
	}
	// No other role, and no trust policy anywhere that matches by pattern
	// or trusts anyone but the provider.
	if n := len(resources(s.json, "AWS::IAM::Role")); n != 3 {
		t.Errorf("%d roles in the CI stack, want 3", n)
	}
	for id, r := range resources(s.json, "AWS::IAM::Role") {
		doc := jsonText(props(r)["AssumeRolePolicyDocument"])
		for _, bad := range []string{"StringLike", `"*"`, `"AWS"`, `"Service"`, "ForAnyValue"} {
			if strings.Contains(doc, bad) {
				t.Errorf("%s: trust policy contains %s: %s", id, bad, doc)
			}
		}
	}
}

// TestCIRoles checks what the workflows rely on: the roles' fixed names,
// one-hour sessions, descriptions, no managed or inline policies beside the
// reviewed ones, and the stack's outputs and environment.
func TestCIRoles(t *testing.T) {
	s := synthCI(t)
	if got := *s.stack.StackName(); got != "arc-benchmark-ci" {
		t.Errorf("stack name %s, want arc-benchmark-ci", got)
	}
	if *s.stack.Account() != s.settings.AWSAccount || *s.stack.Region() != s.settings.AWSRegion {
		t.Errorf("stack env %s/%s, want %s/%s (ci/settings.json)", *s.stack.Account(), *s.stack.Region(), s.settings.AWSAccount, s.settings.AWSRegion)
	}
	outputs := s.json["Outputs"].(map[string]interface{})
	for name, output := range map[string]string{CIDiffRoleName: "DiffRoleArn", CIDeployRoleName: "DeployRoleArn", CIStartRoleName: "StartRoleArn"} {
		id, role := s.role(t, name)
		if role["MaxSessionDuration"] != float64(3600) {
			t.Errorf("%s: MaxSessionDuration %v, want 3600", name, role["MaxSessionDuration"])
		}
		if d, _ := role["Description"].(string); len(d) < 40 || !strings.Contains(d, testRepository) {
			t.Errorf("%s: description %q does not say what the role is for", name, d)
		}
		if role["ManagedPolicyArns"] != nil || role["Policies"] != nil || role["PermissionsBoundary"] != nil {
			t.Errorf("%s: managed or inline policies beside its default policy: %v %v", name, role["ManagedPolicyArns"], role["Policies"])
		}
		o, _ := outputs[output].(map[string]interface{})
		if jsonText(o["Value"]) != jsonText(map[string]interface{}{"Fn::GetAtt": []interface{}{id, "Arn"}}) {
			t.Errorf("output %s is %v, want the ARN of %s", output, o["Value"], name)
		}
	}
	providerID, provider := one(t, s.json, "AWS::IAM::OIDCProvider", "Url", "https://token.actions.githubusercontent.com")
	if jsonText(props(provider)["ClientIdList"]) != `["sts.amazonaws.com"]` {
		t.Errorf("provider client ids %s, want [sts.amazonaws.com]", jsonText(props(provider)["ClientIdList"]))
	}
	if o, _ := outputs["GitHubOidcProviderArn"].(map[string]interface{}); jsonText(o["Value"]) != jsonText(map[string]interface{}{"Ref": providerID}) {
		t.Errorf("output GitHubOidcProviderArn is %v, want the provider's ARN", o["Value"])
	}
	// Nothing runs in the CI stack: no function, no custom resource.
	for id, r := range s.json["Resources"].(map[string]interface{}) {
		switch typ := r.(map[string]interface{})["Type"]; typ {
		case "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::OIDCProvider":
		default:
			t.Errorf("unexpected resource %s of type %v in the CI stack", id, typ)
		}
	}
}

// ciARN is an ARN of the settings' account as the grants list it.
func ciARN(s *ciSynthesized, service, resource string) string {
	account, region := s.settings.AWSAccount, s.settings.AWSRegion
	if service == "iam" {
		region = ""
	}
	return "arn:${AWS::Partition}:" + service + ":" + region + ":" + account + ":" + resource
}

func bootstrapRoleARN(s *ciSynthesized, kind string) string {
	return ciARN(s, "iam", fmt.Sprintf("role/cdk-hnb659fds-%s-role-%s-%s", kind, s.settings.AWSAccount, s.settings.AWSRegion))
}

func sameGrants(t *testing.T, who string, got, want []string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s may:\n  %s\nwant exactly:\n  %s", who, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestCIDeployRole: the deploy role can do nothing but become one of the
// CDK bootstrap roles of the settings' account and region.
func TestCIDeployRole(t *testing.T) {
	s := synthCI(t)
	id, _ := s.role(t, CIDeployRoleName)
	got := grants(s.json, id)
	sameGrants(t, "the deploy role", got, []string{
		"sts:AssumeRole on " + bootstrapRoleARN(s, "deploy"),
		"sts:AssumeRole on " + bootstrapRoleARN(s, "file-publishing"),
		"sts:AssumeRole on " + bootstrapRoleARN(s, "image-publishing"),
		"sts:AssumeRole on " + bootstrapRoleARN(s, "lookup"),
	})
	for _, g := range got {
		if !strings.HasPrefix(g, "sts:AssumeRole on ") || strings.Contains(g, "*") || strings.Contains(g, " if ") {
			t.Errorf("the deploy role may %s", g)
		}
	}
}

// TestCIDiffRole: what a pull request's workflow may do is read: become the
// lookup role (read-only), read the arcbench stacks and the bootstrap
// version.
func TestCIDiffRole(t *testing.T) {
	s := synthCI(t)
	id, _ := s.role(t, CIDiffRoleName)
	stacks := ciARN(s, "cloudformation", "stack/arc-benchmark-*/*")
	got := grants(s.json, id)
	sameGrants(t, "the diff role", got, []string{
		"sts:AssumeRole on " + bootstrapRoleARN(s, "lookup"),
		"cloudformation:DescribeStacks on " + stacks,
		"cloudformation:GetTemplate on " + stacks,
		"ssm:GetParameter on " + ciARN(s, "ssm", "parameter/cdk-bootstrap/hnb659fds/version"),
	})
	reads := regexp.MustCompile(`^(cloudformation:(Describe|Get|List)[A-Za-z]+|ssm:GetParameter) on `)
	for _, g := range got {
		if g != "sts:AssumeRole on "+bootstrapRoleARN(s, "lookup") && !reads.MatchString(g) {
			t.Errorf("the diff role may %s: not a read", g)
		}
	}
}

// TestCIStartRole: the start role's statements name only the benchmark
// stage's resources, exactly those `arcbench start` uses, and those are the
// names the stage's own stack gives its resources.
func TestCIStartRole(t *testing.T) {
	s := synthCI(t)
	bench := s.settings.Benchmark.Stage
	prefix := config.StackName(bench)
	id, _ := s.role(t, CIStartRoleName)
	inAccount := `"s3:ResourceAccount":"` + s.settings.AWSAccount + `"`
	bucket := "arn:${AWS::Partition}:s3:::" + prefix + "-*"
	runs := ciARN(s, "dynamodb", "table/"+prefix+"-runs")
	got := grants(s.json, id)
	sameGrants(t, "the start role", got, []string{
		"cloudformation:DescribeStacks on " + ciARN(s, "cloudformation", "stack/"+prefix+"/*"),
		"states:StartExecution on " + ciARN(s, "states", "stateMachine:"+prefix),
		"states:DescribeExecution on " + ciARN(s, "states", "execution:"+prefix+":*"),
		"dynamodb:GetItem on " + runs,
		"dynamodb:Query on " + runs + "/index/" + model.IndexExecution,
		"dynamodb:Query on " + ciARN(s, "dynamodb", "table/"+prefix+"-tasks"),
		"s3:ListBucket on " + bucket + ` if {"StringEquals":{` + inAccount + `},"StringLike":{"s3:prefix":"` + model.TaskDataRoot + `/*"}}`,
		"s3:PutObject on " + bucket + "/" + model.TaskListPrefix + `* if {"StringEquals":{` + inAccount + `}}`,
	})
	ofStage := regexp.MustCompile(`^\S+ on arn:\$\{AWS::Partition\}:[a-z0-9]+:[a-z0-9-]*:[0-9]*:(stack/|table/|stateMachine:|execution:)?` + regexp.QuoteMeta(prefix) + `([-/:]|$| )`)
	for _, g := range got {
		if !ofStage.MatchString(g) {
			t.Errorf("the start role may %s: not a resource of stage %s", g, bench)
		}
		for _, other := range s.settings.StageNames() {
			if other != bench && strings.Contains(g, config.StackName(other)) {
				t.Errorf("the start role may %s: a resource of stage %s", g, other)
			}
		}
	}

	// The names are those the benchmark stage's stack gives: its state
	// machine, tables and index; its bucket is named by CloudFormation
	// (no BucketName) <stack>-<logical id>-<13 random>, lower-cased,
	// within 63 characters without truncation, so prefix-* matches it.
	stage := synth(t, bench)
	if got := *stage.stack.StackName(); got != prefix {
		t.Fatalf("stage %s's stack is %s, want %s", bench, got, prefix)
	}
	one(t, stage.json, "AWS::StepFunctions::StateMachine", "StateMachineName", prefix)
	one(t, stage.json, "AWS::DynamoDB::Table", "TableName", prefix+"-tasks")
	_, runsTable := one(t, stage.json, "AWS::DynamoDB::Table", "TableName", prefix+"-runs")
	if !strings.Contains(jsonText(props(runsTable)["GlobalSecondaryIndexes"]), `"IndexName":"`+model.IndexExecution+`"`) {
		t.Errorf("the runs table of %s has no index %s", bench, model.IndexExecution)
	}
	buckets := resources(stage.json, "AWS::S3::Bucket")
	if len(buckets) != 1 {
		t.Fatalf("stage %s has %d buckets, want 1", bench, len(buckets))
	}
	for logicalID, b := range buckets {
		if name, named := props(b)["BucketName"]; named {
			t.Errorf("the bucket is named %v: grant on that name instead of %s-*", name, prefix)
		}
		if n := len(prefix+"-"+strings.ToLower(logicalID)+"-") + 13; n > 63 {
			t.Errorf("the generated bucket name would be %d characters: CloudFormation truncates it and %s-* may not match", n, prefix)
		}
	}
}

// TestCINag: cdk-nag's AWS Solutions rules find nothing unsuppressed in the
// CI stack, and every suppression says why.
func TestCINag(t *testing.T) {
	s := synthCI(t)
	noPanic(t, "annotations", func() {
		a := assertions.Annotations_FromStack(s.stack)
		nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
		for kind, found := range map[string]interface{}{"error": a.FindError(jsii.String("*"), nag), "warning": a.FindWarning(jsii.String("*"), nag)} {
			if text := jsonText(found); text != "[]" {
				t.Errorf("unsuppressed cdk-nag %ss: %s", kind, text)
			}
		}
	})
	for id, r := range s.json["Resources"].(map[string]interface{}) {
		meta, _ := r.(map[string]interface{})["Metadata"].(map[string]interface{})
		nag, _ := meta["cdk_nag"].(map[string]interface{})
		for _, rule := range list(nag["rules_to_suppress"]) {
			if rule, ok := rule.(map[string]interface{}); ok && len(strings.TrimSpace(fmt.Sprint(rule["reason"]))) < 60 {
				t.Errorf("%s suppresses %v without a reason", id, rule["id"])
			}
			if rule, ok := rule.(map[string]interface{}); ok && rule["applies_to"] == nil {
				t.Errorf("%s suppresses %v for every finding, not for named resources", id, rule["id"])
			}
		}
	}
}

// TestCIExistingProvider: with githubOidcProviderArn the roles trust that
// provider and the stack creates none (an account has only one).
func TestCIExistingProvider(t *testing.T) {
	s := synthCIOnly(t, "ci-existing-provider", map[string]interface{}{ctxGitHubRepository: testRepository, ctxGitHubOidcProviderArn: testProviderArn})
	if n := len(resources(s.json, "AWS::IAM::OIDCProvider")); n != 0 {
		t.Errorf("%d OIDC providers created, want none", n)
	}
	for id, r := range s.json["Resources"].(map[string]interface{}) {
		if typ := fmt.Sprint(r.(map[string]interface{})["Type"]); typ != "AWS::IAM::Role" && typ != "AWS::IAM::Policy" {
			t.Errorf("unexpected resource %s of type %s", id, typ)
		}
	}
	for _, name := range []string{CIDiffRoleName, CIDeployRoleName, CIStartRoleName} {
		_, role := s.role(t, name)
		if p := jsonText(trust(t, name, role)["Principal"]); p != `{"Federated":"`+testProviderArn+`"}` {
			t.Errorf("%s trusts %s, want the existing provider", name, p)
		}
	}
	if o := s.json["Outputs"].(map[string]interface{})["GitHubOidcProviderArn"].(map[string]interface{}); o["Value"] != testProviderArn {
		t.Errorf("output GitHubOidcProviderArn %v, want %s", o["Value"], testProviderArn)
	}
	noPanic(t, "annotations", func() {
		a := assertions.Annotations_FromStack(s.stack)
		if text := jsonText(a.FindError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*")))); text != "[]" {
			t.Errorf("unsuppressed cdk-nag errors: %s", text)
		}
	})

	// Another account's provider, or another issuer, is refused.
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, arn := range []string{
		"arn:aws:iam::210987654321:oidc-provider/token.actions.githubusercontent.com",
		"arn:aws:iam::123456789012:oidc-provider/gitlab.com",
		"token.actions.githubusercontent.com",
	} {
		app := newApp(t, false, map[string]interface{}{ctxGitHubRepository: testRepository, ctxGitHubOidcProviderArn: arn})
		if _, err := buildCI(app, root); err == nil || !strings.Contains(err.Error(), ctxGitHubOidcProviderArn) {
			t.Errorf("provider %q: error %v, want one naming %s", arn, err, ctxGitHubOidcProviderArn)
		}
	}
}

// TestNoCIStackWithoutRepository: without githubRepository the app is the
// stage's stack alone, as before.
func TestNoCIStackWithoutRepository(t *testing.T) {
	s := synth(t, snapshotStage)
	var stacks []string
	for _, c := range *s.stack.Node().Scope().Node().Children() {
		if awscdk.Stack_IsStack(c) != nil && *awscdk.Stack_IsStack(c) {
			stacks = append(stacks, *c.Node().Id())
		}
	}
	if strings.Join(stacks, ",") != config.StackName(snapshotStage) {
		t.Errorf("stacks %v, want %s alone", stacks, config.StackName(snapshotStage))
	}
}

// TestCIBadRepository: a githubRepository that is not OWNER/NAME (or would
// widen a subject) fails the synth, naming the context key.
func TestCIBadRepository(t *testing.T) {
	for _, repo := range []string{"acme", "acme/", "/arcbench", "acme/arc/bench", "acme/*", "*", "*/*", "acme/arcbench:ref",
		"acme/arcbench:*", "ac me/arcbench", "acme/..", "-acme/arcbench", "acme/arc?bench"} {
		app := newApp(t, false, map[string]interface{}{ctxStage: snapshotStage, ctxGitHubRepository: repo})
		var err error
		noPanic(t, repo, func() { _, err = build(app) })
		if err == nil || !strings.Contains(err.Error(), ctxGitHubRepository) {
			t.Errorf("githubRepository %q: error %v, want one naming %s", repo, err, ctxGitHubRepository)
		}
		if app.Node().TryFindChild(jsii.String(CIStackName)) != nil {
			t.Errorf("githubRepository %q: a CI stack was made", repo)
		}
	}
}

// TestCIDeploySubjectsFollowSettings: the deploy role trusts main only when
// a stage deploys on push, the environment only when one deploys through
// it, and there is no deploy role when nothing deploys.
func TestCIDeploySubjectsFollowSettings(t *testing.T) {
	const secret = `"api_keys_secret_arn": "` + testSecretArn + `"`
	for _, c := range []struct {
		name   string
		stages string
		want   []string // nil: no deploy role
	}{
		{"push only", `"sandbox-ci": {"diff": true, "deploy": "push", ` + secret + `}`, []string{sub("ref:refs/heads/main")}},
		{"environment only", `"prod": {"diff": true, "deploy": "environment", ` + secret + `}`, []string{sub("environment:reviewed")}},
		{"diff only", `"prod": {"diff": true, ` + secret + `}`, nil},
	} {
		settings, err := cisettings.Parse([]byte(`{"aws_account": "123456789012", "aws_region": "eu-west-1", "stages": {` + c.stages + `},
			"prod_environment": "reviewed", "benchmark": {"stage": "` + map[bool]string{true: "sandbox-ci", false: "prod"}[strings.Contains(c.stages, "sandbox-ci")] + `", "data_source": "evaluation"}}`))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		noPanic(t, c.name, func() {
			app := newApp(t, false, nil)
			ci, err := NewCIStack(app, settings, testRepository, "")
			if err != nil {
				t.Fatal(err)
			}
			tmpl := toGo(t, assertions.Template_FromStack(ci.Stack, nil).ToJSON())
			var found []string
			for _, r := range resources(tmpl, "AWS::IAM::Role") {
				if props(r)["RoleName"] != CIDeployRoleName {
					continue
				}
				eq := trust(t, c.name, props(r))["Condition"].(map[string]interface{})["StringEquals"].(map[string]interface{})
				found = []string{}
				for _, v := range list(eq["token.actions.githubusercontent.com:sub"]) {
					found = append(found, fmt.Sprint(v))
				}
			}
			if jsonText(found) != jsonText(c.want) {
				t.Errorf("%s: the deploy role trusts %v, want %v", c.name, found, c.want)
			}
		})
	}
}
