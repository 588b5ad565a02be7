package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestFollowUpForm: after the infusion the treating site's staff find the
// follow-up form with the product's time points and coded selects; a
// missing grade or an assessment before the infusion is refused beside
// its field with nothing written; a recorded time point is no longer
// offered. Manufacturing is not offered the form.
func TestFollowUpForm(t *testing.T) {
	e := newWebEnv(t, false)
	accessNetwork(t, e)
	_, coi := e.accessChain(custody.StateInfused)
	if st := e.chain(coi).State; st != custody.StateInfused {
		t.Fatalf("chain %s", st)
	}
	e.clock.Advance(8 * 24 * time.Hour)
	nurse := e.login(wNurse1)
	p := nurse.get(coiPath(coi))
	form := detailsOf(p.Body, "form-follow-up")
	for _, s := range []string{`<select name="day" required><option value="7">Day 7</option><option value="14">Day 14</option><option value="28">Day 28</option><option value="90">Day 90</option></select>`,
		`<select name="crs_grade" required>`, `<option value="4">Grade 4</option>`, `<select name="icans_grade" required>`,
		`<option value="CR">CR: complete response</option>`, `type="date"`} {
		if !strings.Contains(form, s) {
			t.Errorf("follow-up form lacks %s:\n%s", s, form)
		}
	}
	wantNotBody(t, e.login(wMfg).get(coiPath(coi)), "manufacturing's chain page", `id="form-follow-up"`)

	sig := url.Values{"sig_user_1": {wNurse1}, "sig_password_1": {webPassword(wNurse1)}}
	good := url.Values{"day": {"7"}, "assessed_date": {"2026-11-29"}, "crs_grade": {"1"}, "icans_grade": {"0"}, "response": {"PR"}}
	post := func(change url.Values) page {
		v := url.Values{}
		for k, x := range good {
			v[k] = x
		}
		for k, x := range sig {
			v[k] = x
		}
		for k, x := range change {
			v[k] = x
		}
		return nurse.post(coiPath(coi)+"/steps/follow-up", v)
	}
	for _, c := range []struct {
		name   string
		change url.Values
		field  string
	}{
		{"no CRS grade", url.Values{"crs_grade": {""}}, "crs_grade"},
		{"grade out of range", url.Values{"icans_grade": {"5"}}, "icans_grade"},
		{"uncoded response", url.Values{"response": {"better"}}, "response"},
		{"assessed in the future", url.Values{"assessed_date": {"2027-01-01"}}, "assessed_date"},
		{"not a time point", url.Values{"day": {"8"}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.chain(coi).Records)
			p := post(c.change)
			wantCode(t, p, http.StatusBadRequest, c.name)
			if c.field != "" {
				wantBody(t, p, c.name, `data-error-for="`+c.field+`"`)
			}
			if len(e.chain(coi).Records) != before {
				t.Errorf("a refused follow-up wrote a record")
			}
		})
	}
	p = post(nil)
	wantCode(t, p, http.StatusSeeOther, "follow-up")
	ch := e.chain(coi)
	last := ch.Records[len(ch.Records)-1]
	if last.Step != custody.StepFollowUp || last.Signatures[0].User != wNurse1 ||
		!strings.Contains(string(last.Data), `"crs_grade":1`) || !strings.Contains(string(last.Data), `"day":7`) {
		t.Fatalf("follow-up record: %s %s", last.Step, last.Data)
	}
	p = nurse.get(coiPath(coi))
	wantBody(t, p, "timeline after the follow-up", "Follow-up</strong>", "CRS grade: 1", "ICANS grade: 0", "Time point (day): 7", "Response: PR")
	form = detailsOf(p.Body, "form-follow-up")
	if strings.Contains(form, `value="7"`) || !strings.Contains(form, `value="14"`) {
		t.Errorf("follow-up form after day 7:\n%s", form)
	}
}

// TestOverdueFollowUps: the site's overdue follow-ups are listed (a
// recorded time point is not), to the site's staff only; the export
// downloads the recorded ones as CSV without patient identifiers.
func TestOverdueFollowUps(t *testing.T) {
	e := newWebEnv(t, false)
	accessNetwork(t, e)
	_, coi := e.accessChain(custody.StateInfused)
	e.clock.Advance(8 * 24 * time.Hour)
	e.step(coi, custody.StepFollowUp, `{"day":7,"assessed_date":"2026-11-29","crs_grade":2,"icans_grade":1,"response":"CR"}`,
		wsig(wDoc, custody.MeaningAuthored))
	e.clock.Advance(10 * 24 * time.Hour) // day 18: day 14 is past its 3 days' grace

	doc := e.login(wDoc)
	p := doc.get("/follow-ups")
	wantCode(t, p, http.StatusOK, "overdue follow-ups")
	wantBody(t, p, "overdue follow-ups", `href="/follow-ups"`, `<tr data-coi="`+string(coi)+`" data-day="14">`, "2026-12-06",
		`action="/follow-ups/export.csv"`)
	wantNotBody(t, p, "overdue follow-ups", `data-day="7"`, `data-day="28"`)

	csv := doc.get("/follow-ups/export.csv?from=2026-11-01&to=2026-12-31")
	wantCode(t, csv, http.StatusOK, "export")
	if !strings.HasPrefix(csv.Body, "coi,product,treatment_site,day,assessed_date,crs_grade,icans_grade,response,recorded_utc,seq\n"+
		string(coi)+",CART-19,PAR-1,7,2026-11-29,2,1,CR,") {
		t.Errorf("export: %q", csv.Body)
	}
	wantCode(t, doc.get("/follow-ups/export.csv?from=2026-12-31&to=2026-11-01"), http.StatusBadRequest, "export of a reversed period")

	for _, c := range []struct {
		who  string
		code int
		has  bool
	}{{wNurse1, http.StatusOK, true}, {wFarCoord, http.StatusOK, false}, {wMfg, http.StatusForbidden, false}} {
		p := e.login(c.who).get("/follow-ups")
		wantCode(t, p, c.code, c.who+"'s overdue follow-ups")
		if got := strings.Contains(p.Body, string(coi)); got != c.has {
			t.Errorf("%s sees the chain's overdue follow-up: %v, want %v", c.who, got, c.has)
		}
	}
}
