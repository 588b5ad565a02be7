package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/api/web"
	"github.com/coid-project/coid/custody"
)

func TestWebSignIn(t *testing.T) {
	e := newWebEnv(t, false)
	b := e.browser()

	p := b.get("/")
	wantCode(t, p, http.StatusSeeOther, "GET / signed out")
	if !strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("GET / signed out redirects to %q, want /login", p.Location)
	}
	p = b.get("/login")
	wantCode(t, p, http.StatusOK, "sign-in page")
	wantBody(t, p, "sign-in page", `name="user"`, `name="password"`, `type="password"`, `name="csrf"`)

	t.Run("wrong password", func(t *testing.T) {
		p := b.post("/login", url.Values{"user": {wNurse1}, "password": {webPassword(wNurse2)}})
		wantCode(t, p, http.StatusUnauthorized, "wrong password")
		wantBody(t, p, "wrong password", "Sign-in failed.", `value="`+wNurse1+`"`)
	})
	t.Run("unknown user", func(t *testing.T) {
		p := b.post("/login", url.Values{"user": {"nobody"}, "password": {"whatever-123"}})
		wantCode(t, p, http.StatusUnauthorized, "unknown user")
	})
	t.Run("success", func(t *testing.T) {
		b.get("/login")
		p := b.post("/login", url.Values{"user": {wNurse1}, "password": {webPassword(wNurse1)}})
		wantCode(t, p, http.StatusSeeOther, "sign in")
		if p.Location != "/scan" {
			t.Errorf("nurse lands on %q, want /scan", p.Location)
		}
		var sc *http.Cookie
		for _, c := range (&http.Response{Header: p.Header}).Cookies() {
			if c.Name == "coid_session" {
				sc = c
			}
		}
		if sc == nil {
			t.Fatal("no session cookie")
		}
		if !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Secure || sc.Path != "/" {
			t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP, Path=/", sc)
		}
		p = b.get("/scan")
		wantCode(t, p, http.StatusOK, "scan station")
		wantBody(t, p, "scan station", "Printed "+wNurse1, "Sign out", `id="scan-code"`)
		wantNotBody(t, p, "scan station for a nurse", `href="/qa"`)
	})
	t.Run("next is kept and must be local", func(t *testing.T) {
		b := e.browser()
		p := b.get("/qa?state=released")
		if p.Location != "/login?next=%2Fqa%3Fstate%3Dreleased" {
			t.Errorf("redirect to %q", p.Location)
		}
		b.get(p.Location)
		p = b.post("/login", url.Values{"user": {wQA}, "password": {webPassword(wQA)}, "next": {"/qa?state=released"}})
		if p.Location != "/qa?state=released" {
			t.Errorf("after sign-in: %q, want the page asked for", p.Location)
		}
		b2 := e.browser()
		b2.get("/login")
		p = b2.post("/login", url.Values{"user": {wQA}, "password": {webPassword(wQA)}, "next": {"//evil.example/x"}})
		if p.Location != "/qa" {
			t.Errorf("off-site next followed: %q", p.Location)
		}
	})
	t.Run("sign out", func(t *testing.T) {
		b := e.login(wNurse1)
		p := b.post("/logout", nil)
		wantCode(t, p, http.StatusSeeOther, "sign out")
		p = b.get("/scan")
		wantCode(t, p, http.StatusSeeOther, "scan after sign out")
	})
	t.Run("API tokens keep working", func(t *testing.T) {
		tok, err := e.svc.AdminNewToken(context.Background(), e.users[wAdmin], wNurse1)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /api/v1/me with a token: %d", resp.StatusCode)
		}
		// A session cookie is not an API credential.
		b := e.login(wNurse1)
		req, _ = http.NewRequest(http.MethodGet, e.ts.URL+"/api/v1/me", nil)
		resp, err = b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /api/v1/me with only a session cookie: %d, want 401", resp.StatusCode)
		}
	})
}

func TestWebSecureCookieOverTLS(t *testing.T) {
	e := newWebEnv(t, true)
	b := e.browser()
	b.get("/login")
	p := b.post("/login", url.Values{"user": {wQA}, "password": {webPassword(wQA)}})
	wantCode(t, p, http.StatusSeeOther, "sign in over TLS")
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if c.Name == "coid_session" && !c.Secure {
			t.Errorf("session cookie over TLS is not Secure: %+v", c)
		}
	}
}

func TestWebSecurityHeaders(t *testing.T) {
	e := newWebEnv(t, false)
	b := e.login(wNurse1)
	for _, path := range []string{"/login", "/scan", "/static/app.js"} {
		p := b.get(path)
		h := p.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows inline or eval: %q", path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || !strings.HasSuffix(h.Get("Referrer-Policy"), "no-referrer") && h.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
	p := b.get("/static/app.css")
	if !strings.HasPrefix(p.Header.Get("Content-Type"), "text/css") {
		t.Errorf("app.css Content-Type %q", p.Header.Get("Content-Type"))
	}
	if p := b.get("/scan"); p.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("pages must not be cached: %q", p.Header.Get("Cache-Control"))
	}
	if p := b.get("/nope"); p.Code != http.StatusNotFound || !strings.Contains(p.Header.Get("Content-Type"), "json") {
		t.Errorf("unknown non-UI path: %d %s; want the API's JSON 404", p.Code, p.Header.Get("Content-Type"))
	}
	if p := b.get("/chains/"); p.Code != http.StatusNotFound || !strings.Contains(p.Body, "This page does not exist.") {
		t.Errorf("unknown UI path: %d", p.Code)
	}
}

