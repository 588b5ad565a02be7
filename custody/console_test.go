package custody_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
)

// oldSummaries is the store as it reads after an upgrade: its chain
// summaries were stored before they kept open issue counts. It counts the
// chains read in full (folded).
type oldSummaries struct {
	*boltstore.Store
	old   bool
	reads atomic.Int64
}

func (o *oldSummaries) forget(ci custody.ChainInfo) custody.ChainInfo {
	if o.old {
		ci.OpenIssues = custody.IssueCounts{}
	}
	return ci
}

func (o *oldSummaries) Chain(ctx context.Context, coi custody.COI) (custody.ChainInfo, error) {
	ci, err := o.Store.Chain(ctx, coi)
	return o.forget(ci), err
}

func (o *oldSummaries) Chains(ctx context.Context, st custody.State) ([]custody.ChainInfo, error) {
	list, err := o.Store.Chains(ctx, st)
	for i := range list {
		list[i] = o.forget(list[i])
	}
	return list, err
}

func (o *oldSummaries) ChainsAfter(ctx context.Context, st custody.State, after custody.COI, limit int) ([]custody.ChainInfo, error) {
	list, err := o.Store.ChainsAfter(ctx, st, after, limit)
	for i := range list {
		list[i] = o.forget(list[i])
	}
	return list, err
}

// TerminalIssueChainsAfter lists, for a file whose summaries keep no
// counts, every chain in a terminal state, as such a file's index would.
func (o *oldSummaries) TerminalIssueChainsAfter(ctx context.Context, after custody.COI, limit int) ([]custody.ChainInfo, error) {
	if !o.old {
		return o.Store.TerminalIssueChainsAfter(ctx, after, limit)
	}
	var out []custody.ChainInfo
	for _, st := range []custody.State{custody.StateInfused, custody.StateCancelled} {
		list, err := o.Chains(ctx, st)
		if err != nil {
			return nil, err
		}
		for _, ci := range list {
			if ci.COI > after {
				out = append(out, ci)
			}
		}
	}
	slices.SortFunc(out, func(a, b custody.ChainInfo) int { return strings.Compare(string(a.COI), string(b.COI)) })
	return out[:min(limit, len(out))], nil
}

func (o *oldSummaries) Records(ctx context.Context, coi custody.COI) ([]custody.Record, error) {
	o.reads.Add(1)
	return o.Store.Records(ctx, coi)
}

// TestConsoleFor: the console counts chains by state, lists every chain
// with open issues whatever the page, and pages the chains in flight,
// most recently updated first, each once; it folds only the chains with
// open issues, and every chain when the summaries are from before they
// kept the counts, with the same answer.
func TestConsoleFor(t *testing.T) {
	e := newTeleEnv(t)
	a := e.enroll()
	e.advance(a, custody.StateToManufacturing)
	c, _ := e.svc.Chain(e.ctx, a)
	start := c.Legs[0].ShippedAt.Add(10 * time.Minute)
	if _, added, err := e.svc.RecordExcursion(e.ctx, a, 1, custody.Excursion{ID: custody.ExcursionID(custody.ExcursionTemperature, start),
		Kind: custody.ExcursionTemperature, Start: start, Duration: 5 * time.Minute}); err != nil || !added {
		t.Fatalf("excursion: %v %v", added, err)
	}
	var others []custody.COI
	for range 6 {
		others = append(others, e.enroll())
	}
	e.advance(others[0], custody.StateCollected)
	e.must(others[5], "coord", custody.StepCancel, map[string]any{"reason": "patient withdrew consent"}, sig("coord", custody.MeaningApproved))

	for _, old := range []bool{false, true} {
		st := &oldSummaries{Store: e.store, old: old}
		svc, err := custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Now: e.clock, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles()))})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[custody.COI]int{}
		var prev custody.ConsoleRow
		after, pages := "", 0
		for {
			v, err := svc.ConsoleFor(e.ctx, e.users["qa1"], "", after, 2)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if v.InFlight != 6 || v.Listed != 6 || v.Counts[custody.StateCancelled] != 1 || v.Counts[custody.StateEnrolled] != 4 ||
				v.Counts[custody.StateToManufacturing] != 1 || v.Counts[custody.StateCollected] != 1 {
				t.Fatalf("old %v page %d: in flight %d, listed %d, counts %v", old, pages, v.InFlight, v.Listed, v.Counts)
			}
			if len(v.Issues) != 1 || v.Issues[0].COI != a || len(v.Issues[0].OpenIssues()) != 1 {
				t.Fatalf("old %v page %d: chains with open issues %v, want %s on every page", old, pages, v.Issues, a)
			}
			if len(v.Chains) > 2 {
				t.Fatalf("page of %d", len(v.Chains))
			}
			for _, r := range v.Chains {
				seen[r.COI]++
				if prev.COI != "" && r.Updated.After(prev.Updated) {
					t.Errorf("old %v: %s (updated %s) after %s (updated %s)", old, r.COI, r.Updated, prev.COI, prev.Updated)
				}
				if want := map[bool]int{true: 1}[r.COI == a]; r.OpenIssues != want {
					t.Errorf("old %v: %s has %d open issue(s) in the table, want %d", old, r.COI, r.OpenIssues, want)
				}
				prev = r
			}
			if after = v.Next; after == "" {
				break
			}
		}
		if pages != 3 || len(seen) != 6 || seen[others[5]] != 0 {
			t.Fatalf("old %v: %d pages, chains listed %v", old, pages, seen)
		}
		for coi, n := range seen {
			if n != 1 {
				t.Errorf("old %v: %s listed %d times", old, coi, n)
			}
		}
		// Folded chains are cached: each is read in full once.
		want := int64(1) // the chain with an open issue
		if old {
			want = 7 // every chain
		}
		if got := st.reads.Load(); got != want {
			t.Errorf("old %v: %d chains read in full, want %d", old, got, want)
		}
		v, err := svc.ConsoleFor(e.ctx, e.users["qa1"], custody.StateCancelled, "", 50)
		if err != nil || len(v.Chains) != 1 || v.Chains[0].COI != others[5] || v.Next != "" {
			t.Fatalf("old %v: cancelled chains %+v, %v", old, v.Chains, err)
		}
	}

	for _, tc := range []struct {
		name  string
		user  string
		state custody.State
		after string
		limit int
		want  error
	}{
		{"a nurse", "nurse1", "", "", 50, custody.ErrForbidden},
		{"limit 0", "qa1", "", "", 0, custody.ErrInvalid},
		{"limit too big", "qa1", "", "", custody.MaxConsolePage + 1, custody.ErrInvalid},
		{"unknown state", "qa1", "lost", "", 50, custody.ErrInvalid},
		{"a cursor the console never gave", "qa1", "", "CHA999926000001", 50, custody.ErrInvalid},
	} {
		if _, err := e.svc.ConsoleFor(e.ctx, e.users[tc.user], tc.state, tc.after, tc.limit); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
