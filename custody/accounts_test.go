package custody_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/passwd"
)

// accountsEnv is newEnv's store and users under a service with the
// password policy p and a clock the test sets.
type accountsEnv struct {
	*env
	svc *custody.Service
	mu  sync.Mutex
	at  time.Time
}

func newAccountsEnv(t *testing.T, p custody.PasswordPolicy) *accountsEnv {
	t.Helper()
	a := &accountsEnv{env: newEnv(t), at: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	svc, err := custody.NewService(custody.Config{Store: a.store, Hasher: passwd.Fast(), Logger: slog.New(slog.NewTextHandler(&a.logs, nil)),
		Now: a.clock, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())), Passwords: p})
	if err != nil {
		t.Fatal(err)
	}
	a.svc = svc
	return a
}

func (a *accountsEnv) clock() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.at
}

func (a *accountsEnv) set(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.at = t
}

func (a *accountsEnv) user(id string) custody.User {
	a.t.Helper()
	u, err := a.store.User(a.ctx, id)
	if err != nil {
		a.t.Fatal(err)
	}
	return u
}

// note signs a note on coi as id with password pw.
func (a *accountsEnv) note(coi custody.COI, id, pw string) error {
	_, err := a.svc.Record(a.ctx, a.user(id), coi, custody.StepRequest{Step: custody.StepNote, Data: []byte(`{"text":"checked"}`),
		Signatures: []custody.SignatureRequest{{User: id, Password: pw, Meaning: custody.MeaningAuthored}}})
	return err
}

func TestPasswordPolicyConfig(t *testing.T) {
	for _, p := range []custody.PasswordPolicy{{ExpiryDays: -1}, {History: -1}, {History: custody.MaxPasswordHistory + 1},
		{ExpiryDays: custody.MaxPasswordExpiryDays + 1}} {
		if err := p.Check(); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", p, err)
		}
	}
	if err := (custody.PasswordPolicy{ExpiryDays: 90, History: 5}).Check(); err != nil {
		t.Fatal(err)
	}
}

// TestChangePasswordRules: the current password is required and checked,
// the new one meets the rule and repeats neither the current one nor the
// remembered ones; after the change the old password no longer signs.
func TestChangePasswordRules(t *testing.T) {
	a := newAccountsEnv(t, custody.PasswordPolicy{History: 3})
	nurse := a.user("nurse1")
	change := func(cur, nw string) error {
		_, err := a.svc.ChangePassword(a.ctx, nurse, custody.PasswordChange{Current: cur, New: nw}, custody.Hash{})
		return err
	}
	cases := []struct {
		name     string
		cur, new string
		want     error
		msg      string
	}{
		{"no current", "", "a-new-password-1", custody.ErrInvalid, "required"},
		{"wrong current", "not-my-password", "a-new-password-1", custody.ErrUnauthenticated, "not accepted"},
		{"too short", password("nurse1"), "short", custody.ErrInvalid, "8-1024"},
		{"same as current", password("nurse1"), password("nurse1"), custody.ErrInvalid, "differ from the current"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := change(tc.cur, tc.new)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("%v, want %v with %q", err, tc.want, tc.msg)
			}
			if a.user("nurse1").PasswordHash != nurse.PasswordHash {
				t.Fatal("a refused change changed the password")
			}
		})
	}
	// History 3: the current one and the two before it are refused.
	seq := []string{"second-password", "third-password"}
	cur := password("nurse1")
	for _, p := range seq {
		if err := change(cur, p); err != nil {
			t.Fatal(err)
		}
		cur = p
	}
	for _, old := range []string{password("nurse1"), "second-password"} {
		if err := change(cur, old); !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), "used before") {
			t.Fatalf("reuse of %q: %v", old, err)
		}
	}
	if err := change(cur, "fourth-password"); err != nil {
		t.Fatal(err)
	}
	// The first password is now 3 back: allowed again.
	if err := change("fourth-password", password("nurse1")); err != nil {
		t.Fatalf("a password older than the history: %v", err)
	}
	u := a.user("nurse1")
	if len(u.PasswordHistory) != 2 || u.MustChangePassword || !u.PasswordChanged.Equal(a.clock()) {
		t.Fatalf("after the changes: history %d, %+v", len(u.PasswordHistory), u.Public())
	}
	if p := u.Public(); p.PasswordHash != "" || p.PasswordHistory != nil {
		t.Fatal("Public keeps password material")
	}
	coi := a.enroll()
	if err := a.note(coi, "nurse1", "fourth-password"); !errors.Is(err, custody.ErrUnauthenticated) {
		t.Fatalf("old password signs: %v", err)
	}
	if err := a.note(coi, "nurse1", password("nurse1")); err != nil {
		t.Fatalf("new password: %v", err)
	}
}

