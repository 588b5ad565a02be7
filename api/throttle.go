package api

import (
	"sync"
	"time"
)

// Sign-in throttling: anyone who reaches the sign-in page can try
// passwords, and MaxFailedSignatures wrong ones lock an account (21 CFR
// Part 11), so without a limit one stranger could lock every nurse out of
// the bedside check. A client address gets signInMaxFails failed sign-ins
// per signInWindow; further attempts from it are refused, without checking
// any password (so nothing more is counted against the accounts), until
// its window has passed.
const (
	signInMaxFails = 10
	signInWindow   = 15 * time.Minute
	// signInMaxAddrs bounds the addresses remembered; expired ones are
	// dropped first.
	signInMaxAddrs = 10000
)

// signInThrottle counts failed web sign-ins per client address.
type signInThrottle struct {
	mu    sync.Mutex
	now   func() time.Time
	fails map[string]*failWindow
}

type failWindow struct {
	start time.Time
	n     int
}

func newSignInThrottle(now func() time.Time) *signInThrottle {
	return &signInThrottle{now: now, fails: map[string]*failWindow{}}
}

// attempt reserves one of addr's sign-in attempts before the password is
// checked, so that requests in parallel cannot all pass the limit: it
// reports whether addr may try now and, if not, how long until it may. A
// successful sign-in gives the reservation back (succeeded); a failed one
// keeps it.
func (t *signInThrottle) attempt(addr string) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f, ok := t.fails[addr]
	if ok && now.Sub(f.start) >= signInWindow {
		delete(t.fails, addr)
		ok = false
	}
	if !ok {
		if len(t.fails) >= signInMaxAddrs {
			t.prune(now)
		}
		t.fails[addr] = &failWindow{start: now, n: 1}
		return true, 0
	}
	if f.n >= signInMaxFails {
		return false, signInWindow - now.Sub(f.start)
	}
	f.n++
	return true, 0
}

// succeeded gives back the attempt a successful sign-in from addr
// reserved.
func (t *signInThrottle) succeeded(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f, ok := t.fails[addr]; ok && f.n > 0 {
		f.n--
	}
}

// prune drops expired windows and, if the map is still full (a flood of
// addresses), forgets them all rather than grow without bound.
func (t *signInThrottle) prune(now time.Time) {
	for a, f := range t.fails {
		if now.Sub(f.start) >= signInWindow {
			delete(t.fails, a)
		}
	}
	if len(t.fails) >= signInMaxAddrs {
		clear(t.fails)
	}
}
