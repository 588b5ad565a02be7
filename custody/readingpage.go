package custody

import (
	"context"
	"fmt"
	"time"
)

// DefaultReadingPage is the size of a page of a leg's or a shipper's
// readings when none is asked (a 3-day leg of minute readings, 4,320,
// fits in one); MaxReadingPage is the most one page asks for.
const (
	DefaultReadingPage = 5000
	MaxReadingPage     = 50000
)

// ReadingPage is one page of a leg's or a shipper's readings, in
// CompareReadings order.
type ReadingPage struct {
	// Readings are the page's readings: at least the limit asked when
	// Next is set, more only by readings sharing the last one's instant.
	Readings []Reading
	// Next is the device time to pass as after for the following page
	// (the last reading's); zero on the last page. A page that ends
	// exactly at the last reading also gives one, and the page after it
	// is empty.
	Next time.Time
}

// readingPage reads one page of the shipper's readings in [from, to]
// (zero bounds are open) with device time after after (zero: from the
// first).
func (s *Service) readingPage(ctx context.Context, shipper string, from, to, after time.Time, limit int) (ReadingPage, error) {
	if limit < 1 || limit > MaxReadingPage {
		return ReadingPage{}, fmt.Errorf("limit %d must be 1-%d: %w", limit, MaxReadingPage, ErrInvalid)
	}
	if !after.IsZero() && !after.Before(from) {
		from = after.Add(time.Nanosecond)
	}
	if !to.IsZero() && to.Before(from) {
		return ReadingPage{Readings: []Reading{}}, nil
	}
	rs, err := s.tele.Readings.ShipperReadingsPage(ctx, shipper, from, to, limit)
	if err != nil {
		return ReadingPage{}, err
	}
	p := ReadingPage{Readings: rs}
	if len(rs) >= limit {
		p.Next = rs[len(rs)-1].DeviceTime
	}
	return p, nil
}

// LegReadingsPage returns the leg (numbered from 1) and one page of the
// readings in its window: at most about limit (1 to MaxReadingPage) of
// them with device time after after (zero: from the window's start). It
// reads the store's time index from the cursor, so a page costs the page,
// not the leg. The caller checks that the user may read the chain.
func (s *Service) LegReadingsPage(ctx context.Context, coi COI, n int, after time.Time, limit int) (Leg, ReadingPage, error) {
	if s.tele.Readings == nil {
		return Leg{}, ReadingPage{}, fmt.Errorf("leg readings: no reading store configured: %w", ErrInvalid)
	}
	c, err := s.Chain(ctx, coi)
	if err != nil {
		return Leg{}, ReadingPage{}, fmt.Errorf("leg readings: %w", err)
	}
	if n < 1 || n > len(c.Legs) {
		return Leg{}, ReadingPage{}, fmt.Errorf("leg readings: chain %s has no leg %d: %w", coi, n, ErrNotFound)
	}
	l := c.Legs[n-1]
	from, to := legWindow(l, s.Now())
	p, err := s.readingPage(ctx, l.Shipper, from, to, after, limit)
	if err != nil {
		return Leg{}, ReadingPage{}, fmt.Errorf("leg readings: %w", err)
	}
	return l, p, nil
}

// ShipperReadingsPage returns one page of a shipper's stored readings with
// device time in [from, to] (zero bounds are open), whatever leg they
// belong to: at most about limit (1 to MaxReadingPage) of them with device
// time after after (zero: from from).
func (s *Service) ShipperReadingsPage(ctx context.Context, shipper string, from, to, after time.Time, limit int) (ReadingPage, error) {
	if s.tele.Readings == nil {
		return ReadingPage{}, fmt.Errorf("shipper readings: no reading store configured: %w", ErrInvalid)
	}
	if err := ValidateShipperID(shipper); err != nil {
		return ReadingPage{}, fmt.Errorf("shipper readings: %w", err)
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return ReadingPage{}, fmt.Errorf("shipper readings: to is before from: %w", ErrInvalid)
	}
	p, err := s.readingPage(ctx, shipper, from, to, after, limit)
	if err != nil {
		return ReadingPage{}, fmt.Errorf("shipper readings: %w", err)
	}
	return p, nil
}