// TestChangePasswordRevokesOtherTokens: a password change ends every other
// API token of the user at once; the one it was made with stays.
func TestChangePasswordRevokesOtherTokens(t *testing.T) {
	a := newAccountsEnv(t, custody.PasswordPolicy{})
	admin := a.user("admin1")
	tok1, err := a.svc.AdminNewToken(a.ctx, admin, "nurse1")
	if err != nil {
		t.Fatal(err)
	}
	tok2, err := a.svc.AdminNewToken(a.ctx, admin, "nurse1")
	if err != nil {
		t.Fatal(err)
	}
	nurse, err := a.svc.Authenticate(a.ctx, tok1)
	if err != nil {
		t.Fatal(err)
	}
	out, err := a.svc.ChangePassword(a.ctx, nurse, custody.PasswordChange{Current: password("nurse1"), New: "a-brand-new-one"}, custody.TokenHash(tok1))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.RevokedTokens) != 2 { // tok2 and the first token AddUser issued
		t.Fatalf("revoked %v", out.RevokedTokens)
	}
	if _, err := a.svc.Authenticate(a.ctx, tok2); !errors.Is(err, custody.ErrUnauthenticated) {
		t.Fatalf("other token after the change: %v", err)
	}
	if _, err := a.svc.Authenticate(a.ctx, tok1); err != nil {
		t.Fatalf("the token of the change: %v", err)
	}
	toks, err := a.svc.Tokens(a.ctx, nurse, "nurse1")
	if err != nil || len(toks) != 1 || toks[0].ID != custody.TokenID(custody.TokenHash(tok1)) {
		t.Fatalf("tokens after: %+v %v", toks, err)
	}
	entries, _ := a.svc.AuditTrail(a.ctx, admin, custody.AuditFilter{Kind: custody.KindUser, Code: "nurse1", Newest: true})
	var actions []custody.AuditAction
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	want := []custody.AuditAction{custody.AuditTokenIssue, custody.AuditTokenIssue, custody.AuditPasswordChange, custody.AuditTokenRevoke}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit actions %v, want %v", actions, want)
	}
	assertNoSecrets(t, a, entries, tok1, tok2, password("nurse1"), "a-brand-new-one")
}

// assertNoSecrets fails if an audit entry holds a password, a token or a
// password hash.
func assertNoSecrets(t *testing.T, a *accountsEnv, entries []custody.AuditEntry, secrets ...string) {
	t.Helper()
	users, _ := a.store.Users(a.ctx)
	for _, u := range users {
		full, _ := a.store.User(a.ctx, u.ID)
		secrets = append(secrets, full.PasswordHash)
		secrets = append(secrets, full.PasswordHistory...)
	}
	for _, e := range entries {
		all := e.Reason + string(e.Kind) + e.Code + e.Actor + string(e.Old) + string(e.New)
		for _, s := range secrets {
			if s != "" && strings.Contains(all, s) {
				t.Fatalf("audit entry %d holds a secret", e.Seq)
			}
		}
		if strings.Contains(all, "argon2") {
			t.Fatalf("audit entry %d holds a hash", e.Seq)
		}
	}
}

