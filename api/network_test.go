package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// networkEnv is registryEnv with a manufacturer and its plant, and the
// people bound to their organisations and sites, so chains can be
// enrolled from the registries and walked.
func networkEnv(t testing.TB, shipperDue string, opts ...option) *env {
	e := registryEnv(t, opts...)
	for _, c := range []struct {
		path string
		body any
	}{
		{"/api/v1/organisations", map[string]any{"code": "CELLCO", "name": "CellCo", "kind": "manufacturer", "reason": "network set-up"}},
		{"/api/v1/sites", with(regSite, "code", "MFG-1", "organisation", "CELLCO", "kinds", []string{"manufacturing"}, "time_zone", "America/New_York",
			"fin", nil, "gln", nil)},
		{"/api/v1/shippers", with(regShipper, "id", "SHP-0042", "requalification_due", shipperDue)},
	} {
		if r := e.do(t, http.MethodPost, c.path, admin, c.body); r.Code != http.StatusCreated {
			t.Fatalf("POST %s: %s", c.path, r)
		}
	}
	n := netOf(t, e)
	for id, org := range map[string]string{coord: "APHP", nurse1: "APHP", nurse2: "APHP", courier: "FASTCO", mfg: "CELLCO", qa: "CELLCO"} {
		sites := []string{"PAR-1"}
		if org == "CELLCO" {
			sites = []string{"MFG-1"}
		} else if org == "FASTCO" {
			sites = nil
		}
		n.Bind(t, id, org, sites...)
	}
	return e
}

func networkEnroll(sites map[string]string, product string) map[string]any {
	b := enrollBody(patientA)
	b["sites"], b["product"] = sites, product
	return b
}

var netSites = map[string]string{"collection": "PAR-1", "manufacturing": "MFG-1", "treatment": "PAR-1"}

func TestEnrollFromRegistriesAPI(t *testing.T) {
	e := networkEnv(t, "2027-03-01")
	for _, c := range []struct {
		name    string
		sites   map[string]string
		product string
		status  int
		text    string
	}{
		{"free-text site", map[string]string{"collection": "St. Elsewhere Apheresis", "manufacturing": "MFG-1", "treatment": "PAR-1"}, "CART-19",
			http.StatusBadRequest, "sites.collection"},
		{"wrong kind", map[string]string{"collection": "PAR-1", "manufacturing": "PAR-1", "treatment": "PAR-1"}, "CART-19",
			http.StatusBadRequest, "not a manufacturing site"},
		{"unknown product", netSites, "autologous anti-CD19 CAR-T", http.StatusBadRequest, "not a registered product"},
		{"accepted", netSites, "CART-19", http.StatusCreated, `"product":"CART-19"`},
	} {
		r := e.do(t, http.MethodPost, "/api/v1/chains", coord, networkEnroll(c.sites, c.product))
		if r.Code != c.status || !strings.Contains(string(r.Body), c.text) {
			t.Errorf("%s: %s, want %d naming %q", c.name, r, c.status, c.text)
		}
	}
	// An expired qualification refuses enrollment with 409.
	if r := e.do(t, http.MethodPut, "/api/v1/sites/MFG-1", admin, with(regSite, "code", "MFG-1", "organisation", "CELLCO", "kinds", []string{"manufacturing"},
		"time_zone", "America/New_York", "fin", nil, "gln", nil, "qualification", map[string]any{"training_done": true, "date": "2025-11-01", "expiry": "2026-11-01"},
		"reason", "lapsed")); r.Code != http.StatusOK {
		t.Fatalf("update MFG-1: %s", r)
	}
	r := e.do(t, http.MethodPost, "/api/v1/chains", coord, networkEnroll(netSites, "CART-19"))
	if code, msg := r.errorBody(t); r.Code != http.StatusConflict || code != "conflict" || !strings.Contains(msg, "manufacturing site MFG-1's qualification expired on 2026-11-01") {
		t.Errorf("enroll at a lapsed site: %s", r)
	}
}

