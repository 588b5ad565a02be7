package custody_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
)

// pageCountingStore counts the summaries the service pages from the
// store's index by state (ChainsAfter) and from its index by sites
// (ChainsOfSitesAfter), and the pages it asks of the latter.
type pageCountingStore struct {
	*boltstore.Store
	byState, bySites, siteCalls atomic.Int64
}

func (s *pageCountingStore) ChainsAfter(ctx context.Context, st custody.State, after custody.COI, limit int) ([]custody.ChainInfo, error) {
	out, err := s.Store.ChainsAfter(ctx, st, after, limit)
	s.byState.Add(int64(len(out)))
	return out, err
}

func (s *pageCountingStore) ChainsOfSitesAfter(ctx context.Context, sites custody.Sites, st custody.State, after custody.COI, limit int) ([]custody.ChainInfo, error) {
	out, err := s.Store.ChainsOfSitesAfter(ctx, sites, st, after, limit)
	s.bySites.Add(int64(len(out)))
	s.siteCalls.Add(1)
	return out, err
}

// TestScopedReadsAgreeWithMayRead: in a network of eight hospitals and two
// plants, with chains from before the network, users bound to one site,
// to a manufacturer, to nothing, a courier and an administrator each get
// from the chain list (every state and none, pages of 1 to 4) and from
// the QA console (counts, open issues, every state's table) exactly the
// chains MayRead lets them read; and narrow users are paged from the
// index by sites, reading a small part of the summaries.
func TestScopedReadsAgreeWithMayRead(t *testing.T) {
	e := newTeleEnv(t)
	counting := &pageCountingStore{Store: e.store}
	svc, err := custody.NewService(custody.Config{Store: counting, Hasher: passwd.Fast(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: e.clock, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())),
		Telemetry: custody.TelemetryConfig{Readings: e.store}})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	rng := rand.New(rand.NewPCG(19, 5))
	// Chains from before the network: their site names are registered
	// nowhere, so everyone reads them.
	var cois []custody.COI
	for range 4 {
		cois = append(cois, e.enroll())
	}
	registerNetwork(t, e)
	admin := e.users["admin1"]
	hospitals := []string{"PAR-1"}
	for i := 3; i <= 9; i++ {
		code := fmt.Sprintf("H-%d", i)
		if _, err := e.svc.RegisterSite(e.ctx, admin, netSite(code, "APHP", "Europe/Paris", custody.SiteCollection, custody.SiteTreatment), "network set-up"); err != nil {
			t.Fatal(err)
		}
		hospitals = append(hospitals, code)
	}
	if _, err := e.svc.RegisterSite(e.ctx, admin, netSite("MFG-2", "CELLCO", "America/New_York", custody.SiteManufacturing), "network set-up"); err != nil {
		t.Fatal(err)
	}
	bind := func(id string, role custody.Role, org string, sites ...string) {
		t.Helper()
		if _, seen := e.users[id]; !seen {
			if _, err := e.svc.AddUser(e.ctx, id, "Printed "+id, role, password(id)); err != nil {
				t.Fatal(err)
			}
		}
		u, err := e.store.UpdateUser(e.ctx, id, func(u *custody.User) error { u.Organisation, u.Sites = org, sites; return nil })
		if err != nil {
			t.Fatal(err)
		}
		e.users[id] = u
	}
	for _, id := range []string{"coord", "nurse1", "nurse2"} {
		bind(id, "", "APHP", append([]string{"HOSP-2"}, hospitals...)...)
	}
	for _, id := range []string{"mfg1", "mfg2", "qa1"} {
		bind(id, "", "CELLCO", "MFG-1", "MFG-2")
	}
	bind("qa-par", custody.RoleQA, "APHP", "PAR-1")
	bind("coord-h3", custody.RoleCoordinator, "APHP", "H-3")
	bind("qa-none", custody.RoleQA, "")

	for i := range 60 {
		h := hospitals[i%len(hospitals)]
		plant := []string{"MFG-1", "MFG-2"}[i%2]
		c, err := e.svc.Enroll(e.ctx, e.users["coord"], custody.EnrollRequest{Patient: patient, Product: "CART-19",
			Sites: custody.Sites{Collection: h, Manufacturing: plant, Treatment: h}})
		if err != nil {
			t.Fatal(err)
		}
		cois = append(cois, c.COI)
	}
	for _, coi := range cois {
		switch k := rng.IntN(7); k {
		case 0: // stays enrolled
		case 1:
			e.must(coi, "coord", custody.StepCancel, map[string]any{"reason": "patient withdrew consent"}, sig("coord", custody.MeaningApproved))
		case 6: // cancelled with an excursion open
			e.advance(coi, custody.StateToManufacturing)
			c, _ := e.svc.Chain(e.ctx, coi)
			start := c.Legs[0].ShippedAt.Add(10 * time.Minute)
			if _, _, err := e.svc.RecordExcursion(e.ctx, coi, 1, custody.Excursion{ID: custody.ExcursionID(custody.ExcursionTemperature, start),
				Kind: custody.ExcursionTemperature, Start: start, Duration: 5 * time.Minute}); err != nil {
				t.Fatal(err)
			}
			e.must(coi, "coord", custody.StepCancel, map[string]any{"reason": "product lost"}, sig("coord", custody.MeaningApproved))
		case 2:
			e.advance(coi, custody.StateInfused)
		default:
			e.advance(coi, []custody.State{custody.StateCollected, custody.StateToManufacturing, custody.StateReleased, custody.StateToTreatment}[rng.IntN(4)])
		}
	}
	all, err := e.store.Chains(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, func(a, b custody.ChainInfo) int { return cmpCOI(a.COI, b.COI) })

	for _, id := range []string{"qa-par", "coord-h3", "qa1", "qa-none", "courier1", "admin1"} {
		u := e.users[id]
		t.Run(id, func(t *testing.T) {
			// What MayRead says, chain by chain.
			var visible []custody.ChainInfo
			counts, inFlight := map[custody.State]int{}, 0
			var issues []custody.COI
			for _, ci := range all {
				c, err := e.svc.Chain(e.ctx, ci.COI)
				if err != nil {
					t.Fatal(err)
				}
				ok, err := e.svc.MayRead(e.ctx, u, c)
				if err != nil {
					t.Fatal(err)
				}
				if !ok || ci.State.Access() {
					continue
				}
				visible = append(visible, ci)
				counts[ci.State]++
				if !ci.State.Terminal() {
					inFlight++
				}
				if len(c.OpenIssues()) > 0 {
					issues = append(issues, ci.COI)
				}
			}
			if id == "qa-par" && (len(visible) == 0 || len(visible) > len(all)/4) {
				t.Fatalf("qa-par reads %d of %d chains: the test wants a narrow user", len(visible), len(all))
			}
			for _, state := range append([]custody.State{""}, custody.States...) {
				var want []custody.COI
				for _, ci := range visible {
					if state == "" || ci.State == state {
						want = append(want, ci.COI)
					}
				}
				limit := 1 + rng.IntN(4)
				var got []custody.COI
				for after, pages := custody.COI(""), 0; ; pages++ {
					p, err := e.svc.ChainsFor(e.ctx, u, state, after, limit)
					if err != nil {
						t.Fatal(err)
					}
					if len(p.Chains) > limit || pages > len(all) {
						t.Fatalf("ChainsFor(%q): a page of %d (limit %d), page %d", state, len(p.Chains), limit, pages)
					}
					for _, ci := range p.Chains {
						got = append(got, ci.COI)
					}
					if after = p.Next; after == "" {
						break
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("ChainsFor(%q) in pages of %d lists %v; MayRead says %v", state, limit, got, want)
				}
				if !custody.MayUseConsole(u.Role) {
					continue
				}
				var listed []custody.COI
				for after, pages := "", 0; ; pages++ {
					v, err := e.svc.ConsoleFor(e.ctx, u, state, after, limit)
					if err != nil {
						t.Fatal(err)
					}
					if !mapsEqual(v.Counts, counts) || v.InFlight != inFlight {
						t.Fatalf("console %q: counts %v, in flight %d; MayRead says %v, %d", state, v.Counts, v.InFlight, counts, inFlight)
					}
					var got []custody.COI
					for _, c := range v.Issues {
						got = append(got, c.COI)
					}
					if !slices.Equal(got, issues) {
						t.Fatalf("console %q: open issues on %v; MayRead says %v", state, got, issues)
					}
					if pages > len(all) {
						t.Fatalf("console %q: %d pages", state, pages)
					}
					for _, r := range v.Chains {
						listed = append(listed, r.COI)
					}
					if after = v.Next; after == "" {
						break
					}
				}
				var wantTable []custody.COI
				for _, ci := range visible {
					if (state == "" && !ci.State.Terminal()) || ci.State == state {
						wantTable = append(wantTable, ci.COI)
					}
				}
				slices.SortFunc(listed, cmpCOI)
				if !slices.Equal(listed, wantTable) {
					t.Fatalf("console %q in pages of %d lists %v; MayRead says %v", state, limit, listed, wantTable)
				}
			}
		})
	}

	// Narrow users are paged from the index by sites once the first batch
	// of summaries leaves their page short: past the chains from before
	// the network (cois[:4]), a user who reads only those finds nothing
	// more, and one bound to PAR-1 (chains 0, 8, 16... of the network,
	// cois[4+i]) finds its infused chains after chain 0, both without
	// stepping over the store's summaries; the console of the latter reads less
	// than a quarter of them (a walk of every chain reads them all).
	for _, tc := range []struct {
		name string
		read func() error
	}{
		{"qa-none's chains after the old ones", func() error {
			_, err := e.svc.ChainsFor(e.ctx, e.users["qa-none"], "", cois[3], 2)
			return err
		}},
		{"qa-par's infused chains after chain 0", func() error {
			_, err := e.svc.ChainsFor(e.ctx, e.users["qa-par"], custody.StateInfused, cois[4], 2)
			return err
		}},
		{"qa-par's console", func() error {
			_, err := e.svc.ConsoleFor(e.ctx, e.users["qa-par"], custody.StateInfused, "", 2)
			return err
		}},
	} {
		counting.byState.Store(0)
		counting.bySites.Store(0)
		counting.siteCalls.Store(0)
		if err := tc.read(); err != nil {
			t.Fatal(err)
		}
		s, b, calls := counting.byState.Load(), counting.bySites.Load(), counting.siteCalls.Load()
		t.Logf("%s: %d summaries by state, %d by sites in %d pages, of %d chains", tc.name, s, b, calls, len(all))
		if calls == 0 || 4*(s+b) > int64(len(all)) {
			t.Fatalf("%s: %d summaries by state and %d by sites (%d pages) of %d chains; want the index by sites, and few summaries",
				tc.name, s, b, calls, len(all))
		}
	}
}

func cmpCOI(a, b custody.COI) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
