package api

import (
	"fmt"
	"testing"
	"time"
)

// TestThrottleFloodKeepsTheBlock: an address blocked for failing sign-ins
// cannot lift its own block by flooding refused attempts under made-up
// user IDs (filling the table until it is cleared).
func TestThrottleFloodKeepsTheBlock(t *testing.T) {
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	th := newSignInThrottle(func() time.Time { return now }, nil, nil)
	const addr = "198.51.100.7"
	for i := range signInMaxFails {
		if ok, _ := th.attempt(addr, fmt.Sprint("user", i)); !ok {
			t.Fatalf("attempt %d refused early", i)
		}
	}
	for i := range 3 * signInMaxAddrs {
		if ok, _ := th.attempt(addr, fmt.Sprint("made-up-", i)); ok {
			t.Fatalf("blocked address let through at flood attempt %d", i)
		}
	}
	if len(th.win.fails) > 2*signInMaxFails {
		t.Fatalf("refused attempts grew the table to %d entries", len(th.win.fails))
	}
	if ok, _ := th.attempt(addr, "nurse1"); ok {
		t.Fatal("the flood lifted the address's block")
	}
	// Many other addresses filling the table do not lift it either.
	for i := range signInMaxAddrs + 10 {
		th.attempt(fmt.Sprintf("2001:db8::%x", i), "x")
	}
	if ok, _ := th.attempt(addr, "nurse1"); ok {
		t.Fatal("a full table lifted the address's block")
	}
	now = now.Add(signInWindow + time.Second)
	if ok, _ := th.attempt(addr, "nurse1"); !ok {
		t.Fatal("still blocked after the window")
	}
}
