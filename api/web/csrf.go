package web

import (
	"crypto/subtle"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
)

// CSRF: every POST form carries the session's synchronizer token (the
// sign-in form a double-submit cookie), and its Origin, when sent, must be
// this server.

// sameOrigin reports whether a request's Origin (when the browser sent
// one) is this server. The UI's Referrer-Policy is same-origin, so browsers
// send the real Origin on the UI's own form posts; "null" (a sandboxed or
// privacy-stripped context) is refused.
func (w *ui) sameOrigin(c echo.Context) bool {
	o := c.Request().Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == c.Request().Host
}

// checkCSRF refuses a POST whose token does not match the session's.
func (w *ui) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method != http.MethodPost {
			return next(c)
		}
		snap := w.sessions.snapshot(session(c))
		if isMultipart(c.Request()) {
			tok, mr := firstPart(c.Request())
			if !w.sameOrigin(c) || !tokensEqual(tok, snap.CSRF) {
				return w.csrfRefused(c)
			}
			c.Set(ctxMultipart, mr)
			return next(c)
		}
		if !w.sameOrigin(c) || !tokensEqual(c.Request().PostFormValue("csrf"), snap.CSRF) {
			return w.csrfRefused(c)
		}
		return next(c)
	}
}

// ctxMultipart holds the *multipart.Reader of a multipart form whose
// CSRF part checkCSRF has read: the handler reads the rest, streaming.
const ctxMultipart = "coid.web.multipart"

// firstPart reads a multipart form's first part, which must be its CSRF
// token (forms put it first, and browsers send parts in order), and
// returns it with the reader positioned after it; "" when the first part
// is not the token. Nothing else of the body is read, so a document that
// follows is streamed by the handler rather than buffered here.
func firstPart(req *http.Request) (string, *multipart.Reader) {
	mr, err := req.MultipartReader()
	if err != nil {
		return "", nil
	}
	p, err := mr.NextPart()
	if err != nil || p.FormName() != "csrf" {
		return "", nil
	}
	b, err := io.ReadAll(io.LimitReader(p, 256))
	if err != nil {
		return "", nil
	}
	return string(b), mr
}

func (w *ui) csrfRefused(c echo.Context) error {
	w.log.Warn("web form refused: CSRF token missing or wrong", "path", c.Path(),
		"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	return w.refuse(c, http.StatusForbidden, "This form was not accepted.",
		"Nothing was recorded. The form was out of date or did not come from this coid page. Go back, reload the page and try again.")
}

func tokensEqual(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