// TestWebAssetsNoInlineScript checks the embedded templates: no inline
// script, event-handler attributes, javascript: URLs or style attributes
// (the CSP forbids them), and no asset from another host.
func TestWebAssetsNoInlineScript(t *testing.T) {
	bad := []*regexp.Regexp{
		regexp.MustCompile(`<script(?:[^>](?:[^s]|s[^r]|sr[^c]))*?>`), // a script element without src
		regexp.MustCompile(`\son[a-z]+\s*=`),
		regexp.MustCompile(`javascript:`),
		regexp.MustCompile(`\sstyle\s*=`),
		regexp.MustCompile(`(?:src|href)="(?:https?:)?//`),
	}
	err := filepath.WalkDir("webui", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".html") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, re := range bad {
			if m := re.Find(b); m != nil {
				t.Errorf("%s: %q is not allowed under the CSP", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWebCSRF(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateCollected)
	before := len(e.chain(coi).Records)

	t.Run("sign-in form", func(t *testing.T) {
		b := e.browser()
		b.get("/login")
		p := b.post("/login", url.Values{"user": {wNurse1}, "password": {webPassword(wNurse1)}, "csrf": {"forged"}})
		wantCode(t, p, http.StatusForbidden, "sign-in with a forged token")
		wantBody(t, p, "CSRF refusal", "This form was not accepted.", "Nothing was recorded.")
		b2 := e.browser() // no cookie at all
		p = b2.post("/login", url.Values{"user": {wNurse1}, "password": {webPassword(wNurse1)}, "csrf": {"x"}})
		wantCode(t, p, http.StatusForbidden, "sign-in without the cookie")
	})

	b := e.login(wNurse1)
	ship := url.Values{"shipper": {"SHP-0009"}, "profile": {"refrigerated"},
		"sig_user_1": {wNurse1}, "sig_password_1": {webPassword(wNurse1)},
		"sig_user_2": {wCourier}, "sig_password_2": {webPassword(wCourier)}}
	forms := map[string]url.Values{
		"/logout":                    {},
		"/scan":                      {"code": {string(coi)}},
		coiPath(coi) + "/steps/ship": ship,
		coiPath(coi) + "/bedside":    {"action": {"reset"}},
		"/mismatch/ack":              {},
		"/enroll":                    {"name": {"A B"}},
	}
	for path, v := range forms {
		for name, token := range map[string][]string{"missing": nil, "wrong": {"0123456789abcdef"}, "empty": {""}} {
			t.Run(path+" "+name, func(t *testing.T) {
				w := url.Values{}
				for k, x := range v {
					w[k] = x
				}
				if token != nil {
					w["csrf"] = token
				} else {
					w["csrf"] = nil
					delete(w, "csrf")
					w.Set("csrf", "")
				}
				p := b.post(path, w)
				wantCode(t, p, http.StatusForbidden, path)
				wantBody(t, p, path, "This form was not accepted.")
			})
		}
	}
	t.Run("foreign origin", func(t *testing.T) {
		b.get("/scan")
		v := url.Values{"code": {string(coi)}, "csrf": {b.csrf}}
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/scan", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		p := b.do(req)
		wantCode(t, p, http.StatusForbidden, "POST from another origin")
	})
	t.Run("token in the URL only", func(t *testing.T) {
		// A token in a URL leaks through logs and Referer headers; only the
		// form body counts.
		b.get("/scan")
		v := url.Values{"code": {string(coi)}}
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/scan?csrf="+url.QueryEscape(b.csrf), strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		p := b.do(req)
		wantCode(t, p, http.StatusForbidden, "CSRF token in the query string")
	})
	if n := len(e.chain(coi).Records); n != before {
		t.Errorf("refused forms wrote records: %d, want %d", n, before)
	}
	// The session survived every refusal: a correct token still works.
	b.get("/scan")
	p := b.post(coiPath(coi)+"/steps/ship", ship)
	wantCode(t, p, http.StatusSeeOther, "ship with a good token")
}

func TestWebSessionExpiry(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	b := e.login(wNurse1)
	e.clock.Advance(14 * time.Minute)
	wantCode(t, b.get("/scan"), http.StatusOK, "after 14 idle minutes")
	e.clock.Advance(14 * time.Minute) // activity renewed the session
	wantCode(t, b.get("/scan"), http.StatusOK, "14 minutes after the last request")
	e.clock.Advance(15*time.Minute + time.Second)
	csrf := b.csrf
	p := b.get(coiPath(coi))
	wantCode(t, p, http.StatusSeeOther, "after 15 idle minutes")
	if !strings.Contains(p.Location, "expired=1") || !strings.Contains(p.Location, "next=") {
		t.Errorf("expired session redirects to %q", p.Location)
	}
	lp := b.get(p.Location)
	wantBody(t, lp, "sign-in after expiry", "You were signed out after 15 min without activity.")
	// A form posted with the old session says so and records nothing.
	b2 := e.login(wNurse1)
	e.clock.Advance(16 * time.Minute)
	p = b2.post("/scan", url.Values{"code": {string(coi)}, "csrf": {b2.csrf}})
	wantCode(t, p, http.StatusUnauthorized, "POST after expiry")
	wantBody(t, p, "POST after expiry", "Your session has ended.", "Nothing was recorded.")
	_ = csrf
}

func TestWebDisabledUserIsSignedOut(t *testing.T) {
	e := newWebEnv(t, false)
	b := e.login(wNurse1)
	if _, err := e.svc.AdminSetDisabled(context.Background(), e.users[wAdmin], wNurse1, true); err != nil {
		t.Fatal(err)
	}
	p := b.get("/scan")
	wantCode(t, p, http.StatusSeeOther, "disabled user")
}

func TestWebScan(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateCollected)
	b := e.login(wNurse1)

	tests := []struct {
		name, code string
		status     int
		location   string
		want       []string
	}{
		{"bag payload", payload(coi, custody.BagApheresis, 1), http.StatusSeeOther, coiPath(coi) + "?bag=" + string(coi) + "-APH-01", nil},
		{"payload with CR LF", payload(coi, custody.BagApheresis, 2) + "\r\n", http.StatusSeeOther, coiPath(coi) + "?bag=" + string(coi) + "-APH-02", nil},
		{"COI with check", coi.Display(), http.StatusSeeOther, coiPath(coi), nil},
		{"ISBT 040", "&/" + string(coi) + string(coi.K()), http.StatusSeeOther, coiPath(coi), nil},
		{"ISBT 128 compound message of a bag label", "=+04000&/" + string(coi) + "=A99992612345600=<S1234V99=," +
			custody.BagDivisions(custody.BagID{COI: coi, Kind: custody.BagApheresis, N: 2}),
			http.StatusSeeOther, coiPath(coi) + "?bag=" + string(coi) + "-APH-02", nil},
		{"ISBT 128 structures scanned one by one", "=A99992612345600&/" + string(coi) + "=," +
			custody.BagDivisions(custody.BagID{COI: coi, Kind: custody.BagApheresis, N: 1}) + "\r\n",
			http.StatusSeeOther, coiPath(coi) + "?bag=" + string(coi) + "-APH-01", nil},
		{"ISBT 128 product code 99 without its divisions", "&/" + string(coi) + "=<S1234V99", http.StatusBadRequest, "",
			[]string{"could not be read"}},
		{"garbage", "HELLO", http.StatusBadRequest, "", []string{"This code could not be read as a coid label.", "This is not a coid label"}},
		{"typo", "CHA99992", http.StatusBadRequest, "", []string{"This code could not be read as a coid label.", `value="CHA99992"`}},
		{"wrong check", string(coi) + "Z", http.StatusBadRequest, "", []string{"could not be read"}},
		{"unregistered bag", payload(coi, custody.BagFinalProduct, 1), http.StatusNotFound, "", []string{"This bag is not registered on its chain."}},
		{"unknown chain", "CHA99992699999", http.StatusNotFound, "", []string{"No chain has this identifier."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "unknown chain" {
				c := custody.COI("CHA9999" + "26" + "999999")
				tt.code = c.Display()
			}
			p := b.post("/scan", url.Values{"code": {tt.code}})
			wantCode(t, p, tt.status, tt.name)
			if tt.location != "" && p.Location != tt.location {
				t.Errorf("redirect to %q, want %q", p.Location, tt.location)
			}
			wantBody(t, p, tt.name, tt.want...)
		})
	}

	p := b.get(coiPath(coi) + "?bag=" + string(coi) + "-APH-01")
	wantCode(t, p, http.StatusOK, "scan result")
	wantBody(t, p, "scan result", coi.Display(), string(coi)+"-APH-01", "Collected, waiting for shipment",
		"Hand over for shipping", `name="shipper"`, `name="profile"`,
		"Signature 1: <strong>handed over</strong>", "Signature 2: <strong>received</strong>", "by courier",
		`name="sig_user_1"`, `name="sig_password_1"`, `name="sig_user_2"`, `name="sig_password_2"`,
		`name="sig_user_1" type="text" required autocomplete="off" autocapitalize="none" spellcheck="false" value="`+wNurse1+`"`,
		`name="bag" value="`+string(coi)+`-APH-01"`)
	// The chain page has no PHI (checked for every page by the browser
	// helper) and shows the timeline with printed names and meanings.
	wantBody(t, p, "timeline", "Printed "+wNurse2, "verified", "#1", "enroll")
}

func TestWebRecordStep(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateCollected)
	b := e.login(wNurse1)
	b.get(coiPath(coi))
	good := url.Values{"shipper": {"SHP-0042"}, "profile": {"refrigerated"},
		"sig_user_1": {wNurse1}, "sig_password_1": {webPassword(wNurse1)}, "sig_meaning_1": {"approved"},
		"sig_user_2": {wCourier}, "sig_password_2": {webPassword(wCourier)}}

	t.Run("wrong password", func(t *testing.T) {
		v := url.Values{}
		for k, x := range good {
			v[k] = x
		}
		v.Set("sig_password_2", "not-the-password-77")
		p := b.post(coiPath(coi)+"/steps/ship", v)
		wantCode(t, p, http.StatusUnauthorized, "wrong password")
		wantBody(t, p, "wrong password", "A signature was not accepted.", "Signature 2: user ID or password not accepted.",
			`value="SHP-0042"`, `value="`+wCourier+`"`, `id="form-ship" open`)
		wantNotBody(t, p, "wrong password", "not-the-password-77", "unauthenticated")
	})
	t.Run("bad data", func(t *testing.T) {
		v := url.Values{}
		for k, x := range good {
			v[k] = x
		}
		v.Set("shipper", "SHP 42!")
		p := b.post(coiPath(coi)+"/steps/ship", v)
		wantCode(t, p, http.StatusBadRequest, "bad shipper")
		wantBody(t, p, "bad shipper", "Please check the form.", "Shipper ID must be a shipper ID")
	})
	t.Run("courier signs as hand-over", func(t *testing.T) {
		v := url.Values{}
		for k, x := range good {
			v[k] = x
		}
		v.Set("sig_user_1", wCourier)
		v.Set("sig_password_1", webPassword(wCourier))
		v.Set("sig_user_2", wNurse2)
		v.Set("sig_password_2", webPassword(wNurse2))
		p := b.post(coiPath(coi)+"/steps/ship", v)
		wantCode(t, p, http.StatusForbidden, "wrong roles")
		wantBody(t, p, "wrong roles", "This person may not sign this step.")
	})
	t.Run("out of order", func(t *testing.T) {
		p := b.post(coiPath(coi)+"/steps/infuse", url.Values{"sig_user_1": {wNurse1}, "sig_password_1": {webPassword(wNurse1)}})
		wantCode(t, p, http.StatusConflict, "infuse now")
		wantBody(t, p, "infuse now", "This step cannot be recorded now.", "Infuse is not allowed while the chain is collected")
	})
	if n := len(e.chain(coi).Records); n != 2 {
		t.Fatalf("refused steps wrote records: %d", n)
	}
	t.Run("success", func(t *testing.T) {
		p := b.post(coiPath(coi)+"/steps/ship", good)
		wantCode(t, p, http.StatusSeeOther, "ship")
		p = b.get(p.Location)
		wantBody(t, p, "after ship", "Recorded: Hand over for shipping (record 3), signed by Printed "+wNurse1+" and Printed "+wCourier+".",
			"In transit to manufacturing", "Shipper <strong>SHP-0042</strong>")
		ch := e.chain(coi)
		if ch.State != custody.StateToManufacturing {
			t.Fatalf("state %s", ch.State)
		}
		// The meaning is the journey's, whatever the form sent.
		if m := ch.Records[2].Signatures[0].Meaning; m != custody.MeaningHandedOver {
			t.Errorf("signature meaning %q, want handed-over", m)
		}
		// The flash is shown once.
		wantNotBody(t, b.get(coiPath(coi)), "second view", "Recorded:")
	})
}

func TestWebCollectForm(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	b := e.login(wNurse1)
	b.get(coiPath(coi))
	p := b.post(coiPath(coi)+"/steps/collect", url.Values{"din": {"A999926000777"}, "volume_ml": {"175.5"}, "bags": {"2"},
		"started_at": {"2026-11-22T09:00"}, "ended_at": {"2026-11-22T11:30"}, "tz_offset": {"60"},
		"sig_user_1": {wNurse1}, "sig_password_1": {webPassword(wNurse1)},
		"sig_user_2": {wNurse2}, "sig_password_2": {webPassword(wNurse2)}})
	wantCode(t, p, http.StatusSeeOther, "collect")
	ch := e.chain(coi)
	if ch.State != custody.StateCollected || len(ch.Bags) != 2 {
		t.Fatalf("after collect: %s %v", ch.State, ch.Bags)
	}
	if d := string(ch.Records[1].Data); !strings.Contains(d, `"ended_at":"2026-11-22T11:30:00+01:00"`) || !strings.Contains(d, `"volume_ml":175.5`) {
		t.Errorf("collect data %s", d)
	}
}

func TestWebRoles(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateManufactured)

	nurse := e.login(wNurse1)
	p := nurse.get(coiPath(coi))
	wantCode(t, p, http.StatusOK, "nurse chain page")
	wantNotBody(t, p, "nurse chain page", "/steps/release", "Release the product</summary>", "Cancel this chain")
	wantBody(t, p, "nurse chain page", "Release the product <span class=\"muted\">(done by qa)</span>", "Add a note")
	// The server refuses anyway: a nurse cannot sign a release.
	p = nurse.post(coiPath(coi)+"/steps/release", url.Values{"sig_user_1": {wNurse1}, "sig_password_1": {webPassword(wNurse1)}})
	wantCode(t, p, http.StatusForbidden, "nurse releases")
	wantBody(t, p, "nurse releases", "This person may not sign this step.")
	p = nurse.get("/qa")
	wantCode(t, p, http.StatusForbidden, "nurse opens the console")

	qa := e.login(wQA)
	p = qa.get(coiPath(coi))
	wantBody(t, p, "QA chain page", `action="/chains/`+string(coi)+`/steps/release"`, "Release the product", "Cancel this chain")
	p = qa.post(coiPath(coi)+"/steps/release", url.Values{"sig_user_1": {wQA}, "sig_password_1": {webPassword(wQA)}})
	wantCode(t, p, http.StatusSeeOther, "QA releases")

	courier := e.login(wCourier)
	p = courier.get(coiPath(coi))
	wantCode(t, p, http.StatusOK, "courier chain page")
	wantBody(t, p, "courier chain page", "Hand over for shipping")
	wantNotBody(t, p, "courier chain page", "labels.pdf")
	p = courier.get(coiPath(coi) + "/labels.pdf")
	wantCode(t, p, http.StatusForbidden, "courier prints labels")

	p = nurse.get(coiPath(coi) + "/labels.pdf")
	wantCode(t, p, http.StatusOK, "nurse prints labels")
	if p.Header.Get("Content-Type") != "application/pdf" {
		t.Errorf("labels Content-Type %q", p.Header.Get("Content-Type"))
	}
	p = nurse.get(coiPath(coi) + "/bags/" + string(coi) + "-FP-01/label.pdf")
	wantCode(t, p, http.StatusOK, "nurse prints one label")

	adm := e.login(wAdmin)
	p = adm.get("/qa")
	wantCode(t, p, http.StatusOK, "admin console")
	p = adm.get(coiPath(coi))
	wantNotBody(t, p, "admin chain page", "Sign and record")
}

