package epcis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/coid-project/coid/custody/epcis"
)

// TestProofExtensionValidatesAgainstGS1Schema: a document carrying a
// proof bundle as its "coid:proof" member is still valid EPCIS 2.0 (GS1's
// schema), and the bundle comes back byte for byte.
func TestProofExtensionValidatesAgainstGS1Schema(t *testing.T) {
	s := compileSchema(t)
	e := newEnv(t)
	coi := fullJourney(e)
	c, err := e.svc.Chain(context.Background(), coi)
	if err != nil {
		t.Fatal(err)
	}
	proof := json.RawMessage(`{"format":"coid-proof-bundle/v1","checkpoint":"coid/x\n3\nAAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=\n\n— coid/x Ab12\n","key_ids":["coid/x+01020304"],"records":[{"seq":1,"leaf_index":0,"canonical":"e30=","proof":["AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk="]}]}`)
	in := &epcis.Input{Chain: c, CreatedAt: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC), Proof: proof}
	var buf bytes.Buffer
	if err := epcis.Write(&buf, in); err != nil {
		t.Fatal(err)
	}
	if err := validate(t, s, buf.Bytes()); err != nil {
		t.Fatalf("export with a proof does not validate against GS1's EPCIS 2.0 schema: %v", err)
	}
	var back struct {
		Proof json.RawMessage `json:"coid:proof"`
	}
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	var want, got bytes.Buffer
	_ = json.Compact(&want, proof)
	_ = json.Compact(&got, back.Proof)
	if !bytes.Equal(want.Bytes(), got.Bytes()) {
		t.Fatalf("coid:proof came back as %s", back.Proof)
	}
}
