package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Follow-up after infusion: the treating site's form on the chain page
// (time point from the product's configured points, coded grades and
// response, signed), and the list of the site's overdue follow-ups with
// the registry export (the API's CSV).

// registerFollowUps adds the overdue list and the export to g (behind the
// session).
func (w *ui) registerFollowUps(g *echo.Group) {
	g.GET("/follow-ups", w.followUpsPage)
	g.GET("/follow-ups/export.csv", w.asUser(w.srv.FollowUpExportCSVHandler()))
}

// fieldsOf returns the data inputs of step on chain ch: the follow-up's
// from the chain's product, the others as stepFields has them.
func (w *ui) fieldsOf(ctx context.Context, me custody.User, step custody.Step, ch *custody.Chain) []formField {
	if step != custody.StepFollowUp {
		return stepFields(step, ch, w.svc.Profiles())
	}
	return followUpFields(w.followUpDays(ctx, me, ch), doneFollowUps(ch))
}

// followUpDays are the follow-up time points of ch's product: those it
// configures, else the default ones (a product not registered, or not
// readable, has the defaults; the domain checks the day again).
func (w *ui) followUpDays(ctx context.Context, me custody.User, ch *custody.Chain) []int {
	p, err := w.svc.Product(ctx, me, ch.Product)
	if err != nil {
		p = custody.Product{}
	}
	return p.FollowUpTimePoints()
}

// doneFollowUps are the time points ch's follow-up records name.
func doneFollowUps(ch *custody.Chain) map[int]bool {
	done := map[int]bool{}
	for _, r := range ch.Records {
		if r.Step != custody.StepFollowUp {
			continue
		}
		if x, err := r.Parsed(); err == nil {
			if f, ok := x.(custody.FollowUpData); ok {
				done[f.Day] = true
			}
		}
	}
	return done
}

// grades are the options of a 0-4 grade.
var grades = []formOption{{"0", "0: none"}, {"1", "Grade 1"}, {"2", "Grade 2"}, {"3", "Grade 3"}, {"4", "Grade 4"}}

// responseWords name the coded responses.
var responseWords = map[string]string{"CR": "complete response", "PR": "partial response", "SD": "stable disease",
	"PD": "progressive disease", "NE": "not evaluable"}

// followUpFields are the follow-up form's inputs: the time points not
// yet recorded, the two grades and the response, coded, and the date of
// the assessment.
func followUpFields(days []int, done map[int]bool) []formField {
	var opts []formOption
	for _, d := range days {
		if !done[d] {
			opts = append(opts, formOption{strconv.Itoa(d), "Day " + strconv.Itoa(d)})
		}
	}
	resp := []formOption{{"", "choose…"}}
	for _, r := range custody.Responses {
		resp = append(resp, formOption{r, r + ": " + responseWords[r]})
	}
	return []formField{
		{Name: "day", Label: "Time point", Kind: "select", Required: true, Options: opts, Int: true},
		{Name: "assessed_date", Label: "Assessed on", Kind: "date", Required: true},
		{Name: "crs_grade", Label: "Cytokine release syndrome grade (ASTCT)", Kind: "select", Required: true,
			Options: append([]formOption{{"", "choose…"}}, grades...), Int: true},
		{Name: "icans_grade", Label: "Neurotoxicity grade (ICANS)", Kind: "select", Required: true,
			Options: append([]formOption{{"", "choose…"}}, grades...), Int: true},
		{Name: "response", Label: "Response", Kind: "select", Required: true, Options: resp},
	}
}

// followUpOffered reports whether f, a follow-up form, has a time point
// left to record.
func followUpOffered(f *stepForm) bool {
	i := slices.IndexFunc(f.Fields, func(x formField) bool { return x.Name == "day" })
	return i < 0 || len(f.Fields[i].Options) > 0
}

// overdueView is the overdue follow-ups page.
type overdueView struct {
	Items []overdueItem
	After string
	Next  string
	// From and To are the export's default dates: the past year.
	From, To string
}

// overdueItem is one overdue follow-up as the page shows it.
type overdueItem struct {
	custody.OverdueFollowUp
	Due string
}

func (w *ui) followUpsPage(c echo.Context) error {
	me := sessionUser(c)
	if !custody.MayRecordFollowUp(me.Role) {
		return w.fail(c, fmt.Errorf("follow-ups: role %s records no follow-ups: %w", me.Role, custody.ErrForbidden))
	}
	after := custody.COI(c.QueryParam("after"))
	items, next, err := w.svc.OverdueFollowUps(c.Request().Context(), me, after, 100)
	if err != nil {
		return w.fail(c, err)
	}
	now := w.svc.Now().UTC()
	v := overdueView{After: string(after), Next: string(next), To: now.Format(time.DateOnly), From: now.AddDate(-1, 0, 0).Format(time.DateOnly)}
	for _, it := range items {
		v.Items = append(v.Items, overdueItem{OverdueFollowUp: it, Due: it.Due.UTC().Format(time.DateOnly)})
	}
	return w.render(c, http.StatusOK, "followups", page{Title: "Overdue follow-ups", Nav: "follow-ups", V: v})
}