func TestWebConsoleAndDisposition(t *testing.T) {
	e := newWebEnv(t, false)
	a := e.enroll()
	e.advance(a, custody.StateToTreatment)
	exc := e.excursion(a)
	b := e.enroll()
	e.advance(b, custody.StateCollected)
	c := e.enroll()
	_ = c

	qa := e.login(wQA)
	p := qa.get("/qa")
	wantCode(t, p, http.StatusOK, "console")
	wantBody(t, p, "console", "3 chain(s) in flight.", a.Display(), b.Display(), "temperature excursion",
		"leg 2, shipper SHP-0002, cryogenic profile, for 20 min, worst -120 °C (limit -150 °C), ongoing: no end recorded yet",
		`href="/qa?state=collected"`)
	// Still going on, on a leg in transit: the disposition form does not
	// offer it yet, and says why.
	p = qa.get(coiPath(a))
	wantBody(t, p, "chain with an excursion going on", "is still going on in transit; it can be decided once its end is recorded")
	// Once the system records the excursion's end, the console shows the
	// final figures.
	ch := e.chain(a)
	worst, start := -101.5, e.clock.Now().Add(-30*time.Minute)
	end, ok, err := e.svc.ReviseExcursion(context.Background(), a, len(ch.Legs), custody.Excursion{
		ID: custody.ExcursionID(custody.ExcursionTemperature, start), Kind: custody.ExcursionTemperature, Start: start,
		End: start.Add(26 * time.Minute), Worst: &worst, Duration: 26 * time.Minute, Breach: 25 * time.Minute})
	if err != nil || !ok {
		t.Fatalf("record the excursion's end: %v %v", ok, err)
	}
	p = qa.get("/qa")
	wantBody(t, p, "console after the end", "for 26 min, worst -101.5 °C (limit -150 °C), ended "+start.Add(26*time.Minute).UTC().Format("2006-01-02 15:04 UTC")+
		" (recorded in record "+itoa(end.Seq)+")")
	p = qa.get("/qa?state=collected")
	wantBody(t, p, "console filtered", b.Display(), "Chains Collected, waiting for shipment")
	wantNotBody(t, p, "console filtered", `<a href="/chains/`+string(c)+`">`)

	p = qa.get(coiPath(a))
	wantBody(t, p, "chain with excursion", "1 open issue(s) await a QA disposition.", "QA disposition", `name="excursion"`,
		`name="decision"`, "awaiting disposition")
	p = qa.post(coiPath(a)+"/steps/disposition", url.Values{"excursion": {itoa(exc)}, "decision": {"accept"}, "reason": {"Within stability data"},
		"sig_user_1": {wQA}, "sig_password_1": {webPassword(wQA)}})
	wantCode(t, p, http.StatusSeeOther, "disposition")
	if len(e.chain(a).OpenIssues()) != 0 {
		t.Fatal("issue still open after the disposition")
	}
	p = qa.get("/qa")
	wantBody(t, p, "console after disposition", "No open issues.")

	nurse := e.login(wNurse1)
	p = nurse.get(coiPath(a))
	wantNotBody(t, p, "nurse chain page", `name="decision"`)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestWebBedside(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateAtTreatment)
	bag := payload(coi, custody.BagFinalProduct, 1)
	sign := url.Values{"action": {"sign"}, "sig_user_1": {wNurse1}, "sig_password_1": {webPassword(wNurse1)},
		"sig_user_2": {wNurse2}, "sig_password_2": {webPassword(wNurse2)}}

	t.Run("mismatch", func(t *testing.T) {
		b := e.login(wNurse1)
		p := b.get(coiPath(coi))
		wantBody(t, p, "chain at treatment", "Start the bedside check")
		p = b.get(coiPath(coi) + "/bedside")
		wantBody(t, p, "bedside start", "1. Scan the bag label", `value="bag"`)
		wantCode(t, b.post(coiPath(coi)+"/bedside", url.Values{"action": {"bag"}, "code": {bag}}), http.StatusSeeOther, "scan bag")
		p = b.get(coiPath(coi) + "/bedside")
		// The bag is shown as its ID, not as the label's raw payload.
		wantBody(t, p, "bedside wristband", "Scan the patient's wristband", `value="wristband"`, string(coi)+"-FP-01")
		wantNotBody(t, p, "bedside wristband", bag, `id="early-mismatch"`)
		wantCode(t, b.post(coiPath(coi)+"/bedside", url.Values{"action": {"wristband"}, "code": {"MRN-0000001"}}), http.StatusSeeOther, "scan wristband")
		p = b.get(coiPath(coi) + "/bedside")
		// The mismatch is told at the wristband scan, before anyone
		// signs; the signatures still record it.
		wantBody(t, p, "bedside sign", "scanned ✗ does not match", `id="early-mismatch"`,
			"The wristband does not match this chain's patient.", `name="sig_password_2"`, "Sign: record the mismatch")
		wantNotBody(t, p, "bedside sign", "scanned ✓")
		wantNotBody(t, p, "bedside sign", "MRN-0000001")
		p = b.post(coiPath(coi)+"/bedside", sign)
		wantCode(t, p, http.StatusSeeOther, "sign mismatch")
		if p.Location != "/mismatch" {
			t.Fatalf("mismatch goes to %q", p.Location)
		}
		p = b.get("/mismatch")
		wantBody(t, p, "mismatch", "MISMATCH: DO NOT INFUSE", "The wristband does not belong to this chain&#39;s patient.", `action="/mismatch/ack"`)
		wantNotBody(t, p, "mismatch", "MRN-0000001")
		// Nothing else until it is acknowledged.
		for _, path := range []string{"/scan", coiPath(coi), "/qa", "/"} {
			if p := b.get(path); p.Code != http.StatusSeeOther || p.Location != "/mismatch" {
				t.Errorf("GET %s during a mismatch: %d %q", path, p.Code, p.Location)
			}
		}
		p = b.post("/scan", url.Values{"code": {bag}})
		wantCode(t, p, http.StatusConflict, "scan during a mismatch")
		// Another browser of the same nurse is not blocked: the block is
		// the session's, the record is the chain's.
		p = b.post("/mismatch/ack", nil)
		wantCode(t, p, http.StatusSeeOther, "acknowledge")
		p = b.get(p.Location)
		wantBody(t, p, "after acknowledging", "Mismatch acknowledged", "mismatch")
		// The mismatch and its acknowledgement, signed by the nurse's
		// session, are both in the chain; the state has not moved.
		ch := e.chain(coi)
		mm, ack := ch.Records[len(ch.Records)-2], ch.Records[len(ch.Records)-1]
		if mm.Step != custody.StepMismatch || ack.Step != custody.StepAcknowledge || ch.State != custody.StateAtTreatment {
			t.Fatalf("after mismatch: %s then %s, state %s", mm.Step, ack.Step, ch.State)
		}
		last := ch.Mismatches[len(ch.Mismatches)-1]
		if !last.Acknowledged || last.AcknowledgedBy != wNurse1 || ack.Signatures[0].Method != "session" ||
			ack.Signatures[0].Meaning != custody.MeaningAcknowledged {
			t.Fatalf("acknowledgement %+v, signature %+v", last, ack.Signatures)
		}
	})
	t.Run("same nurse twice", func(t *testing.T) {
		e.settleMismatches(coi) // acknowledged and accepted by QA, as after an investigation
		b := e.login(wNurse1)
		b.post(coiPath(coi)+"/bedside", url.Values{"action": {"bag"}, "code": {bag}})
		b.post(coiPath(coi)+"/bedside", url.Values{"action": {"wristband"}, "code": {webPatient.MRN}})
		v := url.Values{"action": {"sign"}, "sig_user_1": {wNurse1}, "sig_password_1": {webPassword(wNurse1)},
			"sig_user_2": {wNurse1}, "sig_password_2": {webPassword(wNurse1)}}
		p := b.post(coiPath(coi)+"/bedside", v)
		if p.Location != "/mismatch" {
			t.Fatalf("same nurse twice: %d %q", p.Code, p.Location)
		}
		wantBody(t, b.get("/mismatch"), "same nurse", "two different nurses must each verify")
		b.post("/mismatch/ack", nil)
	})
	t.Run("a role that may not acknowledge is not stuck", func(t *testing.T) {
		e.settleMismatches(coi) // acknowledged and accepted by QA, as after an investigation
		b := e.login(wMfg)
		b.post(coiPath(coi)+"/bedside", url.Values{"action": {"bag"}, "code": {bag}})
		b.post(coiPath(coi)+"/bedside", url.Values{"action": {"wristband"}, "code": {"MRN-0000001"}})
		p := b.post(coiPath(coi)+"/bedside", sign)
		if p.Location != "/mismatch" {
			t.Skipf("manufacturing may not run the bedside check here: %d %q", p.Code, p.Location)
		}
		before := len(e.chain(coi).Records)
		p = b.post("/mismatch/ack", nil)
		wantCode(t, p, http.StatusSeeOther, "manufacturing acknowledges")
		wantBody(t, b.get(p.Location), "after the try", "Your role may not acknowledge it: a nurse, coordinator or QA must.")
		if p := b.get("/scan"); p.Code != http.StatusOK {
			t.Fatalf("the session is still held by the mismatch: %d %q", p.Code, p.Location)
		}
		ch := e.chain(coi)
		if len(ch.Records) != before || ch.Mismatches[len(ch.Mismatches)-1].Acknowledged {
			t.Fatalf("the refused acknowledgement changed the chain: %d records (was %d), %+v", len(ch.Records), before, ch.Mismatches[len(ch.Mismatches)-1])
		}
		// A nurse acknowledges it.
		if _, err := e.svc.AcknowledgeMismatch(context.Background(), e.users[wNurse2], coi, ch.Mismatches[len(ch.Mismatches)-1].Seq, custody.ViaSession); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a mismatch recorded elsewhere is acknowledged on the chain page", func(t *testing.T) {
		e.settleMismatches(coi) // acknowledged and accepted by QA, as after an investigation
		_, err := e.svc.Record(context.Background(), e.users[wNurse1], coi, custody.StepRequest{Step: custody.StepBedsideVerify,
			Data:       json.RawMessage(fmt.Sprintf(`{"bag_code":%q,"wristband_code":"MRN-0000001"}`, bag)),
			Signatures: []custody.SignatureRequest{wsig(wNurse1, custody.MeaningVerified), wsig(wNurse2, custody.MeaningVerified)}})
		if !errors.Is(err, custody.ErrConflict) {
			t.Fatalf("API-side mismatch: %v", err)
		}
		seq := e.chain(coi).Mismatches[len(e.chain(coi).Mismatches)-1].Seq
		b := e.login(wNurse2)
		p := b.get(coiPath(coi))
		wantBody(t, p, "chain with an unacknowledged mismatch", fmt.Sprintf("Bedside mismatch (record %d) not yet acknowledged.", seq),
			fmt.Sprintf(`action="/chains/%s/mismatches/%d/ack"`, coi, seq))
		wantNotBody(t, p, "chain with an unacknowledged mismatch", "Start the bedside check")
		if p := b.get(coiPath(coi) + "/bedside"); p.Code == http.StatusOK && strings.Contains(string(p.Body), "1. Scan the bag label") {
			t.Errorf("bedside check offered over an unacknowledged mismatch")
		}
		qa := e.login(wQA)
		wantBody(t, qa.get("/qa"), "QA console", "bedside check failed (mismatch)", "not yet acknowledged")
		p = b.post(fmt.Sprintf("%s/mismatches/%d/ack", coiPath(coi), seq), url.Values{})
		wantCode(t, p, http.StatusSeeOther, "acknowledge on the chain page")
		wantBody(t, qa.get("/qa"), "QA console after the acknowledgement", "bedside check failed (mismatch)", "acknowledged by "+wNurse2)
		p = b.get(p.Location)
		wantBody(t, p, "after acknowledging", "Mismatch acknowledged", "open issue(s) await a QA disposition")
		wantNotBody(t, p, "after acknowledging", "not yet acknowledged", "Start the bedside check")
		if m := e.chain(coi).Mismatches; !m[len(m)-1].Acknowledged || m[len(m)-1].AcknowledgedBy != wNurse2 {
			t.Fatalf("mismatch after the form: %+v", m[len(m)-1])
		}
	})
	t.Run("wrong password keeps the scans", func(t *testing.T) {
		e.settleMismatches(coi) // acknowledged and accepted by QA, as after an investigation
		b := e.login(wNurse2)
		b.post(coiPath(coi)+"/bedside", url.Values{"action": {"bag"}, "code": {bag}})
		b.post(coiPath(coi)+"/bedside", url.Values{"action": {"wristband"}, "code": {webPatient.MRN}})
		v := url.Values{}
		for k, x := range sign {
			v[k] = x
		}
		v.Set("sig_password_2", "wrong-password-1")
		p := b.post(coiPath(coi)+"/bedside", v)
		wantCode(t, p, http.StatusUnauthorized, "bedside wrong password")
		wantBody(t, p, "bedside wrong password", "A signature was not accepted.", "3. Both nurses sign")
		p = b.post(coiPath(coi)+"/bedside", url.Values{"action": {"reset"}})
		wantCode(t, p, http.StatusSeeOther, "reset")
		wantBody(t, b.get(coiPath(coi)+"/bedside"), "after reset", `value="bag"`)
	})
	t.Run("match", func(t *testing.T) {
		e.settleMismatches(coi) // acknowledged and accepted by QA, as after an investigation
		b := e.login(wNurse2)
		b.post(coiPath(coi)+"/bedside", url.Values{"action": {"bag"}, "code": {bag}})
		b.post(coiPath(coi)+"/bedside", url.Values{"action": {"wristband"}, "code": {webPatient.MRN}})
		p := b.post(coiPath(coi)+"/bedside", sign)
		wantCode(t, p, http.StatusSeeOther, "bedside match")
		p = b.get(p.Location)
		wantBody(t, p, "after match", "Bedside check passed", "Bedside check passed, ready to infuse", "Record the infusion")
		ch := e.chain(coi)
		if ch.State != custody.StateVerified {
			t.Fatalf("state %s", ch.State)
		}
		for _, r := range ch.Records {
			if strings.Contains(string(r.Data), webPatient.MRN) {
				t.Errorf("record %d holds the wristband code", r.Seq)
			}
		}
		p = b.get(coiPath(coi) + "/bedside")
		wantBody(t, p, "bedside after verification", "The bedside check is not possible now")
	})
	if strings.Contains(e.logs.String(), webPatient.MRN) {
		t.Error("the server log holds the wristband code")
	}
}

