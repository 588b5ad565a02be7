package custody_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

func linkDraft(t *testing.T, newChain bool, expect uint64) custody.Draft {
	t.Helper()
	coi, err := custody.NewCOI("A9999", 2026, 7)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	step := custody.StepNote
	if newChain {
		step = custody.StepEnroll
	}
	return custody.Draft{Record: custody.Record{V: custody.EncodingVersion, Chain: coi, Step: step, Time: at, SubmittedBy: "nurse1",
		Data: []byte(`{"text":"checked"}`)}, NewChain: newChain, ExpectRecords: expect, State: custody.StateEnrolled, Product: "CAR-T"}
}

// TestLinkRefusals: the optimistic chain check is Link's, with the
// sentinels the store contract documents, and a refusal links nothing.
func TestLinkRefusals(t *testing.T) {
	existing := &custody.ChainInfo{Records: 3}
	for _, tc := range []struct {
		name  string
		heads custody.LinkHeads
		d     custody.Draft
		want  error
	}{
		{"enroll of an existing chain", custody.LinkHeads{Chain: existing}, linkDraft(t, true, 0), custody.ErrConflict},
		{"append to no chain", custody.LinkHeads{}, linkDraft(t, false, 3), custody.ErrNotFound},
		{"stale draft", custody.LinkHeads{Chain: existing}, linkDraft(t, false, 2), custody.ErrRetry},
		{"draft from the future", custody.LinkHeads{Chain: existing}, linkDraft(t, false, 4), custody.ErrRetry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, ci, err := custody.Link(tc.heads, tc.d)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if rec.Seq != 0 || ci.Records != 0 {
				t.Fatalf("refused draft linked: %+v %+v", rec, ci)
			}
		})
	}
}

// TestLinkLinksAndHashes: an enroll starts its chain after the log's head;
// the next record links to both heads; the encoding LinkPresealed appends
// is the record's canonical one, and its hash the record's.
func TestLinkLinksAndHashes(t *testing.T) {
	logHash := custody.Hash{1, 2, 3}
	enroll := linkDraft(t, true, 0)
	rec, ci, err := custody.Link(custody.LinkHeads{LogSeq: 41, LogHash: logHash}, enroll)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Seq != 42 || rec.Prev != logHash || rec.ChainSeq != 1 || rec.ChainPrev != (custody.Hash{}) {
		t.Fatalf("enroll links: %+v", rec)
	}
	if rec.Hash != rec.ComputeHash() {
		t.Fatal("enroll hash is not the record's")
	}
	want := custody.ChainInfo{COI: rec.Chain, Product: "CAR-T", State: custody.StateEnrolled, Records: 1, HeadSeq: 42,
		HeadHash: rec.Hash, Created: rec.Time, Updated: rec.Time}
	if ci != want {
		t.Fatalf("chain after enroll = %+v, want %+v", ci, want)
	}

	next := linkDraft(t, false, 1)
	next.Record.Time = next.Record.Time.Add(time.Hour)
	next.State = custody.StateCollected
	prefix := []byte("prefix")
	rec2, ci2, enc, err := custody.LinkPresealed(custody.LinkHeads{LogSeq: 42, LogHash: rec.Hash, Chain: &ci}, next,
		next.Record.Preseal(), bytes.Clone(prefix))
	if err != nil {
		t.Fatal(err)
	}
	if rec2.Seq != 43 || rec2.Prev != rec.Hash || rec2.ChainSeq != 2 || rec2.ChainPrev != rec.Hash {
		t.Fatalf("next links: %+v", rec2)
	}
	if !bytes.HasPrefix(enc, prefix) || !bytes.Equal(enc[len(prefix):], rec2.Canonical(nil)) || rec2.Hash != rec2.ComputeHash() {
		t.Fatalf("encoding %q is not the record's canonical one", enc)
	}
	if ci2.Records != 2 || ci2.HeadSeq != 43 || ci2.HeadHash != rec2.Hash || ci2.State != custody.StateCollected ||
		!ci2.Created.Equal(rec.Time) || !ci2.Updated.Equal(rec2.Time) || ci2.Product != "CAR-T" {
		t.Fatalf("chain after next = %+v", ci2)
	}
	if ci.Records != 1 {
		t.Fatal("Link changed the heads it was given")
	}
}
