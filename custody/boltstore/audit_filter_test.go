package boltstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestAuditFilter reads a real trail with each kind of filter: the
// period's ends (From inclusive, To exclusive), actor, kind, code and
// paging with After and Limit, and an entry whose clock stepped back a
// little still found by a period that stops reading early.
func TestAuditFilter(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	defer s.Close()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	add := func(at time.Time, actor string, kind custody.ObjectKind, code string) {
		t.Helper()
		_, err := s.AppendAudit(ctx, custody.AuditEntry{Time: at, Actor: actor, Kind: kind, Code: code,
			Action: custody.AuditUpdate, Reason: "r", New: custody.AuditValues(map[string]string{"v": code})})
		if err != nil {
			t.Fatal(err)
		}
	}
	site := custody.ObjectKind(custody.KindSite)
	add(t0, "admin1", custody.KindUser, "u1")                    // 1
	add(t0.Add(time.Hour), "admin2", site, "S1")                 // 2
	add(t0.Add(2*time.Hour), "admin1", site, "S2")               // 3
	add(t0.Add(3*time.Hour), "admin2", custody.KindUser, "u1")   // 4
	add(t0.Add(3*time.Hour-5*time.Minute), "admin1", site, "S1") // 5: clock stepped back
	add(t0.Add(10*time.Hour), "admin1", custody.KindUser, "u2")  // 6
	for _, tc := range []struct {
		name string
		f    custody.AuditFilter
		want []uint64
	}{
		{"all", custody.AuditFilter{}, []uint64{1, 2, 3, 4, 5, 6}},
		{"from inclusive", custody.AuditFilter{From: t0.Add(time.Hour)}, []uint64{2, 3, 4, 5, 6}},
		{"to exclusive", custody.AuditFilter{To: t0.Add(2 * time.Hour)}, []uint64{1, 2}},
		{"period", custody.AuditFilter{From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour)}, []uint64{2, 3, 5}},
		{"empty period", custody.AuditFilter{From: t0.Add(4 * time.Hour), To: t0.Add(5 * time.Hour)}, nil},
		{"actor", custody.AuditFilter{Actor: "admin2"}, []uint64{2, 4}},
		{"kind", custody.AuditFilter{Kind: site}, []uint64{2, 3, 5}},
		{"kind and code", custody.AuditFilter{Kind: site, Code: "S1"}, []uint64{2, 5}},
		{"user code", custody.AuditFilter{Kind: custody.KindUser, Code: "u1"}, []uint64{1, 4}},
		{"actor and period", custody.AuditFilter{Actor: "admin1", To: t0.Add(3 * time.Hour)}, []uint64{1, 3, 5}},
		{"first page", custody.AuditFilter{Limit: 2}, []uint64{1, 2}},
		{"next page", custody.AuditFilter{After: 2, Limit: 2}, []uint64{3, 4}},
		{"last page", custody.AuditFilter{After: 4, Limit: 2}, []uint64{5, 6}},
		{"past the end", custody.AuditFilter{After: 6, Limit: 2}, nil},
		{"filtered page", custody.AuditFilter{Kind: site, After: 2, Limit: 1}, []uint64{3}},
		{"newest", custody.AuditFilter{Limit: 2, Newest: true}, []uint64{5, 6}},
		{"nobody", custody.AuditFilter{Actor: "nobody"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := s.AuditEntries(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, e := range es {
				got = append(got, e.Seq)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