func TestWebNoSecretsAnywhere(t *testing.T) {
	// Every page the browser helper fetches is searched for passwords and
	// patient identifiers (checkNoSecrets); this test visits each page as
	// each role, including error pages that echo form input.
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateAtTreatment)
	e.excursion(coi)
	for id := range webRoles {
		b := e.login(id)
		for _, path := range []string{"/scan", "/qa", coiPath(coi), coiPath(coi) + "/bedside", "/mismatch", "/login"} {
			b.get(path)
		}
		b.get(coiPath(coi))
		b.post(coiPath(coi)+"/steps/note", url.Values{"text": {"checked"}, "sig_user_1": {id}, "sig_password_1": {webPassword(id) + "x"}})
		b.post("/scan", url.Values{"code": {webPatient.MRN}})
	}
	if strings.Contains(e.logs.String(), webPassword(wNurse1)) {
		t.Error("the server log holds a password")
	}
}

func TestWebLiveReadings(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateToManufacturing)
	e.clock.Advance(10 * time.Minute)
	e.readings("SHP-0001", 30, func(i int) float64 { return 4 + float64(i%3)/10 })
	b := e.login(wQA)
	p := b.get(coiPath(coi))
	wantBody(t, p, "chain with readings", "data-chart", `data-live="/chains/`+string(coi)+`/legs/1/live"`, "30 readings", "<polyline")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // catches a hang only
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+coiPath(coi)+"/legs/1/live", nil)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("live Content-Type %q", resp.Header.Get("Content-Type"))
	}
	buf := make([]byte, 64<<10)
	var got string
	for strings.Count(got, "event: reading") < 30 {
		n, err := resp.Body.Read(buf)
		got += string(buf[:n])
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				break
			}
			break
		}
	}
	if c := strings.Count(got, "event: reading"); c != 30 {
		t.Fatalf("stream sent %d readings, want 30:\n%s", c, got)
	}
	if !strings.Contains(got, `"c":4.2}`) || !strings.Contains(got, "id: ") {
		t.Errorf("stream events: %s", got[:min(len(got), 400)])
	}
	// Resuming after the last event sends nothing old.
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+coiPath(coi)+"/legs/1/live", nil)
	req.Header.Set("Last-Event-ID", itoa(uint64(e.clock.Now().UnixMilli())))
	resp2, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := resp2.Body.Read(buf)
	resp2.Body.Close()
	if strings.Contains(string(buf[:n]), "event: reading") {
		t.Errorf("resumed stream repeats readings: %s", buf[:n])
	}
	// A received leg is not live.
	e.step(coi, custody.StepReceive, `{"seal_intact":true}`, wsig(wMfg, custody.MeaningReceived))
	p = b.get(coiPath(coi) + "/legs/1/live")
	wantCode(t, p, http.StatusNoContent, "live stream of a closed leg")
	p = b.get(coiPath(coi))
	wantBody(t, p, "sealed leg", "Telemetry sealed at receipt: 30 readings", "Seal verified against the stored readings.")
	wantNotBody(t, p, "sealed leg", "data-live=")
}

