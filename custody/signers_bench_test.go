package custody_test

import (
	"fmt"
	"testing"

	"github.com/coid-project/coid/custody"
)

// benchNetwork registers 100 sites of 20 hospitals and a plant, a
// courier with the journey's shippers, and 5,000 users bound to them
// (stored directly: the benchmark is about signing, not about creating
// accounts), then binds the test users as signerNetwork does.
func benchNetwork(b *testing.B, e *env) {
	b.Helper()
	admin := e.users["admin1"]
	for i := range 20 {
		o := custody.Organisation{Code: fmt.Sprintf("HOSP%02d", i), Name: "Hospital", Kind: custody.OrgHospital}
		if _, err := e.svc.RegisterOrganisation(e.ctx, admin, o, "set-up"); err != nil {
			b.Fatal(err)
		}
		for j := range 5 {
			site := goodSite()
			site.Code, site.Organisation, site.FIN, site.GLN = fmt.Sprintf("S%02d-%d", i, j), o.Code, "", ""
			if _, err := e.svc.RegisterSite(e.ctx, admin, site, "set-up"); err != nil {
				b.Fatal(err)
			}
		}
	}
	hash := e.users["nurse1"].PasswordHash
	for i := range 5000 {
		org := i % 20
		u := custody.User{ID: fmt.Sprintf("user%04d", i), Name: "U", Role: custody.RoleNurse, Organisation: fmt.Sprintf("HOSP%02d", org),
			Sites: []string{fmt.Sprintf("S%02d-%d", org, i%5)}, PasswordHash: hash, Created: e.now}
		if err := e.store.CreateUser(e.ctx, u, custody.TokenHash(u.ID)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignerSiteCheck times the signer-site check alone (the
// registry reads and the comparison) for a journey step, a ship signed
// by a courier (organisation and shipper read) and an exception step (the
// chain's three sites read), with 100 sites and 5,000 users registered.
func BenchmarkSignerSiteCheck(b *testing.B) {
	e := newEnv(b)
	benchNetwork(b, e)
	signerNetwork(b, e)
	sites := custody.Sites{Collection: "HOSP-1", Manufacturing: "CELL-1", Treatment: "HOSP-1"}
	for _, c := range []struct {
		name  string
		state custody.State
		step  custody.Step
		data  string
		user  string
	}{
		{"collect-nurse", custody.StateEnrolled, custody.StepCollect, `{}`, "nurse1"},
		{"ship-courier", custody.StateCollected, custody.StepShip, `{"shipper":"SHP-0042","profile":"cryogenic"}`, "courier1"},
		{"note-qa", custody.StateCollected, custody.StepNote, `{"text":"x"}`, "qa1"},
		{"free-text-chain", custody.StateEnrolled, custody.StepCollect, `{}`, "nurse1"},
	} {
		s := sites
		if c.name == "free-text-chain" {
			s = custody.Sites{Collection: "St Elsewhere", Manufacturing: "CellWorks", Treatment: "St Elsewhere"}
		}
		b.Run(c.name, func(b *testing.B) {
			u := e.users[c.user]
			for b.Loop() {
				if err := e.svc.CheckSignerSite(e.ctx, s, c.state, c.step, []byte(c.data), u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecordSignerSites times Service.Record of a note on a chain
// whose sites are free text (no check) and on one whose sites are
// registered (checked), with 100 sites and 5,000 users registered: the
// difference is the check's cost per record.
func BenchmarkRecordSignerSites(b *testing.B) {
	for _, registered := range []bool{false, true} {
		b.Run(fmt.Sprintf("registered=%v", registered), func(b *testing.B) {
			e := newEnv(b)
			benchNetwork(b, e)
			signerNetwork(b, e)
			var coi custody.COI
			if registered {
				coi = registeredChain(b, e, custody.StateEnrolled)
			} else {
				coi = e.enroll()
			}
			note := map[string]any{"text": "called the ward"}
			for b.Loop() {
				if _, err := e.step(coi, "nurse1", custody.StepNote, note, sig("nurse1", custody.MeaningAuthored)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
