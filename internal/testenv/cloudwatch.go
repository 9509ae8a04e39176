package testenv

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"arcbench/internal/emulators"
)

// CloudWatch is the CloudWatch stand-in on a server of its own.
type CloudWatch struct {
	*emulators.CloudWatch
	URL string
}

// NewCloudWatch starts a stand-in, closed when the test ends.
func NewCloudWatch(t testing.TB) *CloudWatch {
	c := &CloudWatch{CloudWatch: &emulators.CloudWatch{}}
	c.URL = serve(t, c.CloudWatch)
	return c
}

// serve runs a stand-in on a server of its own, closed when the test ends,
// and returns its URL.
func serve(t testing.TB, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
