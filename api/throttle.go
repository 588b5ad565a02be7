package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Sign-in throttling: anyone who reaches the sign-in page can try
// passwords. A client address gets signInMaxFails failed sign-ins per
// signInWindow, and signInMaxFailsPerUser of them for any one user ID.
// Further attempts are refused without checking any password until the
// window has passed, with one exception: many workstations share one
// address behind a NAT, so a busy address still lets through the IDs that
// signed in successfully from it in the last signInKnownFor (the per-user
// limit still applies to them). Wrong sign-in passwords never lock an
// account (custody's lockout rules); they slow the address down.
const (
	signInMaxFails        = 10
	signInMaxFailsPerUser = custody.MaxFailedSignatures - 1
	signInWindow          = 15 * time.Minute
	// signInMaxAddrs bounds the addresses remembered; expired ones are
	// dropped first.
	signInMaxAddrs = 10000
	// signInKnownFor is how long a successful sign-in lets its ID through
	// from a busy address.
	signInKnownFor = 30 * 24 * time.Hour
	// signInMaxKnown bounds the remembered successful sign-ins; when full
	// the oldest is forgotten (its user then waits like a stranger).
	signInMaxKnown = 20000
)

// Signature throttling: a token holder (or a signed-in browser) gets
// sigMaxFails failed signature attempts per sigWindow across every route
// that takes a signature; further ones are answered 429 with Retry-After,
// without checking any password.
const (
	sigMaxFails = 10
	sigWindow   = 15 * time.Minute
)

// windows counts failures per key in fixed windows of span.
type windows struct {
	span  time.Duration
	fails map[string]*failWindow
}

type failWindow struct {
	start time.Time
	n     int
}

// get returns key's current window, starting a new one when it has none
// or its window has passed. When the table is full of live windows the
// new one is not kept, and none is forgotten (forgetting would lift the
// block it holds).
func (w *windows) get(key string, now time.Time) *failWindow {
	f, ok := w.fails[key]
	if ok && now.Sub(f.start) < w.span {
		return f
	}
	if !ok && len(w.fails) >= signInMaxAddrs {
		for k, f := range w.fails {
			if now.Sub(f.start) >= w.span {
				delete(w.fails, k)
			}
		}
	}
	f = &failWindow{start: now}
	if ok || len(w.fails) < signInMaxAddrs {
		w.fails[key] = f
	}
	return f
}

// giveBack returns one reserved attempt of key.
func (w *windows) giveBack(key string) {
	if f, ok := w.fails[key]; ok && f.n > 0 {
		f.n--
	}
}

// signInThrottle counts failed web sign-ins per client address.
type signInThrottle struct {
	mu  sync.Mutex
	now func() time.Time
	// shared, when set, keeps the counts instead of win and known, for
	// every instance sharing the store (throttle_shared.go); log hears of
	// its failures.
	shared custody.SharedState
	log    *slog.Logger
	win    windows
	known  map[string]time.Time // addr NUL user: last successful sign-in
}

func newSignInThrottle(now func() time.Time, shared custody.SharedState, log *slog.Logger) *signInThrottle {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &signInThrottle{now: now, shared: shared, log: log, win: windows{span: signInWindow, fails: map[string]*failWindow{}}, known: map[string]time.Time{}}
}

