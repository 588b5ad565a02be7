package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Recording a step from its form on the chain page.

func (w *ui) recordStep(c echo.Context) error {
	coi, err := api.COIParam(c)
	if err != nil {
		return w.fail(c, err)
	}
	ctx := c.Request().Context()
	step := custody.Step(c.Param("step"))
	ch, err := w.svc.ReadChain(ctx, sessionUser(c), coi)
	if err != nil {
		return w.fail(c, err)
	}
	if step == custody.StepBedsideVerify {
		return c.Redirect(http.StatusSeeOther, "/chains/"+string(coi)+"/bedside")
	}
	form, err := c.FormParams()
	if err != nil {
		return w.fail(c, fmt.Errorf("read form: %v: %w", err, custody.ErrInvalid))
	}
	fail := func(err error) error {
		c.Set(stepErrKey, err)
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		return w.renderChain(c, w.statusOf(c, err), &m, step, form)
	}
	rule, err := w.svc.Journey().Rule(ch.State, step)
	if err != nil {
		return fail(err)
	}
	data, err := stepData(step, w.fieldsOf(ctx, sessionUser(c), step, ch), form)
	if err != nil {
		return fail(err)
	}
	sigs := signatures(rule, form)
	if step == custody.StepExceptionalRelease {
		sigs = givenSignatures(sigs)
	}
	rec, err := w.svc.Record(ctx, sessionUser(c), coi, custody.StepRequest{Step: step, Data: data, Signatures: sigs})
	if err != nil {
		return fail(err)
	}
	w.flash(c, fmt.Sprintf("Recorded: %s (record %d), signed by %s.", stepTitle(step), rec.Seq, signers(rec)))
	target := "/chains/" + string(coi)
	if b := form.Get("bag"); b != "" {
		target += "?bag=" + url.QueryEscape(b)
	}
	return c.Redirect(http.StatusSeeOther, target)
}

func signers(r custody.Record) string {
	var out []string
	for _, s := range r.Signatures {
		out = append(out, s.Name)
	}
	return strings.Join(out, " and ")
}
