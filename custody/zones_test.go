package custody_test

import (
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestSiteZones checks that a chain's registered site names give their
// sites' zones and names from before the network give none, so callers
// fall back to their default zone and then UTC.
func TestSiteZones(t *testing.T) {
	e := newEnv(t)
	registryNetwork(t, e)
	admin := e.users["admin1"]
	paris := goodSite()
	plant := goodSite()
	plant.Code, plant.Kinds, plant.Organisation, plant.TimeZone = "CELL-1", []custody.SiteRole{custody.SiteManufacturing}, "CELLCO", "America/Chicago"
	for _, s := range []custody.Site{paris, plant} {
		if _, err := e.svc.RegisterSite(e.ctx, admin, s, "network set-up"); err != nil {
			t.Fatal(err)
		}
	}
	c := &custody.Chain{Sites: custody.Sites{Collection: "PAR-1", Manufacturing: "St. Mary Cell Lab", Treatment: "PAR-1"},
		Records: []custody.Record{{Seq: 1, Site: "PAR-1"}, {Seq: 2, Site: "CELL-1"}, {Seq: 3, Site: "St. Mary Apheresis"}, {Seq: 4}}}
	zones, err := e.svc.SiteZones(e.ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(zones) != 2 || zones["PAR-1"].String() != "Europe/Paris" || zones["CELL-1"].String() != "America/Chicago" {
		t.Fatalf("zones %v, want PAR-1 Europe/Paris and CELL-1 America/Chicago only", zones)
	}
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	for _, tc := range []struct {
		site string
		def  *time.Location
		want string
	}{
		{"PAR-1", tokyo, "Europe/Paris"},
		{"CELL-1", nil, "America/Chicago"},
		{"St. Mary Apheresis", tokyo, "Asia/Tokyo"},
		{"St. Mary Apheresis", nil, "UTC"},
		{"", nil, "UTC"},
	} {
		if got := zones.Zone(tc.site, tc.def).String(); got != tc.want {
			t.Errorf("Zone(%q, %v) = %s, want %s", tc.site, tc.def, got, tc.want)
		}
	}
	if _, ok, err := e.svc.SiteZone(e.ctx, "St. Mary Apheresis"); ok || err != nil {
		t.Errorf("SiteZone of a free-text site: ok %v, err %v; want neither", ok, err)
	}
}

// TestLabelContentZone checks that a bag's label content carries the zone
// of its registered collection site, and none for a site from before the
// network.
func TestLabelContentZone(t *testing.T) {
	e := newEnv(t)
	old := e.enroll() // before the network was registered
	registerNetwork(t, e)
	c, err := e.svc.Enroll(e.ctx, e.users["coord"], custody.EnrollRequest{Patient: patient, Product: "CART-19", Sites: netSites})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		coi  custody.COI
		want string
	}{{c.COI, "Europe/Paris"}, {old, "<nil>"}} {
		e.advance(tc.coi, custody.StateCollected)
		l, err := e.svc.LabelContent(e.ctx, e.users["nurse1"], bagOf(tc.coi, custody.BagApheresis, 1))
		if err != nil {
			t.Fatal(err)
		}
		got := "<nil>"
		if l.Zone != nil {
			got = l.Zone.String()
		}
		if got != tc.want {
			t.Errorf("chain %s (site %s): zone %s, want %s", tc.coi, l.Site, got, tc.want)
		}
	}
}
