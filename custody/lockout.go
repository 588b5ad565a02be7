package custody

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Password lockout (21 CFR Part 11 11.300(d)). Who may cause a lock
// matters: when any token holder could lock any account by typing its ID
// with wrong passwords, the lock became a way to keep a nurse from the
// bedside check. So:
//
//   - A caller's own wrong passwords (the API token or web session belongs
//     to the user the signature names) count, and MaxFailedSignatures in a
//     row lock the account until an administrator unlocks it.
//   - Wrong passwords for someone else's ID (a witness's signature, or a
//     sign-in, where nobody is authenticated yet) never lock. After
//     ForeignFreeFailures in a row, each further one makes that caller wait
//     before naming that ID again: ForeignBackoffMin, doubling up to
//     ForeignBackoffMax. The wait is per caller and ID, in memory, so it
//     slows a guesser without keeping anyone else out.
//   - Every refusal says the same whether or not the ID exists; a locked or
//     disabled account is refused to other callers like a wrong password.
//   - A lock, and each back-off, is logged at ERROR as a security alert.
const (
	// ForeignFreeFailures is how many wrong passwords in a row one caller
	// may give for another user's ID before it must wait.
	ForeignFreeFailures = MaxFailedSignatures - 1
	// ForeignBackoffMin is the first wait; each further wrong password
	// doubles it.
	ForeignBackoffMin = time.Minute
	// ForeignBackoffMax caps the wait.
	ForeignBackoffMax = 15 * time.Minute
	// backoffForget is how long after its last wrong password a caller's
	// count for an ID is kept.
	backoffForget = 24 * time.Hour
	// maxBackoffEntries bounds the table; when full, entries not waiting
	// are dropped first, and if every entry is waiting a new caller and ID
	// pair is refused (fail closed) rather than one of them forgotten.
	maxBackoffEntries = 10000
)

// ThrottledError is the error a refused attempt returns: ErrThrottled,
// with how long the caller must wait.
type ThrottledError struct {
	// Wait is how long until the caller may try again.
	Wait time.Duration
	// What names what was refused, for the message.
	What string
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%s; try again in %s: %s", e.What, e.Wait.Round(time.Second), ErrThrottled)
}

// Unwrap makes errors.Is(err, ErrThrottled) hold.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// RetryAfter returns how long a throttled error says to wait, and whether
// err is one.
func RetryAfter(err error) (time.Duration, bool) {
	var t *ThrottledError
	if errors.As(err, &t) {
		return t.Wait, true
	}
	return 0, false
}

// Caller is whoever tries a password: the authenticated user whose API
// token or web session made the request or, for a sign-in, where nobody is
// authenticated yet, the client's address.
type Caller struct {
	// User is the authenticated user's ID; empty for a sign-in.
	User string
	// Addr is the client's address; it names the caller when User is
	// empty.
	Addr string
}

func (c Caller) key() string {
	if c.User != "" {
		return "user\x00" + c.User
	}
	return "addr\x00" + c.Addr
}

// owns reports whether the caller is the user id: only then do wrong
// passwords count towards the lock.
func (c Caller) owns(id string) bool { return c.User != "" && c.User == id }

// logAttr is how the caller appears in the log.
func (c Caller) logAttr() []any {
	if c.User != "" {
		return []any{"caller", c.User}
	}
	return []any{"remote_ip", c.Addr}
}

// backoffs holds the wrong passwords each caller gave for other users'
// IDs, in memory.
type backoffs struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[backoffKey]*backoff
}

type backoffKey struct{ caller, id string }

type backoff struct {
	fails int       // wrong passwords in a row
	last  time.Time // the last one
	until time.Time // no attempt before this
}

func newBackoffs(now func() time.Time) *backoffs {
	return &backoffs{now: now, m: map[backoffKey]*backoff{}}
}

// wait returns how long caller must still wait before naming id; 0 when
// it may try now.
func (b *backoffs) wait(c Caller, id string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	f, ok := b.m[backoffKey{c.key(), id}]
	if !ok {
		if len(b.m) >= maxBackoffEntries && !b.pruneLocked(now) {
			return ForeignBackoffMin // full of waiting callers: fail closed
		}
		return 0
	}
	if d := f.until.Sub(now); d > 0 {
		return d
	}
	return 0
}

