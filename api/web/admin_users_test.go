package web_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/api/web"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/phitext"
)

var (
	oncePasswordRE = regexp.MustCompile(`id="once-password">([^<]+)<`)
	onceTokenRE    = regexp.MustCompile(`id="once-token">([^<]+)<`)
)

// usersNetwork is webNetwork with a second site of the hospital, PAR-2.
func usersNetwork(t testing.TB, e *webEnv) {
	t.Helper()
	webNetwork(t, e)
	s := custody.Site{Code: "PAR-2", Name: "Saint-Antoine", Kinds: []custody.SiteRole{custody.SiteTreatment}, Organisation: "APHP",
		TimeZone: "Europe/Paris", Address: "2 rue Y", Country: "FR",
		Accreditation: custody.Accreditation{Status: custody.AccreditationAccredited, Expiry: "2027-06-30"},
		Qualification: custody.Qualification{TrainingDone: true, Date: "2026-01-01", Expiry: "2027-01-01"}}
	if _, err := e.svc.RegisterSite(context.Background(), e.users[wAdmin], s, "network"); err != nil {
		t.Fatal(err)
	}
}

// auditCount is how many entries the administrative audit trail holds.
func auditCount(t *testing.T, e *webEnv) int {
	t.Helper()
	n, after := 0, uint64(0)
	for {
		es, err := e.svc.AuditTrail(context.Background(), e.users[wAdmin], custody.AuditFilter{After: after})
		if err != nil {
			t.Fatal(err)
		}
		n += len(es)
		if len(es) < custody.MaxRegistryPage {
			return n
		}
		after = es[len(es)-1].Seq
	}
}

