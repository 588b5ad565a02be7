package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// A bedside mismatch: shown instead of every other page until the user
// acknowledges it, and acknowledged from the chain page when recorded
// elsewhere.

// mismatchGate shows an unacknowledged bedside mismatch instead of any
// other page.
func (w *ui) mismatchGate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess := session(c)
		snap := w.sessions.snapshot(sess)
		if snap.Mismatch != nil && !strings.HasPrefix(c.Path(), "/mismatch") && c.Path() != "/logout" {
			if c.Request().Method != http.MethodGet {
				return w.refuse(c, http.StatusConflict, "A bedside mismatch must be acknowledged first.",
					"Nothing was recorded. Open the mismatch screen and acknowledge it.")
			}
			return c.Redirect(http.StatusSeeOther, "/mismatch")
		}
		return next(c)
	}
}

func (w *ui) mismatchPage(c echo.Context) error {
	snap := w.sessions.snapshot(session(c))
	if snap.Mismatch == nil {
		return c.Redirect(http.StatusSeeOther, "/scan")
	}
	return w.render(c, http.StatusOK, "mismatch", page{Title: "MISMATCH: do not infuse", V: snap.Mismatch})
}

func (w *ui) mismatchAck(c echo.Context) error {
	sess := session(c)
	var mm *mismatchState
	w.sessions.update(sess, func(s *webSession) { mm, s.Mismatch = s.Mismatch, nil })
	if mm == nil {
		return c.Redirect(http.StatusSeeOther, "/scan")
	}
	// The acknowledgement goes into the chain, signed by this session's user.
	rec, err := w.svc.AcknowledgeMismatch(c.Request().Context(), sess.User, mm.COI, mm.Seq, custody.ViaSession)
	switch {
	case errors.Is(err, custody.ErrConflict):
		w.flash(c, fmt.Sprintf("Mismatch (record %d) was already acknowledged; the chain's records say by whom. Do not infuse this bag. Set it aside and call QA.", mm.Seq))
	case errors.Is(err, custody.ErrForbidden):
		// Not a clinical role: the mismatch stays unacknowledged in the
		// chain (and in its open issues) for a nurse to acknowledge.
		w.flash(c, fmt.Sprintf("Mismatch (record %d) is recorded. Your role may not acknowledge it: a nurse, coordinator or QA must. Do not infuse this bag. Set it aside and call QA.", mm.Seq))
	case err != nil:
		w.sessions.update(sess, func(s *webSession) { s.Mismatch = mm }) // still unacknowledged
		return err
	default:
		w.flash(c, fmt.Sprintf("Mismatch acknowledged (record %d, your acknowledgement record %d). Do not infuse this bag. Set it aside and call QA.", mm.Seq, rec.Seq))
	}
	return c.Redirect(http.StatusSeeOther, "/chains/"+string(mm.COI))
}

// chainMismatchAck acknowledges, from the chain page, a mismatch recorded
// elsewhere (another session, the API).
func (w *ui) chainMismatchAck(c echo.Context) error {
	coi, err := api.COIParam(c)
	if err != nil {
		return w.fail(c, err)
	}
	seq, err := strconv.ParseUint(c.Param("seq"), 10, 64)
	if err != nil || seq == 0 {
		return w.fail(c, fmt.Errorf("the mismatch must be named by its record position: %w", custody.ErrInvalid))
	}
	rec, err := w.svc.AcknowledgeMismatch(c.Request().Context(), sessionUser(c), coi, seq, custody.ViaSession)
	if err != nil {
		return w.fail(c, err)
	}
	w.flash(c, fmt.Sprintf("Mismatch acknowledged (record %d, your acknowledgement record %d). Do not infuse the bag it names. Set it aside and call QA.", seq, rec.Seq))
	return c.Redirect(http.StatusSeeOther, "/chains/"+string(coi))
}
