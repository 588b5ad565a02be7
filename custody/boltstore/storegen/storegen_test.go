package storegen_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/boltstore/storegen"
)

// TestGenerate builds a small store and checks what the benchmarks rely
// on: every chain infused, both legs received with their seals, the
// readings stored, and the whole ledger verifying as coid verify checks
// it; Ensure then reuses the kept store instead of building it again.
func TestGenerate(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	cfg := storegen.Config{Chains: 40, PerLeg: 7, Callers: 8, Cohort: 16}
	dir, st, err := storegen.Ensure(ctx, root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if dir != storegen.Dir(root, 40, 7) || st.Chains != 40 || st.Records != 400 || st.Readings != 560 || st.FileBytes <= 0 {
		t.Fatalf("dir %s, stats %+v", dir, st)
	}
	checkStore(t, dir, 40, 7)
	fi, err := os.Stat(filepath.Join(dir, boltstore.FileName))
	if err != nil {
		t.Fatal(err)
	}

	// A second Ensure finds the kept store and leaves it alone.
	dir2, st2, err := storegen.Ensure(ctx, root, cfg)
	if err != nil || dir2 != dir || st2 != st {
		t.Fatalf("again: %s %+v %v", dir2, st2, err)
	}
	fi2, err := os.Stat(filepath.Join(dir, boltstore.FileName))
	if err != nil || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Fatalf("the kept store was rewritten: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(root, "*partial*")); len(m) != 0 {
		t.Fatalf("left behind: %v", m)
	}
}

// TestGenerateCohorts: whatever the sizes of the cohorts and however far
// the enroller runs ahead of them, every chain is walked to the end.
func TestGenerateCohorts(t *testing.T) {
	for _, c := range []struct{ chains, cohort, callers int }{{1, 1, 1}, {9, 1, 4}, {30, 7, 3}, {32, 8, 64}} {
		t.Run(fmt.Sprintf("chains=%d,cohort=%d", c.chains, c.cohort), func(t *testing.T) {
			dir := t.TempDir()
			st, err := storegen.Generate(context.Background(), dir, storegen.Config{Chains: c.chains, PerLeg: 3, Cohort: c.cohort, Callers: c.callers})
			if err != nil || st.Records != 10*c.chains || st.Readings != 6*c.chains {
				t.Fatalf("%+v, %v", st, err)
			}
			checkStore(t, dir, c.chains, 3)
		})
	}
}

// TestGenerateNetwork builds a store with a network of 20 hospitals and
// checks what the benchmarks of a site-scoped user rely on: the sites
// registered, chain i at hospital i % 20 and plant i % 3, the shippers of
// the fleet reused by later cohorts with their readings numbered on, the
// scoped QA user reading exactly its hospital's chains (and the
// manufacturer's QA every chain), and the file and ledger checking as
// coid verify checks them. The kept directory is not the network-less
// store's.
func TestGenerateNetwork(t *testing.T) {
	ctx := context.Background()
	const chains, hospitals, perLeg = 200, 20, 3
	cfg := storegen.Config{Chains: chains, PerLeg: perLeg, Callers: 16, Cohort: 64, Network: hospitals}
	root := t.TempDir()
	dir, st, err := storegen.Ensure(ctx, root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if dir == storegen.Dir(root, chains, perLeg) || dir != cfg.Dir(root) || st.Chains != chains || st.Readings != 2*perLeg*chains {
		t.Fatalf("dir %s, stats %+v", dir, st)
	}
	checkStore(t, dir, chains, perLeg)

	s, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CheckFile(ctx); err != nil {
		t.Fatalf("CheckFile: %v", err)
	}
	svc, err := storegen.NewService(s, storegen.NewClock(cfg.End()).Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	user := func(id string) custody.User {
		u, err := svc.User(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	sites, err := svc.Sites(ctx, user(storegen.Admin), "", 1000)
	if err != nil || len(sites) != hospitals+storegen.Plants {
		t.Fatalf("registered sites: %d, %v", len(sites), err)
	}
	for _, id := range []string{cfg.ShipperOf(63, 0), cfg.ShipperOf(199, 1)} {
		if _, err := svc.Shipper(ctx, user(storegen.Admin), id); err != nil {
			t.Errorf("shipper %s: %v", id, err)
		}
	}
	if cfg.ShipperOf(5, 1) != cfg.ShipperOf(69, 1) {
		t.Errorf("chains 5 and 69 (cohorts 0 and 1) do not share their fleet's shipper")
	}

	// Every chain, in enrollment order (the shipper of its first leg
	// tells it: chain i's cohort and place in it), at its sites.
	all, err := s.Chains(ctx, "")
	if err != nil || len(all) != chains {
		t.Fatalf("chains: %d, %v", len(all), err)
	}
	hospital0 := map[custody.COI]bool{}
	seen := map[int]bool{}
	for _, ci := range all {
		c, err := svc.Chain(ctx, ci.COI)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Legs) != 2 {
			t.Fatalf("%s: %d legs", ci.COI, len(c.Legs))
		}
		i := -1
		for n := range chains {
			if cfg.ShipperOf(n, 0) == c.Legs[0].Shipper && c.Legs[0].ShippedAt.Equal(legStart(cfg, n)) {
				i = n
			}
		}
		if i < 0 || seen[i] {
			t.Fatalf("%s: leg 1 in %s at %s is no one chain's", ci.COI, c.Legs[0].Shipper, c.Legs[0].ShippedAt)
		}
		seen[i] = true
		if c.Sites != cfg.Sites(i) || c.Legs[1].Shipper != cfg.ShipperOf(i, 1) {
			t.Errorf("chain %d (%s): sites %+v, second leg in %s", i, ci.COI, c.Sites, c.Legs[1].Shipper)
		}
		if c.Sites.Collection == storegen.HospitalSite(0) {
			hospital0[ci.COI] = true
		}
	}
	if len(hospital0) != chains/hospitals {
		t.Fatalf("%d chains at hospital 0, want %d", len(hospital0), chains/hospitals)
	}

	// The scoped QA user reads hospital 0's chains and no other; the
	// manufacturer's QA reads them all.
	for _, c := range []struct {
		user string
		want int
	}{{storegen.ScopedQA, chains / hospitals}, {"qa1", chains}} {
		u := user(c.user)
		page, err := svc.ChainsFor(ctx, u, "", "", custody.MaxChainPage)
		if err != nil || len(page.Chains) != c.want {
			t.Fatalf("%s: %d chains, %v; want %d", c.user, len(page.Chains), err, c.want)
		}
		for _, ci := range page.Chains {
			if c.user == storegen.ScopedQA && !hospital0[ci.COI] {
				t.Errorf("%s reads %s of %s", c.user, ci.COI, ci.Sites.Collection)
			}
		}
		for _, ci := range all {
			_, err := svc.ReadChain(ctx, u, ci.COI)
			if may := c.user == "qa1" || hospital0[ci.COI]; may != (err == nil) || !may && !errors.Is(err, custody.ErrNotFound) {
				t.Errorf("%s reads %s (%s): %v", c.user, ci.COI, ci.Sites.Collection, err)
			}
		}
	}
}

// legStart is when chain i of the store of cfg left on its first leg: its
// cohort's start.
func legStart(cfg storegen.Config, i int) time.Time {
	perLeg := time.Duration(cfg.PerLeg+1) * time.Minute
	return storegen.T0.Add(time.Duration(i/cfg.Cohort) * (2*perLeg + time.Minute))
}

// checkStore checks that the store in dir holds chains chains, each
// infused, with its ten records and both legs received with their seals,
// perLeg readings a leg, and that the ledger verifies.
func checkStore(t *testing.T, dir string, chains, perLeg int) {
	t.Helper()
	ctx := context.Background()
	s, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	svc, err := storegen.NewService(s, storegen.NewClock(storegen.T0).Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := svc.VerifyLedger(ctx)
	if err != nil || !rep.OK || rep.Records != uint64(10*chains) {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	if n, err := s.ReadingsCount(ctx); err != nil || n != 2*perLeg*chains {
		t.Fatalf("readings: %d, %v", n, err)
	}
	infused, err := s.Chains(ctx, custody.StateInfused)
	if err != nil || len(infused) != chains {
		t.Fatalf("infused chains: %d, %v", len(infused), err)
	}
	for _, ci := range infused {
		recs, err := s.Records(ctx, ci.COI)
		if err != nil || len(recs) != 10 {
			t.Fatalf("records of %s: %d, %v", ci.COI, len(recs), err)
		}
		seals := 0
		for _, r := range recs {
			if r.Step == custody.StepReceive && strings.Contains(string(r.Data), `"telemetry"`) {
				seals++
			}
		}
		if seals != 2 {
			t.Fatalf("%d receipts with a seal, want 2: %+v", seals, recs)
		}
	}
}

// TestKeptStores generates the kept stores the benchmarks use ahead of
// them, when COID_BENCH_STORE names a directory: one store for each size
// in COID_BENCH_CHAINS (comma-separated, default 1000,10000,100000), with
// COID_BENCH_READINGS readings a leg (default 66) and a network of
// COID_BENCH_NETWORK hospitals (default 0: none). Without it, it is
// skipped.
func TestKeptStores(t *testing.T) {
	root, cfgs, err := storegen.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if root == "" {
		t.Skip(storegen.EnvStore + " not set")
	}
	for _, cfg := range cfgs {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		dir, st, err := storegen.Ensure(context.Background(), root, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d chains, %d records, %d readings, %d bytes (%.1f a reading), generated in %s (CPU %s)",
			dir, st.Chains, st.Records, st.Readings, st.FileBytes, float64(st.FileBytes)/float64(st.Readings), st.Took, st.CPU)
	}
}
