package custody_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestMismatchIsTyped: a refused bedside check is a *MismatchError that
// names the stored mismatch record, and still an ErrConflict.
func TestMismatchIsTyped(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll()
	e.advance(coi, custody.StateAtTreatment)
	two := []custody.SignatureRequest{sig("nurse1", custody.MeaningVerified), sig("nurse2", custody.MeaningVerified)}
	bag := custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1})
	_, err := e.step(coi, "nurse1", custody.StepBedsideVerify, map[string]any{"bag_code": bag, "wristband_code": "MRN-9"}, two...)
	if !errors.Is(err, custody.ErrConflict) || errors.Is(err, custody.ErrRetry) {
		t.Fatalf("mismatch: %v, want ErrConflict", err)
	}
	var mm *custody.MismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("mismatch: %T %v, want a *MismatchError", err, err)
	}
	c, _ := e.svc.Chain(e.ctx, coi)
	last := c.Records[len(c.Records)-1]
	if mm.Record.Seq != last.Seq || mm.Record.Step != custody.StepMismatch || mm.Record.Hash != last.Hash || len(mm.Reasons) == 0 {
		t.Fatalf("MismatchError names record %d (%s), reasons %q; the chain's newest is %d (%s)", mm.Record.Seq, mm.Record.Step, mm.Reasons, last.Seq, last.Step)
	}
	if !strings.Contains(err.Error(), "MISMATCH, do not infuse") || !strings.HasSuffix(err.Error(), ": conflict") {
		t.Errorf("mismatch text %q", err)
	}
	// A refused step that is not a mismatch is no MismatchError.
	_, err = e.step(coi, "nurse1", custody.StepBedsideVerify, map[string]any{"bag_code": bag, "wristband_code": "MRN-9"}, two...)
	if !errors.Is(err, custody.ErrConflict) || errors.As(err, &mm) {
		t.Fatalf("bedside check over an unacknowledged mismatch: %v, want a plain ErrConflict", err)
	}
}
