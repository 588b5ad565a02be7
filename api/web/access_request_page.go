package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The request page: the request, its clock, history and documents, the
// regulatory checklist of its jurisdiction and the forms of the steps the
// user may sign in its state.

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
	me, r, ok, err := w.accessOpen(c)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
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
