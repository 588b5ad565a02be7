package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The access team's triage queue: the open expanded-access requests of
// the team's manufacturing sites, emergencies first and then by their
// service-level deadline (custody.Service.AccessTriage), each with its
// clock, and the actions the team takes from the queue: hand a request to
// another member of the team, ask the physician for information, decide.
// Each action is a signed record of the request, checked by the domain;
// the request page (/access/requests/:id) shows the rest. Below the queue,
// the time-to-decision figures with the API's CSV.

// queuePageSize is how many requests one page of the queue shows.
const queuePageSize = 50

// queueActions are the request steps the queue's forms record.
var queueActions = map[string]custody.Step{
	"assign": custody.StepAccessAssign, "request-info": custody.StepAccessRequestInfo, "decide": custody.StepAccessDecide,
}

// queueFields are the fields of the queue's forms a refusal is shown
// beside.
var queueFields = map[string]bool{"assign/assignee": true, "assign/text": true, "request-info/text": true,
	"decide/approve": true, "decide/text": true}

// registerAccessQueue adds the queue, its actions and the figures' CSV
// to g (behind the session).
func (w *ui) registerAccessQueue(g *echo.Group, signs echo.MiddlewareFunc) {
	g.GET("/access/queue", w.accessQueuePage)
	g.POST("/access/queue/:id/:action", w.accessQueueAction, signs)
	g.GET("/access/figures.csv", w.asUser(w.srv.AccessFiguresHandler()))
}

// queueItem is one request of the queue as the page shows it.
type queueItem struct {
	ID         custody.COI
	Urgency    custody.Urgency
	Product    string
	Indication string
	Treatment  string
	State      string
	Assignee   string
	Elapsed    string
	Limit      string
	Due        shownTime
	Waiting    bool
	Breached   bool
	DueSoon    bool
	// Members are the access-team members the request may be handed to.
	Members []formOption
	// MayDecide: the request waits for the team, not for the physician.
	MayDecide bool
	Sigs      map[string][]sigBox
	// Failed is the action whose form was refused, with its message and
	// the field it concerns; Values are what was typed (never passwords).
	Failed, FailedMsg string
	Values            url.Values
	// Errs holds the refusal beside its field, keyed "action/field";
	// FieldShown says it is shown there rather than under the form.
	Errs       map[string]string
	FieldShown bool
}

// queueView is the queue page.
type queueView struct {
	Q       custody.TriageQueue
	Items   []queueItem
	After   string
	Next    string
	First   bool
	Zone    string
	Figures []figureRow
}

// figureRow is a row of the time-to-decision table.
type figureRow struct {
	Month, Urgency, Median, P90 string
	Count, Breached             int
}

// queueFailure is a refused action, for the re-rendered queue.
type queueFailure struct {
	id     custody.COI
	action string
	err    error
	form   url.Values
}

func (w *ui) accessQueuePage(c echo.Context) error {
	return w.renderQueue(c, http.StatusOK, nil, nil)
}

// viewerZone is the zone of the user's first registered site; nil: UTC
// only.
func (w *ui) viewerZone(c echo.Context, u custody.User) (*time.Location, string) {
	for _, s := range u.Sites {
		if z, ok, err := w.svc.SiteZone(c.Request().Context(), s); err == nil && ok {
			return z, z.String()
		}
	}
	return nil, ""
}

// teamMembers returns, per manufacturing site, the active coordinators
// and QA working there: whom a request may be handed to (the domain
// checks the choice again).
func (w *ui) teamMembers(c echo.Context, sites []string) (map[string][]formOption, error) {
	out := map[string][]formOption{}
	if len(sites) == 0 {
		return out, nil
	}
	users, err := w.svc.Users(c.Request().Context())
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if u.Disabled || !custody.MayTriageAccess(u.Role) {
			continue
		}
		for _, s := range sites {
			if u.WorksAt(s) {
				out[s] = append(out[s], formOption{u.ID, fmt.Sprintf("%s (%s, %s)", u.Name, u.ID, u.Role)})
			}
		}
	}
	return out, nil
}

// accessRuleOf is the request journey's row for step from an open
// request.
func accessRuleOf(step custody.Step) custody.Transition {
	for _, t := range custody.AccessJourney().Transitions {
		if t.Step == step && (t.From == custody.AccessSubmitted || t.From == custody.AccessInfoRequested) {
			return t
		}
	}
	return custody.Transition{}
}

