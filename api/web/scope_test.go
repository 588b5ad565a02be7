package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coid-project/coid/api/internal/nettest"
	"github.com/coid-project/coid/custody"
)

// net is the network fixtures over this environment.
func (e *webEnv) net() nettest.Net {
	return nettest.Net{Svc: e.svc, Store: e.store, Admin: e.users[wAdmin], Password: webPassword}
}

// TestWebReadScope is the role x site x route table of the web UI's chain
// reads: the chain page, the live leg chart, the EPCIS download, the scan
// station and the QA console answer those who may read a chain and treat
// it as unknown for the others; a chain from before the network stays
// readable by all as before.
func TestWebReadScope(t *testing.T) {
	e := newWebEnv(t, false)
	n := e.net()
	net := n.Enroll(t, e.users[wCoord], custody.PHI{Name: webPatient.Name, BirthDate: webPatient.BirthDate, MRN: webPatient.MRN},
		"Autologous anti-CD19 CAR-T", nettest.ScopeSites())
	old := e.enroll()
	e.advance(net, custody.StateToManufacturing)
	e.advance(old, custody.StateToManufacturing)
	n.Scope(t, "SHP-0001")
	n.AddUsers(t, nettest.ScopeUsers())

	cases := []struct {
		user string
		coi  custody.COI
		ok   bool
	}{
		{"nurse.here", net, true}, {"nurse.there", net, false},
		{"qa.manu", net, true}, {"qa.other", net, false},
		{"courier.cour", net, true}, {"courier.cour2", net, false},
		{"mfg.unbound", net, false}, {wAdmin, net, true},
		{"nurse.there", old, true}, {"qa.other", old, true}, {"courier.cour2", old, true}, {"mfg.unbound", old, true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s", tc.user, tc.coi), func(t *testing.T) {
			b := e.login(tc.user)
			want := http.StatusNotFound
			if tc.ok {
				want = http.StatusOK
			}
			paths := []string{coiPath(tc.coi), coiPath(tc.coi) + "/epcis.json"}
			if !tc.ok {
				// The open leg's live stream would not end for a reader;
				// for the others it must answer 404 at once.
				paths = append(paths, coiPath(tc.coi)+"/legs/1/live")
			}
			for _, path := range paths {
				if p := b.get(path); p.Code != want {
					t.Errorf("GET %s: %d, want %d: %s", path, p.Code, want, excerpt(p.Body))
				}
			}
			b.get("/scan")
			p := b.post("/scan", url.Values{"code": {custody.LabelPayload(custody.BagID{COI: tc.coi, Kind: custody.BagApheresis, N: 1})}})
			if tc.ok && p.Code != http.StatusSeeOther || !tc.ok && p.Code != http.StatusNotFound {
				t.Errorf("scan: %d (ok %v): %s", p.Code, tc.ok, excerpt(p.Body))
			}
		})
	}

	// The QA console lists exactly the chains its user may read.
	for _, tc := range []struct {
		user     string
		net, old bool
	}{{"qa.manu", true, true}, {"qa.other", false, true}, {"mfg.unbound", false, true}, {wQA, false, true}} {
		p := e.login(tc.user).get("/qa")
		if p.Code != http.StatusOK {
			t.Fatalf("console as %s: %d", tc.user, p.Code)
		}
		if got := strings.Contains(p.Body, net.Display()); got != tc.net {
			t.Errorf("console as %s shows the network chain: %v, want %v", tc.user, got, tc.net)
		}
		if got := strings.Contains(p.Body, old.Display()); got != tc.old {
			t.Errorf("console as %s shows the chain from before the network: %v, want %v", tc.user, got, tc.old)
		}
	}
}
