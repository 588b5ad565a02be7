package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// identifierParts are pieces of patientA's identifiers that must never be
// repeated in a response, a log or the ledger.
var identifierParts = []string{"Zelda", "Quixote", "Marchetti", "7730419", "1961-07-19"}

// refusedClean checks that r is a 400 saying want, repeating no
// identifier, that the ledger holds before records still, and that
// neither the chain nor the logs hold an identifier.
func (e *env) refusedClean(tb testing.TB, coi custody.COI, r response, want string, before uint64) {
	tb.Helper()
	if r.Code != http.StatusBadRequest || !strings.Contains(string(r.Body), want) {
		tb.Errorf("got %s, want 400 saying %q", r, want)
	}
	if after := e.ledgerRecords(tb); after != before {
		tb.Errorf("refused step wrote %d records", after-before)
	}
	chain := e.do(tb, http.MethodGet, chainPath(coi), qa, nil)
	for _, part := range identifierParts {
		for what, s := range map[string]string{"response": string(r.Body), "chain": string(chain.Body), "log": e.logs.String()} {
			if strings.Contains(s, part) {
				tb.Errorf("the %s holds %q", what, part)
			}
		}
	}
}

// TestStepDataClosedSchema: every step's data is a closed schema. A member
// the step does not define is refused with a 400 naming it, and nothing is
// written; a correction may name the members of the record it corrects.
func TestStepDataClosedSchema(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	for _, s := range journey(coi, patientA.MRN) {
		data := map[string]any{}
		if s.data != nil {
			for k, v := range s.data.(map[string]any) {
				data[k] = v
			}
		}
		data["operator_comment"] = "x"
		before := e.ledgerRecords(t)
		r := e.step(t, coi, s.actor, s.step, data, s.sigs...)
		if r.Code != http.StatusBadRequest || !strings.Contains(string(r.Body), "data.operator_comment is not a member of "+string(s.step)) {
			t.Errorf("%s with an unknown member: %s", s.step, r)
		}
		if after := e.ledgerRecords(t); after != before {
			t.Errorf("%s: refused step wrote %d records", s.step, after-before)
		}
		e.mustStep(t, coi, s.actor, s.step, s.data, s.sigs...)
	}
	c := e.chain(t, coi)
	authored := sig{nurse1, custody.MeaningAuthored, ""}
	for _, tc := range []struct {
		name string
		step custody.Step
		data map[string]any
		sigs []sig
		bad  string // the member the 400 names; "" when stored
	}{
		{"note", custody.StepNote, map[string]any{"text": "n", "reason": "r"}, []sig{authored}, "reason"},
		{"note nested", custody.StepNote, map[string]any{"text": "n", "meta": map[string]any{"by": "x"}}, []sig{authored}, "meta"},
		{"correction", custody.StepCorrection, map[string]any{"corrects": c.Records[1].Seq, "reason": "r", "colour": "red"}, []sig{authored}, "colour"},
		{"correction with a member of another step", custody.StepCorrection, map[string]any{"corrects": c.Records[1].Seq, "reason": "r", "seal_intact": true}, []sig{authored}, "seal_intact"},
		{"correction with the corrected record's member", custody.StepCorrection, map[string]any{"corrects": c.Records[1].Seq, "reason": "DIN misread", "din": "A999926123457"}, []sig{authored}, ""},
		{"correction of a bedside check", custody.StepCorrection, map[string]any{"corrects": c.Records[8].Seq, "reason": "r", "bag": "x"}, []sig{authored}, ""},
	} {
		before := e.ledgerRecords(t)
		r := e.step(t, coi, nurse1, tc.step, tc.data, tc.sigs...)
		switch {
		case tc.bad == "" && r.Code != http.StatusCreated:
			t.Errorf("%s: %s, want 201", tc.name, r)
		case tc.bad != "" && (r.Code != http.StatusBadRequest || !strings.Contains(string(r.Body), "data."+tc.bad+" is not a member")):
			t.Errorf("%s: %s, want 400 naming data.%s", tc.name, r, tc.bad)
		case tc.bad != "" && e.ledgerRecords(t) != before:
			t.Errorf("%s: refused step wrote a record", tc.name)
		}
	}
	other := e.enroll(t, patientB)
	e.refusedClean(t, other, e.step(t, other, qa, custody.StepCancel, map[string]any{"reason": "withdrew", "by": "phone"},
		sig{qa, custody.MeaningApproved, ""}), "data.by is not a member of cancel data (one of reason)", e.ledgerRecords(t))
}

