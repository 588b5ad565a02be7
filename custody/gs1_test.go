package custody_test

import (
	"errors"
	"maps"
	"testing"

	"github.com/coid-project/coid/custody"
)

func TestChainGS1IDs(t *testing.T) {
	e := newEnv(t)
	old := e.enroll() // St Elsewhere Apheresis, CellWorks NJ, St Elsewhere BMT
	registerNetwork(t, e)
	admin := e.users["admin1"]
	e.advance(old, "released") // leg 1 with SHP-0042

	// Before the registries give GS1 keys: none.
	ids, err := e.svc.ChainGS1IDs(e.ctx, mustChain(t, e, old))
	if err != nil || len(ids.SiteGLN) != 0 || len(ids.ShipperGIAI) != 0 {
		t.Fatalf("ChainGS1IDs before any GLN or GIAI: %+v %v", ids, err)
	}

	// PAR-1 gets a GLN, and the old chain's collection site is mapped to
	// it; SHP-0042 gets a GIAI, SHP-0043 (not on this chain) too.
	s, _ := e.svc.Site(e.ctx, admin, "PAR-1")
	s.GLN = "4006381333931"
	if _, err := e.svc.UpdateSite(e.ctx, admin, "PAR-1", s, "GLN assigned"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.MapSiteName(e.ctx, admin, "St Elsewhere Apheresis", "PAR-1", "network migration"); err != nil {
		t.Fatal(err)
	}
	for id, giai := range map[string]string{"SHP-0042": "0614141SH42", "SHP-0043": "0614141SH43"} {
		sh, _ := e.svc.Shipper(e.ctx, admin, id)
		sh.GIAI = giai
		if _, err := e.svc.UpdateShipper(e.ctx, admin, id, sh, "GIAI assigned"); err != nil {
			t.Fatal(err)
		}
	}
	ids, err = e.svc.ChainGS1IDs(e.ctx, mustChain(t, e, old))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"St Elsewhere Apheresis": "4006381333931"}; !maps.Equal(ids.SiteGLN, want) {
		t.Errorf("site GLNs %v, want %v (CellWorks NJ and St Elsewhere BMT resolve to no registered site)", ids.SiteGLN, want)
	}
	if want := map[string]string{"SHP-0042": "0614141SH42"}; !maps.Equal(ids.ShipperGIAI, want) {
		t.Errorf("shipper GIAIs %v, want %v (only the chain's shippers)", ids.ShipperGIAI, want)
	}

	// A bad GIAI is refused, and nothing changes.
	sh, _ := e.svc.Shipper(e.ctx, admin, "SHP-0042")
	sh.GIAI = "0614141 SH42"
	if _, err := e.svc.UpdateShipper(e.ctx, admin, "SHP-0042", sh, "typo"); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("GIAI with a space: %v, want ErrInvalid", err)
	}
	if sh, _ := e.svc.Shipper(e.ctx, admin, "SHP-0042"); sh.GIAI != "0614141SH42" {
		t.Errorf("GIAI after a refused update: %q", sh.GIAI)
	}
}

func mustChain(t *testing.T, e *env, coi custody.COI) *custody.Chain {
	t.Helper()
	c, err := e.svc.Chain(e.ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
