package emulators

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/aws/smithy-go/encoding/cbor"
)

// CloudWatch stands in for the CloudWatch API, which no local server here
// serves. It decodes the SDK's real request (Smithy RPC v2 CBOR) and keeps
// every PutMetricData it receives. Set Fail to answer with a service error.
type CloudWatch struct {
	Fail bool

	mu   sync.Mutex
	puts []PutMetricData
	bad  []string
}

// PutMetricData is a decoded PutMetricData request.
type PutMetricData struct {
	Namespace  string
	MetricData []struct {
		MetricName string
		Value      float64
		Unit       string
		Dimensions []struct{ Name, Value string }
	}
}

// IsCloudWatch tells a CloudWatch request (Smithy RPC v2 CBOR) from others.
func IsCloudWatch(r *http.Request) bool {
	return r.Header.Get("Smithy-Protocol") != "" && strings.Contains(r.URL.Path, "/service/GraniteServiceVersion20100801/")
}

// Puts returns the PutMetricData requests received so far.
func (c *CloudWatch) Puts() []PutMetricData {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]PutMetricData(nil), c.puts...)
}

// Malformed lists requests that could not be decoded, with why.
func (c *CloudWatch) Malformed() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bad...)
}

func (c *CloudWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	put, err := DecodePutMetricData(r, body)
	if err != nil {
		c.mu.Lock()
		c.bad = append(c.bad, err.Error())
		c.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	if c.Fail {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("InternalServiceError"), "message": cbor.String("stand-in told to fail")}))
		return
	}
	c.mu.Lock()
	c.puts = append(c.puts, put)
	c.mu.Unlock()
	_, _ = w.Write(cbor.Encode(cbor.Map{}))
}

// DecodePutMetricData reads the SDK's PutMetricData request (Smithy RPC v2
// CBOR, gzipped or not); anything else is an error saying what it was.
func DecodePutMetricData(r *http.Request, body []byte) (PutMetricData, error) {
	// PutMetricData takes gzip, and the SDK uses it for bodies of 10 KB or
	// more, for every body when its configuration was not loaded from the
	// environment (a zero RequestMinCompressSizeBytes).
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return PutMetricData{}, fmt.Errorf("gzip: %w", err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			return PutMetricData{}, fmt.Errorf("gzip: %w", err)
		}
	}
	if !strings.HasSuffix(r.URL.Path, "/operation/PutMetricData") || r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" {
		return PutMetricData{}, fmt.Errorf("unexpected request %s %s (protocol %q)", r.Method, r.URL.Path, r.Header.Get("Smithy-Protocol"))
	}
	v, err := cbor.Decode(body)
	if err != nil {
		return PutMetricData{}, fmt.Errorf("decode CBOR: %w", err)
	}
	var put PutMetricData
	b, _ := json.Marshal(plain(v))
	if err := json.Unmarshal(b, &put); err != nil {
		return PutMetricData{}, fmt.Errorf("decode PutMetricData: %w", err)
	}
	return put, nil
}

// plain turns a CBOR value into the Go values encoding/json understands.
func plain(v cbor.Value) any {
	switch v := v.(type) {
	case cbor.Map:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = plain(e)
		}
		return m
	case cbor.List:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = plain(e)
		}
		return l
	case cbor.String:
		return string(v)
	case cbor.Uint:
		return uint64(v)
	case cbor.NegInt:
		return -int64(v)
	case cbor.Float32:
		return float64(v)
	case cbor.Float64:
		return float64(v)
	case cbor.Bool:
		return bool(v)
	case *cbor.Tag:
		return plain(v.Value)
	}
	return nil
}
