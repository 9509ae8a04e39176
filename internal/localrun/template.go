package localrun

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Local stand-ins for what CloudFormation would fill in.
const (
	Region    = "us-east-1"
	AccountID = "000000000000"
)

// Template is a synthesized CloudFormation template, with what the local run
// reads from it resolved to local names: physical names stay as the CDK app
// set them, ARNs are built for the local account.
type Template struct {
	Path string
	// StackName is the stack's name (the assembly's artifact id).
	StackName string
	Resources map[string]Resource `json:"Resources"`
	Outputs   map[string]struct {
		Value any `json:"Value"`
	} `json:"Outputs"`
}

// Resource is one resource of the template.
type Resource struct {
	Type       string         `json:"Type"`
	Properties map[string]any `json:"Properties"`
}

// LoadAssembly finds the stack template in a cloud assembly folder (cdk.out).
func LoadAssembly(dir string) (*Template, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("read cloud assembly: %w", err)
	}
	var manifest struct {
		Artifacts map[string]struct {
			Type       string `json:"type"`
			Properties struct {
				TemplateFile string `json:"templateFile"`
			} `json:"properties"`
		} `json:"artifacts"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, fmt.Errorf("read %s/manifest.json: %w", dir, err)
	}
	var files, names []string
	for id, a := range manifest.Artifacts {
		if a.Type == "aws:cloudformation:stack" {
			files, names = append(files, a.Properties.TemplateFile), append(names, id)
		}
	}
	if len(files) != 1 {
		return nil, fmt.Errorf("cloud assembly %s has %d stacks, want exactly one", dir, len(files))
	}
	t, err := LoadTemplate(filepath.Join(dir, files[0]))
	if err != nil {
		return nil, err
	}
	t.StackName = names[0]
	return t, nil
}

// LoadTemplate reads one template file.
func LoadTemplate(path string) (*Template, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t := &Template{Path: path, StackName: strings.TrimSuffix(filepath.Base(path), ".template.json")}
	if err := json.Unmarshal(raw, t); err != nil {
		return nil, fmt.Errorf("read template %s: %w", path, err)
	}
	return t, nil
}

// OfType lists the logical ids of the resources of one type, sorted.
func (t *Template) OfType(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Prop resolves one property of a resource.
func (t *Template) Prop(id, name string) (any, error) {
	r, ok := t.Resources[id]
	if !ok {
		return nil, fmt.Errorf("no resource %s", id)
	}
	return t.Resolve(r.Properties[name])
}

// Resolve evaluates the intrinsic functions the stack uses (Ref, Fn::GetAtt,
// Fn::Join, Fn::Sub, Fn::Select, Fn::Split) with local values.
func (t *Template) Resolve(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return t.intrinsic(k, arg)
				}
			}
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			r, err := t.Resolve(e)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			r, err := t.Resolve(e)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

func (t *Template) intrinsic(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		name, _ := arg.(string)
		return t.ref(name)
	case "Fn::GetAtt":
		var parts []string
		switch a := arg.(type) {
		case []any:
			for _, p := range a {
				s, _ := p.(string)
				parts = append(parts, s)
			}
		case string:
			parts = strings.SplitN(a, ".", 2)
		}
		if len(parts) != 2 {
			return nil, fmt.Errorf("Fn::GetAtt %v", arg)
		}
		return t.getAtt(parts[0], parts[1])
	case "Fn::Join":
		a, _ := arg.([]any)
		if len(a) != 2 {
			return nil, fmt.Errorf("Fn::Join %v", arg)
		}
		sep, _ := a[0].(string)
		list, err := t.Resolve(a[1])
		if err != nil {
			return nil, err
		}
		items, _ := list.([]any)
		strs := make([]string, len(items))
		for i, it := range items {
			strs[i] = fmt.Sprint(it)
		}
		return strings.Join(strs, sep), nil
	case "Fn::Select":
		a, _ := arg.([]any)
		if len(a) != 2 {
			return nil, fmt.Errorf("Fn::Select %v", arg)
		}
		idx, err := t.Resolve(a[0])
		if err != nil {
			return nil, err
		}
		list, err := t.Resolve(a[1])
		if err != nil {
			return nil, err
		}
		items, _ := list.([]any)
		var i int
		fmt.Sscan(fmt.Sprint(idx), &i)
		if i < 0 || i >= len(items) {
			return nil, fmt.Errorf("Fn::Select index %d of %d", i, len(items))
		}
		return items[i], nil
	case "Fn::Split":
		a, _ := arg.([]any)
		if len(a) != 2 {
			return nil, fmt.Errorf("Fn::Split %v", arg)
		}
		sep, _ := a[0].(string)
		s, err := t.Resolve(a[1])
		if err != nil {
			return nil, err
		}
		parts := strings.Split(fmt.Sprint(s), sep)
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	case "Fn::Sub":
		var text string
		vars := map[string]any{}
		switch a := arg.(type) {
		case string:
			text = a
		case []any:
			text, _ = a[0].(string)
			if len(a) > 1 {
				m, _ := a[1].(map[string]any)
				for k, v := range m {
					r, err := t.Resolve(v)
					if err != nil {
						return nil, err
					}
					vars[k] = r
				}
			}
		}
		var err error
		out := subPattern.ReplaceAllStringFunc(text, func(m string) string {
			name := m[2 : len(m)-1]
			if v, ok := vars[name]; ok {
				return fmt.Sprint(v)
			}
			var r any
			var e error
			if id, attr, ok := strings.Cut(name, "."); ok {
				r, e = t.getAtt(id, attr)
			} else {
				r, e = t.ref(name)
			}
			if e != nil {
				err = e
			}
			return fmt.Sprint(r)
		})
		return out, err
	}
	return nil, fmt.Errorf("intrinsic %s is not supported locally", fn)
}

var subPattern = regexp.MustCompile(`\$\{[^}!][^}]*\}`)

func (t *Template) ref(name string) (any, error) {
	switch name {
	case "AWS::Region":
		return Region, nil
	case "AWS::AccountId":
		return AccountID, nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "AWS::StackName":
		return "local", nil
	case "AWS::NoValue":
		return nil, nil
	}
	r, ok := t.Resources[name]
	if !ok {
		return nil, fmt.Errorf("a Ref to unknown resource %s", name)
	}
	phys := t.physicalName(name)
	switch r.Type {
	case "AWS::Batch::JobQueue":
		return arn("batch", "job-queue/"+phys), nil
	case "AWS::Batch::JobDefinition":
		return arn("batch", "job-definition/"+phys+":1"), nil
	case "AWS::StepFunctions::StateMachine":
		return arn("states", "stateMachine:"+phys), nil
	case "AWS::SNS::Topic":
		return arn("sns", phys), nil
	}
	return phys, nil
}

func (t *Template) getAtt(id, attr string) (any, error) {
	r, ok := t.Resources[id]
	if !ok {
		return nil, fmt.Errorf("Fn::GetAtt of unknown resource %s", id)
	}
	phys := t.physicalName(id)
	switch {
	case r.Type == "AWS::Batch::JobQueue" && attr == "JobQueueArn":
		return t.ref(id)
	case r.Type == "AWS::Batch::JobDefinition" && attr == "JobDefinitionArn":
		return t.ref(id)
	}
	if attr == "Arn" {
		switch r.Type {
		case "AWS::Lambda::Function":
			return arn("lambda", "function:"+phys), nil
		case "AWS::DynamoDB::Table":
			return arn("dynamodb", "table/"+phys), nil
		case "AWS::S3::Bucket":
			return "arn:aws:s3:::" + phys, nil
		case "AWS::IAM::Role":
			return "arn:aws:iam::" + AccountID + ":role/" + phys, nil
		case "AWS::Logs::LogGroup":
			return arn("logs", "log-group:"+phys+":*"), nil
		case "AWS::StepFunctions::StateMachine":
			return arn("states", "stateMachine:"+phys), nil
		case "AWS::SecretsManager::Secret":
			return arn("secretsmanager", "secret:"+phys), nil
		}
		return arn(strings.ToLower(strings.Split(r.Type, "::")[1]), phys), nil
	}
	if attr == "Name" || strings.HasSuffix(attr, "Name") {
		return phys, nil
	}
	// Attributes the local run never reads (endpoints, stream ARNs...).
	return id + "." + attr, nil
}

// physicalName is the name the stack gives a resource, or its logical id.
func (t *Template) physicalName(id string) string {
	r := t.Resources[id]
	for _, p := range []string{"TableName", "BucketName", "FunctionName", "StateMachineName", "JobQueueName",
		"JobDefinitionName", "ComputeEnvironmentName", "LogGroupName", "RoleName", "TopicName", "Name"} {
		if v, ok := r.Properties[p]; ok {
			if rv, err := t.Resolve(v); err == nil {
				if s, ok := rv.(string); ok && s != "" {
					return s
				}
			}
		}
	}
	if r.Type == "AWS::S3::Bucket" {
		return strings.ToLower(id) // a valid bucket name, as CloudFormation would generate one
	}
	return id
}

func arn(service, resource string) string {
	return "arn:aws:" + service + ":" + Region + ":" + AccountID + ":" + resource
}
