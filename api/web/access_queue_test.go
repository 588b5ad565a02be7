package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/api/internal/nettest"
	"github.com/coid-project/coid/custody"
)

// The expanded-access network of the web tests: webNetwork's hospital
// (PAR-1 collects and treats) and plant (MFG-1), everyone bound to it,
// and the people of expanded access: a physician at PAR-1, the medical
// director and a second access-team coordinator at MFG-1, and a
// coordinator of another hospital (FAR-1) who may read none of it.
const (
	wDoc      = "doc.ada"
	wMD       = "md.mo"
	wTeam     = "coord.mfg"
	wFarCoord = "coord.far"
)

func accessNetwork(t testing.TB, e *webEnv) {
	t.Helper()
	webNetwork(t, e)
	n := e.net()
	n.Register(t, "network", []custody.Organisation{{Code: "FARH", Name: "Far Hospital", Kind: custody.OrgHospital}},
		nil, nil)
	n.Register(t, "network", nil, []custody.Site{farSite()}, []custody.Shipper{
		{ID: "SHP-0001", Courier: "FASTCO", RequalificationDue: "2027-03-01"}, {ID: "SHP-0002", Courier: "FASTCO", RequalificationDue: "2027-03-01"}})
	for id, b := range map[string]struct {
		org   string
		sites []string
	}{wNurse1: {"APHP", []string{"PAR-1"}}, wNurse2: {"APHP", []string{"PAR-1"}}, wMfg: {"CELLCO", []string{"MFG-1"}},
		wQA: {"CELLCO", []string{"MFG-1"}}, wCourier: {"FASTCO", nil}} {
		n.Bind(t, id, b.org, b.sites...)
	}
	n.AddUser(t, netUser(wDoc, custody.RolePhysician, "APHP", "PAR-1"))
	n.AddUser(t, netUser(wMD, custody.RoleMedicalDirector, "CELLCO", "MFG-1"))
	n.AddUser(t, netUser(wTeam, custody.RoleCoordinator, "CELLCO", "MFG-1"))
	n.AddUser(t, netUser(wFarCoord, custody.RoleCoordinator, "FARH", "FAR-1"))
	for _, id := range []string{wCoord, wNurse1, wNurse2, wMfg, wQA, wCourier, wDoc, wMD, wTeam, wFarCoord} {
		u, err := e.svc.User(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		e.users[id] = u
	}
}

func netUser(id string, role custody.Role, org string, sites ...string) nettest.User {
	return nettest.User{ID: id, Role: role, Org: org, Sites: sites}
}

func farSite() custody.Site {
	s := custody.Site{Code: "FAR-1", Name: "Far Unit", Kinds: []custody.SiteRole{custody.SiteCollection, custody.SiteTreatment},
		Organisation: "FARH", TimeZone: "America/New_York", Address: "1 Main Street, Boston", Country: "US",
		Accreditation: custody.Accreditation{Status: custody.AccreditationAccredited, Expiry: "2027-06-30"},
		Qualification: custody.Qualification{TrainingDone: true, Date: "2026-01-15", Expiry: "2027-01-15"}}
	return s
}

// submitRequest submits a request for CART-19 from PAR-1 to MFG-1 as the
// physician.
func (e *webEnv) submitRequest(u custody.Urgency) *custody.AccessRequest {
	e.t.Helper()
	r, err := e.svc.SubmitAccess(context.Background(), e.users[wDoc], custody.AccessSubmission{Urgency: u,
		Indication: "relapsed DLBCL after two lines", ClinicalSummary: "Relapse 3 months after transplant; ECOG 1.",
		TreatmentPlan: "Lymphodepletion then a single infusion.", Jurisdiction: custody.USFDASinglePatient, Product: "CART-19",
		TreatmentSite: "PAR-1", ManufacturingSite: "MFG-1"}, nil)
	if err != nil {
		e.t.Fatalf("submit request: %v", err)
	}
	return r
}

// accessStep records a request step by actor, signed by its session.
func (e *webEnv) accessStep(id custody.COI, actor string, st custody.Step, d custody.AccessStepData) *custody.AccessRequest {
	e.t.Helper()
	r, err := e.svc.RecordAccess(context.Background(), e.users[actor], id, custody.AccessStep{Step: st, Data: d})
	if err != nil {
		e.t.Fatalf("%s by %s: %v", st, actor, err)
	}
	return r
}

func (e *webEnv) request(id custody.COI) *custody.AccessRequest {
	e.t.Helper()
	r, err := e.svc.AccessRequest(context.Background(), e.users[wQA], id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// TestAccessQueuePage: the queue shows each open request with its clock,
// the breached one highlighted and counted, the one waiting for the
// physician with its clock stopped; the figures and their CSV follow a
// decision. Roles and sites: a nurse may not open it, a coordinator of
// another hospital sees none of the team's requests.
func TestAccessQueuePage(t *testing.T) {
	e := newWebEnv(t, false)
	accessNetwork(t, e)
	emergency := e.submitRequest(custody.UrgencyEmergency)
	standard := e.submitRequest(custody.UrgencyStandard)
	waiting := e.submitRequest(custody.UrgencyStandard)
	decided := e.submitRequest(custody.UrgencyStandard)
	e.accessStep(waiting.ID, wQA, custody.StepAccessRequestInfo, custody.AccessStepData{Text: "Send the latest PET-CT report."})
	e.clock.Advance(4 * time.Hour)
	soon := e.submitRequest(custody.UrgencyEmergency)
	e.clock.Advance(21 * time.Hour) // the first emergency's 24 hours are past, the second has 3 left
	yes := true
	e.accessStep(decided.ID, wQA, custody.StepAccessDecide, custody.AccessStepData{Text: "Eligible.", Approve: &yes})

	qa := e.login(wQA)
	p := qa.get("/access/queue")
	wantCode(t, p, http.StatusOK, "queue")
	wantBody(t, p, "queue", `id="count-open">4<`, `id="count-breached">1<`, `id="count-due-soon">1<`,
		`<tr id="req-`+string(soon.ID)+`" class="due-soon"`, "Due soon</strong>", `href="/access/queue"`, "Access triage",
		`<tr id="req-`+string(emergency.ID)+`" class="breached"`, "Past its service level", "1 d 1 h / 1 d",
		`<tr id="req-`+string(standard.ID)+`" class=""`, "Clock stopped: waiting for the physician",
		`href="/access/requests/`+string(emergency.ID)+`"`, "Europe/Paris", "(2026-11",
		`href="/access/figures.csv"`, "2026-11", `<option value="`+wTeam+`"`)
	wantNotBody(t, p, "queue", `id="req-`+string(decided.ID)+`"`, `<option value="`+wCoord+`"`)
	if i, j := strings.Index(p.Body, `id="req-`+string(emergency.ID)), strings.Index(p.Body, `id="req-`+string(standard.ID)); i < 0 || j < i {
		t.Errorf("the emergency is not listed first (%d, %d)", i, j)
	}
	// The waiting request takes no decision from the queue.
	row := p.Body[strings.Index(p.Body, `id="req-`+string(waiting.ID)):]
	row = row[:strings.Index(row, "</tr>")]
	if strings.Contains(row, "/decide") || !strings.Contains(row, "/assign") {
		t.Errorf("waiting request's actions: %s", row)
	}

	csv := qa.get("/access/figures.csv")
	wantCode(t, csv, http.StatusOK, "figures CSV")
	if !strings.HasPrefix(csv.Body, "month,urgency,count,median_hours,p90_hours,breached\n2026-11,standard,1,") ||
		!strings.HasPrefix(csv.Header.Get("Content-Type"), "text/csv") {
		t.Errorf("figures CSV: %s %q", csv.Header.Get("Content-Type"), csv.Body)
	}

	for _, c := range []struct {
		who       string
		code      int
		has, nots []string
	}{
		{wNurse1, http.StatusForbidden, nil, []string{`id="queue"`}},
		{wFarCoord, http.StatusOK, []string{`id="queue-empty"`}, []string{string(emergency.ID)}},
		{wTeam, http.StatusOK, []string{string(emergency.ID), string(standard.ID)}, nil},
	} {
		b := e.login(c.who)
		p := b.get("/access/queue")
		wantCode(t, p, c.code, c.who+"'s queue")
		wantBody(t, p, c.who+"'s queue", c.has...)
		wantNotBody(t, p, c.who+"'s queue", c.nots...)
	}
	wantNotBody(t, e.login(wNurse1).get("/scan"), "nurse's navigation", `href="/access/queue"`)
}

// TestAccessQueueActions: reassignment, request-info and decide from the
// queue, each a signed request record; each refusal (a member of another
// site, no reason, no decision, a wrong password, no CSRF token, a
// request of another hospital, an unknown request) writes nothing and is
// said beside its field or as a page of the right status.
func TestAccessQueueActions(t *testing.T) {
	e := newWebEnv(t, false)
	accessNetwork(t, e)
	r := e.submitRequest(custody.UrgencyStandard)
	path := "/access/queue/" + string(r.ID)
	sig := func(v url.Values, id, pw string) url.Values {
		v.Set("sig_user_1", id)
		v.Set("sig_password_1", pw)
		return v
	}
	qa := e.login(wQA)
	qa.get("/access/queue")
	for _, c := range []struct {
		name   string
		who    string
		action string
		form   url.Values
		code   int
		has    []string
	}{
		{"assignee of another site", wQA, "assign", sig(url.Values{"assignee": {wCoord}, "text": {"cover"}}, wQA, webPassword(wQA)),
			http.StatusBadRequest, []string{`data-field="assignee"`, "has-error", "does not work at MFG-1"}},
		{"no assignee", wQA, "assign", sig(url.Values{"assignee": {""}, "text": {"cover"}}, wQA, webPassword(wQA)),
			http.StatusBadRequest, []string{"Choose the member of the access team"}},
		{"no reason", wQA, "assign", sig(url.Values{"assignee": {wTeam}, "text": {" "}}, wQA, webPassword(wQA)),
			http.StatusBadRequest, []string{`<div class="reg-field has-error" data-field="text">`}},
		{"no decision", wQA, "decide", sig(url.Values{"text": {"eligible"}}, wQA, webPassword(wQA)),
			http.StatusBadRequest, []string{"Choose approve or decline"}},
		{"wrong password", wQA, "decide", sig(url.Values{"approve": {"yes"}, "text": {"eligible"}}, wQA, "not-the-password-1"),
			http.StatusUnauthorized, []string{`id="decide-` + string(r.ID) + `" open`}},
		{"no csrf", wQA, "request-info", sig(url.Values{"text": {"more"}, "csrf": {"forged"}}, wQA, webPassword(wQA)),
			http.StatusForbidden, nil},
		{"another hospital", wFarCoord, "assign", sig(url.Values{"assignee": {wTeam}, "text": {"cover"}}, wFarCoord, webPassword(wFarCoord)),
			http.StatusNotFound, nil},
		{"unknown action", wQA, "withdraw", url.Values{}, http.StatusNotFound, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := qa
			if c.who != wQA {
				b = e.login(c.who)
			}
			before := e.request(r.ID).Records
			p := b.post(path+"/"+c.action, c.form)
			wantCode(t, p, c.code, c.name)
			wantBody(t, p, c.name, c.has...)
			if after := e.request(r.ID).Records; after != before {
				t.Errorf("a refused %s wrote %d record(s)", c.action, after-before)
			}
		})
	}
	p := qa.post("/access/queue/EA-NOPE/assign", url.Values{})
	wantCode(t, p, http.StatusNotFound, "malformed request ID")

	p = qa.post(path+"/assign", sig(url.Values{"assignee": {wTeam}, "text": {"Covering while I am away."}}, wQA, webPassword(wQA)))
	wantCode(t, p, http.StatusSeeOther, "reassign")
	if got := e.request(r.ID); got.Assignee != wTeam {
		t.Fatalf("assignee %q", got.Assignee)
	}
	wantBody(t, qa.get("/access/queue"), "queue after reassignment", "handed to "+wTeam, `<td data-assignee>`+wTeam+`</td>`)

	team := e.login(wTeam)
	team.get("/access/queue")
	p = team.post(path+"/request-info", sig(url.Values{"text": {"Send the latest PET-CT report."}}, wTeam, webPassword(wTeam)))
	wantCode(t, p, http.StatusSeeOther, "request info")
	if got := e.request(r.ID); got.State != custody.AccessInfoRequested {
		t.Fatalf("state after request-info %s", got.State)
	}
	e.accessStep(r.ID, wDoc, custody.StepAccessRespond, custody.AccessStepData{Text: "Report uploaded."})
	team.get("/access/queue")
	p = team.post(path+"/decide", sig(url.Values{"approve": {"yes"}, "text": {"Eligible; no alternative."}}, wTeam, webPassword(wTeam)))
	wantCode(t, p, http.StatusSeeOther, "decide")
	got := e.request(r.ID)
	last := got.Events[len(got.Events)-1]
	if got.State != custody.AccessApproved || last.Signatures[0].User != wTeam || last.Signatures[0].Method == custody.ViaToken {
		t.Fatalf("after decide: %s, %+v", got.State, last.Signatures)
	}
	wantBody(t, team.get("/access/queue"), "queue after decision", "approved", `id="queue-empty"`)
}
