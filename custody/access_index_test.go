package custody_test

import (
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/passwd"
)

// noIndex hides the store's access index: a service over it folds every
// request, as before the index was kept.
type noIndex struct{ custody.Store }

// TestAccessIndexAgreesWithFold runs requests through every clock-moving
// step at two manufacturing sites, then reads the triage queue (page by
// page, requests submitted between pages) and the figures of each access
// team member from the store's index and from folding every request: the
// pages, clocks, counts, cursors and figures must be the same, and so
// must who sees which request.
func TestAccessIndexAgreesWithFold(t *testing.T) {
	e := accessEnv(t)
	admin := e.users["admin1"]
	if _, err := e.svc.RegisterOrganisation(e.ctx, admin, custody.Organisation{Code: "OTHERCO", Name: "OtherCo", Kind: custody.OrgManufacturer}, "second maker"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RegisterSite(e.ctx, admin, netSite("MFG-2", "OTHERCO", "Europe/Berlin", custody.SiteManufacturing), "second plant"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		id    string
		role  custody.Role
		org   string
		sites []string
	}{
		{"qaorg", custody.RoleQA, "CELLCO", nil},                  // QA of MFG-1's organisation, no site
		{"qaother", custody.RoleQA, "OTHERCO", []string{"MFG-2"}}, // QA of the other plant
		{"coordmfg2", custody.RoleCoordinator, "OTHERCO", []string{"MFG-2"}},
		{"qatreat", custody.RoleQA, "APHP", []string{"HOSP-2"}}, // QA at the treatment site
	} {
		if _, err := e.svc.AddUserIn(e.ctx, u.id, "User "+u.id, u.role, password(u.id), u.org, u.sites); err != nil {
			t.Fatal(err)
		}
		e.users[u.id], _ = e.store.User(e.ctx, u.id)
	}
	// The readers compared share a clock that stands still while they
	// read (the env's clock moves a minute at each reading).
	frozen := func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	reader := func(st custody.Store) *custody.Service {
		svc, err := custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(), Logger: slog.New(slog.DiscardHandler),
			Now: frozen, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles()))})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	indexed, folding := reader(e.store), reader(noIndex{e.store})
	submit := func(u custody.Urgency, plant string) custody.COI {
		sub := submission(u)
		sub.ManufacturingSite = plant
		r, err := e.svc.SubmitAccess(e.ctx, e.users["doc2"], sub, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	var ids []custody.COI
	for i := range 12 {
		u, plant := custody.UrgencyStandard, "MFG-1"
		if i%3 == 0 {
			u = custody.UrgencyEmergency
		}
		if i%4 == 3 {
			plant = "MFG-2"
		}
		ids = append(ids, submit(u, plant))
		e.setNow(e.now.Add(time.Duration(i) * 37 * time.Minute))
	}
	team := func(id custody.COI) string {
		r, err := e.svc.AccessRequest(e.ctx, e.users["qaorg"], id)
		if err == nil && r.Submission.ManufacturingSite == "MFG-1" {
			return "qa1"
		}
		return "qaother"
	}
	step := func(id custody.COI, by string, st custody.Step, d custody.AccessStepData) {
		t.Helper()
		if by == "" {
			by = team(id)
		}
		e.mustAccess(id, by, st, d)
		e.setNow(e.now.Add(3 * time.Hour))
	}
	ask := custody.AccessStepData{Text: "Latest CD19 status?"}
	answer := custody.AccessStepData{Text: "CD19 positive."}
	step(ids[0], "", custody.StepAccessRequestInfo, ask)    // waiting
	step(ids[1], "", custody.StepAccessRequestInfo, ask)    // answered
	step(ids[1], "doc2", custody.StepAccessRespond, answer) //
	step(ids[2], "", custody.StepAccessDecide, custody.AccessStepData{Text: "Meets criteria.", Approve: &yes})
	step(ids[3], "", custody.StepAccessRequestInfo, ask)    // asked twice
	step(ids[3], "doc2", custody.StepAccessRespond, answer) //
	step(ids[3], "", custody.StepAccessRequestInfo, ask)    //
	step(ids[4], "doc2", custody.StepAccessWithdraw, custody.AccessStepData{Text: "Patient improved."})
	step(ids[5], "", custody.StepAccessRequestInfo, ask)    // paused, then decided
	step(ids[5], "doc2", custody.StepAccessRespond, answer) //
	step(ids[5], "", custody.StepAccessDecide, custody.AccessStepData{Text: "Not eligible.", Approve: &no})
	step(ids[6], "", custody.StepAccessAssign, custody.AccessStepData{Assignee: "qa1", Text: "cover"})
	step(ids[7], "", custody.StepAccessDecide, custody.AccessStepData{Text: "Meets criteria.", Approve: &yes})
	e.setNow(e.now.Add(5 * 24 * time.Hour)) // some breached, some due soon

	for _, who := range []string{"qa1", "qaorg", "qaother", "coordmfg2", "qatreat", "coord"} {
		actor := e.users[who]
		var seenIdx, seenFold []string
		after, afterFold := "", ""
		for page := 0; ; page++ {
			qi, err := indexed.AccessTriage(e.ctx, actor, after, 2)
			if err != nil {
				t.Fatalf("%s: index: %v", who, err)
			}
			qf, err := folding.AccessTriage(e.ctx, actor, afterFold, 2)
			if err != nil {
				t.Fatalf("%s: fold: %v", who, err)
			}
			if qi.Open != qf.Open || qi.Breached != qf.Breached || qi.DueSoon != qf.DueSoon || qi.Next != qf.Next {
				t.Fatalf("%s page %d: index open %d breached %d due soon %d next %q; fold %d %d %d %q",
					who, page, qi.Open, qi.Breached, qi.DueSoon, qi.Next, qf.Open, qf.Breached, qf.DueSoon, qf.Next)
			}
			for i := range qi.Items {
				if i >= len(qf.Items) || qi.Items[i].Clock != qf.Items[i].Clock {
					t.Fatalf("%s page %d item %d: index clock %+v, fold %+v", who, page, i, qi.Items[i].Clock, qf.Items)
				}
			}
			seenIdx, seenFold = append(seenIdx, ids2(qi.Items)...), append(seenFold, ids2(qf.Items)...)
			if page == 0 {
				// A request arrives between pages: both readers place
				// it the same way, neither repeats or skips one.
				submit(custody.UrgencyEmergency, "MFG-1")
			}
			if qi.Next == "" {
				break
			}
			after, afterFold = qi.Next, qf.Next
		}
		if !slices.Equal(seenIdx, seenFold) {
			t.Errorf("%s: index pages %v, fold pages %v", who, seenIdx, seenFold)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(seenIdx)))) != len(seenIdx) {
			t.Errorf("%s: a request repeats across pages: %v", who, seenIdx)
		}
		fi, err := indexed.AccessFigures(e.ctx, actor)
		if err != nil {
			t.Fatal(err)
		}
		ff, err := folding.AccessFigures(e.ctx, actor)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fi, ff) {
			t.Errorf("%s: index figures %+v, fold figures %+v", who, fi, ff)
		}
		t.Logf("%s sees %d open requests", who, len(seenIdx))
	}
	// Who sees what, as before the index (9 requests to MFG-1, 3 to MFG-2,
	// 4 closed, 6 more to MFG-1 between pages): the plant's team and QA of its
	// organisation or of the treatment site; not a coordinator of the
	// treatment site, not another plant's team.
	for who, want := range map[string]int{"qa1": 12, "qaorg": 12, "qaother": 2, "coordmfg2": 2, "qatreat": 14, "coord": 0} {
		q, err := indexed.AccessTriage(e.ctx, e.users[who], "", 100)
		if err != nil || q.Open != want {
			t.Errorf("%s sees %d open requests (%v), want %d", who, q.Open, err, want)
		}
	}
	if err := e.store.CheckFile(e.ctx); err != nil {
		t.Errorf("the store's check: %v", err)
	}
}

func ids2(items []custody.TriageItem) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, string(it.Request.ID))
	}
	return out
}
