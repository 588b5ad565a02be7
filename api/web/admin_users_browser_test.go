package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserAdminUserLifecycle: on an 820 px portrait tablet an
// administrator creates a nurse bound to a site (a refused form first
// keeps what was typed), reads her temporary password once, changes her
// sites, sees her kept out after wrong passwords at /login and unlocks
// her, after which she signs in and must change the password; no page
// scrolls sideways.
func TestBrowserAdminUserLifecycle(t *testing.T) {
	e := newWebEnv(t, false)
	usersNetwork(t, e)
	ctx := newChrome(t, 820, 1180, 90*time.Second)
	browserLogin(t, ctx, e, wAdmin)
	noSideways := func(what string) {
		t.Helper()
		if wide := value(t, ctx, what+": width", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > innerWidth`)); wide {
			t.Errorf("%s scrolls sideways at 820 px", what)
		}
	}
	run(t, ctx, "open the accounts and fill the form without a reason",
		chromedp.Navigate(e.ts.URL+"/admin/users"),
		chromedp.WaitVisible(chromedp.CSS(`#user-form`)),
		chromedp.SendKeys(chromedp.CSS(`#user-form input[name=id]`), "nina.r"),
		chromedp.SendKeys(chromedp.CSS(`#user-form input[name=name]`), "Nina Rossi"),
		chromedp.SetValue(chromedp.CSS(`#user-form select[name=role]`), "nurse"),
		chromedp.SetValue(chromedp.CSS(`#user-form select[name=organisation]`), "APHP"),
		chromedp.Click(chromedp.CSS(`#user-form input[name=sites][value=PAR-1]`)),
		chromedp.SendKeys(chromedp.CSS(`#user-form input[name=reason]`), " "),
		chromedp.Submit(chromedp.CSS(`#user-form`)),
		chromedp.WaitVisible(chromedp.CSS(`#err-reason`)),
	)
	kept := value(t, ctx, "kept", chromedp.Evaluate[string](`(f => f.id.value + "|" + f.name.value + "|" + f.organisation.value + "|" +
		f.querySelector("input[value='PAR-1']").checked)(document.getElementById("user-form"))`))
	if kept != "nina.r|Nina Rossi|APHP|true" {
		t.Errorf("the refused form kept %q", kept)
	}
	noSideways("refused create form")
	run(t, ctx, "create with a reason",
		chromedp.SendKeys(chromedp.CSS(`#user-form input[name=reason]`), "new starter"),
		chromedp.Submit(chromedp.CSS(`#user-form`)),
		chromedp.WaitVisible(chromedp.CSS(`#once-password`)),
	)
	temp := text(t, ctx, `#once-password`)
	if len(temp) < 16 {
		t.Fatalf("temporary password %q", temp)
	}
	noSideways("created")
	shot(t, ctx, "admin-users-created")
	run(t, ctx, "open her account and add a second site",
		chromedp.Click(chromedp.CSS(`#shown-once a`)),
		chromedp.WaitVisible(chromedp.CSS(`#network-form`)),
		chromedp.Click(chromedp.CSS(`#network-form input[name=sites][value=PAR-2]`)),
		chromedp.SendKeys(chromedp.CSS(`#network-form input[name=reason]`), "covers Saint-Antoine"),
		chromedp.Submit(chromedp.CSS(`#network-form`)),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	)
	if got := text(t, ctx, `#acct-sites`); got != "PAR-1, PAR-2" {
		t.Errorf("sites after the change: %q", got)
	}
	if strings.Contains(value(t, ctx, "page", chromedp.Text(chromedp.CSS("main"))), temp) {
		t.Error("the account page shows the temporary password again")
	}
	noSideways("account page")

	// Nina mistypes her password at /login until she is kept out.
	nina := e.browser()
	signIn := func(password string) page {
		nina.get("/login")
		return nina.post("/login", url.Values{"user": {"nina.r"}, "password": {password}})
	}
	kept429 := false
	for range 10 {
		if p := signIn("wrong-password-1"); p.Code == http.StatusTooManyRequests {
			kept429 = true
			break
		}
	}
	if p := signIn(temp); !kept429 || p.Code != http.StatusTooManyRequests {
		t.Fatalf("Nina is not kept out after wrong passwords (right one: %d)", p.Code)
	}
	run(t, ctx, "the account says she is kept out",
		chromedp.Navigate(e.ts.URL+"/admin/users/nina.r"),
		chromedp.WaitVisible(chromedp.CSS(`#acct-state`)),
	)
	if got := text(t, ctx, `#acct-state`); !strings.Contains(got, "kept out of sign-in") {
		t.Errorf("state before the unlock: %q", got)
	}
	run(t, ctx, "unlock",
		chromedp.SendKeys(chromedp.CSS(`form[data-action=unlock] input[name=reason]`), "she called the help desk\r"),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	)
	if got := text(t, ctx, `#acct-state`); strings.Contains(got, "kept out") {
		t.Errorf("state after the unlock: %q", got)
	}
	if got := text(t, ctx, `#acct-audit + table`); !strings.Contains(got, "she called the help desk") || !strings.Contains(got, "covers Saint-Antoine") {
		t.Errorf("the account's audit entries: %q", got)
	}
	noSideways("after the unlock")
	shot(t, ctx, "admin-user-account")
	p := signIn(temp)
	if p.Code != http.StatusSeeOther {
		t.Fatalf("Nina signs in after the unlock: %d", p.Code)
	}
	if p.Location != "/password" {
		t.Fatalf("Nina is not sent to change the temporary password: %s", p.Location)
	}
	if p = nina.get("/scan"); p.Code != http.StatusSeeOther || p.Location != "/password" {
		t.Fatalf("Nina reaches the scan station before changing the password: %d %s", p.Code, p.Location)
	}
}
