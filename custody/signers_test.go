package custody_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/passwd"
)

// signerNetwork registers two hospitals (HOSP-1 of HOSPA, HOSP-2 of
// HOSPB), a plant (CELL-1 of MANU), two couriers (FAST, owning the
// journey's shippers, and SLOW), binds the test users to HOSPA, MANU and
// FAST, and adds a signer of each role at HOSP-2 ("b.ROLE"), unbound
// ("u.ROLE"), a courier of SLOW and a courier account left bound to a
// hospital (as an account stored before the rules were checked).
func signerNetwork(t testing.TB, e *env) {
	t.Helper()
	admin := e.users["admin1"]
	for _, o := range []custody.Organisation{
		{Code: "HOSPA", Name: "Hospital A", Kind: custody.OrgHospital},
		{Code: "HOSPB", Name: "Hospital B", Kind: custody.OrgHospital},
		{Code: "MANU", Name: "CellCo", Kind: custody.OrgManufacturer},
		{Code: "FAST", Name: "FastCo", Kind: custody.OrgCourier},
		{Code: "SLOW", Name: "SlowCo", Kind: custody.OrgCourier},
	} {
		if _, err := e.svc.RegisterOrganisation(e.ctx, admin, o, "network set-up"); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []struct {
		code, org string
		kinds     []custody.SiteRole
	}{
		{"HOSP-1", "HOSPA", []custody.SiteRole{custody.SiteCollection, custody.SiteTreatment}},
		{"HOSP-2", "HOSPB", []custody.SiteRole{custody.SiteCollection, custody.SiteTreatment}},
		{"CELL-1", "MANU", []custody.SiteRole{custody.SiteManufacturing}},
	} {
		site := goodSite()
		site.Code, site.Organisation, site.Kinds, site.FIN, site.GLN = s.code, s.org, s.kinds, "", ""
		if _, err := e.svc.RegisterSite(e.ctx, admin, site, "network set-up"); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"SHP-0042", "SHP-0043"} {
		if _, err := e.svc.RegisterShipper(e.ctx, admin, custody.Shipper{ID: id, Courier: "FAST", RequalificationDue: "2027-12-31"}, "fleet"); err != nil {
			t.Fatal(err)
		}
	}
	for id, b := range map[string]struct {
		org   string
		sites []string
	}{
		"coord": {"HOSPA", []string{"HOSP-1"}}, "nurse1": {"HOSPA", []string{"HOSP-1"}}, "nurse2": {"HOSPA", []string{"HOSP-1"}},
		"mfg1": {"MANU", []string{"CELL-1"}}, "mfg2": {"MANU", []string{"CELL-1"}}, "qa1": {"MANU", nil}, "courier1": {"FAST", nil},
	} {
		if _, err := e.svc.SetUserNetwork(e.ctx, admin, id, b.org, b.sites, "bound at network set-up"); err != nil {
			t.Fatal(err)
		}
	}
	add := func(id string, role custody.Role, org string, sites ...string) {
		if _, err := e.svc.AddUserIn(e.ctx, id, "Printed "+id, role, password(id), org, sites); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []custody.Role{custody.RoleCoordinator, custody.RoleNurse, custody.RoleManufacturing, custody.RoleQA} {
		add("b."+string(r), r, "HOSPB", "HOSP-2")
		add("u."+string(r), r, "")
	}
	add("u.courier", custody.RoleCourier, "")
	add("slow.courier", custody.RoleCourier, "SLOW")
	h := custody.User{ID: "h.courier", Name: "Printed h.courier", Role: custody.RoleCourier, Organisation: "HOSPA", Created: e.now}
	enc, _ := passwd.Fast().Hash(password(h.ID))
	h.PasswordHash = enc
	if err := e.store.CreateUser(e.ctx, h, [32]byte{1}); err != nil {
		t.Fatal(err)
	}
	users, err := e.store.Users(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		e.users[u.ID] = u
	}
}

// registeredChain enrolls a chain at HOSP-1, made at CELL-1, and
// records the journey until it is in state s.
func registeredChain(t testing.TB, e *env, s custody.State) custody.COI {
	t.Helper()
	c, err := e.svc.Enroll(e.ctx, e.users["coord"], custody.EnrollRequest{Patient: patient, Product: "Autologous CAR-T cells",
		Sites: custody.Sites{Collection: "HOSP-1", Manufacturing: "CELL-1", Treatment: "HOSP-1"}})
	if err != nil {
		t.Fatal(err)
	}
	e.advance(c.COI, s)
	return c.COI
}

// signerCase is one signing attempt: signature i of the step's good
// signatures signed by user instead (i < 0: the good signatures).
type signerCase struct {
	name string
	i    int
	user string
	want string // "" accepted; else a part of the ErrForbidden message
}

// signerVariants are the attempts for a step whose good signatures are
// sigs: accepted as they are; each signature of a person by one at
// HOSP-2 and by an unbound one; each courier's by a courier of a
// hospital, of another courier than the shipper's, and an unbound one.
func signerVariants(sigs []custody.SignatureRequest, roles []custody.Role, site string, step custody.Step) []signerCase {
	cases := []signerCase{{"right site", -1, "", ""}}
	for i := range sigs {
		r := roles[i]
		if r == custody.RoleCourier {
			cases = append(cases,
				signerCase{"courier of a hospital", i, "h.courier", "not a courier organisation"},
				signerCase{"unbound courier", i, "u.courier", "bound to no organisation"})
			if step == custody.StepShip {
				cases = append(cases, signerCase{"courier not the shipper's", i, "slow.courier", "is courier FAST's"})
			} else {
				cases = append(cases, signerCase{"another courier", i, "slow.courier", ""})
			}
			continue
		}
		want := "does not work at " + site + ", where " + string(step) + " happens"
		if site == "" {
			want = "works at none of the chain's sites"
		}
		cases = append(cases,
			signerCase{"signer " + sigs[i].User + " at another site", i, "b." + string(r), want},
			signerCase{"signer " + sigs[i].User + " unbound", i, "u." + string(r), "bound to no organisation"})
	}
	return cases
}

// signAs returns sigs with signature c.i by c.user.
func (c signerCase) signAs(sigs []custody.SignatureRequest) []custody.SignatureRequest {
	out := slices.Clone(sigs)
	if c.i >= 0 {
		out[c.i] = sig(c.user, out[c.i].Meaning)
	}
	return out
}

// checkSignerOutcome checks a signing attempt's outcome: accepted, or
// refused with ErrForbidden naming the signer, nothing written and no
// failed signature counted.
func checkSignerOutcome(t *testing.T, e *env, c signerCase, before uint64, err error) {
	t.Helper()
	if c.want == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	if !errors.Is(err, custody.ErrForbidden) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.user) {
		t.Fatalf("got %v, want ErrForbidden naming %s: %q", err, c.user, c.want)
	}
	if n := e.records(); n != before {
		t.Fatalf("a refused signature wrote %d record(s)", n-before)
	}
	if u, _ := e.store.User(e.ctx, c.user); u.FailedSignatures != 0 || u.Locked {
		t.Fatalf("a refused signature counted as a wrong password: %+v", u)
	}
}

func TestSignerSiteJourneySteps(t *testing.T) {
	e := newEnv(t)
	signerNetwork(t, e)
	rows := custody.DefaultJourney().Transitions
	siteOf := map[custody.SiteRole]string{custody.SiteCollection: "HOSP-1", custody.SiteManufacturing: "CELL-1", custody.SiteTreatment: "HOSP-1"}
	for k, js := range journey("") {
		row := rows[k+1]
		roles := make([]custody.Role, len(js.sigs))
		for i, s := range js.sigs {
			roles[i] = e.users[s.User].Role
		}
		for _, c := range signerVariants(js.sigs, roles, siteOf[row.Site], js.step) {
			t.Run(string(row.From)+" "+string(js.step)+"/"+c.name, func(t *testing.T) {
				coi := registeredChain(t, e, row.From)
				steps := journey(coi)
				before := e.records()
				_, err := e.step(coi, "nurse1", js.step, steps[k].data, c.signAs(steps[k].sigs)...)
				checkSignerOutcome(t, e, c, before, err)
			})
		}
	}
	// Release: QA of the plant's organisation signs without working at
	// the plant (qa1 is bound to MANU and no site); QA of a hospital
	// working at HOSP-2 does not.
	t.Run("release by the manufacturer's QA", func(t *testing.T) {
		coi := registeredChain(t, e, custody.StateReleased)
		if c, _ := e.svc.Chain(e.ctx, coi); c.Records[5].Signatures[0].User != "qa1" {
			t.Fatalf("release not signed by qa1: %+v", c.Records[5])
		}
	})
}

func TestSignerSiteEnroll(t *testing.T) {
	e := newEnv(t)
	signerNetwork(t, e)
	sites := custody.Sites{Collection: "HOSP-1", Manufacturing: "CELL-1", Treatment: "HOSP-1"}
	sigs := []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)}
	for _, c := range signerVariants(sigs, []custody.Role{custody.RoleCoordinator}, "HOSP-1", custody.StepEnroll) {
		t.Run(c.name, func(t *testing.T) {
			before := e.records()
			_, err := e.svc.Enroll(e.ctx, e.users["coord"], custody.EnrollRequest{Patient: patient, Product: "CAR-T", Sites: sites, Signatures: c.signAs(sigs)})
			checkSignerOutcome(t, e, c, before, err)
		})
	}
	// Without signatures, the session's coordinator is the signer.
	for _, c := range []signerCase{{"session at the site", -1, "coord", ""}, {"session at another site", -1, "b.coordinator", "does not work at HOSP-1"},
		{"unbound session", -1, "u.coordinator", "bound to no organisation"}} {
		t.Run(c.name, func(t *testing.T) {
			before := e.records()
			_, err := e.svc.Enroll(e.ctx, e.users[c.user], custody.EnrollRequest{Patient: patient, Product: "CAR-T", Sites: sites})
			checkSignerOutcome(t, e, c, before, err)
		})
	}
}

