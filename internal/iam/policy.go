// Package iam authorizes the AWS requests of a local run as AWS would: each
// principal (a role of the synthesized template) holds the identity policies
// the template gives it, and a request is allowed when some statement allows
// its action on each of its resources and none denies it. It evaluates what
// arcbench's templates use (Allow and Deny; Action and NotAction, Resource
// and NotResource with * and ? wildcards; the condition operators listed in
// operators) and refuses, when the policies are loaded, anything it does not
// understand, so that a template using more never passes unchecked.
package iam

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Statement is one compiled policy statement.
type Statement struct {
	Sid          string
	Allow        bool
	Actions      []string // lower-cased patterns
	NotActions   []string
	Resources    []string
	NotResources []string
	Conditions   []Condition
}

// Condition is one condition of a statement: operator, key, values (any
// value may match).
type Condition struct {
	Operator string
	Key      string
	Values   []string
}

// Policy is a named policy document, compiled.
type Policy struct {
	Name       string
	Statements []Statement
}

// ParsePolicy compiles a policy document (the JSON shape of IAM, already
// resolved to plain strings). Elements it does not know, and condition
// operators it cannot evaluate, are errors naming them.
func ParsePolicy(name string, doc any) (Policy, error) {
	m, ok := doc.(map[string]any)
	if !ok {
		return Policy{}, fmt.Errorf("policy %s: not a policy document", name)
	}
	for k := range m {
		if k != "Version" && k != "Statement" && k != "Id" {
			return Policy{}, fmt.Errorf("policy %s: element %q is not understood by the local IAM check", name, k)
		}
	}
	p := Policy{Name: name}
	for i, raw := range list(m["Statement"]) {
		st, err := parseStatement(raw)
		if err != nil {
			return Policy{}, fmt.Errorf("policy %s, statement %d: %w", name, i, err)
		}
		p.Statements = append(p.Statements, st)
	}
	return p, nil
}

func parseStatement(raw any) (Statement, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return Statement{}, errors.New("not an object")
	}
	var st Statement
	for k, v := range m {
		switch k {
		case "Sid":
			st.Sid = fmt.Sprint(v)
		case "Effect":
			switch v {
			case "Allow":
				st.Allow = true
			case "Deny":
			default:
				return Statement{}, fmt.Errorf("effect %v", v)
			}
		case "Action":
			st.Actions = lowered(strings1(v))
		case "NotAction":
			st.NotActions = lowered(strings1(v))
		case "Resource":
			st.Resources = strings1(v)
		case "NotResource":
			st.NotResources = strings1(v)
		case "Condition":
			conds, err := parseConditions(v)
			if err != nil {
				return Statement{}, err
			}
			st.Conditions = conds
		default:
			// Principal and NotPrincipal belong to resource policies, which
			// a role's identity policy cannot have.
			return Statement{}, fmt.Errorf("element %q is not understood by the local IAM check", k)
		}
	}
	if (st.Actions == nil) == (st.NotActions == nil) {
		return Statement{}, errors.New("wants exactly one of Action and NotAction")
	}
	if (st.Resources == nil) == (st.NotResources == nil) {
		return Statement{}, errors.New("wants exactly one of Resource and NotResource")
	}
	return st, nil
}

// operators are the condition operators the check evaluates: those of
// arcbench's templates and their close kin.
var operators = map[string]func(want, got string) bool{
	"StringEquals":              func(w, g string) bool { return w == g },
	"StringNotEquals":           func(w, g string) bool { return w != g },
	"StringEqualsIgnoreCase":    strings.EqualFold,
	"StringNotEqualsIgnoreCase": func(w, g string) bool { return !strings.EqualFold(w, g) },
	"StringLike":                func(w, g string) bool { return Match(w, g) },
	"StringNotLike":             func(w, g string) bool { return !Match(w, g) },
	"ArnEquals":                 func(w, g string) bool { return w == g },
	"ArnLike":                   func(w, g string) bool { return Match(w, g) },
	"ArnNotEquals":              func(w, g string) bool { return w != g },
	"ArnNotLike":                func(w, g string) bool { return !Match(w, g) },
	"Bool":                      func(w, g string) bool { return strings.EqualFold(w, g) },
}

// negated operators hold when no value matches, so each value must pass.
var negated = map[string]bool{"StringNotEquals": true, "StringNotEqualsIgnoreCase": true, "StringNotLike": true, "ArnNotEquals": true, "ArnNotLike": true}

func parseConditions(v any) ([]Condition, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("condition is not an object")
	}
	var out []Condition
	for op, body := range m {
		if _, ok := operators[op]; !ok {
			return nil, fmt.Errorf("condition operator %q is not understood by the local IAM check (known: %s)", op, strings.Join(knownOperators(), ", "))
		}
		keys, ok := body.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("condition %s is not an object", op)
		}
		for key, vals := range keys {
			out = append(out, Condition{Operator: op, Key: strings.ToLower(key), Values: strings1(vals)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Operator+out[i].Key < out[j].Operator+out[j].Key })
	return out, nil
}

func knownOperators() []string {
	var names []string
	for k := range operators {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Request is what one AWS call asks for: an action on each of its resources,
// with the condition keys the call carries (lower-cased names).
type Request struct {
	Action    string
	Resources []string
	Context   map[string]string
}

// Decision is the answer for one request.
type Decision struct {
	Allowed bool
	// Resource is the first resource not allowed, when not Allowed.
	Resource string
	// Explicit is true when a Deny statement refused it.
	Explicit bool
}

// Evaluate authorizes a request against a principal's policies: every
// resource must be allowed by some statement and denied by none.
func Evaluate(policies []Policy, req Request) Decision {
	action := strings.ToLower(req.Action)
	for _, res := range req.Resources {
		allowed := false
		for _, p := range policies {
			for _, st := range p.Statements {
				if !st.applies(action, res, req.Context) {
					continue
				}
				if !st.Allow {
					return Decision{Resource: res, Explicit: true}
				}
				allowed = true
			}
		}
		if !allowed {
			return Decision{Resource: res}
		}
	}
	return Decision{Allowed: len(req.Resources) > 0}
}

func (st Statement) applies(action, resource string, ctx map[string]string) bool {
	if st.Actions != nil && !anyMatch(st.Actions, action) {
		return false
	}
	if st.NotActions != nil && anyMatch(st.NotActions, action) {
		return false
	}
	if st.Resources != nil && !anyMatch(st.Resources, resource) {
		return false
	}
	if st.NotResources != nil && anyMatch(st.NotResources, resource) {
		return false
	}
	for _, c := range st.Conditions {
		got, present := ctx[c.Key]
		if !present {
			return false // a key the request does not carry never matches
		}
		f := operators[c.Operator]
		ok := negated[c.Operator]
		for _, want := range c.Values {
			if negated[c.Operator] {
				ok = ok && f(want, got)
			} else if f(want, got) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func anyMatch(patterns []string, s string) bool {
	for _, p := range patterns {
		if Match(p, s) {
			return true
		}
	}
	return false
}

// Match tells whether s matches an IAM pattern: * any run of characters
// (colons and slashes included), ? any one character.
func Match(pattern, s string) bool {
	// Iterative glob with backtracking to the last star.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func strings1(v any) []string {
	out := []string{}
	for _, e := range list(v) {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

func lowered(ss []string) []string {
	for i, s := range ss {
		ss[i] = strings.ToLower(s)
	}
	return ss
}
