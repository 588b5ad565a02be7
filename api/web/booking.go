package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Booking a chain's plan: a coordinator picks the apheresis day from a
// month calendar that shows, day by day, whether the collection site has a
// chair free and the plant a slot of the product on the day the product's
// lead time puts the manufacturing start; choosing a day shows the whole
// plan, each milestone in its site's zone, and signing books it. The
// same page reschedules (another day, with a reason) and unschedules a
// booked chain. The calendar is plain links and forms: no script needed.
// The service decides everything: who may book, whether the slot is
// still free when the form is signed (a slot taken meanwhile is refused,
// nothing written).

func (w *ui) registerBooking(g *echo.Group, signs echo.MiddlewareFunc) {
	g.GET("/chains/:coi/booking", w.bookingPage)
	g.POST("/chains/:coi/booking", w.bookSubmit, signs)
	g.POST("/chains/:coi/booking/reschedule", w.rescheduleSubmit, signs)
	g.POST("/chains/:coi/booking/unschedule", w.unscheduleSubmit, signs)
	g.POST("/chains/:coi/booking/override", w.overrideSubmit, signs)
}

// planIn is what a chain's plan is computed from, read from the
// registries: its product with its lead times and its three sites.
type planIn struct {
	product custody.Product
	lt      custody.LeadTimes
	// sites: collection, manufacturing, treatment.
	sites [3]custody.PlanSite
	names [3]string
}

// readPlanIn reads chain ch's plan inputs; the error says why the chain
// cannot be booked (a product or site not registered, no lead times).
func (w *ui) readPlanIn(ctx context.Context, me custody.User, ch *custody.Chain) (planIn, error) {
	var in planIn
	p, err := w.svc.Product(ctx, me, ch.Product)
	if err != nil {
		return in, fmt.Errorf("product %s: %w", ch.Product, err)
	}
	if in.lt, err = p.LeadTimes(); err != nil {
		return in, err
	}
	in.product = p
	for i, code := range []string{ch.Sites.Collection, ch.Sites.Manufacturing, ch.Sites.Treatment} {
		s, err := w.svc.Site(ctx, me, code)
		if err != nil {
			return in, fmt.Errorf("site %s: %w", code, err)
		}
		loc, err := custody.ValidateTimeZone(s.TimeZone)
		if err != nil {
			return in, fmt.Errorf("site %s: %w", code, err)
		}
		in.sites[i], in.names[i] = custody.PlanSite{Code: s.Code, Loc: loc}, s.Name+" ("+s.Code+")"
	}
	return in, nil
}

// calDay is one day of the booking calendar.
type calDay struct {
	Date    string
	Day     int
	InMonth bool
	// Bookable: a chair and a slot are free and the day is not past;
	// otherwise Why says what is missing.
	Bookable bool
	Why      string
	// Chairs and Slots are the free chairs and slots; Start is the
	// manufacturing start the day leads to.
	Chairs, Slots int
	Start         string
	Selected      bool
	Booked        bool
}

// milestoneView is one planned milestone as a page shows it.
type milestoneView struct {
	Name, Site, Date string
	When             shownTime
}

// planRows lists a plan's milestones, each in its site's zone.
func planRows(p custody.Plan, zone func(site string) *time.Location) []milestoneView {
	rows := []struct {
		n string
		m custody.Milestone
	}{{"Apheresis", p.Apheresis}, {"Manufacturing start", p.ManufacturingStart}, {"Manufacturing end", p.ManufacturingEnd},
		{"QA release", p.Release}, {"Return shipment", p.Shipment}, {"Arrival at the treatment site", p.Arrival},
		{"Infusion window opens", p.InfusionFrom}, {"Infusion window closes", p.InfusionTo}}
	out := make([]milestoneView, len(rows))
	for i, r := range rows {
		out[i] = milestoneView{Name: r.n, Site: r.m.Site, Date: r.m.Date, When: showTime(r.m.Time, zone(r.m.Site))}
	}
	return out
}

