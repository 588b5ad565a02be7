package web

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The capacity screen: per site, its apheresis chairs a day (collection
// sites) or its manufacturing slots a day by product (plants), the
// weekdays it is closed, its closures and exceptions with their reasons;
// a month of days with what is used and free; and the bookings a closure
// or a lowered count hits, with the nearest free days proposed for each.
// Administrators change it; everyone who reads the registries reads it
// (the service says who may do what).

func (w *ui) registerCapacity(g *echo.Group) {
	g.GET("/admin/capacity", w.capacityIndex)
	g.GET("/admin/capacity/:site", w.capacityPage)
	g.POST("/admin/capacity/:site", w.capacitySet)
	g.POST("/admin/capacity/:site/closures", w.capacityClose)
	g.POST("/admin/capacity/:site/closures/:from/:to", w.capacityCloseChange)
	g.POST("/admin/capacity/:site/closures/:from/:to/remove", w.capacityReopen)
	g.POST("/admin/capacity/:site/exceptions", w.capacityException)
}

// capacitySite is one row of the capacity index.
type capacitySite struct {
	Code, Name, Kinds, Summary string
}

func (w *ui) capacityIndex(c echo.Context) error {
	ctx := c.Request().Context()
	me := sessionUser(c)
	var rows []capacitySite
	for after := ""; ; {
		sites, err := w.svc.Sites(ctx, me, after, custody.MaxRegistryPage)
		if err != nil {
			return w.fail(c, err)
		}
		for _, s := range sites {
			if !s.HasKind(custody.SiteCollection) && !s.HasKind(custody.SiteManufacturing) {
				continue
			}
			r := capacitySite{Code: s.Code, Name: s.Name, Summary: "none defined"}
			var kinds []string
			for _, k := range s.Kinds {
				kinds = append(kinds, string(k))
			}
			r.Kinds = strings.Join(kinds, ", ")
			if cp, err := w.svc.SiteCapacity(ctx, me, s.Code); err == nil {
				r.Summary = capacitySummary(cp)
			} else if !errors.Is(err, custody.ErrNotFound) {
				return w.fail(c, err)
			}
			rows = append(rows, r)
		}
		if len(sites) < custody.MaxRegistryPage {
			break
		}
		after = sites[len(sites)-1].Code
	}
	return w.render(c, http.StatusOK, "capacity", page{Title: "Capacity", Nav: "admin", V: capacityView{IsIndex: true, Index: rows}})
}

// capacitySummary says a capacity in a few words.
func capacitySummary(cp custody.Capacity) string {
	var parts []string
	if cp.Chairs > 0 {
		parts = append(parts, fmt.Sprintf("%d chair(s) a day", cp.Chairs))
	}
	for _, p := range slices.Sorted(maps.Keys(cp.Slots)) {
		parts = append(parts, fmt.Sprintf("%d slot(s) of %s a day", cp.Slots[p], p))
	}
	if len(parts) == 0 {
		return "none a day"
	}
	return strings.Join(parts, ", ")
}

// capDay is one day of a capacity month.
type capDay struct {
	Date       string
	Day        int
	InMonth    bool
	Used, Cap  int
	Free       int
	Closed     string
	Overbooked bool
}

// capSeries is one kind of capacity over the month: chairs, or one
// product's slots.
type capSeries struct {
	Title string
	Weeks [][]capDay
}

// slotField is one product's slots in the capacity form.
type slotField struct {
	Product, Name string
	Count         int
}

// capacityView is what capacity.html shows: the index (Index) or one
// site.
type capacityView struct {
	IsIndex bool
	Index   []capacitySite

	Site       custody.Site
	Defined    bool
	Capacity   custody.Capacity
	MayChange  bool
	Collection bool
	Plant      bool
	Slots      []slotField
	Weekdays   []weekdayBox
	Month      string
	MonthName  string
	Prev, Next string
	Series     []capSeries
	// Impacted are the bookings a closure or a lowered count hits;
	// ImpactHidden: the user may not see which chains a site holds.
	Impacted     []custody.SiteBooking
	ImpactHidden bool
	Form         url.Values
}

// weekdayBox is a checkbox of the closed weekdays.
type weekdayBox struct {
	N      int
	Name   string
	Closed bool
}

func (w *ui) capacityPage(c echo.Context) error {
	return w.renderCapacity(c, http.StatusOK, nil, nil)
}

func (w *ui) renderCapacity(c echo.Context, code int, msg *uiMessage, form url.Values) error {
	ctx := c.Request().Context()
	me := sessionUser(c)
	code0 := c.Param("site")
	if err := custody.ValidateRegistryCode(code0); err != nil {
		return w.fail(c, err)
	}
	site, err := w.svc.Site(ctx, me, code0)
	if err != nil {
		return w.fail(c, err)
	}
	v := capacityView{Site: site, MayChange: custody.MayAdminister(me.Role), Collection: site.HasKind(custody.SiteCollection),
		Plant: site.HasKind(custody.SiteManufacturing), Form: form}
	cp, err := w.svc.SiteCapacity(ctx, me, site.Code)
	switch {
	case err == nil:
		v.Defined, v.Capacity = true, cp
	case !errors.Is(err, custody.ErrNotFound):
		return w.fail(c, err)
	}
	for d := time.Sunday; d <= time.Saturday; d++ {
		v.Weekdays = append(v.Weekdays, weekdayBox{N: int(d), Name: d.String(), Closed: slices.Contains(v.Capacity.ClosedWeekdays, d)})
	}
	var products []custody.Product
	if v.Plant {
		for after := ""; ; {
			ps, err := w.svc.Products(ctx, me, after, custody.MaxRegistryPage)
			if err != nil {
				return w.fail(c, err)
			}
			products = append(products, ps...)
			if len(ps) < custody.MaxRegistryPage {
				break
			}
			after = ps[len(ps)-1].Code
		}
		for _, p := range products {
			if !p.Suspended || v.Capacity.Slots[p.Code] > 0 {
				v.Slots = append(v.Slots, slotField{Product: p.Code, Name: p.Name, Count: v.Capacity.Slots[p.Code]})
			}
		}
	}
	loc, err := custody.ValidateTimeZone(site.TimeZone)
	if err != nil {
		return w.fail(c, err)
	}
	today := w.svc.Now().In(loc)
	month, err := time.ParseInLocation("2006-01", c.QueryParam("month"), time.UTC)
	if err != nil {
		month = time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	v.Month, v.MonthName = month.Format("2006-01"), month.Format("January 2006")
	v.Prev, v.Next = month.AddDate(0, -1, 0).Format("2006-01"), month.AddDate(0, 1, 0).Format("2006-01")
	if v.Defined {
		if v.Collection {
			s, err := w.capMonth(ctx, me, site.Code, "", month)
			if err != nil {
				return w.fail(c, err)
			}
			s.Title = "Apheresis chairs"
			v.Series = append(v.Series, s)
		}
		for _, sf := range v.Slots {
			s, err := w.capMonth(ctx, me, site.Code, sf.Product, month)
			if err != nil {
				return w.fail(c, err)
			}
			s.Title = "Manufacturing slots of " + sf.Product
			v.Series = append(v.Series, s)
		}
		from := today.Format(custody.DateLayout)
		to := today.AddDate(0, 0, custody.MaxAvailabilityDays-1).Format(custody.DateLayout)
		bs, err := w.svc.SiteBookings(ctx, me, site.Code, from, to)
		switch {
		case errors.Is(err, custody.ErrForbidden):
			v.ImpactHidden = true
		case err != nil:
			return w.fail(c, err)
		}
		for _, b := range bs {
			if b.Moved != "" {
				v.Impacted = append(v.Impacted, b)
			}
		}
	}
	return w.render(c, code, "capacity", page{Title: "Capacity of " + site.Code, Nav: "admin", Msg: msg, V: v})
}

// capMonth lays out one kind of capacity of site over month as weeks from
// Monday.
func (w *ui) capMonth(ctx context.Context, me custody.User, site, product string, month time.Time) (capSeries, error) {
	last := month.AddDate(0, 1, -1)
	days, err := w.dayMap(ctx, me, site, product, month.Format(custody.DateLayout), last.Format(custody.DateLayout))
	if err != nil {
		return capSeries{}, err
	}
	var s capSeries
	var all []capDay
	first := month.AddDate(0, 0, -((int(month.Weekday()) + 6) % 7))
	for d := first; !d.After(last) || len(all)%7 != 0; d = d.AddDate(0, 0, 1) {
		cd := capDay{Date: d.Format(custody.DateLayout), Day: d.Day(), InMonth: d.Month() == month.Month()}
		if a, ok := days[cd.Date]; ok && cd.InMonth {
			cd.Used, cd.Cap, cd.Free, cd.Closed, cd.Overbooked = a.Used, a.Capacity, a.Free, a.Closed, a.Used > a.Capacity
		}
		all = append(all, cd)
	}
	for i := 0; i < len(all); i += 7 {
		s.Weeks = append(s.Weeks, all[i:i+7])
	}
	return s, nil
}

// capacityChange runs one change and shows the site again: refused, with
// the message and the form as submitted (nothing written).
func (w *ui) capacityChange(c echo.Context, do func(ctx context.Context, me custody.User, site string, form url.Values) error, done string) error {
	site := c.Param("site")
	if err := custody.ValidateRegistryCode(site); err != nil {
		return w.fail(c, err)
	}
	form, err := c.FormParams()
	if err != nil {
		return w.fail(c, fmt.Errorf("read form: %v: %w", err, custody.ErrInvalid))
	}
	if err := do(c.Request().Context(), sessionUser(c), site, form); err != nil {
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		m.Title = "Nothing was changed. " + m.Title
		return w.renderCapacity(c, w.statusOf(c, err), &m, form)
	}
	w.flash(c, done)
	return c.Redirect(http.StatusSeeOther, "/admin/capacity/"+site)
}

// formCount reads a whole number field (empty: 0).
func formCount(form url.Values, name, what string) (int, error) {
	s := strings.TrimSpace(form.Get(name))
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not a whole number: %w", what, s, custody.ErrInvalid)
	}
	return n, nil
}

// current reads the site's capacity, or an empty one when none is
// defined.
func (w *ui) currentCapacity(ctx context.Context, me custody.User, site string) (custody.Capacity, error) {
	cp, err := w.svc.SiteCapacity(ctx, me, site)
	if errors.Is(err, custody.ErrNotFound) {
		return custody.Capacity{Site: site}, nil
	}
	return cp, err
}

func (w *ui) capacitySet(c echo.Context) error {
	return w.capacityChange(c, func(ctx context.Context, me custody.User, site string, form url.Values) error {
		cp, err := w.currentCapacity(ctx, me, site)
		if err != nil {
			return err
		}
		if cp.Chairs, err = formCount(form, "chairs", "chairs"); err != nil {
			return err
		}
		cp.Slots = nil
		for k := range form {
			p, ok := strings.CutPrefix(k, "slots_")
			if !ok {
				continue
			}
			n, err := formCount(form, k, "slots of "+p)
			if err != nil {
				return err
			}
			// A count typed is kept, even a bad one, for the service to refuse.
			if n != 0 {
				if cp.Slots == nil {
					cp.Slots = map[string]int{}
				}
				cp.Slots[p] = n
			}
		}
		cp.ClosedWeekdays = nil
		for _, s := range form["closed"] {
			n, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("closed weekday %q: %w", s, custody.ErrInvalid)
			}
			cp.ClosedWeekdays = append(cp.ClosedWeekdays, time.Weekday(n))
		}
		_, err = w.svc.SetCapacity(ctx, me, site, cp, form.Get("reason"))
		return err
	}, "Capacity saved.")
}

