package storegen_test

import (
	"context"
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
	if err != nil || !rep.OK || rep.Records != 400 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	if n, err := s.ReadingsCount(ctx); err != nil || n != 560 {
		t.Fatalf("readings: %d, %v", n, err)
	}
	infused, err := s.Chains(ctx, custody.StateInfused)
	if err != nil || len(infused) != 40 {
		t.Fatalf("infused chains: %d, %v", len(infused), err)
	}
	recs, err := s.Records(ctx, infused[0].COI)
	if err != nil || len(recs) != 10 {
		t.Fatalf("records of %s: %d, %v", infused[0].COI, len(recs), err)
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
	s.Close()

	// A second Ensure finds the kept store and leaves it alone.
	fi, err := os.Stat(filepath.Join(dir, boltstore.FileName))
	if err != nil {
		t.Fatal(err)
	}
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
