package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The scheduling dashboard: vein-to-vein and segment times per centre
// and month, slot utilisation per plant, and the chains at risk of
// missing their infusion window, with the plots drawn as inline SVG on
// the server (no script). The figures are the service's, scoped to the
// user; the CSV download is the API's handler.

// registerDashboard adds the dashboard and its CSV download to g (behind
// the session).
func (w *ui) registerDashboard(g *echo.Group) {
	g.GET("/dashboard", w.dashboardScreen)
	g.GET("/dashboard.csv", w.asUser(w.srv.DashboardCSVHandler()))
}

// Plot geometry, in SVG user units.
const (
	barPlotW  = 720.0
	barLeft   = 170.0 // room for the row labels
	barRight  = 60.0
	barRowH   = 22.0
	barTop    = 24.0
	barBottom = 24.0
)

// svgPlot is a horizontal bar chart: one row per label, bars from zero,
// optional tick marks (the 90th percentile), and a scale.
type svgPlot struct {
	ID, Title string
	W, H      float64
	Rows      []svgRow
	Scale     []svgTick
	Legend    []svgLegend
}

// svgRow is one row of a plot: its label and bars.
type svgRow struct {
	Label  string
	LabelY float64
	Bars   []svgBar
	Marks  []svgBar
}

// svgBar is a rectangle (or a tick mark) with its tooltip and the value
// written beside it.
type svgBar struct {
	X, Y, W, H float64
	Class      string
	Title      string
	Text       string
	TextX      float64
}

// svgTick is a value of the scale and its position.
type svgTick struct {
	X    float64
	Text string
}

// svgLegend is one entry of a plot's legend.
type svgLegend struct {
	X     float64
	Class string
	Text  string
}

// plotSeries is one value of a row: how long its bar is, its class and
// its tooltip; Mark draws a tick instead of a bar.
type plotSeries struct {
	V     float64
	Class string
	Title string
	Mark  bool
}

// newPlot lays out rows of series (each row's bars stacked as thin
// parallel bars) on one scale from 0 to the largest value.
func newPlot(id, title string, labels []string, rows [][]plotSeries, legend []svgLegend) svgPlot {
	p := svgPlot{ID: id, Title: title, W: barPlotW, H: barTop + barBottom + barRowH*float64(len(rows)), Legend: legend}
	top := 0.0
	for _, r := range rows {
		for _, s := range r {
			top = max(top, s.V)
		}
	}
	if top <= 0 {
		top = 1
	}
	span := barPlotW - barLeft - barRight
	x := func(v float64) float64 { return barLeft + span*v/top }
	for i := range 5 {
		v := top * float64(i) / 4
		p.Scale = append(p.Scale, svgTick{X: x(v), Text: strconv.FormatFloat(v, 'f', 1, 64)})
	}
	for i, r := range rows {
		y := barTop + barRowH*float64(i)
		row := svgRow{Label: labels[i], LabelY: y + barRowH*0.65}
		nBars := 0
		for _, s := range r {
			if !s.Mark {
				nBars++
			}
		}
		h := (barRowH - 6) / float64(max(nBars, 1))
		b := 0
		for _, s := range r {
			if s.Mark {
				row.Marks = append(row.Marks, svgBar{X: x(s.V) - 1.5, Y: y + 2, W: 3, H: barRowH - 4, Class: s.Class, Title: s.Title})
				continue
			}
			by := y + 3 + h*float64(b)
			row.Bars = append(row.Bars, svgBar{X: barLeft, Y: by, W: x(s.V) - barLeft, H: h, Class: s.Class, Title: s.Title})
			b++
		}
		if len(row.Bars) > 0 {
			row.Bars[0].Text, row.Bars[0].TextX = strconv.FormatFloat(r[0].V, 'f', -1, 64), x(r[0].V)+4
			for _, s := range r {
				if s.Mark {
					row.Bars[0].TextX = max(row.Bars[0].TextX, x(s.V)+4)
				}
			}
		}
		p.Rows = append(p.Rows, row)
	}
	return p
}

