package web

import (
	"context"
	"fmt"
	"net/http"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Enrollment: a coordinator enrolls a patient at the scan station. Once
// the programme has registered its sites (products), the form offers the
// registered ones that may take part (not suspended, of the right kind)
// as lists; before that, free text, as the domain then accepts it.

// enrollForm is what the enrollment form holds, to show it again after a
// refusal (to the coordinator who typed it; never logged), and the
// registered sites and products to choose from.
type enrollForm struct {
	Name, BirthDate, MRN, Product, Collection, Manufacturing, Treatment string

	// SitesListed: the sites are chosen from these lists (by role);
	// ProductsListed: the product from Products.
	SitesListed                             bool
	Collections, Manufacturings, Treatments []choice
	ProductsListed                          bool
	Products                                []choice
}

// choice is one option of a select list: the code sent and the text shown.
type choice struct {
	Code, Text string
}

// enrollChoices fills f's lists from the registries, if they hold any
// site (product).
func (w *ui) enrollChoices(ctx context.Context, me custody.User, f *enrollForm) error {
	for after := ""; ; {
		sites, err := w.svc.Sites(ctx, me, after, custody.MaxRegistryPage)
		if err != nil {
			return err
		}
		for _, s := range sites {
			f.SitesListed = true
			if s.Suspended {
				continue
			}
			c := choice{Code: s.Code, Text: s.Name + " (" + s.Code + ")"}
			if s.HasKind(custody.SiteCollection) {
				f.Collections = append(f.Collections, c)
			}
			if s.HasKind(custody.SiteManufacturing) {
				f.Manufacturings = append(f.Manufacturings, c)
			}
			if s.HasKind(custody.SiteTreatment) {
				f.Treatments = append(f.Treatments, c)
			}
		}
		if len(sites) < custody.MaxRegistryPage {
			break
		}
		after = sites[len(sites)-1].Code
	}
	for after := ""; ; {
		products, err := w.svc.Products(ctx, me, after, custody.MaxRegistryPage)
		if err != nil {
			return err
		}
		for _, p := range products {
			f.ProductsListed = true
			if !p.Suspended {
				f.Products = append(f.Products, choice{Code: p.Code, Text: p.Name + " (" + p.Code + ")"})
			}
		}
		if len(products) < custody.MaxRegistryPage {
			break
		}
		after = products[len(products)-1].Code
	}
	return nil
}

func (w *ui) enrollPage(c echo.Context) error {
	me := sessionUser(c)
	if !custody.MayEnroll(me.Role) {
		return w.refuse(c, http.StatusForbidden, "Only coordinators enroll patients.", "Ask a coordinator to enroll the patient.")
	}
	var f enrollForm
	if err := w.enrollChoices(c.Request().Context(), me, &f); err != nil {
		return w.fail(c, err)
	}
	return w.render(c, http.StatusOK, "enroll", page{Title: "Enroll a patient", Nav: "enroll", V: f})
}

// enrollSubmit enrolls a patient (the domain checks the role and every
// field) and shows the new chain, whose labels come next.
func (w *ui) enrollSubmit(c echo.Context) error {
	me := sessionUser(c)
	f := enrollForm{Name: c.FormValue("name"), BirthDate: c.FormValue("birth_date"), MRN: c.FormValue("mrn"),
		Product: c.FormValue("product"), Collection: c.FormValue("collection"), Manufacturing: c.FormValue("manufacturing"),
		Treatment: c.FormValue("treatment")}
	ch, err := w.svc.Enroll(c.Request().Context(), me, custody.EnrollRequest{
		Patient: custody.PHI{Name: f.Name, BirthDate: f.BirthDate, MRN: f.MRN}, Product: f.Product,
		Sites: custody.Sites{Collection: f.Collection, Manufacturing: f.Manufacturing, Treatment: f.Treatment}})
	if err != nil {
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		m.Title = "The patient was not enrolled."
		if custody.MayEnroll(me.Role) {
			if cerr := w.enrollChoices(c.Request().Context(), me, &f); cerr != nil {
				return w.fail(c, cerr)
			}
		}
		return w.render(c, w.statusOf(c, err), "enroll", page{Title: "Enroll a patient", Nav: "enroll", Msg: &m, V: f})
	}
	w.flash(c, fmt.Sprintf("Enrolled: COI %s. Print the labels before the collection.", ch.Display))
	return c.Redirect(http.StatusSeeOther, "/chains/"+string(ch.COI))
}
