package web

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/labels/auditreport"
	"github.com/labstack/echo/v4"
)

// The administrative audit trail screen, for QA and administrators: a
// filter form (period, actor, object), a page of entries with their
// changed values, and the PDF and CSV report of the same filter.

// auditPage is how many entries one screen shows.
const auditPage = 50

// auditRow is one entry as the screen shows it.
type auditRow struct {
	custody.AuditEntry
	Changes []auditreport.Change
}

// auditView is the screen's content.
type auditView struct {
	// Form holds the filter as typed, to fill the form again.
	Form  map[string]string
	Kinds []string
	Rows  []auditRow
	// Query is the filter as a query string (without after), for the
	// next page; PDF and CSV are the report links of the same filter.
	Query    string
	PDF, CSV template.URL
	// Next is the entry number the next page starts after; 0: no more.
	Next uint64
}

// registerAudit adds the screen and its downloads to g (behind the
// session).
func (w *ui) registerAudit(g *echo.Group) {
	g.GET("/audit", w.auditScreen)
	g.GET("/audit.pdf", w.asUser(w.srv.AuditReportHandler("pdf")))
	g.GET("/audit.csv", w.asUser(w.srv.AuditReportHandler("csv")))
}

func (w *ui) auditScreen(c echo.Context) error {
	me := sessionUser(c)
	if !custody.MayReadAuditTrail(me.Role) {
		return w.refuse(c, http.StatusForbidden, "The audit trail is for QA and administrators.", "Ask QA for the report you need.")
	}
	form := map[string]string{}
	q := url.Values{}
	for _, k := range []string{"from", "to", "actor", "kind", "code"} {
		if v := c.QueryParam(k); v != "" {
			form[k] = v
			q.Set(k, v)
		}
	}
	f, err := api.ParseAuditFilter(func(k string) string {
		if k == "after" {
			return c.QueryParam("after")
		}
		return form[k]
	})
	if err != nil {
		return w.fail(c, err)
	}
	f.Limit = auditPage
	entries, err := w.svc.AuditTrail(c.Request().Context(), me, f)
	if err != nil {
		return w.fail(c, err)
	}
	v := auditView{Form: form, Query: q.Encode(), PDF: auditHref("/audit.pdf", q), CSV: auditHref("/audit.csv", q),
		Kinds: []string{string(custody.KindUser), string(custody.KindOrganisation), string(custody.KindSite), string(custody.KindProduct), string(custody.KindShipper)}}
	for _, e := range entries {
		v.Rows = append(v.Rows, auditRow{AuditEntry: e, Changes: auditreport.Changes(e)})
	}
	if len(entries) == auditPage {
		v.Next = entries[len(entries)-1].Seq
	}
	return w.render(c, http.StatusOK, "audit", page{Title: "Audit trail", Nav: "audit", V: v})
}

// auditHref is path with the query q, encoded by net/url (so safe as an
// href as it stands).
func auditHref(path string, q url.Values) template.URL {
	if len(q) == 0 {
		return template.URL(path)
	}
	return template.URL(path + "?" + q.Encode())
}

// nextAuditHref is the link to the page after next.
func nextAuditHref(query string, next uint64) template.URL {
	q, _ := url.ParseQuery(query)
	q.Set("after", strconv.FormatUint(next, 10))
	return auditHref("/audit", q)
}