// attempt reserves one of addr's sign-in attempts, and one of its
// attempts for user, before the password is checked, so that requests in
// parallel cannot all pass the limits: it reports whether addr may try now
// and, if not, how long until it may. A successful sign-in gives the
// reservations back (succeeded); a failed one keeps them.
func (t *signInThrottle) attempt(addr, user string) (bool, time.Duration) {
	if t.shared != nil {
		return t.sharedAttempt(addr, user)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	// A refused attempt creates nothing: a flood of them cannot fill the
	// table (and so cannot push out the address's own block).
	a := t.win.get(addr, now)
	known := now.Sub(t.known[addr+"\x00"+user]) < signInKnownFor
	if a.n >= signInMaxFails && !known {
		return false, signInWindow - now.Sub(a.start)
	}
	u := t.win.get(addr+"\x00"+user, now)
	if u.n >= signInMaxFailsPerUser {
		return false, signInWindow - now.Sub(u.start)
	}
	a.n++
	u.n++
	return true, 0
}

// succeeded gives back the attempts a successful sign-in from addr as
// user reserved, and remembers that user signs in from addr.
func (t *signInThrottle) succeeded(addr, user string) {
	if t.shared != nil {
		t.sharedSucceeded(addr, user)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.win.giveBack(addr)
	t.win.giveBack(addr + "\x00" + user)
	now := t.now()
	k := addr + "\x00" + user
	if _, ok := t.known[k]; !ok && len(t.known) >= signInMaxKnown {
		oldK, old := "", now
		for k, at := range t.known {
			if now.Sub(at) >= signInKnownFor {
				delete(t.known, k)
			} else if !at.After(old) {
				oldK, old = k, at
			}
		}
		if len(t.known) >= signInMaxKnown {
			delete(t.known, oldK)
		}
	}
	t.known[k] = now
}

// refunded gives back the attempts of a sign-in that checked no password
// (a refusal before it, an internal error).
func (t *signInThrottle) refunded(addr, user string) {
	if t.shared != nil {
		t.sharedRefunded(addr, user)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.win.giveBack(addr)
	t.win.giveBack(addr + "\x00" + user)
}

// sigThrottle counts failed signature attempts per caller.
type sigThrottle struct {
	mu  sync.Mutex
	now func() time.Time
	win windows
}

func newSigThrottle(now func() time.Time) *sigThrottle {
	return &sigThrottle{now: now, win: windows{span: sigWindow, fails: map[string]*failWindow{}}}
}

// attempt reserves one of caller's failed-signature attempts, or says how
// long to wait.
func (t *sigThrottle) attempt(caller string) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f := t.win.get(caller, now)
	if f.n >= sigMaxFails {
		return false, sigWindow - now.Sub(f.start)
	}
	f.n++
	return true, 0
}

// giveBack returns a reservation: no password was wrong.
func (t *sigThrottle) giveBack(caller string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.win.giveBack(caller)
}

// throttleSignatures guards a route that takes signatures: callerOf names
// the authenticated caller. A request whose signature was not accepted
// (ErrUnauthenticated, or a 401 page the handler rendered itself) keeps
// its reservation; any other outcome gives it back.
func (t *sigThrottle) throttleSignatures(callerOf func(echo.Context) string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !carriesPassword(c) {
				return next(c)
			}
			caller := callerOf(c)
			if ok, wait := t.attempt(caller); !ok {
				return &custody.ThrottledError{Wait: wait, What: "too many signatures not accepted from this account"}
			}
			err := next(c)
			if !errors.Is(err, custody.ErrUnauthenticated) && !(err == nil && c.Response().Status == http.StatusUnauthorized) {
				t.giveBack(caller)
			}
			return err
		}
	}
}

// carriesPassword reports whether a request may hold a signature
// password: a form always may; a JSON body only if a signature in it has
// one. (A request without one checks no password, so it needs no
// reservation: parallel unsigned requests are not held to the limit.) The
// body is read, within the body limit, and put back for the handler.
func carriesPassword(c echo.Context) bool {
	r := c.Request()
	if !strings.HasPrefix(r.Header.Get(echo.HeaderContentType), echo.MIMEApplicationJSON) {
		return true
	}
	b, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
	if err != nil {
		return true // the handler reports it
	}
	var req struct {
		Signatures []struct {
			Password string `json:"password"`
		} `json:"signatures"`
	}
	if json.Unmarshal(b, &req) != nil {
		return true
	}
	for _, s := range req.Signatures {
		if s.Password != "" {
			return true
		}
	}
	return false
}

// setRetryAfter sets the Retry-After header (whole seconds, rounded up)
// when err is a throttled refusal, or the error table's Retry-After for
// an error that may be retried at once.
func setRetryAfter(c echo.Context, err error) {
	if d, ok := custody.RetryAfter(err); ok {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
		return
	}
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			if row.retryAfter > 0 {
				c.Response().Header().Set("Retry-After", strconv.Itoa(row.retryAfter))
			}
			return
		}
	}
}