// TestAdminAddUserAudited: an administrator's new user is audited with
// its name, role and first token's ID, never the password or token.
func TestAdminAddUserAudited(t *testing.T) {
	a := newAccountsEnv(t, custody.PasswordPolicy{})
	admin := a.user("admin1")
	if _, err := a.svc.AdminAddUser(a.ctx, a.user("qa1"), "nurse9", "Nine", custody.RoleNurse, "nurse9-password"); !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("QA adds a user: %v", err)
	}
	tok, err := a.svc.AdminAddUser(a.ctx, admin, "nurse9", "Nine", custody.RoleNurse, "nurse9-password")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := a.svc.AuditTrail(a.ctx, admin, custody.AuditFilter{Kind: custody.KindUser, Code: "nurse9", Newest: true})
	if err != nil || len(entries) != 1 {
		t.Fatalf("entries: %+v %v", entries, err)
	}
	e := entries[0]
	if e.Action != custody.AuditUserAdd || e.Actor != "admin1" || auditValues(e.New)["role"] != "nurse" || auditValues(e.New)["name"] != "Nine" ||
		auditValues(e.New)["token "+custody.TokenID(custody.TokenHash(tok))] != "active" || e.Old != nil {
		t.Fatalf("entry: %+v", e)
	}
	assertNoSecrets(t, a, entries, tok, "nurse9-password")
}

// TestAdminResetForcesChange: after a reset the user may sign nothing
// until the temporary password is changed; the reset needs an
// administrator and a reason, and is audited with old and new values.
func TestAdminResetForcesChange(t *testing.T) {
	a := newAccountsEnv(t, custody.PasswordPolicy{})
	admin, qa := a.user("admin1"), a.user("qa1")
	coi := a.enroll()
	refusals := []struct {
		name  string
		actor custody.User
		id    string
		pw    string
		why   string
		want  error
	}{
		{"not an administrator", qa, "nurse1", "temporary-1", "forgot", custody.ErrForbidden},
		{"no reason", admin, "nurse1", "temporary-1", " ", custody.ErrInvalid},
		{"short temporary password", admin, "nurse1", "tmp", "forgot", custody.ErrInvalid},
		{"unknown user", admin, "ghost", "temporary-1", "forgot", custody.ErrNotFound},
	}
	for _, tc := range refusals {
		if _, err := a.svc.AdminResetPassword(a.ctx, tc.actor, tc.id, tc.pw, tc.why); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if a.user("nurse1").MustChangePassword {
		t.Fatal("a refused reset set the flag")
	}
	u, err := a.svc.AdminResetPassword(a.ctx, admin, "nurse1", "temporary-1", "forgot the password (ticket 4411)")
	if err != nil || !u.MustChangePassword || u.PasswordHash != "" {
		t.Fatalf("reset: %+v %v", u, err)
	}
	if err := a.note(coi, "nurse1", "temporary-1"); !errors.Is(err, custody.ErrPasswordChange) || !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("signature with the temporary password: %v", err)
	}
	if err := a.note(coi, "nurse1", password("nurse1")); !errors.Is(err, custody.ErrUnauthenticated) {
		t.Fatalf("signature with the old password: %v", err)
	}
	if err := a.svc.PasswordChangeDue(a.user("nurse1")); !errors.Is(err, custody.ErrPasswordChange) {
		t.Fatalf("due: %v", err)
	}
	// Login still succeeds, so the web UI can ask for the change.
	if _, err := a.svc.Login(a.ctx, "192.0.2.9", "nurse1", "temporary-1"); err != nil {
		t.Fatalf("login with the temporary password: %v", err)
	}
	if _, err := a.svc.ChangePassword(a.ctx, a.user("nurse1"), custody.PasswordChange{Current: "temporary-1", New: "temporary-1"}, custody.Hash{}); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("keeping the temporary password: %v", err)
	}
	if _, err := a.svc.ChangePassword(a.ctx, a.user("nurse1"), custody.PasswordChange{Current: "temporary-1", New: "mine-again-1"}, custody.Hash{}); err != nil {
		t.Fatal(err)
	}
	if err := a.note(coi, "nurse1", "mine-again-1"); err != nil {
		t.Fatalf("after the change: %v", err)
	}
	entries, err := a.svc.AuditTrail(a.ctx, admin, custody.AuditFilter{Kind: custody.KindUser, Code: "nurse1", Limit: 3, Newest: true})
	if err != nil {
		t.Fatal(err)
	}
	var reset *custody.AuditEntry
	for i := range entries {
		if entries[i].Action == custody.AuditPasswordReset {
			reset = &entries[i]
		}
	}
	if reset == nil || reset.Actor != "admin1" || reset.Reason != "forgot the password (ticket 4411)" ||
		auditValues(reset.Old)["change_required"] != "false" || auditValues(reset.New)["change_required"] != "true" || !reset.Time.Equal(a.clock()) {
		t.Fatalf("reset entry: %+v in %+v", reset, entries)
	}
	if _, err := a.svc.AuditTrail(a.ctx, a.user("nurse1"), custody.AuditFilter{}); !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("a nurse reads the audit trail: %v", err)
	}
	assertNoSecrets(t, a, entries, "temporary-1", "mine-again-1", password("nurse1"))
}

