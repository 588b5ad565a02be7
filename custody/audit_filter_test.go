package custody_test

import (
	"errors"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

func TestAuditFilterValidate(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		f    custody.AuditFilter
		ok   bool
	}{
		{"empty", custody.AuditFilter{}, true},
		{"period", custody.AuditFilter{From: t0, To: t0.Add(time.Hour)}, true},
		{"open start", custody.AuditFilter{To: t0}, true},
		{"kind and code", custody.AuditFilter{Kind: custody.KindUser, Code: "u1"}, true},
		{"registry kind", custody.AuditFilter{Kind: custody.ObjectKind(custody.KindSite)}, true},
		{"to before from", custody.AuditFilter{From: t0, To: t0.Add(-time.Second)}, false},
		{"empty period", custody.AuditFilter{From: t0, To: t0}, false},
		{"unknown kind", custody.AuditFilter{Kind: "planet"}, false},
		{"code without kind", custody.AuditFilter{Code: "u1"}, false},
		{"negative limit", custody.AuditFilter{Limit: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Validate()
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, custody.ErrInvalid)) {
				t.Errorf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestAuditFilterPast(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f := custody.AuditFilter{To: t0}
	for at, want := range map[time.Duration]bool{
		-time.Hour: false, 0: false, custody.AuditClockSlack - time.Second: false, custody.AuditClockSlack: true,
	} {
		if got := f.Past(custody.AuditEntry{Time: t0.Add(at)}); got != want {
			t.Errorf("Past(to%+v) = %v, want %v", at, got, want)
		}
	}
	if (custody.AuditFilter{}).Past(custody.AuditEntry{Time: t0}) {
		t.Error("a filter without To is never past")
	}
}
