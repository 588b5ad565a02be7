package api_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// Registry bodies as a client sends them.
var (
	regHospital = map[string]any{"code": "APHP", "name": "AP-HP", "kind": "hospital", "reason": "network set-up"}
	regCourier  = map[string]any{"code": "FASTCO", "name": "FastCo", "kind": "courier", "reason": "network set-up"}
	regSite     = map[string]any{"code": "PAR-1", "name": "Hôpital Saint-Louis", "kinds": []string{"collection", "treatment"},
		"organisation": "APHP", "time_zone": "Europe/Paris", "address": "1 avenue Claude Vellefaux, 75010 Paris", "country": "FR",
		"fin": "F1234", "gln": "4006381333931",
		"accreditation": map[string]any{"status": "accredited", "expiry": "2027-06-30"},
		"qualification": map[string]any{"training_done": true, "date": "2026-01-15", "expiry": "2027-01-15"},
		"reason":        "new treatment centre"}
	regProduct = map[string]any{"code": "CART-19", "name": "anti-CD19 CAR-T", "isbt_code": "S1234V00", "storage_profile": "cryogenic",
		"shelf_life_hours": 8760, "manufacturing_days": 21, "reason": "new product"}
	regShipper = map[string]any{"id": "SHP-001", "courier": "FASTCO", "requalification_due": "2027-03-01", "reason": "new shipper"}
)

