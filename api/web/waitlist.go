package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The waiting list screen: the chains waiting for a manufacturing slot, in
// the order the fairness rule offers slots (urgency, then time waiting),
// with their open offers, a page at a time. Each user sees the chains they
// may read. Coordinators put a chain on the list with its urgency, change
// an urgency, take a chain off, and accept (signing the booking) or
// decline an offer, each with its reason; the plant's programme lead takes
// chains off too. The service decides who may and what is refused; a
// refusal is shown beside the field it concerns, nothing changed.

// waitlistPage is how many entries one screen shows.
const waitlistPage = 50

// waitlistView is the screen's content.
type waitlistView struct {
	Plant   string
	Entries []waitRow
	// First is the position of the first entry shown, from 1.
	First int
	Total int
	// Offset is this page's; Prev and Next are the offsets of the pages
	// around; -1: none.
	Offset, Prev, Next int
	// MaySchedule: the user adds chains, changes urgencies and answers
	// offers (a coordinator).
	MaySchedule bool
	// AcceptSigs are the signatures an accepted offer's booking takes.
	AcceptSigs []sigBox
	// Failed is the form refused, to show again with its refusal.
	Failed *waitForm
}

// waitForm is a refused waiting-list form: which (add, urgency, remove,
// accept, decline), of which chain, the field the refusal concerns ("":
// the form) and what was typed.
type waitForm struct {
	Form   string
	COI    custody.COI
	Field  string
	Msg    string
	Values url.Values
}

// Err returns the refusal of form of chain coi beside field ("" when
// there is none there).
func (v waitlistView) Err(form string, coi custody.COI, field string) string {
	if f := v.Failed; f != nil && f.Form == form && f.COI == coi && f.Field == field {
		return f.Msg
	}
	return ""
}

// Val returns what was typed in field of the refused form of chain coi.
func (v waitlistView) Val(form string, coi custody.COI, field string) string {
	if f := v.Failed; f != nil && f.Form == form && f.COI == coi {
		return f.Values.Get(field)
	}
	return ""
}

// Open reports whether the form of chain coi was refused (shown open).
func (v waitlistView) Open(form string, coi custody.COI) bool {
	return v.Failed != nil && v.Failed.Form == form && v.Failed.COI == coi
}

// waitRow is one entry and its position in the list, from 1.
type waitRow struct {
	custody.WaitEntry
	Pos int
	// MayRemove: the user may take it off (a coordinator, or the plant's
	// programme lead).
	MayRemove bool
}

// registerWaitlist adds the screen and its forms to g (behind the
// session and its CSRF check); signs throttles the forms that sign.
func (w *ui) registerWaitlist(g *echo.Group, signs echo.MiddlewareFunc) {
	g.GET("/waitlist", w.waitlistScreen)
	g.POST("/waitlist", w.waitlistAdd)
	g.POST("/waitlist/:coi/urgency", w.waitlistUrgency)
	g.POST("/waitlist/:coi/remove", w.waitlistRemove)
	g.POST("/waitlist/:coi/accept", w.waitlistAccept, signs)
	g.POST("/waitlist/:coi/decline", w.waitlistDecline)
}

func (w *ui) waitlistScreen(c echo.Context) error {
	return w.renderWaitlist(c, http.StatusOK, nil)
}

// renderWaitlist renders the screen, with failed the form refused (nil:
// none).
func (w *ui) renderWaitlist(c echo.Context, code int, failed *waitForm) error {
	me := sessionUser(c)
	if !custody.MayReadRegistries(me.Role) {
		return w.refuse(c, http.StatusForbidden, "The waiting list is for the people who book and make the products.", "")
	}
	get := c.QueryParam
	if failed != nil {
		get = failed.Values.Get
	}
	off := 0
	if v := get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return w.refuse(c, http.StatusBadRequest, "The page asked for does not exist.", "")
		}
		off = n
	}
	plant := get("plant")
	if plant != "" && custody.ValidateRegistryCode(plant) != nil {
		return w.refuse(c, http.StatusBadRequest, "The plant asked for is not a site code.", "")
	}
	entries, total, err := w.svc.Waitlist(c.Request().Context(), me, plant, off, waitlistPage)
	if err != nil {
		return w.fail(c, err)
	}
	v := waitlistView{Plant: plant, First: off + 1, Total: total, Offset: off, Prev: -1, Next: -1,
		MaySchedule: custody.MaySchedule(me.Role), Failed: failed}
	for i, e := range entries {
		v.Entries = append(v.Entries, waitRow{WaitEntry: e, Pos: off + i + 1,
			MayRemove: v.MaySchedule || custody.MaySetQuotas(me, e.Plant)})
	}
	if off > 0 {
		v.Prev = max(off-waitlistPage, 0)
	}
	if off+len(entries) < total {
		v.Next = off + len(entries)
	}
	if rule, err := w.svc.Journey().Rule(custody.StateEnrolled, custody.StepSchedule); err == nil && v.MaySchedule {
		v.AcceptSigs = sigBoxes(rule, me)
		if v.Open("accept", failedCOI(failed)) {
			for i := range v.AcceptSigs {
				v.AcceptSigs[i].User = failed.Values.Get("sig_user_" + strconv.Itoa(i+1))
			}
		}
	}
	var msg *uiMessage
	if failed != nil && failed.Field == "" {
		msg = &uiMessage{Kind: "error", Title: "Nothing was changed.", Detail: failed.Msg}
	}
	return w.render(c, code, "waitlist", page{Title: "Waiting list", Nav: "waitlist", Msg: msg, V: v})
}

