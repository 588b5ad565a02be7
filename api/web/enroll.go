package web

import (
	"fmt"
	"net/http"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Enrollment: a coordinator enrolls a patient at the scan station.

// enrollForm is what the enrollment form holds, to show it again after a
// refusal (to the coordinator who typed it; never logged).
type enrollForm struct {
	Name, BirthDate, MRN, Product, Collection, Manufacturing, Treatment string
}

func (w *ui) enrollPage(c echo.Context) error {
	if !custody.MayEnroll(session(c).User.Role) {
		return w.refuse(c, http.StatusForbidden, "Only coordinators enroll patients.", "Ask a coordinator to enroll the patient.")
	}
	return w.render(c, http.StatusOK, "enroll", page{Title: "Enroll a patient", Nav: "enroll", V: enrollForm{}})
}

// enrollSubmit enrolls a patient (the domain checks the role and every
// field) and shows the new chain, whose labels come next.
func (w *ui) enrollSubmit(c echo.Context) error {
	f := enrollForm{Name: c.FormValue("name"), BirthDate: c.FormValue("birth_date"), MRN: c.FormValue("mrn"),
		Product: c.FormValue("product"), Collection: c.FormValue("collection"), Manufacturing: c.FormValue("manufacturing"),
		Treatment: c.FormValue("treatment")}
	ch, err := w.svc.Enroll(c.Request().Context(), session(c).User, custody.EnrollRequest{
		Patient: custody.PHI{Name: f.Name, BirthDate: f.BirthDate, MRN: f.MRN}, Product: f.Product,
		Sites: custody.Sites{Collection: f.Collection, Manufacturing: f.Manufacturing, Treatment: f.Treatment}})
	if err != nil {
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		m.Title = "The patient was not enrolled."
		return w.render(c, w.statusOf(c, err), "enroll", page{Title: "Enroll a patient", Nav: "enroll", Msg: &m, V: f})
	}
	w.flash(c, fmt.Sprintf("Enrolled: COI %s. Print the labels before the collection.", ch.Display))
	return c.Redirect(http.StatusSeeOther, "/chains/"+string(ch.COI))
}
