package api_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestWaitlistPaged: GET /waitlist pages by cursor (after, next) in the
// fairness order; entries added between pages before the cursor are not
// listed by the later pages, those after it are, and none is listed
// twice or skipped. offset still pages as documented; a bad cursor, or a
// cursor with an offset, is refused.
func TestWaitlistPaged(t *testing.T) {
	e := scheduleEnv(t)
	wait := func(urgency int) custody.COI {
		t.Helper()
		coi := e.enrollCART19(t)
		if r := e.do(t, http.MethodPost, chainPath(coi, "/waitlist"), coord, map[string]any{"urgency": urgency, "reason": "no slot this month"}); r.Code != http.StatusCreated {
			t.Fatalf("wait %s: %s", coi, r)
		}
		return coi
	}
	list := func(q string) map[string]any {
		t.Helper()
		r := e.do(t, http.MethodGet, "/api/v1/waitlist"+q, coord, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("GET /waitlist%s: %s", q, r)
		}
		return r.object(t)
	}
	cois := func(m map[string]any) []string {
		var out []string
		for _, x := range m["entries"].([]any) {
			out = append(out, x.(map[string]any)["coi"].(string))
		}
		return out
	}
	for _, u := range []int{2, 2, 3, 2, 3} {
		wait(u)
	}
	before := cois(list("?limit=100"))
	var got []string
	var added []string
	after := ""
	for p := 0; p < 10; p++ {
		m := list("?limit=2&after=" + url.QueryEscape(after))
		got = append(got, cois(m)...)
		if p == 0 {
			wait(1)                                // urgent: before the cursor, not listed
			added = append(added, string(wait(3))) // last: after the cursor, listed
		}
		next, ok := m["next"].(string)
		if !ok {
			break
		}
		after = next
	}
	want := append(slices.Clone(before), added...)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("paged with entries added between pages:\n%v\nwant\n%v", got, want)
	}
	all := cois(list(""))
	if len(all) != 7 || all[0] == want[0] {
		t.Fatalf("whole list %v: want the urgent entry first", all)
	}
	if off := cois(list("?offset=1&limit=2")); !slices.Equal(off, all[1:3]) {
		t.Fatalf("offset=1&limit=2 = %v, want %v", off, all[1:3])
	}
	for _, c := range []struct{ q, want string }{
		{"?after=x", "not a waiting-list cursor"},
		{"?after=9/1/CHA1", "not a waiting-list cursor"},
		{"?after=" + url.QueryEscape("1/1/"+all[0]) + "&offset=1", "offset and after"},
		{"?limit=0", "limit"},
	} {
		if r := e.do(t, http.MethodGet, "/api/v1/waitlist"+c.q, coord, nil); r.Code != http.StatusBadRequest || !strings.Contains(string(r.Body), c.want) {
			t.Errorf("GET /waitlist%s: %s, want 400 with %q", c.q, r, c.want)
		}
	}
	if r := e.do(t, http.MethodGet, "/api/v1/waitlist?limit=2", "", nil); r.Code != http.StatusUnauthorized {
		t.Errorf("GET /waitlist without a token: %s, want 401", r)
	}
}
