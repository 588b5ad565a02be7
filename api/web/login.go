package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Sign-in and sign-out, and the home page each role starts at.

type loginView struct {
	Next    string
	UserID  string
	Expired bool
	Token   string
}

func (w *ui) loginPage(c echo.Context) error {
	tok := randomToken()
	w.setCookie(c, loginCookie, tok, "/login", 3600)
	v := loginView{Next: safeNext(c.QueryParam("next")), Expired: c.QueryParam("expired") != "", Token: tok}
	p := page{Title: "Sign in", V: v}
	if v.Expired {
		p.Msg = &uiMessage{Kind: "info", Title: "You were signed out after " + humanDuration(webIdleTimeout) + " without activity.", Detail: "Sign in again to continue."}
	}
	return w.render(c, http.StatusOK, "login", p)
}

// safeNext keeps a post-sign-in destination only when it is a path on this
// server, as a browser would read it: browsers drop tabs and line breaks
// anywhere in a URL, trim leading and trailing control characters and
// spaces, and take a backslash for a slash, so "/\t/evil.example" and
// "/\\evil.example" both lead off-site. The value is normalised that way
// first, and then must be an absolute path with no scheme or host; the
// normalised form is returned, or "" to go to the user's home page.
func safeNext(n string) string {
	n = strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, n)
	n = strings.TrimFunc(n, func(r rune) bool { return r <= ' ' })
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") ||
		strings.IndexFunc(n, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
		return ""
	}
	u, err := url.Parse(n)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "/login") {
		return ""
	}
	return n
}

func (w *ui) login(c echo.Context) error {
	ck, _ := c.Cookie(loginCookie)
	if ck == nil || !w.sameOrigin(c) || !tokensEqual(c.Request().PostFormValue("csrf"), ck.Value) {
		return w.csrfRefused(c)
	}
	id := strings.TrimSpace(c.FormValue("user"))
	next := safeNext(c.FormValue("next"))
	if ok, wait := w.throttle.Attempt(c.RealIP(), id); !ok {
		w.log.Warn("web sign-in refused: too many failed sign-ins from this address", "remote_ip", c.RealIP())
		api.SetRetryAfter(c, &custody.ThrottledError{Wait: wait})
		m := uiMessage{Kind: "error", Title: "Too many failed sign-ins from this device.",
			Detail: fmt.Sprintf("Try again in %d minutes. If you have forgotten your password, ask an administrator.", int(wait.Minutes())+1)}
		tok := randomToken()
		w.setCookie(c, loginCookie, tok, "/login", 3600)
		return w.render(c, http.StatusTooManyRequests, "login", page{Title: "Sign in", Msg: &m, V: loginView{Next: next, UserID: id, Token: tok}})
	}
	u, err := w.svc.Login(c.Request().Context(), c.RealIP(), id, c.FormValue("password"))
	switch {
	case err == nil:
		w.throttle.Succeeded(c.RealIP(), id)
	case !errors.Is(err, custody.ErrUnauthenticated):
		w.throttle.Refunded(c.RealIP(), id) // only wrong passwords use up attempts
	}
	var sid string
	if err == nil {
		if sid, _, err = w.sessions.create(u); err != nil {
			w.log.Error("web sign-in refused", "err", err, "user", u.ID)
			m := uiMessage{Kind: "error", Title: "coid cannot take more sign-ins right now.",
				Detail: "Every session place is in use. Try again in a few minutes, or ask the system administrator."}
			tok := randomToken()
			w.setCookie(c, loginCookie, tok, "/login", 3600)
			return w.render(c, http.StatusServiceUnavailable, "login", page{Title: "Sign in", Msg: &m, V: loginView{Next: next, UserID: id, Token: tok}})
		}
	}
	if err != nil {
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		if errors.Is(err, custody.ErrUnauthenticated) {
			m.Title = "Sign-in failed."
		}
		tok := randomToken()
		w.setCookie(c, loginCookie, tok, "/login", 3600)
		return w.render(c, w.statusOf(c, err), "login", page{Title: "Sign in", Msg: &m,
			V: loginView{Next: next, UserID: id, Token: tok}})
	}
	w.setCookie(c, sessionCookie, sid, "/", 0)
	w.setCookie(c, loginCookie, "", "/login", -1)
	w.log.Info("web sign-in", "user", u.ID, "role", string(u.Role))
	if w.svc.PasswordChangeDue(u) != nil {
		return c.Redirect(http.StatusSeeOther, "/password")
	}
	if next == "" {
		next = homeOf(u.Role)
	}
	return c.Redirect(http.StatusSeeOther, next)
}