func (w *ui) renderQueue(c echo.Context, code int, msg *uiMessage, failed *queueFailure) error {
	me := sessionUser(c)
	ctx := c.Request().Context()
	after := c.QueryParam("after")
	if failed != nil {
		after = failed.form.Get("after")
	}
	q, err := w.svc.AccessTriage(ctx, me, after, queuePageSize)
	if err != nil {
		return w.fail(c, err)
	}
	zone, zoneName := w.viewerZone(c, me)
	v := queueView{Q: q, After: after, Next: q.Next, First: after == "", Zone: zoneName}
	var sites []string
	for _, it := range q.Items {
		if s := it.Request.Submission.ManufacturingSite; !slices.Contains(sites, s) {
			sites = append(sites, s)
		}
	}
	members, err := w.teamMembers(c, sites)
	if err != nil {
		return w.fail(c, err)
	}
	for _, it := range q.Items {
		r, k := it.Request, it.Clock
		qi := queueItem{ID: r.ID, Urgency: r.Submission.Urgency, Product: r.Submission.Product, Indication: r.Submission.Indication,
			Treatment: r.Submission.TreatmentSite, State: queueStateText(r.State), Assignee: r.Assignee,
			Elapsed: humanDuration(k.Elapsed), Limit: humanDuration(k.Limit), Due: showTime(k.Due, zone),
			Waiting: k.Waiting, Breached: k.Breached, DueSoon: k.DueSoon, Members: members[r.Submission.ManufacturingSite],
			MayDecide: r.State == custody.AccessSubmitted, Sigs: map[string][]sigBox{}}
		for name, st := range queueActions {
			qi.Sigs[name] = sigBoxes(accessRuleOf(st), me)
		}
		if failed != nil && failed.id == r.ID {
			qi.Failed, qi.Values = failed.action, failed.form
			qi.FailedMsg = plainError(failed.err, c.Response().Header().Get(echo.HeaderXRequestID)).Detail
			if f := custody.ErrorField(failed.err); queueFields[failed.action+"/"+f] {
				qi.Errs = map[string]string{failed.action + "/" + f: qi.FailedMsg}
				qi.FieldShown = true
			}
			if u := failed.form.Get("sig_user_1"); u != "" {
				qi.Sigs[failed.action][0].User = u
			}
		}
		v.Items = append(v.Items, qi)
	}
	figs, err := w.svc.AccessFigures(ctx, me)
	if err != nil {
		return w.fail(c, err)
	}
	for i := len(figs) - 1; i >= 0; i-- { // newest month first
		f := figs[i]
		v.Figures = append(v.Figures, figureRow{Month: f.Month, Urgency: string(f.Urgency), Count: f.Count, Breached: f.Breached,
			Median: hoursText(f.Median), P90: hoursText(f.P90)})
	}
	return w.render(c, code, "access_queue", page{Title: "Access requests: triage", Nav: "access-queue", Msg: msg, V: v})
}

// hoursText says a number of hours as people read it.
func hoursText(h float64) string {
	return humanDuration(time.Duration(h * float64(time.Hour)))
}

// queueStateText says a request's state in words.
func queueStateText(s custody.State) string {
	switch s {
	case custody.AccessSubmitted:
		return "waiting for the access team"
	case custody.AccessInfoRequested:
		return "waiting for the physician's information"
	}
	return strings.TrimPrefix(string(s), "access-")
}

// accessQueueAction records one of the queue's actions on a request.
func (w *ui) accessQueueAction(c echo.Context) error {
	id, err := custody.ParseAccessID(c.Param("id"))
	if err != nil {
		return w.fail(c, fmt.Errorf("request %q: %w", c.Param("id"), custody.ErrNotFound))
	}
	action := c.Param("action")
	step, ok := queueActions[action]
	if !ok {
		return w.refuse(c, http.StatusNotFound, "This page does not exist.", "")
	}
	form, err := c.FormParams()
	if err != nil {
		return w.fail(c, fmt.Errorf("read form: %v: %w", err, custody.ErrInvalid))
	}
	me := sessionUser(c)
	d := custody.AccessStepData{Text: form.Get("text")}
	switch step {
	case custody.StepAccessAssign:
		d.Assignee = form.Get("assignee")
		if strings.TrimSpace(d.Assignee) == "" {
			err = &custody.FieldError{Field: "assignee", Err: fmt.Errorf("choose the member of the access team to hand the request to: %w", custody.ErrInvalid)}
		}
	case custody.StepAccessDecide:
		switch form.Get("approve") {
		case "yes":
			d.Approve = boolPtr(true)
		case "no":
			d.Approve = boolPtr(false)
		default:
			err = &custody.FieldError{Field: "approve", Err: fmt.Errorf("choose approve or decline: %w", custody.ErrInvalid)}
		}
	}
	if err == nil {
		rule := accessRuleOf(step)
		_, err = w.svc.RecordAccess(c.Request().Context(), me, id, custody.AccessStep{Step: step, Data: d, Signatures: signatures(rule, form)})
	}
	if err != nil {
		if errors.Is(err, custody.ErrNotFound) || errors.Is(err, custody.ErrForbidden) && !strings.Contains(err.Error(), "sign") {
			return w.fail(c, err)
		}
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		return w.renderQueue(c, w.statusOf(c, err), &m, &queueFailure{id: id, action: action, err: err, form: form})
	}
	words := map[custody.Step]string{custody.StepAccessAssign: "handed to " + d.Assignee,
		custody.StepAccessRequestInfo: "information requested from the physician"}
	done := words[step]
	if step == custody.StepAccessDecide {
		done = "declined"
		if *d.Approve {
			done = "approved"
		}
	}
	w.flash(c, fmt.Sprintf("Request %s: %s.", id, done))
	target := "/access/queue"
	if a := form.Get("after"); a != "" {
		target += "?after=" + url.QueryEscape(a)
	}
	return c.Redirect(http.StatusSeeOther, target)
}

func boolPtr(v bool) *bool { return &v }
