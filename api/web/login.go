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
	if next == "" {
		next = homeOf(u.Role)
	}
	return c.Redirect(http.StatusSeeOther, next)
}

func homeOf(r custody.Role) string {
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
	return c.Redirect(http.StatusSeeOther, homeOf(session(c).User.Role))
}
