package custody_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestUserAccountsFilterAndPage: the filters select by organisation, site,
// role and text; pages follow each other without gap or repeat; QA reads,
// a nurse may not; no password material is returned.
func TestUserAccountsFilterAndPage(t *testing.T) {
	e := newEnv(t)
	signerNetwork(t, e)
	admin, qa := e.users["admin1"], e.users["qa1"]
	ids := func(us []custody.User) []string {
		out := []string{}
		for _, u := range us {
			if u.PasswordHash != "" || u.PasswordHistory != nil {
				t.Fatalf("password material of %s returned", u.ID)
			}
			out = append(out, u.ID)
		}
		return out
	}
	cases := []struct {
		name string
		f    custody.UserFilter
		want []string
	}{
		{"site", custody.UserFilter{Site: "HOSP-1"}, []string{"coord", "nurse1", "nurse2"}},
		{"site and role", custody.UserFilter{Site: "HOSP-1", Role: custody.RoleNurse}, []string{"nurse1", "nurse2"}},
		{"organisation", custody.UserFilter{Organisation: "MANU"}, []string{"mfg1", "mfg2", "qa1"}},
		{"text in the ID, any case", custody.UserFilter{Text: "NURSE", Organisation: "HOSPA"}, []string{"nurse1", "nurse2"}},
		{"after", custody.UserFilter{Site: "HOSP-1", After: "nurse1"}, []string{"nurse2"}},
		{"nothing", custody.UserFilter{Site: "HOSP-9"}, []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, more, err := e.svc.UserAccounts(e.ctx, qa, c.f)
			if err != nil || more || !slices.Equal(ids(got), c.want) {
				t.Fatalf("got %v more %v %v, want %v", ids(got), more, err, c.want)
			}
		})
	}
	all, _, err := e.svc.UserAccounts(e.ctx, admin, custody.UserFilter{})
	if err != nil || len(all) < 5 {
		t.Fatalf("all: %d %v", len(all), err)
	}
	var paged []string
	after := ""
	for range len(all) {
		p, more, err := e.svc.UserAccounts(e.ctx, admin, custody.UserFilter{After: after, Limit: 2})
		if err != nil || len(p) > 2 {
			t.Fatalf("page after %q: %d %v", after, len(p), err)
		}
		paged = append(paged, ids(p)...)
		if !more {
			break
		}
		after = p[len(p)-1].ID
	}
	if !slices.Equal(paged, ids(all)) {
		t.Fatalf("pages %v, whole list %v", paged, ids(all))
	}
	for _, f := range []custody.UserFilter{{Limit: -1}, {Limit: custody.MaxUserPage + 1}, {Role: "janitor"}, {Text: strings.Repeat("x", 201)}} {
		if _, _, err := e.svc.UserAccounts(e.ctx, admin, f); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("filter %+v: %v", f, err)
		}
	}
	if _, _, err := e.svc.UserAccounts(e.ctx, e.users["nurse1"], custody.UserFilter{}); !errors.Is(err, custody.ErrForbidden) {
		t.Errorf("a nurse lists accounts: %v", err)
	}
	if u, err := e.svc.UserAccount(e.ctx, qa, "nurse1"); err != nil || u.PasswordHash != "" || u.Organisation != "HOSPA" {
		t.Errorf("QA reads an account: %+v %v", u, err)
	}
	if _, err := e.svc.UserAccount(e.ctx, e.users["nurse1"], "nurse2"); !errors.Is(err, custody.ErrForbidden) {
		t.Errorf("a nurse reads an account: %v", err)
	}
	if _, err := e.svc.UserAccount(e.ctx, qa, "nobody"); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("unknown account: %v", err)
	}
}