func homeOf(r custody.Role) string {
	if custody.MayRequestAccess(r) {
		return "/access/requests"
	}
	if custody.StartsAtConsole(r) {
		return "/qa"
	}
	return "/scan"
}

func (w *ui) logout(c echo.Context) error {
	id, _ := c.Get(ctxSessionID).(string)
	w.sessions.delete(id)
	w.setCookie(c, sessionCookie, "", "/", -1)
	return c.Redirect(http.StatusSeeOther, "/login")
}

func (w *ui) home(c echo.Context) error {
	return c.Redirect(http.StatusSeeOther, homeOf(sessionUser(c).Role))
}

// The password change: any signed-in user may change the password, and
// one who must (an administrator reset it, or it expired) can do nothing
// else until they have.

type passwordView struct {
	// Reason says why the change is required; empty when it is not.
	Reason string
}

// passwordGate sends a user who must change the password to the change
// form: GET requests are redirected there, form posts refused; only the
// form and sign-out stay open.
func (w *ui) passwordGate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if p := c.Path(); p == "/password" || p == "/logout" {
			return next(c)
		}
		u, err := w.svc.User(c.Request().Context(), sessionUser(c).ID)
		if err != nil {
			return err
		}
		if w.svc.PasswordChangeDue(u) == nil {
			return next(c)
		}
		if c.Request().Method == http.MethodGet {
			return c.Redirect(http.StatusSeeOther, "/password")
		}
		return w.refuse(c, http.StatusForbidden, "Change your password first.",
			"Nothing was recorded. Your password must be changed before you can do anything else in coid.")
	}
}

// passwordReason says why the signed-in user must change the password,
// or "" when they need not.
func (w *ui) passwordReason(c echo.Context) (string, error) {
	u, err := w.svc.User(c.Request().Context(), sessionUser(c).ID)
	if err != nil {
		return "", err
	}
	switch {
	case u.MustChangePassword:
		return "An administrator reset your password. Choose a new one before you go on.", nil
	case w.svc.PasswordChangeDue(u) != nil:
		return "Your password expired. Choose a new one before you go on.", nil
	}
	return "", nil
}

func (w *ui) passwordPage(c echo.Context) error {
	why, err := w.passwordReason(c)
	if err != nil {
		return err
	}
	return w.render(c, http.StatusOK, "password", page{Title: "Change password", V: passwordView{Reason: why}})
}

func (w *ui) changePassword(c echo.Context) error {
	why, err := w.passwordReason(c)
	if err != nil {
		return err
	}
	again := func(status int, m uiMessage) error {
		return w.render(c, status, "password", page{Title: "Change password", Msg: &m, V: passwordView{Reason: why}})
	}
	req := custody.PasswordChange{Current: c.FormValue("current"), New: c.FormValue("new")}
	if req.New != c.FormValue("confirm") {
		return again(http.StatusBadRequest, uiMessage{Kind: "error", Title: "The new passwords differ.", Detail: "Type the same new password twice."})
	}
	sess := session(c)
	out, err := w.svc.ChangePassword(c.Request().Context(), sess.User, req, custody.Hash{})
	if err != nil {
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		if errors.Is(err, custody.ErrUnauthenticated) {
			m.Title = "The current password was not accepted."
		}
		return again(w.statusOf(c, err), m)
	}
	// This session stays; every other one ends at its next request.
	w.sessions.update(sess, func(s *webSession) { s.SignedIn = out.User.PasswordChanged })
	w.log.Info("web password change", "user", sess.User.ID, "tokens_revoked", len(out.RevokedTokens))
	w.flash(c, "Your password was changed.")
	return c.Redirect(http.StatusSeeOther, homeOf(sess.User.Role))
}
