package web_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestAdminOrganisations: administrators list, register and suspend
// organisations with a reason; a refused form keeps what was typed and
// changes nothing; QA reads without forms; other roles get 403.
func TestAdminOrganisations(t *testing.T) {
	e := newWebEnv(t, false)
	ctx := context.Background()
	adm := e.login(wAdmin)

	p := adm.get("/admin")
	wantCode(t, p, http.StatusOK, "admin index")
	wantBody(t, p, "admin index", `href="/admin/organisations"`, `href="/admin" aria-current="page"`)

	p = adm.get("/admin/organisations")
	wantCode(t, p, http.StatusOK, "empty list")
	wantBody(t, p, "empty list", "No organisations", `action="/admin/organisations"`)

	p = adm.post("/admin/organisations", url.Values{"code": {"APHP"}, "name": {"AP-HP"}, "kind": {"hospital"}, "reason": {"onboarding"}})
	wantCode(t, p, http.StatusSeeOther, "register")
	p = adm.get("/admin/organisations")
	wantBody(t, p, "list after register", "Organisation APHP registered.", "<td>APHP</td><td>AP-HP</td><td>hospital</td><td>active</td>", "/admin/organisations/APHP/suspend")

	cases := []struct {
		name string
		form url.Values
		want string
	}{
		{"bad code", url.Values{"code": {"ap hp"}, "name": {"Typed name"}, "kind": {"courier"}, "reason": {"r"}}, "code"},
		{"no reason", url.Values{"code": {"CUR"}, "name": {"Typed name"}, "kind": {"courier"}, "reason": {" "}}, "Give a reason"},
		{"code taken", url.Values{"code": {"APHP"}, "name": {"Typed name"}, "kind": {"courier"}, "reason": {"r"}}, "Not registered"},
	}
	for _, c := range cases {
		p = adm.post("/admin/organisations", c.form)
		wantCode(t, p, http.StatusUnprocessableEntity, c.name)
		wantBody(t, p, c.name, c.want, `id="form-error"`, `value="Typed name"`, `<option value="courier" selected>`)
	}
	rows, err := e.svc.Organisations(ctx, custody.User{ID: wAdmin, Role: custody.RoleAdmin}, "", 0)
	if err != nil || len(rows) != 1 || rows[0].Name != "AP-HP" {
		t.Fatalf("after refused forms: %v %+v, want only APHP unchanged", err, rows)
	}

	p = adm.post("/admin/organisations/APHP/suspend", url.Values{"suspended": {"1"}, "reason": {""}})
	wantCode(t, p, http.StatusUnprocessableEntity, "suspend without reason")
	p = adm.post("/admin/organisations/APHP/suspend", url.Values{"suspended": {"1"}, "reason": {"accreditation lapsed"}})
	wantCode(t, p, http.StatusSeeOther, "suspend")
	p = adm.get("/admin/organisations")
	wantBody(t, p, "after suspend", "Organisation APHP suspended.", "suspended</strong>", ">Resume</button>")
	p = adm.post("/admin/organisations/APHP/suspend", url.Values{"suspended": {"0"}, "reason": {"renewed"}, "csrf": {"forged"}})
	wantCode(t, p, http.StatusForbidden, "resume with a forged CSRF token")

	qa := e.login(wQA)
	p = qa.get("/admin/organisations")
	wantCode(t, p, http.StatusOK, "QA reads")
	wantBody(t, p, "QA reads", "<td>APHP</td>")
	wantNotBody(t, p, "QA reads", `action="/admin/organisations"`, "/suspend")
	p = qa.post("/admin/organisations", url.Values{"code": {"CUR"}, "name": {"C"}, "kind": {"courier"}, "reason": {"r"}})
	wantCode(t, p, http.StatusForbidden, "QA registers")

	nurse := e.login(wNurse1)
	for _, path := range []string{"/admin", "/admin/organisations"} {
		p = nurse.get(path)
		wantCode(t, p, http.StatusForbidden, "nurse opens "+path)
	}
	wantNotBody(t, nurse.get("/scan"), "nurse nav", `href="/admin"`)
}
