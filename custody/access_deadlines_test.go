package custody_test

import (
	"errors"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestAccessDeadlinesRaised: the IRB report owed after an emergency
// authorisation is raised on the QA console and in the access team's
// queue for those who may read the request: due, then overdue (listed
// first), gone once recorded; a standard request owes none, and a user of
// another site sees none.
func TestAccessDeadlinesRaised(t *testing.T) {
	e := accessEnv(t)
	if _, err := e.svc.AddUserIn(e.ctx, "coordpar", "Coord Paris", custody.RoleCoordinator, password("coordpar"), "APHP", []string{"PAR-1"}); err != nil {
		t.Fatal(err)
	}
	e.users["coordpar"], _ = e.store.User(e.ctx, "coordpar")
	e.now = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC) // a Thursday
	approve := func(u custody.Urgency) *custody.AccessRequest {
		r := e.submitAccess(u)
		e.mustAccess(r.ID, "qa1", custody.StepAccessDecide, custody.AccessStepData{Text: "ok", Approve: &yes})
		e.mustAccess(r.ID, "qa1", custody.StepLOAIssued, custody.AccessStepData{})
		return r
	}
	owed := func(user string) []custody.OwedDeadline {
		t.Helper()
		list, err := e.svc.AccessDeadlines(e.ctx, e.users[user])
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	approve(custody.UrgencyStandard)
	first := approve(custody.UrgencyEmergency)
	if n := len(owed("qa1")); n != 0 {
		t.Fatalf("before any emergency authorisation: %d deadlines", n)
	}
	auth := e.mustAccess(first.ID, "doc2", custody.StepEmergencyAuthorise, custody.AccessStepData{Reference: "FDA phone auth 42"})
	due := auth.Done[custody.StepEmergencyAuthorise].AddDate(0, 0, 7) // Thursday + 5 working days
	for _, user := range []string{"qa1", "doc2", "coord", "mfg1"} {
		list := owed(user)
		if len(list) != 1 || list[0].Request != first.ID || list[0].Step != custody.StepIRBReported || list[0].Status != "due" ||
			!list[0].Due.Equal(due) || list[0].Urgency != custody.UrgencyEmergency || list[0].TreatmentSite != "HOSP-2" {
			t.Fatalf("%s: %+v, want the IRB report of %s due %s", user, list, first.ID, due)
		}
	}
	for _, user := range []string{"coordpar", "courier1", "doc1"} {
		if list := owed(user); len(list) != 0 {
			t.Errorf("%s, of another site, sees %+v", user, list)
		}
	}
	con, err := e.svc.ConsoleFor(e.ctx, e.users["qa1"], "", "", 10)
	if err != nil || len(con.AccessDeadlines) != 1 || con.AccessDeadlines[0].Request != first.ID {
		t.Fatalf("console: %+v, %v", con.AccessDeadlines, err)
	}
	q, err := e.svc.AccessTriage(e.ctx, e.users["qa1"], "", 10)
	if err != nil || len(q.Deadlines) != 1 || q.Deadlines[0].Request != first.ID {
		t.Fatalf("triage queue: %+v, %v", q.Deadlines, err)
	}

	// Enrolled, then past its due time: overdue, and listed before a
	// later authorisation's report that is only due.
	_, c, err := e.svc.EnrollAccess(e.ctx, e.users["coord"], first.ID, custody.AccessEnrollment{Patient: patient, CollectionSite: "PAR-1"})
	if err != nil {
		t.Fatal(err)
	}
	e.now = due.Add(time.Hour)
	second := approve(custody.UrgencyEmergency)
	e.mustAccess(second.ID, "doc2", custody.StepEmergencyAuthorise, custody.AccessStepData{Reference: "FDA phone auth 43"})
	list := owed("qa1")
	if len(list) != 2 || list[0].Request != first.ID || list[0].Status != "overdue" || list[0].COI != c.COI ||
		list[1].Request != second.ID || list[1].Status != "due" {
		t.Fatalf("after the first's due time: %+v", list)
	}
	e.mustAccess(first.ID, "doc2", custody.StepIRBReported, custody.AccessStepData{Reference: "IRB told"})
	if list := owed("qa1"); len(list) != 1 || list[0].Request != second.ID {
		t.Fatalf("after the first's IRB report: %+v", list)
	}
}

// TestAccessDeadlinesSuspendedJurisdiction: suspending a jurisdiction
// stops new requests naming it; the requests already under it keep their
// history and deadlines, and the console keeps working.
func TestAccessDeadlinesSuspendedJurisdiction(t *testing.T) {
	e := accessEnv(t)
	j := custody.Jurisdiction{Code: "UK-MHRA-NP", Name: "UK named patient", Required: [][]custody.Step{{custody.StepLOAIssued}},
		After: []custody.AfterTheFact{{Step: custody.StepIRBReported, Trigger: custody.StepLOAIssued, Days: 5}}}
	if _, err := e.svc.RegisterJurisdiction(e.ctx, e.users["admin1"], j, "programme opens in the UK"); err != nil {
		t.Fatal(err)
	}
	s := submission(custody.UrgencyStandard)
	s.Jurisdiction = j.Code
	r, err := e.svc.SubmitAccess(e.ctx, e.users["doc2"], s, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.mustAccess(r.ID, "qa1", custody.StepAccessDecide, custody.AccessStepData{Text: "ok", Approve: &yes})
	e.mustAccess(r.ID, "qa1", custody.StepLOAIssued, custody.AccessStepData{})
	if _, err := e.svc.SuspendJurisdiction(e.ctx, e.users["admin1"], j.Code, true, "programme closed"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SubmitAccess(e.ctx, e.users["doc2"], s, nil); err == nil {
		t.Fatal("a new request under a suspended jurisdiction was accepted")
	}
	got, err := e.svc.AccessRequest(e.ctx, e.users["qa1"], r.ID)
	if err != nil || len(got.Deadlines) != 1 {
		t.Fatalf("request under the suspended jurisdiction: %+v, %v", got, err)
	}
	list, err := e.svc.AccessDeadlines(e.ctx, e.users["qa1"])
	if err != nil || len(list) != 1 || list[0].Request != r.ID {
		t.Fatalf("deadlines: %+v, %v", list, err)
	}
	if _, err := e.svc.ConsoleFor(e.ctx, e.users["qa1"], "", "", 10); err != nil {
		t.Fatalf("console: %v", err)
	}
	// Its requests are read, not written, while it is suspended.
	before := e.records()
	if _, err := e.access(r.ID, "doc2", custody.StepIRBApproved, custody.AccessStepData{}); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("a record under the suspended jurisdiction: %v, want ErrConflict", err)
	}
	if _, _, err := e.svc.EnrollAccess(e.ctx, e.users["coord"], r.ID, custody.AccessEnrollment{Patient: patient, CollectionSite: "PAR-1"}); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("enrollment under the suspended jurisdiction: %v, want ErrConflict", err)
	}
	if e.records() != before {
		t.Fatal("a refused record was written")
	}
}
