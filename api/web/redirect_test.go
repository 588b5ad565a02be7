package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestSignInRedirectStaysOnSite: after signing in, the browser goes to the
// "next" the sign-in form carried. The old check let "/\t/evil.example"
// through, and browsers (which drop the tab) went off-site. Each value is
// followed here as a browser follows a Location header.
func TestSignInRedirectStaysOnSite(t *testing.T) {
	e := newWebEnv(t, false)
	site, _ := url.Parse(e.ts.URL)
	for _, next := range []string{"/\t/evil.example/x", "/\\evil.example", "\\/evil.example", " //evil.example",
		"/\n/evil.example", "https://evil.example/", "/scan?x=1"} {
		b := e.browser()
		b.get("/login?next=" + url.QueryEscape(next))
		p := b.post("/login", url.Values{"user": {wNurse1}, "password": {webPassword(wNurse1)}, "next": {next}})
		wantCode(t, p, http.StatusSeeOther, "sign in with next "+next)
		loc := strings.TrimFunc(p.Location, func(r rune) bool { return r <= 0x20 })
		loc = strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(loc)
		ref, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("next %q: Location %q: %v", next, p.Location, err)
		}
		if u := site.ResolveReference(ref); u.Host != site.Host || u.Scheme != site.Scheme {
			t.Errorf("next %q: the browser leaves the site for %s", next, u)
		}
	}
}
