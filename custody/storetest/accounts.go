package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// testAccounts is the conformance of custody.AccountStore: a change and
// its audit entry are stored together or not at all; audit entries get
// increasing sequence numbers and are filtered by object and limited to
// the newest; tokens are listed with their times (never their hashes),
// touched, and revoked by ID at once, all or nothing.
func testAccounts(t *testing.T, s Store) {
	ctx := context.Background()
	tok := func(n int) custody.Hash { return custody.TokenHash(fmt.Sprintf("coid_account_token_%d", n)) }
	u := custody.User{ID: "nurse1", Name: "Ana Nurse", Role: custody.RoleNurse, PasswordHash: "$argon2id$stub", Created: t0}
	if err := s.CreateUser(ctx, u, tok(1)); err != nil {
		t.Fatal(err)
	}
	entry := func(action custody.AuditAction, at time.Time) custody.AuditEntry {
		return custody.AuditEntry{Time: at, Actor: "admin1", Action: action, Kind: custody.KindUser, Code: "nurse1", Reason: "test",
			Old: custody.AuditValues(map[string]string{"disabled": "false"}), New: custody.AuditValues(map[string]string{"disabled": "true"})}
	}

	// ChangeUser: the change and its entry, with the user before and after.
	var seenBefore, seenAfter custody.User
	got, err := s.ChangeUser(ctx, "nurse1", func(x *custody.User) error {
		x.Disabled, x.MustChangePassword, x.PasswordHistory = true, true, []string{"$argon2id$old"}
		return nil
	}, func(before, after custody.User) custody.AuditEntry {
		seenBefore, seenAfter = before, after
		return entry(custody.AuditUserDisable, t0.Add(time.Minute))
	})
	if err != nil || !got.Disabled || !got.MustChangePassword || len(got.PasswordHistory) != 1 {
		t.Fatalf("ChangeUser: %+v %v", got, err)
	}
	if seenBefore.Disabled || !seenAfter.Disabled || seenBefore.PasswordHash != "" || seenAfter.PasswordHistory != nil {
		t.Fatalf("audit saw before %+v after %+v (without password material)", seenBefore, seenAfter)
	}
	if x, _ := s.User(ctx, "nurse1"); !x.Disabled || len(x.PasswordHistory) != 1 || x.PasswordHash != u.PasswordHash {
		t.Fatalf("stored after ChangeUser: %+v", x)
	}
	// A failing fn, or an invalid entry, stores neither.
	boom := errors.New("refused")
	if _, err := s.ChangeUser(ctx, "nurse1", func(x *custody.User) error { x.Disabled = false; return boom },
		func(b, a custody.User) custody.AuditEntry { return entry(custody.AuditUserEnable, t0) }); !errors.Is(err, boom) {
		t.Fatalf("failing fn: %v", err)
	}
	if _, err := s.ChangeUser(ctx, "nurse1", func(x *custody.User) error { x.Disabled = false; return nil },
		func(b, a custody.User) custody.AuditEntry { return custody.AuditEntry{} }); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("invalid entry: %v", err)
	}
	if x, _ := s.User(ctx, "nurse1"); !x.Disabled {
		t.Fatal("a refused ChangeUser changed the user")
	}
	if _, err := s.ChangeUser(ctx, "nobody", func(*custody.User) error { return nil },
		func(b, a custody.User) custody.AuditEntry { return entry(custody.AuditUserEnable, t0) }); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	all, err := s.AuditEntries(ctx, custody.AuditFilter{})
	if err != nil || len(all) != 1 || all[0].Seq != 1 || all[0].Action != custody.AuditUserDisable || !all[0].Time.Equal(t0.Add(time.Minute)) ||
		auditValue(all[0].New, "disabled") != "true" || all[0].Reason != "test" {
		t.Fatalf("audit after one change: %+v %v", all, err)
	}

	// AppendAudit: sequence, filter, limit; invalid entries refused.
	if _, err := s.AppendAudit(ctx, custody.AuditEntry{Time: t0, Action: "x", Kind: custody.KindUser, Code: "y"}); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("entry without actor: %v", err)
	}
	other := entry(custody.AuditUserAdd, t0.Add(2*time.Minute))
	other.Code = "nurse2"
	e2, err := s.AppendAudit(ctx, other)
	if err != nil || e2.Seq != 2 {
		t.Fatalf("AppendAudit: %+v %v", e2, err)
	}
	if e3, err := s.AppendAudit(ctx, entry(custody.AuditUserUnlock, t0.Add(3*time.Minute))); err != nil || e3.Seq != 3 {
		t.Fatalf("AppendAudit: %+v %v", e3, err)
	}
	if l, _ := s.AuditEntries(ctx, custody.AuditFilter{Kind: custody.KindUser, Code: "nurse1"}); len(l) != 2 || l[0].Seq != 1 || l[1].Seq != 3 {
		t.Fatalf("filtered: %+v", l)
	}
	if l, _ := s.AuditEntries(ctx, custody.AuditFilter{Limit: 2, Newest: true}); len(l) != 2 || l[0].Seq != 2 || l[1].Seq != 3 {
		t.Fatalf("limited to the newest: %+v", l)
	}

	// Tokens: the first one's time is the user's creation; more with times.
	if err := s.AddTokenAt(ctx, "nurse1", tok(2), t0.Add(time.Hour), entry(custody.AuditTokenIssue, t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := s.AddTokenAt(ctx, "nobody", tok(3), t0, entry(custody.AuditTokenIssue, t0)); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("token for unknown user: %v", err)
	}
	if _, err := s.UserByToken(ctx, tok(3)); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("refused token stored: %v", err)
	}
	toks, err := s.Tokens(ctx, "nurse1")
	if err != nil || len(toks) != 2 || toks[0].ID != custody.TokenID(tok(1)) || !toks[0].Created.Equal(t0) ||
		toks[1].ID != custody.TokenID(tok(2)) || !toks[1].Created.Equal(t0.Add(time.Hour)) || toks[0].User != "nurse1" {
		t.Fatalf("Tokens: %+v %v", toks, err)
	}
	if _, err := s.Tokens(ctx, "nobody"); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("tokens of unknown user: %v", err)
	}
	used := t0.Add(2 * time.Hour)
	if err := s.TouchToken(ctx, tok(2), used); err != nil {
		t.Fatal(err)
	}
	if info, err := s.Token(ctx, tok(2)); err != nil || !info.LastUsed.Equal(used) || !info.Created.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Token after touch: %+v %v", info, err)
	}
	if err := s.TouchToken(ctx, tok(9), used); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("touch unknown: %v", err)
	}

	// RevokeTokens: all named or none; the entry sees what was revoked.
	n := len(mustAudit(t, s))
	if err := s.RevokeTokens(ctx, "nurse1", []string{custody.TokenID(tok(2)), "0123456789abcdef"},
		func([]custody.TokenInfo) custody.AuditEntry { return entry(custody.AuditTokenRevoke, used) }); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("revoke with an unknown ID: %v", err)
	}
	if _, err := s.UserByToken(ctx, tok(2)); err != nil || len(mustAudit(t, s)) != n {
		t.Fatalf("a refused revoke revoked or audited: %v", err)
	}
	var saw []custody.TokenInfo
	if err := s.RevokeTokens(ctx, "nurse1", []string{custody.TokenID(tok(2))},
		func(r []custody.TokenInfo) custody.AuditEntry { saw = r; return entry(custody.AuditTokenRevoke, used) }); err != nil {
		t.Fatal(err)
	}
	if len(saw) != 1 || saw[0].ID != custody.TokenID(tok(2)) || !saw[0].LastUsed.Equal(used) {
		t.Fatalf("audit saw %+v", saw)
	}
	if _, err := s.UserByToken(ctx, tok(2)); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("revoked token still authenticates: %v", err)
	}
	if _, err := s.Token(ctx, tok(2)); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("revoked token's metadata: %v", err)
	}
	if l := mustAudit(t, s); len(l) != n+1 || l[n].Action != custody.AuditTokenRevoke {
		t.Fatalf("revoke not audited: %+v", l)
	}
	if toks, _ := s.Tokens(ctx, "nurse1"); len(toks) != 1 || toks[0].ID != custody.TokenID(tok(1)) {
		t.Fatalf("tokens after revoke: %+v", toks)
	}
	// CreateUserAudited: the user, its token and the entry, or none of them.
	n = len(mustAudit(t, s))
	add := entry(custody.AuditUserAdd, t0.Add(3*time.Hour))
	add.Code = "nurse2"
	if err := s.CreateUserAudited(ctx, custody.User{ID: "nurse1", Name: "Impostor", Role: custody.RoleNurse, Created: t0}, tok(5), add); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("audited creation of a taken ID: %v", err)
	}
	if err := s.CreateUserAudited(ctx, custody.User{ID: "nurse2", Name: "Bea", Role: custody.RoleNurse, Created: t0}, tok(6), custody.AuditEntry{}); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("creation with an invalid entry: %v", err)
	}
	if _, err := s.User(ctx, "nurse2"); !errors.Is(err, custody.ErrNotFound) || len(mustAudit(t, s)) != n {
		t.Fatalf("a refused creation stored something: %v", err)
	}
	if err := s.CreateUserAudited(ctx, custody.User{ID: "nurse2", Name: "Bea", Role: custody.RoleNurse, Created: t0}, tok(6), add); err != nil {
		t.Fatal(err)
	}
	if l := mustAudit(t, s); len(l) != n+1 || l[n].Code != "nurse2" || l[n].Action != custody.AuditUserAdd {
		t.Fatalf("audited creation: %+v", l)
	}
	if u, err := s.UserByToken(ctx, tok(6)); err != nil || u.ID != "nurse2" {
		t.Fatalf("token of the audited creation: %v", err)
	}
	if _, err := s.UserByToken(ctx, tok(5)); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("token of a refused creation: %v", err)
	}
	// The legacy AddToken keeps working; its token is listed without times.
	if err := s.AddToken(ctx, "nurse1", tok(4)); err != nil {
		t.Fatal(err)
	}
	if toks, _ := s.Tokens(ctx, "nurse1"); len(toks) != 2 || !toks[0].Created.IsZero() || toks[0].ID != custody.TokenID(tok(4)) {
		t.Fatalf("legacy token: %+v", toks)
	}
}

