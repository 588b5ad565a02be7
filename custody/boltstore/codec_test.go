package boltstore

import (
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/storetest"
)

// TestChainEntryRoundTripAndTruncation: an encoded chain entry decodes to
// itself, and every truncation or trailing byte is refused.
func TestChainEntryRoundTripAndTruncation(t *testing.T) {
	ce := &chainEntry{ChainInfo: custody.ChainInfo{COI: storetest.COI(7), Product: "CAR-T", State: custody.StateCollected, Records: 3,
		HeadSeq: 900, Created: t0, Updated: t0.Add(time.Hour)}, Seqs: []uint64{5, 77, 900}}
	ce.HeadHash[0], ce.HeadHash[31] = 1, 2
	b := encodeChain(nil, ce)
	got, err := decodeChain(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.COI != ce.COI || got.Product != ce.Product || got.State != ce.State || got.Records != 3 || got.HeadSeq != 900 ||
		got.HeadHash != ce.HeadHash || !got.Created.Equal(t0) || !got.Updated.Equal(ce.Updated) || len(got.Seqs) != 3 || got.Seqs[1] != 77 {
		t.Fatalf("round trip: %+v", got)
	}
	for n := range len(b) {
		if _, err := decodeChain(b[:n]); err == nil {
			t.Fatalf("truncated to %d bytes decoded", n)
		}
	}
	if _, err := decodeChain(append(b, 0)); err == nil {
		t.Fatal("trailing byte decoded")
	}
}
