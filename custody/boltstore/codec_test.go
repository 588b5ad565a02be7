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

// TestChainEntryOpenIssues: version 3 keeps the open issue counts, kept or
// not; a version 2 entry, written before they were kept, still decodes,
// with the counts not kept (the service folds such a chain to learn them).
func TestChainEntryOpenIssues(t *testing.T) {
	sites := custody.Sites{Collection: "COL-1", Manufacturing: "MFG-1", Treatment: "TRT-1"}
	for _, n := range []custody.IssueCounts{{}, {Kept: true}, {Kept: true, Excursions: 2, SealsBroken: 1, Mismatches: 3}} {
		ce := &chainEntry{ChainInfo: custody.ChainInfo{COI: storetest.COI(9), Product: "CAR-T", State: custody.StateEnrolled, Records: 1,
			HeadSeq: 4, Sites: sites, Created: t0, Updated: t0, OpenIssues: n}, Seqs: []uint64{4}}
		b := encodeChain(nil, ce)
		got, err := decodeChain(b)
		if err != nil || got.OpenIssues != n || got.Sites != sites || got.Seqs[0] != 4 {
			t.Fatalf("v3 round trip of %+v: %+v, %v", n, got, err)
		}
		for i := range len(b) {
			if _, err := decodeChain(b[:i]); err == nil {
				t.Fatalf("%+v truncated to %d bytes decoded", n, i)
			}
		}
	}
	// The version 2 encoding: no counts after the sites.
	v2 := []byte{chainEntryV2}
	for _, s := range []string{string(storetest.COI(9)), "CAR-T", string(custody.StateEnrolled), sites.Collection, sites.Manufacturing, sites.Treatment} {
		v2 = binary.AppendUvarint(v2, uint64(len(s)))
		v2 = append(v2, s...)
	}
	v2 = binary.AppendUvarint(v2, 1)
	v2 = binary.AppendUvarint(v2, 4)
	v2 = append(v2, make([]byte, custody.HashSize)...)
	v2 = binary.AppendVarint(v2, t0.UnixNano())
	v2 = binary.AppendVarint(v2, t0.UnixNano())
	v2 = binary.AppendUvarint(v2, 1)
	v2 = binary.AppendUvarint(v2, 4)
	got, err := decodeChain(v2)
	if err != nil || got.OpenIssues.Kept || got.Sites != sites || got.Records != 1 || got.Seqs[0] != 4 {
		t.Fatalf("v2 entry: %+v, %v", got, err)
	}
	// A counts marker other than 0 or 1 is refused.
	bad := encodeChain(nil, &chainEntry{ChainInfo: custody.ChainInfo{COI: storetest.COI(9), Records: 1, HeadSeq: 4}, Seqs: []uint64{4}})
	i := 1
	for range 6 { // skip the six strings, all empty but the COI
		l, n := binary.Uvarint(bad[i:])
		i += n + int(l)
	}
	bad[i] = 2
	if _, err := decodeChain(bad); err == nil {
		t.Fatal("counts marker 2 decoded")
	}
}
