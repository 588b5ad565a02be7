package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The administration screens of the registries: the index, and the
// organisations (paged list, create form, suspend and resume, each change
// with its reason). Administrators change; QA reads (the others get the
// refusal page). The domain enforces the same rules: the screens only map
// them.

// adminPageSize is how many entries a registry list page shows.
const adminPageSize = 50

// orgForm is the organisation form as typed, kept on a validation error.
type orgForm struct {
	Code, Name, Kind, Reason string
}

type orgsView struct {
	Rows     []custody.Organisation
	Next     string // the after-cursor of the next page; "" on the last
	CanEdit  bool
	Form     orgForm
	Error    string // why the form was refused
	Kinds    []custody.OrganisationKind
	HasAfter bool
}

// adminGate says whether the session's user may open the
// administration screens (administrators, QA read-only), and refuses
// otherwise.
func (w *ui) adminGate(c echo.Context) (custody.User, bool, error) {
	me := sessionUser(c)
	if custody.MayViewAdministration(me.Role) {
		return me, true, nil
	}
	return me, false, w.refuse(c, http.StatusForbidden, "The administration screens are for administrators (QA may read them).",
		"Ask a programme administrator.")
}

func (w *ui) adminIndex(c echo.Context) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	return w.render(c, http.StatusOK, "admin", page{Title: "Administration", Nav: "admin", V: custody.MayAdminister(me.Role)})
}

func (w *ui) adminOrgsPage(c echo.Context) error {
	return w.renderOrgs(c, http.StatusOK, orgForm{Kind: string(custody.OrgHospital)}, "")
}

func (w *ui) renderOrgs(c echo.Context, code int, f orgForm, msg string) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	after := c.QueryParam("after")
	rows, err := w.svc.Organisations(c.Request().Context(), me, after, adminPageSize)
	if err != nil {
		return w.fail(c, err)
	}
	v := orgsView{Rows: rows, CanEdit: custody.MayAdminister(me.Role), Form: f, Error: msg, HasAfter: after != "",
		Kinds: []custody.OrganisationKind{custody.OrgHospital, custody.OrgManufacturer, custody.OrgCourier}}
	if len(rows) == adminPageSize {
		v.Next = rows[len(rows)-1].Code
	}
	return w.render(c, code, "admin_orgs", page{Title: "Organisations", Nav: "admin", V: v})
}

func (w *ui) adminOrgCreate(c echo.Context) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	f := orgForm{Code: strings.TrimSpace(c.FormValue("code")), Name: c.FormValue("name"), Kind: c.FormValue("kind"), Reason: c.FormValue("reason")}
	if strings.TrimSpace(f.Reason) == "" {
		return w.renderOrgs(c, http.StatusUnprocessableEntity, f, "Give a reason: it goes into the audit trail.")
	}
	o := custody.Organisation{Code: f.Code, Name: f.Name, Kind: custody.OrganisationKind(f.Kind)}
	if _, err := w.svc.RegisterOrganisation(c.Request().Context(), me, o, f.Reason); err != nil {
		if msg, ok := formError(err); ok {
			return w.renderOrgs(c, http.StatusUnprocessableEntity, f, msg)
		}
		return w.fail(c, err)
	}
	w.flash(c, "Organisation "+f.Code+" registered.")
	return c.Redirect(http.StatusSeeOther, "/admin/organisations")
}

func (w *ui) adminOrgSuspend(c echo.Context) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	code := c.Param("code")
	suspend := c.FormValue("suspended") == "1"
	reason := c.FormValue("reason")
	if strings.TrimSpace(reason) == "" {
		return w.renderOrgs(c, http.StatusUnprocessableEntity, orgForm{Kind: string(custody.OrgHospital)},
			"Give a reason to suspend or resume "+code+": it goes into the audit trail.")
	}
	if _, err := w.svc.SuspendOrganisation(c.Request().Context(), me, code, suspend, reason); err != nil {
		if msg, ok := formError(err); ok {
			return w.renderOrgs(c, http.StatusUnprocessableEntity, orgForm{Kind: string(custody.OrgHospital)}, msg)
		}
		return w.fail(c, err)
	}
	word := "resumed"
	if suspend {
		word = "suspended"
	}
	w.flash(c, "Organisation "+code+" "+word+".")
	return c.Redirect(http.StatusSeeOther, "/admin/organisations")
}

// formError is the message a form shows for a domain refusal of what was
// typed (invalid, or in conflict with what is registered); false for
// other errors, which get the error page.
func formError(err error) (string, bool) {
	if errors.Is(err, custody.ErrInvalid) || errors.Is(err, custody.ErrConflict) || errors.Is(err, custody.ErrNotFound) {
		return err.Error(), true
	}
	return "", false
}
