// Package testutil holds what the tests of several packages share.
package testutil

import (
	"testing"
	"time"
)

// Eventually calls check every 100 ms until it reports done, and fails the
// test with check's last state once timeout has passed.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() (done bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, state := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in %s; last state: %s", what, timeout, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