// TestPasswordExpiry: with an expiry of 90 days a password set on day 0
// signs until the last instant of day 89 and not from day 90 on, by the
// injected clock; a change starts a new period. Accounts from before
// coid recorded the change date count from their creation.
func TestPasswordExpiry(t *testing.T) {
	a := newAccountsEnv(t, custody.PasswordPolicy{ExpiryDays: 90})
	coi := a.enroll()
	set := a.user("nurse2").PasswordChanged
	if set.IsZero() {
		t.Fatal("AddUser did not record when the password was set")
	}
	exp := set.Add(90 * 24 * time.Hour)
	cases := []struct {
		name string
		at   time.Time
		due  bool
	}{
		{"just set", set, false},
		{"a nanosecond before", exp.Add(-time.Nanosecond), false},
		{"at expiry", exp, true},
		{"a year later", exp.Add(365 * 24 * time.Hour), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a.set(tc.at)
			err := a.note(coi, "nurse2", password("nurse2"))
			if due := errors.Is(err, custody.ErrPasswordChange); due != tc.due || (!tc.due && err != nil) {
				t.Fatalf("signature at %s: %v, want due %v", tc.at, err, tc.due)
			}
			if due := a.svc.PasswordChangeDue(a.user("nurse2")) != nil; due != tc.due {
				t.Fatalf("PasswordChangeDue = %v", due)
			}
		})
	}
	if got := a.svc.PasswordExpires(a.user("nurse2")); !got.Equal(exp) {
		t.Fatalf("expires %s, want %s", got, exp)
	}
	a.set(exp.Add(time.Hour))
	if _, err := a.svc.ChangePassword(a.ctx, a.user("nurse2"), custody.PasswordChange{Current: password("nurse2"), New: "renewed-password"}, custody.Hash{}); err != nil {
		t.Fatalf("an expired password may still be changed: %v", err)
	}
	if err := a.note(coi, "nurse2", "renewed-password"); err != nil {
		t.Fatalf("after renewal: %v", err)
	}
	// An account without a recorded change counts from Created.
	if _, err := a.store.UpdateUser(a.ctx, "nurse1", func(u *custody.User) error { u.PasswordChanged = time.Time{}; return nil }); err != nil {
		t.Fatal(err)
	}
	created := a.user("nurse1").Created
	if got := a.svc.PasswordExpires(a.user("nurse1")); !got.Equal(created.Add(90 * 24 * time.Hour)) {
		t.Fatalf("legacy account expires %s", got)
	}
}