// bookingView is what booking.html shows.
type bookingView struct {
	Chain *custody.Chain
	// Unavailable says why the chain cannot be booked here; the rest is
	// then empty.
	Unavailable string
	MayBook     bool
	Collection  string
	Plant       string
	PlantCode   string
	Product     string
	// Month is the calendar's month (YYYY-MM), Prev and Next its
	// neighbours.
	Month, MonthName, Prev, Next string
	Weeks                        [][]calDay
	// Current is the booked plan, CurrentSeq its record.
	Current    []milestoneView
	CurrentSeq uint64
	// Collected: the cells are collected, only the manufacturing start
	// moves.
	Collected bool
	// Selected is the day chosen, Plan its plan; SelectedFree: it is
	// offered (else SelectedWhy says why not).
	Selected     string
	SelectedFree bool
	SelectedWhy  string
	Plan         []milestoneView
	Sigs         []sigBox
	Reason       string
	Start        string
}

func (w *ui) bookingPage(c echo.Context) error {
	return w.renderBooking(c, http.StatusOK, nil, nil)
}

// renderBooking renders the booking page; msg is a refusal to show and
// form what was submitted (passwords never shown again).
func (w *ui) renderBooking(c echo.Context, code int, msg *uiMessage, form url.Values) error {
	coi, err := api.COIParam(c)
	if err != nil {
		return w.fail(c, err)
	}
	ctx := c.Request().Context()
	me := sessionUser(c)
	ch, err := w.svc.ReadChain(ctx, me, coi)
	if err != nil {
		return w.fail(c, err)
	}
	v := bookingView{Chain: ch, MayBook: custody.MaySchedule(me.Role)}
	get := func(k string) string {
		if form != nil {
			return form.Get(k)
		}
		return c.QueryParam(k)
	}
	v.Reason, v.Start = get("reason"), get("manufacturing_start")
	p := page{Title: "Book " + ch.Display, Nav: "scan", Msg: msg, V: &v}
	in, err := w.readPlanIn(ctx, me, ch)
	if err != nil {
		v.Unavailable = plainError(err, "").Title
		return w.render(c, code, "booking", p)
	}
	v.Collection, v.Plant, v.PlantCode, v.Product = in.names[0], in.names[1], in.sites[1].Code, in.product.Name+" ("+in.product.Code+")"
	zone := func(site string) *time.Location {
		for _, s := range in.sites {
			if s.Code == site {
				return s.Loc
			}
		}
		return nil
	}
	b := custody.BookingOf(ch)
	if b.Current != nil {
		v.Current, v.CurrentSeq = planRows(b.Current.Plan, zone), b.Seq
	}
	switch ch.State {
	case custody.StateEnrolled:
	case custody.StateCollected, custody.StateToManufacturing, custody.StateAtManufacturing:
		v.Collected = b.Current != nil
	default:
		v.Unavailable = "The chain is " + stateText(ch.State) + ": its plan no longer moves."
	}
	step := custody.StepSchedule
	if b.Current != nil {
		step = custody.StepReschedule
	}
	if rule, err := w.svc.Journey().Rule(ch.State, step); err == nil {
		v.Sigs = sigBoxes(rule, me)
		if form != nil {
			for i := range v.Sigs {
				v.Sigs[i].User = form.Get(fmt.Sprintf("sig_user_%d", i+1))
			}
		}
	}
	if ch.State != custody.StateEnrolled {
		return w.render(c, code, "booking", p)
	}
	today := w.svc.Now().In(in.sites[0].Loc)
	month, err := time.ParseInLocation("2006-01", get("month"), time.UTC)
	if sel := get("date"); sel != "" && get("month") == "" {
		month, err = time.ParseInLocation(custody.DateLayout, sel, time.UTC)
	}
	if err != nil {
		month = time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	month = time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC)
	if err := w.fillCalendar(ctx, me, &v, in, month, today.Format(custody.DateLayout), get("date"), b); err != nil {
		return w.fail(c, err)
	}
	if sel := get("date"); sel != "" {
		if plan, err := custody.ComputePlan(sel, in.lt, in.sites[0], in.sites[1], in.sites[2]); err == nil {
			v.Selected, v.Plan = sel, planRows(plan, zone)
		}
	}
	return w.render(c, code, "booking", p)
}

