package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/coid-project/coid/custody"
)

// testReadingLog checks custody.ReadingLog: each committed batch's new
// readings listed once, after the cursor, in watermark order, whole
// batches per page; duplicates and refused batches not listed; no gap or
// repeat while batches are committed between pages.
func testReadingLog(t *testing.T, s Store) {
	ctx := context.Background()
	if p, err := s.ReadingsSince(ctx, 0, 0); err != nil || len(p.Readings) != 0 || p.Through != 0 || p.More || p.Incomplete {
		t.Fatalf("empty store: %+v %v", p, err)
	}
	add := func(rs ...custody.Reading) custody.IngestResult {
		t.Helper()
		res, err := s.AddReadings(ctx, rs)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	b1 := add(reading("SHP-A", 1), reading("SHP-A", 2), reading("SHP-B", 1))
	b2 := add(reading("SHP-A", 2), reading("SHP-C", 7), reading("SHP-A", 3)) // one duplicate
	if dup := add(reading("SHP-A", 1)); dup.Watermark != b2.Watermark {
		t.Fatalf("a batch of duplicates moved the watermark to %d from %d", dup.Watermark, b2.Watermark)
	}
	if _, err := s.AddReadings(ctx, []custody.Reading{reading("SHP-D", 1), changedCopy(reading("SHP-A", 3))}); !errors.Is(err, custody.ErrReadingConflict) {
		t.Fatalf("conflicting batch: %v", err)
	}
	want1 := []custody.Reading{reading("SHP-A", 1), reading("SHP-A", 2), reading("SHP-B", 1)}
	want2 := []custody.Reading{reading("SHP-A", 3), reading("SHP-C", 7)}

	p, err := s.ReadingsSince(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameReadings(t, "all since 0", p.Readings, append(slices.Clone(want1), want2...))
	if p.Through != b2.Watermark || p.More || p.Incomplete {
		t.Fatalf("all since 0: through %d more %v incomplete %v, want through %d", p.Through, p.More, p.Incomplete, b2.Watermark)
	}
	for _, r := range p.Readings {
		if !r.ReceivedTime.Equal(reading(r.Shipper, int(r.Seq)).ReceivedTime) {
			t.Fatalf("reading %s/%d received %s", r.Shipper, r.Seq, r.ReceivedTime)
		}
	}

	// Pages of one reading hold whole batches.
	p, err = s.ReadingsSince(ctx, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	sameReadings(t, "first page", p.Readings, want1)
	if p.Through != b1.Watermark || !p.More {
		t.Fatalf("first page: through %d more %v, want through %d and more", p.Through, p.More, b1.Watermark)
	}
	// A batch committed between pages comes after the others, once.
	b3 := add(reading("SHP-B", 2), reading("SHP-A", 4))
	var rest []custody.Reading
	for cursor, pages := p.Through, 0; ; pages++ {
		q, err := s.ReadingsSince(ctx, cursor, 1)
		if err != nil {
			t.Fatal(err)
		}
		if pages > 5 || q.Through < cursor {
			t.Fatalf("paging does not end: cursor %d, page %+v", cursor, q)
		}
		rest = append(rest, q.Readings...)
		cursor = q.Through
		if !q.More {
			if cursor != b3.Watermark {
				t.Fatalf("last page through %d, want %d", cursor, b3.Watermark)
			}
			break
		}
	}
	sameReadings(t, "pages after the first", rest, append(slices.Clone(want2), reading("SHP-A", 4), reading("SHP-B", 2)))
	if q, err := s.ReadingsSince(ctx, b3.Watermark, 0); err != nil || len(q.Readings) != 0 || q.Through != b3.Watermark || q.More {
		t.Fatalf("nothing new: %+v %v", q, err)
	}
}

// sameReadings fails unless got and want hold the same readings, in any
// order.
func sameReadings(t *testing.T, what string, got, want []custody.Reading) {
	t.Helper()
	canon := func(rs []custody.Reading) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = string(r.AppendCanonical(nil))
		}
		slices.Sort(out)
		return out
	}
	if g, w := canon(got), canon(want); !slices.Equal(g, w) {
		t.Fatalf("%s: readings\n%q\nwant\n%q", what, g, w)
	}
}
