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

// TestOverdueIndexAgreesWithFold: the overdue follow-ups read from the
// store's follow-up index are those read by folding every infused chain,
// for a user who sees the chains and one who sees none, over every page;
// a chain not yet infused and a recorded time point are not listed; and
// the index pages hold only chains with something overdue.
func TestOverdueIndexAgreesWithFold(t *testing.T) {
	e, first := netFollowUpEnv(t)
	second, third, notYet := e.enrollNet(), e.enrollNet(), e.enrollNet()
	e.advance(second, custody.StateInfused)
	e.advance(third, custody.StateInfused)
	e.advance(notYet, custody.StateVerified)
	c, err := e.svc.Chain(e.ctx, third)
	if err != nil {
		t.Fatal(err)
	}
	infused := c.Records[len(c.Records)-1].Time
	e.setNow(infused.Add(10 * 24 * time.Hour))
	e.must(second, "doc1", custody.StepFollowUp, withFollowUp(7, "assessed_date", infused.Add(9*24*time.Hour).Format(time.DateOnly)),
		sig("doc1", custody.MeaningAuthored))
	e.setNow(infused.Add(12 * 24 * time.Hour)) // day 7 overdue (grace 2); day 30 not yet
	admin := e.users["admin1"]
	if _, err := e.svc.RegisterOrganisation(e.ctx, admin, custody.Organisation{Code: "OTHERH", Name: "Other Hospital", Kind: custody.OrgHospital}, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RegisterSite(e.ctx, admin, netSite("OTH-1", "OTHERH", "Europe/Paris", custody.SiteTreatment), "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddUserIn(e.ctx, "nurse9", "Printed nurse9", custody.RoleNurse, password("nurse9"), "OTHERH", []string{"OTH-1"}); err != nil {
		t.Fatal(err)
	}
	e.users["nurse9"], _ = e.store.User(e.ctx, "nurse9")
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
	all := func(svc *custody.Service, who string) (items []custody.OverdueFollowUp, pages int) {
		t.Helper()
		var after custody.COI
		for {
			out, next, err := svc.OverdueFollowUps(e.ctx, e.users[who], after, 1)
			if err != nil {
				t.Fatalf("%s: %v", who, err)
			}
			items, pages = append(items, out...), pages+1
			if next == "" {
				return items, pages
			}
			after = next
		}
	}
	for who, want := range map[string][]custody.COI{"coord": {first, third}, "courier1": {first, third}, "nurse9": nil} {
		gi, pages := all(indexed, who)
		gf, _ := all(folding, who)
		if !slices.Equal(gi, gf) {
			t.Errorf("%s: index %+v, fold %+v", who, gi, gf)
		}
		var cois []custody.COI
		for _, o := range gi {
			if o.Day != 7 {
				t.Errorf("%s: day %d listed overdue", who, o.Day)
			}
			cois = append(cois, o.COI)
		}
		if !slices.Equal(cois, want) {
			t.Errorf("%s: overdue chains %v, want %v", who, cois, want)
		}
		if len(want) > 0 && pages != len(want) {
			t.Errorf("%s: %d pages of one chain for %d overdue chains", who, pages, len(want))
		}
	}
}