// fillCalendar lays out month (its first day, UTC) as weeks from Monday
// with each day's chairs and slots.
func (w *ui) fillCalendar(ctx context.Context, me custody.User, v *bookingView, in planIn, month time.Time, today, selected string, b custody.Booking) error {
	v.Month, v.MonthName = month.Format("2006-01"), month.Format("January 2006")
	v.Prev, v.Next = month.AddDate(0, -1, 0).Format("2006-01"), month.AddDate(0, 1, 0).Format("2006-01")
	first := month.AddDate(0, 0, -((int(month.Weekday()) + 6) % 7))
	last := month.AddDate(0, 1, -1)
	var days []calDay
	starts := map[string]string{}
	minStart, maxStart := "", ""
	for d := first; !d.After(last) || len(days)%7 != 0; d = d.AddDate(0, 0, 1) {
		cd := calDay{Date: d.Format(custody.DateLayout), Day: d.Day(), InMonth: d.Month() == month.Month()}
		if cd.InMonth {
			plan, err := custody.ComputePlan(cd.Date, in.lt, in.sites[0], in.sites[1], in.sites[2])
			if err != nil {
				return err
			}
			cd.Start = plan.ManufacturingStart.Date
			starts[cd.Date] = cd.Start
			if minStart == "" || cd.Start < minStart {
				minStart = cd.Start
			}
			maxStart = max(maxStart, cd.Start)
		}
		days = append(days, cd)
	}
	chairs, err := w.dayMap(ctx, me, in.sites[0].Code, "", month.Format(custody.DateLayout), last.Format(custody.DateLayout))
	if err != nil {
		return err
	}
	slots, err := w.dayMap(ctx, me, in.sites[1].Code, in.product.Code, minStart, maxStart)
	if err != nil {
		return err
	}
	booked := ""
	if b.Current != nil {
		booked = b.Current.Plan.Apheresis.Date
	}
	for i := range days {
		d := &days[i]
		if !d.InMonth {
			continue
		}
		d.Selected, d.Booked = d.Date == selected, d.Date == booked
		ch, okc := chairs[d.Date]
		sl, oks := slots[d.Start]
		d.Chairs, d.Slots = ch.Free, sl.Free
		switch {
		case d.Date < today:
			d.Why = "past"
		case !okc:
			d.Why = "no chairs defined at " + in.sites[0].Code
		case ch.Closed != "":
			d.Why = "apheresis unit " + ch.Closed
		case ch.Free == 0:
			d.Why = fmt.Sprintf("apheresis: all %d chairs booked", ch.Capacity)
		case !oks:
			d.Why = "no slots defined at " + in.sites[1].Code
		case sl.Closed != "":
			d.Why = "plant " + sl.Closed + " (start " + d.Start + ")"
		case sl.Free == 0:
			d.Why = fmt.Sprintf("plant: all %d slots booked on %s", sl.Capacity, d.Start)
		default:
			d.Bookable = true
		}
		if d.Selected {
			v.SelectedFree, v.SelectedWhy = d.Bookable, d.Why
		}
	}
	for i := 0; i < len(days); i += 7 {
		v.Weeks = append(v.Weeks, days[i:i+7])
	}
	return nil
}