func (w *ui) capacityClose(c echo.Context) error {
	return w.capacityChange(c, func(ctx context.Context, me custody.User, site string, form url.Values) error {
		_, err := w.svc.AddClosure(ctx, me, site, custody.Closure{From: form.Get("from"), To: form.Get("to"), Reason: form.Get("reason")})
		return err
	}, "Closure added: the bookings it hits are listed below.")
}

// capacityCloseChange moves a closure's days or changes its reason.
func (w *ui) capacityCloseChange(c echo.Context) error {
	return w.capacityChange(c, func(ctx context.Context, me custody.User, site string, form url.Values) error {
		_, err := w.svc.ChangeClosure(ctx, me, site, c.Param("from"), c.Param("to"),
			custody.Closure{From: form.Get("from"), To: form.Get("to"), Reason: form.Get("reason")})
		return err
	}, "Closure changed: the bookings it hits are listed below.")
}

// capacityReopen removes a closure, with a reason.
func (w *ui) capacityReopen(c echo.Context) error {
	return w.capacityChange(c, func(ctx context.Context, me custody.User, site string, form url.Values) error {
		_, err := w.svc.RemoveClosure(ctx, me, site, c.Param("from"), c.Param("to"), form.Get("reason"))
		return err
	}, "Closure removed: its days take bookings again.")
}

func (w *ui) capacityException(c echo.Context) error {
	return w.capacityChange(c, func(ctx context.Context, me custody.User, site string, form url.Values) error {
		cp, err := w.svc.SiteCapacity(ctx, me, site)
		if err != nil {
			return err
		}
		n, err := formCount(form, "count", "count")
		if err != nil {
			return err
		}
		e := custody.CapacityException{Date: form.Get("date"), Product: form.Get("product"), Count: n, Reason: form.Get("reason")}
		cp.Exceptions = append(cp.Exceptions, e)
		_, err = w.svc.SetCapacity(ctx, me, site, cp, e.Reason)
		return err
	}, "Exception added.")
}
