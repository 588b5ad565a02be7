package custody_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// followUp is a valid follow-up's data for day.
func followUp(day int) map[string]any {
	return map[string]any{"day": day, "crs_grade": 1, "icans_grade": 0, "response": "CR", "assessed_date": "2026-11-23"}
}

func withFollowUp(day int, k string, v any) map[string]any {
	d := followUp(day)
	if v == nil {
		delete(d, k)
	} else {
		d[k] = v
	}
	return d
}

// netFollowUpEnv is a network with a physician at the treatment site
// (HOSP-2) and a nurse at the collection site only (PAR-1), the product
// configured with follow-ups at days 7 and 30, and one chain infused.
func netFollowUpEnv(t *testing.T) (*env, custody.COI) {
	e := newEnv(t)
	registerNetwork(t, e)
	admin := e.users["admin1"]
	p, err := e.svc.Product(e.ctx, admin, "CART-19")
	if err != nil {
		t.Fatal(err)
	}
	p.FollowUpDays, p.FollowUpGraceDays = []int{7, 30}, 2
	if _, err := e.svc.UpdateProduct(e.ctx, admin, "CART-19", p, "protocol follow-up schedule"); err != nil {
		t.Fatal(err)
	}
	for id, b := range map[string]struct {
		role custody.Role
		site string
	}{"doc1": {custody.RolePhysician, "HOSP-2"}, "nurse3": {custody.RoleNurse, "PAR-1"}} {
		if _, err := e.svc.AddUserIn(e.ctx, id, "Printed "+id, b.role, password(id), "APHP", []string{b.site}); err != nil {
			t.Fatal(err)
		}
		e.users[id], _ = e.store.User(e.ctx, id)
	}
	coi := e.enrollNet()
	e.advance(coi, custody.StateInfused)
	return e, coi
}

func TestFollowUpRefusalsAndAcceptance(t *testing.T) {
	e, coi := netFollowUpEnv(t)
	before := e.enrollNet()
	e.advance(before, custody.StateVerified)
	doc := sig("doc1", custody.MeaningAuthored)
	for _, tc := range []struct {
		name  string
		coi   custody.COI
		actor string
		data  map[string]any
		sigs  []custody.SignatureRequest
		want  error
	}{
		{"before infusion", before, "doc1", followUp(7), []custody.SignatureRequest{doc}, custody.ErrConflict},
		{"unknown time point", coi, "doc1", followUp(14), []custody.SignatureRequest{doc}, custody.ErrInvalid},
		{"wrong site", coi, "nurse3", followUp(7), []custody.SignatureRequest{sig("nurse3", custody.MeaningAuthored)}, custody.ErrForbidden},
		{"wrong role", coi, "qa1", followUp(7), []custody.SignatureRequest{sig("qa1", custody.MeaningAuthored)}, custody.ErrForbidden},
		{"crs grade 5", coi, "doc1", withFollowUp(7, "crs_grade", 5), []custody.SignatureRequest{doc}, custody.ErrInvalid},
		{"no icans grade", coi, "doc1", withFollowUp(7, "icans_grade", nil), []custody.SignatureRequest{doc}, custody.ErrInvalid},
		{"uncoded response", coi, "doc1", withFollowUp(7, "response", "better"), []custody.SignatureRequest{doc}, custody.ErrInvalid},
		{"free text", coi, "doc1", withFollowUp(7, "note", "fine"), []custody.SignatureRequest{doc}, custody.ErrInvalid},
		{"patient name", coi, "doc1", withFollowUp(7, "response", patient.Name), []custody.SignatureRequest{doc}, custody.ErrInvalid},
		{"future date", coi, "doc1", withFollowUp(7, "assessed_date", "2027-01-01"), []custody.SignatureRequest{doc}, custody.ErrInvalid},
		{"date before infusion", coi, "doc1", withFollowUp(7, "assessed_date", "2026-11-01"), []custody.SignatureRequest{doc}, custody.ErrInvalid},
		{"not a date", coi, "doc1", withFollowUp(7, "assessed_date", "23/11/2026"), []custody.SignatureRequest{doc}, custody.ErrInvalid},
		{"no signature", coi, "doc1", followUp(7), nil, custody.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := e.records()
			_, err := e.step(tc.coi, tc.actor, custody.StepFollowUp, tc.data, tc.sigs...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), patient.Name) {
				t.Errorf("error repeats the patient's name: %v", err)
			}
			if e.records() != n {
				t.Error("a refused follow-up wrote a record")
			}
		})
	}
	// Accepted from each role at the treatment site; then the same time
	// point again is refused.
	e.must(coi, "doc1", custody.StepFollowUp, followUp(7), doc)
	if _, err := e.step(coi, "nurse1", custody.StepFollowUp, withFollowUp(7, "crs_grade", 2), sig("nurse1", custody.MeaningAuthored)); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("second day-7 follow-up: err = %v, want ErrConflict", err)
	}
	r := e.must(coi, "coord", custody.StepFollowUp, followUp(30), sig("coord", custody.MeaningAuthored))
	if r.Site != "HOSP-2" {
		t.Errorf("follow-up site = %q, want the treatment site", r.Site)
	}
	c, err := e.svc.Chain(e.ctx, coi)
	if err != nil || c.State != custody.StateInfused {
		t.Fatalf("chain after follow-ups: %v %v", c, err)
	}
}

func TestFollowUpDefaultTimePoints(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll() // a free-text product: the default time points
	e.advance(coi, custody.StateInfused)
	for _, day := range []int{7, 14, 28, 90} {
		e.must(coi, "nurse1", custody.StepFollowUp, followUp(day), sig("nurse1", custody.MeaningAuthored))
	}
	if _, err := e.step(coi, "nurse1", custody.StepFollowUp, followUp(60), sig("nurse1", custody.MeaningAuthored)); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("day 60: err = %v, want ErrInvalid", err)
	}
}

