package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The bedside check: scan the bag, scan the wristband, two nurses sign. A
// mismatch is recorded by the domain and shown until acknowledged
// (mismatch.go).

type bedsideView struct {
	Chain   *custody.Chain
	Stage   string // bag, wristband, sign
	BagCode string
	// Bag is the scanned bag as its ID (never the raw label payload);
	// BagProblem says why the scanned label is not a bag of this chain.
	Bag        string
	BagProblem string
	// WristbandMismatch: the scanned wristband is not this chain's
	// patient's, told before anyone signs; the signatures then record the
	// mismatch.
	WristbandMismatch bool
	Sigs              []sigBox
	Allowed           bool
	Waiting           string
	BagChosen         bool
}

func (w *ui) bedsidePage(c echo.Context) error { return w.renderBedside(c, http.StatusOK, nil) }

func (w *ui) renderBedside(c echo.Context, code int, msg *uiMessage) error {
	coi, err := api.COIParam(c)
	if err != nil {
		return w.fail(c, err)
	}
	ch, err := w.svc.ReadChain(c.Request().Context(), sessionUser(c), coi)
	if err != nil {
		return w.fail(c, err)
	}
	sess := session(c)
	snap := w.sessions.snapshot(sess)
	v := bedsideView{Chain: ch, Stage: "bag"}
	rule, rerr := w.svc.Journey().Rule(ch.State, custody.StepBedsideVerify)
	v.Allowed = rerr == nil && slices.Contains(ch.Next, custody.StepBedsideVerify) && rule.MaySign(snap.User.Role)
	if !v.Allowed {
		v.Waiting = "The bedside check is not possible now: the chain is " + stateText(ch.State) + "."
		if len(ch.OpenIssues()) > 0 {
			v.Waiting += " Open issues await a QA disposition."
		} else if rerr == nil && !rule.MaySign(snap.User.Role) {
			v.Waiting = "Two nurses perform the bedside check."
		}
	}
	if b := snap.Bedside; b != nil && b.COI == coi {
		v.BagCode = b.BagCode
		switch {
		case b.BagCode != "" && b.Wristband != "":
			v.Stage = "sign"
		case b.BagCode != "":
			v.Stage = "wristband"
		}
		if b.BagCode != "" {
			v.Bag, v.BagProblem = scannedBag(ch, b.BagCode)
		}
		if b.Wristband != "" {
			v.WristbandMismatch = w.wristbandMismatch(c, ch, b.Wristband)
		}
	}
	if rerr == nil {
		v.Sigs = sigBoxes(rule, snap.User)
	}
	return w.render(c, code, "bedside", page{Title: "Bedside check " + ch.Display, Nav: "scan", Msg: msg, V: v})
}

func (w *ui) bedsideSubmit(c echo.Context) error {
	coi, err := api.COIParam(c)
	if err != nil {
		return w.fail(c, err)
	}
	sess := session(c)
	target := "/chains/" + string(coi) + "/bedside"
	switch c.FormValue("action") {
	case "reset":
		w.sessions.update(sess, func(s *webSession) { s.Bedside = nil })
		return c.Redirect(http.StatusSeeOther, target)
	case "bag":
		code := strings.TrimSpace(c.FormValue("code"))
		if code == "" {
			return w.renderBedside(c, http.StatusBadRequest, &uiMessage{Kind: "error", Title: "Scan the bag label.", Detail: "Nothing was scanned."})
		}
		w.sessions.update(sess, func(s *webSession) { s.Bedside = &bedsideState{COI: coi, BagCode: code} })
		return c.Redirect(http.StatusSeeOther, target)
	case "wristband":
		code := strings.TrimSpace(c.FormValue("code"))
		ok := false
		w.sessions.update(sess, func(s *webSession) {
			if s.Bedside != nil && s.Bedside.COI == coi && s.Bedside.BagCode != "" && code != "" {
				s.Bedside.Wristband, ok = code, true
			}
		})
		if !ok {
			return w.renderBedside(c, http.StatusBadRequest, &uiMessage{Kind: "error", Title: "Scan the bag label first, then the wristband."})
		}
		return c.Redirect(http.StatusSeeOther, target)
	case "sign":
		return w.bedsideSign(c, coi)
	}
	return w.renderBedside(c, http.StatusBadRequest, &uiMessage{Kind: "error", Title: "Unknown action.", Detail: "Reload the page and start again."})
}