// TestAdminUsersList: the list is paged (50 rows, a next link that keeps
// the filter), filters by organisation, site, role and text, and shows
// each account's role, organisation, sites, state and password expiry;
// QA reads it without the create form; the others get 403.
func TestAdminUsersList(t *testing.T) {
	e := newWebEnv(t, false)
	usersNetwork(t, e)
	ctx := context.Background()
	admin := e.users[wAdmin]
	for i := range 120 {
		id := fmt.Sprintf("bulk.%03d", i)
		org, sites, role := "APHP", []string{"PAR-1"}, custody.RoleNurse
		if i%2 == 1 {
			sites, role = []string{"PAR-2"}, custody.RoleCoordinator
		}
		if _, err := e.svc.AdminAddUserIn(ctx, admin, id, "Bulk Person "+fmt.Sprint(i), role, "Bulk-pass-1234", org, sites); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.AdminSetDisabledFor(ctx, admin, "bulk.000", true, "left"); err != nil {
		t.Fatal(err)
	}
	adm := e.login(wAdmin)
	rows := regexp.MustCompile(`<tr id="user-([^"]+)"`)
	ids := func(p page) []string {
		var out []string
		for _, m := range rows.FindAllStringSubmatch(p.Body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	p := adm.get("/admin/users")
	wantCode(t, p, http.StatusOK, "first page")
	if got := ids(p); len(got) != 50 || got[0] != wAdmin || !slices.IsSorted(got) {
		t.Fatalf("first page: %d rows %v", len(got), got)
	}
	wantBody(t, p, "first page", `id="user-form"`, `rel="next"`, `<strong class="warn">disabled</strong>`, "PAR-1", "never")

	// The filter, then its pages: every nurse of PAR-1, each once.
	var seen []string
	next := "/admin/users?site=PAR-1&role=nurse"
	for range 5 {
		p = adm.get(next)
		wantCode(t, p, http.StatusOK, next)
		seen = append(seen, ids(p)...)
		m := regexp.MustCompile(`href="(/admin/users\?[^"]+)" rel="next"`).FindStringSubmatch(p.Body)
		if m == nil {
			break
		}
		next = strings.ReplaceAll(m[1], "&amp;", "&")
		if !strings.Contains(next, "site=PAR-1") || !strings.Contains(next, "role=nurse") {
			t.Fatalf("the next link drops the filter: %s", next)
		}
	}
	if len(seen) != 60 || len(slices.Compact(slices.Clone(seen))) != 60 || !slices.IsSorted(seen) || seen[0] != "bulk.000" {
		t.Fatalf("nurses of PAR-1 over the pages: %d %v", len(seen), seen)
	}
	cases := []struct {
		query string
		want  []string
	}{
		{"q=BULK+PERSON+11", []string{"bulk.011", "bulk.110", "bulk.111", "bulk.112", "bulk.113", "bulk.114", "bulk.115", "bulk.116", "bulk.117", "bulk.118", "bulk.119"}},
		{"organisation=APHP&site=PAR-2&q=bulk.00", []string{"bulk.001", "bulk.003", "bulk.005", "bulk.007", "bulk.009"}},
		{"role=admin", []string{wAdmin}},
		{"organisation=CELLCO", nil},
	}
	for _, c := range cases {
		p := adm.get("/admin/users?" + c.query)
		wantCode(t, p, http.StatusOK, c.query)
		if got := ids(p); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.query, got, c.want)
		}
	}
	wantCode(t, adm.get("/admin/users?role=janitor"), http.StatusBadRequest, "unknown role")

	qa := e.login(wQA)
	p = qa.get("/admin/users?site=PAR-1")
	wantCode(t, p, http.StatusOK, "QA reads")
	wantNotBody(t, p, "QA reads", `id="user-form"`)
	for _, id := range []string{wNurse1, wCourier, wCoord, wMfg} {
		wantCode(t, e.login(id).get("/admin/users"), http.StatusForbidden, id+" opens the accounts")
	}
}

func createValues(id string) url.Values {
	return url.Values{"id": {id}, "name": {"Nurse Ada"}, "role": {"nurse"}, "organisation": {"APHP"}, "sites": {"PAR-1"}, "reason": {"new starter"}}
}

// TestAdminUserCreate: an administrator creates an account bound to a
// site with a generated temporary password shown once; the person must
// change it at the first sign-in; a refused form says why beside the
// field, keeps what was typed and creates nothing; QA and nurses get 403.
func TestAdminUserCreate(t *testing.T) {
	e := newWebEnv(t, false)
	usersNetwork(t, e)
	ctx := context.Background()
	adm := e.login(wAdmin)
	adm.get("/admin/users")
	refusals := []struct {
		name  string
		as    string
		edit  func(url.Values)
		code  int
		field string // the id of the message beside the field
	}{
		{"bad ID", wAdmin, func(v url.Values) { v.Set("id", "ada lovelace") }, http.StatusUnprocessableEntity, "err-id"},
		{"taken ID", wAdmin, func(v url.Values) { v.Set("id", wNurse1) }, http.StatusUnprocessableEntity, "err-id"},
		{"taken ID but for case", wAdmin, func(v url.Values) { v.Set("id", strings.ToUpper(wNurse1)) }, http.StatusUnprocessableEntity, "err-id"},
		{"no name", wAdmin, func(v url.Values) { v.Set("name", " ") }, http.StatusUnprocessableEntity, "err-name"},
		{"no role", wAdmin, func(v url.Values) { v.Set("role", "janitor") }, http.StatusUnprocessableEntity, "err-role"},
		{"short password", wAdmin, func(v url.Values) { v.Set("temporary", "short") }, http.StatusUnprocessableEntity, "err-temporary"},
		{"no reason", wAdmin, func(v url.Values) { v.Set("reason", "") }, http.StatusUnprocessableEntity, "err-reason"},
		{"site of another organisation", wAdmin, func(v url.Values) { v["sites"] = []string{"MFG-1"} }, http.StatusUnprocessableEntity, "err-sites"},
		{"suspended site", wAdmin, func(v url.Values) { v["sites"] = []string{"SUSP-1"} }, http.StatusUnprocessableEntity, "err-sites"},
		{"QA", wQA, func(url.Values) {}, http.StatusForbidden, ""},
		{"nurse", wNurse1, func(url.Values) {}, http.StatusForbidden, ""},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			b := adm
			if c.as != wAdmin {
				b = e.login(c.as)
			}
			before := auditCount(t, e)
			v := createValues("ada.l")
			c.edit(v)
			p := b.post("/admin/users", v)
			wantCode(t, p, c.code, c.name)
			if _, err := e.svc.User(ctx, "ada.l"); err == nil || auditCount(t, e) != before {
				t.Fatal("a refused form created the account or an audit entry")
			}
			if c.field == "" {
				return
			}
			wantBody(t, p, c.name, `id="`+c.field+`"`, `id="form-error"`, `value="`+strings.TrimSpace(v.Get("name"))+`"`, `value="`+v.Get("reason")+`"`)
			if c.name != "site of another organisation" && c.name != "suspended site" {
				wantBody(t, p, c.name, `value="PAR-1" checked`)
			}
			wantNotBody(t, p, c.name, "once-password", "once-token")
		})
	}

	forged := createValues("ada.l")
	forged.Set("csrf", "not-the-session-token")
	wantCode(t, adm.post("/admin/users", forged), http.StatusForbidden, "create without the CSRF token")
	if _, err := e.svc.User(ctx, "ada.l"); err == nil {
		t.Fatal("a forged form created the account")
	}
	adm.get("/admin/users")
	p := adm.post("/admin/users", createValues("ada.l"))
	wantCode(t, p, http.StatusCreated, "create")
	pw, tok := oncePasswordRE.FindStringSubmatch(p.Body), onceTokenRE.FindStringSubmatch(p.Body)
	if pw == nil || tok == nil {
		t.Fatalf("the temporary password and token are not shown:\n%s", excerpt(p.Body))
	}
	u, err := e.svc.User(ctx, "ada.l")
	if err != nil || !u.MustChangePassword || u.Organisation != "APHP" || !slices.Equal(u.Sites, []string{"PAR-1"}) {
		t.Fatalf("created: %+v %v", u, err)
	}
	for _, path := range []string{"/admin/users", "/admin/users/ada.l", "/audit"} {
		if b := adm.get(path).Body; strings.Contains(b, pw[1]) || strings.Contains(b, tok[1]) {
			t.Errorf("%s shows the temporary password or token again", path)
		}
	}
	if strings.Contains(e.logs.String(), pw[1]) || strings.Contains(e.logs.String(), tok[1]) {
		t.Error("the temporary password or token is in the log")
	}
	// Ada signs in with it and must change it before anything else.
	ada := e.browser()
	ada.get("/login")
	p = ada.post("/login", url.Values{"user": {"ada.l"}, "password": {pw[1]}})
	wantCode(t, p, http.StatusSeeOther, "Ada signs in")
	ada.get(p.Location)
	if p := ada.get("/scan"); p.Code != http.StatusSeeOther || !strings.HasPrefix(p.Location, "/password") {
		t.Fatalf("Ada reaches the scan station before changing the password: %d %s", p.Code, p.Location)
	}

	// A typed temporary password is not shown back; the token is.
	v := createValues("ada.two")
	v.Set("temporary", "Typed-temp-9876")
	p = adm.post("/admin/users", v)
	wantCode(t, p, http.StatusCreated, "create with a typed password")
	wantNotBody(t, p, "typed password", "Typed-temp-9876", "once-password")
	wantBody(t, p, "typed password", "once-token")
	if strings.Contains(e.logs.String(), "Typed-temp-9876") {
		t.Error("the typed temporary password is in the log")
	}
}