func TestShipGateAPI(t *testing.T) {
	e := networkEnv(t, "2026-11-20")
	r := e.do(t, http.MethodPost, "/api/v1/chains", coord, networkEnroll(netSites, "CART-19"))
	if r.Code != http.StatusCreated {
		t.Fatalf("enroll: %s", r)
	}
	coi := custody.COI(r.object(t)["coi"].(string))
	e.advance(t, coi, patientA.MRN, 1)
	s := journey(coi, patientA.MRN)[1]
	r = e.step(t, coi, s.actor, s.step, s.data, s.sigs...)
	if code, msg := r.errorBody(t); r.Code != http.StatusConflict || code != "conflict" || !strings.Contains(msg, "shipper SHP-0042 was due for requalification on 2026-11-20") {
		t.Errorf("ship in a lapsed shipper: %s", r)
	}
	data := map[string]any{"shipper": "SHP-7777", "profile": "refrigerated"}
	r = e.step(t, coi, s.actor, s.step, data, s.sigs...)
	if r.Code != http.StatusConflict || !strings.Contains(string(r.Body), "shipper SHP-7777 is not registered") {
		t.Errorf("ship in an unregistered shipper: %s", r)
	}
}

func TestSiteMappingsAPI(t *testing.T) {
	e := newEnv(t)
	e.enroll(t, patientB) // free text, before the network is registered
	for _, c := range []struct {
		path string
		body any
	}{{"/api/v1/organisations", regHospital}, {"/api/v1/sites", regSite}} {
		if r := e.do(t, http.MethodPost, c.path, admin, c.body); r.Code != http.StatusCreated {
			t.Fatalf("POST %s: %s", c.path, r)
		}
	}
	path := "/api/v1/site-mappings/" + url.PathEscape("St. Elsewhere Apheresis")
	body := map[string]any{"site": "PAR-1", "reason": "migration"}
	for _, c := range []struct {
		method, path, user string
		body               any
		status             int
	}{
		{http.MethodPut, path, qa, body, http.StatusForbidden},
		{http.MethodPut, path, admin, map[string]any{"site": "NOPE-1", "reason": "migration"}, http.StatusBadRequest},
		{http.MethodPut, path, admin, map[string]any{"site": "PAR-1"}, http.StatusBadRequest},
		{http.MethodPut, path, admin, map[string]any{"site": "PAR-1", "reason": "x", "extra": 1}, http.StatusBadRequest},
		{http.MethodGet, path, qa, nil, http.StatusNotFound},
		{http.MethodPut, path, admin, body, http.StatusCreated},
		{http.MethodPut, path, admin, body, http.StatusOK},
		{http.MethodGet, path, qa, nil, http.StatusOK},
		{http.MethodGet, path, nurse1, nil, http.StatusForbidden},
		{http.MethodGet, "/api/v1/site-mappings", admin, nil, http.StatusOK},
		{http.MethodGet, "/api/v1/site-mappings?limit=0", admin, nil, http.StatusBadRequest},
		{http.MethodGet, "/api/v1/site-mappings", coord, nil, http.StatusForbidden},
		{http.MethodGet, "/api/v1/site-mappings", "", nil, http.StatusUnauthorized},
	} {
		if r := e.do(t, c.method, c.path, c.user, c.body); r.Code != c.status {
			t.Errorf("%s %s as %q: %s, want %d", c.method, c.path, c.user, r, c.status)
		}
	}
	for _, c := range []struct {
		user, q, want string
		status        int
	}{
		{qa, "", `{"count":2,"names":["CellWorks Plant 2","St. Elsewhere Cell Therapy Ward"]}`, http.StatusOK},
		{admin, "?limit=1", `"next":"CellWorks Plant 2"`, http.StatusOK},
		{admin, "?after=CellWorks%20Plant%202", `"names":["St. Elsewhere Cell Therapy Ward"]`, http.StatusOK},
		{nurse1, "", "", http.StatusForbidden},
	} {
		if r := e.do(t, http.MethodGet, "/api/v1/site-names/unmapped"+c.q, c.user, nil); r.Code != c.status || !strings.Contains(string(r.Body), c.want) {
			t.Errorf("unmapped names as %s%s: %s, want %d with %s", c.user, c.q, r, c.status, c.want)
		}
	}
	r := e.do(t, http.MethodGet, path, admin, nil)
	if m := r.object(t); m["name"] != "St. Elsewhere Apheresis" || m["site"] != "PAR-1" {
		t.Errorf("mapping %v", m)
	}
	if l := e.do(t, http.MethodGet, "/api/v1/site-mappings", admin, nil).object(t); l["count"] != 1.0 {
		t.Errorf("list %v", l)
	}
}

