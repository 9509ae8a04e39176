package iam_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"arcbench/internal/iam"
)

// fakeS3 answers as the local S3 server does: bucket "bkt" holds the one
// object "exists"; bucket "gone" does not exist. A 404 has S3's XML error
// body, except for HEAD, which has none. It counts the requests it serves.
type fakeS3 struct{ served []string }

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.served = append(f.served, r.Method+" "+r.URL.Path)
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	fail := func(code string) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n<Error>\n  <Code>%s</Code>\n  <Message>not here</Message>\n</Error>", code)
		}
	}
	switch {
	case bucket != "bkt":
		fail("NoSuchBucket")
	case key == "":
		w.WriteHeader(http.StatusOK) // HeadBucket
	case key == "exists":
		w.Header().Set("Content-Length", "4")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, "data")
		}
	default:
		fail("NoSuchKey")
	}
}

func signed(method, path, role string) *http.Request {
	r := httptest.NewRequest(method, path, nil)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+role+"/20261202/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x")
	return r
}

// GetObject and HeadObject of a missing key answer 404 NoSuchKey only to a
// principal that may s3:ListBucket on the bucket (with s3:prefix the key);
// any other gets S3's 403 AccessDenied, which is not counted as a refusal.
// Everything else passes through untouched.
func TestAMissingKeyIsAccessDeniedWithoutListBucket(t *testing.T) {
	get := policy(t, `{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":["arn:aws:s3:::bkt/*","arn:aws:s3:::gone/*"]}]}`)
	list := policy(t, `{"Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::bkt"}]}`)
	prefixed := policy(t, `{"Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::bkt","Condition":{"StringLike":{"s3:prefix":"tasks/*"}}}]}`)
	denyList := policy(t, `{"Statement":[{"Effect":"Deny","Action":"s3:ListBucket","Resource":"*"}]}`)
	g := iam.NewGuard("000000000000", []*iam.Principal{
		{Role: "Reader", Account: "000000000000", Policies: []iam.Policy{get}},
		{Role: "Lister", Account: "000000000000", Policies: []iam.Policy{get, list}},
		{Role: "PrefixLister", Account: "000000000000", Policies: []iam.Policy{get, prefixed}},
		{Role: "Denied", Account: "000000000000", Policies: []iam.Policy{get, list, denyList}},
	}, "local")
	s3 := &fakeS3{}
	h := g.Check(s3)
	for _, c := range []struct {
		method, path, role string
		status             int
		code               string // the XML error's code; "" for no body
		body               string // a success's body
	}{
		{"GET", "/bkt/tasks/x.json", "Reader", 403, "AccessDenied", ""},
		{"HEAD", "/bkt/tasks/x.json", "Reader", 403, "", ""},
		{"GET", "/bkt/exists", "Reader", 200, "", "data"},
		{"HEAD", "/bkt/exists", "Reader", 200, "", ""},
		// No bucket: its 404 is not a key's, and passes through.
		{"GET", "/gone/x", "Reader", 404, "NoSuchBucket", ""},
		{"HEAD", "/gone/x", "Reader", 404, "", ""},
		{"GET", "/bkt/tasks/x.json", "Lister", 404, "NoSuchKey", ""},
		{"HEAD", "/bkt/tasks/x.json", "Lister", 404, "", ""},
		{"GET", "/bkt/tasks/x.json", "PrefixLister", 404, "NoSuchKey", ""},
		{"GET", "/bkt/runs/x.json", "PrefixLister", 403, "AccessDenied", ""},
		{"GET", "/bkt/tasks/x.json", "Denied", 403, "AccessDenied", ""},
		{"GET", "/bkt/tasks/x.json", "local", 404, "NoSuchKey", ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, signed(c.method, c.path, c.role))
		body := rec.Body.String()
		what := c.method + " " + c.path + " as " + c.role
		if rec.Code != c.status {
			t.Errorf("%s: status %d, want %d (%s)", what, rec.Code, c.status, body)
		}
		switch {
		case c.code != "" && !strings.Contains(body, "<Code>"+c.code+"</Code>"):
			t.Errorf("%s: body %q, want S3's %s", what, body, c.code)
		case c.code == "" && body != c.body:
			t.Errorf("%s: body %q, want %q", what, body, c.body)
		}
		if c.code == "AccessDenied" && rec.Header().Get("Content-Type") != "application/xml" {
			t.Errorf("%s: content type %q", what, rec.Header().Get("Content-Type"))
		}
	}
	if d := g.Denials(); len(d) != 0 {
		t.Errorf("denials %v: a missing key's 403 is S3's answer, not a refused request", d)
	}
	var got []string
	for _, m := range g.MissingKeys() {
		got = append(got, m.Principal+" "+m.Action+" "+m.Resource)
	}
	want := "Reader s3:ListBucket arn:aws:s3:::bkt,Reader s3:ListBucket arn:aws:s3:::bkt,PrefixLister s3:ListBucket arn:aws:s3:::bkt,Denied s3:ListBucket arn:aws:s3:::bkt"
	if strings.Join(got, ",") != want {
		t.Errorf("missing keys recorded: %v, want %s", got, want)
	}
	if n := g.Authorized()["Reader"]; n != 6 {
		t.Errorf("%d requests of Reader authorized, want its 6 GetObject/HeadObject (the ListBucket check is not a request)", n)
	}
}
