package web_test

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestWebConsolePages: the console's table of chains in flight comes in
// pages, most recently updated first, with a link to the next page and
// back to the first; the header counts every chain in flight and the open
// issues show on every page.
func TestWebConsolePages(t *testing.T) {
	e := newWebEnv(t, false)
	a := e.enroll()
	e.advance(a, custody.StateToTreatment)
	var all []custody.COI
	for range 4 {
		e.clock.Advance(time.Minute)
		all = append(all, e.enroll())
	}
	e.clock.Advance(time.Minute)
	e.excursion(a)
	all = append(all, a)
	qa := e.login(wQA)
	next := regexp.MustCompile(`href="(/qa\?[^"]*after=[^"]*)" rel="next"`)
	rows := regexp.MustCompile(`<tr(?: class="open")?><td><a href="/chains/(CH[0-9A-Z]+)">`)
	listed := map[string]int{}
	path := "/qa?limit=2"
	for n := 1; ; n++ {
		p := qa.get(path)
		wantCode(t, p, http.StatusOK, "console page")
		wantBody(t, p, "console page", "5 chain(s) in flight.", `Chains in flight <span class="count">5</span>`,
			`Open issues <span class="count">1</span>`, `<a href="/chains/`+string(a)+`#issues">`, "temperature excursion")
		if n > 1 {
			wantBody(t, p, "console page after the first", `href="/qa#chains" rel="first">First page</a>`)
		}
		got := rows.FindAllStringSubmatch(p.Body, -1)
		if len(got) == 0 || len(got) > 2 {
			t.Fatalf("page %d lists %d chains\n%s", n, len(got), excerpt(p.Body))
		}
		for _, m := range got {
			listed[m[1]]++
		}
		m := next.FindStringSubmatch(p.Body)
		if m == nil {
			if n != 3 {
				t.Fatalf("the last page is page %d, want 3", n)
			}
			break
		}
		path = html.UnescapeString(m[1])
		if !strings.Contains(path, "limit=2") {
			t.Fatalf("next page %q forgets the page size", path)
		}
	}
	if len(listed) != len(all) {
		t.Fatalf("pages list %v, want each of %v once", listed, all)
	}
	for _, coi := range all {
		if listed[string(coi)] != 1 {
			t.Errorf("%s listed %d times", coi, listed[string(coi)])
		}
	}
	// The most recently updated first: the chain with the excursion,
	// then the chains enrolled last.
	p := qa.get("/qa?limit=2")
	if got := rows.FindAllStringSubmatch(p.Body, -1); len(got) != 2 || got[0][1] != string(a) || got[1][1] != string(all[3]) {
		t.Errorf("first rows %v, want %s then %s", got, a, all[3])
	}
	// A state's pages keep the state.
	p = qa.get("/qa?state=enrolled&limit=3")
	wantBody(t, p, "enrolled chains", `Chains Enrolled, waiting for collection <span class="count">4</span>`, `href="/qa?after=`)
	if m := next.FindStringSubmatch(p.Body); m == nil || !strings.Contains(html.UnescapeString(m[1]), "state=enrolled") {
		t.Errorf("next page of the enrolled chains: %v", m)
	}
	// A cursor the console never gave: a clear refusal.
	p = qa.get("/qa?after=nonsense")
	wantCode(t, p, http.StatusBadRequest, "console with a bad cursor")
}