// dayMap reads one site's availability from from to to (chairs when
// product is empty), by day; an empty map when the site has none defined.
func (w *ui) dayMap(ctx context.Context, me custody.User, site, product, from, to string) (map[string]custody.DayAvailability, error) {
	out := map[string]custody.DayAvailability{}
	av, err := w.svc.Availability(ctx, me, custody.AvailabilityQuery{Sites: []string{site}, Product: product, From: from, To: to})
	if errors.Is(err, custody.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, s := range av {
		for _, d := range s.Days {
			out[d.Date] = d
		}
	}
	return out, nil
}

// scheduleForm submits one scheduling action and, refused, shows the
// booking page again with the refusal; done is the flash on success.
func (w *ui) scheduleForm(c echo.Context, step custody.Step, do func(ctx context.Context, me custody.User, coi custody.COI,
	form url.Values, sigs []custody.SignatureRequest) (custody.Record, error), done string) error {
	coi, err := api.COIParam(c)
	if err != nil {
		return w.fail(c, err)
	}
	ctx := c.Request().Context()
	me := sessionUser(c)
	ch, err := w.svc.ReadChain(ctx, me, coi)
	if err != nil {
		return w.fail(c, err)
	}
	form, err := c.FormParams()
	if err != nil {
		return w.fail(c, fmt.Errorf("read form: %v: %w", err, custody.ErrInvalid))
	}
	rule, err := w.svc.Journey().Rule(ch.State, step)
	if err == nil {
		var rec custody.Record
		if rec, err = do(ctx, me, coi, form, signatures(rule, form)); err == nil {
			w.flash(c, fmt.Sprintf("%s (record %d), signed by %s.", done, rec.Seq, signers(rec)))
			return c.Redirect(http.StatusSeeOther, "/chains/"+string(coi))
		}
	}
	m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
	if errors.Is(err, custody.ErrSlotTaken) {
		m.Title = "That day is no longer free: nothing was booked. " + m.Title
	}
	return w.renderBooking(c, w.statusOf(c, err), &m, form)
}

func (w *ui) bookSubmit(c echo.Context) error {
	return w.scheduleForm(c, custody.StepSchedule, func(ctx context.Context, me custody.User, coi custody.COI, form url.Values,
		sigs []custody.SignatureRequest) (custody.Record, error) {
		return w.svc.Book(ctx, me, coi, custody.BookRequest{ApheresisDate: form.Get("date"), Signatures: sigs})
	}, "Booked: apheresis on "+c.FormValue("date"))
}

func (w *ui) rescheduleSubmit(c echo.Context) error {
	return w.scheduleForm(c, custody.StepReschedule, func(ctx context.Context, me custody.User, coi custody.COI, form url.Values,
		sigs []custody.SignatureRequest) (custody.Record, error) {
		return w.svc.Reschedule(ctx, me, coi, custody.BookRequest{ApheresisDate: form.Get("date"),
			ManufacturingStart: form.Get("manufacturing_start"), Reason: form.Get("reason"), Signatures: sigs})
	}, "Rescheduled")
}

func (w *ui) unscheduleSubmit(c echo.Context) error {
	return w.scheduleForm(c, custody.StepUnschedule, func(ctx context.Context, me custody.User, coi custody.COI, form url.Values,
		sigs []custody.SignatureRequest) (custody.Record, error) {
		return w.svc.Unschedule(ctx, me, coi, custody.ReasonRequest{Reason: form.Get("reason"), Signatures: sigs})
	}, "Unscheduled: the chair and the slot are free again")
}

// chainBooking is the booking as the chain page shows it.
type chainBooking struct {
	// Plan is the booked plan; empty: not booked.
	Plan []milestoneView
	Seq  uint64
	// MayBook: the user may book or move it (a coordinator) and the
	// chain is at a stage where it moves.
	MayBook bool
	// Sigs are the unschedule form's signatures.
	Sigs     []sigBox
	Override uint64
	// OverrideSigs are the collect override's signatures (a coordinator
	// and QA), offered while collection is blocked for lack of a booking;
	// OverrideOpen, OverrideReason and OverrideErr show a refused one
	// again, its refusal beside the reason.
	OverrideSigs   []sigBox
	OverrideOpen   bool
	OverrideReason string
	OverrideErr    string
}

// bookingOnChain is the chain page's booking section; nil when the
// chain has no booking and none can be made.
func (w *ui) bookingOnChain(ch *custody.Chain, zones custody.SiteZones, me custody.User) *chainBooking {
	b := custody.BookingOf(ch)
	var v chainBooking
	switch ch.State {
	case custody.StateEnrolled, custody.StateCollected, custody.StateToManufacturing, custody.StateAtManufacturing:
		v.MayBook = custody.MaySchedule(me.Role) && (b.Current != nil || ch.State == custody.StateEnrolled)
	}
	// A chain of free-text sites (from before the network) is not booked.
	registered := zones[ch.Sites.Collection] != nil && zones[ch.Sites.Manufacturing] != nil
	v.MayBook = v.MayBook && registered
	if ch.State == custody.StateEnrolled && b.Current == nil && b.Override == 0 && registered &&
		custody.MayOverrideCollectGate(me.Role) {
		if rule, err := w.svc.Journey().Rule(ch.State, custody.StepCollectOverride); err == nil {
			v.OverrideSigs = sigBoxes(rule, me)
		}
	}
	if b.Current == nil && !v.MayBook && v.OverrideSigs == nil {
		return nil
	}
	v.Override = b.Override
	if b.Current != nil {
		v.Plan, v.Seq = planRows(b.Current.Plan, func(site string) *time.Location { return zones[site] }), b.Seq
		if rule, err := w.svc.Journey().Rule(ch.State, custody.StepUnschedule); err == nil && v.MayBook {
			v.Sigs = sigBoxes(rule, me)
		}
	}
	return &v
}

// overrideSubmit records the override of the collect gate: collection
// without a booked slot, with its reason, signed by a coordinator and QA.
// Refused, the chain page shows the form again with the refusal.
func (w *ui) overrideSubmit(c echo.Context) error {
	coi, err := api.COIParam(c)
	if err != nil {
		return w.fail(c, err)
	}
	form, err := c.FormParams()
	if err != nil {
		return w.fail(c, fmt.Errorf("read form: %v: %w", err, custody.ErrInvalid))
	}
	ctx := c.Request().Context()
	rule, err := w.svc.Journey().Rule(custody.StateEnrolled, custody.StepCollectOverride)
	if err == nil {
		var rec custody.Record
		rec, err = w.svc.OverrideCollectGate(ctx, sessionUser(c), coi, custody.ReasonRequest{Reason: form.Get("reason"),
			Signatures: signatures(rule, form)})
		if err == nil {
			w.flash(c, fmt.Sprintf("Collection allowed without a booking (record %d), signed by %s.", rec.Seq, signers(rec)))
			return c.Redirect(http.StatusSeeOther, "/chains/"+string(coi))
		}
	}
	if !waitRefusal(err) {
		return w.fail(c, err)
	}
	if errors.Is(err, custody.ErrInvalid) {
		// A reason refused (it may name the patient) is typed again,
		// never shown back.
		form.Del("reason")
	}
	var m *uiMessage
	if custody.ErrorField(err) == "reason" {
		c.Set(overrideErrKey, fieldMessage(err))
	} else {
		pm := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		m = &pm
	}
	return w.renderChain(c, w.statusOf(c, err), m, custody.StepCollectOverride, form)
}

// overrideErrKey holds, in a request's context, the refusal to show
// beside the override form's reason.
const overrideErrKey = "override_reason_error"

// refusedOverride shows a refused override form again on b: open, with
// what was typed and the refusal of its reason (if that was refused)
// beside it.
func refusedOverride(c echo.Context, b *chainBooking, form url.Values) {
	if b == nil || b.OverrideSigs == nil {
		return
	}
	b.OverrideOpen, b.OverrideReason = true, form.Get("reason")
	for i := range b.OverrideSigs {
		b.OverrideSigs[i].User = form.Get(fmt.Sprintf("sig_user_%d", i+1))
	}
	b.OverrideErr, _ = c.Get(overrideErrKey).(string)
}