func mustAudit(t *testing.T, s Store) []custody.AuditEntry {
	t.Helper()
	l, err := s.AuditEntries(context.Background(), custody.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// auditValue returns the value named name in an audit entry's Old or New
// ("" if none).
func auditValue(raw json.RawMessage, name string) string {
	var m map[string]string
	_ = json.Unmarshal(raw, &m)
	return m[name]
}

// testOneAuditTrail checks that the registries' and the accounts' changes
// share one audit trail: one sequence, one hash chain
// (custody.VerifyAuditTrail), and one listing that filters by kind, code,
// actor, period, after and limit.
func testOneAuditTrail(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.CreateUser(ctx, custody.User{ID: "nurse1", Name: "Ana Nurse", Role: custody.RoleNurse, Created: t0}, custody.TokenHash("coid_one_trail")); err != nil {
		t.Fatal(err)
	}
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	site := custody.AuditEntry{Time: at(1), Actor: "admin1", Kind: custody.ObjectKind(custody.KindSite), Code: "S-01",
		Action: custody.AuditCreate, Reason: "network set-up", New: json.RawMessage(`{"code":"S-01"}`)}
	if err := s.CreateEntry(ctx, custody.KindSite, "S-01", []byte(`{"code":"S-01"}`), site); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChangeUser(ctx, "nurse1", func(u *custody.User) error { u.Disabled = true; return nil },
		func(before, after custody.User) custody.AuditEntry {
			return custody.AuditEntry{Time: at(2), Actor: "qa-admin", Kind: custody.KindUser, Code: "nurse1", Action: custody.AuditUserDisable,
				Reason: "left", Old: custody.AuditValues(map[string]string{"disabled": "false"}), New: custody.AuditValues(map[string]string{"disabled": "true"})}
		}); err != nil {
		t.Fatal(err)
	}
	err := s.UpdateEntry(ctx, custody.KindSite, "S-01", func(old []byte) ([]byte, custody.AuditEntry, error) {
		a := site
		a.Time, a.Action, a.Old, a.New = at(3), custody.AuditSuspend, old, json.RawMessage(`{"code":"S-01","suspended":true}`)
		return a.New, a, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddTokenAt(ctx, "nurse1", custody.TokenHash("coid_one_trail_2"), at(4), custody.AuditEntry{Time: at(4), Actor: "admin1",
		Kind: custody.KindUser, Code: "nurse1", Action: custody.AuditTokenIssue, New: custody.AuditValues(map[string]string{"token x": "active"})}); err != nil {
		t.Fatal(err)
	}
	all, err := s.AuditEntries(ctx, custody.AuditFilter{})
	if err != nil || len(all) != 4 {
		t.Fatalf("trail: %d entries, %v; want 4", len(all), err)
	}
	if err := custody.VerifyAuditTrail(all); err != nil {
		t.Fatalf("one trail does not verify: %v", err)
	}
	kinds := []custody.ObjectKind{all[0].Kind, all[1].Kind, all[2].Kind, all[3].Kind}
	want := []custody.ObjectKind{custody.ObjectKind(custody.KindSite), custody.KindUser, custody.ObjectKind(custody.KindSite), custody.KindUser}
	if !slices.Equal(kinds, want) {
		t.Fatalf("kinds in order %v, want %v", kinds, want)
	}
	seqs := func(l []custody.AuditEntry, err error) []uint64 {
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, a := range l {
			out = append(out, a.Seq)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    custody.AuditFilter
		want []uint64
	}{
		{"kind user", custody.AuditFilter{Kind: custody.KindUser}, []uint64{2, 4}},
		{"kind site, code", custody.AuditFilter{Kind: custody.ObjectKind(custody.KindSite), Code: "S-01"}, []uint64{1, 3}},
		{"actor", custody.AuditFilter{Actor: "qa-admin"}, []uint64{2}},
		{"period", custody.AuditFilter{From: at(2), To: at(4)}, []uint64{2, 3}},
		{"after, limit", custody.AuditFilter{After: 1, Limit: 2}, []uint64{2, 3}},
		{"newest", custody.AuditFilter{Limit: 3, Newest: true}, []uint64{2, 3, 4}},
		{"kind user, newest", custody.AuditFilter{Kind: custody.KindUser, Limit: 1, Newest: true}, []uint64{4}},
		{"nothing", custody.AuditFilter{Code: "nobody"}, nil},
	} {
		if got := seqs(s.AuditEntries(ctx, c.f)); !slices.Equal(got, c.want) {
			t.Errorf("%s: entries %v, want %v", c.name, got, c.want)
		}
	}
}
