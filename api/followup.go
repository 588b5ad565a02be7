package api

import (
	"bytes"
	"encoding/csv"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/labels/auditreport"
	"github.com/labstack/echo/v4"
)

// Post-infusion follow-up: the overdue list and the registry-reporting
// export (JSON or CSV), both scoped by the service to the chains the
// user may read. Follow-up records themselves are journey steps, written
// through the chain's step route.
func (s *Server) registerFollowUpRoutes(g *echo.Group) {
	g.GET("/follow-up/overdue", s.overdueFollowUps)
	g.GET("/follow-up/export", s.followUpExport)
	g.GET("/follow-up/export.csv", s.followUpExportCSV)
}

func (s *Server) overdueFollowUps(c echo.Context) error {
	limit, err := pageLimit(c, custody.MaxChainPage)
	if err != nil {
		return err
	}
	items, next, err := s.svc.OverdueFollowUps(c.Request().Context(), user(c), custody.COI(c.QueryParam("after")), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"overdue": items, "next": next})
}

// followUpQuery reads the export's filters from the request's query; the
// service checks them.
func followUpQuery(c echo.Context) custody.FollowUpQuery {
	return custody.FollowUpQuery{From: c.QueryParam("from"), To: c.QueryParam("to"), Product: c.QueryParam("product")}
}

func (s *Server) followUpExport(c echo.Context) error {
	rows, err := s.svc.FollowUpExport(c.Request().Context(), user(c), followUpQuery(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"follow_ups": rows})
}

func (s *Server) followUpExportCSV(c echo.Context) error {
	rows, err := s.svc.FollowUpExport(c.Request().Context(), user(c), followUpQuery(c))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := writeFollowUpCSV(&buf, rows); err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="follow-up.csv"`)
	return c.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}

// FollowUpCSVHeader is the header row of the follow-up export's CSV.
var FollowUpCSVHeader = []string{"coi", "product", "treatment_site", "day", "assessed_date", "crs_grade", "icans_grade",
	"response", "recorded_utc", "seq"}

// writeFollowUpCSV writes the follow-up rows as CSV (FollowUpCSVHeader);
// text cells a spreadsheet would run as a formula are neutralised.
func writeFollowUpCSV(w io.Writer, rows []custody.FollowUpRow) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(FollowUpCSVHeader); err != nil {
		return err
	}
	for _, r := range rows {
		out := []string{string(r.COI), r.Product, r.TreatmentSite, strconv.Itoa(r.Day), r.AssessedDate, strconv.Itoa(r.CRSGrade),
			strconv.Itoa(r.ICANSGrade), r.Response, r.Recorded.UTC().Format(time.RFC3339), strconv.FormatUint(r.Seq, 10)}
		for i := range out {
			out[i] = auditreport.Neutralise(out[i])
		}
		if err := cw.Write(out); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
