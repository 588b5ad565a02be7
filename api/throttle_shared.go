package api

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
)

// The sign-in throttle of instances sharing a store: the same rules as
// in memory (throttle.go), its counts kept as the store's shared entries,
// so that an address or an account held back on one instance is held
// back on every one, and after a restart. Entries expire with their
// window; nothing bounds them but that.
//
// Keys: "signin/a/ADDR" counts an address's failures, "signin/u/ADDR|USER"
// one user ID's from it (subject USER), "signin/k/ADDR|USER" remembers a
// successful sign-in. ADDR and USER are query-escaped (a typed ID may hold
// any byte, and "|" is escaped).

// sharedWait is how long a sign-in is refused when the store cannot be
// reached to count it: without the count it is not let through.
const sharedWait = 5 * time.Second

// sharedCount is a shared entry's value: a failure window, or when a
// successful sign-in was.
type sharedCount struct {
	Start time.Time `json:"start"`
	N     int       `json:"n,omitempty"`
}

func signInKeys(addr, user string) (a, u, k string) {
	addr, user = url.QueryEscape(addr), url.QueryEscape(user)
	return "signin/a/" + addr, "signin/u/" + addr + "|" + user, "signin/k/" + addr + "|" + user
}

// window decodes e as a failure window current at now: an absent entry or
// a window that has passed starts a new one.
func window(e custody.SharedEntry, now time.Time) sharedCount {
	var c sharedCount
	if e.Value == nil || json.Unmarshal(e.Value, &c) != nil || now.Sub(c.Start) >= signInWindow {
		return sharedCount{Start: now}
	}
	return c
}

// entry encodes a failure window (or a sign-in) as the shared entry key.
func entry(key, subject string, c sharedCount, until time.Time) custody.SharedEntry {
	b, _ := json.Marshal(c)
	return custody.SharedEntry{Key: key, Subject: subject, Value: b, Expires: until}
}

func (t *signInThrottle) sharedAttempt(addr, user string) (ok bool, wait time.Duration) {
	now := t.now()
	ak, uk, kk := signInKeys(addr, user)
	err := t.shared.UpdateShared(context.Background(), []string{ak, uk, kk}, now, func(cur []custody.SharedEntry) ([]custody.SharedEntry, error) {
		a, u := window(cur[0], now), window(cur[1], now)
		known := cur[2].Value != nil // kept signInKnownFor
		if a.N >= signInMaxFails && !known {
			ok, wait = false, signInWindow-now.Sub(a.Start)
			return nil, nil
		}
		if u.N >= signInMaxFailsPerUser {
			ok, wait = false, signInWindow-now.Sub(u.Start)
			return nil, nil
		}
		a.N++
		u.N++
		ok, wait = true, 0
		return []custody.SharedEntry{entry(ak, "", a, a.Start.Add(signInWindow)), entry(uk, url.QueryEscape(user), u, u.Start.Add(signInWindow))}, nil
	})
	if err != nil {
		t.log.Error("sign-in throttle: the shared counts cannot be read or written; the sign-in is refused", "err", err)
		return false, sharedWait
	}
	return ok, wait
}

// giveBack returns one reserved attempt of each live window in cur.
func giveBackShared(cur []custody.SharedEntry, now time.Time) []custody.SharedEntry {
	var out []custody.SharedEntry
	for _, e := range cur {
		if c := window(e, now); e.Value != nil && c.N > 0 {
			c.N--
			out = append(out, entry(e.Key, e.Subject, c, c.Start.Add(signInWindow)))
		}
	}
	return out
}

func (t *signInThrottle) sharedSucceeded(addr, user string) {
	now := t.now()
	ak, uk, kk := signInKeys(addr, user)
	err := t.shared.UpdateShared(context.Background(), []string{ak, uk}, now, func(cur []custody.SharedEntry) ([]custody.SharedEntry, error) {
		return giveBackShared(cur, now), nil
	})
	if err == nil {
		err = t.shared.UpdateShared(context.Background(), []string{kk}, now, func([]custody.SharedEntry) ([]custody.SharedEntry, error) {
			return []custody.SharedEntry{entry(kk, url.QueryEscape(user), sharedCount{Start: now}, now.Add(signInKnownFor))}, nil
		})
	}
	if err != nil {
		t.log.Error("sign-in throttle: a successful sign-in was not recorded in the shared counts", "err", err)
	}
}

func (t *signInThrottle) sharedRefunded(addr, user string) {
	now := t.now()
	ak, uk, _ := signInKeys(addr, user)
	if err := t.shared.UpdateShared(context.Background(), []string{ak, uk}, now, func(cur []custody.SharedEntry) ([]custody.SharedEntry, error) {
		return giveBackShared(cur, now), nil
	}); err != nil {
		t.log.Error("sign-in throttle: attempts were not given back in the shared counts", "err", err)
	}
}

// sharedBlocked is blocked on the shared counts; a store error reports
// the user not blocked, with the error logged.
func (t *signInThrottle) sharedBlocked(user string) (bool, int) {
	now := t.now()
	es, err := t.shared.SharedBySubject(context.Background(), "signin/u/", url.QueryEscape(user), now)
	if err != nil {
		t.log.Error("sign-in throttle: the shared counts cannot be read", "err", err)
		return false, 0
	}
	var blocked bool
	var n int
	for _, e := range es {
		if c := window(e, now); e.Value != nil && c.N > 0 {
			n += c.N
			blocked = blocked || c.N >= signInMaxFailsPerUser
		}
	}
	return blocked, n
}

func (t *signInThrottle) sharedForgetUser(user string) {
	now := t.now()
	ctx := context.Background()
	es, err := t.shared.SharedBySubject(ctx, "signin/u/", url.QueryEscape(user), now)
	if err == nil && len(es) > 0 {
		var keys []string
		for _, e := range es {
			addr, _, _ := strings.Cut(strings.TrimPrefix(e.Key, "signin/u/"), "|")
			keys = append(keys, e.Key, "signin/a/"+addr)
		}
		err = t.shared.UpdateShared(ctx, keys, now, func(cur []custody.SharedEntry) ([]custody.SharedEntry, error) {
			var out []custody.SharedEntry
			for i := 0; i < len(cur); i += 2 {
				u, a := cur[i], cur[i+1]
				if u.Value == nil {
					continue
				}
				out = append(out, custody.SharedEntry{Key: u.Key})
				if a.Value != nil {
					ac := window(a, now)
					ac.N = max(0, ac.N-window(u, now).N)
					out = append(out, entry(a.Key, "", ac, ac.Start.Add(signInWindow)))
				}
			}
			return out, nil
		})
	}
	if err != nil {
		t.log.Error("sign-in throttle: the user's failed sign-ins were not forgotten in the shared counts", "user", user, "err", err)
	}
}
