package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The sites screen: paged list, register form with every field (kinds as
// checkboxes), suspend and resume, each change with its reason.
// Administrators change; QA reads; others get 403.

// siteForm is the site form as typed, kept on a refused submission.
type siteForm struct {
	custody.Site
	Reason string
}

// Has says whether the form has kind k ticked.
func (f siteForm) Has(k custody.SiteRole) bool { return slices.Contains(f.Kinds, k) }

type sitesView struct {
	Rows     []custody.Site
	Next     string
	HasAfter bool
	CanEdit  bool
	Form     siteForm
	Error    string
	Kinds    []custody.SiteRole
	Statuses []custody.AccreditationStatus
}

func (w *ui) adminSitesPage(c echo.Context) error {
	return w.renderSites(c, http.StatusOK, siteForm{}, "")
}

func (w *ui) renderSites(c echo.Context, code int, f siteForm, msg string) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	after := c.QueryParam("after")
	rows, err := w.svc.Sites(c.Request().Context(), me, after, adminPageSize)
	if err != nil {
		return w.fail(c, err)
	}
	v := sitesView{Rows: rows, HasAfter: after != "", CanEdit: custody.MayAdminister(me.Role), Form: f, Error: msg,
		Kinds: []custody.SiteRole{custody.SiteCollection, custody.SiteManufacturing, custody.SiteTreatment},
		Statuses: []custody.AccreditationStatus{custody.AccreditationAccredited, custody.AccreditationPending,
			custody.AccreditationWithdrawn, custody.AccreditationNone}}
	if len(rows) == adminPageSize {
		v.Next = rows[len(rows)-1].Code
	}
	return w.render(c, code, "admin_sites", page{Title: "Sites", Nav: "admin", V: v})
}

func (w *ui) adminSiteCreate(c echo.Context) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	form, _ := c.FormParams()
	s := custody.Site{Code: strings.TrimSpace(form.Get("code")), Name: form.Get("name"), Organisation: strings.TrimSpace(form.Get("organisation")),
		TimeZone: strings.TrimSpace(form.Get("time_zone")), Address: form.Get("address"), Country: strings.TrimSpace(form.Get("country")),
		FIN: strings.TrimSpace(form.Get("fin")), GLN: strings.TrimSpace(form.Get("gln")),
		Accreditation: custody.Accreditation{Status: custody.AccreditationStatus(form.Get("accreditation_status")), Expiry: form.Get("accreditation_expiry")},
		Qualification: custody.Qualification{TrainingDone: form.Get("training_done") == "1", Date: form.Get("training_date"), Expiry: form.Get("training_expiry")}}
	for _, k := range form["kinds"] {
		s.Kinds = append(s.Kinds, custody.SiteRole(k))
	}
	f := siteForm{Site: s, Reason: form.Get("reason")}
	if strings.TrimSpace(f.Reason) == "" {
		return w.renderSites(c, http.StatusUnprocessableEntity, f, "Give a reason: it goes into the audit trail.")
	}
	if _, err := w.svc.RegisterSite(c.Request().Context(), me, s, f.Reason); err != nil {
		if msg, ok := formError(err); ok {
			return w.renderSites(c, http.StatusUnprocessableEntity, f, msg)
		}
		return w.fail(c, err)
	}
	w.flash(c, "Site "+s.Code+" registered.")
	return c.Redirect(http.StatusSeeOther, "/admin/sites")
}

func (w *ui) adminSiteSuspend(c echo.Context) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	code, suspend, reason := c.Param("code"), c.FormValue("suspended") == "1", c.FormValue("reason")
	if strings.TrimSpace(reason) == "" {
		return w.renderSites(c, http.StatusUnprocessableEntity, siteForm{}, "Give a reason to suspend or resume "+code+": it goes into the audit trail.")
	}
	if _, err := w.svc.SuspendSite(c.Request().Context(), me, code, suspend, reason); err != nil {
		if msg, ok := formError(err); ok {
			return w.renderSites(c, http.StatusUnprocessableEntity, siteForm{}, msg)
		}
		return w.fail(c, err)
	}
	word := "resumed"
	if suspend {
		word = "suspended"
	}
	w.flash(c, "Site "+code+" "+word+".")
	return c.Redirect(http.StatusSeeOther, "/admin/sites")
}
