package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// testSiteMappings checks that the site-name mappings are a registry like
// the others, keyed by the free text chains from before the network hold
// (spaces, dots, lower case), created once, changed only with their audit
// entry, listed in name order.
func testSiteMappings(t *testing.T, s Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	audit := func(name string, action custody.AuditAction, old, new string) custody.AuditEntry {
		a := custody.AuditEntry{Time: t0, Actor: "admin1", Kind: custody.ObjectKind(custody.KindSiteMapping), Code: name, Action: action,
			Reason: "migration", New: []byte(new)}
		if old != "" {
			a.Old = []byte(old)
		}
		return a
	}
	names := []string{"St. Mary Apheresis", "CellWorks NJ", "st elsewhere bmt (2nd floor)"}
	val := func(name, site string) string { return `{"name":"` + name + `","site":"` + site + `"}` }
	for _, n := range names {
		if err := s.CreateEntry(ctx, custody.KindSiteMapping, n, []byte(val(n, "S-01")), audit(n, custody.AuditCreate, "", val(n, "S-01"))); err != nil {
			t.Fatalf("create mapping %q: %v", n, err)
		}
	}
	if err := s.CreateEntry(ctx, custody.KindSiteMapping, names[0], []byte(val(names[0], "S-02")), audit(names[0], custody.AuditCreate, "", "{}")); !errors.Is(err, custody.ErrConflict) {
		t.Errorf("second create of a mapping: %v, want ErrConflict", err)
	}
	if _, err := s.Entry(ctx, custody.KindSite, names[0]); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("a mapping's name read as a site: %v, want ErrNotFound", err)
	}
	err := s.UpdateEntry(ctx, custody.KindSiteMapping, names[0], func(old []byte) ([]byte, custody.AuditEntry, error) {
		return []byte(val(names[0], "S-02")), audit(names[0], custody.AuditUpdate, string(old), val(names[0], "S-02")), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Entry(ctx, custody.KindSiteMapping, names[0]); err != nil || string(got) != val(names[0], "S-02") {
		t.Errorf("mapping after update: %s, %v", got, err)
	}
	all, err := s.Entries(ctx, custody.KindSiteMapping, "", 0)
	if err != nil || len(all) != 3 || string(all[0]) != val("CellWorks NJ", "S-01") {
		t.Errorf("mappings in name order: %q, %v", all, err)
	}
	if one, err := s.Entries(ctx, custody.KindSiteMapping, "", 1); err != nil || len(one) != 1 {
		t.Errorf("the first mapping alone: %d, %v", len(one), err)
	}
	trail, err := s.AuditEntries(ctx, custody.AuditFilter{Kind: custody.ObjectKind(custody.KindSiteMapping)})
	if err != nil || len(trail) != 4 || trail[3].Action != custody.AuditUpdate || string(trail[3].Old) != val(names[0], "S-01") {
		t.Errorf("mappings' audit trail: %+v, %v", trail, err)
	}
}
