package boltstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody/boltstore"
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
	svc, st := verifyService(t, dir)
	generateVerifyStore(t, svc, st, 40, 12)
	ctx := context.Background()
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