// TestDisabledUserRefusedEverywhere: a disabled user cannot sign in, use
// a token, or sign; their records stay; enabling restores all of it.
func TestDisabledUserRefusedEverywhere(t *testing.T) {
	a := newAccountsEnv(t, custody.PasswordPolicy{})
	admin := a.user("admin1")
	coi := a.enroll()
	if err := a.note(coi, "nurse1", password("nurse1")); err != nil {
		t.Fatal(err)
	}
	tok, err := a.svc.AdminNewToken(a.ctx, admin, "nurse1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.AdminSetDisabledFor(a.ctx, a.user("qa1"), "nurse1", true, "left"); !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("QA disables: %v", err)
	}
	if _, err := a.svc.AdminSetDisabledFor(a.ctx, admin, "nurse1", true, "left the hospital"); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		err  error
	}{
		{"sign-in", func() error { _, err := a.svc.Login(a.ctx, "192.0.2.1", "nurse1", password("nurse1")); return err }()},
		{"token", func() error { _, err := a.svc.Authenticate(a.ctx, tok); return err }()},
		{"own signature", a.note(coi, "nurse1", password("nurse1"))},
		{"as a witness", func() error {
			_, err := a.svc.Record(a.ctx, a.user("nurse2"), coi, custody.StepRequest{Step: custody.StepNote, Data: []byte(`{"text":"x"}`),
				Signatures: []custody.SignatureRequest{sig("nurse1", custody.MeaningAuthored)}})
			return err
		}()},
	}
	for _, c := range checks {
		if !errors.Is(c.err, custody.ErrUnauthenticated) {
			t.Errorf("%s of a disabled user: %v, want ErrUnauthenticated", c.name, c.err)
		}
	}
	ch, err := a.svc.Chain(a.ctx, coi)
	if err != nil || ch.Records[len(ch.Records)-1].Signatures[0].User != "nurse1" {
		t.Fatalf("the disabled user's record: %v", err)
	}
	if _, err := a.svc.AdminSetDisabledFor(a.ctx, admin, "nurse1", false, "back"); err != nil {
		t.Fatal(err)
	}
	if err := a.note(coi, "nurse1", password("nurse1")); err != nil {
		t.Fatalf("enabled again: %v", err)
	}
	entries, _ := a.svc.AuditTrail(a.ctx, admin, custody.AuditFilter{Kind: custody.KindUser, Code: "nurse1", Limit: 2, Newest: true})
	if len(entries) != 2 || entries[0].Action != custody.AuditUserDisable || auditValues(entries[0].Old)["disabled"] != "false" ||
		auditValues(entries[0].New)["disabled"] != "true" || entries[0].Reason != "left the hospital" || entries[1].Action != custody.AuditUserEnable {
		t.Fatalf("audit: %+v", entries)
	}
}

// TestTokenListAndRevoke: users list and revoke their own tokens, an
// administrator anyone's (with a reason), nobody else; a revoked token is
// refused at once; last use is recorded at most once a minute.
func TestTokenListAndRevoke(t *testing.T) {
	a := newAccountsEnv(t, custody.PasswordPolicy{})
	admin, nurse, qa := a.user("admin1"), a.user("nurse1"), a.user("qa1")
	tok, err := a.svc.AdminNewToken(a.ctx, admin, "nurse1")
	if err != nil {
		t.Fatal(err)
	}
	id := custody.TokenID(custody.TokenHash(tok))
	if _, err := a.svc.Tokens(a.ctx, qa, "nurse1"); !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("QA lists a nurse's tokens: %v", err)
	}
	if err := a.svc.RevokeToken(a.ctx, qa, "nurse1", id, "why not"); !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("QA revokes a nurse's token: %v", err)
	}
	if err := a.svc.RevokeToken(a.ctx, admin, "nurse1", id, ""); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("administrator without a reason: %v", err)
	}
	for _, bad := range []string{"", "xyz", strings.Repeat("A", 16), tok} {
		if err := a.svc.RevokeToken(a.ctx, nurse, "nurse1", bad, ""); !errors.Is(err, custody.ErrInvalid) {
			t.Fatalf("token ID %q: %v", bad, err)
		}
	}
	if err := a.svc.RevokeToken(a.ctx, nurse, "nurse1", "0123456789abcdef", ""); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	a.set(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC))
	if _, err := a.svc.Authenticate(a.ctx, tok); err != nil {
		t.Fatal(err)
	}
	used := a.clock()
	a.set(used.Add(30 * time.Second))
	if _, err := a.svc.Authenticate(a.ctx, tok); err != nil {
		t.Fatal(err)
	}
	toks, err := a.svc.Tokens(a.ctx, nurse, "nurse1")
	if err != nil || len(toks) != 2 {
		t.Fatalf("tokens: %+v %v", toks, err)
	}
	var info custody.TokenInfo
	for _, x := range toks {
		if x.ID == id {
			info = x
		}
	}
	if info.ID == "" || !info.LastUsed.Equal(used) || info.Created.IsZero() || info.User != "nurse1" {
		t.Fatalf("token info %+v (used %s)", info, used)
	}
	if err := a.svc.RevokeToken(a.ctx, nurse, "nurse1", id, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.Authenticate(a.ctx, tok); !errors.Is(err, custody.ErrUnauthenticated) {
		t.Fatalf("revoked token: %v", err)
	}
	if err := a.svc.RevokeToken(a.ctx, nurse, "nurse1", id, ""); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("revoked twice: %v", err)
	}
	toks, _ = a.svc.Tokens(a.ctx, admin, "nurse1")
	if err := a.svc.RevokeToken(a.ctx, admin, "nurse1", toks[0].ID, "device lost"); err != nil {
		t.Fatal(err)
	}
	if toks, _ := a.svc.Tokens(a.ctx, nurse, "nurse1"); len(toks) != 0 {
		t.Fatalf("after revoking both: %+v", toks)
	}
	entries, _ := a.svc.AuditTrail(a.ctx, admin, custody.AuditFilter{Kind: custody.KindUser, Code: "nurse1", Limit: 1, Newest: true})
	if len(entries) != 1 || entries[0].Action != custody.AuditTokenRevoke || entries[0].Reason != "device lost" ||
		auditValues(entries[0].New)["token "+toks[0].ID] != "revoked" {
		t.Fatalf("admin revoke audit: %+v", entries)
	}
}

