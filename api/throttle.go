package api

import (
	"sync"
	"time"
)

// Sign-in throttling: anyone who reaches the sign-in page can try
// passwords, and MaxFailedSignatures wrong ones lock an account (21 CFR
// Part 11), so without a limit one stranger could lock every nurse out of
// the bedside check. A client address gets signInMaxFails failed sign-ins
// per signInWindow, and signInMaxFailsPerUser of them for any one user
// ID, one fewer than locks it: within a window no single address can lock
// an account. Further attempts are refused without checking any password
// (so nothing more is counted against the accounts) until the window has
// passed. A patient attacker can still lock an account over several
// windows, as the lock is kept until an administrator clears it.
const (
	signInMaxFails        = 10
	signInMaxFailsPerUser = 4 // custody.MaxFailedSignatures - 1
	signInWindow          = 15 * time.Minute
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

// attempt reserves one of addr's sign-in attempts, and one of its
// attempts for user, before the password is checked, so that requests in
// parallel cannot all pass the limits: it reports whether addr may try now
// and, if not, how long until it may. A successful sign-in gives the
// reservations back (succeeded); a failed one keeps them.
func (t *signInThrottle) attempt(addr, user string) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	// A refused attempt creates nothing: a flood of them cannot fill the
	// table (and so cannot push out the address's own block).
	a := t.window(addr, now)
	if a.n >= signInMaxFails {
		return false, signInWindow - now.Sub(a.start)
	}
	u := t.window(addr+"\x00"+user, now)
	if u.n >= signInMaxFailsPerUser {
		return false, signInWindow - now.Sub(u.start)
	}
	a.n++
	u.n++
	return true, 0
}

// window returns key's current window, starting a new one when it has
// none or its window has passed.
func (t *signInThrottle) window(key string, now time.Time) *failWindow {
	f, ok := t.fails[key]
	if ok && now.Sub(f.start) < signInWindow {
		return f
	}
	if !ok && len(t.fails) >= signInMaxAddrs {
		t.prune(now)
	}
	f = &failWindow{start: now}
	if ok || len(t.fails) < signInMaxAddrs {
		t.fails[key] = f
	} // else full of live windows: this one is not kept, and none is forgotten
	return f
}

// succeeded gives back the attempts a successful sign-in from addr as
// user reserved.
func (t *signInThrottle) succeeded(addr, user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range []string{addr, addr + "\x00" + user} {
		if f, ok := t.fails[k]; ok && f.n > 0 {
			f.n--
		}
	}
}

// prune drops expired windows. Live ones are never dropped: forgetting
// them would lift the blocks they hold.
func (t *signInThrottle) prune(now time.Time) {
	for a, f := range t.fails {
		if now.Sub(f.start) >= signInWindow {
			delete(t.fails, a)
		}
	}
}