func TestExpiringQualificationsAPI(t *testing.T) {
	e := networkEnv(t, "2026-11-20")
	r := e.do(t, http.MethodGet, "/api/v1/qualifications/expiring?days=60", qa, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("expiring: %s", r)
	}
	// The shipper is overdue; PAR-1 and MFG-1's qualifications expire on
	// 2027-01-15, 54 days after the test clock's 2026-11-22.
	for _, want := range []string{`"code":"SHP-0042","what":"requalification","date":"2026-11-20","days":-2`,
		`"code":"PAR-1","what":"qualification","date":"2027-01-15","days":54`, `"count":3`, `"days":60`} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("expiring: %s lacks %s", r.Body, want)
		}
	}
	if r := e.do(t, http.MethodGet, "/api/v1/qualifications/expiring", qa, nil); !strings.Contains(string(r.Body), `"count":1`) || !strings.Contains(string(r.Body), `"days":30`) {
		t.Errorf("default 30 days: %s", r)
	}
	for _, c := range []struct {
		user, q string
		status  int
	}{{nurse1, "", http.StatusForbidden}, {qa, "?days=-1", http.StatusBadRequest}, {qa, "?days=x", http.StatusBadRequest}, {coord, "", http.StatusOK}, {admin, "", http.StatusOK}} {
		if r := e.do(t, http.MethodGet, "/api/v1/qualifications/expiring"+c.q, c.user, nil); r.Code != c.status {
			t.Errorf("%s%s: %s, want %d", c.user, c.q, r, c.status)
		}
	}
}

// TestExpiringQualificationsPaged: the list pages from the store's index
// of expiry dates: one entry a page gives the same entries as one page
// of all, in order, none twice; a shipper registered between pages after
// the cursor is listed by a later page; a bad cursor or limit is refused
// with a clear error.
func TestExpiringQualificationsPaged(t *testing.T) {
	e := networkEnv(t, "2026-11-20")
	whole := e.do(t, http.MethodGet, "/api/v1/qualifications/expiring?days=3650&limit=1000", qa, nil).object(t)
	if _, ok := whole["next"]; ok || whole["count"].(float64) < 3 {
		t.Fatalf("one page of all: %v", whole)
	}
	var want []string
	for _, x := range whole["expiring"].([]any) {
		m := x.(map[string]any)
		want = append(want, m["date"].(string)+" "+m["code"].(string)+" "+m["what"].(string))
	}
	var got []string
	after := ""
	for p := 0; p < 20; p++ {
		r := e.do(t, http.MethodGet, "/api/v1/qualifications/expiring?days=3650&limit=1&after="+url.QueryEscape(after), qa, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("page %d: %s", p, r)
		}
		m := r.object(t)
		for _, x := range m["expiring"].([]any) {
			x := x.(map[string]any)
			got = append(got, x["date"].(string)+" "+x["code"].(string)+" "+x["what"].(string))
		}
		if p == 0 {
			// Due after every entry so far: a later page lists it.
			if r := e.do(t, http.MethodPost, "/api/v1/shippers", admin, with(regShipper, "id", "SHP-0099", "requalification_due", "2036-01-01")); r.Code != http.StatusCreated {
				t.Fatalf("POST shipper: %s", r)
			}
			want = append(want, "2036-01-01 SHP-0099 requalification")
		}
		next, ok := m["next"].(string)
		if !ok {
			break
		}
		after = next
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("paged one at a time:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range []struct {
		user, q string
		status  int
		want    string
	}{
		{qa, "?limit=0", http.StatusBadRequest, "limit"},
		{qa, "?limit=1001", http.StatusBadRequest, "limit"},
		{qa, "?limit=x", http.StatusBadRequest, "limit"},
		{qa, "?after=tomorrow", http.StatusBadRequest, "not a cursor"},
		{qa, "?after=2027-01-15/planet/X/qualification", http.StatusBadRequest, "not a cursor"},
		{nurse1, "?after=2027-01-15/site/PAR-1/qualification", http.StatusForbidden, ""},
		{coord, "?after=2027-01-15/site/PAR-1/qualification&limit=5", http.StatusOK, ""},
	} {
		r := e.do(t, http.MethodGet, "/api/v1/qualifications/expiring"+c.q, c.user, nil)
		if r.Code != c.status || !strings.Contains(string(r.Body), c.want) {
			t.Errorf("%s%s: %s, want %d with %q", c.user, c.q, r, c.status, c.want)
		}
	}
}