func TestProductFollowUpValidation(t *testing.T) {
	e := newEnv(t)
	registerNetwork(t, e)
	admin := e.users["admin1"]
	p, err := e.svc.Product(e.ctx, admin, "CART-19")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		days  []int
		grace int
	}{{[]int{14, 7}, 0}, {[]int{7, 7}, 0}, {[]int{0, 7}, 0}, {[]int{7, 5000}, 0}, {[]int{7}, -1}} {
		q := p
		q.FollowUpDays, q.FollowUpGraceDays = tc.days, tc.grace
		if _, err := e.svc.UpdateProduct(e.ctx, admin, "CART-19", q, "x"); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("days %v grace %d: err = %v, want ErrInvalid", tc.days, tc.grace, err)
		}
	}
}

func TestOverdueFollowUps(t *testing.T) {
	e, coi := netFollowUpEnv(t)
	c, err := e.svc.Chain(e.ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	infused := c.Records[len(c.Records)-1].Time
	setClock := func(at time.Time) {
		e.mu.Lock()
		e.now = at
		e.mu.Unlock()
	}
	day := 24 * time.Hour
	list := func(u string) []custody.OverdueFollowUp {
		t.Helper()
		out, next, err := e.svc.OverdueFollowUps(e.ctx, e.users[u], "", 10)
		if err != nil || next != "" {
			t.Fatalf("overdue: %v next %q", err, next)
		}
		return out
	}
	days := func(o []custody.OverdueFollowUp) []int {
		var d []int
		for _, x := range o {
			d = append(d, x.Day)
		}
		return d
	}
	for _, tc := range []struct {
		at   time.Duration
		want []int
	}{
		{6 * day, nil},
		{9 * day, nil},                    // due day 7, within the 2-day grace
		{9*day + 2*time.Minute, []int{7}}, // past the grace window
		{40 * day, []int{7, 30}},
	} {
		setClock(infused.Add(tc.at - time.Minute)) // the clock ticks once on reading
		if got := days(list("coord")); !equalInts(got, tc.want) {
			t.Errorf("at infusion+%v: overdue days %v, want %v", tc.at, got, tc.want)
		}
	}
	// A nurse of another hospital, bound to none of the chain's sites,
	// sees none of them.
	admin := e.users["admin1"]
	if _, err := e.svc.RegisterOrganisation(e.ctx, admin, custody.Organisation{Code: "OTHERH", Name: "Other Hospital", Kind: custody.OrgHospital}, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RegisterSite(e.ctx, admin, netSite("OTH-1", "OTHERH", "Europe/Paris", custody.SiteTreatment), "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddUserIn(e.ctx, "nurse9", "Printed nurse9", custody.RoleNurse, password("nurse9"), "OTHERH", []string{"OTH-1"}); err != nil {
		t.Fatal(err)
	}
	e.users["nurse9"], _ = e.store.User(e.ctx, "nurse9")
	if got := list("nurse9"); len(got) != 0 {
		t.Errorf("a nurse of another hospital sees overdue follow-ups: %v", got)
	}
	// Recording one takes it off the list.
	setClock(infused.Add(40 * day))
	e.must(coi, "doc1", custody.StepFollowUp, withFollowUp(7, "assessed_date", infused.Add(40*day).Format(time.DateOnly)), sig("doc1", custody.MeaningAuthored))
	if got := days(list("coord")); !equalInts(got, []int{30}) {
		t.Errorf("after recording day 7: overdue %v, want [30]", got)
	}
	if _, _, err := e.svc.OverdueFollowUps(e.ctx, e.users["coord"], "", 0); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("limit 0: err = %v, want ErrInvalid", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFollowUpCorrectionChecked: a correction of a follow-up record is
// held to the follow-up's own rules (grades, response, assessed date) and
// does not move its time point; nothing is written when it is refused; a
// valid correction is accepted.
func TestFollowUpCorrectionChecked(t *testing.T) {
	e, coi := netFollowUpEnv(t)
	c, err := e.svc.Chain(e.ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	infused := c.Records[len(c.Records)-1].Time
	e.setNow(infused.Add(8 * 24 * time.Hour))
	assessed := infused.Add(7 * 24 * time.Hour).Format(time.DateOnly)
	rec := e.must(coi, "doc1", custody.StepFollowUp, withFollowUp(7, "assessed_date", assessed), sig("doc1", custody.MeaningAuthored))
	corr := func(k string, v any) map[string]any {
		return map[string]any{"corrects": rec.Seq, "reason": "transcription error", k: v}
	}
	for _, tc := range []struct {
		name string
		data map[string]any
	}{
		{"grade out of range", corr("crs_grade", 9)},
		{"negative grade", corr("icans_grade", -1)},
		{"response not coded", corr("response", "better")},
		{"assessed in the future", corr("assessed_date", "2099-01-01")},
		{"assessed before the infusion", corr("assessed_date", infused.Add(-48*time.Hour).Format(time.DateOnly))},
		{"not a date", corr("assessed_date", "7 days later")},
		{"time point moved", corr("day", 30)},
	} {
		before := e.records()
		if _, err := e.step(coi, "coord", custody.StepCorrection, tc.data, sig("coord", custody.MeaningAuthored)); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
		if e.records() != before {
			t.Errorf("%s: a record was written", tc.name)
		}
	}
	e.must(coi, "coord", custody.StepCorrection, corr("crs_grade", 2), sig("coord", custody.MeaningAuthored))
}