// with returns a copy of body with the members of kv set (a nil value
// removes the member).
func with(body map[string]any, kv ...any) map[string]any {
	out := maps.Clone(body)
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// registryEnv is an environment with a hospital, a courier, a site, a
// product and a shipper registered through the API.
func registryEnv(t testing.TB, opts ...option) *env {
	e := newEnv(t, opts...)
	for _, c := range []struct {
		path string
		body any
	}{
		{"/api/v1/organisations", regHospital}, {"/api/v1/organisations", regCourier},
		{"/api/v1/sites", regSite}, {"/api/v1/products", regProduct}, {"/api/v1/shippers", regShipper},
	} {
		if r := e.do(t, http.MethodPost, c.path, admin, c.body); r.Code != http.StatusCreated {
			t.Fatalf("POST %s: %s", c.path, r)
		}
	}
	return e
}

// registryRoutes is one request per registry route, each of which an
// administrator may make.
func registryRoutes() []struct {
	method, path string
	body         any
	write        bool
} {
	reason := map[string]string{"reason": "audit"}
	return []struct {
		method, path string
		body         any
		write        bool
	}{
		{http.MethodGet, "/api/v1/organisations", nil, false},
		{http.MethodPost, "/api/v1/organisations", with(regHospital, "code", "APHP-2"), true},
		{http.MethodGet, "/api/v1/organisations/APHP", nil, false},
		{http.MethodPut, "/api/v1/organisations/APHP", with(regHospital, "name", "AP-HP Paris"), true},
		{http.MethodPost, "/api/v1/organisations/APHP/suspend", reason, true},
		{http.MethodPost, "/api/v1/organisations/APHP/resume", reason, true},
		{http.MethodGet, "/api/v1/sites", nil, false},
		{http.MethodPost, "/api/v1/sites", with(regSite, "code", "PAR-2"), true},
		{http.MethodGet, "/api/v1/sites/PAR-1", nil, false},
		{http.MethodPut, "/api/v1/sites/PAR-1", with(regSite, "name", "Saint-Louis"), true},
		{http.MethodPost, "/api/v1/sites/PAR-1/suspend", reason, true},
		{http.MethodPost, "/api/v1/sites/PAR-1/resume", reason, true},
		{http.MethodGet, "/api/v1/products", nil, false},
		{http.MethodPost, "/api/v1/products", with(regProduct, "code", "CART-20"), true},
		{http.MethodGet, "/api/v1/products/CART-19", nil, false},
		{http.MethodPut, "/api/v1/products/CART-19", with(regProduct, "shelf_life_hours", 4380), true},
		{http.MethodPost, "/api/v1/products/CART-19/suspend", reason, true},
		{http.MethodPost, "/api/v1/products/CART-19/resume", reason, true},
		{http.MethodGet, "/api/v1/shippers", nil, false},
		{http.MethodPost, "/api/v1/shippers", with(regShipper, "id", "SHP-002"), true},
		{http.MethodGet, "/api/v1/shippers/SHP-001", nil, false},
		{http.MethodPut, "/api/v1/shippers/SHP-001", with(regShipper, "requalification_due", "2027-09-01"), true},
		{http.MethodPost, "/api/v1/shippers/SHP-001/suspend", reason, true},
		{http.MethodPost, "/api/v1/shippers/SHP-001/resume", reason, true},
	}
}

func TestRegistryAuthorisation(t *testing.T) {
	e := registryEnv(t)
	routes := registryRoutes()
	t.Run("token required", func(t *testing.T) {
		for _, rt := range routes {
			if r := e.do(t, rt.method, rt.path, "", rt.body); r.Code != http.StatusUnauthorized {
				t.Errorf("%s %s without a token: %s, want 401", rt.method, rt.path, r)
			}
		}
	})
	t.Run("roles", func(t *testing.T) {
		for _, u := range slices.Sorted(maps.Keys(userRoles)) {
			if u == admin {
				continue
			}
			for _, rt := range routes {
				r := e.do(t, rt.method, rt.path, u, rt.body)
				want := http.StatusOK
				if rt.write {
					want = http.StatusForbidden
				}
				if r.Code != want {
					t.Errorf("%s: %s %s = %s, want %d", u, rt.method, rt.path, r, want)
				}
				if want == http.StatusForbidden {
					if code, msg := r.errorBody(t); code != "forbidden" || !strings.Contains(msg, "only an administrator") {
						t.Errorf("%s: %s %s refused with %s %q", u, rt.method, rt.path, code, msg)
					}
				}
			}
		}
	})
	t.Run("admin", func(t *testing.T) {
		for _, rt := range routes {
			want := http.StatusOK
			if rt.method == http.MethodPost && !strings.HasSuffix(rt.path, "suspend") && !strings.HasSuffix(rt.path, "resume") {
				want = http.StatusCreated
			}
			if r := e.do(t, rt.method, rt.path, admin, rt.body); r.Code != want {
				t.Errorf("admin: %s %s = %s, want %d", rt.method, rt.path, r, want)
			}
		}
	})
}

func TestRegistryErrors(t *testing.T) {
	e := registryEnv(t)
	cases := []struct {
		name, method, path string
		body               any
		status             int
		text               string
	}{
		{"GLN check digit", http.MethodPost, "/api/v1/sites", with(regSite, "code", "PAR-2", "gln", "4006381333932"), 400, "check digit is 1, not 2"},
		{"FIN", http.MethodPost, "/api/v1/sites", with(regSite, "code", "PAR-2", "fin", "O1234"), 400, "not an ISBT 128 FIN"},
		{"zone", http.MethodPost, "/api/v1/sites", with(regSite, "code", "PAR-2", "time_zone", "Europe/Lutetia"), 400, "not an IANA time zone"},
		{"unknown organisation", http.MethodPost, "/api/v1/sites", with(regSite, "code", "PAR-2", "organisation", "NOBODY"), 400, "no such organisation"},
		{"no reason", http.MethodPost, "/api/v1/sites", with(regSite, "code", "PAR-2", "reason", nil), 400, "reason is required"},
		{"reason not a string", http.MethodPost, "/api/v1/sites", with(regSite, "code", "PAR-2", "reason", 7), 400, `field "reason" must be a string`},
		{"unknown member", http.MethodPost, "/api/v1/sites", with(regSite, "code", "PAR-2", "colour", "blue"), 400, `unknown field "colour"`},
		{"wrong type", http.MethodPost, "/api/v1/products", with(regProduct, "code", "P2", "shelf_life_hours", "a year"), 400, `field "shelf_life_hours" must be`},
		{"ISBT product code", http.MethodPost, "/api/v1/products", with(regProduct, "code", "P2", "isbt_code", "CART19"), 400, "ISBT 128 product code"},
		{"profile", http.MethodPost, "/api/v1/products", with(regProduct, "code", "P2", "storage_profile", "tepid"), 400, "configured temperature profiles"},
		{"shipper of a hospital", http.MethodPost, "/api/v1/shippers", with(regShipper, "id", "SHP-9", "courier", "APHP"), 400, "not a courier"},
		{"bad path code", http.MethodGet, "/api/v1/sites/par-1", nil, 400, "code"},
		{"bad limit", http.MethodGet, "/api/v1/sites?limit=0", nil, 400, "limit"},
		{"code change", http.MethodPut, "/api/v1/sites/PAR-1", with(regSite, "code", "PAR-9"), 400, "a code cannot change"},
		{"suspend without reason", http.MethodPost, "/api/v1/sites/PAR-1/suspend", map[string]string{}, 400, "reason is required"},
		{"duplicate organisation", http.MethodPost, "/api/v1/organisations", regHospital, 409, "already registered"},
		{"duplicate site", http.MethodPost, "/api/v1/sites", regSite, 409, "already registered"},
		{"duplicate product", http.MethodPost, "/api/v1/products", regProduct, 409, "already registered"},
		{"duplicate shipper", http.MethodPost, "/api/v1/shippers", regShipper, 409, "already registered"},
		{"resume of an active site", http.MethodPost, "/api/v1/sites/PAR-1/resume", map[string]string{"reason": "x"}, 409, "not suspended"},
		{"unknown organisation read", http.MethodGet, "/api/v1/organisations/NOBODY", nil, 404, "is not registered"},
		{"unknown site read", http.MethodGet, "/api/v1/sites/PAR-9", nil, 404, "is not registered"},
		{"unknown product update", http.MethodPut, "/api/v1/products/P9", with(regProduct, "code", nil), 404, "is not registered"},
		{"unknown shipper suspend", http.MethodPost, "/api/v1/shippers/SHP-9/suspend", map[string]string{"reason": "x"}, 404, "is not registered"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, c.method, c.path, admin, c.body)
			if r.Code != c.status {
				t.Fatalf("%s %s = %s, want %d", c.method, c.path, r, c.status)
			}
			if _, msg := r.errorBody(t); !strings.Contains(msg, c.text) {
				t.Errorf("message %q, want it to say %q", msg, c.text)
			}
		})
	}
}

