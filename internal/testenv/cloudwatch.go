package testenv

import (
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
	srv := httptest.NewServer(c.CloudWatch)
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}