func TestSignerSiteExceptions(t *testing.T) {
	e := newEnv(t)
	signerNetwork(t, e)
	type exc struct {
		step   custody.Step
		state  custody.State
		data   func(coi custody.COI) any
		sigs   []custody.SignatureRequest
		others []signerCase
	}
	issue := func(coi custody.COI) any {
		// A broken seal at the plant is an issue QA disposes of.
		r := e.must(coi, "mfg1", custody.StepReceive, map[string]any{"seal_intact": false}, sig("mfg1", custody.MeaningReceived))
		return map[string]any{"excursion": r.Seq, "decision": "accept", "reason": "outer seal only"}
	}
	for _, x := range []exc{
		{custody.StepNote, custody.StateCollected, func(custody.COI) any { return map[string]any{"text": "called the ward"} },
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningAuthored)},
			[]signerCase{{"courier of the network", 0, "courier1", ""}, {"any registered courier", 0, "slow.courier", ""},
				{"courier of a hospital", 0, "h.courier", "not a courier organisation"}, {"manufacturer's QA", 0, "qa1", ""},
				{"plant staff", 0, "mfg1", ""}, {"hospital QA elsewhere", 0, "b.qa", "works at none of the chain's sites (HOSP-1, CELL-1) and is not QA of its manufacturer MANU"}}},
		{custody.StepCorrection, custody.StateCollected, func(coi custody.COI) any {
			c, _ := e.svc.Chain(e.ctx, coi)
			return map[string]any{"corrects": c.Records[1].Seq, "reason": "typo"}
		},
			[]custody.SignatureRequest{sig("nurse1", custody.MeaningAuthored)},
			[]signerCase{{"courier of a hospital", 0, "h.courier", "not a courier organisation"}, {"unbound courier", 0, "u.courier", "bound to no organisation"}}},
		{custody.StepDisposition, custody.StateToManufacturing, issue, []custody.SignatureRequest{sig("qa1", custody.MeaningApproved)}, nil},
		{custody.StepReview, custody.StateInfused, func(custody.COI) any { return map[string]any{"statement": "reviewed"} },
			[]custody.SignatureRequest{sig("qa1", custody.MeaningReviewed)}, nil},
		{custody.StepCancel, custody.StateCollected, func(custody.COI) any { return map[string]any{"reason": "consent withdrawn"} },
			[]custody.SignatureRequest{sig("coord", custody.MeaningApproved)}, []signerCase{{"manufacturer's QA", 0, "qa1", ""}}},
	} {
		cases := append(signerVariants(x.sigs, []custody.Role{e.users[x.sigs[0].User].Role}, "", x.step), x.others...)
		for _, c := range cases {
			t.Run(string(x.step)+"/"+c.name, func(t *testing.T) {
				coi := registeredChain(t, e, x.state)
				data := x.data(coi)
				before := e.records()
				_, err := e.step(coi, "nurse1", x.step, data, c.signAs(x.sigs)...)
				checkSignerOutcome(t, e, c, before, err)
			})
		}
	}
}

