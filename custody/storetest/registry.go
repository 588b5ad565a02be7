package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/coid-project/coid/custody"
)

// testRegistry checks the registry contract: entries are created once per
// kind and code, updated only through UpdateEntry with their audit entry
// in the same write, listed in code order with paging, and every change
// leaves exactly one audit entry, numbered from 1 in order, sealed and
// linked to the one before (custody.VerifyAuditTrail).
func testRegistry(t *testing.T, s Store) {
	ctx := context.Background()
	audit := func(code string, action custody.AuditAction, old, new string) custody.AuditEntry {
		a := custody.AuditEntry{Time: t0, Actor: "admin1", Kind: custody.ObjectKind(custody.KindSite), Code: code, Action: action, Reason: "because " + code, New: []byte(new)}
		if old != "" {
			a.Old = []byte(old)
		}
		return a
	}
	val := func(code string, n int) string { return fmt.Sprintf(`{"code":%q,"n":%d}`, code, n) }

	// Created in a shuffled order, listed in code order.
	codes := []string{"S-03", "S-01", "S-05", "S-02", "S-04"}
	for _, c := range codes {
		if err := s.CreateEntry(ctx, custody.KindSite, c, []byte(val(c, 1)), audit(c, custody.AuditCreate, "", val(c, 1))); err != nil {
			t.Fatalf("create %s: %v", c, err)
		}
	}
	if err := s.CreateEntry(ctx, custody.KindSite, "S-01", []byte(val("S-01", 9)), audit("S-01", custody.AuditCreate, "", val("S-01", 9))); !errors.Is(err, custody.ErrConflict) {
		t.Errorf("second create of S-01: %v, want ErrConflict", err)
	}
	// The same code in another registry is another entry.
	if err := s.CreateEntry(ctx, custody.KindProduct, "S-01", []byte(`{"p":1}`), audit("S-01", custody.AuditCreate, "", `{"p":1}`)); err != nil {
		t.Errorf("product S-01 beside site S-01: %v", err)
	}
	if err := s.CreateEntry(ctx, custody.RegistryKind("planet"), "X", []byte(`{}`), audit("X", custody.AuditCreate, "", `{}`)); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("create in an unknown registry: %v, want ErrInvalid", err)
	}
	if _, err := s.Entry(ctx, custody.KindSite, "S-99"); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("Entry of an unknown code: %v, want ErrNotFound", err)
	}
	if _, err := s.Entry(ctx, custody.KindShipper, "S-01"); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("Entry of a code of another registry: %v, want ErrNotFound", err)
	}
	got, err := s.Entry(ctx, custody.KindSite, "S-03")
	if err != nil || string(got) != val("S-03", 1) {
		t.Errorf("Entry S-03 = %s, %v; want %s", got, err, val("S-03", 1))
	}

	// Paging.
	var listed []string
	after := ""
	for {
		page, err := s.Entries(ctx, custody.KindSite, after, 2)
		if err != nil {
			t.Fatalf("Entries after %q: %v", after, err)
		}
		if len(page) > 2 {
			t.Fatalf("Entries limit 2 returned %d", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, v := range page {
			listed = append(listed, string(v))
		}
		after = fmt.Sprintf("S-%02d", len(listed))
	}
	want := []string{val("S-01", 1), val("S-02", 1), val("S-03", 1), val("S-04", 1), val("S-05", 1)}
	if fmt.Sprint(listed) != fmt.Sprint(want) {
		t.Errorf("paged entries %v, want %v", listed, want)
	}
	all, err := s.Entries(ctx, custody.KindSite, "", 0)
	if err != nil || len(all) != 5 {
		t.Errorf("Entries limit 0 = %d entries, %v; want all 5", len(all), err)
	}
	if rest, err := s.Entries(ctx, custody.KindSite, "S-025", 0); err != nil || len(rest) != 3 {
		t.Errorf("Entries after an unregistered code S-025 = %d, %v; want S-03..S-05", len(rest), err)
	}
	if none, err := s.Entries(ctx, custody.KindShipper, "", 0); err != nil || len(none) != 0 {
		t.Errorf("empty registry lists %d, %v", len(none), err)
	}

	// Update: the stored value goes to fn, the new one and its audit entry
	// are stored together; an error of fn writes nothing.
	err = s.UpdateEntry(ctx, custody.KindSite, "S-02", func(old []byte) ([]byte, custody.AuditEntry, error) {
		if string(old) != val("S-02", 1) {
			t.Errorf("fn got %s, want %s", old, val("S-02", 1))
		}
		return []byte(val("S-02", 2)), audit("S-02", custody.AuditUpdate, string(old), val("S-02", 2)), nil
	})
	if err != nil {
		t.Fatalf("update S-02: %v", err)
	}
	refuse := errors.New("refused by fn")
	err = s.UpdateEntry(ctx, custody.KindSite, "S-02", func(old []byte) ([]byte, custody.AuditEntry, error) {
		return []byte(val("S-02", 3)), audit("S-02", custody.AuditUpdate, string(old), val("S-02", 3)), refuse
	})
	if !errors.Is(err, refuse) {
		t.Errorf("update whose fn fails: %v, want fn's error", err)
	}
	if got, _ := s.Entry(ctx, custody.KindSite, "S-02"); string(got) != val("S-02", 2) {
		t.Errorf("S-02 after a refused update = %s, want %s", got, val("S-02", 2))
	}
	if err := s.UpdateEntry(ctx, custody.KindSite, "S-77", func(old []byte) ([]byte, custody.AuditEntry, error) {
		t.Error("fn called for an unknown entry")
		return old, custody.AuditEntry{}, nil
	}); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("update of an unknown entry: %v, want ErrNotFound", err)
	}

	// Concurrent creates of one code: one wins, one audit entry.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.CreateEntry(ctx, custody.KindOrganisation, "RACE", []byte(fmt.Sprintf(`{"n":%d}`, i)), audit("RACE", custody.AuditCreate, "", "{}"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, custody.ErrConflict):
				conflicts++
			default:
				t.Errorf("concurrent create: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || conflicts != 7 {
		t.Errorf("8 concurrent creates of one code: %d won, %d conflicts; want 1 and 7", wins, conflicts)
	}

	// The trail: 5 site creates, the product, the update, the race's
	// winner; numbered 1.. in order, nothing for refused changes.
	trail, err := s.AuditEntries(ctx, custody.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(trail) != 8 {
		t.Fatalf("audit trail has %d entries, want 8: %+v", len(trail), trail)
	}
	for i, a := range trail {
		if a.Seq != uint64(i+1) {
			t.Errorf("audit entry %d has Seq %d", i, a.Seq)
		}
	}
	if err := custody.VerifyAuditTrail(trail); err != nil {
		t.Errorf("the trail is not sealed and linked (custody.SealAuditEntry): %v", err)
	}
	up := trail[6]
	if up.Action != custody.AuditUpdate || up.Code != "S-02" || string(up.Old) != val("S-02", 1) || string(up.New) != val("S-02", 2) ||
		up.Reason != "because S-02" || up.Actor != "admin1" || !up.Time.Equal(t0) || up.Kind != custody.ObjectKind(custody.KindSite) {
		t.Errorf("update's audit entry %+v (old %s, new %s)", up, up.Old, up.New)
	}
	if trail[0].Old != nil {
		t.Errorf("a create's audit entry has an old value: %s", trail[0].Old)
	}
	page, err := s.AuditEntries(ctx, custody.AuditFilter{After: 6, Limit: 1})
	if err != nil || len(page) != 1 || page[0].Seq != 7 {
		t.Errorf("AuditEntries(after 6, limit 1) = %+v, %v; want entry 7", page, err)
	}
	if rest, err := s.AuditEntries(ctx, custody.AuditFilter{After: 8}); err != nil || len(rest) != 0 {
		t.Errorf("AuditEntries after the last = %d entries, %v", len(rest), err)
	}
}
