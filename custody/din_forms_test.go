package custody_test

import (
	"errors"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestCollectDINForms: a DIN typed in its display form, or scanned as Data
// Structure 001, is stored as its 13 characters; a wrong K or wrong check
// flags write nothing.
func TestCollectDINForms(t *testing.T) {
	k := string(custody.DIN("A999926123456").K())
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"A9999 26 123456", true},
		{"A9999 26 123456 00 " + k, true},
		{"=A99992612345600", true},
		{"=" + "A999926123456" + custody.DINCheckFlags("A999926123456"), true},
		{"A9999 26 123456 " + string(custody.DIN("A999926123457").K()), false},
		{"=A99992612345699", true}, // 97-99 reserved, not a check
		{"=A9999261234566" + string("0123456789"[(int(custody.DINCheckFlags("A999926123456")[1]-'0')+1)%10]), false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			e := newEnv(t)
			coi := e.enroll()
			collect := journey(coi)[0]
			data := map[string]any{}
			for k, v := range collect.data.(map[string]any) {
				data[k] = v
			}
			data["din"] = tt.in
			before := e.records()
			_, err := e.step(coi, "nurse1", custody.StepCollect, data, collect.sigs...)
			if !tt.ok {
				if !errors.Is(err, custody.ErrInvalid) || e.records() != before {
					t.Fatalf("err = %v (records %d -> %d), want ErrInvalid and nothing written", err, before, e.records())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c, err := e.svc.Chain(e.ctx, coi)
			if err != nil {
				t.Fatal(err)
			}
			if c.DIN != "A999926123456" {
				t.Fatalf("stored DIN %q, want A999926123456", c.DIN)
			}
		})
	}
}
