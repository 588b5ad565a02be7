package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coid-project/coid/api/internal/nettest"
	"github.com/coid-project/coid/custody"
)

// webNetwork registers a hospital with a collection-and-treatment site
// PAR-1 (qualification until 2026-12-01, nine days after the test clock),
// a suspended collection site SUSP-1, a manufacturer with its plant MFG-1,
// the product CART-19 and a suspended CART-OLD, and a courier's shipper
// overdue for requalification.
func webNetwork(t testing.TB, e *webEnv) {
	t.Helper()
	ctx := context.Background()
	admin := e.users[wAdmin]
	n := e.net()
	par := nettest.Site("PAR-1", "Saint-Louis", "APHP", "Europe/Paris", custody.SiteCollection, custody.SiteTreatment)
	par.Qualification.Expiry = "2026-12-01"
	n.Register(t, "network", []custody.Organisation{{Code: "APHP", Name: "AP-HP", Kind: custody.OrgHospital},
		{Code: "CELLCO", Name: "CellCo", Kind: custody.OrgManufacturer}, {Code: "FASTCO", Name: "FastCo", Kind: custody.OrgCourier}},
		[]custody.Site{par, nettest.Site("SUSP-1", "Closed Unit", "APHP", "Europe/Paris", custody.SiteCollection),
			nettest.Site("MFG-1", "CellCo Plant", "CELLCO", "Europe/Paris", custody.SiteManufacturing)},
		[]custody.Shipper{{ID: "SHP-0007", Courier: "FASTCO", RequalificationDue: "2026-11-20"}})
	if _, err := e.svc.SuspendSite(ctx, admin, "SUSP-1", true, "closed"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []custody.Product{{Code: "CART-19", Name: "anti-CD19", ISBTCode: "S1234V00", StorageProfile: "cryogenic", ShelfLifeHours: 1},
		{Code: "CART-OLD", Name: "Retired", ISBTCode: "S1234V00", StorageProfile: "cryogenic", ShelfLifeHours: 1}} {
		if _, err := e.svc.RegisterProduct(ctx, admin, p, "network"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.SuspendProduct(ctx, admin, "CART-OLD", true, "retired"); err != nil {
		t.Fatal(err)
	}
	// The coordinator works at the collection hospital: the network's
	// signing rules let only its staff enroll there.
	n.Bind(t, wCoord, "APHP", "PAR-1")
}

// selectOf returns the <select name=name> element of body, "" if none.
func selectOf(body, name string) string {
	i := strings.Index(body, `<select name="`+name+`"`)
	if i < 0 {
		return ""
	}
	j := strings.Index(body[i:], "</select>")
	if j < 0 {
		return ""
	}
	return body[i : i+j]
}

func TestEnrollFormFromRegistries(t *testing.T) {
	e := newWebEnv(t, false)
	coord := e.login(wCoord)
	p := coord.get("/enroll")
	wantBody(t, p, "enroll form before the network", `<input name="product"`, `<input name="collection"`, `<input name="treatment"`)
	wantNotBody(t, p, "enroll form before the network", "<select")

	webNetwork(t, e)
	p = coord.get("/enroll")
	wantCode(t, p, http.StatusOK, "enroll form")
	wantNotBody(t, p, "enroll form with the network", `<input name="product"`, `<input name="collection"`)
	for _, c := range []struct {
		name     string
		has, not []string
	}{
		{"collection", []string{`value="PAR-1"`}, []string{"SUSP-1", "MFG-1"}},
		{"manufacturing", []string{`value="MFG-1"`, "CellCo Plant (MFG-1)"}, []string{"PAR-1", "SUSP-1"}},
		{"treatment", []string{`value="PAR-1"`}, []string{"SUSP-1", "MFG-1"}},
		{"product", []string{`value="CART-19"`, "anti-CD19 (CART-19)"}, []string{"CART-OLD"}},
	} {
		sel := selectOf(p.Body, c.name)
		if sel == "" {
			t.Errorf("no select list %s", c.name)
			continue
		}
		for _, s := range c.has {
			if !strings.Contains(sel, s) {
				t.Errorf("select %s lacks %s: %s", c.name, s, sel)
			}
		}
		for _, s := range c.not {
			if strings.Contains(sel, s) {
				t.Errorf("select %s offers %s: %s", c.name, s, sel)
			}
		}
	}
	// A patient of this test only: the refused form shows its fields
	// again to the coordinator, and webPatient's must show nowhere.
	form := url.Values{"name": {"Ann Example"}, "birth_date": {"1960-01-01"}, "mrn": {"MRN-1"},
		"product": {"CART-19"}, "collection": {"PAR-1"}, "manufacturing": {"MFG-1"}, "treatment": {"SUSP-1"}}
	p = coord.post("/enroll", form)
	wantCode(t, p, http.StatusBadRequest, "enroll at a suspended site")
	wantBody(t, p, "refused enrollment", "The patient was not enrolled.", "site SUSP-1 is suspended", `<select name="treatment"`)
	form.Set("treatment", "PAR-1")
	p = coord.post("/enroll", form)
	wantCode(t, p, http.StatusSeeOther, "enroll from the lists")
}

func TestConsoleShowsQualificationsExpiring(t *testing.T) {
	e := newWebEnv(t, false)
	qa := e.login(wQA)
	wantNotBody(t, qa.get("/qa"), "console before the network", "Qualifications expiring", `id="qualifications-expiring"`)
	webNetwork(t, e)
	p := qa.get("/qa")
	wantBody(t, p, "QA console", `id="qualifications-expiring"`, "Qualifications expiring", "Within 30 days",
		"Shipper SHP-0007", "requalification", "expired 2 day(s) ago", "Site PAR-1", "qualification", "2026-12-01", "in 9 day(s)")
	wantNotBody(t, p, "QA console", "Site MFG-1", "Site SUSP-1")
	// Manufacturing uses the console but is not warned.
	wantNotBody(t, e.login(wMfg).get("/qa"), "manufacturing's console", "Qualifications expiring")
}
