package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Browser sessions of the web UI. They live outside the ledger: in memory
// with the embedded store, where a restart signs every browser out (sign
// in again); in the store's shared state when several instances share a
// PostgreSQL store (session_shared.go), where they outlive a restart and
// reach every instance. A session ends after webIdleTimeout without a
// request, on sign-out, or (in memory) when the server restarts. Times
// come from the service clock, so tests can move it.

const (
	// webIdleTimeout ends a session that made no request for this long.
	webIdleTimeout = 15 * time.Minute
	// webMaxSessions bounds the store; when it is full, expired sessions are
	// dropped and, if none are, a new sign-in is refused: no one's sign-in
	// ends anyone else's session.
	webMaxSessions = 10000
	// webMaxSessionsPerUser bounds one user's sessions; a further sign-in
	// ends that user's least recently used one.
	webMaxSessionsPerUser = 5
	// sessionCookie names the session cookie; loginCookie names the
	// double-submit CSRF cookie of the sign-in form.
	sessionCookie = "coid_session"
	loginCookie   = "coid_login"
)

// webSession is one signed-in browser.
type webSession struct {
	User     custody.User // public view: no password hash
	CSRF     string       // synchronizer token of every form of the session
	LastSeen time.Time
	// SignedIn is when the session began, or its user last changed the
	// password in it: a password set after it ends the session.
	SignedIn time.Time

	// Bedside holds the scans of a bedside check in progress. The
	// wristband code is a patient identifier: it is kept only here, in
	// memory, until the check is signed or reset, and is never rendered.
	Bedside *bedsideState
	// Mismatch, while set, is shown instead of every other page until the
	// user acknowledges it.
	Mismatch *mismatchState
	// Flash is a one-time message shown on the next page.
	Flash string

	// key is the session's key, with a shared state (session_shared.go).
	key [32]byte
}

type bedsideState struct {
	COI       custody.COI
	BagCode   string
	Wristband string
}

type mismatchState struct {
	COI     custody.COI
	Display string
	Seq     uint64
	Reasons []string
}

// sessionStore keeps sessions by the SHA-256 of their cookie value, so a
// memory dump of the map does not hand out usable cookies.
type sessionStore struct {
	mu   sync.Mutex
	now  func() time.Time
	idle time.Duration
	m    map[[32]byte]*webSession
	// perUser counts each user's sessions in m.
	perUser map[string]int

	// shared, when set, keeps the sessions instead of m, for every
	// instance sharing the store (session_shared.go); bedside holds this
	// instance's bedside checks of them, log hears of shared's failures.
	shared  custody.SharedState
	bedside map[[32]byte]*bedsideState
	log     *slog.Logger
}

// newSessionStore returns an empty session store reading time from now:
// in memory, or in shared when it is set.
func newSessionStore(now func() time.Time, shared custody.SharedState, log *slog.Logger) *sessionStore {
	return &sessionStore{now: now, idle: webIdleTimeout, m: map[[32]byte]*webSession{}, perUser: map[string]int{},
		shared: shared, bedside: map[[32]byte]*bedsideState{}, log: log}
}

func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func sessionKey(id string) [32]byte { return sha256.Sum256([]byte("coid-session\x00" + id)) }

// errSessionsFull refuses a sign-in when every session place is taken by
// a live session.
var errSessionsFull = errors.New("web sessions: the session table is full")

