package epcis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/labels/report"
)

// TestNewStepNeedsNoChangeOutsideCustody adds a step kind to the journey
// table in this test only, and records it through the service on a real
// bbolt store, lists it (Service.Chain), exports it as EPCIS (the document
// validates as TestFullJourneyValidatesAgainstGS1Schema's does, and passes
// checkStructure) and builds and renders the custody report that includes
// it, with no code outside this test knowing the step.
//
// What a new step gets with no other change: its row in the journey table
// (custody.Config.Journey) gives its signatures, the states it is allowed
// in, the state it leads to and the members its data may hold (Data: a
// closed schema, checked for patient identifiers like any step's data);
// its data parses as custody.OtherData; EPCIS exports it as an OBSERVE
// event of the COI with coid:step naming it; the report lists it in the
// record table with its signatures and its data's members as they are.
// What a new step may optionally add, all inside custody unless said: a
// type for its data with checks of its values (schemaOf in
// custody/stepdata.go, checkData in custody/data.go); how it changes the
// folded chain (Chain.apply); an EPCIS business step and disposition (a
// case in custody/epcis's event); a worded line in the report's record
// details (labels/report's details).
func TestNewStepNeedsNoChangeOutsideCustody(t *testing.T) {
	const audit custody.Step = "site-audit"
	j := custody.DefaultJourney()
	j.Exceptions = append(j.Exceptions, custody.Exception{Step: audit, AfterEnd: true, Data: []string{"finding"},
		Signatures: []custody.SignatureRule{{Roles: []custody.Role{custody.RoleQA}, Meaning: custody.MeaningVerified}}})
	e := newEnvJourney(t, j)
	ctx := context.Background()
	coi := fullJourney(e)

	// Recorded: a member its row does not list is refused, as for any
	// step's closed schema.
	e.at(time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC))
	_, err := e.svc.Record(ctx, e.users["qa1"], coi, custody.StepRequest{Step: audit, Data: json.RawMessage(`{"finding":"none","room":"B2"}`),
		Signatures: []custody.SignatureRequest{sig("qa1", custody.MeaningVerified)}})
	if !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), "data.room is not a member of site-audit data (one of finding)") {
		t.Fatalf("%s with a member its row does not list: %v, want ErrInvalid naming it", audit, err)
	}
	rec := e.step(coi, time.Date(2026, 12, 2, 9, 5, 0, 0, time.UTC), audit, map[string]any{"finding": "none"}, sig("qa1", custody.MeaningVerified))

	// Listed.
	c, err := e.svc.Chain(ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	last := c.Records[len(c.Records)-1]
	if last.Step != audit || last.Seq != rec.Seq || c.State != custody.StateInfused {
		t.Fatalf("chain's last record %s %d in state %s, want %s %d in %s", last.Step, last.Seq, c.State, audit, rec.Seq, custody.StateInfused)
	}
	if data, err := last.Parsed(); err != nil || data.Step() != audit || string(data.(custody.OtherData).Members["finding"]) != `"none"` {
		t.Fatalf("parsed data of the %s record: %#v %v", audit, data, err)
	}
	if !slices.Contains(c.Next, audit) {
		t.Errorf("next steps %v do not offer %s", c.Next, audit)
	}

	// Exported.
	b := export(t, e, coi)
	if err := validate(t, compileSchema(t), b); err != nil {
		t.Fatalf("export does not validate against GS1's EPCIS 2.0 schema: %v\n%s", err, b)
	}
	doc := decode(t, b)
	if errs := checkStructure(doc); len(errs) > 0 {
		t.Fatalf("structure: %v", errs)
	}
	var found bool
	for _, ev := range asSlice(doc["epcisBody"].(map[string]any)["eventList"]) {
		m := ev.(map[string]any)
		if m["coid:step"] != string(audit) {
			continue
		}
		found = true
		epcs := asSlice(m["epcList"])
		if m["action"] != "OBSERVE" || m["coid:seq"] != float64(rec.Seq) || len(epcs) != 1 || epcs[0] != base+"coi/"+string(coi) {
			t.Errorf("%s event: %v", audit, m)
		}
	}
	if !found {
		t.Fatalf("no %s event in\n%s", audit, b)
	}

	// In the custody report.
	in, err := report.Build(ctx, report.ServiceSource{Service: e.svc}, coi, e.users["qa1"], time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(in.Chain.Records, func(r custody.Record) bool { return r.Step == audit && r.Seq == rec.Seq }) {
		t.Fatalf("report input does not hold the %s record", audit)
	}
	var pdf bytes.Buffer
	if err := report.Write(&pdf, in); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pdf.Bytes(), []byte("%PDF-")) {
		t.Fatalf("report is not a PDF: %.20q", pdf.Bytes())
	}
}
