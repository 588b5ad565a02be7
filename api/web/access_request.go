package web

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Expanded access, the physician's side: the request form, the list of a
// site's requests and the request page with its history, documents,
// regulatory checklist and actions. The service decides who may read and
// record what (a physician of another site gets "not found"), which steps
// a request's state allows and what its jurisdiction requires before
// enrollment; the screens show its refusals beside the field they concern,
// with what was typed kept.
//
// Forms that carry a document are multipart: the CSRF token is their first
// part (checked by checkCSRF, which leaves the rest of the body to the
// handler), the PDF is streamed into the document store's staging file as
// it arrives, and the body limit of other forms does not apply to them
// (the store has its own).

// accessPageSize is how many requests the list shows at once.
const accessPageSize = 50

// accessStepPath is the route of a request's record forms; multipart
// posts to it are exempt from the UI's body limit.
const accessStepPath = "/access/requests/:id/steps/:step"

// Limits of a multipart form's parts other than its document.
const (
	maxFormPart  = 16 << 10
	maxFormParts = 32
	// maxDrain is how much of a refused upload is read and dropped.
	maxDrain = 64 << 20
)

// registerAccessRequests adds the request screens and forms to g (behind
// the session and its CSRF check); signs throttles the forms that sign.
func (w *ui) registerAccessRequests(g *echo.Group, signs echo.MiddlewareFunc) {
	g.GET("/access/requests", w.accessList)
	g.GET("/access/requests/new", w.accessNewPage)
	g.POST("/access/requests", w.accessSubmit, signs)
	g.GET("/access/requests/:id", w.accessPage)
	g.POST(accessStepPath, w.accessStep, signs)
	g.POST("/access/requests/:id/enroll", w.accessEnroll, signs)
	g.GET("/access/requests/:id/documents/:hash", w.accessDocument)
}

// accessTitles are the headings of a request's steps.
var accessTitles = map[custody.Step]string{
	custody.StepAccessSubmit: "Request submitted", custody.StepAccessRequestInfo: "Ask the physician for more information",
	custody.StepAccessRespond: "Answer the request for information", custody.StepAccessDecide: "Decide the request",
	custody.StepLOAIssued: "Letter of authorisation issued", custody.StepINDAcknowledged: "IND acknowledged by FDA",
	custody.StepIRBApproved: "IRB approval", custody.StepIRBWaived: "IRB waiver",
	custody.StepEmergencyAuthorise: "Emergency authorisation", custody.StepIRBReported: "IRB told of the emergency use",
	custody.StepAccessEnroll: "Enrolled as a therapy chain", custody.StepAccessWithdraw: "Withdraw the request",
	custody.StepAccessAssign: "Assigned",
}

func accessTitle(s custody.Step) string {
	if t, ok := accessTitles[s]; ok {
		return t
	}
	return string(s)
}

// docKind is the document a step's record carries: what it is and
// whether the form requires it.
type docKind struct {
	Label    string
	Required bool
}

// accessDocs are the documents of the steps that take one. A letter or an
// approval is required; FDA's acknowledgement is its number, an emergency
// authorisation is often by telephone, and an answer may need none, so
// their documents are optional.
var accessDocs = map[custody.Step]docKind{
	custody.StepLOAIssued:          {"Letter of authorisation", true},
	custody.StepINDAcknowledged:    {"FDA acknowledgement letter", false},
	custody.StepIRBApproved:        {"IRB approval letter", true},
	custody.StepIRBWaived:          {"IRB waiver", true},
	custody.StepEmergencyAuthorise: {"Record of the emergency authorisation", false},
	custody.StepIRBReported:        {"Report to the IRB", true},
	custody.StepAccessRespond:      {"Supporting document", false},
}

// accessStateWords says a request's state in a sentence.
var accessStateWords = map[custody.State]string{
	custody.AccessSubmitted: "Submitted, waiting for the access team's decision", custody.AccessInfoRequested: "Waiting for the physician's answer",
	custody.AccessApproved: "Approved: the regulatory steps come next", custody.AccessDeclined: "Declined",
	custody.AccessEnrolled: "Enrolled as a therapy chain", custody.AccessWithdrawn: "Withdrawn by the physician",
}

func accessStateText(s custody.State) string {
	if t, ok := accessStateWords[s]; ok {
		return t
	}
	return string(s)
}

// failedForm is a refused form of the request screens: which ("submit",
// "enroll" or a step), the field its refusal concerns ("" the form's own),
// the refusal and what was sent (passwords are never shown again).
type failedForm struct {
	Form   string
	Field  string
	Msg    string
	Values url.Values
}

// formState answers the templates' questions about a refused form.
type formState struct{ Failed *failedForm }

// Err returns the refusal of form beside field; "" when there is none.
func (f formState) Err(form, field string) string {
	if f.Failed != nil && f.Failed.Form == form && f.Failed.Field == field {
		return f.Failed.Msg
	}
	return ""
}

