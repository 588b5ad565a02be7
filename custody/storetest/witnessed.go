package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// WitnessedStore is a store that keeps signed checkpoints and the
// witnesses' cosignatures of them and finds the latest checkpoint a quorum
// of witnesses cosigned.
type WitnessedStore interface {
	custody.CosignatureStore
	// AddCheckpoint keeps a signed checkpoint of size records.
	AddCheckpoint(ctx context.Context, size int64, signed []byte) error
	// LatestWitnessed returns the last checkpoint kept, of min records or
	// more, that quorum of witnesses cosigned, with their cosignatures.
	LatestWitnessed(ctx context.Context, min int64, witnesses []string, quorum int) ([]byte, []custody.Cosignature, error)
}

// RunLatestWitnessed checks LatestWitnessed: the last checkpoint kept, of at least the size
// asked, that a quorum of the witnesses named cosigned (others' do not
// count), with their cosignatures; none is ErrNotFound.
func RunLatestWitnessed(t *testing.T, open func(t *testing.T) WitnessedStore) {
	ctx := context.Background()
	s := open(t)
	for _, cp := range []struct {
		size int64
		note string
	}{{3, "a"}, {5, "b1"}, {5, "b2"}, {8, "c"}, {10, "d"}} {
		if err := s.AddCheckpoint(ctx, cp.size, []byte(cp.note)); err != nil {
			t.Fatal(err)
		}
	}
	for size, ws := range map[int64][]string{3: {"w1", "w2"}, 5: {"w1", "w2"}, 8: {"w1"}, 10: {"w2", "x"}} {
		for _, w := range ws {
			if err := s.AddCosignature(ctx, custody.Cosignature{Size: size, Witness: w, Line: "— " + w + " AAAA==\n", Time: time.Unix(size, 0)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		min      int64
		names    []string
		quorum   int
		note     string // "" none
		cosigned string
		err      error
	}{
		{1, []string{"w1", "w2"}, 2, "b2", "w1 w2", nil},
		{5, []string{"w1", "w2"}, 2, "b2", "w1 w2", nil},
		{6, []string{"w1", "w2"}, 2, "", "", custody.ErrNotFound},
		{6, []string{"w1", "w2"}, 1, "d", "w2", nil},
		{9, []string{"w1"}, 1, "", "", custody.ErrNotFound},
		{1, []string{"w1"}, 1, "c", "w1", nil},
		{1, []string{"x", "w2"}, 2, "d", "w2 x", nil},
		{11, []string{"w1", "w2"}, 1, "", "", custody.ErrNotFound},
		{1, []string{"w1"}, 0, "", "", custody.ErrInvalid},
	} {
		t.Run(fmt.Sprint(c.min, c.names, c.quorum), func(t *testing.T) {
			signed, cos, err := s.LatestWitnessed(ctx, c.min, c.names, c.quorum)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err %v, want %v", err, c.err)
				}
				return
			}
			var names []string
			for _, cs := range cos {
				names = append(names, cs.Witness)
			}
			if err != nil || string(signed) != c.note || strings.Join(names, " ") != c.cosigned {
				t.Fatalf("got %q by %v (%v), want %q by %s", signed, names, err, c.note, c.cosigned)
			}
		})
	}
}
