package web

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Errors: how a refusal or a failure reaches the person at the screen, as a
// page in plain words with the status the API would answer.

// handleError renders errors that reach the UI's router (unknown pages,
// wrong methods, oversized bodies, panics) as pages.
func (w *ui) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			_ = w.refuse(c, he.Code, "This page does not exist.", "Use the scan station or the QA console.")
			return
		case http.StatusRequestEntityTooLarge:
			_ = w.refuse(c, he.Code, "That was too much to send.", "Nothing was recorded.")
			return
		}
		if he.Code < 500 {
			_ = w.refuse(c, he.Code, http.StatusText(he.Code)+".", "")
			return
		}
	}
	_ = w.fail(c, err)
}

// refuse renders the plain refusal page (CSRF, roles, expiry, not found).
func (w *ui) refuse(c echo.Context, code int, title, detail string) error {
	return w.render(c, code, "refused", page{Title: title, Msg: &uiMessage{Kind: "error", Title: title, Detail: detail}})
}

// fail renders a domain error as a refusal page in plain words.
func (w *ui) fail(c echo.Context, err error) error {
	m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
	code := w.statusOf(c, err)
	return w.render(c, code, "refused", page{Title: m.Title, Msg: &m})
}

// statusOf maps an error to its status through the API's error table and
// logs server-side failures like the API does.
func (w *ui) statusOf(c echo.Context, err error) int {
	api.SetRetryAfter(c, err)
	if row, ok := api.ClassifyError(err); ok {
		if row.Status >= 500 {
			lvl := slog.LevelError
			if row.Retryable { // a lost race: routine, the form is sent again
				lvl = slog.LevelInfo
			}
			w.log.Log(c.Request().Context(), lvl, "web request failed", "err", err, "status", row.Status, "path", c.Path(),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		}
		return row.Status
	}
	w.log.Error("web request failed", "err", err, "status", 500, "path", c.Path(),
		"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	return http.StatusInternalServerError
}

// uiMessage is a message shown to a person: a headline and details.
type uiMessage struct {
	Kind   string // ok, error, stop
	Title  string
	Detail string
}

// plainError turns a domain error into sentences a nurse understands. It
// drops the operation prefixes and the sentinel's own words, and says the
// names of data fields as the form does.
func plainError(err error, requestID string) uiMessage {
	detail := err.Error()
	if row, ok := api.ClassifyError(err); ok {
		detail = strings.TrimSuffix(detail, ": "+row.Sentinel.Error())
	}
	// "record ship on CHA...: ship: data.shipper must ..." -> "data.shipper must ..."
	detail = strings.TrimPrefix(detail, firstOp(detail))
	for {
		head, rest, ok := strings.Cut(detail, ": ")
		if !ok || !isOpWord(head) {
			break
		}
		detail = rest
	}
	for k, v := range fieldLabels {
		detail = strings.ReplaceAll(detail, "data."+k, v)
	}
	detail = sentence(detail)
	switch {
	case errors.Is(err, custody.ErrChainBroken):
		return uiMessage{Kind: "stop", Title: "Stop: the records of this chain do not verify.",
			Detail: "Do not continue with this product. QA and the system administrator have been alerted. Reference " + requestID + "."}
	case errors.Is(err, custody.ErrRetry):
		return uiMessage{Kind: "error", Title: "The chain changed while this was checked.",
			Detail: "Someone recorded another step first. Nothing was recorded: look at the chain and send this again."}
	case errors.Is(err, custody.ErrConflict), errors.Is(err, custody.ErrOutOfSpecification), errors.Is(err, custody.ErrExceptionalReleaseIncomplete):
		return uiMessage{Kind: "error", Title: "This step cannot be recorded now.", Detail: detail}
	case errors.Is(err, custody.ErrUnauthenticated):
		return uiMessage{Kind: "error", Title: "A signature was not accepted.", Detail: detail + " Check the user ID and password and sign again."}
	case errors.Is(err, custody.ErrForbidden):
		if strings.Contains(detail, "sign") {
			return uiMessage{Kind: "error", Title: "This person may not sign this step.", Detail: detail}
		}
		return uiMessage{Kind: "error", Title: "Your role may not do this.", Detail: detail}
	case errors.Is(err, custody.ErrInvalid):
		return uiMessage{Kind: "error", Title: "Please check the form.", Detail: detail}
	case errors.Is(err, custody.ErrNotFound):
		return uiMessage{Kind: "error", Title: "Not found.", Detail: detail}
	case errors.Is(err, custody.ErrInUse), errors.Is(err, custody.ErrClosed):
		return uiMessage{Kind: "error", Title: "coid is not available right now.", Detail: "Try again in a minute. Reference " + requestID + "."}
	}
	return uiMessage{Kind: "error", Title: "Something went wrong on the server.", Detail: "Nothing was recorded. Reference " + requestID + "."}
}

// firstOp returns the "record <step> on <COI>: " prefix of a conflict, if
// any, so the remaining words say what stands in the way.
func firstOp(s string) string {
	if !strings.HasPrefix(s, "record ") {
		return ""
	}
	if i := strings.Index(s, ": "); i >= 0 {
		return s[:i+2]
	}
	return ""
}

// isOpWord reports whether s is an operation prefix of a domain message
// (a step name, "parse code", "signature 2"...), which adds nothing for a
// reader of the form.
func isOpWord(s string) bool {
	switch {
	case strings.HasPrefix(s, "parse "), strings.HasPrefix(s, "label payload"), s == "enroll", s == "login":
		return true
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return len(s) > 0 && len(s) < 20
}

// sentence capitalises the first letter and ends with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
