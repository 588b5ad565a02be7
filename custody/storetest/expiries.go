package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/coid-project/coid/custody"
)

// testExpiryIndex: the store keeps an index of the registries' expiry
// dates (custody.QualificationExpiryIndex) in the registry write's
// transaction: each unsuspended site's accreditation (while accredited)
// and qualification, each unsuspended shipper's requalification, paged
// in order of date, kind, code and what, up to a date; an update moves
// or removes the entries, a suspension removes them; entries added
// between pages after the cursor are listed by the later pages, those
// before it are not, and none twice.
func testExpiryIndex(t *testing.T, s Store) {
	ctx := context.Background()
	idx, ok := s.(custody.QualificationExpiryIndex)
	if !ok {
		t.Fatal("the store keeps no expiry index (custody.QualificationExpiryIndex)")
	}
	site := func(code, zone, acc, accExpiry, qualExpiry string, suspended bool) []byte {
		return fmt.Appendf(nil, `{"code":%q,"time_zone":%q,"accreditation":{"status":%q,"expiry":%q},"qualification":{"expiry":%q},"suspended":%t}`,
			code, zone, acc, accExpiry, qualExpiry, suspended)
	}
	shipper := func(id, due string, suspended bool) []byte {
		return fmt.Appendf(nil, `{"id":%q,"requalification_due":%q,"suspended":%t}`, id, due, suspended)
	}
	audit := func(kind custody.RegistryKind, code string, v []byte) custody.AuditEntry {
		return custody.AuditEntry{Time: t0, Actor: "admin1", Kind: custody.ObjectKind(kind), Code: code, Action: custody.AuditCreate,
			Reason: "registered " + code, New: v}
	}
	create := func(kind custody.RegistryKind, code string, v []byte) {
		t.Helper()
		if err := s.CreateEntry(ctx, kind, code, v, audit(kind, code, v)); err != nil {
			t.Fatalf("create %s %s: %v", kind, code, err)
		}
	}
	update := func(kind custody.RegistryKind, code string, v []byte) {
		t.Helper()
		a := audit(kind, code, v)
		a.Action = custody.AuditUpdate
		if err := s.UpdateEntry(ctx, kind, code, func(old []byte) ([]byte, custody.AuditEntry, error) {
			a.Old = old
			return v, a, nil
		}); err != nil {
			t.Fatalf("update %s %s: %v", kind, code, err)
		}
	}
	create(custody.KindSite, "S-1", site("S-1", "Europe/Paris", "accredited", "2027-03-01", "2027-01-15", false))
	create(custody.KindSite, "S-2", site("S-2", "America/New_York", "pending", "2027-01-01", "2027-01-15", false))
	create(custody.KindSite, "S-3", site("S-3", "UTC", "accredited", "2027-01-20", "", true)) // suspended
	create(custody.KindShipper, "SH-1", shipper("SH-1", "2027-01-15", false))
	create(custody.KindShipper, "SH-2", shipper("SH-2", "2026-12-01", false))
	create(custody.KindProduct, "P-1", []byte(`{"code":"P-1","expiry":"2027-01-01"}`))

	all := func(until string, limit int, between func(page int)) []string {
		t.Helper()
		var got []string
		var after custody.QualificationExpiry
		for p := 0; ; p++ {
			page, err := idx.QualificationExpiries(ctx, until, after, limit)
			if err != nil {
				t.Fatalf("QualificationExpiries(%s, %+v, %d): %v", until, after, limit, err)
			}
			for _, e := range page {
				if e.Date > until {
					t.Fatalf("QualificationExpiries(until %s) lists %+v", until, e)
				}
				got = append(got, e.Cursor()+" "+e.TimeZone)
			}
			if len(page) < limit {
				return got
			}
			after = page[len(page)-1]
			if between != nil {
				between(p)
			}
		}
	}
	want := []string{
		"2026-12-01/shipper/SH-2/requalification ",
		"2027-01-15/shipper/SH-1/requalification ",
		"2027-01-15/site/S-1/qualification Europe/Paris",
		"2027-01-15/site/S-2/qualification America/New_York",
		"2027-03-01/site/S-1/accreditation Europe/Paris",
	}
	if got := all("9999-12-31", 2, nil); !slices.Equal(got, want) {
		t.Fatalf("the index, 2 a page:\n%q\nwant\n%q", got, want)
	}
	if got := all("2027-01-15", 10, nil); !slices.Equal(got, want[:4]) {
		t.Fatalf("the index until 2027-01-15:\n%q\nwant\n%q", got, want[:4])
	}

	// S-1's qualification renewed, SH-2 suspended, S-3 resumed.
	update(custody.KindSite, "S-1", site("S-1", "Europe/Paris", "accredited", "2027-03-01", "2028-01-15", false))
	update(custody.KindShipper, "SH-2", shipper("SH-2", "2026-12-01", true))
	update(custody.KindSite, "S-3", site("S-3", "UTC", "accredited", "2027-01-20", "", false))
	want = []string{
		"2027-01-15/shipper/SH-1/requalification ",
		"2027-01-15/site/S-2/qualification America/New_York",
		"2027-01-20/site/S-3/accreditation UTC",
		"2027-03-01/site/S-1/accreditation Europe/Paris",
		"2028-01-15/site/S-1/qualification Europe/Paris",
	}
	if got := all("9999-12-31", 2, nil); !slices.Equal(got, want) {
		t.Fatalf("the index after the updates:\n%q\nwant\n%q", got, want)
	}

	// Entries added between pages: before the cursor not listed, after it
	// listed, nothing twice.
	n := 0
	got := all("9999-12-31", 2, func(p int) {
		if p != 0 {
			return
		}
		n++
		create(custody.KindShipper, "SH-0", shipper("SH-0", "2026-01-01", false)) // before the cursor
		create(custody.KindShipper, "SH-9", shipper("SH-9", "2027-02-01", false)) // after it
	})
	want = []string{
		"2027-01-15/shipper/SH-1/requalification ",
		"2027-01-15/site/S-2/qualification America/New_York",
		"2027-01-20/site/S-3/accreditation UTC",
		"2027-02-01/shipper/SH-9/requalification ",
		"2027-03-01/site/S-1/accreditation Europe/Paris",
		"2028-01-15/site/S-1/qualification Europe/Paris",
	}
	if n != 1 || !slices.Equal(got, want) {
		t.Fatalf("the index with entries added between pages:\n%q\nwant\n%q", got, want)
	}
	if _, err := idx.QualificationExpiries(ctx, "9999-12-31", custody.QualificationExpiry{}, 0); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("QualificationExpiries with limit 0: %v, want ErrInvalid", err)
	}
}
