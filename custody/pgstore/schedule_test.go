package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
)

// TestBookingAcrossInstances: 64 bookings of a plant's 10 slots a day,
// sent at once through two stores on one database (two coid instances),
// give exactly 10 claims; the others are refused with ErrSlotTaken and
// write nothing, and the counts add up (Check).
func TestBookingAcrossInstances(t *testing.T) {
	const clients, slots = 64, 10
	ctx := context.Background()
	url := pgtest.Schema(t)
	stores := []*pgstore.Store{open(t, url), open(t, url)}
	c := custody.Capacity{Site: "PLANT-1", Slots: map[string]int{"KYM": slots}}
	v, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	err = stores[0].UpdateCapacity(ctx, c.Site, func(old []byte) ([]byte, custody.AuditEntry, error) {
		return v, custody.AuditEntry{Time: at, Actor: "admin1", Kind: custody.KindCapacity, Code: c.Site,
			Action: custody.AuditCapacitySet, Reason: "plant opens", Old: old, New: v}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= clients; i++ {
		if _, err := stores[i%2].Append(ctx, storetest.Draft(storetest.COI(i), i, true, 0)); err != nil {
			t.Fatal(err)
		}
	}
	claim := []custody.Claim{{Site: "PLANT-1", Date: "2026-12-01", Product: "KYM"}}
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for i := 1; i <= clients; i++ {
		wg.Go(func() {
			d := storetest.Draft(storetest.COI(i), 1000+i, false, 1)
			d.Claims = claim
			_, errs[i-1] = stores[i%2].Append(ctx, d)
		})
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, custody.ErrSlotTaken):
			t.Errorf("client %d: %v", i+1, err)
		}
	}
	if ok != slots {
		t.Fatalf("%d bookings succeeded, want %d", ok, slots)
	}
	held, err := stores[1].SiteClaims(ctx, "PLANT-1", "2026-12-01", "2026-12-01", 0)
	if err != nil || len(held) != slots {
		t.Fatalf("SiteClaims = %d claims, %v; want %d", len(held), err, slots)
	}
	seq, _, err := stores[0].Head(ctx)
	if err != nil || seq != clients+slots {
		t.Fatalf("head %d, %v; want %d records (the refused wrote none)", seq, err, clients+slots)
	}
	if err := stores[0].Check(ctx); err != nil {
		t.Fatal(err)
	}
}
