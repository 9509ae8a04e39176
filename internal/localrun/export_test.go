package localrun

import (
	"time"

	"arcbench/internal/iam"
)

// SetStopTimeout shortens the time a job stopped at its time limit has from
// SIGTERM to SIGKILL (Fargate's 30 s), for a test; restore puts it back.
func SetStopTimeout(d time.Duration) (restore func()) {
	old := stopTimeout.Swap(int64(d))
	return func() { stopTimeout.Store(old) }
}

// MissingKeys is what the session's IAM check answered AccessDenied for a
// missing S3 key (nil without the check).
func (s *Session) MissingKeys() []iam.Denial {
	if s.r.guard == nil {
		return nil
	}
	return s.r.guard.MissingKeys()
}
