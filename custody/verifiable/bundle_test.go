package verifiable_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	"golang.org/x/mod/sumdb/tlog"
)

// memLog is a verifiable.Source in memory: real sealed records, their
// stored hashes, and the checkpoints kept.
type memLog struct {
	entries     [][]byte
	hashes      []verifiable.Hash
	checkpoints [][]byte
}

func (m *memLog) TreeSize(context.Context) (int64, error) { return int64(len(m.entries)), nil }

func (m *memLog) ReadHashes(_ context.Context, idx []int64) ([]verifiable.Hash, error) {
	out := make([]verifiable.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("hash %d: %w", x, custody.ErrNotFound)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memLog) ReadEntries(_ context.Context, start, end int64) ([][]byte, error) {
	if start < 0 || end > int64(len(m.entries)) {
		return nil, custody.ErrNotFound
	}
	return m.entries[start:end], nil
}

func (m *memLog) AddCheckpoint(_ context.Context, _ int64, signed []byte) error {
	m.checkpoints = append(m.checkpoints, signed)
	return nil
}

func (m *memLog) LatestCheckpoint(context.Context) ([]byte, error) {
	if len(m.checkpoints) == 0 {
		return nil, custody.ErrNotFound
	}
	return m.checkpoints[len(m.checkpoints)-1], nil
}

// append seals a record of seq len+1 and adds it and its tree hashes.
func (m *memLog) append(t *testing.T) {
	t.Helper()
	seq := uint64(len(m.entries)) + 1
	r := custody.Record{V: custody.EncodingVersion, Seq: seq, Chain: "W1234 26 000001", ChainSeq: seq, Step: "collect",
		Time: t0.Add(time.Duration(seq) * time.Minute), SubmittedBy: "u1", Data: []byte(`{"n":` + fmt.Sprint(seq) + `}`)}
	enc := r.Seal(nil)
	hs, err := tlog.StoredHashes(int64(seq-1), enc, tlog.HashReaderFunc(func(idx []int64) ([]verifiable.Hash, error) {
		return m.ReadHashes(context.Background(), idx)
	}))
	if err != nil {
		t.Fatal(err)
	}
	m.entries = append(m.entries, enc)
	m.hashes = append(m.hashes, hs...)
}

func newMemLog(t *testing.T, n int) (*memLog, *verifiable.Log) {
	t.Helper()
	m := &memLog{}
	for range n {
		m.append(t)
	}
	k, err := verifiable.CreateKeys(t.TempDir(), "coid/test-log", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return m, verifiable.NewLog(m, k, func() time.Time { return t0 }, nil)
}

// TestBundleProvesEveryRecordAtManySizes grows a log record by record; at
// each size a bundle of every record verifies with the verifier key alone
// (tlog.CheckRecord inside), and names the records it proved.
func TestBundleProvesEveryRecordAtManySizes(t *testing.T) {
	ctx := context.Background()
	m, l := newMemLog(t, 0)
	for size := 1; size <= 70; size++ {
		m.append(t)
		var seqs []uint64
		for s := uint64(1); s <= uint64(size); s++ {
			seqs = append(seqs, s)
		}
		b, err := l.Bundle(ctx, seqs)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		data, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		v, err := verifiable.VerifyBundle(data, l.Keys().Verifier())
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if v.Checkpoint.Size != int64(size) || len(v.Records) != size || v.KeyIDs[0] != verifiable.KeyID(l.Keys().Verifier()) {
			t.Fatalf("size %d: verified %+v", size, v.Checkpoint)
		}
		for i, r := range v.Records {
			if !bytes.Equal(r.Canonical, m.entries[i]) || r.Seq != uint64(i+1) {
				t.Fatalf("size %d: record %d: %+v", size, i+1, r)
			}
		}
	}
	// The latest checkpoint covers an earlier record: it is reused, not
	// signed again.
	kept := len(m.checkpoints)
	if _, err := l.Bundle(ctx, []uint64{3}); err != nil || len(m.checkpoints) != kept {
		t.Fatalf("bundle of an old record: %v, %d checkpoints (was %d)", err, len(m.checkpoints), kept)
	}
}

// TestBundleFailsWithAnyFlippedByte flips every byte of a bundle (its
// checkpoint, signature, key IDs, records and proofs, and the JSON around
// them) with two bit patterns: it never verifies.
func TestBundleFailsWithAnyFlippedByte(t *testing.T) {
	m, l := newMemLog(t, 13)
	_ = m
	b, err := l.Bundle(context.Background(), []uint64{2, 7, 13})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := b.Marshal()
	key := l.Keys().Verifier()
	if _, err := verifiable.VerifyBundle(data, key); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		for _, bit := range []byte{0x01, 0x80, 0x20} {
			bad := bytes.Clone(data)
			bad[i] ^= bit
			if _, err := verifiable.VerifyBundle(bad, key); err == nil {
				t.Fatalf("byte %d (%q) ^%#x: verified", i, data[i], bit)
			}
		}
	}
}

// TestBundleFailureNamesTheRecord: a record changed and re-encoded (valid
// base64, valid record) fails as that record, with ErrBadProof; a
// checkpoint signed by another key fails as the checkpoint.
func TestBundleFailureNamesTheRecord(t *testing.T) {
	_, l := newMemLog(t, 9)
	b, err := l.Bundle(context.Background(), []uint64{4, 8})
	if err != nil {
		t.Fatal(err)
	}
	canon, _ := base64.StdEncoding.DecodeString(b.Records[1].Canonical)
	b.Records[1].Canonical = base64.StdEncoding.EncodeToString(bytes.Replace(canon, []byte(`"u1"`), []byte(`"u2"`), 1))
	data, _ := b.Marshal()
	_, err = verifiable.VerifyBundle(data, l.Keys().Verifier())
	var re *verifiable.RecordError
	if !errors.As(err, &re) || re.Seq != 8 || !errors.Is(err, verifiable.ErrBadProof) {
		t.Fatalf("changed record 8: %v", err)
	}
	other, _ := verifiable.CreateKeys(t.TempDir(), "coid/test-log", rand.Reader)
	if _, err := verifiable.VerifyBundle(data, other.Verifier()); !errors.Is(err, verifiable.ErrBadSignature) {
		t.Fatalf("other key: %v", err)
	}
}
