package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestWebWaitlistScreen: the waiting list screen shows the waiting chains
// in the fairness rule's order (the urgent one first though it came
// later), with their urgency, reason and centre; a signed-out browser is
// sent to sign in, and a bad page is a plain refusal.
func TestWebWaitlistScreen(t *testing.T) {
	e := newWebEnv(t, false)
	webNetwork(t, e)
	ctx := context.Background()
	admin := e.users[wAdmin]
	coord, err := e.store.User(ctx, wCoord) // bound to PAR-1 by webNetwork
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.svc.Product(ctx, admin, "CART-19")
	if err != nil {
		t.Fatal(err)
	}
	p.ManufacturingDays, p.ApheresisToStartDays, p.ReleaseDays, p.ShippingDays, p.InfusionWindowDays = 10, 1, 3, 2, 14
	if _, err := e.svc.UpdateProduct(ctx, admin, "CART-19", p, "lead times agreed"); err != nil {
		t.Fatal(err)
	}
	var cois []custody.COI
	for range 2 {
		ch, err := e.svc.Enroll(ctx, coord, custody.EnrollRequest{Patient: custody.PHI{Name: webPatient.Name, BirthDate: webPatient.BirthDate,
			MRN: webPatient.MRN}, Product: "CART-19", Sites: custody.Sites{Collection: "PAR-1", Manufacturing: "MFG-1", Treatment: "PAR-1"}})
		if err != nil {
			t.Fatal(err)
		}
		cois = append(cois, ch.COI)
	}
	for i, u := range []int{custody.UrgencyLow, custody.UrgencyHigh} {
		if _, err := e.svc.AddToWaitlist(ctx, coord, cois[i], custody.WaitRequest{Urgency: u, Reason: "plant full in December"}); err != nil {
			t.Fatal(err)
		}
	}
	b := e.login(wCoord)
	pg := b.get("/waitlist")
	wantCode(t, pg, http.StatusOK, "waiting list")
	wantBody(t, pg, "waiting list", "Waiting list", "plant full in December", `href="/chains/`+string(cois[1])+`"`, "MFG-1")
	body := pg.Body
	if i, j := strings.Index(body, string(cois[1])), strings.Index(body, string(cois[0])); i < 0 || j < 0 || i > j {
		t.Errorf("the urgent chain %s is not listed before %s", cois[1], cois[0])
	}
	wantNotBody(t, pg, "waiting list", webPatient.Name)
	wantCode(t, b.get("/waitlist?offset=-1"), http.StatusBadRequest, "bad page")
	wantCode(t, e.browser().get("/waitlist"), http.StatusSeeOther, "signed out")
}