// create starts a session for u and returns its cookie value. A user with
// webMaxSessionsPerUser live sessions loses the least recently used one;
// a table full of live sessions refuses (errSessionsFull).
func (st *sessionStore) create(u custody.User) (string, *webSession, error) {
	id := randomToken()
	sess := &webSession{User: u.Public(), CSRF: randomToken(), LastSeen: st.now(), SignedIn: st.now()}
	if st.shared != nil {
		if err := st.sharedCreate(id, sess); err != nil {
			return "", nil, fmt.Errorf("web sessions: %w", err)
		}
		return id, sess, nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	if st.perUser[u.ID] >= webMaxSessionsPerUser {
		var oldestK [32]byte
		var oldest *webSession
		for k, s := range st.m {
			if s.User.ID == u.ID && (oldest == nil || s.LastSeen.Before(oldest.LastSeen)) {
				oldestK, oldest = k, s
			}
		}
		st.removeLocked(oldestK)
	}
	if len(st.m) >= webMaxSessions {
		for k, s := range st.m {
			if now.Sub(s.LastSeen) > st.idle {
				st.removeLocked(k)
			}
		}
	}
	if len(st.m) >= webMaxSessions {
		return "", nil, errSessionsFull
	}
	st.perUser[u.ID]++
	st.m[sessionKey(id)] = sess
	return id, sess, nil
}

// removeLocked deletes the session under k; the caller holds st.mu.
func (st *sessionStore) removeLocked(k [32]byte) {
	s, ok := st.m[k]
	if !ok {
		return
	}
	delete(st.m, k)
	if st.perUser[s.User.ID]--; st.perUser[s.User.ID] <= 0 {
		delete(st.perUser, s.User.ID)
	}
}

// get returns the live session for a cookie value and marks it used. An
// idle session is deleted and reported as expired.
func (st *sessionStore) get(id string) (sess *webSession, expired bool) {
	if id == "" {
		return nil, false
	}
	if st.shared != nil {
		return st.sharedGet(id)
	}
	k := sessionKey(id)
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[k]
	if !ok {
		return nil, false
	}
	now := st.now()
	if now.Sub(s.LastSeen) > st.idle {
		st.removeLocked(k)
		return nil, true
	}
	s.LastSeen = now
	return s, false
}

// update runs f on the session under the store's lock.
func (st *sessionStore) update(s *webSession, f func(*webSession)) {
	if st.shared != nil {
		st.sharedUpdate(s, f)
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	f(s)
}

// snapshot returns a copy of the session taken under the lock.
func (st *sessionStore) snapshot(s *webSession) webSession {
	st.mu.Lock()
	defer st.mu.Unlock()
	return *s
}

func (st *sessionStore) delete(id string) {
	if st.shared != nil {
		st.sharedDelete(sessionKey(id))
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.removeLocked(sessionKey(id))
}

// dropUser ends every session of a user (disabled accounts).
func (st *sessionStore) dropUser(userID string) {
	if st.shared != nil {
		st.sharedDropUser(userID)
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, s := range st.m {
		if s.User.ID == userID {
			st.removeLocked(k)
		}
	}
}

// session returns the request's session, set by requireSession.
func session(c echo.Context) *webSession {
	s, _ := c.Get(ctxSession).(*webSession)
	return s
}

// secure reports whether the request came over TLS (directly, or through
// a trusted proxy that says so).
func (w *ui) secure(c echo.Context) bool {
	if c.Request().TLS != nil {
		return true
	}
	// Behind a TLS proxy: believe its X-Forwarded-Proto, and only its.
	return w.srv.FromTrustedProxy(c.Request()) && c.Request().Header.Get(echo.HeaderXForwardedProto) == "https"
}

func (w *ui) setCookie(c echo.Context, name, value, path string, maxAge int) {
	c.SetCookie(&http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		Secure: w.secure(c), SameSite: http.SameSiteStrictMode})
}

// requireSession loads the session or sends the browser to sign in.
func (w *ui) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, _ := c.Cookie(sessionCookie)
		var id string
		if ck != nil {
			id = ck.Value
		}
		sess, expired := w.sessions.get(id)
		var fresh custody.User
		if sess != nil {
			var err error
			if fresh, err = w.stillActive(c, sess); err != nil {
				w.sessions.delete(id)
				sess = nil
			}
		}
		if sess == nil {
			if ck != nil {
				w.setCookie(c, sessionCookie, "", "/", -1)
			}
			q := url.Values{}
			if c.Request().Method == http.MethodGet {
				q.Set("next", c.Request().URL.RequestURI())
			}
			if expired {
				q.Set("expired", "1")
			}
			if c.Request().Method != http.MethodGet {
				// A form posted after the session ended: say so instead of
				// silently dropping what was entered.
				return w.refuse(c, http.StatusUnauthorized, "Your session has ended.",
					"Nothing was recorded. You were signed out after "+humanDuration(webIdleTimeout)+" without activity, or coid restarted. Sign in again and repeat the step.")
			}
			if strings.Contains(c.Request().Header.Get("Accept"), "text/event-stream") {
				return w.refuse(c, http.StatusUnauthorized, "Your session has ended.", "Sign in again.")
			}
			return c.Redirect(http.StatusSeeOther, "/login?"+q.Encode())
		}
		c.Set(ctxSession, sess)
		c.Set(ctxSessionID, id)
		c.Set(ctxUser, fresh)
		api.SetUser(c, fresh)
		return next(c)
	}
}

// stillActive checks that the session's user still exists and is enabled,
// so disabling an account, or setting its password elsewhere, ends its
// browser sessions at their next request.
//
// It returns the user as stored now (public view), so a change of the
// account's organisation or sites applies to the session's next request:
// a nurse taken off a site stops reading and signing its chains at once.
func (w *ui) stillActive(c echo.Context, sess *webSession) (custody.User, error) {
	u, err := w.svc.User(c.Request().Context(), sess.User.ID)
	if errors.Is(err, custody.ErrNotFound) {
		return custody.User{}, fmt.Errorf("user %s is gone: %w", sess.User.ID, custody.ErrUnauthenticated)
	}
	if err != nil {
		return custody.User{}, err
	}
	if u.Disabled || u.Role != sess.User.Role {
		return custody.User{}, fmt.Errorf("user %s changed: %w", u.ID, custody.ErrUnauthenticated)
	}
	// A password set since (a reset, or a change in another session)
	// ends the session.
	if signedIn := w.sessions.snapshot(sess).SignedIn; u.PasswordChanged.After(signedIn) {
		return custody.User{}, fmt.Errorf("user %s: the password changed: %w", u.ID, custody.ErrUnauthenticated)
	}
	return u.Public(), nil
}

// sessionUser returns the signed-in user as stored at this request (its
// organisation and sites current), or the session's copy outside the
// signed-in routes.
func sessionUser(c echo.Context) custody.User {
	if u, ok := c.Get(ctxUser).(custody.User); ok && u.ID != "" {
		return u
	}
	if s := session(c); s != nil {
		return s.User
	}
	return custody.User{}
}

// flash sets the one-time message of the next page.
func (w *ui) flash(c echo.Context, msg string) {
	w.sessions.update(session(c), func(s *webSession) { s.Flash = msg })
}
