package testenv

import (
	"testing"

	"arcbench/internal/emulators"
)

// SNS is the SNS stand-in on a server of its own.
type SNS struct {
	*emulators.SNS
	URL string
}

// NewSNS starts a stand-in, closed when the test ends.
func NewSNS(t testing.TB) *SNS {
	s := &SNS{SNS: &emulators.SNS{}}
	s.URL = serve(t, s.SNS)
	return s
}
