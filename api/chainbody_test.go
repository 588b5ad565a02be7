package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestChainReadKeptBody checks the kept encoding of GET /chains/{coi}:
// a second read answers the same bytes as an encoding of the chain made
// now, a record appended in between shows at once, and ?pretty still
// indents.
func TestChainReadKeptBody(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	fresh := func() []byte {
		t.Helper()
		c, err := e.svc.Chain(t.Context(), coi)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return append(b, '\n')
	}
	for i, step := range []func(){
		func() {},
		func() {},
		func() {
			e.mustStep(t, coi, nurse1, custody.StepNote, map[string]any{"text": "seal checked"}, sig{nurse1, custody.MeaningAuthored, ""})
		},
		func() {},
	} {
		step()
		r := e.do(t, http.MethodGet, chainPath(coi), qa, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("read %d: %s", i, r)
		}
		if want := fresh(); !bytes.Equal(r.Body, want) {
			t.Fatalf("read %d answered\n%s\nwant the chain as it is now\n%s", i, r.Body, want)
		}
	}
	if n := len(e.chain(t, coi).Records); n != 2 {
		t.Fatalf("chain read shows %d records after the note, want 2", n)
	}
	r := e.do(t, http.MethodGet, chainPath(coi)+"?pretty", qa, nil)
	if r.Code != http.StatusOK || !bytes.Contains(r.Body, []byte("\n  \"coi\"")) {
		t.Fatalf("?pretty read = %s, want an indented body", r)
	}
}
