package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"arcbench/internal/cisettings"
	"arcbench/shared/config"
	"arcbench/shared/model"
)

// Context keys of the CI stack.
const (
	// ctxGitHubRepository (OWNER/NAME) asks for the CI stack: the GitHub
	// OIDC roles of that repository's workflows.
	ctxGitHubRepository = "githubRepository"
	// ctxGitHubOidcProviderArn imports the account's existing GitHub OIDC
	// provider instead of creating it (an account has only one).
	ctxGitHubOidcProviderArn = "githubOidcProviderArn"
	// ctxBootstrapQualifier is CDK's own context key for the bootstrap
	// qualifier; unset, the default (hnb659fds).
	ctxBootstrapQualifier = "@aws-cdk/core:bootstrapQualifier"
)

// GitHub's OIDC issuer and the audience its tokens carry for AWS.
const (
	githubOIDCHost     = "token.actions.githubusercontent.com"
	githubOIDCAudience = "sts.amazonaws.com"
	// githubDefaultBranch is where pushes deploy and where
	// repository_dispatch and workflow_dispatch runs start.
	githubDefaultBranch = "main"
)

// The CI stack's name and its roles' fixed names: the workflows build the
// role ARNs from the account in ci/settings.json and these names.
var (
	CIStackName    = config.StackName(config.CIStackSuffix)
	CIDiffRoleName = cisettings.RoleDiff
	// CIDeployRoleName deploys stages: only through the CDK bootstrap roles.
	CIDeployRoleName = cisettings.RoleDeploy
	// CIStartRoleName starts the benchmark's runs on benchmark.stage.
	CIStartRoleName = cisettings.RoleStart
)

// CIStack is the per-account stack of the GitHub Actions roles.
type CIStack struct {
	awscdk.Stack
	Provider   awsiam.IOidcProvider
	DiffRole   awsiam.Role
	DeployRole awsiam.Role
	StartRole  awsiam.Role
}

var (
	// A GitHub owner (user or organization) and repository name, as the
	// OIDC token's sub claim spells them: no ':' (the claim's separator),
	// no wildcard.
	githubOwner = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
	githubName  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
	githubOIDC  = regexp.MustCompile(`^arn:aws[a-z-]*:iam::(\d{12}):oidc-provider/` + regexp.QuoteMeta(githubOIDCHost) + `$`)
)

// checkGitHubRepository checks an OWNER/NAME repository value.
func checkGitHubRepository(repo string) error {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || !githubOwner.MatchString(owner) || !githubName.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("context %s %q: want the GitHub repository as OWNER/NAME (e.g. acme/arcbench)", ctxGitHubRepository, repo)
	}
	return nil
}

// buildCI adds the CI stack to app when context githubRepository is given,
// with ci/settings.json of the repository at root; without it, nothing.
func buildCI(app awscdk.App, root string) (*CIStack, error) {
	repo, err := stringContext(app.Node(), ctxGitHubRepository)
	if err != nil || repo == "" {
		return nil, err
	}
	providerArn, err := stringContext(app.Node(), ctxGitHubOidcProviderArn)
	if err != nil {
		return nil, err
	}
	if err := checkGitHubRepository(repo); err != nil {
		return nil, err
	}
	settings, err := cisettings.LoadFrom(root)
	if err != nil {
		return nil, fmt.Errorf("context %s: %w", ctxGitHubRepository, err)
	}
	return NewCIStack(app, settings, repo, providerArn)
}

// stringContext is a context value that must be a string; unset: "".
func stringContext(node constructs.Node, key string) (string, error) {
	v := node.TryGetContext(jsii.String(key))
	if v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("context %s: want a string, got %v", key, v)
	}
	return strings.TrimSpace(s), nil
}

