package storetest

import (
	"context"
	"errors"
	"slices"
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
	q, err := s.QuarantineList(ctx, 0, 0)
	if err != nil || len(q) != 1 || q[0].Reason != kept.Reason || string(q[0].Payload) != "abc" {
		t.Fatalf("quarantine: %+v %v", q, err)
	}
}
