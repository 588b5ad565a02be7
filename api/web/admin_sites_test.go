package web_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/coid-project/coid/custody"
)

func siteValues(code string) url.Values {
	return url.Values{"code": {code}, "name": {"Hopital Saint-Louis"}, "organisation": {"APHP"}, "kinds": {"collection", "treatment"},
		"time_zone": {"Europe/Paris"}, "address": {"1 avenue Claude Vellefaux, Paris"}, "country": {"FR"}, "fin": {"F1234"},
		"accreditation_status": {"accredited"}, "accreditation_expiry": {"2027-06-30"}, "training_done": {"1"},
		"training_date": {"2026-01-15"}, "training_expiry": {"2027-01-15"}, "reason": {"onboarding"}}
}

// TestAdminSites: register a site with every field, a refused form keeps
// what was typed and changes nothing, suspend with a reason, QA reads
// only, a nurse gets 403.
func TestAdminSites(t *testing.T) {
	e := newWebEnv(t, false)
	ctx := context.Background()
	adm := e.login(wAdmin)
	wantCode(t, adm.post("/admin/organisations", url.Values{"code": {"APHP"}, "name": {"AP-HP"}, "kind": {"hospital"}, "reason": {"r"}}), http.StatusSeeOther, "org")

	p := adm.post("/admin/sites", siteValues("PAR-1"))
	wantCode(t, p, http.StatusSeeOther, "register site")
	p = adm.get("/admin/sites")
	wantBody(t, p, "site list", "Site PAR-1 registered.", `id="site-PAR-1"`, "collection, treatment", "Europe/Paris")

	bad := siteValues("LYO-1")
	bad.Set("time_zone", "Mars/Olympus")
	p = adm.post("/admin/sites", bad)
	wantCode(t, p, http.StatusUnprocessableEntity, "bad zone")
	wantBody(t, p, "bad zone", `id="form-error"`, `value="Mars/Olympus"`, `value="LYO-1"`, `value="treatment" checked`, `value="onboarding"`)
	admin := custody.User{ID: wAdmin, Role: custody.RoleAdmin}
	if rows, err := e.svc.Sites(ctx, admin, "", 0); err != nil || len(rows) != 1 {
		t.Fatalf("after a refused form: %v, %d sites", err, len(rows))
	}

	p = adm.post("/admin/sites/PAR-1/suspend", url.Values{"suspended": {"1"}, "reason": {"audit finding"}})
	wantCode(t, p, http.StatusSeeOther, "suspend")
	if s, err := e.svc.Site(ctx, admin, "PAR-1"); err != nil || !s.Suspended {
		t.Fatalf("after suspend: %v %+v", err, s)
	}

	qa := e.login(wQA)
	p = qa.get("/admin/sites")
	wantCode(t, p, http.StatusOK, "QA reads sites")
	wantNotBody(t, p, "QA reads sites", `id="site-form"`, "/suspend")
	wantCode(t, qa.post("/admin/sites", siteValues("QA-1")), http.StatusForbidden, "QA registers a site")
	wantCode(t, e.login(wNurse1).get("/admin/sites"), http.StatusForbidden, "nurse opens sites")
}
