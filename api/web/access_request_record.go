package web

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Recording from the request page: a step with the document it carries,
// the enrollment, and a document's download.

// readAccessForm reads a request form: a multipart one (its CSRF part already
// read by checkCSRF) with its document staged in the document store, or
// an urlencoded one. The caller discards the staged document unless it
// commits it.
func (w *ui) readAccessForm(c echo.Context, me custody.User, id custody.COI) (url.Values, *custody.Staged, string, error) {
	mr, ok := c.Get(ctxMultipart).(*multipart.Reader)
	if !ok {
		form, err := c.FormParams()
		if err != nil {
			return nil, nil, "", fmt.Errorf("read form: %v: %w", err, custody.ErrInvalid)
		}
		return form, nil, "", nil
	}
	form := url.Values{}
	var staged *custody.Staged
	var name string
	fail := func(err error) (url.Values, *custody.Staged, string, error) {
		if staged != nil {
			staged.Discard()
		}
		// Read what is left of a refused upload (up to a bound), so the
		// browser gets the refusal page rather than a connection reset.
		_, _ = io.Copy(io.Discard, io.LimitReader(c.Request().Body, maxDrain))
		return form, nil, "", err
	}
	for n := 0; ; n++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil || n > maxFormParts {
			return fail(fmt.Errorf("read form: the form could not be read: %w", custody.ErrInvalid))
		}
		if p.FormName() == "document" {
			if p.FileName() == "" || staged != nil { // no file chosen
				_, _ = io.Copy(io.Discard, io.LimitReader(p, maxFormPart))
				continue
			}
			if err := w.svc.CheckAccessUpload(c.Request().Context(), me, id); err != nil {
				return fail(&custody.FieldError{Field: "document", Err: err})
			}
			name = p.FileName()
			if staged, err = w.svc.Documents().Stage(p); err != nil {
				return fail(&custody.FieldError{Field: "document", Err: err})
			}
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p, maxFormPart+1))
		if err != nil || len(b) > maxFormPart {
			return fail(fmt.Errorf("read form: %s is too long: %w", p.FormName(), custody.ErrInvalid))
		}
		form.Add(p.FormName(), string(b))
	}
	return form, staged, name, nil
}

// accessStep records a step of a request from its form on the request
// page, with the document it carries stored first.
func (w *ui) accessStep(c echo.Context) error {
	me, r, ok, err := w.accessOpen(c)
	if !ok {
		return err
	}
	ctx, id := c.Request().Context(), r.ID
	step := custody.Step(c.Param("step"))
	if step == custody.StepAccessSubmit || step == custody.StepAccessEnroll || step == custody.StepAccessAssign {
		return w.refuse(c, http.StatusNotFound, "This page does not exist.", "")
	}
	form, staged, name, err := w.readAccessForm(c, me, id)
	defer func() {
		if staged != nil {
			staged.Discard()
		}
	}()
	failed := func(err error) error {
		return w.renderAccess(c, w.statusOf(c, err), refusal(string(step), err, form, c.Response().Header().Get(echo.HeaderXRequestID)))
	}
	if err != nil {
		return failed(err)
	}
	rule, err := custody.AccessRule(r.State, step)
	if err != nil {
		return failed(err)
	}
	d := custody.AccessStepData{Text: lines(form.Get("text")), Reference: form.Get("reference")}
	if step == custody.StepAccessDecide {
		switch form.Get("approve") {
		case "true", "false":
			ok := form.Get("approve") == "true"
			d.Approve = &ok
		}
	}
	kind, takesDoc := accessDocs[step]
	if h := form.Get("document_hash"); h != "" && staged == nil && takesDoc {
		d.Documents = []string{h} // stored by an earlier, refused, try of this form
	}
	if staged != nil {
		if !takesDoc {
			return failed(&custody.FieldError{Field: "document", Err: fmt.Errorf("%s takes no document: %w", accessTitle(step), custody.ErrInvalid)})
		}
		// The file's name is checked for patient identifiers, never kept.
		if err := w.svc.CheckAccessUpload(ctx, me, id, name); err != nil {
			return failed(&custody.FieldError{Field: "document", Err: err})
		}
		st := staged
		staged = nil
		if err := st.Commit(); err != nil {
			return w.fail(c, err)
		}
		w.log.Info("access document stored", "request", string(id), "document", st.Hash.String(), "bytes", st.Size, "user", me.ID)
		d.Documents = []string{st.Hash.String()}
		form.Set("document_hash", st.Hash.String())
	}
	if takesDoc && kind.Required && len(d.Documents) == 0 && w.svc.Documents() != nil {
		return failed(&custody.FieldError{Field: "document", Err: fmt.Errorf("attach the %s (PDF): %w", strings.ToLower(kind.Label), custody.ErrInvalid)})
	}
	if _, err := w.svc.RecordAccess(ctx, me, id, custody.AccessStep{Step: step, Data: d, Signatures: signatures(rule, form)}); err != nil {
		return failed(err)
	}
	w.flash(c, "Recorded: "+accessTitle(step)+".")
	return c.Redirect(http.StatusSeeOther, "/access/requests/"+string(id))
}

// accessEnroll turns an approved request into a therapy chain; the domain
// refuses it while the jurisdiction's requirements are unmet.
func (w *ui) accessEnroll(c echo.Context) error {
	me, id, ok, err := w.accessTarget(c)
	if !ok {
		return err
	}
	form, err := c.FormParams()
	if err != nil {
		return w.fail(c, fmt.Errorf("read form: %v: %w", err, custody.ErrInvalid))
	}
	var sigs []custody.SignatureRequest
	if rule, err := w.svc.Journey().Rule("", custody.StepEnroll); err == nil {
		sigs = signatures(rule, form)
	}
	_, ch, err := w.svc.EnrollAccess(c.Request().Context(), me, id, custody.AccessEnrollment{
		Patient:        custody.PHI{Name: form.Get("name"), BirthDate: form.Get("birth_date"), MRN: form.Get("mrn")},
		CollectionSite: form.Get("collection"), Signatures: sigs})
	if err != nil {
		if errors.Is(err, custody.ErrNotFound) {
			return w.fail(c, err)
		}
		return w.renderAccess(c, w.statusOf(c, err), refusal("enroll", err, form, c.Response().Header().Get(echo.HeaderXRequestID)))
	}
	w.flash(c, fmt.Sprintf("Enrolled: COI %s, from request %s. Print the labels before the collection.", ch.Display, id))
	return c.Redirect(http.StatusSeeOther, "/chains/"+string(ch.COI))
}

// accessDocument sends a document of a request to one who may read it.
func (w *ui) accessDocument(c echo.Context) error {
	me, id, ok, err := w.accessTarget(c)
	if !ok {
		return err
	}
	h, err := custody.ParseHash(c.Param("hash"))
	if err != nil {
		return w.fail(c, fmt.Errorf("path: %w", err))
	}
	f, err := w.svc.AccessDocument(c.Request().Context(), me, id, h)
	if err != nil {
		return w.fail(c, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return w.fail(c, err)
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/pdf")
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+h.String()+`.pdf"`)
	http.ServeContent(c.Response(), c.Request(), "", fi.ModTime(), f)
	return nil
}