func TestWebPlainErrors(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	b := e.login(wNurse1)
	// A cancelled chain: the conflict message is a sentence, not a code.
	e.step(coi, custody.StepCancel, `{"reason":"patient withdrew"}`, wsig(wQA, custody.MeaningApproved))
	p := b.get(coiPath(coi))
	wantBody(t, p, "cancelled chain", "This chain is cancelled.")
	p = b.post(coiPath(coi)+"/steps/note", url.Values{"text": {"x"}, "sig_user_1": {wNurse1}, "sig_password_1": {webPassword(wNurse1)}})
	wantCode(t, p, http.StatusConflict, "note on a cancelled chain")
	wantBody(t, p, "note on a cancelled chain", "This step cannot be recorded now.", "Chain is cancelled and takes no new records.")
	wantNotBody(t, p, "note on a cancelled chain", ": conflict")
}

func TestWebReportLinks(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateCollected)
	qa, nurse := e.login(wQA), e.login(wNurse1)
	wantBody(t, qa.get(coiPath(coi)), "QA chain page", coiPath(coi)+"/report.pdf", coiPath(coi)+"/epcis.json")
	p := nurse.get(coiPath(coi))
	wantNotBody(t, p, "nurse chain page", "report.pdf")
	wantBody(t, p, "nurse chain page", "epcis.json")
	if p := qa.get(coiPath(coi) + "/report.pdf"); p.Code != http.StatusOK || p.Header.Get("Content-Type") != "application/pdf" {
		t.Errorf("QA report: %d %s", p.Code, p.Header.Get("Content-Type"))
	}
	wantCode(t, nurse.get(coiPath(coi)+"/report.pdf"), http.StatusForbidden, "nurse report")
	wantCode(t, nurse.get(coiPath(coi)+"/epcis.json"), http.StatusOK, "nurse EPCIS")
	wantCode(t, e.browser().get(coiPath(coi)+"/report.pdf"), http.StatusSeeOther, "signed-out report")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // catches a hang only
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+"/alerts/live", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := qa.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("alert stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+"/alerts/live", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err = e.browser().c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("alert stream without a session: %d, want 401", resp.StatusCode)
	}
}

