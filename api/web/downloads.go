package web

import (
	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Downloads: session-authenticated routes to the API's label, custody
// report, EPCIS export and excursion alert stream handlers, for a browser
// holds a session cookie, not an API token. The handlers and their role
// rules are the API's own.

// download is a link the chain page offers.
type download struct {
	Label, Href string
}

// registerDownloads adds the download routes to g (behind the session).
func (w *ui) registerDownloads(g *echo.Group) {
	g.GET("/chains/:coi/labels.pdf", w.asUser(w.srv.ChainLabelsHandler()))
	g.GET("/chains/:coi/bags/:bag/label.pdf", w.asUser(w.srv.BagLabelPDFHandler()))
	g.GET("/chains/:coi/report.pdf", w.asUser(w.srv.CustodyReportHandler()))
	g.GET("/chains/:coi/epcis.json", w.asUser(w.srv.EPCISExportHandler()))
	g.GET("/alerts/live", w.srv.AlertStreamHandler())
}

// asUser runs an API handler for the session's user (downloads).
func (w *ui) asUser(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := h(c); err != nil {
			return w.fail(c, err)
		}
		return nil
	}
}

// reportLinks lists the report downloads the chain page offers the user:
// the custody report for those custody's policy lets generate reports,
// the EPCIS export (no patient identifiers) for everyone.
func (w *ui) reportLinks(me custody.User, ch *custody.Chain) []download {
	var out []download
	if custody.MayGenerateReports(me.Role) {
		out = append(out, download{"Custody report (PDF)", "/chains/" + string(ch.COI) + "/report.pdf"})
	}
	return append(out, download{"EPCIS 2.0 export (JSON-LD)", "/chains/" + string(ch.COI) + "/epcis.json"})
}
