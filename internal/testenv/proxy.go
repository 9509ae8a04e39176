package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Proxy stands between the SDK and dynalite. It counts requests per
// operation, can add a fixed delay to each (the round trip to the real
// service), answer with ProvisionedThroughputExceededException, and pass on
// only part of a BatchWriteItem, returning the rest as UnprocessedItems, as
// DynamoDB does under load.
type Proxy struct {
	URL string

	// Set before the first request.
	Delay time.Duration
	// Throttle, when it returns true, answers the request with a throttling error.
	Throttle func(op string) bool
	// KeepBatch says how many of a BatchWriteItem's n items go through.
	KeepBatch func(n int) int
	// LoseResponse, when it returns true, passes the request on and then
	// answers with a server error, as when DynamoDB did the work but the
	// response was lost: the SDK retries what already happened.
	LoseResponse func(op string) bool

	target string
	client *http.Client

	mu          sync.Mutex
	requests    map[string]int
	throttled   int
	unprocessed int
	inFlight    int
	maxInFlight int
}

// NewProxy starts a proxy to target, closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	p := &Proxy{target: target, requests: map[string]int{}, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// LoseResponses makes the proxy lose the response to the n-th request of
// op (1 first) when lose(n) says so: DynamoDB did the work, the SDK retries.
func (p *Proxy) LoseResponses(op string, lose func(n int) bool) {
	var mu sync.Mutex
	n := 0
	p.LoseResponse = func(got string) bool {
		if got != op {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		n++
		return lose(n)
	}
}

// Requests is how many requests of op (e.g. "BatchWriteItem") arrived.
func (p *Proxy) Requests(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[op]
}

// Total is how many requests arrived.
func (p *Proxy) Total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.requests {
		n += c
	}
	return n
}

// Throttled is how many requests were answered with a throttling error.
func (p *Proxy) Throttled() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.throttled
}

// Unprocessed is how many items were handed back as UnprocessedItems.
func (p *Proxy) Unprocessed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unprocessed
}

// MaxInFlight is the most requests that were in the proxy at once.
func (p *Proxy) MaxInFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxInFlight
}

// ResetCounts zeroes the counters.
func (p *Proxy) ResetCounts() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests, p.throttled, p.unprocessed, p.maxInFlight = map[string]int{}, 0, 0, 0
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	op := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	p.mu.Lock()
	p.requests[op]++
	p.inFlight++
	p.maxInFlight = max(p.maxInFlight, p.inFlight)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inFlight--
		p.mu.Unlock()
	}()
	if p.Delay > 0 {
		time.Sleep(p.Delay)
	}
	if p.Throttle != nil && p.Throttle(op) {
		p.mu.Lock()
		p.throttled++
		p.mu.Unlock()
		body := []byte(`{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}`)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amz-Crc32", fmt.Sprint(crc32.ChecksumIEEE(body)))
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(body)
		return
	}
	var held map[string][]json.RawMessage
	if op == "BatchWriteItem" && p.KeepBatch != nil {
		body, held = p.split(body)
	}
	status, header, resp, err := p.forward(r, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if p.LoseResponse != nil && p.LoseResponse(op) {
		lost := []byte(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error (the work was done; the answer was lost)"}`)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amz-Crc32", fmt.Sprint(crc32.ChecksumIEEE(lost)))
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write(lost)
		return
	}
	if len(held) > 0 && status == http.StatusOK {
		resp = addUnprocessed(resp, held)
		// The SDK checks the body against DynamoDB's CRC32 header.
		header.Set("X-Amz-Crc32", fmt.Sprint(crc32.ChecksumIEEE(resp)))
	}
	for k, vs := range header {
		if k == "Content-Length" {
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(status)
	_, _ = w.Write(resp)
}

// split keeps KeepBatch(n) items of each table's requests in the body and
// returns the others.
func (p *Proxy) split(body []byte) ([]byte, map[string][]json.RawMessage) {
	var req map[string]json.RawMessage
	var items map[string][]json.RawMessage
	if json.Unmarshal(body, &req) != nil || json.Unmarshal(req["RequestItems"], &items) != nil {
		return body, nil
	}
	held := map[string][]json.RawMessage{}
	n := 0
	for table, reqs := range items {
		keep := min(max(p.KeepBatch(len(reqs)), 0), len(reqs))
		held[table] = reqs[keep:]
		items[table] = reqs[:keep]
		n += len(reqs) - keep
		if keep == 0 {
			delete(items, table)
		}
	}
	if n == 0 {
		return body, nil
	}
	p.mu.Lock()
	p.unprocessed += n
	p.mu.Unlock()
	if len(items) == 0 {
		return nil, held // nothing goes through; answer locally
	}
	req["RequestItems"], _ = json.Marshal(items)
	out, _ := json.Marshal(req)
	return out, held
}

func (p *Proxy) forward(r *http.Request, body []byte) (int, http.Header, []byte, error) {
	if body == nil { // every item held back
		return http.StatusOK, http.Header{"Content-Type": {"application/x-amz-json-1.0"}}, []byte(`{"UnprocessedItems":{}}`), nil
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for k, vs := range r.Header {
		if k != "Content-Length" {
			req.Header[k] = vs
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

func addUnprocessed(resp []byte, held map[string][]json.RawMessage) []byte {
	var out map[string]json.RawMessage
	if json.Unmarshal(resp, &out) != nil {
		return resp
	}
	unprocessed := map[string][]json.RawMessage{}
	_ = json.Unmarshal(out["UnprocessedItems"], &unprocessed)
	for table, reqs := range held {
		unprocessed[table] = append(unprocessed[table], reqs...)
	}
	out["UnprocessedItems"], _ = json.Marshal(unprocessed)
	b, _ := json.Marshal(out)
	return b
}
