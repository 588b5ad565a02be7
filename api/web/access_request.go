package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
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

// accessForm is a record form of the request page.
type accessForm struct {
	Step   custody.Step
	Title  string
	Action string
	// Text asks for a message (its label; "" none), TextRequired when the
	// domain requires one.
	Text         string
	TextRequired bool
	// Reference asks for a regulatory reference (its label; "" none).
	Reference string
	Approve   bool
	// Doc is the document the record carries; nil: none.
	Doc    *docKind
	Sigs   []sigBox
	Danger bool
}

// accessEventView is one record of a request's history.
type accessEventView struct {
	custody.AccessEvent
	Title string
	When  shownTime
	Docs  []accessDocView
}

// accessDocView is a document attached to a request.
type accessDocView struct {
	Hash, Short, Kind, Href string
	Seq                     uint64
}

// checkItem is one requirement of the regulatory checklist: the steps
// any one of which meets it, whether it is met, the records that met it,
// and the forms the user may record it with.
type checkItem struct {
	Steps  []custody.Step
	Title  string
	Done   bool
	Events []accessEventView
	Forms  []accessForm
	// After: an after-the-fact step, Due its deadline (nil until its
	// trigger is recorded), Overdue when past it.
	After   bool
	Rule    string
	Due     *shownTime
	Overdue bool
}

// accessEnrollView is the enrollment form: offered to coordinators of an
// approved request, enabled when the jurisdiction's requirements are met
// (Refusal is the domain's refusal otherwise).
type accessEnrollView struct {
	Enabled     bool
	Refusal     string
	Collections []choice
	Sigs        []sigBox
}

// accessPageView is the request page.
type accessPageView struct {
	formState
	R            *custody.AccessRequest
	StateText    string
	Jurisdiction custody.Jurisdiction
	Submitted    shownTime
	Clock        *custody.AccessClock
	ClockDue     shownTime
	Events       []accessEventView
	Documents    []accessDocView
	Checklist    []checkItem
	Actions      []accessForm
	Enroll       *accessEnrollView
	// Docs: the service keeps documents (the forms take them).
	Docs bool
	// MaxDoc is the document store's limit in whole megabytes.
	MaxDoc int64
}

func (w *ui) accessPage(c echo.Context) error {
	return w.renderAccess(c, http.StatusOK, nil)
}