// TestAdminUserActions: each action on an account's page, by an
// administrator, does what it says and records its reason; without a
// reason or with bad input it changes nothing and says why beside the
// field; QA and nurses get 403 and change nothing.
func TestAdminUserActions(t *testing.T) {
	e := newWebEnv(t, false)
	usersNetwork(t, e)
	ctx := context.Background()
	admin := e.users[wAdmin]
	if _, err := e.svc.SetUserNetwork(ctx, admin, wNurse1, "APHP", []string{"PAR-1"}, "bound"); err != nil {
		t.Fatal(err)
	}
	toks, err := e.svc.Tokens(ctx, admin, wNurse1)
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens: %v %v", toks, err)
	}
	tokID := toks[0].ID
	acct := "/admin/users/" + wNurse1
	user := func() custody.User {
		u, err := e.svc.User(ctx, wNurse1)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	cases := []struct {
		action string
		values url.Values
		bad    url.Values // bad input beside the reason; nil: none
		field  string     // the id of bad's message
		check  func(t *testing.T, p page)
	}{
		{"network", url.Values{"organisation": {"APHP"}, "sites": {"PAR-1", "PAR-2"}},
			url.Values{"organisation": {"APHP"}, "sites": {"MFG-1"}}, "err-network-sites",
			func(t *testing.T, p page) {
				if u := user(); !slices.Equal(u.Sites, []string{"PAR-1", "PAR-2"}) {
					t.Errorf("sites %v", u.Sites)
				}
			}},
		{"reset", url.Values{}, url.Values{"temporary": {"short"}}, "err-reset-temporary",
			func(t *testing.T, p page) {
				m := oncePasswordRE.FindStringSubmatch(p.Body)
				if m == nil || !user().MustChangePassword {
					t.Fatalf("reset: password shown %v, must change %v", m != nil, user().MustChangePassword)
				}
				if strings.Contains(e.logs.String(), m[1]) || strings.Contains(e.login(wAdmin).get(acct).Body, m[1]) {
					t.Error("the temporary password is logged or shown twice")
				}
			}},
		{"unlock", url.Values{}, nil, "", func(t *testing.T, p page) {
			if u := user(); u.Locked {
				t.Error("still locked")
			}
		}},
		{"disable", url.Values{}, nil, "", func(t *testing.T, p page) {
			if !user().Disabled {
				t.Error("not disabled")
			}
		}},
		{"enable", url.Values{}, nil, "", func(t *testing.T, p page) {
			if user().Disabled {
				t.Error("still disabled")
			}
		}},
		{"token", url.Values{}, nil, "", func(t *testing.T, p page) {
			m := onceTokenRE.FindStringSubmatch(p.Body)
			if m == nil {
				t.Fatal("the token is not shown")
			}
			if u, err := e.svc.Authenticate(ctx, m[1]); err != nil || u.ID != wNurse1 {
				t.Errorf("the token shown does not authenticate %s: %v", wNurse1, err)
			}
			if strings.Contains(e.logs.String(), m[1]) || strings.Contains(e.login(wAdmin).get(acct).Body, m[1]) {
				t.Error("the token is logged or shown twice")
			}
		}},
		{"revoke", url.Values{"token": {tokID}}, url.Values{"token": {"0123456789abcdef"}}, "form-error",
			func(t *testing.T, p page) {
				toks, _ := e.svc.Tokens(ctx, admin, wNurse1)
				if slices.ContainsFunc(toks, func(x custody.TokenInfo) bool { return x.ID == tokID }) {
					t.Error("the token is not revoked")
				}
			}},
	}
	adm := e.login(wAdmin)
	for _, c := range cases {
		t.Run(c.action, func(t *testing.T) {
			path := acct + "/" + c.action
			with := func(v url.Values, reason string) url.Values {
				out := url.Values{"reason": {reason}}
				for k, x := range v {
					out[k] = x
				}
				return out
			}
			before, n := user(), auditCount(t, e)
			unchanged := func(what string) {
				t.Helper()
				after := user()
				if auditCount(t, e) != n || after.Disabled != before.Disabled || after.MustChangePassword != before.MustChangePassword ||
					!slices.Equal(after.Sites, before.Sites) || after.PasswordHash != before.PasswordHash {
					t.Fatalf("%s changed something", what)
				}
			}
			for _, id := range []string{wQA, wNurse2} {
				wantCode(t, e.login(id).post(path, with(c.values, "r")), http.StatusForbidden, id+" "+c.action)
				unchanged(id)
			}
			forged := with(c.values, "forged")
			forged.Set("csrf", "not-the-session-token")
			wantCode(t, adm.post(path, forged), http.StatusForbidden, "without the CSRF token")
			unchanged("a forged form")
			adm.get(acct)
			p := adm.post(path, with(c.values, " "))
			wantCode(t, p, http.StatusUnprocessableEntity, "no reason")
			wantBody(t, p, "no reason", "Give a reason")
			unchanged("no reason")
			if c.bad != nil {
				adm.get(acct)
				p := adm.post(path, with(c.bad, "kept reason"))
				wantCode(t, p, http.StatusUnprocessableEntity, "bad input")
				wantBody(t, p, "bad input", `id="`+c.field+`"`)
				if c.action != "revoke" { // no form of an unknown token to keep it in
					wantBody(t, p, "bad input", `value="kept reason"`)
				}
				unchanged("bad input")
			}
			adm.get(acct)
			p = adm.post(path, with(c.values, "because "+c.action))
			if p.Code == http.StatusSeeOther {
				if p.Location != acct {
					t.Fatalf("redirect to %s", p.Location)
				}
				p = adm.get(p.Location)
				wantBody(t, p, c.action, `id="flash"`)
			}
			wantCode(t, p, http.StatusOK, c.action)
			if auditCount(t, e) != n+1 {
				t.Fatalf("%d audit entries added", auditCount(t, e)-n)
			}
			wantBody(t, p, "audit on the page", "because "+c.action)
			c.check(t, p)
		})
	}
	wantCode(t, adm.post(acct+"/explode", url.Values{"reason": {"x"}}), http.StatusNotFound, "unknown action")
	wantCode(t, adm.get("/admin/users/nobody"), http.StatusNotFound, "unknown account")
	p := e.login(wQA).get(acct)
	wantCode(t, p, http.StatusOK, "QA reads the account")
	wantBody(t, p, "QA reads the account", "because network", "PAR-1, PAR-2")
	wantNotBody(t, p, "QA reads the account", "<form method=\"post\" action=\"/admin/users")
	wantCode(t, e.login(wNurse2).get(acct), http.StatusForbidden, "a nurse opens an account")
	p = adm.post("/admin/users/"+wAdmin+"/disable", url.Values{"reason": {"oops"}})
	wantCode(t, p, http.StatusUnprocessableEntity, "disable oneself")
	wantBody(t, p, "disable oneself", `id="err-disable"`)
}

