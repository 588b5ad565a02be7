package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestExpiryIndexBuiltAndChecked: a database whose registries were
// written before the expiry index was kept gets its rows at the next
// open; Check names a row missing from the index and one that no
// registry entry gives.
func TestExpiryIndexBuiltAndChecked(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	s := open(t, url)
	v := []byte(`{"code":"S-1","time_zone":"Europe/Paris","accreditation":{"status":"accredited","expiry":"2027-03-01"},"qualification":{"expiry":"2027-01-15"}}`)
	if err := s.CreateEntry(ctx, custody.KindSite, "S-1", v, custody.AuditEntry{Time: time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC), Actor: "admin1", Kind: custody.ObjectKind(custody.KindSite),
		Code: "S-1", Action: custody.AuditCreate, Reason: "registered", New: v}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	// As an older store: no rows, not built.
	exec(`DELETE FROM qualification_expiries; DELETE FROM index_builds WHERE name = 'qualification_expiries'`)
	s = open(t, url)
	page, err := s.QualificationExpiries(ctx, "9999-12-31", custody.QualificationExpiry{}, 10)
	if err != nil || len(page) != 2 || page[0].Cursor() != "2027-01-15/site/S-1/qualification" || page[1].TimeZone != "Europe/Paris" {
		t.Fatalf("the rebuilt index: %+v, %v", page, err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check of the rebuilt index: %v", err)
	}
	exec(`DELETE FROM qualification_expiries WHERE what = 'accreditation'`)
	if err := s.Check(ctx); !errors.Is(err, custody.ErrChainBroken) || !strings.Contains(err.Error(), "accreditation on 2027-03-01 is missing") {
		t.Fatalf("Check with a row missing: %v", err)
	}
	exec(`INSERT INTO qualification_expiries VALUES ('2027-03-01', 'site', 'S-1', 'accreditation', 'Europe/Paris'),
		('2027-04-01', 'site', 'S-9', 'qualification', 'UTC')`)
	if err := s.Check(ctx); !errors.Is(err, custody.ErrChainBroken) || !strings.Contains(err.Error(), "S-9's qualification on 2027-04-01") {
		t.Fatalf("Check with an extra row: %v", err)
	}
}
