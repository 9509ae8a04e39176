package localrun

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"arcbench/internal/iam"
)

// TrustedKey is the access key of the runner's own calls (creating the
// tables, seeding, reading results) and of a developer's commands against a
// local stage: an administrator's, never checked.
const TrustedKey = "local"

// principals builds the roles a local run acts as (names) with the identity
// policies the template attaches to each: its inline Policies and the
// AWS::IAM::Policy resources that name it. Managed policies are refused:
// their documents are not in the template, so they cannot be checked. (The
// roles of CDK's own custom resources, which never run locally, are left out.)
func principals(t *Template, names []string) ([]*iam.Principal, error) {
	byID := map[string]*iam.Principal{}
	for _, id := range t.OfType("AWS::IAM::Role") {
		if !slices.Contains(names, t.physicalName(id)) {
			continue
		}
		r := t.Resources[id]
		if m, ok := r.Properties["ManagedPolicyArns"]; ok {
			return nil, fmt.Errorf("role %s has managed policies %v: the local IAM check cannot read their documents", id, m)
		}
		p := &iam.Principal{Role: t.physicalName(id), Account: AccountID}
		inline, _ := r.Properties["Policies"].([]any)
		for i, raw := range inline {
			pol, _ := raw.(map[string]any)
			doc, err := t.Resolve(pol["PolicyDocument"])
			if err != nil {
				return nil, fmt.Errorf("role %s, inline policy %d: %w", id, i, err)
			}
			parsed, err := iam.ParsePolicy(fmt.Sprintf("%s/%v", id, pol["PolicyName"]), doc)
			if err != nil {
				return nil, err
			}
			p.Policies = append(p.Policies, parsed)
		}
		byID[id] = p
	}
	for _, id := range t.OfType("AWS::IAM::Policy") {
		r := t.Resources[id]
		doc, err := t.Resolve(r.Properties["PolicyDocument"])
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", id, err)
		}
		parsed, err := iam.ParsePolicy(id, doc)
		if err != nil {
			return nil, err
		}
		roles, _ := r.Properties["Roles"].([]any)
		for _, role := range roles {
			ref, _ := role.(map[string]any)["Ref"].(string)
			if p := byID[ref]; p != nil {
				p.Policies = append(p.Policies, parsed)
			}
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(slices.Collect(maps.Values(byID)), func(p *iam.Principal) bool { return p.Role == n }) {
			return nil, fmt.Errorf("role %s is not in the template", n)
		}
	}
	out := make([]*iam.Principal, 0, len(byID))
	for _, p := range byID {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Role < out[j].Role })
	return out, nil
}

// roleOf is the name of the role a resource property names by ARN (a
// function's Role, a state machine's RoleArn, a job's JobRoleArn).
func (t *Template) roleOf(v any) (string, error) {
	arn, err := t.Resolve(v)
	if err != nil {
		return "", err
	}
	s := fmt.Sprint(arn)
	_, name, ok := strings.Cut(s, ":role/")
	if !ok {
		return "", fmt.Errorf("%q is not a role ARN", s)
	}
	return name, nil
}

// integrationError is how Step Functions reports a refused call of one of
// its integrations: the service's exception, AWS's message.
func integrationError(name string, err error, service string) *stepError {
	return &stepError{Name: name, Message: fmt.Sprintf("%s (Service: %s; Status Code: 403; Error Code: AccessDeniedException)", err.Error(), service)}
}

// Access is what the IAM check of a run allowed and refused.
type Access struct {
	// Authorized counts the requests allowed, in all and per principal.
	Authorized  int            `json:"authorized"`
	ByPrincipal map[string]int `json:"by_principal"`
	Denials     []iam.Denial   `json:"denials"`
	// MissingKeys are reads of missing objects answered 403 AccessDenied, as
	// S3 answers a caller without s3:ListBucket: not refusals of the
	// policies, but what the caller saw.
	MissingKeys []iam.Denial `json:"missing_keys,omitempty"`
}