// TestWebSignInThrottle: failed sign-ins from one address are limited, so
// one stranger cannot lock every nurse out by guessing (five wrong
// passwords lock an account). Once the limit is reached, attempts are
// refused without checking any password: nothing more counts against the
// accounts. After the window the address may try again.
func TestWebSignInThrottle(t *testing.T) {
	e := newWebEnv(t, false)
	b := e.browser()
	b.get("/login")
	// The ward's workstations share one address (a NAT); nurse2 signed in
	// from it before.
	if c := postLogin(t, e.ts.URL, wNurse2, webPassword(wNurse2), "", loginToken(t, e.ts.URL)); c != http.StatusSeeOther {
		t.Fatalf("first sign-in: %d", c)
	}
	victims := []string{wNurse1, wNurse2, wQA, wCoord, wMfg}
	for i := range 10 {
		id := victims[i%len(victims)]
		p := b.post("/login", url.Values{"user": {id}, "password": {"a-wrong-guess"}})
		wantCode(t, p, http.StatusUnauthorized, "wrong password "+strconv.Itoa(i+1))
	}
	count := func(id string) int {
		u, err := e.store.User(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return u.FailedSignatures
	}
	p := b.post("/login", url.Values{"user": {wNurse1}, "password": {"a-wrong-guess"}})
	wantCode(t, p, http.StatusTooManyRequests, "eleventh failure")
	wantBody(t, p, "throttled", "Too many failed sign-ins from this device.")
	if p.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Sign-ins are never counted against the account (nobody is
	// authenticated yet; a stranger could lock it): they slow the address.
	if n := count(wNurse1); n != 0 {
		t.Fatalf("failed sign-ins counted against the account: %d failures, want 0", n)
	}
	p = b.post("/login", url.Values{"user": {wCourier}, "password": {webPassword(wCourier)}})
	wantCode(t, p, http.StatusTooManyRequests, "a new ID's right password while throttled")
	// An ID that signed in from this address gets in with its password,
	// its own limit still applied: two wrong passwords so far, two more.
	tok := loginToken(t, e.ts.URL)
	if c := postLogin(t, e.ts.URL, wNurse2, webPassword(wNurse2), "", tok); c != http.StatusSeeOther {
		t.Fatalf("known ID's right password at a busy address: %d, want 303", c)
	}
	for i, want := range []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusTooManyRequests} {
		if c := postLogin(t, e.ts.URL, wNurse2, "a-wrong-guess", "", tok); c != want {
			t.Fatalf("known ID's wrong password %d at a busy address: %d, want %d", i+1, c, want)
		}
	}
	e.clock.Advance(15*time.Minute + time.Second)
	p = b.post("/login", url.Values{"user": {wCourier}, "password": {webPassword(wCourier)}})
	wantCode(t, p, http.StatusSeeOther, "sign in after the window")
}

// postLogin posts a sign-in form from a fresh client holding the sign-in
// cookie tok, with an X-Forwarded-For header when xff is set, and returns
// the status.
func postLogin(t *testing.T, base, user, password, xff, tok string) int {
	v := url.Values{"user": {user}, "password": {password}, "csrf": {tok}}
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "coid_login", Value: tok})
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// loginToken fetches the sign-in page and returns its CSRF cookie's value.
func loginToken(t *testing.T, base string) string {
	resp, err := http.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "coid_login" {
			return c.Value
		}
	}
	t.Fatalf("no sign-in cookie: %v", resp.Cookies())
	return ""
}