func (w *ui) renderAccess(c echo.Context, code int, failed *failedForm) error {
	me, ok, err := w.accessGate(c)
	if !ok {
		return err
	}
	id, err := w.accessID(c)
	if err != nil {
		return w.fail(c, err)
	}
	ctx := c.Request().Context()
	r, err := w.svc.AccessRequest(ctx, me, id)
	if err != nil {
		return w.fail(c, err)
	}
	jur, err := w.svc.Jurisdiction(ctx, r.Submission.Jurisdiction)
	if err != nil && !errors.Is(err, custody.ErrConflict) { // a suspended one still names the requirements
		return w.fail(c, err)
	}
	zone, _, err := w.svc.SiteZone(ctx, r.Submission.TreatmentSite)
	if err != nil {
		return w.fail(c, err)
	}
	v := accessPageView{formState: formState{failed}, R: r, StateText: accessStateText(r.State), Jurisdiction: jur,
		Submitted: showTime(r.Submitted, zone), Docs: w.svc.Documents() != nil}
	if d := w.svc.Documents(); d != nil {
		v.MaxDoc = d.MaxSize() >> 20
	}
	if r.State == custody.AccessSubmitted || r.State == custody.AccessInfoRequested || !r.Decided.IsZero() {
		cl := w.svc.RequestClock(r)
		v.Clock, v.ClockDue = &cl, showTime(cl.Due, zone)
	}
	base := "/access/requests/" + string(r.ID)
	seen := map[string]bool{}
	for _, ev := range r.Events {
		ev := accessEventView{AccessEvent: ev, Title: accessTitle(ev.Step), When: showTime(ev.Time, zone)}
		for _, h := range ev.Data.Documents {
			kind := "Document"
			if k, ok := accessDocs[ev.Step]; ok {
				kind = k.Label
			}
			d := accessDocView{Hash: h, Short: h[:min(12, len(h))], Kind: kind, Href: base + "/documents/" + h, Seq: ev.Seq}
			ev.Docs = append(ev.Docs, d)
			if !seen[h] {
				seen[h] = true
				v.Documents = append(v.Documents, d)
			}
		}
		v.Events = append(v.Events, ev)
	}
	form := func(st custody.Step) (accessForm, bool) {
		rule, err := custody.AccessRule(r.State, st)
		if err != nil || !rule.MaySign(me.Role) {
			return accessForm{}, false
		}
		f := accessForm{Step: st, Title: accessTitle(st), Action: base + "/steps/" + string(st), Sigs: sigBoxes(rule, me)}
		if failed != nil && failed.Form == string(st) {
			for i := range f.Sigs {
				f.Sigs[i].User = failed.Values.Get(fmt.Sprintf("sig_user_%d", i+1))
			}
		}
		switch st {
		case custody.StepAccessRequestInfo:
			f.Text, f.TextRequired = "What the access team needs to know", true
		case custody.StepAccessRespond:
			f.Text, f.TextRequired = "Your answer", true
		case custody.StepAccessDecide:
			f.Text, f.TextRequired, f.Approve = "Reason for the decision", true, true
		case custody.StepAccessWithdraw:
			f.Text, f.Danger = "Reason for withdrawing", true
		case custody.StepINDAcknowledged:
			f.Reference, f.Text = "FDA's acknowledgement number", "Note"
		default:
			f.Text = "Note"
			if st == custody.StepIRBApproved || st == custody.StepIRBWaived || st == custody.StepIRBReported {
				f.Reference = "IRB reference (optional)"
			}
		}
		if k, ok := accessDocs[st]; ok && v.Docs {
			f.Doc = &k
		}
		return f, true
	}
	for _, st := range []custody.Step{custody.StepAccessRespond, custody.StepAccessRequestInfo, custody.StepAccessDecide, custody.StepAccessWithdraw} {
		if f, ok := form(st); ok {
			v.Actions = append(v.Actions, f)
		}
	}
	eventsOf := func(steps []custody.Step) []accessEventView {
		var out []accessEventView
		for _, ev := range v.Events {
			if slices.Contains(steps, ev.Step) {
				out = append(out, ev)
			}
		}
		return out
	}
	for _, req := range jur.RequirementsOf(r) {
		item := checkItem{Steps: req, Events: eventsOf(req)}
		var titles []string
		for _, st := range req {
			titles = append(titles, accessTitle(st))
			_, done := r.Done[st]
			item.Done = item.Done || done
		}
		item.Title = strings.Join(titles, " or ")
		if !item.Done {
			for _, st := range req {
				if f, ok := form(st); ok {
					item.Forms = append(item.Forms, f)
				}
			}
		}
		v.Checklist = append(v.Checklist, item)
	}
	for _, a := range jur.After {
		// An after-the-fact step belongs to the checklist when its trigger
		// is on the request's path, or has been recorded all the same.
		_, triggered := r.Done[a.Trigger]
		if !triggered && !slices.ContainsFunc(jur.RequirementsOf(r), func(s []custody.Step) bool { return slices.Contains(s, a.Trigger) }) {
			continue
		}
		days := "days"
		if a.WorkingDays {
			days = "working days"
		}
		item := checkItem{Steps: []custody.Step{a.Step}, Title: accessTitle(a.Step), After: true, Events: eventsOf([]custody.Step{a.Step}),
			Rule: fmt.Sprintf("due within %d %s of the %s", a.Days, days, strings.ToLower(accessTitle(a.Trigger)))}
		_, item.Done = r.Done[a.Step]
		for _, d := range r.Deadlines {
			if d.Step == a.Step {
				due := showTime(d.Due, zone)
				item.Due, item.Overdue = &due, d.Status == "overdue"
			}
		}
		if !item.Done && triggered {
			if f, ok := form(a.Step); ok {
				item.Forms = append(item.Forms, f)
			}
		}
		v.Checklist = append(v.Checklist, item)
	}
	if r.State == custody.AccessApproved && custody.MayEnroll(me.Role) {
		ev, err := w.accessEnrollChoices(ctx, me, r)
		if err != nil {
			return w.fail(c, err)
		}
		v.Enroll = ev
	}
	p := page{Title: "Request " + string(r.ID), Nav: "access", V: v}
	if failed != nil {
		p.Msg = &uiMessage{Kind: "error", Title: "Nothing was recorded."}
		if failed.Field == "" {
			p.Msg.Detail = failed.Msg
		}
	}
	return w.render(c, code, "access_request", p)
}

// accessEnrollChoices builds the enrollment form of approved request r.
func (w *ui) accessEnrollChoices(ctx context.Context, me custody.User, r *custody.AccessRequest) (*accessEnrollView, error) {
	ev := &accessEnrollView{Enabled: len(r.Missing) == 0}
	if !ev.Enabled {
		ev.Refusal = sentence(trimSentinel(custody.ErrRequirementsUnmet,
			(&custody.RequirementsError{Jurisdiction: r.Submission.Jurisdiction, Missing: r.Missing}).Error()))
	}
	var ef enrollForm
	if err := w.enrollChoices(ctx, me, &ef); err != nil {
		return nil, err
	}
	ev.Collections = ef.Collections
	if rule, err := w.svc.Journey().Rule("", custody.StepEnroll); err == nil {
		ev.Sigs = sigBoxes(rule, me)
	}
	return ev, nil
}

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
	me, ok, err := w.accessGate(c)
	if !ok {
		return err
	}
	id, err := w.accessID(c)
	if err != nil {
		return w.fail(c, err)
	}
	ctx := c.Request().Context()
	r, err := w.svc.AccessRequest(ctx, me, id)
	if err != nil {
		return w.fail(c, err)
	}
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
	me, ok, err := w.accessGate(c)
	if !ok {
		return err
	}
	id, err := w.accessID(c)
	if err != nil {
		return w.fail(c, err)
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
	me, ok, err := w.accessGate(c)
	if !ok {
		return err
	}
	id, err := w.accessID(c)
	if err != nil {
		return w.fail(c, err)
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

// lines turns the line breaks a textarea sends ("\r\n") into the "\n"
// the domain keeps in paragraphs of text.
func lines(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// isMultipart reports whether req's body is multipart/form-data.
func isMultipart(req *http.Request) bool {
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	return err == nil && mt == echo.MIMEMultipartForm
}

// accessFormCtx is what the "accessform" template gets.
type accessFormCtx struct {
	F    accessForm
	CSRF string
	S    formState
}

// Form bundles form f of the page with the CSRF token for its template.
func (v accessPageView) Form(f accessForm, csrf string) accessFormCtx {
	return accessFormCtx{F: f, CSRF: csrf, S: v.formState}
}
