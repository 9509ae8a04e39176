package localrun

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/shared/model"
)

// createTables creates every DynamoDB table of the template with its own key
// schema and indexes: a handler that disagrees with the template fails here,
// as it would on AWS.
func createTables(ctx context.Context, t *Template, db *dynamodb.Client) ([]string, error) {
	var names []string
	for _, id := range t.OfType("AWS::DynamoDB::Table") {
		props, err := t.Resolve(t.Resources[id].Properties)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", id, err)
		}
		p := props.(map[string]any)
		spec := map[string]any{"BillingMode": "PAY_PER_REQUEST"}
		for _, k := range []string{"TableName", "KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "LocalSecondaryIndexes"} {
			if v, ok := p[k]; ok {
				spec[k] = v
			}
		}
		if _, ok := spec["TableName"]; !ok {
			spec["TableName"] = t.physicalName(id)
		}
		raw, _ := json.Marshal(spec)
		var in dynamodb.CreateTableInput
		if err := json.Unmarshal(raw, &in); err != nil {
			return nil, fmt.Errorf("table %s: %w", id, err)
		}
		if _, err := db.CreateTable(ctx, &in); err != nil {
			return nil, fmt.Errorf("create table %s: %w", aws.ToString(in.TableName), err)
		}
		names = append(names, aws.ToString(in.TableName))
	}
	return names, nil
}

// createBuckets creates the template's buckets.
func createBuckets(ctx context.Context, t *Template, s3c *s3.Client) ([]string, error) {
	var names []string
	for _, id := range t.OfType("AWS::S3::Bucket") {
		name := t.physicalName(id)
		if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", name, err)
		}
		names = append(names, name)
	}
	return names, nil
}

// function is one of our handlers as the template deploys it.
type function struct {
	Name    string // physical name
	Handler string // model.HandlerInitialize, ...
	Env     map[string]string
	Role    string // the execution role's name
}

// functions finds the template's functions that are arcbench handlers (by
// their name's suffix) with their resolved environment.
func functions(t *Template) (map[string]*function, error) {
	out := map[string]*function{}
	for _, id := range t.OfType("AWS::Lambda::Function") {
		name := t.physicalName(id)
		var handler string
		for _, h := range model.Handlers {
			if strings.HasSuffix(name, "-"+h) {
				handler = h
			}
		}
		if handler == "" {
			continue // CDK's own custom-resource functions
		}
		env := map[string]string{}
		if e, ok := t.Resources[id].Properties["Environment"].(map[string]any); ok {
			vars, err := t.Resolve(e["Variables"])
			if err != nil {
				return nil, fmt.Errorf("function %s: %w", name, err)
			}
			for k, v := range vars.(map[string]any) {
				env[k] = fmt.Sprint(v)
			}
		}
		role, err := t.roleOf(t.Resources[id].Properties["Role"])
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", name, err)
		}
		out[name] = &function{Name: name, Handler: handler, Env: env, Role: role}
	}
	if len(out) != len(model.Handlers) {
		return nil, fmt.Errorf("template %s has %d of the %d handler functions", t.Path, len(out), len(model.Handlers))
	}
	return out, nil
}

// job is the template's job definition (one in this stack) as the local run
// launches it: the container's environment and the role it runs as.
type job struct {
	Env  map[string]string
	Role string
	// Secrets are the variables the job reads from the API-keys secret (the
	// stage's providerKeys): a local run passes them on from the caller.
	Secrets []string
	// Resources and Platform are the container's ResourceRequirements and
	// RuntimePlatform as the template gives them: a job's description
	// carries them, and its compute is priced from them.
	Resources []any
	Platform  map[string]any
}

func jobDefinition(t *Template) (*job, error) {
	ids := t.OfType("AWS::Batch::JobDefinition")
	if len(ids) != 1 {
		return nil, fmt.Errorf("template has %d job definitions, want 1", len(ids))
	}
	raw, err := t.Prop(ids[0], "ContainerProperties")
	if err != nil {
		return nil, err
	}
	cp := raw.(map[string]any)
	j := &job{Env: map[string]string{}}
	list, _ := cp["Environment"].([]any)
	for _, e := range list {
		kv := e.(map[string]any)
		j.Env[fmt.Sprint(kv["Name"])] = fmt.Sprint(kv["Value"])
	}
	j.Resources, _ = cp["ResourceRequirements"].([]any)
	j.Platform, _ = cp["RuntimePlatform"].(map[string]any)
	secrets, _ := cp["Secrets"].([]any)
	for _, e := range secrets {
		j.Secrets = append(j.Secrets, fmt.Sprint(e.(map[string]any)["Name"]))
	}
	sort.Strings(j.Secrets)
	if j.Role, err = t.roleOf(cp["JobRoleArn"]); err != nil {
		return nil, fmt.Errorf("job definition %s: %w", ids[0], err)
	}
	return j, nil
}

