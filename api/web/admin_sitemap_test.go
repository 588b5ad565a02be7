package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// mapRow returns the part of body that draws the site name's row, "" if
// the page has none.
func mapRow(body, name string) string {
	i := strings.Index(body, `data-name="`+name+`"`)
	if i < 0 {
		return ""
	}
	rest := body[i:]
	if j := strings.Index(rest, "</li>"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// TestAdminSiteMappings: the free-text site names of a chain from before
// the network are listed with a choice of the registered sites; a
// mapping without a reason, or to a suspended site, is refused beside
// its field with what was chosen kept and nothing mapped; a good one is
// listed as made and can be changed. QA reads; the others get 403.
func TestAdminSiteMappings(t *testing.T) {
	e := newWebEnv(t, false)
	ctx := context.Background()
	e.enroll() // free-text sites: St. Mary Apheresis, CellWorks Plant 2, St. Mary Oncology
	webNetwork(t, e)
	admin := e.users[wAdmin]
	adm := e.login(wAdmin)
	const name = "St. Mary Apheresis"

	p := adm.get("/admin/site-mappings")
	wantCode(t, p, http.StatusOK, "mappings")
	row := mapRow(p.Body, name)
	if row == "" || !strings.Contains(row, `<option value="PAR-1">PAR-1 · Saint-Louis</option>`) || strings.Contains(row, `value="SUSP-1"`) {
		t.Fatalf("row of %q: %s", name, row)
	}
	wantBody(t, p, "mappings", `data-name="CellWorks Plant 2"`, `data-name="St. Mary Oncology"`, "No site name has been mapped yet.")

	cases := []struct {
		what, site, reason, field, says string
	}{
		{"no reason", "PAR-1", " ", "reason", "reason is required"},
		{"no site", "", "migration", "site", "Choose the registered site"},
		{"suspended site", "SUSP-1", "migration", "site", "SUSP-1 is suspended"},
		{"unknown site", "NOPE-9", "migration", "site", "no site NOPE-9 is registered"},
	}
	for _, c := range cases {
		p = adm.post("/admin/site-mappings", url.Values{"name": {name}, "site": {c.site}, "reason": {c.reason}})
		wantCode(t, p, http.StatusUnprocessableEntity, c.what)
		row := mapRow(p.Body, name)
		if b := fieldBlock(row, c.field); !strings.Contains(b, `class="field-error"`) || !strings.Contains(b, c.says) {
			t.Errorf("%s: no refusal saying %q beside %s in the row:\n%s", c.what, c.says, c.field, row)
		}
		if strings.Count(p.Body, `class="field-error"`) != 1 {
			t.Errorf("%s: the refusal shows elsewhere too", c.what)
		}
		if c.site != "" && !strings.Contains(row, `value="`+c.site+`" selected`) || !strings.Contains(row, `value="`+c.reason+`"`) {
			t.Errorf("%s: the row does not keep what was sent:\n%s", c.what, row)
		}
		if _, err := e.svc.SiteMappingEntry(ctx, admin, name); !errors.Is(err, custody.ErrNotFound) {
			t.Fatalf("%s: mapped anyway: %v", c.what, err)
		}
	}

	p = adm.post("/admin/site-mappings", url.Values{"name": {name}, "site": {"PAR-1"}, "reason": {"migration: the apheresis unit is Saint-Louis"}})
	wantCode(t, p, http.StatusSeeOther, "map")
	if m, err := e.svc.SiteMappingEntry(ctx, admin, name); err != nil || m.Site != "PAR-1" {
		t.Fatalf("after mapping: %v %+v", err, m)
	}
	p = adm.get("/admin/site-mappings")
	wantBody(t, p, "after mapping", "Site name “St. Mary Apheresis” mapped to PAR-1.")
	row = mapRow(p.Body, name)
	if !strings.Contains(row, `<span class="map-site">PAR-1</span>`) || !strings.Contains(row, ">Change</button>") {
		t.Errorf("the mapping made is not listed as such: %s", row)
	}
	if strings.Count(p.Body, `data-name="`+name+`"`) != 1 {
		t.Errorf("a mapped name is still listed to map")
	}
	wantCode(t, adm.post("/admin/site-mappings", url.Values{"name": {name}, "site": {"MFG-1"}, "reason": {"x"}, "csrf": {"forged"}}),
		http.StatusForbidden, "forged CSRF")

	qa := e.login(wQA)
	p = qa.get("/admin/site-mappings")
	wantCode(t, p, http.StatusOK, "QA reads")
	wantBody(t, p, "QA reads", `data-name="St. Mary Oncology"`, `<span class="map-site">PAR-1</span>`)
	wantNotBody(t, p, "QA reads", `action="/admin/site-mappings"`)
	nurse := e.login(wNurse1)
	for who, b := range map[string]*browser{"QA": qa, "nurse": nurse} {
		wantCode(t, b.post("/admin/site-mappings", url.Values{"name": {"St. Mary Oncology"}, "site": {"PAR-1"}, "reason": {"r"}}),
			http.StatusForbidden, who+" maps")
	}
	wantCode(t, nurse.get("/admin/site-mappings"), http.StatusForbidden, "nurse reads")
	if _, err := e.svc.SiteMappingEntry(ctx, admin, "St. Mary Oncology"); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("QA or a nurse mapped a name: %v", err)
	}
	if m, _ := e.svc.SiteMappingEntry(ctx, admin, name); m.Site != "PAR-1" {
		t.Fatalf("a forged form changed the mapping: %+v", m)
	}
}
