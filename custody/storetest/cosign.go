package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// CosignatureBackend is how RunCosignatures reaches a backend's
// cosignature store.
type CosignatureBackend struct {
	// Open returns a new, empty store; required.
	Open func(t *testing.T) custody.CosignatureStore
	// Reopen closes s and opens the same data again (a restart); nil
	// skips the restart check.
	Reopen func(t *testing.T, s custody.CosignatureStore) custody.CosignatureStore
}

// RunCosignatures runs the conformance checks of the cosignature store:
// kept by size and witness, replaced not repeated, malformed ones refused
// with nothing kept, paged listing, the witnesses' last states, and all
// kept across a restart.
func RunCosignatures(t *testing.T, b CosignatureBackend) {
	ctx := context.Background()
	s := b.Open(t)
	cos := func(size int64, w string) custody.Cosignature {
		return custody.Cosignature{Size: size, Witness: w, Line: "— " + w + " AAAA" + w + "==\n", Time: t0.Add(time.Duration(size) * time.Second)}
	}
	for _, c := range []custody.Cosignature{cos(5, "w.example/a"), cos(5, "w.example/b"), cos(9, "w.example/a"), cos(12, "w.example/b")} {
		if err := s.AddCosignature(ctx, c); err != nil {
			t.Fatalf("AddCosignature(%d, %s): %v", c.Size, c.Witness, err)
		}
	}
	// The same witness again at the same size replaces its cosignature.
	again := cos(5, "w.example/a")
	again.Line, again.Time = "— w.example/a BBBB==\n", t0.Add(time.Hour)
	if err := s.AddCosignature(ctx, again); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []custody.Cosignature{
		{Size: 7, Witness: "w.example/a", Line: "— w.example/b AAAA==\n"},          // another's name
		{Size: 7, Witness: "w.example/a", Line: "— w.example/a AAAA==\n— x y==\n"}, // two lines
		{Size: 7, Witness: "w.example/a", Line: "w.example/a AAAA==\n"},            // no dash
		{Size: 7, Witness: "", Line: "—  AAAA==\n"},
	} {
		if err := s.AddCosignature(ctx, bad); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("AddCosignature(%q) = %v, want ErrInvalid", bad.Line, err)
		}
	}
	// What was last seen of each witness: the last state kept of each.
	states := []custody.WitnessState{
		{Witness: "w.example/b", Cosigned: 12, Outcome: "cosigned", LastSize: 12, LastAttempt: t0},
		{Witness: "w.example/a", Cosigned: 9, Outcome: "cosigned", LastSize: 9, LastAttempt: t0},
		{Witness: "w.example/a", Cosigned: 9, Outcome: "refused", Error: "403", LastSize: 12, LastAttempt: t0.Add(time.Minute)},
	}
	for _, st := range states {
		if err := s.PutWitnessState(ctx, st); err != nil {
			t.Fatalf("PutWitnessState(%+v): %v", st, err)
		}
	}
	if err := s.PutWitnessState(ctx, custody.WitnessState{Cosigned: 3}); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("PutWitnessState without a name = %v, want ErrInvalid", err)
	}
	check := func(s custody.CosignatureStore) {
		t.Helper()
		kept, err := s.WitnessStates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := []custody.WitnessState{states[2], states[0]}; !slices.EqualFunc(kept, want, func(a, b custody.WitnessState) bool {
			return a.Witness == b.Witness && a.Cosigned == b.Cosigned && a.Outcome == b.Outcome && a.Error == b.Error &&
				a.LastSize == b.LastSize && a.LastAttempt.Equal(b.LastAttempt)
		}) {
			t.Errorf("WitnessStates = %+v, want %+v", kept, want)
		}
		got, err := s.Cosignatures(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0] != again || got[1] != cos(5, "w.example/b") {
			t.Errorf("Cosignatures(5) = %+v", got)
		}
		if got, err := s.Cosignatures(ctx, 7); err != nil || len(got) != 0 {
			t.Errorf("Cosignatures(7) = %+v, %v; want none (the bad ones are not kept)", got, err)
		}
		var all []custody.CosignedCheckpoint
		for after := int64(0); ; {
			page, err := s.CosignedCheckpoints(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 2 {
				t.Fatalf("page of %d, asked 2", len(page))
			}
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
			after = page[len(page)-1].Size
		}
		want := []custody.CosignedCheckpoint{{Size: 5, Witnesses: []string{"w.example/a", "w.example/b"}}, {Size: 9, Witnesses: []string{"w.example/a"}}, {Size: 12, Witnesses: []string{"w.example/b"}}}
		if !slices.EqualFunc(all, want, func(a, b custody.CosignedCheckpoint) bool {
			return a.Size == b.Size && slices.Equal(a.Witnesses, b.Witnesses)
		}) {
			t.Errorf("CosignedCheckpoints = %+v, want %+v", all, want)
		}
	}
	check(s)
	for _, limit := range []int{0, custody.MaxCosignedPage + 1} {
		if _, err := s.CosignedCheckpoints(ctx, 0, limit); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("CosignedCheckpoints(limit %d) = %v, want ErrInvalid", limit, err)
		}
	}
	if b.Reopen != nil {
		check(b.Reopen(t, s))
	}
}
