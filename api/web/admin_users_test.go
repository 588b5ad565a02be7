package web_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
)

// TestAdminUsers: an administrator disables, enables and resets a user
// with a reason; without a reason nothing changes; QA and nurses get 403.
func TestAdminUsers(t *testing.T) {
	e := newWebEnv(t, false)
	ctx := context.Background()
	adm := e.login(wAdmin)
	p := adm.get("/admin/users")
	wantCode(t, p, http.StatusOK, "users list")
	wantBody(t, p, "users list", `id="user-`+wNurse1+`"`, "/admin/users/"+wNurse1+"/disable")

	p = adm.post("/admin/users/"+wNurse1+"/disable", url.Values{"reason": {" "}})
	wantCode(t, p, http.StatusUnprocessableEntity, "disable without reason")
	if u, _ := e.svc.User(ctx, wNurse1); u.Disabled {
		t.Fatal("disabled without a reason")
	}
	p = adm.post("/admin/users/"+wNurse1+"/disable", url.Values{"reason": {"left the unit"}})
	wantCode(t, p, http.StatusSeeOther, "disable")
	wantBody(t, adm.get("/admin/users"), "after disable", "User "+wNurse1+" disabled.", "/admin/users/"+wNurse1+"/enable")
	p = adm.post("/admin/users/"+wNurse1+"/enable", url.Values{"reason": {"back"}})
	wantCode(t, p, http.StatusSeeOther, "enable")

	p = adm.post("/admin/users/"+wNurse1+"/reset", url.Values{"temporary": {"Temp-Pass-9876-x"}, "reason": {"forgot it"}})
	wantCode(t, p, http.StatusSeeOther, "reset")
	wantBody(t, adm.get("/admin/users"), "after reset", "must change it at the next sign-in", "must change password")
	if u, _ := e.svc.User(ctx, wNurse1); u.Disabled || !u.MustChangePassword {
		t.Fatalf("after enable and reset: %+v", u)
	}

	for _, id := range []string{wQA, wCourier} {
		b := e.login(id)
		wantCode(t, b.get("/admin/users"), http.StatusForbidden, id+" opens users")
		wantCode(t, b.post("/admin/users/"+wAdmin+"/disable", url.Values{"reason": {"x"}}), http.StatusForbidden, id+" disables")
	}
	if u, _ := e.svc.User(ctx, wAdmin); u.Disabled {
		t.Fatal("a non-administrator disabled the administrator")
	}
}
