package storegen_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
// COID_BENCH_READINGS readings a leg (default 66). Without it, it is
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