// dashboardView is the dashboard screen's content.
type dashboardView struct {
	Q custody.DashboardQuery
	D custody.Dashboard
	// Times plots the vein-to-vein median and 90th percentile per centre
	// and month; Util the slots per plant and month.
	Times, Util svgPlot
	// CSV is the download of the same figures.
	CSV string
	// Segments lists the segments of the table's columns.
	Segments []custody.Segment
	Rows     []dashRow
}

// dashRow is a centre and month of the durations table, a cell per
// segment ("median / p90 (n)", empty without chains).
type dashRow struct {
	Centre, Period string
	Cells          []string
}

func (w *ui) dashboardScreen(c echo.Context) error {
	me := sessionUser(c)
	if !custody.MaySeeDashboard(me.Role) {
		return w.refuse(c, http.StatusForbidden, "The dashboard is for coordinators, the plants' staff and QA.", "")
	}
	q := api.DashboardQuery(c)
	d, err := w.svc.Dashboard(c.Request().Context(), me, q)
	if err != nil {
		return w.fail(c, err)
	}
	v := dashboardView{Q: d.Query, D: d, Segments: custody.DurationSegments}
	vals := url.Values{"from": {d.Query.From}, "to": {d.Query.To}}
	if d.Query.Centre != "" {
		vals.Set("centre", d.Query.Centre)
	}
	if d.Query.Product != "" {
		vals.Set("product", d.Query.Product)
	}
	v.CSV = "/dashboard.csv?" + vals.Encode()

	var labels []string
	var rows [][]plotSeries
	for _, f := range d.Centres {
		r := dashRow{Centre: f.Centre, Period: f.Period, Cells: make([]string, len(custody.DurationSegments))}
		for _, s := range f.Segments {
			for i, seg := range custody.DurationSegments {
				if seg == s.Segment {
					r.Cells[i] = fmt.Sprintf("%s / %s (%d)", days(s.MedianDays), days(s.P90Days), s.Count)
				}
			}
			if s.Segment == custody.SegmentVeinToVein {
				labels = append(labels, f.Centre+" "+f.Period)
				rows = append(rows, []plotSeries{
					{V: s.MedianDays, Class: "median", Title: fmt.Sprintf("%s %s: median %s days over %d chains", f.Centre, f.Period, days(s.MedianDays), s.Count)},
					{V: s.P90Days, Class: "p90", Mark: true, Title: fmt.Sprintf("%s %s: 90th percentile %s days", f.Centre, f.Period, days(s.P90Days))},
				})
			}
		}
		v.Rows = append(v.Rows, r)
	}
	v.Times = newPlot("plot-v2v", "Vein-to-vein time (days): median (bar) and 90th percentile (tick), per centre and month of apheresis",
		labels, rows, []svgLegend{{X: barLeft, Class: "median", Text: "median"}, {X: barLeft + 100, Class: "p90", Text: "90th percentile"}})

	labels, rows = nil, nil
	for _, u := range d.Utilisation {
		labels = append(labels, u.Plant+" "+u.Period)
		rows = append(rows, []plotSeries{
			{V: float64(u.Capacity), Class: "capacity", Title: fmt.Sprintf("%s %s: %d slots", u.Plant, u.Period, u.Capacity)},
			{V: float64(u.Booked), Class: "booked", Title: fmt.Sprintf("%s %s: %d booked", u.Plant, u.Period, u.Booked)},
			{V: float64(u.Used), Class: "used", Title: fmt.Sprintf("%s %s: %d manufacturing starts", u.Plant, u.Period, u.Used)},
		})
	}
	v.Util = newPlot("plot-util", "Manufacturing slots per plant and month: capacity, booked, used", labels, rows,
		[]svgLegend{{X: barLeft, Class: "capacity", Text: "capacity"}, {X: barLeft + 100, Class: "booked", Text: "booked"},
			{X: barLeft + 200, Class: "used", Text: "used"}})
	return w.render(c, http.StatusOK, "dashboard", page{Title: "Dashboard", Nav: "dashboard", V: v})
}

// days writes a count of days with at most two decimals.
func days(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	return strings.TrimSuffix(strings.TrimSuffix(s, "0"), ".0")
}
