// Package iam authorizes the AWS requests of a local run as AWS would: each
// principal (a role of the synthesized template) holds the identity policies
// the template gives it, and a request is allowed when some statement allows
// its action on each of its resources and none denies it. It evaluates what
// arcbench's templates use (Allow and Deny; Action and NotAction, Resource
// and NotResource with * and ? wildcards; the condition operators listed in
// operators, on the condition keys listed in conditionKeys) and refuses, when
// the policies are loaded, anything it does not understand, so that a
// template using more never passes unchecked.
package iam

import (
	"errors"
	"fmt"
	"slices"
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

// Condition is one condition of a statement: operator, key (lower-cased),
// values.
type Condition struct {
	Operator string
	Key      string
	Values   []string
	base     string // Operator without IfExists
	ifExists bool
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
	// IAM User Guide, "Variables and tags": "Variables were introduced in
	// version 2012-10-17. [...] If you don't include the Version element and
	// set it to an appropriate version date, variables like ${aws:username}
	// are treated as literal strings in the policy."
	variables := false
	switch v := m["Version"]; v {
	case nil, "2008-10-17":
	case "2012-10-17":
		variables = true
	default:
		return Policy{}, fmt.Errorf("policy %s: Version %v is not a version of the policy language", name, v)
	}
	p := Policy{Name: name}
	for i, raw := range list(m["Statement"]) {
		st, err := parseStatement(raw, variables)
		if err != nil {
			return Policy{}, fmt.Errorf("policy %s, statement %d: %w", name, i, err)
		}
		p.Statements = append(p.Statements, st)
	}
	return p, nil
}

// parseStatement compiles one statement. variables: its policy language
// substitutes policy variables (${...}), which the check does not, so a
// statement holding one is refused.
func parseStatement(raw any, variables bool) (Statement, error) {
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
	if variables {
		texts := append(append([]string{}, st.Resources...), st.NotResources...)
		for _, c := range st.Conditions {
			texts = append(texts, c.Values...)
		}
		for _, t := range texts {
			if i := strings.Index(t, "${"); i >= 0 {
				return Statement{}, fmt.Errorf("%q holds a policy variable (%s), which the local IAM check does not substitute", t, t[i:])
			}
		}
	}
	return st, nil
}

// operator is a condition operator's test of one policy value against the
// request's value of the key.
type operator struct {
	match func(want, got string) bool
	// negated: the condition holds when no value matches.
	negated bool
}

// operators are the condition operators the check evaluates exactly, by
// their names without IfExists (any of them takes it). They are the string
// operators, as conditionKeys are all strings (IAM User Guide, "Condition
// operators": StringEquals is "Exact matching, case sensitive", StringLike
// "Case-sensitive matching. The values can include multi-character match
// wildcards (*) and single-character match wildcards (?) anywhere in the
// string", the Not forms "Negated matching"), and Null. The others are
// refused: Numeric, Date, Bool, Binary and IpAddress compare values of types
// no key the check supplies has, and the Arn operators check "each of the six
// colon-delimited components of the ARN [...] separately", which an ARN
// condition key would need and none is supplied. ForAllValues and ForAnyValue
// are for multivalued keys, of which the check supplies none.
var operators = map[string]operator{
	"StringEquals":              {match: func(w, g string) bool { return w == g }},
	"StringNotEquals":           {match: func(w, g string) bool { return w == g }, negated: true},
	"StringEqualsIgnoreCase":    {match: strings.EqualFold},
	"StringNotEqualsIgnoreCase": {match: strings.EqualFold, negated: true},
	"StringLike":                {match: Match},
	"StringNotLike":             {match: Match, negated: true},
}

// conditionKeys are the condition keys the check can evaluate: for each, it
// knows in which requests AWS puts the key in the request context, with what
// value, and the classifier supplies it there (see Classify). Absence means
// something (see Condition.holds), so a key whose presence the check cannot
// tell (aws:SecureTransport, aws:PrincipalTag/..., every other key) would be
// decided wrongly either way: a policy naming one is refused when loaded.
// Lower-cased: IAM User Guide, "Variables and tags": "Key names are
// case-insensitive."
var conditionKeys = map[string]bool{
	"cloudwatch:namespace": true, // PutMetricData's Namespace, in PutMetricData requests only
	"s3:prefix":            true, // a ListBucket's prefix parameter
}

func parseConditions(v any) ([]Condition, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("condition is not an object")
	}
	var out []Condition
	for op, body := range m {
		base, ifExists := strings.CutSuffix(op, "IfExists")
		// "You can add IfExists to the end of any condition operator name
		// except the Null condition".
		if _, known := operators[base]; !known && (base != "Null" || ifExists) {
			return nil, fmt.Errorf("condition operator %q is not understood by the local IAM check (known: %s, each with IfExists, and Null)", op, strings.Join(knownOperators(), ", "))
		}
		keys, ok := body.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("condition %s is not an object", op)
		}
		for key, vals := range keys {
			if !conditionKeys[strings.ToLower(key)] {
				return nil, fmt.Errorf("condition %s on %q: the local IAM check cannot tell when AWS puts that key in a request's context (it evaluates %s)", op, key, strings.Join(knownKeys(), ", "))
			}
			values, err := conditionValues(vals)
			if err != nil {
				return nil, fmt.Errorf("condition %s on %q: %w", op, key, err)
			}
			if base == "Null" {
				for _, v := range values {
					if v != "true" && v != "false" {
						return nil, fmt.Errorf("condition Null on %q: value %q is neither true nor false", key, v)
					}
				}
			}
			out = append(out, Condition{Operator: op, Key: strings.ToLower(key), Values: values, base: base, ifExists: ifExists})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Operator+out[i].Key < out[j].Operator+out[j].Key })
	return out, nil
}