// TestStepDataMemberNamesPatient: the patient's identifiers are refused as
// member names and as numbers, at any depth, before the schema check, so
// the error never repeats them and nothing reaches the ledger (they were
// stored, and printed in the custody report).
func TestStepDataMemberNamesPatient(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	e.advance(t, coi, patientA.MRN, 1)
	c := e.chain(t, coi)
	authored := sig{nurse1, custody.MeaningAuthored, ""}
	for _, tc := range []struct {
		name string
		step custody.Step
		data any
		want string
	}{
		{"full name as a member", custody.StepNote, map[string]any{"text": "hi", patientA.Name: 1}, "holds the patient's name"},
		{"name run together as a member", custody.StepNote, map[string]any{"text": "hi", "ZeldaQuixoteMarchetti": true}, "holds the patient's name"},
		{"MRN as a nested member", custody.StepNote, map[string]any{"text": "hi", "x": map[string]any{patientA.MRN: 1}}, "data.x has a member whose name holds the patient's medical record number"},
		{"MRN digits in a list", custody.StepNote, map[string]any{"text": "hi", "x": []any{map[string]any{"7730419": true}}}, "medical record number"},
		{"birth date as a member", custody.StepNote, map[string]any{"text": "hi", "born 19/07/1961": 1}, "birth date"},
		{"MRN as a number", custody.StepCorrection, map[string]any{"corrects": c.Records[1].Seq, "reason": "r", "volume_ml": 7730419}, "data.volume_ml holds the patient's medical record number"},
		{"name in a nested value", custody.StepNote, map[string]any{"text": "hi", "x": []any{1, map[string]any{"y": "for MARCHETTI, Zelda"}}}, "data.x[1].y holds the patient's name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.ledgerRecords(t)
			e.refusedClean(t, coi, e.step(t, coi, nurse1, tc.step, tc.data, authored), tc.want, before)
		})
	}
	// Nothing but the enrollment and the collection was stored.
	r := e.do(t, http.MethodGet, chainPath(coi), qa, nil)
	var chain struct {
		Records []struct {
			Data json.RawMessage `json:"data"`
		} `json:"records"`
	}
	if err := json.Unmarshal(r.Body, &chain); err != nil || len(chain.Records) != 2 {
		t.Fatalf("chain: %v, %d records", err, len(chain.Records))
	}
}

// TestStepDataPHINormalised: the patient's identifiers are found however
// they are written: case, diacritics, look-alike characters, fullwidth
// forms, separators removed or changed, and the birth date in its usual
// written forms. Text naming the patient is refused, never cleaned.
func TestStepDataPHINormalised(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	authored := sig{nurse1, custody.MeaningAuthored, ""}
	for _, tc := range []struct{ text, what string }{
		{"called ZELDA QUIXOTE-MARCHETTI", "name"},
		{"called zéldà quíxote-marchëtti", "name"},
		{"called Z\u0435lda Quix\u043ete-Marchetti", "name"}, // Cyrillic e and o
		{"called \u0396elda Quixote-\u041carchetti", "name"}, // Greek Zeta, Cyrillic Em
		{"called Ｚｅｌｄａ Ｑｕｉｘｏｔｅ－Ｍａｒｃｈｅｔｔｉ", "name"},           // fullwidth
		{"called 𝐙𝐞𝐥𝐝𝐚 𝐌𝐚𝐫𝐜𝐡𝐞𝐭𝐭𝐢", "name"},                   // mathematical bold, no middle name
		{"called ZeldaQuixoteMarchetti", "name"},
		{"called Quixote-Marchetti, Zelda", "name"},
		{"called z.q.marchetti? no: zelda\u200bmarchetti", "name"},
		{"wristband mrn7730419", "medical record number"},
		{"wristband 773-0419", "medical record number"},
		{"wristband ７７３０４１９", "medical record number"},
		{"wristband MRN\u20107730419", "medical record number"},
		{"born 19 July 1961", "birth date"},
		{"born July 19, 1961", "birth date"},
		{"born 19th of July 1961", "birth date"},
		{"born 07/19/1961", "birth date"},
		{"born 19.07.1961", "birth date"},
		{"born 19610719", "birth date"},
		{"born 19 JUL 61", "birth date"},
	} {
		before := e.ledgerRecords(t)
		e.refusedClean(t, coi, e.step(t, coi, nurse1, custody.StepNote, map[string]any{"text": tc.text}, authored),
			"data.text holds the patient's "+tc.what, before)
	}
}

// TestStepDataPHINotOverreaching: ordinary text is not refused: other
// names, parts of the patient's name alone, other numbers and dates.
func TestStepDataPHINotOverreaching(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	authored := sig{nurse1, custody.MeaningAuthored, ""}
	for _, text := range []string{
		"Janet called about the slot",
		"Zelda",
		"the Marchetti ward",
		"Zeldas Quixotes",
		"bag 2 of 3, 215 mL, shipper SHP-0042",
		"7730418",
		"77304190",
		"DIN A999926077304190",
		"1961",
		"19 July 1962",
		"07/19",
		"collected 2026-11-22T08:00:00Z",
		"Ｆｕｌｌｗｉｄｔｈ ｎｏｔｅ",
		"reçu à 10 h, état correct",
	} {
		if r := e.step(t, coi, nurse1, custody.StepNote, map[string]any{"text": text}, authored); r.Code != http.StatusCreated {
			t.Errorf("%q: %s, want 201", text, r)
		}
	}
}