func failedCOI(f *waitForm) custody.COI {
	if f == nil {
		return ""
	}
	return f.COI
}

// waitlistFields are the fields of the waiting-list forms a refusal can
// stand beside; a refusal naming another is shown above the list.
var waitlistFields = []string{"coi", "urgency", "reason"}

// waitlistForm runs one waiting-list form: do changes the list and
// returns the flash to show; a refusal of what was typed shows the screen
// again with the refusal beside its field, anything else the error page.
func (w *ui) waitlistForm(c echo.Context, form string, do func(ctx context.Context, me custody.User, coi custody.COI, v url.Values) (string, error)) error {
	v, err := c.FormParams()
	if err != nil {
		return w.fail(c, fmt.Errorf("read form: %v: %w", err, custody.ErrInvalid))
	}
	var coi custody.COI
	if form == "add" {
		coi, err = custody.ParseCOI(strings.TrimSpace(v.Get("coi")))
		if err != nil {
			err = fmt.Errorf("chain: %w", &custody.FieldError{Field: "coi", Err: err})
		}
	} else {
		coi, err = api.COIParam(c)
	}
	var done string
	if err == nil {
		done, err = do(c.Request().Context(), sessionUser(c), coi, v)
	}
	if err == nil {
		w.flash(c, done)
		q := url.Values{}
		if off := v.Get("offset"); off != "" && off != "0" {
			q.Set("offset", off)
		}
		if p := v.Get("plant"); p != "" {
			q.Set("plant", p)
		}
		to := "/waitlist"
		if len(q) > 0 {
			to += "?" + q.Encode()
		}
		return c.Redirect(http.StatusSeeOther, to)
	}
	if !waitRefusal(err) {
		return w.fail(c, err)
	}
	v.Del("csrf")
	if errors.Is(err, custody.ErrInvalid) {
		// A reason refused (it may name the patient) is typed again,
		// never shown back.
		v.Del("reason")
	}
	for k := range v {
		if strings.HasPrefix(k, "sig_password_") {
			v.Del(k)
		}
	}
	f := &waitForm{Form: form, COI: coi, Values: v, Msg: fieldMessage(err)}
	if form == "add" {
		f.COI = "" // the one add form, whatever chain it named
	}
	if fe := custody.ErrorField(err); fe != "" && slices.Contains(waitlistFields, fe) {
		f.Field = fe
	} else {
		f.Msg = plainError(err, c.Response().Header().Get(echo.HeaderXRequestID)).Detail
	}
	return w.renderWaitlist(c, w.statusOf(c, err), f)
}

// waitRefusal reports whether err refuses what a waiting-list form asked
// (shown on the screen, nothing changed) rather than a failure.
func waitRefusal(err error) bool {
	for _, e := range []error{custody.ErrInvalid, custody.ErrConflict, custody.ErrNotFound, custody.ErrForbidden, custody.ErrUnauthenticated,
		custody.ErrSlotTaken, custody.ErrQuotaExhausted, custody.ErrOfferExpired} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// urgencyOf reads the urgency field: 0 when it is not a number (the
// domain refuses it beside the field).
func urgencyOf(v url.Values) int {
	n, _ := strconv.Atoi(v.Get("urgency"))
	return n
}

func (w *ui) waitlistAdd(c echo.Context) error {
	return w.waitlistForm(c, "add", func(ctx context.Context, me custody.User, coi custody.COI, v url.Values) (string, error) {
		e, err := w.svc.AddToWaitlist(ctx, me, coi, custody.WaitRequest{Urgency: urgencyOf(v), Reason: v.Get("reason")})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s is on the waiting list of %s with urgency %d.", e.COI, e.Plant, e.Urgency), nil
	})
}

func (w *ui) waitlistUrgency(c echo.Context) error {
	return w.waitlistForm(c, "urgency", func(ctx context.Context, me custody.User, coi custody.COI, v url.Values) (string, error) {
		e, err := w.svc.ChangeUrgency(ctx, me, coi, custody.WaitRequest{Urgency: urgencyOf(v), Reason: v.Get("reason")})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s now waits with urgency %d.", e.COI, e.Urgency), nil
	})
}

func (w *ui) waitlistRemove(c echo.Context) error {
	return w.waitlistForm(c, "remove", func(ctx context.Context, me custody.User, coi custody.COI, v url.Values) (string, error) {
		if err := w.svc.RemoveFromWaitlist(ctx, me, coi, v.Get("reason")); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s is off the waiting list.", coi), nil
	})
}

func (w *ui) waitlistAccept(c echo.Context) error {
	return w.waitlistForm(c, "accept", func(ctx context.Context, me custody.User, coi custody.COI, v url.Values) (string, error) {
		rule, err := w.svc.Journey().Rule(custody.StateEnrolled, custody.StepSchedule)
		if err != nil {
			return "", err
		}
		rec, err := w.svc.AcceptOffer(ctx, me, coi, signatures(rule, v))
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Offer accepted: %s is booked (record %d), signed by %s.", coi, rec.Seq, signers(rec)), nil
	})
}

func (w *ui) waitlistDecline(c echo.Context) error {
	return w.waitlistForm(c, "decline", func(ctx context.Context, me custody.User, coi custody.COI, v url.Values) (string, error) {
		if _, err := w.svc.DeclineOffer(ctx, me, coi, v.Get("reason")); err != nil {
			return "", err
		}
		return fmt.Sprintf("Offer declined: the slot passes to the next chain; %s keeps its place.", coi), nil
	})
}