// JobSecrets are the variables a stage's job reads from its API-keys secret
// (its providerKeys), as its template names them, sorted.
func JobSecrets(t *Template) ([]string, error) {
	j, err := jobDefinition(t)
	if err != nil {
		return nil, err
	}
	return j.Secrets, nil
}

// stateMachine is a state machine of the template with its definition.
type stateMachine struct {
	ID         string
	ARN        string
	Definition map[string]any
	// Role is the execution role its integrations call AWS with;
	// StartedBy the role of the EventBridge rule that starts it, if any.
	Role, StartedBy string
}

// stateMachines returns the run's state machine and, if the stack has one,
// the reaper started by an EventBridge rule when an execution ends badly
// (with the statuses it reacts to).
func stateMachines(t *Template) (run, reaper *stateMachine, reaperOn []string, err error) {
	targets, ruleRoles := map[string][]string{}, map[string]string{}
	for _, id := range t.OfType("AWS::Events::Rule") {
		props, err := t.Resolve(t.Resources[id].Properties)
		if err != nil {
			return nil, nil, nil, err
		}
		p := props.(map[string]any)
		var statuses []string
		if pat, ok := p["EventPattern"].(map[string]any); ok {
			if d, ok := pat["detail"].(map[string]any); ok {
				if st, ok := d["status"].([]any); ok {
					for _, s := range st {
						statuses = append(statuses, fmt.Sprint(s))
					}
				}
			}
		}
		ts, _ := p["Targets"].([]any)
		for _, tg := range ts {
			target := tg.(map[string]any)
			targets[fmt.Sprint(target["Arn"])] = statuses
			if role, ok := target["RoleArn"]; ok {
				if name, err := t.roleOf(role); err == nil {
					ruleRoles[fmt.Sprint(target["Arn"])] = name
				}
			}
		}
	}
	for _, id := range t.OfType("AWS::StepFunctions::StateMachine") {
		def, err := t.Prop(id, "DefinitionString")
		if err != nil {
			return nil, nil, nil, fmt.Errorf("state machine %s: %w", id, err)
		}
		var parsed map[string]any
		if err := json.Unmarshal([]byte(fmt.Sprint(def)), &parsed); err != nil {
			return nil, nil, nil, fmt.Errorf("state machine %s definition: %w", id, err)
		}
		a, _ := t.ref(id)
		role, err := t.roleOf(t.Resources[id].Properties["RoleArn"])
		if err != nil {
			return nil, nil, nil, fmt.Errorf("state machine %s: %w", id, err)
		}
		sm := &stateMachine{ID: id, ARN: fmt.Sprint(a), Definition: parsed, Role: role, StartedBy: ruleRoles[fmt.Sprint(a)]}
		if st, ok := targets[sm.ARN]; ok {
			reaper, reaperOn = sm, st
		} else if run == nil {
			run = sm
		} else {
			return nil, nil, nil, fmt.Errorf("template has more than one state machine not started by a rule")
		}
	}
	if run == nil {
		return nil, nil, nil, fmt.Errorf("template %s has no state machine", t.Path)
	}
	return run, reaper, reaperOn, nil
}

// resources maps every Task state name of a definition (nested ones too) to
// its Resource. State names are unique across the definition.
func resources(def map[string]any, into map[string]string) map[string]string {
	if into == nil {
		into = map[string]string{}
	}
	states, _ := def["States"].(map[string]any)
	for name, s := range states {
		st, _ := s.(map[string]any)
		if r, ok := st["Resource"].(string); ok {
			into[name] = r
		}
		for _, k := range []string{"ItemProcessor", "Iterator"} {
			if p, ok := st[k].(map[string]any); ok {
				resources(p, into)
			}
		}
		if bs, ok := st["Branches"].([]any); ok {
			for _, b := range bs {
				resources(b.(map[string]any), into)
			}
		}
	}
	return into
}