// TestAdminCreateAccount: the account is bound to its sites, must change
// the temporary password before anything else, and its audit entry says
// why and that a change is required; refusals store nothing.
func TestAdminCreateAccount(t *testing.T) {
	e := newEnv(t)
	signerNetwork(t, e)
	admin := e.users["admin1"]
	temp := custody.NewTemporaryPassword()
	if len(temp) < 16 || temp == custody.NewTemporaryPassword() {
		t.Fatalf("temporary password %q", temp)
	}
	a := custody.NewAccount{ID: "n.new", Name: "Nurse New", Role: custody.RoleNurse, Organisation: "HOSPA", Sites: []string{"HOSP-1"}}
	refusals := []struct {
		name    string
		actor   custody.User
		a       custody.NewAccount
		temp    string
		reason  string
		wantErr error
	}{
		{"not an administrator", e.users["qa1"], a, temp, "new starter", custody.ErrForbidden},
		{"no reason", admin, a, temp, " ", custody.ErrInvalid},
		{"short password", admin, a, "short", "new starter", custody.ErrInvalid},
		{"site of another organisation", admin, custody.NewAccount{ID: "n.new", Name: "N", Role: custody.RoleNurse, Organisation: "HOSPA", Sites: []string{"CELL-1"}}, temp, "r", custody.ErrInvalid},
		{"taken ID", admin, custody.NewAccount{ID: "nurse1", Name: "N", Role: custody.RoleNurse}, temp, "r", custody.ErrConflict},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			trail, _ := e.svc.AuditTrail(e.ctx, admin, custody.AuditFilter{})
			if _, err := e.svc.AdminCreateAccount(e.ctx, c.actor, c.a, c.temp, c.reason); !errors.Is(err, c.wantErr) {
				t.Fatalf("got %v, want %v", err, c.wantErr)
			}
			trail2, _ := e.svc.AuditTrail(e.ctx, admin, custody.AuditFilter{})
			if _, err := e.store.User(e.ctx, "n.new"); !errors.Is(err, custody.ErrNotFound) || len(trail2) != len(trail) {
				t.Fatalf("a refused account changed something: %v, %d -> %d entries", err, len(trail), len(trail2))
			}
		})
	}
	tok, err := e.svc.AdminCreateAccount(e.ctx, admin, a, temp, "new starter")
	if err != nil || !strings.HasPrefix(tok, custody.TokenPrefix) {
		t.Fatalf("create: %q %v", tok, err)
	}
	u, err := e.svc.Login(e.ctx, "test", "n.new", temp)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.PasswordChangeDue(u); !errors.Is(err, custody.ErrPasswordChange) {
		t.Fatalf("a new account need not change its temporary password: %v", err)
	}
	if u.Organisation != "HOSPA" || !slices.Equal(u.Sites, []string{"HOSP-1"}) {
		t.Fatalf("account %+v", u)
	}
	trail, _ := e.svc.AuditTrail(e.ctx, admin, custody.AuditFilter{Kind: custody.KindUser, Code: "n.new"})
	if len(trail) != 1 {
		t.Fatalf("%d audit entries", len(trail))
	}
	var nw map[string]string
	_ = json.Unmarshal(trail[0].New, &nw)
	if trail[0].Action != custody.AuditUserAdd || trail[0].Reason != "new starter" || nw["change_required"] != "true" || nw["sites"] != "HOSP-1" {
		t.Fatalf("audit %+v %v", trail[0], nw)
	}
	if strings.Contains(string(trail[0].New), temp) {
		t.Fatal("the temporary password is in the audit trail")
	}
}

func TestNewAccountProblems(t *testing.T) {
	good := custody.NewAccount{ID: "n.new", Name: "Nurse New", Role: custody.RoleNurse}
	cases := []struct {
		name     string
		edit     func(*custody.NewAccount)
		password string
		want     []string
	}{
		{"good", func(*custody.NewAccount) {}, "long-enough", nil},
		{"bad ID", func(a *custody.NewAccount) { a.ID = "a b" }, "long-enough", []string{"id"}},
		{"no name", func(a *custody.NewAccount) { a.Name = " " }, "long-enough", []string{"name"}},
		{"bad role", func(a *custody.NewAccount) { a.Role = "janitor" }, "long-enough", []string{"role"}},
		{"short password", func(*custody.NewAccount) {}, "short", []string{"password"}},
		{"all", func(a *custody.NewAccount) { *a = custody.NewAccount{} }, "", []string{"id", "name", "password", "role"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := good
			c.edit(&a)
			got := custody.NewAccountProblems(a, c.password)
			var fields []string
			for f, err := range got {
				if !errors.Is(err, custody.ErrInvalid) {
					t.Errorf("%s: %v", f, err)
				}
				fields = append(fields, f)
			}
			slices.Sort(fields)
			if !slices.Equal(fields, c.want) {
				t.Fatalf("fields %v, want %v", fields, c.want)
			}
			if len(got) == 0 && custody.CheckNewUser(a.ID, a.Name, a.Role, c.password) != nil {
				t.Fatal("no problem found, but CheckNewUser refuses")
			}
		})
	}
}