// conditionValues are a condition's values: one or more strings (booleans,
// which Null takes, as true and false). A number's text is not what the
// policy wrote once decoded, and an empty list's meaning is not documented:
// both are refused.
func conditionValues(v any) ([]string, error) {
	var out []string
	for _, e := range list(v) {
		switch e := e.(type) {
		case string:
			out = append(out, e)
		case bool:
			out = append(out, fmt.Sprint(e))
		default:
			return nil, fmt.Errorf("value %v is not a string", e)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no value")
	}
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

func knownKeys() []string {
	var names []string
	for k := range conditionKeys {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// holds tells whether the condition holds for a request context (its keys
// lower-cased), as IAM decides (User Guide, "Condition operators"):
//   - "If the key that you specify in a policy condition is not present in
//     the request context, the values do not match and the condition is
//     false. If the policy condition requires that the key is not matched,
//     such as StringNotLike or ArnNotLike, and the right key is not present,
//     the condition is true. This logic applies to all condition operators
//     except ...IfExists and Null check."
//   - IfExists: "If the policy key is present in the context of the request,
//     process the key as specified in the policy. If the key is not present,
//     evaluate the condition element as true."
//   - Null: "use either true (the key doesn't exist — it is null) or false
//     (the key exists and its value is not null)."
//
// and, for several values ("Conditions with multiple context keys or
// values"): "If a single condition operator includes multiple values for a
// context key, those values are evaluated using a logical OR. If a single
// negated matching condition operator includes multiple values for a context
// key, those values are evaluated using a logical NOR."
func (c Condition) holds(ctx map[string]string) bool {
	got, present := ctx[c.Key]
	if c.base == "Null" {
		for _, v := range c.Values {
			if (v == "true") != present {
				return true
			}
		}
		return false
	}
	op := operators[c.base]
	if !present {
		return c.ifExists || op.negated
	}
	matched := false
	for _, want := range c.Values {
		if op.match(want, got) {
			matched = true
			break
		}
	}
	return matched != op.negated
}

// Request is what one AWS call asks for: an action on each of its resources,
// with the condition keys (lower-cased names) AWS would put in its request
// context: a key of conditionKeys missing from Context is absent from it,
// unless it is in Unknown.
type Request struct {
	Action    string
	Resources []string
	Context   map[string]string
	// Unknown lists condition keys (lower-cased) that AWS may or may not put
	// in this request's context, as far as the check knows: a statement
	// whose decision turns on one cannot be evaluated.
	Unknown []string
}

// Decision is the answer for one request.
type Decision struct {
	Allowed bool
	// Resource is the first resource not allowed, when not Allowed.
	Resource string
	// Explicit is true when a Deny statement refused it.
	Explicit bool
	// Undecided names the condition key (of the request's Unknown) the
	// decision turned on, when the check could not decide.
	Undecided string
}

// Evaluate authorizes a request against a principal's policies: every
// resource must be allowed by some statement and denied by none. A statement
// whose conditions turn on a key of req.Unknown could go either way: the
// request is then refused as Undecided, unless a Deny that applies refuses it
// or, with no Deny possibly applying, an Allow that applies allows it.
func Evaluate(policies []Policy, req Request) Decision {
	action := strings.ToLower(req.Action)
	for _, res := range req.Resources {
		allowed := false
		var denyUnknown, allowUnknown string
		for _, p := range policies {
			for _, st := range p.Statements {
				if !st.matches(action, res) {
					continue
				}
				holds, unknown := st.conditionsHold(req)
				switch {
				case unknown != "" && st.Allow:
					allowUnknown = unknown
				case unknown != "":
					denyUnknown = unknown
				case !holds:
				case !st.Allow:
					return Decision{Resource: res, Explicit: true}
				default:
					allowed = true
				}
			}
		}
		switch {
		case denyUnknown != "":
			return Decision{Resource: res, Undecided: denyUnknown}
		case allowed:
		case allowUnknown != "":
			return Decision{Resource: res, Undecided: allowUnknown}
		default:
			return Decision{Resource: res}
		}
	}
	return Decision{Allowed: len(req.Resources) > 0}
}

// matches tells whether the statement covers the action on the resource.
func (st Statement) matches(action, resource string) bool {
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
	return true
}

// conditionsHold tells whether all the statement's conditions hold ("If your
// policy statement has multiple condition operators, the condition operators
// are evaluated using a logical AND. If your policy statement has multiple
// context keys attached to a single condition operator, the context keys are
// evaluated using a logical AND."). unknown names a key of req.Unknown the
// answer turns on: none of the other conditions fails, and one names it.
func (st Statement) conditionsHold(req Request) (holds bool, unknown string) {
	for _, c := range st.Conditions {
		if slices.Contains(req.Unknown, c.Key) {
			unknown = c.Key
			continue
		}
		if !c.holds(req.Context) {
			return false, ""
		}
	}
	return unknown == "", unknown
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
