package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// hangBound only catches a hang: nothing in the suite is timed.
const hangBound = 30 * time.Second

// testReadingSinkOnce: concurrent, overlapping deliveries through the
// asynchronous sink store each reading once and answer each caller once;
// a quarantined payload is kept with its batch, and not when its batch is
// refused.
func testReadingSinkOnce(t *testing.T, s Store) {
	ctx := context.Background()
	var want []custody.Reading
	for i := range 30 {
		want = append(want, reading("SHP-C", i))
	}
	type answer struct {
		caller int
		res    custody.IngestResult
		err    error
	}
	const callers = 8
	answers := make(chan answer, 4*callers)
	submit := func(caller int, rs []custody.Reading, q *custody.QuarantineEntry) {
		t.Helper()
		if err := s.AddReadingsAsync(rs, q, func(res custody.IngestResult, err error) { answers <- answer{caller, res, err} }); err != nil {
			t.Fatalf("caller %d: %v", caller, err)
		}
	}
	delivered := 0
	for c := range callers {
		// Overlapping windows, each with half of it twice.
		batch := append(slices.Clone(want[2*c:2*c+10]), want[2*c:2*c+5]...)
		delivered += len(batch)
		submit(c, batch, nil)
	}
	kept := &custody.QuarantineEntry{Topic: "shippers/SHP-C/telemetry", Received: t0, Reason: "kept with its readings", Size: 3, Payload: []byte("abc")}
	submit(callers, want[20:], kept)
	delivered += len(want[20:])
	// Queued last: its changed reading conflicts with one stored (or
	// taken earlier in the same commit), so nothing of it is written.
	dropped := &custody.QuarantineEntry{Topic: "shippers/SHP-C/telemetry", Received: t0, Reason: "must not be written", Size: 3, Payload: []byte("xyz")}
	submit(callers+1, []custody.Reading{reading("SHP-C", 100), changedCopy(want[0])}, dropped)

	stored, dups := 0, 0
	seen := map[int]bool{}
	timeout := time.After(hangBound)
	for range callers + 2 {
		var a answer
		select {
		case a = <-answers:
		case <-timeout:
			t.Fatal("sink callers not answered")
		}
		if seen[a.caller] {
			t.Fatalf("caller %d answered twice", a.caller)
		}
		seen[a.caller] = true
		if a.caller == callers+1 {
			if !errors.Is(a.err, custody.ErrReadingConflict) {
				t.Fatalf("conflicting batch: %v, want ErrReadingConflict", a.err)
			}
			continue
		}
		if a.err != nil {
			t.Fatalf("caller %d: %v", a.caller, a.err)
		}
		stored, dups = stored+a.res.Stored, dups+a.res.Duplicates
	}
	if stored != len(want) || dups != delivered-len(want) {
		t.Fatalf("stored %d (want %d), duplicates %d (want %d)", stored, len(want), dups, delivered-len(want))
	}
	// A later commit is answered after every earlier one: no caller was
	// answered again meanwhile.
	if _, err := s.AddReadings(ctx, want[:1]); err != nil {
		t.Fatal(err)
	}
	if len(answers) != 0 {
		t.Fatalf("%d more answers", len(answers))
	}
	got, _, err := s.ShipperReadings(ctx, "SHP-C", time.Time{}, time.Time{}, 0)
	if err != nil || len(got) != len(want) {
		t.Fatalf("ShipperReadings: %d readings (want %d), %v", len(got), len(want), err)
	}
	for i, r := range got {
		if string(r.AppendCanonical(nil)) != string(want[i].AppendCanonical(nil)) {
			t.Fatalf("reading %d: %s", i, r.AppendCanonical(nil))
		}
	}
	q, err := s.QuarantineList(ctx, 0)
	if err != nil || len(q) != 1 || q[0].Reason != kept.Reason || string(q[0].Payload) != "abc" {
		t.Fatalf("quarantine: %+v %v", q, err)
	}
}

// testCrash: a crash while appends are in flight loses nothing that was
// acknowledged, leaves a store that verifies, and appends go on after its
// head.
func testCrash(t *testing.T, b Backend, s Store) {
	if b.Crash == nil {
		t.Skip("the backend cannot simulate a crash (Backend.Crash)")
	}
	ctx := context.Background()
	const chains, before = 8, 3
	var mu sync.Mutex
	acked := map[uint64]custody.Hash{}
	for c := 1; c <= chains; c++ {
		for k := range before {
			r := mustAppend(t, s, Draft(COI(c), c*1000+k, k == 0, uint64(k)))
			acked[r.Seq] = r.Hash
		}
	}
	var rs []custody.Reading
	for i := range 10 {
		rs = append(rs, reading("SHP-K", i))
	}
	if res, err := s.AddReadings(ctx, rs); err != nil || res.Stored != len(rs) {
		t.Fatalf("readings: %+v %v", res, err)
	}
	// Writers go on appending while the crash happens.
	stop := make(chan struct{})
	progress := make(chan struct{}, 1)
	var wg sync.WaitGroup
	for c := 1; c <= chains; c++ {
		wg.Go(func() {
			for k := before; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := s.Append(ctx, Draft(COI(c), c*1000+k, false, uint64(k)))
				if err != nil {
					t.Errorf("chain %d append %d: %v", c, k, err)
					return
				}
				mu.Lock()
				acked[r.Seq] = r.Hash
				if len(acked) >= chains*(before+2) {
					select {
					case progress <- struct{}{}:
					default:
					}
				}
				mu.Unlock()
			}
		})
	}
	select {
	case <-progress:
	case <-time.After(hangBound):
		t.Fatal("appends made no progress")
	}
	mu.Lock()
	pre := make(map[uint64]custody.Hash, len(acked))
	for seq, h := range acked {
		pre[seq] = h
	}
	mu.Unlock()
	c2 := b.Crash(t, s) // every record in pre was acknowledged before
	close(stop)
	wg.Wait()

	var last uint64
	for seq, h := range pre {
		r, err := c2.Record(ctx, seq)
		if err != nil || r.Hash != h {
			t.Fatalf("record %d acknowledged before the crash: %v (hash %s, acknowledged %s)", seq, err, r.Hash, h)
		}
		last = max(last, seq)
	}
	verifyAll(t, c2)
	hs, hh := head(t, c2)
	if hs < last {
		t.Fatalf("head %d after the crash, before records acknowledged up to %d", hs, last)
	}
	again, err := c2.AddReadings(ctx, rs)
	if err != nil || again.Stored != 0 || again.Duplicates != len(rs) {
		t.Fatalf("readings redelivered after the crash: %+v %v", again, err)
	}
	for c := 1; c <= chains; c++ {
		ci, err := c2.Chain(ctx, COI(c))
		if err != nil {
			t.Fatal(err)
		}
		r := mustAppend(t, c2, Draft(COI(c), c*1000+900, false, ci.Records))
		if r.Seq != hs+1 || r.Prev != hh || r.ChainSeq != ci.Records+1 || r.ChainPrev != ci.HeadHash {
			t.Fatalf("append after the crash: %+v, after head %d and chain %+v", r, hs, ci)
		}
		hs, hh = r.Seq, r.Hash
	}
	verifyAll(t, c2)
}
