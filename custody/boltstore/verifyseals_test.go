package boltstore_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/boltstore/storegen"
)

// deleteReading deletes shipper's reading seq from the closed store in
// dir, as someone editing the file would, leaving its index entries.
func deleteReading(t *testing.T, dir, shipper string, seq uint64) {
	t.Helper()
	boltstore.DeleteReadingForTest(t, dir, shipper, seq)
}

// TestVerifyLedgerSinceSeals: over a real file of 40 chains whose two legs
// were received with their seals, verification recomputes the seal of
// every leg (on all CPUs) and names the receive record of the leg whose
// readings were changed, the earliest when several were; VerifyLedgerSince
// recomputes only the seals of legs received after its record, so a
// reading deleted from a leg received before it is left to the full
// verification, and one deleted from a leg received after it is caught.
func TestVerifyLedgerSinceSeals(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := storegen.Generate(ctx, dir, storegen.Config{Chains: 40, PerLeg: 12, Callers: 16}); err != nil {
		t.Fatal(err)
	}
	svc, st := verifyService(t, dir)
	chains, err := svc.Chains(ctx, "")
	if err != nil || len(chains) != 40 {
		t.Fatalf("%d chains, %v", len(chains), err)
	}
	// The receive records of each chain's legs, by shipper.
	receipts := map[string]uint64{}
	var lastFirst uint64 // the last first-leg receipt: every second leg's is after it
	for _, ci := range chains {
		c, err := svc.Chain(ctx, ci.COI)
		if err != nil || len(c.Legs) != 2 {
			t.Fatalf("chain %s: %d legs, %v", ci.COI, len(c.Legs), err)
		}
		for _, l := range c.Legs {
			if l.ReceiveSeq == 0 {
				t.Fatalf("chain %s leg %d not received", ci.COI, l.N)
			}
			receipts[l.Shipper] = l.ReceiveSeq
		}
		lastFirst = max(lastFirst, c.Legs[0].ReceiveSeq)
	}
	check := func(t *testing.T, since uint64, wantBad uint64, wantIn string) {
		t.Helper()
		svc, vs := verifyService(t, dir)
		defer vs.Close()
		rep, err := svc.VerifyLedgerSince(ctx, since)
		if err != nil {
			t.Fatal(err)
		}
		if wantBad == 0 {
			if !rep.OK {
				t.Fatalf("since %d: %+v, want OK", since, rep)
			}
			return
		}
		if rep.OK || rep.FirstBad != wantBad || !strings.Contains(rep.Problem, wantIn) || !strings.Contains(rep.Problem, "telemetry seal does not match") {
			t.Fatalf("since %d: %+v, want record %d failing with %q", since, rep, wantBad, wantIn)
		}
	}
	st.Close()
	t.Run("sound", func(t *testing.T) {
		check(t, 0, 0, "")
		check(t, lastFirst, 0, "")
	})
	// A reading of chain 17's first leg deleted.
	deleteReading(t, dir, "SHP-A000017", 5)
	t.Run("first leg changed", func(t *testing.T) {
		check(t, 0, receipts["SHP-A000017"], "leg 1")
		check(t, lastFirst, 0, "") // received before: not read again
	})
	// Then a reading of chain 3's second leg, and of chain 30's.
	deleteReading(t, dir, "SHP-B000030", 1)
	deleteReading(t, dir, "SHP-B000003", 12)
	t.Run("second leg changed", func(t *testing.T) {
		check(t, 0, receipts["SHP-A000017"], "leg 1")
		check(t, lastFirst, min(receipts["SHP-B000003"], receipts["SHP-B000030"]), "leg 2")
	})
}

// editReading rewrites shipper's reading seq in the closed store in dir
// with edit applied to its stored value, as someone editing the file
// would.
func editReading(t *testing.T, dir, shipper string, seq uint64, edit func(v []byte) []byte) {
	t.Helper()
	boltstore.EditReadingForTest(t, dir, shipper, seq, edit)
}

// TestVerifyLedgerChangedReading: a stored reading whose temperature was
// changed in the file (a bit of its integer flipped, or its scale) is
// caught by the seals hashed straight from the stored bytes, and named at
// its leg's receive record; restored, the ledger verifies again.
func TestVerifyLedgerChangedReading(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := storegen.Generate(ctx, dir, storegen.Config{Chains: 6, PerLeg: 12, Callers: 4}); err != nil {
		t.Fatal(err)
	}
	svc, st := verifyService(t, dir)
	receipt := func(coi custody.COI, leg int) uint64 {
		c, err := svc.Chain(ctx, coi)
		if err != nil {
			t.Fatal(err)
		}
		return c.Legs[leg-1].ReceiveSeq
	}
	chains, err := svc.Chains(ctx, "")
	if err != nil || len(chains) != 6 {
		t.Fatalf("%d chains, %v", len(chains), err)
	}
	// The chain whose second leg SHP-B000002 carried.
	var coi custody.COI
	for _, ci := range chains {
		c, err := svc.Chain(ctx, ci.COI)
		if err == nil && len(c.Legs) == 2 && c.Legs[1].Shipper == "SHP-B000002" {
			coi = ci.COI
		}
	}
	if coi == "" {
		t.Fatal("no chain with shipper SHP-B000002")
	}
	want := receipt(coi, 2)
	st.Close()
	verify := func() custody.Report {
		t.Helper()
		svc, vs := verifyService(t, dir)
		defer vs.Close()
		rep, err := svc.VerifyLedger(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := verify(); !rep.OK {
		t.Fatalf("sound store: %+v", rep)
	}
	for _, c := range []struct {
		name string
		edit func(v []byte) []byte
	}{
		{"a bit of the last value flipped", func(v []byte) []byte { v[len(v)-1] ^= 1 << 2; return v }},
		{"the value's scale changed", func(v []byte) []byte { v[len(v)-1] ^= 3; return v }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var orig []byte
			editReading(t, dir, "SHP-B000002", 4, func(v []byte) []byte { orig = bytes.Clone(v); return c.edit(v) })
			rep := verify()
			if rep.OK || rep.FirstBad != want || !strings.Contains(rep.Problem, "leg 2") || !strings.Contains(rep.Problem, "telemetry seal does not match") {
				t.Fatalf("%+v, want record %d failing for leg 2", rep, want)
			}
			editReading(t, dir, "SHP-B000002", 4, func([]byte) []byte { return orig })
			if rep := verify(); !rep.OK {
				t.Fatalf("restored: %+v", rep)
			}
		})
	}
}