func (w *ui) bedsideSign(c echo.Context, coi custody.COI) error {
	ctx := c.Request().Context()
	sess := session(c)
	snap := w.sessions.snapshot(sess)
	b := snap.Bedside
	if b == nil || b.COI != coi || b.BagCode == "" || b.Wristband == "" {
		return w.renderBedside(c, http.StatusBadRequest, &uiMessage{Kind: "error", Title: "Scan the bag and the wristband before signing."})
	}
	ch, err := w.svc.ReadChain(ctx, sessionUser(c), coi)
	if err != nil {
		return w.fail(c, err)
	}
	rule, err := w.svc.Journey().Rule(ch.State, custody.StepBedsideVerify)
	if err != nil {
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		return w.renderBedside(c, w.statusOf(c, err), &m)
	}
	form, _ := c.FormParams()
	data, _ := json.Marshal(map[string]string{"bag_code": b.BagCode, "wristband_code": b.Wristband})
	rec, err := w.svc.Record(ctx, snap.User, coi, custody.StepRequest{Step: custody.StepBedsideVerify, Data: data, Signatures: signatures(rule, form)})
	if err != nil {
		if mm := newMismatch(ch, err); mm != nil {
			w.sessions.update(sess, func(s *webSession) { s.Bedside, s.Mismatch = nil, mm })
			return c.Redirect(http.StatusSeeOther, "/mismatch")
		}
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		return w.renderBedside(c, w.statusOf(c, err), &m)
	}
	w.sessions.update(sess, func(s *webSession) {
		s.Bedside = nil
		s.Flash = fmt.Sprintf("Bedside check passed: the bag and the wristband belong to this chain (record %d, signed by %s). You may now infuse.", rec.Seq, signers(rec))
	})
	return c.Redirect(http.StatusSeeOther, "/chains/"+string(coi))
}

// newMismatch returns the mismatch the domain recorded for a refused
// bedside check, or nil when err is not a mismatch.
func newMismatch(ch *custody.Chain, err error) *mismatchState {
	var mm *custody.MismatchError
	if !errors.As(err, &mm) {
		return nil
	}
	reasons := make([]string, 0, len(mm.Reasons))
	for _, r := range mm.Reasons {
		reasons = append(reasons, sentence(r))
	}
	if len(reasons) == 0 {
		reasons = []string{sentence("the bag and the wristband did not match this chain")}
	}
	return &mismatchState{COI: ch.COI, Display: ch.Display, Seq: mm.Record.Seq, Reasons: reasons}
}

// scannedBag reads a bag label scanned at the bedside: its bag ID, and
// what makes it not a final-product bag of chain ch. The domain checks
// again when the nurses sign; this tells them before they do.
func scannedBag(ch *custody.Chain, code string) (bag, problem string) {
	c, err := custody.ParseCode(code)
	switch {
	case err != nil:
		return "", "This label could not be read as a coid bag label."
	case c.COI != ch.COI:
		return bagText(code), fmt.Sprintf("This bag belongs to another chain (%s), not to this patient's chain %s.", c.COI.Display(), ch.Display)
	case c.Bag == nil:
		return "", "This label names the chain but no bag: scan the bag's own label."
	case c.Bag.Kind != custody.BagFinalProduct:
		return c.Bag.String(), c.Bag.String() + " is an apheresis collection bag, not a final-product bag."
	case !ch.HasBag(*c.Bag):
		return c.Bag.String(), c.Bag.String() + " was never registered for this chain."
	}
	return c.Bag.String(), ""
}

// wristbandMismatch reports whether a scanned wristband is not the one of
// the chain's patient on file (custody's Service.WristbandMatches, the
// rule the domain applies at signing).
// Neither the code nor the patient's identifier is shown or logged. When
// the identity cannot be read, it says nothing here: the domain decides
// at signing.
func (w *ui) wristbandMismatch(c echo.Context, ch *custody.Chain, code string) bool {
	match, err := w.svc.WristbandMatches(c.Request().Context(), ch.COI, code)
	return err == nil && !match
}
