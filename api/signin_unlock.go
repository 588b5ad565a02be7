package api

import "strings"

// An administrator's online unlock lifts the sign-in throttle's hold on
// one user ID as well as custody's: the failures counted for that ID, from
// every address, are forgotten, and given back to the addresses' own
// counts.

// SignInBlocked reports whether user's failed sign-ins keep them out now
// from at least one address, and how many failures are counted for the ID
// in the current windows.
func (t *SignInThrottle) SignInBlocked(user string) (blocked bool, failures int) {
	return t.t.blocked(user)
}

// ForgetUser forgets the failed sign-ins counted for user from every
// address, so that they may sign in again at once.
func (t *SignInThrottle) ForgetUser(user string) { t.t.forgetUser(user) }

func (t *signInThrottle) blocked(user string) (bool, int) {
	if t.shared != nil {
		return t.sharedBlocked(user)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now, suffix := t.now(), "\x00"+user
	var blocked bool
	var n int
	for k, f := range t.win.fails {
		addr, ok := strings.CutSuffix(k, suffix)
		if !ok || strings.Contains(addr, "\x00") || now.Sub(f.start) >= t.win.span {
			continue
		}
		n += f.n
		blocked = blocked || f.n >= signInMaxFailsPerUser
	}
	return blocked, n
}

func (t *signInThrottle) forgetUser(user string) {
	if t.shared != nil {
		t.sharedForgetUser(user)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	suffix := "\x00" + user
	for k, f := range t.win.fails {
		addr, ok := strings.CutSuffix(k, suffix)
		if !ok || strings.Contains(addr, "\x00") {
			continue
		}
		if a, ok := t.win.fails[addr]; ok {
			a.n = max(0, a.n-f.n)
		}
		delete(t.win.fails, k)
	}
}
