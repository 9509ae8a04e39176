package iam

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"

	"github.com/aws/smithy-go/encoding/cbor"

	"arcbench/internal/emulators"
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
	missing    []Denial // missing keys answered AccessDenied (MissingKeys)
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
	// SNS names its actions "SNS:Publish" in its messages.
	shown := req.Action
	if rest, ok := strings.CutPrefix(shown, "sns:"); ok {
		shown = "SNS:" + rest
	}
	why, reason := "because no identity-based policy allows the "+shown+" action", "no statement allows it"
	switch {
	case d.Explicit:
		why, reason = "with an explicit deny in an identity-based policy", "an explicit deny"
	case d.Undecided != "":
		// Not AWS's answer: the check cannot tell what AWS would answer, and
		// says so rather than guess.
		reason = "the local IAM check cannot decide: a statement's condition on " + d.Undecided +
			" decides it, and the check cannot tell whether AWS puts that key in this request's context"
		why = "(" + reason + ")"
	}
	return g.deny(Denial{Principal: role, Action: req.Action, Resource: d.Resource, Reason: reason},
		fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s %s", p.ARN(), shown, d.Resource, why))
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

// Check puts the guard in front of next, the emulator endpoint's services:
// it authorizes every request, answers a refused one itself with the
// service's own access-denied error, and passes the others (their bodies
// restored) to next. An S3 GetObject or HeadObject of a key that does not
// exist is answered as S3 answers it (see concealMissingKey).
func (g *Guard) Check(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, _ := AccessKey(r)
		if g.Trusted[key] {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		call, err := Classify(r, body, g.Account)
		if err != nil {
			d := g.deny(Denial{Principal: key, Action: "?", Resource: r.URL.Path, Reason: err.Error()}, err.Error())
			writeDenied(w, r, call.Service, d.(*DeniedError), g.Principals[key] == nil)
			return
		}
		if err := g.Authorize(key, call.Request); err != nil {
			writeDenied(w, r, call.Service, err.(*DeniedError), g.Principals[key] == nil)
			return
		}
		if call.Service != S3 || call.Action != "s3:GetObject" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		held := &notFoundWriter{ResponseWriter: w}
		next.ServeHTTP(held, r)
		g.concealMissingKey(held, next, r, key, call.Resources[0])
	})
}

// concealMissingKey answers a GetObject or HeadObject that found no such key
// as S3 does: 404 NoSuchKey only to a principal that may s3:ListBucket on
// the bucket, 403 AccessDenied to any other, so that a role granted
// s3:GetObject alone cannot learn which keys exist (S3 API reference,
// GetObject and HeadObject, "Permissions"). The S3 server always answers
// 404, so without this a local run would pass where a deployed one fails on
// AccessDenied. The ListBucket check carries s3:prefix, the requested key,
// as Ceph RGW found AWS to do (ceph/ceph#68577: "add the requested object
// name to the iam environment as s3:prefix to match aws behavior"); AWS's
// own documentation does not say. Such a 403 is not a refusal of the
// request the principal made, so it is recorded apart (MissingKeys), not
// among the Denials.
func (g *Guard) concealMissingKey(held *notFoundWriter, next http.Handler, r *http.Request, principal, object string) {
	if !held.notFound {
		return
	}
	bucketARN, key, _ := strings.Cut(object, "/")
	if !g.noSuchKey(held, next, r, bucketARN) ||
		Evaluate(g.Principals[principal].Policies, Request{Action: "s3:ListBucket", Resources: []string{bucketARN},
			Context: map[string]string{"s3:prefix": key}}).Allowed {
		held.release()
		return
	}
	op := "GetObject"
	if r.Method == http.MethodHead {
		op = "HeadObject"
	}
	g.mu.Lock()
	g.missing = append(g.missing, Denial{Principal: principal, Action: "s3:ListBucket", Resource: bucketARN,
		Reason: op + " of the missing key " + key + " answered 403 AccessDenied, not 404 NoSuchKey"})
	g.mu.Unlock()
	w := held.ResponseWriter
	w.Header().Del("Content-Length")
	writeDenied(w, r, S3, &DeniedError{Message: "Access Denied"}, false)
}

// noSuchKey tells whether a held 404 is S3's NoSuchKey (not NoSuchBucket):
// by its error code, or for HEAD, which has no body, by whether the bucket
// exists.
func (g *Guard) noSuchKey(held *notFoundWriter, next http.Handler, r *http.Request, bucketARN string) bool {
	if r.Method != http.MethodHead {
		var e struct {
			Code string `xml:"Code"`
		}
		return xml.Unmarshal(held.body.Bytes(), &e) == nil && e.Code == "NoSuchKey"
	}
	probe := r.Clone(r.Context())
	probe.URL.Path, probe.URL.RawPath, probe.URL.RawQuery = "/"+strings.TrimPrefix(bucketARN, "arn:aws:s3:::"), "", ""
	probe.RequestURI, probe.Body, probe.ContentLength = "", http.NoBody, 0
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, probe)
	return rec.Code == http.StatusOK
}

// MissingKeys lists the GetObject and HeadObject requests of missing keys
// answered 403 AccessDenied because their principal may not s3:ListBucket,
// in order: S3's answer, not a refusal of the request (see concealMissingKey).
func (g *Guard) MissingKeys() []Denial {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Denial(nil), g.missing...)
}

// notFoundWriter passes a response through, except a 404, which it holds
// (status and body) until release or until it is answered otherwise.
type notFoundWriter struct {
	http.ResponseWriter
	wroteHeader, notFound bool
	body                  bytes.Buffer
}

func (h *notFoundWriter) WriteHeader(code int) {
	if h.wroteHeader {
		return
	}
	h.wroteHeader = true
	if code == http.StatusNotFound {
		h.notFound = true
		return
	}
	h.ResponseWriter.WriteHeader(code)
}

func (h *notFoundWriter) Write(b []byte) (int, error) {
	if !h.wroteHeader {
		h.WriteHeader(http.StatusOK)
	}
	if h.notFound {
		return h.body.Write(b)
	}
	return h.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (h *notFoundWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// release sends the held 404 as it was written.
func (h *notFoundWriter) release() {
	h.ResponseWriter.WriteHeader(http.StatusNotFound)
	_, _ = h.ResponseWriter.Write(h.body.Bytes())
}

// writeDenied answers as each service answers a refused call, so the SDK
// raises what it raises on AWS.
func writeDenied(w http.ResponseWriter, r *http.Request, svc Service, e *DeniedError, unknownKey bool) {
	switch svc {
	case DynamoDB, StepFunctions:
		// Both speak JSON 1.0 and answer 400 AccessDeniedException.
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
	case SNS:
		// SNS's answer to an IAM denial: 403 AuthorizationError (its
		// service model's awsQueryError for AuthorizationErrorException),
		// and to an unknown access key the Query APIs' InvalidClientTokenId.
		code := "AuthorizationError"
		if unknownKey {
			code = "InvalidClientTokenId"
		}
		emulators.WriteSNSError(w, http.StatusForbidden, code, e.Message)
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