// TestAdminUsersPasswordExpiry: with passwords good for 30 days, the list
// and the account page show when each one expires, and that it has.
func TestAdminUsersPasswordExpiry(t *testing.T) {
	store, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	clock := &webClock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	svc, err := custody.NewService(custody.Config{Store: store, Hasher: passwd.Fast(), Logger: log, Now: clock.Now, FIN: "A9999",
		Passwords: custody.PasswordPolicy{ExpiryDays: 30}, Folder: phitext.Folder{}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Service: svc, Logger: log, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := web.Mount(srv); err != nil {
		t.Fatal(err)
	}
	e := &webEnv{t: t, store: store, svc: svc, srv: srv, clock: clock, users: map[string]custody.User{}, logs: logs}
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(e.ts.Close)
	ctx := context.Background()
	if _, err := svc.AddUser(ctx, wNurse1, "Nurse", custody.RoleNurse, webPassword(wNurse1)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(20 * 24 * time.Hour)
	if _, err := svc.AddUser(ctx, wAdmin, "Admin", custody.RoleAdmin, webPassword(wAdmin)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(15 * 24 * time.Hour) // the nurse's expired 5 days ago; the admin's in 15
	adm := e.login(wAdmin)
	p := adm.get("/admin/users")
	wantCode(t, p, http.StatusOK, "list")
	nurseRow := p.Body[strings.Index(p.Body, `id="user-`+wNurse1+`"`):]
	nurseRow = nurseRow[:strings.Index(nurseRow, "</tr>")]
	adminRow := p.Body[strings.Index(p.Body, `id="user-`+wAdmin+`"`):]
	adminRow = adminRow[:strings.Index(adminRow, "</tr>")]
	if !strings.Contains(nurseRow, "expired") || !strings.Contains(nurseRow, `datetime="2026-12-22T12:00:00Z"`) {
		t.Errorf("nurse row: %s", nurseRow)
	}
	if strings.Contains(adminRow, "expired") || !strings.Contains(adminRow, `datetime="2027-01-11T12:00:00Z"`) {
		t.Errorf("admin row: %s", adminRow)
	}
	wantBody(t, adm.get("/admin/users/"+wNurse1), "account", `<strong class="warn">expired</strong>`)
}
