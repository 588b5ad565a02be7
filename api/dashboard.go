package api

import (
	"bytes"
	"encoding/csv"
	"io"
	"net/http"
	"strconv"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/labels/auditreport"
	"github.com/labstack/echo/v4"
)

// Planned against actual and the scheduling dashboard: a chain's
// milestones beside its plan (scoped like the chain's reads), and the
// dashboard's figures as JSON and as CSV (scoped by the service).
func (s *Server) registerDashboardRoutes(g *echo.Group) {
	g.GET("/chains/:coi/plan-vs-actual", s.planVsActual)
	g.GET("/dashboard", s.dashboard)
	g.GET("/dashboard.csv", s.dashboardCSV)
}

func (s *Server) planVsActual(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	out, err := s.svc.PlanVsActual(c.Request().Context(), user(c), coi)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// DashboardQuery reads the dashboard's filters from the request's query:
// from and to (YYYY-MM), centre and product; the service checks them.
func DashboardQuery(c echo.Context) custody.DashboardQuery {
	return custody.DashboardQuery{From: c.QueryParam("from"), To: c.QueryParam("to"), Centre: c.QueryParam("centre"),
		Product: c.QueryParam("product")}
}

func (s *Server) dashboard(c echo.Context) error {
	out, err := s.svc.Dashboard(c.Request().Context(), user(c), DashboardQuery(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) dashboardCSV(c echo.Context) error {
	d, err := s.svc.Dashboard(c.Request().Context(), user(c), DashboardQuery(c))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := writeDashboardCSV(&buf, d); err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="dashboard.csv"`)
	return c.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}

// DashboardCSVHandler answers the dashboard's CSV with the filters of the
// query, for the web UI's downloads; the service scopes it to the user.
func (s *Server) DashboardCSVHandler() echo.HandlerFunc { return s.dashboardCSV }

// dashboardCSVHeader returns the header row of the dashboard's CSV: one
// row per figure, its kind first (durations, utilisation, at-risk), the
// columns a kind does not use left empty.
func dashboardCSVHeader() []string {
	return []string{"figure", "site", "period", "segment", "count", "median_days", "p90_days",
		"capacity", "booked", "used", "coi", "product", "plant", "state", "delay_days", "projected_infusion", "window_end"}
}

// CSV figure kinds.
const (
	csvDurations   = "durations"
	csvUtilisation = "utilisation"
	csvAtRisk      = "at-risk"
)

// writeDashboardCSV writes the dashboard's figures as CSV
// (dashboardCSVHeader), the same figures its JSON holds. Text cells a
// spreadsheet would run as a formula (a free-text site or product) are
// neutralised; numbers, negative delays included, are written as numbers.
func writeDashboardCSV(w io.Writer, d custody.Dashboard) error {
	header := dashboardCSVHeader()
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	// row writes one figure: text cells neutralised, numbers as they are.
	row := func(text, nums map[string]string) error {
		out := make([]string, len(header))
		for i, h := range header {
			if v, ok := nums[h]; ok {
				out[i] = v
			} else {
				out[i] = auditreport.Neutralise(text[h])
			}
		}
		return cw.Write(out)
	}
	for _, f := range d.Centres {
		for _, sg := range f.Segments {
			if err := row(map[string]string{"figure": csvDurations, "site": f.Centre, "period": f.Period, "segment": string(sg.Segment)},
				map[string]string{"count": strconv.Itoa(sg.Count), "median_days": num(sg.MedianDays), "p90_days": num(sg.P90Days)}); err != nil {
				return err
			}
		}
	}
	for _, u := range d.Utilisation {
		if err := row(map[string]string{"figure": csvUtilisation, "site": u.Plant, "period": u.Period},
			map[string]string{"capacity": strconv.Itoa(u.Capacity), "booked": strconv.Itoa(u.Booked), "used": strconv.Itoa(u.Used)}); err != nil {
			return err
		}
	}
	for _, a := range d.AtRisk {
		if err := row(map[string]string{"figure": csvAtRisk, "site": a.Centre, "coi": string(a.COI), "product": a.Product,
			"plant": a.Plant, "state": string(a.State), "projected_infusion": a.ProjectedInfusion, "window_end": a.WindowEnd},
			map[string]string{"delay_days": strconv.Itoa(a.DelayDays)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
