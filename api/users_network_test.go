package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/coid-project/coid/api/internal/nettest"
	"github.com/coid-project/coid/custody"
)

// apiNetwork registers a hospital with one site, a second hospital with
// another, a courier and a manufacturer with its plant, through the
// service.
func apiNetwork(t *testing.T, e *env) {
	t.Helper()
	both := []custody.SiteRole{custody.SiteCollection, custody.SiteTreatment}
	netOf(t, e).Register(t, "set-up", []custody.Organisation{{Code: "HOSPA", Name: "Hospital A", Kind: custody.OrgHospital},
		{Code: "HOSPB", Name: "Hospital B", Kind: custody.OrgHospital}, {Code: "FAST", Name: "FastCo", Kind: custody.OrgCourier},
		{Code: "CELLX", Name: "CellX", Kind: custody.OrgManufacturer}},
		[]custody.Site{nettest.Site("HOSP-1", "Site HOSP-1", "HOSPA", "Europe/Paris", both...),
			nettest.Site("HOSP-2", "Site HOSP-2", "HOSPB", "Europe/Paris", both...),
			nettest.Site("MFG-9", "Site MFG-9", "CELLX", "Europe/Paris", custody.SiteManufacturing)}, nil)
}

func TestUserNetworkRoutes(t *testing.T) {
	e := newEnv(t)
	apiNetwork(t, e)
	// Create a bound nurse: the user JSON shows the binding.
	r := e.do(t, http.MethodPost, "/api/v1/users", admin, map[string]any{"id": "nurse.net", "name": "Net Nurse", "role": "nurse",
		"password": "long-enough-1", "organisation": "HOSPA", "sites": []string{"HOSP-1"}})
	if r.Code != http.StatusCreated || !strings.Contains(r.String(), `"organisation":"HOSPA"`) || !strings.Contains(r.String(), `"sites":["HOSP-1"]`) {
		t.Fatalf("add bound user: %s", r)
	}
	bad := []struct {
		name string
		body map[string]any
		want int
	}{
		{"unregistered organisation", map[string]any{"id": "n3", "name": "N", "role": "nurse", "password": "long-enough-1", "organisation": "NOPE"}, http.StatusBadRequest},
		{"site of another organisation", map[string]any{"id": "n3", "name": "N", "role": "nurse", "password": "long-enough-1", "organisation": "HOSPA", "sites": []string{"HOSP-2"}}, http.StatusBadRequest},
		{"courier of a hospital", map[string]any{"id": "n3", "name": "N", "role": "courier", "password": "long-enough-1", "organisation": "HOSPA"}, http.StatusBadRequest},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			wantCode(t, b.name, e.do(t, http.MethodPost, "/api/v1/users", admin, b.body), b.want, "")
		})
	}
	// PUT /users/{id}/network: admin only, reason required, audited.
	path := "/api/v1/users/nurse.net/network"
	body := map[string]any{"organisation": "HOSPB", "sites": []string{"HOSP-2"}, "reason": "moved to hospital B"}
	for _, who := range []string{coord, nurse1, courier, mfg, qa} {
		before := e.auditCount(t)
		wantCode(t, who+" sets a network", e.do(t, http.MethodPut, path, who, body), http.StatusForbidden, "forbidden")
		if e.auditCount(t) != before {
			t.Fatalf("%s: a refused change was audited", who)
		}
	}
	wantCode(t, "no reason", e.do(t, http.MethodPut, path, admin, map[string]any{"organisation": "HOSPB", "sites": []string{"HOSP-2"}}), http.StatusBadRequest, "")
	wantCode(t, "unknown user", e.do(t, http.MethodPut, "/api/v1/users/ghost/network", admin, body), http.StatusNotFound, "")
	wantCode(t, "unknown field", e.do(t, http.MethodPut, path, admin, map[string]any{"organisation": "HOSPB", "reason": "x", "role": "qa"}), http.StatusBadRequest, "")
	before := e.auditCount(t)
	r = e.do(t, http.MethodPut, path, admin, body)
	if r.Code != http.StatusOK || r.object(t)["organisation"] != "HOSPB" || strings.Contains(r.String(), "password_hash") {
		t.Fatalf("set network: %s", r)
	}
	if e.auditCount(t) != before+1 {
		t.Fatal("the change was not audited")
	}
	r = e.do(t, http.MethodGet, "/api/v1/users/nurse.net/audit", admin, nil)
	if r.Code != http.StatusOK || !strings.Contains(r.String(), "user.network") || !strings.Contains(r.String(), "HOSP-2") {
		t.Fatalf("audit: %s", r)
	}
}

// A signer not bound to the step's site is refused 403 through the API,
// and nothing is written.
func TestSignerSiteRefusalAPI(t *testing.T) {
	e := newEnv(t)
	apiNetwork(t, e)
	r := e.do(t, http.MethodPut, "/api/v1/users/"+coord+"/network", admin, map[string]any{"organisation": "HOSPA", "sites": []string{"HOSP-1"}, "reason": "r"})
	if r.Code != http.StatusOK {
		t.Fatal(r)
	}
	b := enrollBody(patientA)
	b["sites"] = map[string]string{"collection": "HOSP-2", "manufacturing": "MFG-9", "treatment": "HOSP-2"}
	before := e.ledgerRecords(t)
	r = e.do(t, http.MethodPost, "/api/v1/chains", coord, b)
	wantCode(t, "enroll at another hospital", r, http.StatusForbidden, "forbidden")
	if !strings.Contains(r.String(), "does not work at HOSP-2") || e.ledgerRecords(t) != before {
		t.Fatalf("refusal: %s", r)
	}
}
