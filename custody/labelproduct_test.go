package custody_test

import (
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestLabelContentProductCode: a chain of a registered product gives its
// labels the product's ISBT 128 product code, which their 2-D code then
// carries; a chain enrolled with a free-text product gives none.
func TestLabelContentProductCode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		network bool
		want    string
	}{
		{"registered product", true, "S1234V00"},
		{"free-text product", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var coi custody.COI
			if tc.network {
				registerNetwork(t, e)
				coi = e.enrollNet()
			} else {
				coi = e.enroll()
			}
			e.advance(coi, custody.StateCollected)
			bag := custody.BagID{COI: coi, Kind: custody.BagApheresis, N: 1}
			l, err := e.svc.LabelContent(e.ctx, e.users["nurse1"], bag)
			if err != nil {
				t.Fatal(err)
			}
			if l.ProductCode != tc.want {
				t.Fatalf("product code %q, want %q", l.ProductCode, tc.want)
			}
			p, err := custody.ISBTLabelPayload(bag, l.DIN, l.ProductCode, l.Time)
			if err != nil {
				t.Fatal(err)
			}
			d, err := custody.ParseISBT(p)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && d.ProductCode != tc.want[:6]+"99" || tc.want == "" && d.ProductCode != "" {
				t.Fatalf("payload %q carries product code %q", p, d.ProductCode)
			}
		})
	}
}