// failed counts a wrong password from caller for id and returns the
// count and the wait it now imposes (0 while still free).
func (b *backoffs) failed(c Caller, id string) (int, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	k := backoffKey{c.key(), id}
	f, ok := b.m[k]
	if ok && now.Sub(f.last) >= backoffForget {
		ok = false
	}
	if !ok {
		if len(b.m) >= maxBackoffEntries && !b.pruneLocked(now) {
			return 1, 0 // wait refuses this pair until there is room
		}
		f = &backoff{}
		b.m[k] = f
	}
	f.fails++
	f.last = now
	if f.fails <= ForeignFreeFailures {
		return f.fails, 0
	}
	d := ForeignBackoffMin
	for i := ForeignFreeFailures + 1; i < f.fails && d < ForeignBackoffMax; i++ {
		d *= 2
	}
	d = min(d, ForeignBackoffMax)
	f.until = now.Add(d)
	return f.fails, d
}

// succeeded forgets caller's wrong passwords for id.
func (b *backoffs) succeeded(c Caller, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, backoffKey{c.key(), id})
}

// clearUser forgets every caller's wrong passwords for id (an
// administrator's unlock).
func (b *backoffs) clearUser(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.m {
		if k.id == id {
			delete(b.m, k)
		}
	}
}

// pruneLocked drops entries that impose no wait, or that have been
// forgotten, and reports whether there is room now.
func (b *backoffs) pruneLocked(now time.Time) bool {
	for k, f := range b.m {
		if !now.Before(f.until) || now.Sub(f.last) >= backoffForget {
			delete(b.m, k)
		}
	}
	return len(b.m) < maxBackoffEntries
}

// errNotAccepted is every refusal of a password a caller may not learn
// more about: wrong password, unknown ID, or (for another user's ID) a
// locked or disabled account.
func errNotAccepted() error {
	return fmt.Errorf("user ID or password not accepted: %w", ErrUnauthenticated)
}

// checkPassword checks a user's password, for a signature or a sign-in,
// under the lockout rules above. An unknown ID is not logged: people type
// passwords and patient numbers into the ID box.
func (s *Service) checkPassword(ctx context.Context, c Caller, id, password string) (User, error) {
	own := c.owns(id)
	if !own {
		if d := s.backoff.wait(c, id); d > 0 {
			s.log.Warn("signature refused", append(c.logAttr(), "reason", "backing off")...)
			return User{}, &ThrottledError{Wait: d, What: "too many wrong passwords for this user ID"}
		}
	}
	u, err := s.store.User(ctx, id)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return User{}, err
	}
	refuse := func(reason string) (User, error) {
		attrs := append(c.logAttr(), "reason", reason)
		if exists {
			attrs = append(attrs, "user", id)
		}
		n, d := s.backoff.failed(c, id)
		s.log.Warn("signature failed", append(attrs, "failures_in_a_row", n)...)
		if d > 0 {
			s.log.Error("security alert: repeated wrong passwords", append(attrs, "failures_in_a_row", n, "backoff", d.String())...)
		}
		return User{}, errNotAccepted()
	}
	switch {
	case !exists:
		_, _ = s.hasher.Verify(s.dummyHash(), password) // the same effort as a real check
		return refuse("unknown user")
	case u.Disabled && !own:
		_, _ = s.hasher.Verify(s.dummyHash(), password)
		return refuse("disabled")
	case u.Disabled:
		return User{}, fmt.Errorf("user %s is disabled: %w", id, ErrUnauthenticated)
	case u.Locked && !own:
		_, _ = s.hasher.Verify(s.dummyHash(), password)
		return refuse("locked")
	case u.Locked:
		s.log.Warn("signature refused", "user", id, "reason", "locked")
		return User{}, fmt.Errorf("user %s is locked after %d failed signatures; an administrator must unlock it: %w", id, MaxFailedSignatures, ErrUnauthenticated)
	}
	ok, err := s.hasher.Verify(u.PasswordHash, password)
	if err != nil {
		return User{}, fmt.Errorf("verify password: %w", err)
	}
	if !ok && !own {
		return refuse("wrong password")
	}
	if !ok {
		n, locked := 0, false
		_, uerr := s.store.UpdateUser(ctx, id, func(x *User) error {
			x.FailedSignatures++
			n = x.FailedSignatures
			if x.FailedSignatures >= MaxFailedSignatures && !x.Locked {
				x.Locked, locked = true, true
			}
			return nil
		})
		if uerr != nil {
			return User{}, fmt.Errorf("count failed signature: %w", uerr)
		}
		s.log.Warn("signature failed", "user", id, "reason", "wrong password", "failed_signatures", n)
		if locked {
			s.log.Error("security alert: account locked", "user", id, "failed_signatures", n)
		}
		return User{}, errNotAccepted()
	}
	if !own {
		s.backoff.succeeded(c, id)
	}
	if u.FailedSignatures > 0 {
		if _, err := s.store.UpdateUser(ctx, id, func(x *User) error { x.FailedSignatures = 0; return nil }); err != nil {
			return User{}, fmt.Errorf("reset failed signatures: %w", err)
		}
	}
	return u, nil
}