// TestWebSignInThrottleHolds: sign-ins sent in parallel, or with a forged
// X-Forwarded-For from a peer that is not a trusted proxy, get no more
// password checks than the limit.
func TestWebSignInThrottleHolds(t *testing.T) {
	victims := []string{wNurse1, wNurse2, wQA, wCoord, wMfg, wCourier}
	t.Run("parallel", func(t *testing.T) {
		e := newWebEnv(t, false)
		tok := loginToken(t, e.ts.URL)
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		for i := range 60 {
			wg.Go(func() {
				c := postLogin(t, e.ts.URL, victims[i%len(victims)], "a-wrong-guess", "", tok)
				mu.Lock()
				codes[c]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if codes[http.StatusUnauthorized] > 10 || codes[http.StatusTooManyRequests] < 50 {
			t.Fatalf("60 parallel wrong passwords from one address: %v, want at most 10 checked", codes)
		}
	})
	t.Run("one address cannot lock an account", func(t *testing.T) {
		e := newWebEnv(t, false)
		tok := loginToken(t, e.ts.URL)
		codes := map[int]int{}
		for range 8 {
			codes[postLogin(t, e.ts.URL, wNurse1, "a-wrong-guess", "", tok)]++
		}
		u, err := e.store.User(context.Background(), wNurse1)
		if err != nil {
			t.Fatal(err)
		}
		if u.Locked || u.FailedSignatures != 0 || codes[http.StatusTooManyRequests] != 4 {
			t.Fatalf("8 wrong passwords for one account from one address: %v; account locked %v after %d failures", codes, u.Locked, u.FailedSignatures)
		}
		// Another account from the same address is not held back by it.
		if c := postLogin(t, e.ts.URL, wNurse2, webPassword(wNurse2), "", tok); c != http.StatusSeeOther {
			t.Fatalf("another user's right password: %d", c)
		}
	})
	t.Run("forged X-Forwarded-For", func(t *testing.T) {
		e := newWebEnv(t, false)
		srv, err := api.New(api.Config{Service: e.svc, Logger: slog.New(slog.DiscardHandler), Version: "test", TrustedProxies: []string{"203.0.113.7/32"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := web.Mount(srv); err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv.Handler())
		defer ts.Close()
		tok := loginToken(t, ts.URL)
		checked := 0
		for i := range 30 {
			if postLogin(t, ts.URL, victims[i%len(victims)], "a-wrong-guess", fmt.Sprintf("198.51.100.%d", i+1), tok) == http.StatusUnauthorized {
				checked++
			}
		}
		if checked > 10 {
			t.Fatalf("%d wrong passwords checked from one peer forging X-Forwarded-For, limit 10", checked)
		}
	})
}

// TestWebEnrollment: a coordinator enrolls a patient from the browser and
// lands on the new chain; a refused enrollment shows why with the form as
// typed and writes nothing; other roles get no form, and the domain
// refuses them anyway.
func TestWebEnrollment(t *testing.T) {
	e := newWebEnv(t, false)
	form := url.Values{"name": {"Rosalind Achterberg"}, "birth_date": {"1966-09-30"}, "mrn": {"MRN-5550123"},
		"product": {"Autologous CAR-T cells"}, "collection": {"St Elsewhere Apheresis"}, "manufacturing": {"CellWorks NJ"},
		"treatment": {"St Elsewhere BMT"}}
	nurse := e.login(wNurse1)
	wantNotBody(t, nurse.get("/scan"), "nurse's navigation", `href="/enroll"`)
	wantCode(t, nurse.get("/enroll"), http.StatusForbidden, "a nurse opens the enrollment form")
	wantCode(t, nurse.post("/enroll", form), http.StatusForbidden, "a nurse posts an enrollment")

	coord := e.login(wCoord)
	p := coord.get("/enroll")
	wantCode(t, p, http.StatusOK, "enrollment form")
	wantBody(t, p, "enrollment form", `action="/enroll"`, `name="birth_date"`, `type="date"`, `aria-current="page">Enroll a patient`)

	chains := func() int {
		list, err := e.svc.Chains(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	before := chains()
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("birth_date", "2099-01-01")
	p = coord.post("/enroll", bad)
	wantCode(t, p, http.StatusBadRequest, "a birth date in the future")
	wantBody(t, p, "refused enrollment", "The patient was not enrolled.", `value="Rosalind Achterberg"`, `value="MRN-5550123"`)
	if chains() != before {
		t.Fatal("a refused enrollment wrote a chain")
	}

	p = coord.post("/enroll", form)
	wantCode(t, p, http.StatusSeeOther, "enrollment")
	if !strings.HasPrefix(p.Location, "/chains/CH") {
		t.Fatalf("enrollment goes to %q", p.Location)
	}
	coi := custody.COI(strings.TrimPrefix(p.Location, "/chains/"))
	p = coord.get(p.Location)
	wantBody(t, p, "new chain", "Enrolled: COI "+coi.Display())
	wantNotBody(t, p, "new chain page", "Rosalind", "MRN-5550123")
	phi, err := e.svc.PHI(context.Background(), coi)
	if err != nil || phi.Name != "Rosalind Achterberg" || phi.MRN != "MRN-5550123" || phi.BirthDate != "1966-09-30" {
		t.Fatalf("stored identity %+v, %v", phi, err)
	}
}
