package web_test

import (
	"context"
	"net/http"
	"testing"
)

// TestWebAuditScreen: QA and administrators see the audit trail screen
// with its filter form, the entries with their changed values, the next
// page and the report downloads of the same filter; other roles are
// refused and see no nav link; a bad filter is a plain refusal.
func TestWebAuditScreen(t *testing.T) {
	e := newWebEnv(t, false)
	ctx := context.Background()
	for _, id := range []string{wNurse1, wNurse2} {
		if _, err := e.svc.AdminSetDisabledFor(ctx, e.users[wAdmin], id, true, "left the unit"); err != nil {
			t.Fatal(err)
		}
	}
	qa, admin, nurse := e.login(wQA), e.login(wAdmin), e.login(wCoord)
	wantBody(t, qa.get("/qa"), "QA console nav", `href="/audit"`)
	wantNotBody(t, nurse.get("/scan"), "coordinator nav", `href="/audit"`)

	p := qa.get("/audit?kind=user&code=" + wNurse2)
	wantCode(t, p, http.StatusOK, "QA audit screen")
	wantBody(t, p, "QA audit screen", "Administrative audit trail", `name="from"`, "left the unit", "disabled: false -&gt; true",
		"/audit.pdf?code="+wNurse2+"&amp;kind=user", "/audit.csv?code="+wNurse2+"&amp;kind=user")
	wantNotBody(t, p, "filtered screen", "Next entries")
	wantCode(t, admin.get("/audit"), http.StatusOK, "admin audit screen")
	wantCode(t, nurse.get("/audit"), http.StatusForbidden, "coordinator audit screen")
	wantCode(t, nurse.get("/audit.csv"), http.StatusForbidden, "coordinator audit CSV")
	wantCode(t, e.browser().get("/audit"), http.StatusSeeOther, "signed-out audit screen")
	wantCode(t, qa.get("/audit?from=2026-12-02&to=2026-12-01"), http.StatusBadRequest, "reversed period")

	if p := qa.get("/audit.csv?kind=user&code=" + wNurse2); p.Code != http.StatusOK || p.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Errorf("QA CSV: %d %s", p.Code, p.Header.Get("Content-Type"))
	}
	if p := qa.get("/audit.pdf"); p.Code != http.StatusOK || p.Header.Get("Content-Type") != "application/pdf" {
		t.Errorf("QA PDF: %d %s", p.Code, p.Header.Get("Content-Type"))
	}
}
