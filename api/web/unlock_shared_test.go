package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// An administrator who unlocks a person through the API lets them sign
// in to the web at once: the API and the web share one sign-in throttle.
func TestAPIUnlockLiftsWebSignInBlock(t *testing.T) {
	e := newWebEnv(t, false)
	b := e.browser()
	b.get("/login")
	blocked := false
	for i := 0; i < 20 && !blocked; i++ {
		p := b.post("/login", url.Values{"user": {wNurse1}, "password": {"wrong-password-" + string(rune('a'+i))}})
		blocked = p.Code == http.StatusTooManyRequests
		b.get("/login") // a fresh sign-in form token
	}
	if !blocked {
		t.Fatal("twenty wrong passwords never kept the nurse out of the web sign-in")
	}
	p := b.post("/login", url.Values{"user": {wNurse1}, "password": {webPassword(wNurse1)}})
	wantCode(t, p, http.StatusTooManyRequests, "right password while kept out")

	tok, err := e.svc.AdminNewToken(context.Background(), e.users[wAdmin], wAdmin)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/api/v1/users/"+wNurse1+"/unlock",
		strings.NewReader(`{"reason":"nurse called the help desk, identity checked"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("API unlock: %d", res.StatusCode)
	}
	b.get("/login")
	p = b.post("/login", url.Values{"user": {wNurse1}, "password": {webPassword(wNurse1)}})
	wantCode(t, p, http.StatusSeeOther, "sign in after the API unlock")
}
