package iam

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"

	"github.com/aws/smithy-go/encoding/cbor"
)

// Principal is a role and the identity policies the template gives it.
type Principal struct {
	// Role is the role's name; requests signed with it as access key id are its.
	Role     string
	Account  string
	Policies []Policy
}

// ARN is how AWS names the principal in an access-denied message: the
// assumed role's session.
func (p *Principal) ARN() string {
	return "arn:aws:sts::" + p.Account + ":assumed-role/" + p.Role + "/arcbench-local"
}

// Denial is one refused request.
type Denial struct {
	Principal string `json:"principal"`
	Action    string `json:"action"`
	Resource  string `json:"resource"`
	// Reason says why: no statement allows it, a Deny statement refuses
	// it, an unknown access key, or a request the check does not know.
	Reason string `json:"reason"`
}

func (d Denial) String() string {
	return fmt.Sprintf("%s may not %s on %s (%s)", d.Principal, d.Action, d.Resource, d.Reason)
}

// DeniedError is a refused request, with AWS's message.
type DeniedError struct {
	Denial
	Message string
}

func (e *DeniedError) Error() string { return e.Message }

// Guard authorizes every request of a local run: those reaching the emulator
// endpoint (through Handler) and those the runner makes on behalf of the
// state machine (through Authorize). Access keys in Trusted are the caller's
// own (the runner setting up, an operator's commands): never checked, as an
// administrator's calls would not be.
type Guard struct {
	Account    string
	Principals map[string]*Principal // by role name = access key id
	Trusted    map[string]bool

	mu         sync.Mutex
	authorized map[string]int
	denials    []Denial
}

// NewGuard builds a guard over the principals.
func NewGuard(account string, principals []*Principal, trusted ...string) *Guard {
	g := &Guard{Account: account, Principals: map[string]*Principal{}, Trusted: map[string]bool{}, authorized: map[string]int{}}
	for _, p := range principals {
		g.Principals[p.Role] = p
	}
	for _, k := range trusted {
		g.Trusted[k] = true
	}
	return g
}

// Authorize checks one request of a principal (by role name). A refusal is
// a *DeniedError with AWS's message, and is recorded.
func (g *Guard) Authorize(role string, req Request) error {
	if g.Trusted[role] {
		return nil
	}
	p := g.Principals[role]
	if p == nil {
		return g.deny(Denial{Principal: role, Action: req.Action, Resource: first(req.Resources), Reason: "unknown access key"},
			"The security token included in the request is invalid.")
	}
	d := Evaluate(p.Policies, req)
	if d.Allowed {
		g.mu.Lock()
		g.authorized[role]++
		g.mu.Unlock()
		return nil
	}
	why, reason := "because no identity-based policy allows the "+req.Action+" action", "no statement allows it"
	if d.Explicit {
		why, reason = "with an explicit deny in an identity-based policy", "an explicit deny"
	}
	return g.deny(Denial{Principal: role, Action: req.Action, Resource: d.Resource, Reason: reason},
		fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s %s", p.ARN(), req.Action, d.Resource, why))
}

func (g *Guard) deny(d Denial, msg string) error {
	g.mu.Lock()
	g.denials = append(g.denials, d)
	g.mu.Unlock()
	return &DeniedError{Denial: d, Message: msg}
}

// Authorized is the number of requests allowed, per principal.
func (g *Guard) Authorized() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]int, len(g.authorized))
	for k, v := range g.authorized {
		out[k] = v
	}
	return out
}

// Denials lists the refused requests, in order.
func (g *Guard) Denials() []Denial {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Denial(nil), g.denials...)
}

// Check authorizes one HTTP request to the emulator endpoint. It answers a
// refused request itself, with the service's own access-denied error, and
// returns false; otherwise it leaves the request (its body restored) to the
// next handler and returns true.
func (g *Guard) Check(w http.ResponseWriter, r *http.Request) bool {
	key, _ := AccessKey(r)
	if g.Trusted[key] {
		return true
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	call, err := Classify(r, body, g.Account)
	if err != nil {
		d := g.deny(Denial{Principal: key, Action: "?", Resource: r.URL.Path, Reason: err.Error()}, err.Error())
		writeDenied(w, r, call.Service, d.(*DeniedError), g.Principals[key] == nil)
		return false
	}
	if err := g.Authorize(key, call.Request); err != nil {
		writeDenied(w, r, call.Service, err.(*DeniedError), g.Principals[key] == nil)
		return false
	}
	return true
}

// writeDenied answers as each service answers a refused call, so the SDK
// raises what it raises on AWS.
func writeDenied(w http.ResponseWriter, r *http.Request, svc Service, e *DeniedError, unknownKey bool) {
	switch svc {
	case DynamoDB:
		code := "AccessDeniedException"
		if unknownKey {
			code = "UnrecognizedClientException"
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amzn-ErrorType", code)
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazon.coral.service#" + code, "Message": e.Message})
	case CloudWatch:
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		w.Header().Set("Content-Type", "application/cbor")
		w.Header().Set("X-Amzn-Query-Error", "AccessDenied;Sender")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("AccessDenied"), "message": cbor.String(e.Message)}))
	default: // S3, and what could not be classified
		code := "AccessDenied"
		if unknownKey {
			code = "InvalidAccessKeyId"
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		if r.Method == http.MethodHead {
			return
		}
		_ = xml.NewEncoder(w).Encode(struct {
			XMLName   xml.Name `xml:"Error"`
			Code      string
			Message   string
			RequestId string
		}{Code: code, Message: e.Message, RequestId: "arcbench-local"})
	}
}

// Roles lists the principals' role names, sorted.
func (g *Guard) Roles() []string {
	var out []string
	for r := range g.Principals {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

func first(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}