// Val returns what was typed in field of form when it was refused.
func (f formState) Val(form, field string) string {
	if f.Failed != nil && f.Failed.Form == form {
		return f.Failed.Values.Get(field)
	}
	return ""
}

// Msg returns the refusal of form wherever it points ("" when form was
// not refused).
func (f formState) Msg(form string) string {
	if f.Failed != nil && f.Failed.Form == form {
		return f.Failed.Msg
	}
	return ""
}

// Open reports whether form was the one refused.
func (f formState) Open(form string) bool { return f.Failed != nil && f.Failed.Form == form }

// refusal turns a refused form's error into its failedForm: the domain
// names the field (custody.FieldError) when it can.
func refusal(form string, err error, v url.Values, requestID string) *failedForm {
	f := &failedForm{Form: form, Field: custody.ErrorField(err), Msg: dropOp(plainError(err, requestID).Detail), Values: v}
	var fe *custody.FieldError
	switch {
	case f.Field == "" && errors.Is(err, custody.ErrUnauthenticated):
		f.Field = "signatures"
	case errors.As(err, &fe) && errors.Unwrap(fe.Err) != nil:
		// The field's own refusal says it without the operation.
		f.Msg = sentence(trimSentinel(err, fe.Error()))
	}
	return f
}

// dropOp drops the operation a request's refusal starts with ("Submit
// access request: ", "Enroll request EA...: ", "Upload to request
// EA...: "): the form says what was being done.
func dropOp(s string) string {
	for _, op := range []string{"Submit access request: ", "Enroll request ", "Upload to request "} {
		if !strings.HasPrefix(s, op) {
			continue
		}
		rest := strings.TrimPrefix(s, op)
		if op != "Submit access request: " {
			_, r, ok := strings.Cut(rest, ": ")
			if !ok {
				return s
			}
			rest = r
		}
		return sentence(rest)
	}
	return s
}

// trimSentinel drops the sentinel's words that end a domain message and
// the operation that starts an upload's.
func trimSentinel(err error, s string) string {
	for _, e := range []error{custody.ErrInvalid, custody.ErrConflict, custody.ErrNotFound, custody.ErrTooLarge, custody.ErrRequirementsUnmet} {
		if errors.Is(err, e) {
			s = strings.TrimSuffix(s, ": "+e.Error())
		}
	}
	for _, op := range []string{"store document: ", "upload to request "} {
		if strings.HasPrefix(s, op) {
			if _, rest, ok := strings.Cut(strings.TrimPrefix(s, op), ": "); ok && op != "store document: " {
				s = rest
			} else if op == "store document: " {
				s = strings.TrimPrefix(s, op)
			}
		}
	}
	return s
}

// accessListView is the list of requests.
type accessListView struct {
	Rows []accessRow
	// Next is the cursor of the next page; "" on the last.
	Next      string
	MayCreate bool
}

// accessRow is one request of the list.
type accessRow struct {
	R         *custody.AccessRequest
	StateText string
	Clock     *custody.AccessClock
}

func (w *ui) accessGate(c echo.Context) (custody.User, bool, error) {
	me := sessionUser(c)
	if !custody.MayReadAccessRequests(me.Role) {
		return me, false, w.refuse(c, http.StatusForbidden, "Expanded-access requests are for physicians and the access team.", "")
	}
	return me, true, nil
}

// accessTarget passes the request gate and reads the request's ID from
// the path; ok false when the answer (a refusal) was sent, err its error.
func (w *ui) accessTarget(c echo.Context) (me custody.User, id custody.COI, ok bool, err error) {
	if me, ok, err = w.accessGate(c); !ok {
		return me, id, false, err
	}
	if id, err = w.accessID(c); err != nil {
		return me, id, false, w.fail(c, err)
	}
	return me, id, true, nil
}

// accessOpen is accessTarget and the request folded as me may read it.
func (w *ui) accessOpen(c echo.Context) (me custody.User, r *custody.AccessRequest, ok bool, err error) {
	me, id, ok, err := w.accessTarget(c)
	if !ok {
		return me, nil, false, err
	}
	if r, err = w.svc.AccessRequest(c.Request().Context(), me, id); err != nil {
		return me, nil, false, w.fail(c, err)
	}
	return me, r, true, nil
}

func (w *ui) accessList(c echo.Context) error {
	me, ok, err := w.accessGate(c)
	if !ok {
		return err
	}
	var after custody.COI
	if a := c.QueryParam("after"); a != "" {
		if after, err = custody.ParseAccessID(a); err != nil {
			return w.refuse(c, http.StatusBadRequest, "The page asked for does not exist.", "")
		}
	}
	pg, err := w.svc.AccessRequests(c.Request().Context(), me, "", after, accessPageSize)
	if err != nil {
		return w.fail(c, err)
	}
	v := accessListView{Next: pg.Next, MayCreate: custody.MayRequestAccess(me.Role)}
	for _, r := range pg.Requests {
		row := accessRow{R: r, StateText: accessStateText(r.State)}
		if r.State == custody.AccessSubmitted || r.State == custody.AccessInfoRequested {
			cl := w.svc.RequestClock(r)
			row.Clock = &cl
		}
		v.Rows = append(v.Rows, row)
	}
	return w.render(c, http.StatusOK, "access_requests", page{Title: "Expanded-access requests", Nav: "access", V: v})
}

