package pgstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
)

// TestImportRefusesBadRecords: an export whose records do not check (a
// record changed after it was hashed, a record missing, a head that is not
// the last record's) is refused whole, leaving the target empty.
func TestImportRefusesBadRecords(t *testing.T) {
	ctx := context.Background()
	src, err := pgstore.Open(ctx, pgtest.Schema(t), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var recs []custody.LogEntry
	for i := 1; i <= 3; i++ {
		r, err := src.Append(ctx, storetest.Draft(storetest.COI(1), i, i == 1, uint64(i-1)))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, custody.LogEntry{Key: r.Seq, Hash: r.Hash, Body: r.Seal(nil)})
	}
	ci, err := src.Chain(ctx, storetest.COI(1))
	if err != nil {
		t.Fatal(err)
	}
	export := func(entries []custody.LogEntry, head custody.Hash) *custody.Export {
		return &custody.Export{HeadSeq: 3, HeadHash: head, Chains: []custody.ChainInfo{ci},
			Records: func(fn func(custody.LogEntry) error) error {
				for _, e := range entries {
					if err := fn(e); err != nil {
						return err
					}
				}
				return nil
			}}
	}
	tampered := append([]custody.LogEntry{}, recs...)
	tampered[1].Body = append([]byte{}, recs[1].Body...)
	tampered[1].Body[len(tampered[1].Body)-3] ^= 1
	tests := []struct {
		name string
		e    *custody.Export
	}{
		{"a record changed", export(tampered, recs[2].Hash)},
		{"a record missing", export([]custody.LogEntry{recs[0], recs[2]}, recs[2].Hash)},
		{"the head not the last record's", export(recs, recs[1].Hash)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst, err := pgstore.Open(ctx, pgtest.Schema(t), pgstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			if _, err := dst.Import(ctx, tt.e, 0, nil); !errors.Is(err, custody.ErrChainBroken) {
				t.Fatalf("import: %v; want ErrChainBroken", err)
			}
			if err := dst.Empty(ctx); err != nil {
				t.Errorf("the refused import wrote: %v", err)
			}
		})
	}
	dst, err := pgstore.Open(ctx, pgtest.Schema(t), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := dst.Import(ctx, export(recs, recs[2].Hash), 0, nil); err != nil {
		t.Fatalf("the sound export: %v", err)
	}
	if err := dst.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Import(ctx, export(recs, recs[2].Hash), 0, nil); !errors.Is(err, pgstore.ErrNotEmpty) {
		t.Fatalf("again: %v; want ErrNotEmpty", err)
	}
}
