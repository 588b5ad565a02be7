package epcis_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/epcis"
)

// oosChain builds, record by record as a store links them, a chain
// enrolled from expanded-access request EAA999926000007 whose product QA
// recorded out of specification and released by an exceptional release
// (when released is set).
func oosChain(t *testing.T, released bool) *custody.Chain {
	t.Helper()
	const coi custody.COI = "CHA999926000042"
	sites := custody.Sites{Collection: "St Elsewhere Apheresis", Manufacturing: "CellWorks NJ", Treatment: "St Elsewhere BMT"}
	var recs []custody.Record
	add := func(step custody.Step, at time.Time, site string, data any, sigs ...custody.Signature) {
		raw, _ := json.Marshal(data)
		canon, err := custody.Canonicalize(raw)
		if err != nil {
			t.Fatal(err)
		}
		for i := range sigs {
			sigs[i].Time, sigs[i].Method = custody.FormatTime(at), "password"
		}
		r := custody.Record{V: custody.EncodingVersion, Seq: uint64(100 + 2*len(recs)), Chain: coi, ChainSeq: uint64(len(recs) + 1),
			Step: step, Time: at, Site: site, SubmittedBy: "test", Data: canon, Signatures: sigs}
		if len(recs) > 0 {
			r.ChainPrev = recs[len(recs)-1].Hash
		}
		r.Hash = r.ComputeHash()
		recs = append(recs, r)
	}
	s := func(id string, role custody.Role, m custody.Meaning) custody.Signature {
		return custody.Signature{User: id, Name: "Printed " + id, Role: role, Meaning: m}
	}
	add(custody.StepEnroll, d(20, 8, 0), sites.Collection, map[string]any{"product": "CART-19", "sites": sites, "facility": "A9999",
		"patient_commitment": strings.Repeat("5f", 32), "request": "EAA999926000007"}, s("coord", custody.RoleCoordinator, custody.MeaningAuthored))
	add(custody.StepCollect, d(20, 10, 30), sites.Collection, map[string]any{"din": "A999926123456", "volume_ml": 212.5, "bags": 1,
		"started_at": "2026-11-20T08:40:00Z", "ended_at": "2026-11-20T10:10:00Z"},
		s("nurse1", custody.RoleNurse, custody.MeaningPerformed), s("nurse2", custody.RoleNurse, custody.MeaningVerified))
	add(custody.StepShip, d(20, 11, 0), sites.Collection, map[string]any{"shipper": "SHP-0042", "profile": "refrigerated"},
		s("nurse1", custody.RoleNurse, custody.MeaningHandedOver), s("courier1", custody.RoleCourier, custody.MeaningReceived))
	add(custody.StepReceive, d(21, 9, 0), sites.Manufacturing, map[string]any{"seal_intact": true}, s("mfg1", custody.RoleManufacturing, custody.MeaningReceived))
	add(custody.StepManufacture, d(28, 15, 0), sites.Manufacturing, map[string]any{"final_bags": 2}, s("mfg1", custody.RoleManufacturing, custody.MeaningPerformed))
	add(custody.StepOOS, d(29, 9, 0), sites.Manufacturing, map[string]any{"attributes": []string{"viability", "cell-count"},
		"reason": "Viability 62% against a limit of 70%."}, s("qa1", custody.RoleQA, custody.MeaningAuthored))
	add(custody.StepExceptionalReleaseRequest, d(29, 12, 0), sites.Treatment, map[string]any{"reason": "No alternative therapy."},
		s("doc2", custody.RolePhysician, custody.MeaningAuthored))
	add(custody.StepConsent, d(29, 15, 0), sites.Treatment, map[string]any{"obtained_by": "treating physician", "obtained_at": "2026-11-29T14:00:00Z"},
		s("doc2", custody.RolePhysician, custody.MeaningAuthored))
	if released {
		add(custody.StepExceptionalRelease, d(30, 10, 0), sites.Manufacturing, map[string]any{"statement": "Released out of specification."},
			s("qa1", custody.RoleQA, custody.MeaningApproved), s("md1", custody.RoleMedicalDirector, custody.MeaningApproved))
	}
	c, err := custody.Fold(custody.DefaultJourney(), recs)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOOSAndExceptionalRelease: the export carries QA's oos record (an
// inspecting event, non_conformant, which it keeps persistently, with the
// failed attributes and the reason) and the exceptional release (an
// inspecting event making the product available while it stays
// non_conformant, with the oos records, the physician's request, the
// consent, the expanded-access request and the approvals by QA and the
// medical director, no names), and validates against GS1's schema.
func TestOOSAndExceptionalRelease(t *testing.T) {
	schema := compileSchema(t)
	for _, released := range []bool{false, true} {
		c := oosChain(t, released)
		var buf bytes.Buffer
		if err := epcis.Write(&buf, &epcis.Input{Chain: c, CreatedAt: d(30, 12, 0), Base: base}); err != nil {
			t.Fatal(err)
		}
		if err := validate(t, schema, buf.Bytes()); err != nil {
			t.Fatalf("released %v: export does not validate against GS1's EPCIS 2.0 schema: %v\n%s", released, err, buf.Bytes())
		}
		if errs := checkStructure(decode(t, buf.Bytes())); len(errs) > 0 {
			t.Fatalf("structure: %v", errs)
		}
		var doc epcis.Document
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		byStep := map[string]epcis.Event{}
		for _, ev := range doc.Body.EventList {
			byStep[ev.Step] = ev
		}
		fp := []string{base + "coi/" + string(c.COI), base + "bag/" + string(c.COI) + "-FP-01", base + "bag/" + string(c.COI) + "-FP-02"}
		oos := byStep[string(custody.StepOOS)]
		if oos.BizStep != "inspecting" || oos.Disposition != "non_conformant" || oos.PersistentDisposition == nil ||
			!slices.Equal(oos.PersistentDisposition.Set, []string{"non_conformant"}) || !slices.Equal(oos.EPCList, fp) ||
			!slices.Equal(oos.Attributes, []string{"viability", "cell-count"}) || oos.Reason != "Viability 62% against a limit of 70%." {
			t.Errorf("oos event: %+v", oos)
		}
		er, ok := byStep[string(custody.StepExceptionalRelease)]
		if ok != released {
			t.Fatalf("released %v: exceptional-release event present %v", released, ok)
		}
		if !released {
			continue
		}
		x := er.ExceptionalRelease
		if er.BizStep != "inspecting" || er.Disposition != "available" || er.PersistentDisposition == nil ||
			!slices.Equal(er.PersistentDisposition.Set, []string{"non_conformant"}) || !slices.Equal(er.EPCList, fp) || x == nil {
			t.Fatalf("exceptional-release event: %+v", er)
		}
		want := &epcis.ExceptionalRelease{OOS: []string{base + "record/" + c.Records[5].Hash.String()}, Attributes: []string{"viability", "cell-count"},
			PhysicianRequest: base + "record/" + c.Records[6].Hash.String(), Consent: base + "record/" + c.Records[7].Hash.String(),
			AccessRequest: base + "access-request/EAA999926000007",
			Approvals: []epcis.Approval{{Role: "qa", Meaning: "approved", Time: "2026-11-30T10:00:00Z"},
				{Role: "medical-director", Meaning: "approved", Time: "2026-11-30T10:00:00Z"}}}
		got, _ := json.Marshal(x)
		exp, _ := json.Marshal(want)
		if !bytes.Equal(got, exp) {
			t.Errorf("coid:exceptionalRelease\n got %s\nwant %s", got, exp)
		}
		if bytes.Contains(buf.Bytes(), []byte("Printed ")) {
			t.Error("the export names a signer")
		}
	}
}