// accessNewView is the request form: what was typed, the registered
// choices and the signature.
type accessNewView struct {
	formState
	Jurisdictions, Products, Treatments, Manufacturings []choice
	ProductsListed                                      bool
	Sigs                                                []sigBox
}

// accessChoices fills the form's lists: the jurisdictions, the products,
// the treatment sites where the physician works and the manufacturing
// sites, each registered and not suspended.
func (w *ui) accessChoices(ctx context.Context, me custody.User, v *accessNewView) error {
	var ef enrollForm
	if err := w.enrollChoices(ctx, me, &ef); err != nil {
		return err
	}
	v.Products, v.ProductsListed, v.Manufacturings = ef.Products, ef.ProductsListed, ef.Manufacturings
	for _, t := range ef.Treatments {
		if me.WorksAt(t.Code) {
			v.Treatments = append(v.Treatments, t)
		}
	}
	for after := ""; ; {
		js, err := w.svc.Jurisdictions(ctx, me, after, custody.MaxRegistryPage)
		if err != nil {
			return err
		}
		for _, j := range js {
			if !j.Suspended {
				v.Jurisdictions = append(v.Jurisdictions, choice{Code: j.Code, Text: j.Name + " (" + j.Code + ")"})
			}
			after = j.Code
		}
		if len(js) < custody.MaxRegistryPage {
			break
		}
	}
	return nil
}

func (w *ui) accessNewPage(c echo.Context) error {
	return w.renderAccessNew(c, http.StatusOK, nil)
}

func (w *ui) renderAccessNew(c echo.Context, code int, failed *failedForm) error {
	me := sessionUser(c)
	if !custody.MayRequestAccess(me.Role) {
		return w.refuse(c, http.StatusForbidden, "Only treating physicians ask for expanded access.", "")
	}
	v := accessNewView{formState: formState{failed}, Sigs: sigBoxes(custody.AccessJourney().Transitions[0], me)}
	if err := w.accessChoices(c.Request().Context(), me, &v); err != nil {
		return w.fail(c, err)
	}
	p := page{Title: "Ask for expanded access", Nav: "access", V: v}
	if failed != nil {
		p.Msg = &uiMessage{Kind: "error", Title: "The request was not submitted."}
		if failed.Field == "" {
			p.Msg.Detail = failed.Msg
		}
	}
	return w.render(c, code, "access_new", p)
}

// accessSubmit submits the physician's request, signed with the password.
func (w *ui) accessSubmit(c echo.Context) error {
	me := sessionUser(c)
	form, err := c.FormParams()
	if err != nil {
		return w.fail(c, fmt.Errorf("read form: %v: %w", err, custody.ErrInvalid))
	}
	sub := custody.AccessSubmission{Urgency: custody.Urgency(form.Get("urgency")), Indication: form.Get("indication"),
		ClinicalSummary: lines(form.Get("clinical_summary")), TreatmentPlan: lines(form.Get("treatment_plan")),
		Jurisdiction: form.Get("jurisdiction"), Product: form.Get("product"),
		TreatmentSite: form.Get("treatment_site"), ManufacturingSite: form.Get("manufacturing_site")}
	r, err := w.svc.SubmitAccess(c.Request().Context(), me, sub, signatures(custody.AccessJourney().Transitions[0], form))
	if err != nil {
		if !custody.MayRequestAccess(me.Role) {
			return w.fail(c, err)
		}
		return w.renderAccessNew(c, w.statusOf(c, err), refusal("submit", err, form, c.Response().Header().Get(echo.HeaderXRequestID)))
	}
	w.flash(c, fmt.Sprintf("Request %s submitted. The access team has been told.", r.ID))
	return c.Redirect(http.StatusSeeOther, "/access/requests/"+string(r.ID))
}

// accessID reads the request of the path; a malformed one is a refusal.
func (w *ui) accessID(c echo.Context) (custody.COI, error) {
	id, err := custody.ParseAccessID(c.Param("id"))
	if err != nil {
		return "", fmt.Errorf("path: %w", err)
	}
	return id, nil
}

// lines turns the line breaks a textarea sends ("\r\n") into the "\n"
// the domain keeps in paragraphs of text.
func lines(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// isMultipart reports whether req's body is multipart/form-data.
func isMultipart(req *http.Request) bool {
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	return err == nil && mt == echo.MIMEMultipartForm
}
