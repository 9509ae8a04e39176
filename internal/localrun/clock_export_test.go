package localrun

import "time"

// StopClock makes every run started from now on take t as its start time
// for its folder's name, so that runs started together are sure to collide
// (started at once, they do in the same millisecond only by chance);
// restore restarts the clock.
func StopClock(t time.Time) (restore func()) {
	old := clock
	clock = func() time.Time { return t }
	return func() { clock = old }
}
