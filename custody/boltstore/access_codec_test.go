package boltstore

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// accessRowV1Bytes is a row as the store wrote it before accessRowV2:
// varint times and pause.
func accessRowV1Bytes(w custody.AccessRow) []byte {
	dst := []byte{accessRowV1}
	for _, s := range []string{string(w.ID), string(w.State), string(w.Urgency), w.Treatment, w.Manufacturing, w.Assignee} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = appendTime(dst, w.Submitted)
	dst = appendTime(dst, w.Decided)
	dst = appendTime(dst, w.WaitingSince)
	return binary.AppendVarint(dst, int64(w.Paused))
}

// TestAccessRowCodec: rows written now (fixed-width times) and rows of
// the earlier varint layout decode to the same row, with or without the
// shared strings of one read; a row whose identifier differs from the
// keys' still gets its own; truncated, padded or unknown-version entries
// are refused.
func TestAccessRowCodec(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 123, time.UTC)
	rows := []custody.AccessRow{
		{ID: "EAA999926000001", State: custody.AccessSubmitted, Urgency: custody.UrgencyEmergency, Treatment: "PAR-1", Manufacturing: "MFG-1", Submitted: t0},
		{ID: "EAA999926000002", State: custody.AccessInfoRequested, Urgency: custody.UrgencyEmergency, Treatment: "PAR-1", Manufacturing: "MFG-1",
			Submitted: t0.Add(time.Hour), WaitingSince: t0.Add(2 * time.Hour), Paused: 90 * time.Minute, Assignee: "qa1"},
		{ID: "EAA999926000003", State: custody.AccessApproved, Urgency: custody.UrgencyStandard, Treatment: "HOSP-2", Manufacturing: "MFG-2",
			Submitted: t0.Add(-48 * time.Hour), Decided: t0, Paused: time.Nanosecond},
	}
	ids := ""
	for _, w := range rows {
		ids += string(w.ID)
	}
	for _, tc := range []struct {
		name   string
		encode func(custody.AccessRow) []byte
		strs   func() *accessStrings
	}{
		{"v2, shared strings", func(w custody.AccessRow) []byte { return encodeAccessRow(&w) }, func() *accessStrings { return &accessStrings{in: interned{}, ids: ids} }},
		{"v2, own strings", func(w custody.AccessRow) []byte { return encodeAccessRow(&w) }, func() *accessStrings { return nil }},
		{"v1, shared strings", accessRowV1Bytes, func() *accessStrings { return &accessStrings{in: interned{}, ids: ids} }},
		{"v1, own strings", accessRowV1Bytes, func() *accessStrings { return nil }},
		{"v2, keys disagree", func(w custody.AccessRow) []byte { return encodeAccessRow(&w) }, func() *accessStrings {
			return &accessStrings{in: interned{}, ids: "EAA999926000009" + ids[15:]}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			strs := tc.strs()
			for _, want := range rows {
				b := tc.encode(want)
				got, err := decodeAccessRow(b, strs)
				if err != nil || !sameAccessRow(got, want) || got.Submitted.Location() != time.UTC {
					t.Fatalf("decoded %+v, %v; want %+v", got, err, want)
				}
				for _, bad := range [][]byte{b[:len(b)-1], append(b[:len(b):len(b)], 0), append([]byte{9}, b[1:]...), nil} {
					if _, err := decodeAccessRow(bad, nil); err == nil {
						t.Errorf("malformed entry %x decoded", bad)
					}
				}
			}
		})
	}
	if b := encodeAccessRow(&rows[0]); b[0] != accessRowV2 {
		t.Errorf("written as version %d", b[0])
	}
}