// NewCIStack creates arc-benchmark-ci in the settings' account and region:
// GitHub's OIDC provider (or the existing one, oidcProviderArn) and three
// roles the repository's workflows assume, each trusting exactly the
// workflows' subjects and allowed exactly what those workflows call.
func NewCIStack(app constructs.Construct, settings *cisettings.Settings, repo string, oidcProviderArn string) (*CIStack, error) {
	if err := checkGitHubRepository(repo); err != nil {
		return nil, err
	}
	account, region := settings.AWSAccount, settings.AWSRegion
	if oidcProviderArn != "" {
		m := githubOIDC.FindStringSubmatch(oidcProviderArn)
		if m == nil {
			return nil, fmt.Errorf("context %s %q: want arn:aws:iam::<account>:oidc-provider/%s", ctxGitHubOidcProviderArn, oidcProviderArn, githubOIDCHost)
		}
		if m[1] != account {
			return nil, fmt.Errorf("context %s %q: the provider must be in the roles' account, %s (ci/settings.json aws_account)", ctxGitHubOidcProviderArn, oidcProviderArn, account)
		}
	}
	for _, name := range settings.StageNames() {
		if config.StackName(name) == CIStackName {
			return nil, fmt.Errorf("%s: stage %q would share its stack's name with the CI stack %s", cisettings.Path, name, CIStackName)
		}
	}
	qualifier := *awscdk.DefaultStackSynthesizer_DEFAULT_QUALIFIER()
	if q, ok := app.Node().TryGetContext(jsii.String(ctxBootstrapQualifier)).(string); ok && q != "" {
		qualifier = q
	}

	stack := awscdk.NewStack(app, jsii.String(CIStackName), &awscdk.StackProps{
		Description: jsii.String("arcbench CI: the GitHub Actions OIDC roles of " + repo),
		Env:         &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)},
		Tags:        &map[string]*string{"arcbench:ci": jsii.String(repo)},
	})
	ci := &CIStack{Stack: stack}

	if oidcProviderArn != "" {
		ci.Provider = awsiam.OidcProviderNative_FromOidcProviderArn(stack, jsii.String("GitHubOidc"), jsii.String(oidcProviderArn))
	} else {
		ci.Provider = awsiam.NewOidcProviderNative(stack, jsii.String("GitHubOidc"), &awsiam.OidcProviderNativeProps{
			Url:       jsii.String("https://" + githubOIDCHost),
			ClientIds: jsii.Strings(githubOIDCAudience),
		})
	}

	// arn builds an ARN of this account; region "" for global services.
	partition := *awscdk.Aws_PARTITION()
	arn := func(service, region, resource string) string {
		acct := account
		if service == "s3" {
			acct = ""
		}
		return "arn:" + partition + ":" + service + ":" + region + ":" + acct + ":" + resource
	}
	bootstrapRole := func(kind string) string {
		return arn("iam", "", fmt.Sprintf("role/cdk-%s-%s-role-%s-%s", qualifier, kind, account, region))
	}
	// newRole is a role only GitHub's tokens for repo with one of subjects
	// may assume: aud and sub compared exactly (StringEquals), no pattern.
	newRole := func(id, name, description string, subjects []string) awsiam.Role {
		subs := make([]string, len(subjects))
		for i, s := range subjects {
			subs[i] = "repo:" + repo + ":" + s
		}
		var sub interface{} = subs
		if len(subs) == 1 {
			sub = subs[0]
		}
		return awsiam.NewRole(stack, jsii.String(id), &awsiam.RoleProps{
			RoleName:    jsii.String(name),
			Description: jsii.String(description),
			AssumedBy: awsiam.NewWebIdentityPrincipal(ci.Provider.OidcProviderArn(), &map[string]interface{}{
				"StringEquals": map[string]interface{}{
					githubOIDCHost + ":aud": githubOIDCAudience,
					githubOIDCHost + ":sub": sub,
				},
			}),
			MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
		})
	}
	allow := func(role awsiam.Role, actions []string, resources []string, conditions map[string]interface{}) {
		st := &awsiam.PolicyStatementProps{Actions: jsii.Strings(actions...), Resources: jsii.Strings(resources...)}
		if conditions != nil {
			st.Conditions = &conditions
		}
		role.AddToPolicy(awsiam.NewPolicyStatement(st))
	}
	stageStacks := arn("cloudformation", region, "stack/"+config.NamePrefix+"-*/*")
	regexStacks := "Resource::arn:" + arnEnv + ":cloudformation:" + region + ":" + account + `:stack\/` + config.NamePrefix + `-\*\/\*`

	// Pull requests: `cdk diff --method=template` reads the deployed
	// templates through the bootstrap's lookup role (ReadOnlyAccess, denying
	// secrets), or with the role's own credentials when it cannot.
	ci.DiffRole = newRole("DiffRole", CIDiffRoleName,
		"GitHub Actions, pull requests of "+repo+": cdk diff of the arcbench stacks (read only: the CDK lookup role and the stacks' templates)",
		[]string{"pull_request"})
	allow(ci.DiffRole, []string{"sts:AssumeRole"}, []string{bootstrapRole("lookup")}, nil)
	allow(ci.DiffRole, []string{"cloudformation:DescribeStacks", "cloudformation:GetTemplate"}, []string{stageStacks}, nil)
	allow(ci.DiffRole, []string{"ssm:GetParameter"}, []string{arn("ssm", region, "parameter/cdk-bootstrap/"+qualifier+"/version")}, nil)
	suppress(ci.DiffRole, "AwsSolutions-IAM5", "cdk diff reads the template of every arcbench stack, arc-benchmark-<stage> (a pull request may add a stage to diff) and arc-benchmark-ci: "+
		"the first wildcard stands for the stage's name, the second for the stack id CloudFormation appends; both actions are reads.",
		cdknag.RegexAppliesTo{Regex: jsii.String("/^" + regexStacks + "$/")})

	// Pushes to main deploy the sandbox stages, the GitHub environment (with
	// its required reviewers) the others: the deploy runs as CDK's bootstrap
	// roles, which alone may change the account.
	var deploySubjects []string
	if len(settings.Where(func(s cisettings.Stage) bool { return s.Deploy == cisettings.DeployOnPush })) > 0 {
		deploySubjects = append(deploySubjects, "ref:refs/heads/"+githubDefaultBranch)
	}
	if len(settings.Where(func(s cisettings.Stage) bool { return s.Deploy == cisettings.DeployThroughEnvironment })) > 0 {
		deploySubjects = append(deploySubjects, "environment:"+settings.ProdEnvironment)
	}
	if len(deploySubjects) > 0 {
		ci.DeployRole = newRole("DeployRole", CIDeployRoleName,
			"GitHub Actions, deploys of "+repo+" (sandbox stages on push to main, the others in environment "+settings.ProdEnvironment+
				"): cdk deploy through the CDK bootstrap roles only",
			deploySubjects)
		var roles []string
		for _, kind := range []string{"deploy", "file-publishing", "image-publishing", "lookup"} {
			roles = append(roles, bootstrapRole(kind))
		}
		allow(ci.DeployRole, []string{"sts:AssumeRole"}, roles, nil)
	}

	// Benchmark triggers (repository_dispatch, workflow_dispatch: runs on
	// main) start runs on benchmark.stage, as `arcbench start --all-tasks`
	// does: find the stage's stack, list its task data, upload a long task
	// list, start the execution and wait for its run.
	bench := settings.Benchmark.Stage
	prefix := config.StackName(bench)
	ci.StartRole = newRole("StartRole", CIStartRoleName,
		"GitHub Actions, benchmark triggers of "+repo+" on main: arcbench start on stage "+bench+" (its stack, state machine, runs and tasks tables, bucket)",
		[]string{"ref:refs/heads/" + githubDefaultBranch})
	allow(ci.StartRole, []string{"cloudformation:DescribeStacks"}, []string{arn("cloudformation", region, "stack/"+prefix+"/*")}, nil)
	allow(ci.StartRole, []string{"states:StartExecution"}, []string{arn("states", region, "stateMachine:"+prefix)}, nil)
	allow(ci.StartRole, []string{"states:DescribeExecution"}, []string{arn("states", region, "execution:"+prefix+":*")}, nil)
	runsTable := arn("dynamodb", region, "table/"+prefix+"-runs")
	allow(ci.StartRole, []string{"dynamodb:GetItem"}, []string{runsTable}, nil)
	allow(ci.StartRole, []string{"dynamodb:Query"}, []string{runsTable + "/index/" + model.IndexExecution}, nil)
	allow(ci.StartRole, []string{"dynamodb:Query"}, []string{arn("dynamodb", region, "table/"+prefix+"-tasks")}, nil)
	// The bucket has no fixed name (storage.go): CloudFormation names it
	// <stack name>-<logical id>-<random>, lower-cased, so arc-benchmark-<stage>-*;
	// s3:ResourceAccount keeps a bucket of that name in another account out.
	bucket := arn("s3", "", prefix+"-*")
	inAccount := map[string]interface{}{"s3:ResourceAccount": account}
	allow(ci.StartRole, []string{"s3:ListBucket"}, []string{bucket}, map[string]interface{}{
		"StringEquals": inAccount,
		"StringLike":   map[string]interface{}{"s3:prefix": model.TaskDataRoot + "/*"},
	})
	allow(ci.StartRole, []string{"s3:PutObject"}, []string{bucket + "/" + model.TaskListPrefix + "*"}, map[string]interface{}{
		"StringEquals": inAccount,
	})
	quoted := regexp.QuoteMeta(prefix)
	suppress(ci.StartRole, "AwsSolutions-IAM5", "The start role acts on stage "+bench+" only: any execution of its state machine ("+prefix+":*, execution names exist only at run time), "+
		"its stack by name (* is the stack id CloudFormation appends), and its bucket, whose name CloudFormation generates from the stack's name ("+prefix+"-*, in this account only), "+
		"listed under "+model.TaskDataRoot+"/ only and written under "+model.TaskListPrefix+" only (* is the uploaded task list's name).",
		cdknag.RegexAppliesTo{Regex: jsii.String("/^Resource::arn:" + arnEnv + ":states:" + region + ":" + account + ":execution:" + quoted + `:\*$/`)},
		cdknag.RegexAppliesTo{Regex: jsii.String("/^Resource::arn:" + arnEnv + ":cloudformation:" + region + ":" + account + `:stack\/` + quoted + `\/\*$/`)},
		cdknag.RegexAppliesTo{Regex: jsii.String("/^Resource::arn:" + arnEnv + `:s3:::` + quoted + `-\*$/`)},
		cdknag.RegexAppliesTo{Regex: jsii.String("/^Resource::arn:" + arnEnv + `:s3:::` + quoted + `-\*\/` + strings.ReplaceAll(regexp.QuoteMeta(model.TaskListPrefix), "/", `\/`) + `\*$/`)})

	output := func(id string, value *string, what string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(what)})
	}
	output("DiffRoleArn", ci.DiffRole.RoleArn(), "Role of the pull-request workflows (cdk diff)")
	if ci.DeployRole != nil {
		output("DeployRoleArn", ci.DeployRole.RoleArn(), "Role of the deploy workflows (cdk deploy through the bootstrap roles)")
	}
	output("StartRoleArn", ci.StartRole.RoleArn(), "Role of the benchmark triggers (arcbench start on "+bench+")")
	output("GitHubOidcProviderArn", ci.Provider.OidcProviderArn(), "GitHub Actions' OIDC provider the roles trust")
	return ci, nil
}