// Chains whose sites are free text (from before the network) are signed
// as before: by anyone of the right role, bound or not, anywhere.
func TestSignerSiteOldChains(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll() // before the network was registered
	signerNetwork(t, e)
	e.must(coi, "nurse1", custody.StepCollect, journey(coi)[0].data, sig("b.nurse", custody.MeaningPerformed), sig("u.nurse", custody.MeaningVerified))
	e.must(coi, "nurse1", custody.StepShip, map[string]any{"shipper": "SHP-0042", "profile": "cryogenic"},
		sig("u.nurse", custody.MeaningHandedOver), sig("h.courier", custody.MeaningReceived))
	e.must(coi, "nurse1", custody.StepNote, map[string]any{"text": "x"}, sig("slow.courier", custody.MeaningAuthored))
}

// A registry change applies to the next signature: nothing is cached.
func TestSignerSiteFollowsRegistry(t *testing.T) {
	e := newEnv(t)
	signerNetwork(t, e)
	coi := registeredChain(t, e, custody.StateEnrolled)
	if _, err := e.svc.SuspendOrganisation(e.ctx, e.users["admin1"], "FAST", true, "contract ended"); err != nil {
		t.Fatal(err)
	}
	e.advance(coi, custody.StateCollected)
	_, err := e.step(coi, "nurse1", custody.StepShip, journey(coi)[1].data, journey(coi)[1].sigs...)
	if !errors.Is(err, custody.ErrForbidden) || !strings.Contains(err.Error(), "courier FAST, which is suspended") {
		t.Fatalf("courier of a suspended organisation: %v", err)
	}
	if _, err := e.svc.SetUserNetwork(e.ctx, e.users["admin1"], "nurse2", "HOSPB", []string{"HOSP-2"}, "moved"); err != nil {
		t.Fatal(err)
	}
	_, err = e.step(coi, "nurse1", custody.StepNote, map[string]any{"text": "x"}, sig("nurse2", custody.MeaningAuthored))
	if !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("a nurse moved to another hospital still signs: %v", err)
	}
}

