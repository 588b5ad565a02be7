package boltstore

import (
	"encoding/binary"
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

// TestChainEntrySites: version 2 keeps the chain's site names; a version 1
// entry, written before sites were kept, still decodes, with no sites (the
// service folds such a chain to learn them).
func TestChainEntrySites(t *testing.T) {
	ce := &chainEntry{ChainInfo: custody.ChainInfo{COI: storetest.COI(8), Product: "CAR-T", State: custody.StateEnrolled, Records: 1,
		HeadSeq: 4, Sites: custody.Sites{Collection: "COL-1", Manufacturing: "MFG-1", Treatment: "TRT-1"}, Created: t0, Updated: t0},
		Seqs: []uint64{4}}
	got, err := decodeChain(encodeChain(nil, ce))
	if err != nil || got.Sites != ce.Sites {
		t.Fatalf("v2 round trip: %+v, %v", got, err)
	}
	// The version 1 encoding: no site names after the state.
	v1 := []byte{chainEntryV1}
	for _, s := range []string{string(ce.COI), ce.Product, string(ce.State)} {
		v1 = binary.AppendUvarint(v1, uint64(len(s)))
		v1 = append(v1, s...)
	}
	v1 = binary.AppendUvarint(v1, ce.Records)
	v1 = binary.AppendUvarint(v1, ce.HeadSeq)
	v1 = append(v1, ce.HeadHash[:]...)
	v1 = binary.AppendVarint(v1, t0.UnixNano())
	v1 = binary.AppendVarint(v1, t0.UnixNano())
	v1 = binary.AppendUvarint(v1, 1)
	v1 = binary.AppendUvarint(v1, 4)
	got, err = decodeChain(v1)
	if err != nil || got.Sites != (custody.Sites{}) || got.COI != ce.COI || got.Records != 1 || got.Seqs[0] != 4 {
		t.Fatalf("v1 entry: %+v, %v", got, err)
	}
}
