package custody_test

import (
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