// auditValues decodes an audit entry's Old or New, the account's values
// by name.
func auditValues(raw json.RawMessage) map[string]string {
	var m map[string]string
	_ = json.Unmarshal(raw, &m)
	return m
}

// TestOneAuditTrail: an account change and a registry change are entries
// of one trail, in order and hash-linked, listed by kind for QA, and
// refused to other roles.
func TestOneAuditTrail(t *testing.T) {
	a := newAccountsEnv(t, custody.PasswordPolicy{})
	admin := a.user("admin1")
	if _, err := a.svc.RegisterOrganisation(a.ctx, admin, custody.Organisation{Code: "FASTCO", Name: "FastCo", Kind: custody.OrgCourier}, "network set-up"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.AdminSetDisabledFor(a.ctx, admin, "nurse1", true, "left the hospital"); err != nil {
		t.Fatal(err)
	}
	all, err := a.svc.AuditTrail(a.ctx, a.user("qa1"), custody.AuditFilter{})
	if err != nil || len(all) < 2 {
		t.Fatalf("trail: %+v %v", all, err)
	}
	if err := custody.VerifyAuditTrail(all); err != nil {
		t.Fatalf("the one trail does not verify: %v", err)
	}
	org, acct := all[len(all)-2], all[len(all)-1]
	if org.Kind != custody.ObjectKind(custody.KindOrganisation) || org.Code != "FASTCO" || org.Action != custody.AuditCreate ||
		acct.Kind != custody.KindUser || acct.Code != "nurse1" || acct.Action != custody.AuditUserDisable || acct.Seq != org.Seq+1 {
		t.Fatalf("last two entries: %+v %+v", org, acct)
	}
	users, err := a.svc.AuditTrail(a.ctx, admin, custody.AuditFilter{Kind: custody.KindUser})
	if err != nil || len(users) == 0 {
		t.Fatalf("user entries: %v", err)
	}
	for _, e := range users {
		if e.Kind != custody.KindUser {
			t.Fatalf("kind user listed %+v", e)
		}
	}
	// A registry change's longer reason fits the one trail too.
	long := strings.Repeat("r", 900)
	if _, err := a.svc.RegisterOrganisation(a.ctx, admin, custody.Organisation{Code: "SLOWCO", Name: "SlowCo", Kind: custody.OrgCourier}, long); err != nil {
		t.Fatalf("registry change with a %d-byte reason: %v", len(long), err)
	}
	if _, err := a.svc.AuditTrail(a.ctx, admin, custody.AuditFilter{Kind: "patient"}); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := a.svc.AuditTrail(a.ctx, a.user("nurse2"), custody.AuditFilter{Kind: custody.KindUser}); !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("a nurse reads the trail: %v", err)
	}
}