func TestSetUserNetwork(t *testing.T) {
	e := newEnv(t)
	signerNetwork(t, e)
	admin := e.users["admin1"]
	if _, err := e.svc.SuspendSite(e.ctx, admin, "HOSP-2", true, "closed"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RegisterOrganisation(e.ctx, admin, custody.Organisation{Code: "GONE", Name: "Gone", Kind: custody.OrgHospital}, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SuspendOrganisation(e.ctx, admin, "GONE", true, "x"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, id, org string
		sites         []string
		reason        string
		actor         string
		wantErr       error
		want          string
	}{
		{"nurse to a site", "nurse2", "HOSPA", []string{"HOSP-1"}, "r", "admin1", nil, ""},
		{"not an administrator", "nurse2", "HOSPA", nil, "r", "qa1", custody.ErrForbidden, "administrator"},
		{"no reason", "nurse2", "HOSPA", nil, " ", "admin1", custody.ErrInvalid, "reason"},
		{"unknown user", "nobody", "HOSPA", nil, "r", "admin1", custody.ErrNotFound, ""},
		{"unregistered organisation", "nurse2", "NOPE", nil, "r", "admin1", custody.ErrInvalid, "NOPE is not registered"},
		{"malformed organisation", "nurse2", "hospa", nil, "r", "admin1", custody.ErrInvalid, "organisation"},
		{"suspended organisation", "nurse2", "GONE", nil, "r", "admin1", custody.ErrConflict, "GONE is suspended"},
		{"site of another organisation", "nurse2", "HOSPA", []string{"CELL-1"}, "r", "admin1", custody.ErrInvalid, "CELL-1 belongs to MANU"},
		{"suspended site", "nurse2", "HOSPB", []string{"HOSP-2"}, "r", "admin1", custody.ErrConflict, "HOSP-2 is suspended"},
		{"unregistered site", "nurse2", "HOSPA", []string{"HOSP-9"}, "r", "admin1", custody.ErrInvalid, "HOSP-9 is not registered"},
		{"site twice", "nurse2", "HOSPA", []string{"HOSP-1", "HOSP-1"}, "r", "admin1", custody.ErrInvalid, "given twice"},
		{"sites without organisation", "nurse2", "", []string{"HOSP-1"}, "r", "admin1", custody.ErrInvalid, "need the organisation"},
		{"courier of a hospital", "courier1", "HOSPA", nil, "r", "admin1", custody.ErrInvalid, "courier organisation"},
		{"courier with a site", "courier1", "FAST", []string{"HOSP-1"}, "r", "admin1", custody.ErrInvalid, "no site"},
		{"nurse of a courier", "nurse2", "FAST", nil, "r", "admin1", custody.ErrInvalid, "FAST is a courier"},
		{"administrator with a site", "admin1", "HOSPA", []string{"HOSP-1"}, "r", "admin1", custody.ErrInvalid, "no site"},
		{"administrator of an organisation", "admin1", "MANU", nil, "r", "admin1", nil, ""},
		{"unbinding", "mfg2", "", nil, "left", "admin1", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _ := e.store.User(e.ctx, c.id)
			trail, _ := e.svc.AuditTrail(e.ctx, admin, custody.AuditFilter{})
			u, err := e.svc.SetUserNetwork(e.ctx, e.users[c.actor], c.id, c.org, c.sites, c.reason)
			after, _ := e.store.User(e.ctx, c.id)
			trail2, _ := e.svc.AuditTrail(e.ctx, admin, custody.AuditFilter{})
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("got %v, want %v %q", err, c.wantErr, c.want)
				}
				if after.Organisation != before.Organisation || !slices.Equal(after.Sites, before.Sites) || len(trail2) != len(trail) {
					t.Fatalf("a refused change changed something: %+v -> %+v, %d -> %d entries", before, after, len(trail), len(trail2))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.Organisation != c.org || !slices.Equal(u.Sites, c.sites) || u.PasswordHash != "" || after.Organisation != c.org {
				t.Fatalf("user after: %+v", u)
			}
			if len(trail2) != len(trail)+1 {
				t.Fatalf("%d audit entries added, want 1", len(trail2)-len(trail))
			}
			a := trail2[len(trail2)-1]
			var old, nw map[string]string
			if json.Unmarshal(a.Old, &old) != nil || json.Unmarshal(a.New, &nw) != nil {
				t.Fatalf("audit values: %s %s", a.Old, a.New)
			}
			if a.Action != custody.AuditUserNetwork || a.Kind != custody.KindUser || a.Code != c.id || a.Actor != c.actor || a.Reason != c.reason ||
				old["organisation"] != before.Organisation || old["sites"] != strings.Join(before.Sites, ",") ||
				nw["organisation"] != c.org || nw["sites"] != strings.Join(c.sites, ",") {
				t.Fatalf("audit entry: %+v old %v new %v", a, old, nw)
			}
		})
	}
}

func TestAddUserInNetwork(t *testing.T) {
	e := newEnv(t)
	signerNetwork(t, e)
	admin := e.users["admin1"]
	site := goodSite()
	site.Code, site.Organisation, site.FIN, site.GLN = "HOSP-0", "HOSPA", "", ""
	if _, err := e.svc.RegisterSite(e.ctx, admin, site, "second site"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AdminAddUserIn(e.ctx, admin, "n.two", "Nurse Two", custody.RoleNurse, password("n.two"), "HOSPA", []string{"HOSP-1", "HOSP-0"}); err != nil {
		t.Fatal(err)
	}
	u, _ := e.store.User(e.ctx, "n.two")
	if u.Organisation != "HOSPA" || !slices.Equal(u.Sites, []string{"HOSP-0", "HOSP-1"}) {
		t.Fatalf("user: %+v", u)
	}
	trail, _ := e.svc.AuditTrail(e.ctx, admin, custody.AuditFilter{})
	a := trail[len(trail)-1]
	var nw map[string]string
	_ = json.Unmarshal(a.New, &nw)
	if a.Action != custody.AuditUserAdd || nw["organisation"] != "HOSPA" || nw["sites"] != "HOSP-0,HOSP-1" {
		t.Fatalf("audit: %+v %v", a, nw)
	}
	if _, err := e.svc.AdminAddUserIn(e.ctx, admin, "c.two", "Courier", custody.RoleCourier, password("c.two"), "HOSPA", nil); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("courier of a hospital: %v", err)
	}
	if _, err := e.store.User(e.ctx, "c.two"); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("a refused user was stored: %v", err)
	}
}

// Refusals for the site never lock the signer: the password was right.
func TestSignerSiteRefusalNeverLocks(t *testing.T) {
	e := newEnv(t)
	signerNetwork(t, e)
	coi := registeredChain(t, e, custody.StateEnrolled)
	js := journey(coi)[0]
	for range custody.MaxFailedSignatures + 2 {
		_, err := e.step(coi, "nurse1", js.step, js.data, sig("b.nurse", custody.MeaningPerformed), sig("nurse2", custody.MeaningVerified))
		if !errors.Is(err, custody.ErrForbidden) || strings.Contains(err.Error(), "locked") {
			t.Fatalf("refusal: %v", err)
		}
	}
	if u, _ := e.store.User(e.ctx, "b.nurse"); u.Locked || u.FailedSignatures != 0 {
		t.Fatalf("site refusals locked the signer: %+v", u)
	}
	e.must(coi, "nurse1", js.step, js.data, js.sigs...)
}
