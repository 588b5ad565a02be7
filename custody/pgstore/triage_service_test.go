package pgstore_test

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
)

// noIndex hides the store's indexes: a service over it folds, as it did
// on PostgreSQL before the store kept them.
type noIndex struct{ custody.Store }

// TestTriageOnPostgresAgreesWithFold runs requests through the service on
// PostgreSQL (waiting, answered, decided, withdrawn, assigned) and reads
// the triage queue, page by page, and the decision figures from the
// store's index and by folding every request: they must be the same.
func TestTriageOnPostgresAgreesWithFold(t *testing.T) {
	ctx := context.Background()
	st := open(t, pgtest.Schema(t))
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	service := func(s custody.Store) *custody.Service {
		svc, err := custody.NewService(custody.Config{Store: s, Hasher: passwd.Fast(), Logger: slog.New(slog.DiscardHandler),
			Now: clock, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles()))})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svc, folding := service(st), service(noIndex{st})
	if _, err := svc.AddUser(ctx, "admin1", "Admin One", custody.RoleAdmin, "pw-admin1-secret-long"); err != nil {
		t.Fatal(err)
	}
	user := func(id string) custody.User {
		t.Helper()
		u, err := st.User(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	admin := user("admin1")
	for _, o := range []custody.Organisation{{Code: "APHP", Name: "AP-HP", Kind: custody.OrgHospital},
		{Code: "CELLCO", Name: "CellCo", Kind: custody.OrgManufacturer}} {
		if _, err := svc.RegisterOrganisation(ctx, admin, o, "set-up"); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []custody.Site{
		{Code: "PAR-1", Name: "Hôpital Saint-Louis", Kinds: []custody.SiteRole{custody.SiteCollection, custody.SiteTreatment}, Organisation: "APHP",
			TimeZone: "Europe/Paris", Address: "1 avenue Claude Vellefaux, 75010 Paris", Country: "FR"},
		{Code: "MFG-1", Name: "CellCo plant", Kinds: []custody.SiteRole{custody.SiteManufacturing}, Organisation: "CELLCO",
			TimeZone: "America/New_York", Address: "1 Main St, Newark NJ", Country: "US"},
	} {
		s.Accreditation = custody.Accreditation{Status: custody.AccreditationAccredited, Expiry: "2027-06-30"}
		s.Qualification = custody.Qualification{TrainingDone: true, Date: "2026-01-15", Expiry: "2027-01-15"}
		if _, err := svc.RegisterSite(ctx, admin, s, "set-up"); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []struct {
		id, org, site string
		role          custody.Role
	}{{"doc1", "APHP", "PAR-1", custody.RolePhysician}, {"qa1", "CELLCO", "MFG-1", custody.RoleQA}} {
		if _, err := svc.AddUserIn(ctx, u.id, "User "+u.id, u.role, "pw-"+u.id+"-secret-long", u.org, []string{u.site}); err != nil {
			t.Fatal(err)
		}
	}
	doc, qa := user("doc1"), user("qa1")
	var ids []custody.COI
	for i := range 10 {
		u := custody.UrgencyStandard
		if i%3 == 0 {
			u = custody.UrgencyEmergency
		}
		r, err := svc.SubmitAccess(ctx, doc, custody.AccessSubmission{Urgency: u, Indication: "relapsed DLBCL",
			ClinicalSummary: "Relapse after transplant; ECOG 1.", TreatmentPlan: "Single infusion.", Jurisdiction: custody.USFDASinglePatient,
			Product: "CART-19", TreatmentSite: "PAR-1", ManufacturingSite: "MFG-1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		advance(time.Duration(i) * 37 * time.Minute)
	}
	yes, no := true, false
	ask, answer := custody.AccessStepData{Text: "Latest CD19 status?"}, custody.AccessStepData{Text: "CD19 positive."}
	for _, s := range []struct {
		id   custody.COI
		by   custody.User
		step custody.Step
		data custody.AccessStepData
	}{
		{ids[0], qa, custody.StepAccessRequestInfo, ask}, // waiting
		{ids[1], qa, custody.StepAccessRequestInfo, ask}, // answered
		{ids[1], doc, custody.StepAccessRespond, answer},
		{ids[2], qa, custody.StepAccessDecide, custody.AccessStepData{Text: "Meets criteria.", Approve: &yes}},
		{ids[3], doc, custody.StepAccessWithdraw, custody.AccessStepData{Text: "Patient improved."}},
		{ids[4], qa, custody.StepAccessRequestInfo, ask}, // paused, then declined
		{ids[4], doc, custody.StepAccessRespond, answer},
		{ids[4], qa, custody.StepAccessDecide, custody.AccessStepData{Text: "Not eligible.", Approve: &no}},
		{ids[5], qa, custody.StepAccessAssign, custody.AccessStepData{Assignee: "qa1", Text: "cover"}},
	} {
		if _, err := svc.RecordAccess(ctx, s.by, s.id, custody.AccessStep{Step: s.step, Data: s.data}); err != nil {
			t.Fatalf("%s %s: %v", s.id, s.step, err)
		}
		advance(3 * time.Hour)
	}
	advance(5 * 24 * time.Hour) // some breached, some due soon
	if _, err := st.AccessRows(ctx, custody.AccessSubmitted); err != nil {
		t.Fatalf("the index is not read: %v", err)
	}
	var seenIdx, seenFold []custody.COI
	after, afterFold := "", ""
	for page := 0; page < 20; page++ {
		qi, err := svc.AccessTriage(ctx, qa, after, 2)
		if err != nil {
			t.Fatalf("index: %v", err)
		}
		qf, err := folding.AccessTriage(ctx, qa, afterFold, 2)
		if err != nil {
			t.Fatalf("fold: %v", err)
		}
		if qi.Open != qf.Open || qi.Breached != qf.Breached || qi.DueSoon != qf.DueSoon || qi.Next != qf.Next || len(qi.Items) != len(qf.Items) {
			t.Fatalf("page %d: index open %d breached %d due soon %d next %q; fold %d %d %d %q", page, qi.Open, qi.Breached, qi.DueSoon, qi.Next,
				qf.Open, qf.Breached, qf.DueSoon, qf.Next)
		}
		for i := range qi.Items {
			if qi.Items[i].Clock != qf.Items[i].Clock {
				t.Fatalf("page %d item %d: index clock %+v, fold %+v", page, i, qi.Items[i].Clock, qf.Items[i].Clock)
			}
			seenIdx, seenFold = append(seenIdx, qi.Items[i].Request.ID), append(seenFold, qf.Items[i].Request.ID)
		}
		if qi.Next == "" {
			break
		}
		after, afterFold = qi.Next, qf.Next
	}
	if !slices.Equal(seenIdx, seenFold) || len(seenIdx) != 7 {
		t.Errorf("index pages %v, fold pages %v; want the same 7 open requests", seenIdx, seenFold)
	}
	fi, err := svc.AccessFigures(ctx, qa)
	if err != nil {
		t.Fatal(err)
	}
	ff, err := folding.AccessFigures(ctx, qa)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fi, ff) || len(fi) == 0 {
		t.Errorf("index figures %+v, fold figures %+v", fi, ff)
	}
	if err := st.Check(ctx); err != nil {
		t.Errorf("check: %v", err)
	}
}
