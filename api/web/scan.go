package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The scan station: a scanned label leads to its chain page.

func (w *ui) scanPage(c echo.Context) error {
	return w.render(c, http.StatusOK, "scan", page{Title: "Scan station", Nav: "scan"})
}

func (w *ui) scanSubmit(c echo.Context) error {
	raw := c.FormValue("code")
	code, err := custody.ParseCode(raw)
	if err == nil {
		var ch *custody.Chain
		if ch, err = w.svc.ReadChain(c.Request().Context(), sessionUser(c), code.COI); err == nil {
			target := "/chains/" + string(ch.COI)
			if code.Bag != nil {
				if !ch.HasBag(*code.Bag) {
					m := uiMessage{Kind: "stop", Title: "This bag is not registered on its chain.",
						Detail: fmt.Sprintf("Bag %s is not a bag of chain %s. Do not use it; set it aside and call QA.", code.Bag, ch.Display)}
					return w.render(c, http.StatusNotFound, "scan", page{Title: "Scan station", Nav: "scan", Msg: &m})
				}
				target += "?bag=" + url.QueryEscape(code.Bag.String())
			}
			return c.Redirect(http.StatusSeeOther, target)
		}
	}
	m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
	switch {
	case errors.Is(err, custody.ErrInvalid):
		m.Title = "This code could not be read as a coid label."
		m.Detail += " Scan the label again, or type the COI with its check character."
	case errors.Is(err, custody.ErrNotFound):
		m.Title = "No chain has this identifier."
		m.Detail = "Check that the label belongs to a product enrolled in coid. " + m.Detail
	}
	// Label codes hold no patient identifiers, so text that looks like one
	// is shown back to be corrected. Anything else (a wristband scanned
	// here by mistake) is not repeated on screen.
	p := page{Title: "Scan station", Nav: "scan", Msg: &m}
	if t := strings.TrimSpace(raw); looksLikeCOICode(t) {
		p.ScanCode = t
	} else if errors.Is(err, custody.ErrInvalid) {
		m.Detail = "This is not a coid label (a wristband or another barcode?). Scan the bag label."
	}
	return w.render(c, w.statusOf(c, err), "scan", p)
}

// looksLikeCOICode reports whether s has the shape of a coid code (label
// payload, ISBT 128 data structure 040, COI or bag ID).
func looksLikeCOICode(s string) bool {
	return strings.HasPrefix(s, custody.PayloadPrefix) || strings.HasPrefix(s, custody.ISBTCOIPrefix) || strings.HasPrefix(s, "CH")
}