func TestRegistryPagingAndSuspend(t *testing.T) {
	e := registryEnv(t)
	for _, c := range []string{"C3", "C1", "C2"} {
		if r := e.do(t, http.MethodPost, "/api/v1/organisations", admin, with(regCourier, "code", c)); r.Code != http.StatusCreated {
			t.Fatal(r)
		}
	}
	var got []string
	after := ""
	for range 10 {
		r := e.do(t, http.MethodGet, "/api/v1/organisations?limit=2&after="+after, nurse1, nil)
		if r.Code != http.StatusOK {
			t.Fatal(r)
		}
		var page struct {
			Organisations []struct{ Code string }
			Count         int
			Next          string
		}
		if err := json.Unmarshal(r.Body, &page); err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Organisations {
			got = append(got, o.Code)
		}
		if page.Count != len(page.Organisations) {
			t.Errorf("count %d for %d entries", page.Count, len(page.Organisations))
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if want := "APHP C1 C2 C3 FASTCO"; strings.Join(got, " ") != want {
		t.Errorf("paged %v, want %s", got, want)
	}

	r := e.do(t, http.MethodPost, "/api/v1/sites/PAR-1/suspend", admin, map[string]string{"reason": "qualification lapsed"})
	if r.Code != http.StatusOK || r.object(t)["suspended"] != true {
		t.Fatalf("suspend: %s", r)
	}
	if r := e.do(t, http.MethodGet, "/api/v1/sites/PAR-1", courier, nil); r.Code != http.StatusOK || r.object(t)["suspended"] != true {
		t.Errorf("read after suspend: %s", r)
	}
	// The audit trail holds the suspension with its reason and values.
	adminUser, err := e.store.User(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	trail, err := e.svc.AuditTrail(t.Context(), adminUser, custody.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	last := trail[len(trail)-1]
	if last.Action != "suspend" || last.Code != "PAR-1" || last.Reason != "qualification lapsed" || last.Actor != admin ||
		!strings.Contains(string(last.Old), `"suspended":false`) || !strings.Contains(string(last.New), `"suspended":true`) {
		t.Errorf("last audit entry %+v old %s new %s", last, last.Old, last.New)
	}
}
